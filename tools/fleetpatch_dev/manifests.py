"""Patch manifests for tests and the demo: the shipped FP-2025-14847 record, pointed at a built release.

``write(directory, artifact, version=..., **changes)`` copies ``manifests/FP-2025-14847.yml`` to
``directory/FP-2025-14847.yml`` with ``fixed_version`` and the artifact's absolute path and sha256 set, then
``changes`` applied on top (a dotted key such as ``"monitoring.soak"`` sets a nested field). With the bad
releases (7.0.29 answers 500, 7.0.30 is slow) it gives the change record of a patch that must fail its health.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "manifests" / "FP-2025-14847.yml"


def shipped() -> dict:
    """The shipped demo manifest, as data."""
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def write(directory: Path | str, artifact: Path | str, *, version: str = "7.0.28", name: str = "FP-2025-14847.yml", **changes) -> Path:
    """Write the demo manifest for ``artifact`` (release ``version``) into ``directory``; return its path."""
    artifact = Path(artifact).resolve()
    data = copy.deepcopy(shipped())
    data["fixed_version"] = version
    data["artifact"] = {"path": str(artifact), "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()}
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
