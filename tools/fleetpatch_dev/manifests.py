"""Patch manifests for tests and the demo: the shipped FP-2025-14847 record, pointed at a built release.

``write(directory, artifact, version=..., **changes)`` copies ``manifests/FP-2025-14847.yml`` to
``directory/FP-2025-14847.yml`` with ``fixed_version`` and the artifact's absolute path and sha256 set, then
``changes`` applied on top (a dotted key such as ``"monitoring.soak"`` sets a nested field). With the bad
releases (7.0.29 answers 500, 7.0.30 is slow) it gives the change record of a patch that must fail its health.

The written manifest judges health by :data:`TEST_MONITORING` instead of the shipped record's limits. Those
(p95 at most 250 ms, and 5 x a 20 ms floor against the baseline and the peers) are within what this shared
machine itself adds to a request in a busy moment, so a test could see a good patch fail, or a bad one fail for
the wrong reason. The bad releases are far from the test limits: 7.0.29's error rate is 100 % and 7.0.30 adds
300 ms to every request, so its median is over 300 ms, while a busy moment delays some requests, not the
median. Rounds are 1 s apart (the record says 5 s), so that the consecutive breaching rounds that fail a host
take seconds in a test.

Command line (``PYTHONPATH=tools``), for Molecule scenarios and shells; prints the written manifest's path::

    python -m fleetpatch_dev.manifests write --out DIR --artifact ARTIFACT [--version V] [--name FILE] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "manifests" / "FP-2025-14847.yml"


TEST_MONITORING = {
    "interval": "1s",
    "thresholds": {
        "max_error_rate": 0,  # 7.0.29
        "max_p50_ms": 150,  # 7.0.30: every request 300 ms late
        "max_p95_ms": 1000,  # a service that hangs (or is stopped) for a second
        "baseline_p95_factor": 10,  # 10 x the host's own p95 before the patch, at least 10 x 50 ms
        "peers_p95_factor": 10,
        "latency_floor_ms": 50,
    },
}


def shipped() -> dict:
    """The shipped demo manifest, as data."""
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def write(directory: Path | str, artifact: Path | str, *, version: str = "7.0.28", name: str = "FP-2025-14847.yml", **changes) -> Path:
    """Write the demo manifest for ``artifact`` (release ``version``) into ``directory``; return its path."""
    artifact = Path(artifact).resolve()
    data = copy.deepcopy(shipped())
    data["fixed_version"] = version
    data["artifact"] = {"path": str(artifact), "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()}
    data["monitoring"].update(copy.deepcopy(TEST_MONITORING))
    for key, value in changes.items():
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetpatch_dev.manifests", description="Write test change records of the demo patch.")
    sub = parser.add_subparsers(dest="command", required=True)
    write_cmd = sub.add_parser("write", help="the demo manifest for a built artifact, judged by the test limits; prints its path")
    write_cmd.add_argument("--out", required=True, type=Path, help="the directory to write it into")
    write_cmd.add_argument("--artifact", required=True, type=Path, help="the built release (fpdemo-<version>.tar.gz)")
    write_cmd.add_argument("--version", default="7.0.28", help="the release the artifact holds: the manifest's fixed_version (default 7.0.28)")
    write_cmd.add_argument("--name", default="FP-2025-14847.yml", help="the file's name (default FP-2025-14847.yml)")
    write_cmd.add_argument("--set", action="append", default=[], dest="changes", metavar="KEY=VALUE",
                           help="change a field (a dotted key, a YAML value; repeatable), e.g. urgency=emergency")
    args = parser.parse_args(argv)
    changes = {}
    for change in args.changes:
        key, sep, value = change.partition("=")
        if not sep or not key:
            parser.error(f"--set: expected KEY=VALUE, got {change!r}")
        changes[key] = yaml.safe_load(value)
    if not args.artifact.is_file():
        parser.error(f"--artifact: no such file: {args.artifact}")
    print(write(args.out, args.artifact, version=args.version, name=args.name, **changes))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
