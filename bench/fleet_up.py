"""Benchmark: how fast the test fleet comes up, what it costs in memory, and a real Ansible round trip on it.

    PYTHONPATH=tools .venv/bin/python bench/fleet_up.py [N ...]      (default: 12 50)

Prints one row per fleet size: seconds to bring the hosts up (sshd and the demo service answering), resident
memory of all host processes, and wall time of `ansible -m ping` and of the `fleetpatch.rollout.detect`
playbook over every host (ControlPersist and pipelining on, connections cold for the first).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import Fleet, demo_layout

BIN = Path(sys.executable).parent


def rss_mib(pids: list[int]) -> float:
    """Sum of the resident set sizes of these processes, in MiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def timed(argv: list[str], env: dict) -> float:
    """Wall time of a command that must succeed."""
    start = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def measure(count: int) -> tuple:
    """One row of the table."""
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        fleet = Fleet.create(Path(tmp) / "fleet")
        env = ansible_env.prepare(Path(tmp) / "ansible")
        try:
            start = time.monotonic()
            fleet.add(demo_layout(count, regions=min(count, 3)))
            up = time.monotonic() - start
            memory = rss_mib([pid for name in fleet.names for pid in fleet.netns_pids(name)])
            inventory = str(fleet.write_inventory())
            ping = timed([str(BIN / "ansible"), "all", "-i", inventory, "-m", "ansible.builtin.ping"], env)
            detect = timed([str(BIN / "ansible-playbook"), "-i", inventory, "fleetpatch.rollout.detect"], env)
        finally:
            ansible_env.close_connections(env)
            fleet.destroy()
    return count, up, memory, memory / count, ping, detect


def main() -> None:
    """Print the table."""
    sizes = [int(arg) for arg in sys.argv[1:]] or [12, 50]
    print(f"{'hosts':>5} {'up s':>7} {'RSS MiB':>8} {'MiB/host':>8} {'ping s':>7} {'detect s':>8}")
    for size in sizes:
        count, up, memory, per_host, ping, detect = measure(size)
        print(f"{count:>5} {up:>7.2f} {memory:>8.1f} {per_host:>8.1f} {ping:>7.2f} {detect:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
