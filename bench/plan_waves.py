"""Benchmark: how long the wave planner takes, and how much memory, for large synthetic fleets.

    PYTHONPATH=tools .venv/bin/python bench/plan_waves.py [N ...]      (default: 1000 10000 100000)

Each fleet is deterministic: 8 regions, about half of the hosts in 3- and 5-member clusters (one primary each),
1,000 customers, 320 distinct maintenance windows (weekly ones in 8 time zones and 40 RFC 5545 ones), 90 % of
the hosts on affected versions, 5 % already fixed, 5 % whose detection failed. The patch is urgent and half of
the customers were pre-notified. Prints one row per size: hosts, waves, planned / deferred / excluded, the
median of 3 plan times (wall clock, and CPU time of this process, which other load on a shared machine
inflates less), and the peak memory the planner allocated (tracemalloc, a separate run).
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc

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


def main():
    """Print the table."""
    sizes = [int(arg) for arg in sys.argv[1:]] or [1000, 10000, 100000]
    print(f"{'hosts':>7} {'waves':>5} {'planned':>7} {'deferred':>8} {'excluded':>8} {'plan s':>7} {'cpu s':>6} {'peak MiB':>8}")
    for size in sizes:
        count, waves, planned, deferred, excluded, seconds, cpu, peak = measure(size)
        print(f"{count:>7} {waves:>5} {planned:>7} {deferred:>8} {excluded:>8} {seconds:>7.3f} {cpu:>6.3f} {peak:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
