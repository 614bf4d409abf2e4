"""Benchmark: what detect, apply and rollback cost on a fleet, next to `ansible -m ping` on the same hosts.

    PYTHONPATH=tools .venv/bin/python bench/apply_cost.py [HOSTS]      (default: 20)

One row per step, wall time over every host (ControlPersist and pipelining on, connections warmed by the
first ping), and the ratio to a warm ping. apply's first run ships the artifact (two module calls and a
transfer per host); its re-run is one module call per host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import Fleet, HostSpec

BIN = Path(sys.executable).parent
PLAYBOOKS = Path(__file__).resolve().parents[1] / "tests" / "integration" / "playbooks"


def timed(argv: list[str], env: dict) -> float:
    """Wall time of a command that must succeed."""
    start = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def main() -> None:
    """Print the table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        fleet = Fleet.create(Path(tmp) / "fleet")
        env = ansible_env.prepare(Path(tmp) / "ansible")
        try:
            fleet.add([HostSpec(name=f"h{index:03d}", version="7.0.26") for index in range(count)])
            inventory = str(fleet.write_inventory())
            artifact = fleet.artifact("7.0.28")
            sha = artifact.with_name(artifact.name + ".sha256").read_text(encoding="utf-8").split()[0]
            patch = json.dumps({"fp_version": "7.0.28", "fp_artifact": str(artifact), "fp_sha256": sha})
            playbook = [str(BIN / "ansible-playbook"), "-i", inventory]
            ping = [str(BIN / "ansible"), "all", "-i", inventory, "-m", "ansible.builtin.ping"]
            timed(ping, env)  # warms the SSH masters
            rows = [
                ("ping (warm)", timed(ping, env)),
                ("detect", timed(playbook + ["fleetpatch.rollout.detect"], env)),
                ("apply, first run", timed(playbook + [str(PLAYBOOKS / "apply.yml"), "-e", patch], env)),
                ("apply, re-run", timed(playbook + [str(PLAYBOOKS / "apply.yml"), "-e", patch], env)),
                ("rollback", timed(playbook + [str(PLAYBOOKS / "rollback.yml")], env)),
            ]
        finally:
            ansible_env.close_connections(env)
            fleet.destroy()
    base = rows[0][1]
    print(f"{count} hosts")
    print(f"{'step':18} {'wall s':>7} {'s/host':>7} {'x ping':>7}")
    for step, seconds in rows:
        print(f"{step:18} {seconds:>7.2f} {seconds / count:>7.3f} {seconds / base:>7.1f}")


if __name__ == "__main__":
    main()
