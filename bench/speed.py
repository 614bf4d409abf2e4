"""Benchmark: fleetpatch's speed on the test fleet, next to the SSH floor and a builtin-only playbook, in one table.

    PYTHONPATH=tools .venv/bin/python bench/speed.py [--hosts 20 50] [--runs 3] [--plan-sizes 1000 10000 100000]
                                                     [--playbook-sizes 1000 10000] [--audit-runs 3] [--json PATH]

For each fleet size (``--hosts``, default 20 and 50; ``--hosts 5`` is a quick run), a fresh test fleet on affected
7.0.26 in two regions, the demo patch (7.0.28, hot) as an emergency, and the same waves everywhere: a canary of 1,
then each region in one batch. Each figure is the median of ``--runs`` cold runs (every SSH master closed before
each command), in this order each run:

- ``ping``: ``ansible all -m ansible.builtin.ping`` with the same connection settings: the floor;
- ``builtin``: ``bench/playbooks/builtin_rollout.yml``, the same job done with builtin modules only (slurp, copy,
  stat sha256, unarchive, link, reload, uri x2, a state file), honestly and with less safety than fleetpatch: the
  baseline (the fleet is then put back on 7.0.26 outside the measure);
- ``rollout``: ``playbooks/rollout.yml`` with soak 0 and the audit callback on;
- ``rollback``: ``playbooks/rollback.yml`` over the whole fleet, which puts it back on 7.0.26 for the next run.

Then planning, with no fleet: ``plan direct`` is the planner called in this process (bench/plan_waves.py's fleets,
CPU time), ``plan in playbook`` the offline plan entry point over an inventory of that size (the wall time of the
task "Plan the waves"; the play's whole time is in the JSON). Last, the audit callback on and off on
bench/audit_overhead.py's 200-task play.

Columns: wall seconds, controller CPU seconds (the command and every process it waited for: workers, ssh clients),
module round trips per host (results of tasks that reach the host; an action running several modules in one task
counts once), and wall time as a multiple of the floor and of the builtin baseline. The same figures, every run's
and the machine's (CPUs, load average before and after), are written as JSON (default tests/output/speed.json).
The machine may be shared: its load is in the output, and figures taken under load say so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env, manifests
from fleetpatch_dev.fleet import Fleet, HostSpec

BIN = Path(sys.executable).parent
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
REGIONS = ("eu-west", "us-east")
FROM, TO = "7.0.26", "7.0.28"

sys.path.insert(0, str(BENCH))
# pylint: disable-next=wrong-import-position
import plan_waves  # noqa: E402


# --- the pure part: rows, ratios, the table, the JSON (tests/unit/test_bench_speed.py) ---------------------------------

def summarise(name, hosts, runs):
    """One row from a list of runs (each ``{wall, cpu, trips}``, trips per host or None): the medians."""
    trips = [run["trips"] for run in runs if run.get("trips") is not None]
    failed = sum(1 for run in runs if run.get("ok") is False)
    return {
        "run": name + (f" ({failed} failed)" if failed else ""), "hosts": hosts, "runs": len(runs), "failed": failed,
        "wall": statistics.median(run["wall"] for run in runs),
        "cpu": statistics.median(run["cpu"] for run in runs),
        "trips": statistics.median(trips) if trips else None,
        "each": runs,
    }


def with_ratios(rows, floor="ping", baseline="builtin"):
    """The rows with ``x_floor`` and ``x_baseline`` (wall time over the same fleet size's floor and baseline)."""
    reference = {}
    for row in rows:
        name = row["run"].split(" (")[0]
        if name in (floor, baseline) and not row.get("failed"):
            reference[(name, row["hosts"])] = row["wall"]
    result = []
    for row in rows:
        row = dict(row)
        for key, name in (("x_floor", floor), ("x_baseline", baseline)):
            base = reference.get((name, row["hosts"]))
            row[key] = row["wall"] / base if base else None
        result.append(row)
    return result


def _cell(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows):
    """The table, as lines of text."""
    lines = [f"{'run':26} {'hosts':>7} {'wall s':>8} {'cpu s':>8} {'trips/host':>10} {'x floor':>8} {'x builtin':>9}"]
    for row in rows:
        lines.append(f"{row['run']:26} {row['hosts']:>7} {_cell(row['wall'], 2):>8} {_cell(row['cpu'], 2):>8} {_cell(row.get('trips'), 1):>10} "
                     f"{_cell(row.get('x_floor'), 2):>8} {_cell(row.get('x_baseline'), 2):>9}")
    return lines


def report(rows, machine):
    """What the JSON file holds."""
    return {"machine": machine, "rows": rows}


# --- the measures ---------------------------------------------------------------------------------------------------

def machine_info():
    """The machine the figures come from."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "ansible_core": subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0],
            "load_before": os.getloadavg()}


def close_masters(env):
    """End the SSH ControlPersist masters the runs of ``env`` started, keeping their directory: the next run is cold."""
    control_dir = Path(env["FLEETPATCH_CONTROL_DIR"])
    for sock in control_dir.iterdir() if control_dir.is_dir() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "fleetpatch-control"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)


def timed(argv, env, times, log):
    """One cold run: ``{wall, cpu, trips, ok}`` with the round trips per host the bench callback counted.

    A command that fails is kept (``ok`` false, marked in the table) and its output's end printed: on a busy machine a
    rollout can fail its health thresholds, and that is a result too.
    """
    close_masters(env)
    if times.exists():
        times.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        tail = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print(f"  FAILED (exit {done.returncode}): {' '.join(argv[:4])} ...\n    " + "\n    ".join(tail), file=sys.stderr, flush=True)
    trips = None
    if times.exists():
        counted = json.loads(times.read_text(encoding="utf-8"))["round_trips"]
        trips = sum(counted.values()) / len(counted) if counted else 0.0
    return {"wall": round(wall, 3), "cpu": round(cpu, 3), "trips": trips, "ok": done.returncode == 0}


def fleet_rows(count, runs, workdir):
    """The rows of one fleet size."""
    fleet = Fleet.create(workdir / "fleet")
    env = ansible_env.prepare(workdir / "ansible")
    times = workdir / "times.json"
    env.update({"ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"), "BENCH_TASK_TIMES": str(times)})
    plain = dict(env, ANSIBLE_CALLBACKS_ENABLED="bench_task_times")
    audited = dict(env, ANSIBLE_CALLBACKS_ENABLED="bench_task_times,fleetpatch.rollout.audit", FLEETPATCH_AUDIT_LOG=str(workdir / "audit.jsonl"))
    try:
        names = [f"h{index:03d}" for index in range(count)]
        fleet.add([HostSpec(name=name, version=FROM, region=REGIONS[index % 2]) for index, name in enumerate(names)])
        inventory = str(fleet.write_inventory())
        artifact = fleet.artifact(TO)
        manifest = manifests.write(workdir, artifact, urgency="emergency")
        common = {"fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob"}
        rollout_vars = dict(common, fleetpatch_soak=0, fleetpatch_policy={"emergency": {"decided_by": "bench", "justification": "benchmark"}})
        canary = names[0]
        waves = [canary] + [f"region_{region.replace('-', '_')}:!{canary}" for region in REGIONS]
        builtin_vars = {"bench_artifact": str(artifact), "bench_sha256": hashlib.sha256(artifact.read_bytes()).hexdigest(), "bench_version": TO,
                        "bench_waves": waves}
        commands = {
            "ping": ([str(BIN / "ansible"), "all", "-i", inventory, "-m", "ansible.builtin.ping"], plain),
            "builtin": ([str(BIN / "ansible-playbook"), "-i", inventory, str(BENCH / "playbooks" / "builtin_rollout.yml"), "-e", json.dumps(builtin_vars)],
                        plain),
            "rollout (soak 0)": ([str(BIN / "ansible-playbook"), "-i", inventory, str(REPO / "playbooks" / "rollout.yml"), "-e", json.dumps(rollout_vars)],
                                 audited),
            "rollback (fleet-wide)": ([str(BIN / "ansible-playbook"), "-i", inventory, str(REPO / "playbooks" / "rollback.yml"), "-e", json.dumps(common)],
                                      audited),
        }
        measures = {name: [] for name in commands}
        for number in range(runs):
            for name, (argv, run_env) in commands.items():
                result = timed(argv, run_env, times, workdir / f"{name.split()[0]}-{number}.log")
                if name == "ping":
                    result["trips"] = 1.0
                measures[name].append(result)
                print(f"  {count} hosts, run {number + 1}/{runs}: {name}: {result['wall']:.1f} s", file=sys.stderr, flush=True)
                if name == "builtin":
                    _back_to(fleet, names, FROM)
                elif name.startswith("rollout"):
                    result["patched"] = sum(fleet.service_version(host) == TO for host in names)
            if any(fleet.service_version(host) != FROM for host in names):
                raise SystemExit("the rollback left hosts off 7.0.26")
        return [summarise(name, count, measures[name]) for name in commands]
    finally:
        ansible_env.close_connections(env)
        fleet.destroy()


def _back_to(fleet, names, version):
    """Put every host back on ``version`` after the builtin baseline, as it was (not measured)."""
    command = (f"ln -sfn releases/{version} /srv/fpdemo/.current.bench && mv -T /srv/fpdemo/.current.bench /srv/fpdemo/current"
               f" && rm -rf /srv/fpdemo/releases/{TO} /tmp/fpdemo-{TO}.tar.gz /var/lib/fpdemo-bench-state.json"
               " && /usr/bin/python3 /srv/fpdemo/bin/fpdemoctl.py reload")
    for name in names:
        done = fleet.ssh(name, command)
        if done.returncode != 0:
            raise SystemExit(f"{name}: cannot go back to {version}: {done.stderr.strip()}")
    deadline = time.monotonic() + 60
    while any(fleet.service_version(name) != version for name in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"the fleet did not go back to {version} after the builtin baseline")
        time.sleep(0.5)


def plan_rows(direct_sizes, playbook_sizes, workdir):
    """Planning directly (CPU of the planner) and inside ansible-playbook (the planning task's wall time)."""
    rows = []
    for size in direct_sizes:
        _count, _waves, _planned, _deferred, _excluded, seconds, cpu, _peak = plan_waves.measure(size)
        rows.append({"run": "plan direct", "hosts": size, "runs": 3, "wall": seconds, "cpu": cpu, "trips": None, "each": []})
        print(f"  plan direct {size}: {cpu:.2f} s CPU", file=sys.stderr, flush=True)
    for size in playbook_sizes:
        found = plan_waves.measure_playbook(size, workdir / f"plan-{size}")
        rows.append({"run": "plan in playbook (task)", "hosts": size, "runs": 1, "wall": found["plan_task_s"], "cpu": None, "trips": None,
                     "each": [], "play_wall": found["play_s"], "play_cpu": found["cpu_s"], "peak_rss_mib": found["peak_rss_mib"]})
        print(f"  plan in playbook {size}: task {found['plan_task_s']:.2f} s, play {found['play_s']:.1f} s", file=sys.stderr, flush=True)
    return rows


def audit_rows(runs, workdir):
    """The audit callback off and on, from bench/audit_overhead.py's own run."""
    out = workdir / "audit-overhead.json"
    subprocess.run([sys.executable, str(BENCH / "audit_overhead.py"), "--runs", str(runs), "--json", str(out)], stdout=subprocess.DEVNULL, check=False)
    data = json.loads(out.read_text(encoding="utf-8"))
    label = f"audit {{}} ({data['tasks']} tasks)"
    return [summarise(label.format(side), data["hosts"], [dict(run, trips=None) for run in data["runs"][side]]) for side in ("off", "on")]


def main():
    """Run it all, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[20, 50], help="fleet sizes (default 20 50)")
    parser.add_argument("--runs", type=int, default=3, help="cold runs of each fleet command (default 3)")
    parser.add_argument("--plan-sizes", type=int, nargs="*", default=[1000, 10000, 100000], help="hosts planned directly")
    parser.add_argument("--playbook-sizes", type=int, nargs="*", default=[1000, 10000], help="inventory sizes planned inside ansible-playbook")
    parser.add_argument("--audit-runs", type=int, default=3, help="runs each way of the audit callback bench (0: skip it)")
    parser.add_argument("--json", type=Path, default=REPO / "tests" / "output" / "speed.json", help="where to write the results")
    args = parser.parse_args()
    machine = machine_info()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fp-bench-speed-") as tmp:
        work = Path(tmp)
        for count in args.hosts:
            rows += fleet_rows(count, args.runs, work / f"fleet-{count}")
        rows += plan_rows(args.plan_sizes, args.playbook_sizes, work)
        if args.audit_runs:
            rows += audit_rows(args.audit_runs, work)
    machine["load_after"] = os.getloadavg()
    rows = with_ratios(rows)
    print(f"{machine['cpus']} CPUs, {machine['platform']}, {machine['ansible_core']}; load average (1 min) "
          f"{machine['load_before'][0]:.2f} before, {machine['load_after'][0]:.2f} after")
    print("\n".join(table(rows)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report(rows, machine), indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
