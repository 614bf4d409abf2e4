"""Benchmark: how long the wave planner takes, and how much memory, for large synthetic fleets.

    PYTHONPATH=tools .venv/bin/python bench/plan_waves.py [N ...]                 (default: 1000 10000 100000)
    PYTHONPATH=tools .venv/bin/python bench/plan_waves.py --playbook [N ...]      (default: 1000 10000)

Each fleet is deterministic: 8 regions, about half of the hosts in 3- and 5-member clusters (one primary each),
1,000 customers, 320 distinct maintenance windows (weekly ones in 8 time zones and 40 RFC 5545 ones), 90 % of
the hosts on affected versions, 5 % already fixed, 5 % whose detection failed. The patch is urgent and half of
the customers were pre-notified. Prints one row per size: hosts, waves, planned / deferred / excluded, the
median of 3 plan times (wall clock, and CPU time of this process, which other load on a shared machine
inflates less), and the peak memory the planner allocated (tracemalloc, a separate run).

With ``--playbook``, the same fleet is an inventory (each host's variables in the inventory, reached by no one)
and a detection report, and the offline plan entry point (``playbooks/plan.yml``) plans it inside
``ansible-playbook`` once per size: the table shows the wall time of the task "Plan the waves" (what the
controller spent on it, every host included), of the whole play, the CPU time of the command and its children,
and the peak resident memory of the biggest process of the run. The patch is an emergency there (every window
overridden), so that the plan is of every affected host.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from fleetpatch_dev import ansible_env

sys.path.insert(0, str(ansible_env.collections_dir()))

# pylint: disable-next=wrong-import-position
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import plan_waves  # noqa: E402

NOW = "2026-03-29T01:45:00Z"  # the night Europe's clocks go forward
ZONES = ["Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "UTC"]
DAY_SETS = [["mon"], ["tue", "thu"], ["sat", "sun"], ["wed"], ["fri", "sat"], ["sun"], ["mon", "wed", "fri"], ["tue"]]
STARTS = ["00:00", "01:00", "02:00", "02:30", "22:00"]
RULES = ["FREQ=MONTHLY;BYDAY=1SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", "FREQ=DAILY", "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=WEEKLY;BYDAY=MO,TH"]
MANIFEST = {
    "id": "FP-2025-14847", "urgency": "urgent", "affected": ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17", "fixed_version": "7.0.28",
    "compatible_with": ">=7.0.26,<7.1", "notify": {"lead_time": "15h", "lead_time_seconds": 54000},
}


def windows():
    """320 distinct windows: 280 weekly, 40 by recurrence rule."""
    found = []
    for zone in ZONES:
        for days in DAY_SETS:
            for start in STARTS:
                found.append({"days": days, "start": start, "duration": "4h", "timezone": zone})
    found = found[:280]
    for zone in ZONES:
        for rule in RULES:
            found.append({"rrule": rule, "dtstart": "2025-01-04T02:00", "duration": "3h", "timezone": zone})
    return found


def fleet(count):
    """``count`` synthetic hosts as plan_waves takes them (fresh dicts per host, as hostvars would be)."""
    shapes = windows()
    hosts = {}
    index = 0
    cluster = 0
    while index < count:
        region = f"region-{index % 8}"
        size = (3, 5, 1, 1, 1)[cluster % 5]  # about half of the hosts sit in clusters
        for member in range(min(size, count - index)):
            name = f"h{index:06d}"
            facts = {
                "region": region,
                "customer": f"customer-{index % 1000:04d}",
                "maintenance_window": dict(shapes[(index * 7) % len(shapes)]),
            }
            if size > 1:
                facts["cluster"] = f"db-{cluster:05d}"
                facts["cluster_role"] = "primary" if member == 0 else "secondary"
            if index % 20 == 7:
                facts["detect"] = {"failed": False, "unreachable": True, "msg": "Failed to connect to the host via ssh"}
            else:
                facts["detect"] = {"changed": False, "version": "7.0.28" if index % 20 == 3 else ("7.0.27" if index % 3 else "7.0.26"), "affected": True}
            hosts[name] = facts
            index += 1
        cluster += 1
    return hosts


def notifications():
    """Half of the customers told long enough ago, a quarter too recently."""
    records = []
    for number in range(0, 1000, 2):
        at = "2026-03-27T12:00:00Z" if number % 4 == 0 else "2026-03-28T20:00:00Z"
        records.append({"customer": f"customer-{number:04d}", "patch_id": "FP-2025-14847", "notified_at": at, "channel": "email", "by": "ops"})
    return {"notifications": records}


def measure(count):
    """One row of the table."""
    hosts = fleet(count)
    told = notifications()
    times = []
    cpu = []
    for _run in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        plan = plan_waves(hosts, MANIFEST, policy={"batch": {"percent": 25}, "canary": {"percent": 1}}, now=NOW, notifications=told)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    plan_waves(hosts, MANIFEST, policy={"batch": {"percent": 25}, "canary": {"percent": 1}}, now=NOW, notifications=told)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    summary = plan["summary"]
    excluded = sum(summary["excluded"].values())
    return count, summary["waves"], summary["planned"], summary["deferred"], excluded, statistics.median(times), statistics.median(cpu), peak / 2**20


BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "playbooks" / "plan.yml"
PLAN_TASK = "Plan the waves"


def write_inventory(hosts, path):
    """``hosts`` (as :func:`fleet` makes them) as a YAML (JSON) inventory, their detection results left out."""
    entries = {}
    for name, facts in hosts.items():
        entries[name] = {key: value for key, value in facts.items() if key != "detect"} | {"ansible_connection": "local"}
    path.write_text(json.dumps({"all": {"hosts": entries}}), encoding="utf-8")
    return path


def write_report(hosts, path):
    """The hosts' detection results as the detect playbook's report (of the demo component)."""
    rows = [{"host": name, "detected": facts["detect"]} for name, facts in sorted(hosts.items())]
    report = {"format": 1, "detected_at": "2026-03-29T01:00:00Z", "component": "fpdemo", "install_dir": "/srv/fpdemo", "strategy": "bench",
              "patch": MANIFEST["id"], "hosts": rows}
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def measure_playbook(count, workdir):
    """Plan ``count`` hosts with ``playbooks/plan.yml``: a dict of the figures (seconds, MiB)."""
    from fleetpatch_dev import manifests  # pylint: disable=import-outside-toplevel

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = fleet(count)
    inventory = write_inventory(hosts, workdir / f"inventory-{count}.json")
    report = write_report(hosts, workdir / f"detect-{count}.json")
    artifact = workdir / "fpdemo-7.0.28.tar.gz"
    artifact.write_bytes(b"not read by the plan")
    manifest = manifests.write(workdir, artifact, urgency="emergency")
    times = workdir / f"times-{count}.json"
    env = ansible_env.prepare(workdir / "ansible")
    env.update({"ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "callback_plugins"),
                "ANSIBLE_CALLBACKS_ENABLED": "bench_task_times", "BENCH_TASK_TIMES": str(times)})
    extra = {"fleetpatch_manifest": str(manifest), "fleetpatch_detect_report": str(report), "fleetpatch_now": NOW,
             "fleetpatch_policy": {"batch": {"percent": 25}, "canary": {"percent": 1}, "emergency": {"decided_by": "bench", "justification": "bench"}}}
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAN), "-e", json.dumps(extra)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tasks = json.loads(times.read_text(encoding="utf-8"))["tasks"]
    return {
        "hosts": count,
        "plan_task_s": sum(task["seconds"] for task in tasks if task["name"].endswith(PLAN_TASK)),
        "play_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024,
        "tasks": tasks,
    }


def main_playbook(sizes):
    """Print the table of planning inside ansible-playbook."""
    print(f"{'hosts':>7} {'plan task s':>11} {'play s':>7} {'cpu s':>7} {'peak MiB':>8}")
    with tempfile.TemporaryDirectory(prefix="fp-bench-plan-") as tmp:
        for size in sizes:
            row = measure_playbook(size, Path(tmp) / str(size))
            print(f"{row['hosts']:>7} {row['plan_task_s']:>11.2f} {row['play_s']:>7.2f} {row['cpu_s']:>7.2f} {row['peak_rss_mib']:>8.0f}", flush=True)
            if os.environ.get("BENCH_VERBOSE"):
                for task in row["tasks"]:
                    print(f"        {task['seconds']:>8.2f}  {task['name']}")


def main():
    """Print the table."""
    args = sys.argv[1:]
    if args[:1] == ["--playbook"]:
        main_playbook([int(arg) for arg in args[1:]] or [1000, 10000])
        return
    sizes = [int(arg) for arg in args] or [1000, 10000, 100000]
    print(f"{'hosts':>7} {'waves':>5} {'planned':>7} {'deferred':>8} {'excluded':>8} {'plan s':>7} {'cpu s':>6} {'peak MiB':>8}")
    for size in sizes:
        count, waves, planned, deferred, excluded, seconds, cpu, peak = measure(size)
        print(f"{count:>7} {waves:>5} {planned:>7} {deferred:>8} {excluded:>8} {seconds:>7.3f} {cpu:>6.3f} {peak:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
