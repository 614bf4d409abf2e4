"""Benchmark: what the fleetpatch.rollout.audit callback costs a run, on a 200-task play, with it on and off.

    PYTHONPATH=tools .venv/bin/python bench/audit_overhead.py [--runs 7] [--tasks 200] [--hosts 2] [--json PATH]

The play (written afresh into a temporary directory) runs TASKS tasks on HOSTS hosts reached with the local
connection, a mix a callback sees in a real play: a quarter run a module that reports a change
(``ansible.builtin.command``), a quarter print a message (``ansible.builtin.debug``), a quarter set a fact, a quarter
are skipped by their condition. With the callback on, every task result of every host becomes a signed record
(``FLEETPATCH_AUDIT_HMAC_KEY_FILE`` set) in one log that grows over the runs, as a real trail does.

One warm-up run each way, then RUNS pairs, the order flipped every pair (on-off, off-on, ...), so a slow spell of a
machine shared with others falls on both sides. For each run: the wall time, and the controller's CPU time (user and
system of ansible-playbook and every process it waited for: its forked workers and the modules they ran). The table
shows the median of each side and the ratio on/off; the last line says PASS when the callback adds less than 5 % to
both medians, FAIL otherwise. The log is verified at the end (chain, HMACs, head file, one record per task result),
so a callback that wrote nothing cannot pass. Every run, the medians and the load average before and after are
written as JSON to PATH (default ``tests/output/audit-overhead.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetpatch_dev import ansible_env

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
LIMIT = 0.05
KINDS = ("changed", "ok", "fact", "skipped")


def playbook(tasks: int) -> str:
    """The play: ``tasks`` tasks cycling through a changed, an ok, a set_fact and a skipped one."""
    lines = ["---", "- name: Audit overhead bench", "  hosts: bench", "  gather_facts: false", "  tasks:"]
    for number in range(tasks):
        kind = KINDS[number % len(KINDS)]
        lines.append(f"    - name: Task {number:03d} ({kind})")
        if kind == "changed":
            lines += ['      ansible.builtin.command: "true"', "      changed_when: true"]
        elif kind == "ok":
            lines += ["      ansible.builtin.debug:", f'        msg: "step {number} on {{{{ inventory_hostname }}}}"']
        elif kind == "fact":
            lines += ["      ansible.builtin.set_fact:", f"        bench_step: {number}"]
        else:
            lines += ["      ansible.builtin.debug:", '        msg: "never"', "      when: bench_never | default(false)"]
    return "\n".join(lines) + "\n"


def inventory(hosts: int) -> str:
    """``hosts`` hosts in the group ``bench``, each reached with the local connection."""
    body = "".join(f"    bench-{number:02d}:\n      ansible_connection: local\n" for number in range(1, hosts + 1))
    return f"bench:\n  hosts:\n{body}"


def measured(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for) of a command that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def verified(log: Path, key_file: Path, expected_tasks: int) -> dict:
    """The verifier's result on the bench's log; raises SystemExit when it is not intact or a record is missing."""
    sys.path.insert(0, str(REPO / "plugins" / "plugin_utils"))
    import _audit  # pylint: disable=import-outside-toplevel,import-error  # standard library only, loaded by path as bin/fleetpatch-audit does

    result = _audit.verify(log, key=_audit.read_key(key_file), head=f"{log}.head")
    tasks = sum(1 for line in log.read_text(encoding="utf-8").splitlines() if json.loads(line)["event"] == "task")
    if not result["ok"] or tasks != expected_tasks:
        raise SystemExit(f"the bench's audit log is not what the runs should have written ({tasks} task records, {expected_tasks} expected):\n"
                         + _audit.format_report(result))
    return result


def main() -> int:
    """Run the bench, print the table, write the JSON; exit status 0 on PASS, 1 on FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs each way, after a warm-up run each way (default 7)")
    parser.add_argument("--tasks", type=int, default=200, help="tasks in the play (default 200)")
    parser.add_argument("--hosts", type=int, default=2, help="hosts the play runs on, all local (default 2)")
    parser.add_argument("--json", type=Path, default=REPO / "tests" / "output" / "audit-overhead.json", help="where to write the results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fp-bench-audit-") as tmp:
        work = Path(tmp)
        (work / "play.yml").write_text(playbook(args.tasks), encoding="utf-8")
        (work / "inventory.yml").write_text(inventory(args.hosts), encoding="utf-8")
        key_file = work / "audit.key"
        key_file.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        log = work / "audit" / "audit.jsonl"
        off = ansible_env.prepare(work / "ansible", forks=args.hosts)
        off.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        on = dict(off, ANSIBLE_CALLBACKS_ENABLED="fleetpatch.rollout.audit", FLEETPATCH_AUDIT_LOG=str(log),
                  FLEETPATCH_AUDIT_HMAC_KEY_FILE=str(key_file))
        argv = [str(BIN / "ansible-playbook"), "-i", str(work / "inventory.yml"), str(work / "play.yml")]
        load_before = os.getloadavg()
        measured(argv, on)  # warm-up: the page cache, Python's bytecode, the collection link
        measured(argv, off)
        runs = {"on": [], "off": []}
        for pair in range(args.runs):
            for side in (("on", "off") if pair % 2 == 0 else ("off", "on")):
                wall, cpu = measured(argv, on if side == "on" else off)
                runs[side].append({"wall": round(wall, 3), "cpu": round(cpu, 3)})
                print(f"run {pair + 1}/{args.runs} {side:3}: wall {wall:6.2f} s, cpu {cpu:6.2f} s", file=sys.stderr, flush=True)
        load_after = os.getloadavg()
        results = args.tasks * args.hosts
        check = verified(log, key_file, results * (args.runs + 1))

    median = {side: {metric: statistics.median(run[metric] for run in runs[side]) for metric in ("wall", "cpu")} for side in runs}
    ratio = {metric: median["on"][metric] / median["off"][metric] for metric in ("wall", "cpu")}
    passed = all(value - 1 < LIMIT for value in ratio.values())
    print(f"audit callback overhead: {args.tasks} tasks x {args.hosts} hosts ({results} task results a run), median of {args.runs} runs each way")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); {os.cpu_count()} CPUs")
    print(f"{'callback':10} {'wall s':>8} {'cpu s':>8}")
    for side in ("off", "on"):
        print(f"{side:10} {median[side]['wall']:>8.2f} {median[side]['cpu']:>8.2f}")
    print(f"{'on/off':10} {ratio['wall']:>8.3f} {ratio['cpu']:>8.3f}")
    verdict = "PASS" if passed else "FAIL"
    print(f"{verdict}: the callback adds {100 * (ratio['wall'] - 1):+.1f} % wall and {100 * (ratio['cpu'] - 1):+.1f} % CPU "
          f"(limit {100 * LIMIT:.0f} %); its log verified, {check['records']} records")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "tasks": args.tasks, "hosts": args.hosts, "runs": runs, "median": median, "ratio": ratio, "limit": LIMIT, "pass": passed,
        "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(), "records": check["records"],
    }, indent=2) + "\n", encoding="utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
