"""The demo: a 12-host fleet in three regions, the fleetpatch rollout of FP-2025-14847 on it, what every host runs.

``python -m fleetpatch_dev.demo`` (what ``scripts/demo`` runs). It is the operator's story end to end:

1. bring up the demo fleet (real sshd hosts in network namespaces, most of them on an affected fpdemo);
2. build the fixed release where the shipped change record ``manifests/FP-2025-14847.yml`` expects it;
3. write the pre-notification record: this urgent patch may override a customer's maintenance window only
   when the customer was told at least ``notify.lead_time`` (15 h) before; one customer was told too late;
4. run ``ansible-playbook fleetpatch.rollout.rollout`` with two approvers, the audit callback on, and a short
   soak: canary, then region by region, each wave under the health guard;
5. list every host with the version it ran before and runs now (asked over HTTP, not from Ansible's
   report), then check the audit trail's hash chain with ``bin/fleetpatch-audit verify``;
6. write the fleet status report (``fleetpatch.rollout.status``: JSON, CSV, an HTML page) and, the fleet being
   safe, publish the advisory with its retrospective (``fleetpatch.rollout.publish``) into ``--out``
   (``.build/demo`` by default), and end with the report's path and the retrospective.

The fleet is torn down at the end, leaving no process, namespace or mount behind, unless ``--keep`` is given
(then ``python -m fleetpatch_dev.fleet --dir DIR down`` removes it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fleetpatch_dev import ansible_env, artifacts, manifests
from fleetpatch_dev.fleet import Fleet, FleetError, demo_layout

REPO = Path(__file__).resolve().parents[2]
LATE_CUSTOMER = "stark"
PUBLISHER = {"name": "fleetpatch demo", "namespace": "https://fleetpatch.invalid"}


def say(message: str) -> None:
    """One line of the demo's own narration."""
    print(f"==> {message}", flush=True)


def fixed_release(record: dict) -> Path:
    """Build the record's fixed release where its artifact.path points, and check it is the sha256 it names."""
    target = (manifests.SHIPPED.parent / record["artifact"]["path"]).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    built = artifacts.build(record["fixed_version"], target.parent)
    if built.path != target or built.sha256 != record["artifact"]["sha256"]:
        raise FleetError(f"the rebuilt {built.path} ({built.sha256}) is not the artifact the change record names")
    return target


def write_notifications(path: Path, record: dict, customers: list[str], now: datetime.datetime) -> None:
    """Every customer told 20 h ago, but LATE_CUSTOMER only 2 h ago (less than the 15 h lead time)."""
    entries = []
    for customer in customers:
        told = now - datetime.timedelta(hours=2 if customer == LATE_CUSTOMER else 20)
        entries.append({
            "customer": customer, "patch_id": record["id"], "notified_at": told.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": "email", "by": "jane.doe@fleetpatch.example",
        })
    path.write_text(yaml.safe_dump({"notifications": entries}, sort_keys=False), encoding="utf-8")


def _utc_time(text: str) -> datetime.datetime:
    """``--now``: an RFC 3339 time with an offset, as UTC; argparse names the option when it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected an RFC 3339 time with an offset such as 2026-03-03T12:00:00Z, got {text!r}")
    return moment.astimezone(datetime.timezone.utc)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code is ansible-playbook's, or 1 when the audit trail does not verify."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=12, help="number of demo hosts (default 12)")
    parser.add_argument("--regions", type=int, default=3, help="number of regions (default 3)")
    parser.add_argument("--soak", type=int, default=3, help="seconds each patched host is watched (default 3; the record says 5m)")
    parser.add_argument("--now", type=_utc_time, help="decide windows and notifications at this RFC 3339 time instead of now (fleetpatch_now)")
    parser.add_argument("--keep", action="store_true", help="leave the fleet running at the end")
    parser.add_argument("--out", type=Path, default=REPO / ".build" / "demo",
                        help="where the status report, the advisory and the retrospective go (default .build/demo)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="fleetpatch-demo-"))
    started = time.monotonic()
    record = manifests.shipped()
    say(f"bringing up {args.hosts} demo hosts in {args.regions} regions (real sshd hosts in network namespaces)")
    fleet = Fleet.create(workdir / "fleet", owner_pid=None if args.keep else os.getpid())
    env = ansible_env.prepare(workdir / "ansible")
    try:
        layout = demo_layout(args.hosts, args.regions)
        fleet.add(layout)
        inventory = fleet.write_inventory()
        say(f"fleet up in {time.monotonic() - started:.1f} s; inventory {inventory}")
        release = fixed_release(record)
        say(f"{record['id']} ({record['urgency']}, {record['class']} patch): fixed release {release.relative_to(REPO)} matches its sha256")
        notifications = workdir / "notifications.yml"
        now = args.now or datetime.datetime.now(datetime.timezone.utc)
        write_notifications(notifications, record, sorted({spec.customer for spec in layout}), now)
        say(f"pre-notification record {notifications}: every customer told 20 h ago, {LATE_CUSTOMER} only 2 h ago "
            f"(lead time {record['notify']['lead_time']}): {LATE_CUSTOMER}'s hosts wait for their window")
        audit_log = workdir / "audit" / "audit.jsonl"
        env.update({"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(audit_log)})
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "fleetpatch.rollout.rollout",
            "-e", f"fleetpatch_manifest={manifests.SHIPPED}",
            "-e", f"fleetpatch_notifications={notifications}",
            "-e", "fleetpatch_approved_by=alice", "-e", "fleetpatch_implemented_by=bob", "-e", "fleetpatch_verified_by=carol",
            "-e", f"fleetpatch_soak={args.soak}",
        ] + (["-e", f"fleetpatch_now={now.strftime('%Y-%m-%dT%H:%M:%SZ')}"] if args.now else [])
        say("running: " + " ".join(command[1:]))
        returncode = subprocess.run(command, env=env, check=False).returncode
        say(f"ansible-playbook exited {returncode}; every demo host and the version it runs now (asked over HTTP):")
        print(f"{'HOST':10} {'ADDRESS':13} {'REGION':9} {'CLUSTER':23} {'CUSTOMER':9} {'BEFORE':8} {'NOW':8} STATE")
        counts = {"fixed": 0, "affected": 0, "unknown": 0}
        for spec in layout:
            try:
                version = fleet.service_version(spec.name)
            except OSError:
                version, state = "unknown", "did not answer"
                counts["unknown"] += 1
            else:
                if version == record["fixed_version"]:
                    state = "already fixed" if spec.version == version else "patched"
                    counts["fixed"] += 1
                else:
                    state = "still affected"
                    counts["affected"] += 1
            cluster = f"{spec.cluster} ({spec.cluster_role})" if spec.cluster else "-"
            print(f"{spec.name:10} {fleet.address(spec.name):13} {spec.region:9} {cluster:23} {spec.customer:9} {spec.version:8} {version:8} {state}")
        say(f"{len(layout)} hosts: {counts['fixed']} on {record['fixed_version']}, {counts['affected']} still affected, "
            f"{counts['unknown']} did not answer (the rollout summary above says why for each)")
        say(f"checking the audit trail {audit_log}")
        verified = subprocess.run([sys.executable, str(REPO / "bin" / "fleetpatch-audit"), "verify", str(audit_log)], check=False).returncode
        published = publish(inventory, notifications, args.out.resolve(), env, record) if not (returncode or verified) else 1
        return returncode or (1 if verified else 0) or published
    finally:
        ansible_env.close_connections(env)
        if args.keep:
            say(f"fleet kept: python -m fleetpatch_dev.fleet --dir {fleet.workdir} down")
        else:
            fleet.destroy()
            shutil.rmtree(workdir, ignore_errors=True)
            say("fleet torn down: no host process, namespace or mount left")


def publish(inventory: Path, notifications: Path, out: Path, env: dict, record: dict) -> int:
    """The fleet status report, then the advisory and its retrospective; the report's path and the retrospective, printed."""
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    common = ["-i", str(inventory), "-e", f"fleetpatch_manifest={manifests.SHIPPED}"]
    say(f"writing the fleet status report to {out}")
    done = subprocess.run([playbook, *common, "fleetpatch.rollout.status", "-e", f"fleetpatch_status_dir={out}"], env=env, check=False)
    if done.returncode:
        return done.returncode
    say("publishing the advisory, now that every host is patched or deferred with a reason")
    done = subprocess.run([playbook, *common, "fleetpatch.rollout.publish", "-e", f"fleetpatch_advisory_dir={out}",
                           "-e", f"fleetpatch_notifications={notifications}", "-e", json.dumps({"fleetpatch_advisory_publisher": PUBLISHER})],
                          env=env, check=False)
    if done.returncode:
        return done.returncode
    say(f"the fleet status report: {out / (record['id'] + '-status.html')} (also .json and .csv); the advisory: "
        f"{out / (record['id'] + '.osv.json')}, {record['id']}.csaf.json, {record['id']}.notice.md")
    retrospective = out / f"{record['id']}.retrospective.md"
    say(f"the retrospective, {retrospective}:")
    print(retrospective.read_text(encoding="utf-8"), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FleetError as error:
        sys.stderr.write(f"demo: {error}\n")
        sys.exit(1)
