"""The demo: a 12-host fleet in three regions, fleetpatch run on it, a table of what every host runs.

``python -m fleetpatch_dev.demo`` (what ``scripts/demo`` runs). The fleet is torn down at the end, leaving no
process, namespace or mount behind, unless ``--keep`` is given (then ``python -m fleetpatch_dev.fleet --dir
DIR down`` removes it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import Fleet, FleetError, demo_layout

AFFECTED = ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
FIXED_VERSION = "7.0.28"


def say(message: str) -> None:
    """One line of the demo's own narration."""
    print(f"==> {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code is ansible-playbook's."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=12, help="number of demo hosts (default 12)")
    parser.add_argument("--regions", type=int, default=3, help="number of regions (default 3)")
    parser.add_argument("--keep", action="store_true", help="leave the fleet running at the end")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="fleetpatch-demo-"))
    started = time.monotonic()
    say(f"bringing up {args.hosts} demo hosts in {args.regions} regions (real sshd hosts in network namespaces)")
    fleet = Fleet.create(workdir / "fleet", owner_pid=None if args.keep else os.getpid())
    env = ansible_env.prepare(workdir / "ansible")
    try:
        fleet.add(demo_layout(args.hosts, args.regions))
        inventory = fleet.write_inventory()
        say(f"fleet up in {time.monotonic() - started:.1f} s; inventory {inventory}")
        report = workdir / "detect.json"
        say("running fleetpatch.rollout.detect on every host")
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "fleetpatch.rollout.detect",
            "-e", json.dumps({"fleetpatch_affected": AFFECTED, "fleetpatch_fixed_version": FIXED_VERSION, "fleetpatch_detect_report": str(report)}),
        ]
        returncode = subprocess.run(command, env=env, check=False).returncode
        rows = json.loads(report.read_text(encoding="utf-8")) if report.exists() else []
        hostvars = fleet.inventory()["all"]["hosts"]
        say(f"every demo host and the version it runs (affected range {AFFECTED}):")
        print(f"{'HOST':10} {'ADDRESS':13} {'REGION':9} {'CLUSTER':23} {'VERSION':8} AFFECTED")
        for row in rows:
            host = hostvars[row["host"]]
            cluster = f"{host['cluster']} ({host['cluster_role']})" if host.get("cluster") else "-"
            print(f"{row['host']:10} {host['ansible_host']:13} {row['region']:9} {cluster:23} {row['version']:8} {row['affected']}")
        affected = sum(1 for row in rows if row["affected"] is True)
        say(f"{len(rows)} hosts detected, {affected} affected, {sum(1 for row in rows if row['version'] == 'unknown')} unknown")
        return returncode
    finally:
        ansible_env.close_connections(env)
        if args.keep:
            say(f"fleet kept: python -m fleetpatch_dev.fleet --dir {fleet.workdir} down")
        else:
            fleet.destroy()
            shutil.rmtree(workdir, ignore_errors=True)
            say("fleet torn down: no host process, namespace or mount left")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FleetError as error:
        sys.stderr.write(f"demo: {error}\n")
        sys.exit(1)
