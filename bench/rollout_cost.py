"""Benchmark: what a whole rollout costs the controller, next to `ansible -m ping` on the same hosts.

    PYTHONPATH=tools .venv/bin/python bench/rollout_cost.py [HOSTS]      (default: 20)

The fleet: HOSTS hosts on affected 7.0.26 in two regions, no clusters, no windows; the demo patch (7.0.28, hot)
as an emergency, canary of 1 then each region in one batch (3 waves), soak 0 so the table shows the cost of the
rollout's own work rather than the probes' waiting. ControlPersist and pipelining on, the SSH masters warmed by a
first ping. One row per run: wall time, controller CPU time (ansible-playbook, its workers and the ssh clients,
that is the command's process tree; the ControlPersist masters detach from it and are not counted), and both as
a multiple of a warm ping.

Rows: a warm ping; the rollout's plan only (--check: preflight, detection, the plan); the rollout;
its re-run (every host already fixed: preflight and detection only).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env, manifests
from fleetpatch_dev.fleet import Fleet, HostSpec

BIN = Path(sys.executable).parent
ROLLOUT = Path(__file__).resolve().parents[1] / "playbooks" / "rollout.yml"


def measured(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children) of a command that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Print the table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        fleet = Fleet.create(Path(tmp) / "fleet")
        env = ansible_env.prepare(Path(tmp) / "ansible")
        env.update({"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(Path(tmp) / "audit.jsonl")})
        try:
            regions = ("eu-west", "us-east")
            fleet.add([HostSpec(name=f"h{index:03d}", version="7.0.26", region=regions[index % 2]) for index in range(count)])
            inventory = str(fleet.write_inventory())
            manifest = manifests.write(Path(tmp), fleet.artifact("7.0.28"), urgency="emergency")
            extra = json.dumps({
                "fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob",
                "fleetpatch_soak": 0, "fleetpatch_policy": {"emergency": {"decided_by": "bench", "justification": "benchmark"}},
            })
            ping = [str(BIN / "ansible"), "all", "-i", inventory, "-m", "ansible.builtin.ping"]
            rollout = [str(BIN / "ansible-playbook"), "-i", inventory, str(ROLLOUT), "-e", extra]
            measured(ping, env)  # warms the SSH masters
            rows = [
                ("ping (warm)", *measured(ping, env)),
                ("rollout --check (plan)", *measured(rollout + ["--check"], env)),
                ("rollout", *measured(rollout, env)),
                ("rollout re-run", *measured(rollout, env)),
            ]
            patched = sum(fleet.service_version(name) == "7.0.28" for name in fleet.names)
        finally:
            ansible_env.close_connections(env)
            fleet.destroy()
    base_wall, base_cpu = rows[0][1], rows[0][2]
    print(f"{count} hosts, {patched} patched by the rollout")
    print(f"{'run':24} {'wall s':>7} {'cpu s':>7} {'cpu s/host':>10} {'x ping wall':>11} {'x ping cpu':>10}")
    for run, wall, cpu in rows:
        print(f"{run:24} {wall:>7.2f} {cpu:>7.2f} {cpu / count:>10.3f} {wall / base_wall:>11.1f} {cpu / base_cpu:>10.1f}")


if __name__ == "__main__":
    main()
