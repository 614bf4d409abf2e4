"""playbooks/rollout.yml on a real 12-host, 3-region fleet with two 3-member clusters."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import HostSpec, demo_layout
from fleetpatch_dev.watch import QuorumWatch

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
DETECT = REPO / "playbooks" / "detect.yml"
PLAN = REPO / "playbooks" / "plan.yml"
EMERGENCY = {"emergency": {"decided_by": "carol", "justification": "exploited in the wild"}}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def once(run, task):
    """The result of a run_once task (reported for the first host of the play)."""
    (result,) = run.results(task).values()
    return result


def audit_env(tmp_path):
    return {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(tmp_path / "audit" / "audit.jsonl")}


def audit_records(tmp_path, event):
    """The records of one kind of event in the audit log of audit_env(tmp_path)."""
    lines = (tmp_path / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == event]


def rollout_vars(manifest, **extra):
    return {"fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob",
            "fleetpatch_soak": 1, **extra}


def versions(fleet, names):
    return {name: fleet.service_version(name) for name in names}


def version_or_none(fleet, name):
    """What the host's service answers, or None while it cannot answer (a restart, a reload)."""
    try:
        return fleet.service_version(name, timeout=2)
    except OSError:
        return None


def host_state(fleet, name):
    """The host's fleetpatch state file, parsed (it must parse); {} on a host fleetpatch never touched."""
    result = fleet.ssh(name, "test ! -e /var/lib/fleetpatch/state.json || cat /var/lib/fleetpatch/state.json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout or "{}")


def wait_for_modules_to_end(fleet, names, timeout=60.0):
    """Wait until no module started by a killed controller still runs on the hosts (pipelined: a bare python3)."""
    deadline = time.monotonic() + timeout
    for name in names:
        while fleet.ssh(name, "pgrep -fx /usr/bin/python3").returncode == 0:
            assert time.monotonic() < deadline, f"a module still runs on {name}"
            time.sleep(0.2)


def test_one_command_patches_the_fleet_canary_then_regions_keeping_quorum(fleet, ansible, tmp_path):
    # Two regions, a 3-member cluster (the secondaries one at a time, then the primary), a host already fixed: 5 waves.
    # The 12-host, 3-region, 2-cluster demo layout is rolled out in CI by tests/tools/test_demo.py.
    layout = demo_layout(6, regions=2, clusters=1)
    fleet.add(layout)
    inventory = fleet.write_inventory()
    # A restart patch: each member really goes down for a moment, so the quorum watch has something to see.
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency", **{"class": "restart"})
    members = {spec.name: spec.cluster for spec in layout if spec.cluster}
    with QuorumWatch(fleet, members) as watch:
        run = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), env=audit_env(tmp_path))
    assert run.returncode == 0, run.stdout[-6000:]
    assert set(versions(fleet, [s.name for s in layout]).values()) == {"7.0.28"}
    assert watch.samples > 20 and all(count <= 1 for count in watch.worst.values()), watch.worst

    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    waves = {entry["host"]: wave["index"] for wave in plan["waves"] for entry in wave["hosts"]}
    assert plan["waves"][0]["name"] == "canary"
    fixed = [spec.name for spec in layout if spec.version == "7.0.28"]
    assert [(e["host"], e["reason"]) for e in plan["excluded"]] == [(name, "fixed") for name in fixed]
    for cluster in {spec.cluster for spec in layout if spec.cluster}:
        primary = next(s.name for s in layout if s.cluster == cluster and s.cluster_role == "primary")
        secondaries = [s.name for s in layout if s.cluster == cluster and s.cluster_role == "secondary"]
        assert all(waves[primary] > waves[name] for name in secondaries), (cluster, waves)
        assert len({waves[name] for name in secondaries}) == len(secondaries)  # never two members in one wave

    rows = once(run, "Collect every host's outcome")["ansible_facts"]["rollout_outcomes"]["hosts"]
    assert {row["host"]: row["status"] for row in rows} == {s.name: ("unchanged" if s.name in fixed else "patched") for s in layout}
    summary = once(run, "Print the summary per region and per host")["msg"]
    assert summary[0].split()[:4] == ["REGION", "PATCHED", "UNCHANGED", "DEFERRED"]
    assert len(audit_records(tmp_path, "approval")) == 1 and len(audit_records(tmp_path, "gate")) == len(plan["waves"])
    (recorded,) = audit_records(tmp_path, "plan")  # who decided to override every window, and why
    assert recorded["data"]["plan"]["policy"]["emergency"] == EMERGENCY["emergency"]
    assert sorted(recorded["data"]["hosts"]) == sorted(waves)
    overrides = recorded["data"]["overrides"]  # the hosts outside their window now: never none (the windows' days differ)
    assert overrides and {o["reason"] for o in overrides} == {"emergency"} and {o["host"] for o in overrides} <= set(waves)

    again = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), env=audit_env(tmp_path))
    assert again.returncode == 0, again.stdout[-4000:]
    assert once(again, "Plan the waves")["ansible_facts"]["rollout_plan"]["waves"] == []
    assert all(stats["changed"] == 0 for stats in again.stats.values())


def test_a_bad_release_fails_the_canary_which_is_rolled_back_and_nothing_else_changes(fleet, ansible, tmp_path):
    layout = demo_layout(4)  # a canary, two hosts for the later waves and one already fixed: enough to see no later wave start
    fleet.add(layout)
    before = versions(fleet, [s.name for s in layout])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.29"), version="7.0.29", urgency="emergency", compatible_with=">=7.0.26,<7.1")
    run = ansible(ROLLOUT, fleet.write_inventory(), extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), env=audit_env(tmp_path))
    assert run.returncode != 0
    assert versions(fleet, [s.name for s in layout]) == before
    stop = once(run, "Stop the rollout, the error budget is spent")["msg"]
    assert stop.startswith("wave canary: 1 failed against an error budget of 0 (")
    failures = once(run, "Gate - count the wave's failures against the error budget")["ansible_facts"]["__rollout_gate"]["failures"]
    assert [f["why"] for f in failures] == ["error_rate 100.0 > 0.0"]
    assert "Roll out wave by wave, with a gate after each" in run.stdout
    waves_started = [e for e in run.events if e["event"] == "runner_on_ok" and e["event_data"].get("task", "").startswith("Open the wave")]
    assert len(waves_started) == 1  # no later wave started


@pytest.mark.parametrize(("budget", "halted"), [
    (2, True), (3, False),
    # Extended (scripts/test-extended): the same gate, a percentage exceeded, a count above the failures and a percentage
    # equalled; the gate's table tests (tests/unit/plugins/plugin_utils/test__gate.py) have every such value.
    pytest.param("66%", True, marks=pytest.mark.extended), pytest.param(4, False, marks=pytest.mark.extended),
    pytest.param("100%", False, marks=pytest.mark.extended),
])
def test_the_error_budget_trips_only_when_exceeded(fleet, ansible, tmp_path, budget, halted):
    """Three canaries of a bad release fail: a budget of 2 (or 66 % of 3, rounded down to 1) stops the rollout,
    a budget of 3 (equalled) or 4 lets it go on."""
    fleet.add([HostSpec(name=name, version="7.0.27", region="eu-west") for name in ("b1", "b2", "b3")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.29"), version="7.0.29", urgency="emergency")
    policy = {**EMERGENCY, "canary": {"count": 3, "spread": "regions"}}
    run = ansible(ROLLOUT, fleet.write_inventory(), env=audit_env(tmp_path),
                  extravars=rollout_vars(manifest, fleetpatch_policy=policy, fleetpatch_error_budget=budget, fleetpatch_soak=0))
    assert (run.returncode != 0) is halted, run.stdout[-3000:]
    gate = once(run, "Gate - count the wave's failures against the error budget")["ansible_facts"]
    assert [f["status"] for f in gate["__rollout_gate"]["failures"]] == ["rolled_back"] * 3, gate["__rollout_gate"]["failures"]
    assert gate["__rollout_gate"]["halted"] is halted
    assert versions(fleet, ["b1", "b2", "b3"]) == {"b1": "7.0.27", "b2": "7.0.27", "b3": "7.0.27"}


def test_check_mode_prints_the_plan_and_touches_nothing(fleet, ansible, tmp_path):
    layout = demo_layout(12)
    fleet.add(layout)
    before = versions(fleet, [s.name for s in layout])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    run = ansible(ROLLOUT, fleet.write_inventory(), extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), check=True, env=audit_env(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:]
    table = once(run, "Print the plan")["msg"]
    assert table[1].split() == ["WAVE", "NAME", "HOST", "REGION", "CLUSTER", "REASON"] and len(table) >= 14
    assert versions(fleet, [s.name for s in layout]) == before
    assert all(stats["changed"] == 0 for stats in run.stats.values())


def test_offline_planning_from_a_detection_report_prints_the_plan_a_live_check_prints(fleet, ansible, tmp_path):
    """A change board reviews the plan made from yesterday's detection report; it is the plan a live --check makes."""
    layout = demo_layout(6, regions=2, clusters=1)
    fleet.add(layout)
    down = layout[-1].name
    fleet.stop(down)  # unreachable at detection: the report says so, and the plan counts it the same way
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    report = tmp_path / "detect.json"
    detected = ansible(DETECT, inventory, extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_detect_report": str(report)})
    assert detected.returncode == 4, detected.stdout[-3000:]  # the host that is down

    when = {"fleetpatch_now": "2026-03-03T12:00:00Z", "fleetpatch_policy": EMERGENCY}
    live = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, **when), check=True, env=audit_env(tmp_path))
    assert live.returncode == 4, live.stdout[-3000:]
    # No SSH at all: any connection to a host would run /bin/false and fail as unreachable.
    # The plan is stored too, for the jobs that run its waves: the file, and its sha256 in the audit trail.
    plan_file = tmp_path / "plan.json"
    offline = ansible(PLAN, inventory, extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_detect_report": str(report),
                                                  "ansible_ssh_executable": "/bin/false", "fleetpatch_plan_file": str(plan_file), **when},
                      env=audit_env(tmp_path))
    assert offline.returncode == 0, offline.stdout[-3000:]
    stored = json.loads(plan_file.read_text(encoding="utf-8"))
    (recorded,) = audit_records(tmp_path, "plan")
    assert recorded["data"]["plan_sha256"] == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert stored["plan"] == once(offline, "Plan the waves")["ansible_facts"]["rollout_plan"]
    assert once(offline, "Print the plan")["msg"] == once(live, "Print the plan")["msg"]
    offline_plan, live_plan = (once(run, "Plan the waves")["ansible_facts"]["rollout_plan"] for run in (offline, live))
    assert (offline_plan["waves"], offline_plan["failures"]) == (live_plan["waves"], live_plan["failures"])
    assert [failure["host"] for failure in live_plan["failures"]] == [down]
    assert all(stats["unreachable"] == 0 for stats in offline.stats.values())
    assert sum(stats["changed"] for stats in offline.stats.values()) == 1  # the plan file, on the controller

    # A report of another component is refused before anything is planned, naming the field.
    other = json.loads(report.read_text(encoding="utf-8")) | {"component": "otherd"}
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    refused = ansible(PLAN, inventory, extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_detect_report": str(tmp_path / "other.json"),
                                                  "ansible_ssh_executable": "/bin/false", **when})
    assert refused.returncode == 2
    assert "component: the report is of component 'otherd', the manifest FP-2025-14847 of 'fpdemo'" in refused.stdout


def test_a_surveys_scalar_answers_set_the_policy(fleet, ansible, tmp_path):
    """What a job template's survey passes, every answer a scalar and the numbers as text, plans as the policy mapping would."""
    layout = demo_layout(6, regions=3, clusters=0)
    fleet.add(layout)
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    survey = {"fleetpatch_canary_count": "2", "fleetpatch_region_order": "ap-south,eu-west", "fleetpatch_batch_count": "1",
              "fleetpatch_emergency_decided_by": "carol", "fleetpatch_emergency_justification": "exploited in the wild",
              "fleetpatch_error_budget": "1", "fleetpatch_soak": "0", "fleetpatch_plan_only": "true"}
    run = ansible(ROLLOUT, fleet.write_inventory(), extravars={**rollout_vars(manifest), **survey}, env=audit_env(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:]
    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    region = {spec.name: spec.region for spec in layout}
    canary, *waves = plan["waves"]
    assert (canary["name"], len(canary["hosts"])) == ("canary", 2)
    assert all(len(wave["hosts"]) == 1 for wave in waves)
    order = [region[wave["hosts"][0]["host"]] for wave in waves]
    assert sorted(set(order), key=order.index) == [r for r in ("ap-south", "eu-west", "us-east") if r in order]
    assert plan["summary"]["emergency"] == {"decided_by": "carol", "justification": "exploited in the wild"}
    assert all(stats["changed"] == 0 for stats in run.stats.values())


def test_killed_mid_wave_a_rerun_patches_the_rest_and_judges_the_hosts_patched_but_never_judged(fleet, ansible, tmp_path):
    """The controller dies (SIGKILL to ansible-playbook and its workers) as soon as the first host of the wave after
    the canary runs the fix. With two forks a wave's hosts are patched two at a time, so the rest of that wave has
    not started, and the hosts it patched were never soaked nor gated. The re-run continues: it patches the hosts
    the first run did not finish, and soaks and gates the ones it patched but never judged before it counts them
    as patched; the hosts judged healthy (the canary) are left alone."""
    layout = demo_layout(5, regions=1, clusters=0)  # the canary, then a wave of 3: the kill falls in it
    fleet.add(layout)
    inventory = fleet.write_inventory()
    # A 2 s soak in rounds 1 s apart (3 rounds; a single check is 1), judged on errors only: the test judges the
    # re-run, not the latency of a busy test machine.
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency",
                               **{"monitoring.interval": "1s", "monitoring.thresholds": {"max_error_rate": 0}})
    affected = [spec.name for spec in layout if spec.version != "7.0.28"]
    extravars = rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_soak=2)

    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(ROLLOUT), "-e", json.dumps(extravars)]
    log = tmp_path / "killed.log"
    with log.open("wb") as output:
        first = subprocess.Popen(command, env={**ansible.env, **audit_env(tmp_path), "ANSIBLE_FORKS": "2"}, stdout=output,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while len([name for name in affected if version_or_none(fleet, name) == "7.0.28"]) < 2:  # the canary, then one more
                assert first.poll() is None, log.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, "the first run patched fewer than 2 hosts in 5 minutes"
                time.sleep(0.02)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    wait_for_modules_to_end(fleet, affected)

    first_plan = {host: int(wave) for wave, host in re.findall(r'^ +"(\d+) +\S+(?: \d+/\d+)? +(\S+-\d\d) ', log.read_text(encoding="utf-8"), re.M)}
    assert set(first_plan) == set(affected), first_plan
    finished = {name for name in affected if version_or_none(fleet, name) == "7.0.28" and not host_state(fleet, name).get("journal")}
    unfinished = set(affected) - finished
    killed_wave = max(first_plan[name] for name in finished)
    assert killed_wave > 1 and {name for name in unfinished if first_plan[name] == killed_wave}, (first_plan, finished)  # mid-wave
    # Patched, but killed before the end of its soak: no judged mark on its apply's record.
    unjudged = {name for name in finished if not host_state(fleet, name)["applied"][-1].get("judged")}
    assert unjudged and {name for name in unjudged if first_plan[name] == killed_wave} == unjudged, (first_plan, unjudged)
    canary = {name for name in finished if first_plan[name] == 1}
    assert canary and not canary & unjudged  # soaked and gated before the next wave started

    # The killed run still holds the fleet lock and its hosts: a re-run is refused, names it, and changes nothing.
    before = {name: (version_or_none(fleet, name), host_state(fleet, name)) for name in affected}
    refused = ansible(ROLLOUT, inventory, extravars=extravars, env=audit_env(tmp_path))
    assert refused.returncode != 0
    assert f"pid {first.pid} on " in once(refused, "Take the fleet lock (a held one is refused with its holder named)")["msg"]
    assert f"its process {first.pid} no longer runs. If that run is gone, take its lock over" in refused.stdout
    assert {name: (version_or_none(fleet, name), host_state(fleet, name)) for name in affected} == before

    rerun = ansible(ROLLOUT, inventory, extravars={**extravars, "fleetpatch_take_over_lock": True}, env=audit_env(tmp_path))
    assert rerun.returncode == 0, rerun.stdout[-6000:]
    (taken,) = [record for record in audit_records(tmp_path, "lock") if record["data"]["lock"] == "taken over"]
    assert taken["data"]["previous"]["pid"] == first.pid
    # The killed run's host locks: its fleet lock was taken over, so it is known to have ended, and they are reclaimed.
    (hosts_taken,) = [record for record in audit_records(tmp_path, "lock") if record["data"]["lock"] == "host locks taken"]
    assert set(hosts_taken["data"]["reclaimed"]) == {spec.name for spec in layout} and hosts_taken["data"]["taken_over"] == []
    assert {previous["owner"] for previous in hosts_taken["data"]["previous"]} == {taken["data"]["previous"]["owner"]}
    assert set(versions(fleet, [spec.name for spec in layout]).values()) == {"7.0.28"}
    plan = once(rerun, "Plan the waves")["ansible_facts"]["rollout_plan"]
    entries = {entry["host"]: entry for wave in plan["waves"] for entry in wave["hosts"]}
    assert set(entries) == unfinished | unjudged
    assert {name for name, entry in entries.items() if entry["judge_only"]} == unjudged
    applied = rerun.results("Apply the patch release (journaled, switched atomically, reloaded, confirmed)")
    assert {host for host, result in applied.items() if result.get("changed")} == unfinished
    assert {host: applied[host]["judged"] for host in unjudged} == dict.fromkeys(unjudged, False)
    # Each planned host was soaked (fleetpatch_soak, not the single check of a host judged before) and its verdict
    # recorded on it; the gates counted them.
    health = rerun.results("Judge the patched service's health over the soak, and record on the host that its apply was judged healthy")
    assert {host for host, result in health.items() if not result.get("skipped")} == unfinished | unjudged
    for host in unfinished | unjudged:
        result = health[host]
        assert result["healthy"] and result["rounds"] >= 2 and TIMESTAMP.match(result["judged"]), (host, result)  # one check is 1 round
    gates = audit_records(tmp_path, "gate")[-len(plan["waves"]):]
    assert [gate["data"]["decision"] for gate in gates] == ["proceed"] * len(plan["waves"])
    assert {host for host, stats in rerun.stats.items() if stats["changed"]} == unfinished | unjudged  # the judged mark
    rows = once(rerun, "Collect every host's outcome")["ansible_facts"]["rollout_outcomes"]["hosts"]
    assert {row["host"]: row["status"] for row in rows} == {
        name: ("patched" if name in unfinished | unjudged else "unchanged") for name in fleet.names}
    for name in affected:
        state = host_state(fleet, name)
        assert state["journal"] is None and [entry["version"] for entry in state["applied"]] == ["7.0.28"], (name, state)
        assert TIMESTAMP.match(state["applied"][0]["judged"]), (name, state)


def fleet_lock(tmp_path):
    """The fleet lock file of audit_env(tmp_path)'s trail, parsed; None before any run took it."""
    path = tmp_path / "audit" / "audit.jsonl.fleet-lock"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def audit_verifies(tmp_path):
    """bin/fleetpatch-audit verify on the trail of audit_env(tmp_path): (exit code, output)."""
    result = subprocess.run([sys.executable, str(REPO / "bin" / "fleetpatch-audit"), "verify", str(tmp_path / "audit" / "audit.jsonl")],
                            capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def test_a_second_rollout_started_a_second_later_is_refused_naming_the_first_which_completes(fleet, ansible, tmp_path):
    """Two identical rollouts on one controller and one audit trail, the second started one second after the first
    (and not before the first holds the fleet lock, so that the order is the test's, not the machine's load's): the
    second is refused at once, names the first, and changes nothing; the first patches every host exactly once."""
    names = ["l1", "l2", "l3", "l4"]
    fleet.add([HostSpec(name=name, version="7.0.26", region="eu-west") for name in names])
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    extravars = rollout_vars(manifest, fleetpatch_policy=EMERGENCY)
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(ROLLOUT), "-e", json.dumps(extravars)]
    log = tmp_path / "first.log"
    with log.open("wb") as output:
        first = subprocess.Popen(command, env={**ansible.env, **audit_env(tmp_path)}, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            started = time.monotonic()
            while not (fleet_lock(tmp_path) or {}).get("holder") or time.monotonic() - started < 1:
                assert first.poll() is None and time.monotonic() - started < 120, log.read_text(encoding="utf-8")[-3000:]
                time.sleep(0.05)
            second = ansible(ROLLOUT, inventory, extravars=extravars, env=audit_env(tmp_path))
            assert first.poll() is None, "the first rollout ended before the second was refused: the test proves nothing"
            assert first.wait(timeout=600) == 0, log.read_text(encoding="utf-8")[-6000:]
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()

    assert second.returncode != 0
    refusal = once(second, "Take the fleet lock (a held one is refused with its holder named)")
    assert re.fullmatch(
        rf"fleetpatch\.rollout\.fleet_lock: another fleetpatch run holds the fleet lock {re.escape(str(tmp_path))}/audit/audit\.jsonl\.fleet-lock: "
        rf"bob for FP-2025-14847 since \S+Z, pid {first.pid} on \S+ \(run [0-9a-f]{{32}}\); it is still running: wait for it to end",
        refusal["msg"]), refusal["msg"]
    assert all(stats["changed"] == 0 for stats in second.stats.values()), second.stats
    assert "Detect what every host runs" not in second.stdout  # refused before it read any host

    assert versions(fleet, names) == dict.fromkeys(names, "7.0.28")
    for name in names:
        state = host_state(fleet, name)
        assert [entry["version"] for entry in state["applied"]] == ["7.0.28"] and state["journal"] is None, (name, state)
        assert "lease" not in state, (name, state)  # released at the end
    approved_runs = {record["run_id"] for record in audit_records(tmp_path, "approval")}
    assert len(approved_runs) == 2  # both runs were approved; only one held the lock
    (acquired,) = [record for record in audit_records(tmp_path, "lock") if record["data"]["lock"] == "acquired"]
    (released,) = [record for record in audit_records(tmp_path, "lock") if record["data"]["lock"] == "released"]
    assert acquired["run_id"] == released["run_id"] and acquired["data"]["holder"]["pid"] == first.pid
    assert fleet_lock(tmp_path) == {"format": 1, "holder": None, "ended": [acquired["run_id"]]}
    assert audit_verifies(tmp_path)[0] == 0, audit_verifies(tmp_path)[1]


def test_a_host_locked_by_another_run_stops_the_rollout_before_anything_changes(fleet, ansible, tmp_path):
    """A run from another controller (another audit trail) holds one host: the rollout is refused naming it, no host
    changes, and the locks it took on the other hosts are released. Taking the lock over lets it run, recorded."""
    names = ["m1", "m2", "m3"]
    fleet.add([HostSpec(name=name, version="7.0.26", region="eu-west") for name in names])
    inventory = fleet.write_inventory()
    foreign = ansible("lock.yml", inventory, limit="m2", extravars={"fp_owner": "run-elsewhere", "fp_holder": "dave"})
    assert foreign.returncode == 0, foreign.stdout[-3000:]
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")

    refused = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), env=audit_env(tmp_path))
    assert refused.returncode != 0
    message = once(refused, "Refuse, naming the other run")["msg"]
    assert re.fullmatch(r"m2: this host is locked by another fleetpatch run: dave for FP-2025-14847 since \S+Z, from ctl-elsewhere "
                        r"\(run run-elsewhere\); nothing was changed\. Wait for that run to end; if it is gone \(killed\), re-run the rollout "
                        r"with take-over of its lock", message), message
    assert versions(fleet, names) == dict.fromkeys(names, "7.0.26")
    assert {name: host_state(fleet, name) for name in ("m1", "m3")} == {"m1": {}, "m3": {}}  # locked, released: no state file left
    assert host_state(fleet, "m2")["lease"]["owner"] == "run-elsewhere"
    assert fleet_lock(tmp_path)["holder"] is None

    taken = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_take_over_lock=True),
                    env=audit_env(tmp_path))
    assert taken.returncode == 0, taken.stdout[-6000:]
    assert versions(fleet, names) == dict.fromkeys(names, "7.0.28")
    records = [r for r in audit_records(tmp_path, "lock") if r["data"].get("taken_over")]
    assert [(r["data"]["taken_over"], r["data"]["previous"][0]["owner"], r["data"]["previous"][0]["holder"]) for r in records] == [
        (["m2"], "run-elsewhere", "dave")]
    assert all("lease" not in host_state(fleet, name) for name in names)
    assert audit_verifies(tmp_path)[0] == 0


# 2026-03-03T01:30Z is a Tuesday, 02:30 in Berlin: a Tuesday 02:00-06:00 Berlin window is open (until 05:00Z), a
# Saturday one is closed (next: 2026-03-07T01:00Z).
NOW = "2026-03-03T01:30:00Z"
TUESDAY = {"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
SATURDAY = {"days": ["sat"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
NEXT_SATURDAY = "2026-03-07T01:00:00Z"


def window_fleet(fleet, windows):
    """One host per (name, customer, window), all on affected 7.0.26, plus one already on the fix."""
    fleet.add([HostSpec(name=name, customer=customer, maintenance_window=window) for name, customer, window in windows]
              + [HostSpec(name="fixed", customer="acme", version="7.0.28", maintenance_window=SATURDAY)])
    return fleet.write_inventory()


def statuses(run):
    rows = once(run, "Collect every host's outcome")["ansible_facts"]["rollout_outcomes"]["hosts"]
    return {row["host"]: (row["status"], row["detail"]) for row in rows}


def test_a_routine_patch_patches_hosts_in_their_window_and_defers_the_rest_to_their_next(fleet, ansible, tmp_path):
    inventory = window_fleet(fleet, [("open", "acme", TUESDAY), ("closed", "globex", SATURDAY), ("anytime", "initech", None)])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="routine")
    run = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_now=NOW, fleetpatch_soak=0), env=audit_env(tmp_path))
    assert run.returncode == 0, run.stdout[-6000:]

    assert versions(fleet, fleet.names) == {"open": "7.0.28", "closed": "7.0.26", "anytime": "7.0.28", "fixed": "7.0.28"}
    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    assert [(d["host"], d["reason"], d["next_window"]) for d in plan["deferred"]] == [("closed", "outside_window", NEXT_SATURDAY)]
    assert {entry["host"]: entry["window_end"] for wave in plan["waves"] for entry in wave["hosts"]} == {
        "open": "2026-03-03T05:00:00Z", "anytime": None}
    assert statuses(run) == {
        "open": ("patched", ""), "anytime": ("patched", ""), "closed": ("deferred", f"next window {NEXT_SATURDAY}"),
        "fixed": ("unchanged", "runs 7.0.28, at or above the fixed version 7.0.28"),
    }
    (deferral,) = host_state(fleet, "closed")["deferred"]
    assert (deferral["patch"], deferral["until"]) == ("FP-2025-14847", NEXT_SATURDAY)
    assert "routine patch" in deferral["reason"]
    assert not host_state(fleet, "open").get("deferred")

    # Saturday 03:00 Berlin: the deferred host's window is open, the re-run patches it and clears its deferral.
    later = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_now="2026-03-07T02:00:00Z", fleetpatch_soak=0),
                    env=audit_env(tmp_path))
    assert later.returncode == 0, later.stdout[-6000:]
    assert statuses(later)["closed"] == ("patched", "")
    assert host_state(fleet, "closed")["deferred"] == []


def test_an_urgent_patch_overrides_only_the_windows_of_customers_told_the_lead_time_before(fleet, ansible, tmp_path):
    inventory = window_fleet(fleet, [("told", "acme", SATURDAY), ("late", "globex", SATURDAY), ("untold", "initech", SATURDAY)])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="urgent")  # notify.lead_time: 15h
    notifications = tmp_path / "notifications.yml"
    notifications.write_text(json.dumps({"notifications": [
        {"customer": "acme", "patch_id": "FP-2025-14847", "notified_at": "2026-03-02T10:30:00Z", "channel": "email", "by": "jane"},  # 15 h
        {"customer": "globex", "patch_id": "FP-2025-14847", "notified_at": "2026-03-02T10:30:01Z", "channel": "phone", "by": "jane"},
        {"customer": "initech", "patch_id": "FP-2025-0001", "notified_at": "2026-01-01T00:00:00Z", "channel": "email", "by": "jane"},
    ]}), encoding="utf-8")
    run = ansible(ROLLOUT, inventory, env=audit_env(tmp_path),
                  extravars=rollout_vars(manifest, fleetpatch_now=NOW, fleetpatch_soak=0, fleetpatch_notifications=str(notifications)))
    assert run.returncode == 0, run.stdout[-6000:]

    assert versions(fleet, fleet.names) == {"told": "7.0.28", "late": "7.0.26", "untold": "7.0.26", "fixed": "7.0.28"}
    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    assert [entry["window"] for wave in plan["waves"] for entry in wave["hosts"]] == ["override"]
    assert {d["host"]: d["next_window"] for d in plan["deferred"]} == {"late": NEXT_SATURDAY, "untold": NEXT_SATURDAY}
    status = statuses(run)
    assert status["told"] == ("patched", "")
    assert status["late"] == status["untold"] == ("deferred", f"next window {NEXT_SATURDAY}")
    # The follow-up: globex's lead time passes one second after this run's now, long before Saturday.
    assert once(run, "Say when a next run would make progress on the deferred hosts")["msg"] == (
        "A next run makes progress at 2026-03-03T01:30:01Z or later: the lead time since customer globex's notice passes (late)")
    (recorded,) = audit_records(tmp_path, "plan")
    assert [(o["host"], o["customer"], o["reason"]) for o in recorded["data"]["overrides"]] == [("told", "acme", "urgent")]
    assert [(d["host"], d["customer"], d["next_window"]) for d in recorded["data"]["deferred"]] == [
        ("late", "globex", NEXT_SATURDAY), ("untold", "initech", NEXT_SATURDAY)]
    reasons = {name: host_state(fleet, name)["deferred"] for name in ("late", "untold")}
    assert reasons == {
        "late": [{"patch": "FP-2025-14847", "until": NEXT_SATURDAY, "at": reasons["late"][0]["at"], "reason": (
            "urgent patch: customer globex notified at 2026-03-02T10:30:01Z, lead time 15h not reached until 2026-03-03T01:30:01Z, "
            "so its window holds")}],
        "untold": [{"patch": "FP-2025-14847", "until": NEXT_SATURDAY, "at": reasons["untold"][0]["at"], "reason": (
            "urgent patch: customer initech has no pre-notification of FP-2025-14847, so its window holds")}],
    }


def test_a_host_lost_during_its_wave_counts_as_unknown_and_spends_the_budget(fleet, ansible, tmp_path):
    """A host of the second wave is powered off while the canary soaks: its wave cannot reach it, the gate counts it
    as "unknown" (never as success), the budget of 0 is exceeded, the wave is rolled back and the rollout stops."""
    fleet.add([HostSpec(name=name, version="7.0.26") for name in ("u1", "u2", "u3")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    extravars = rollout_vars(manifest, fleetpatch_policy={**EMERGENCY, "canary": {"count": 1}}, fleetpatch_soak=5)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("run", ansible(ROLLOUT, fleet.write_inventory(), extravars=extravars,
                                                                              env=audit_env(tmp_path))))
    runner.start()
    deadline = time.monotonic() + 180
    while not (canary := [name for name in ("u1", "u2", "u3") if version_or_none(fleet, name) == "7.0.28"]):
        assert runner.is_alive() and time.monotonic() < deadline, "the canary was never patched"
        time.sleep(0.05)
    lost, survivor = sorted({"u1", "u2", "u3"} - set(canary))
    fleet.stop(lost)
    runner.join()
    run = result["run"]

    assert run.returncode != 0
    gates = [r["ansible_facts"] for r in run.results("Gate - count the wave's failures against the error budget").values() if "ansible_facts" in r]
    (halting,) = [facts["__rollout_gate"] for facts in gates if facts["__rollout_gate"]["halted"]]
    assert [(f["host"], f["status"], f["why"]) for f in halting["failures"]] == [(lost, "unknown", "unreachable or failed during the wave")]
    assert {name: fleet.service_version(name) for name in (canary[0], survivor)} == {canary[0]: "7.0.28", survivor: "7.0.26"}
    assert statuses(run)[lost] == ("unknown", "unreachable or failed during the wave")
    assert statuses(run)[survivor][0] == "rolled back"


def test_a_host_unreachable_at_detection_stops_a_budget_0_rollout_before_anything_changes_unless_left_out(fleet, ansible, tmp_path):
    """One host of three is powered off before the rollout: with the default error budget of 0 the gate before the
    first wave stops the rollout, naming it, and no host changes. Left out by name, the rollout patches the others;
    with fleetpatch_unreachable=skip it goes on too (ansible-playbook exits 4: a host was unreachable). The audit
    trail's plan record keeps what was left out."""
    fleet.add([HostSpec(name=name, version="7.0.26") for name in ("up-1", "up-2", "down")])
    inventory = fleet.write_inventory()
    fleet.stop("down")
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    before = {name: (fleet.service_version(name), host_state(fleet, name)) for name in ("up-1", "up-2")}

    run = ansible(ROLLOUT, inventory, extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_soak=0), env=audit_env(tmp_path))
    assert run.returncode != 0
    stop = once(run, "Stop the rollout before its first wave, the error budget is spent")["msg"]
    assert stop.startswith("before the first wave: 1 host(s) in scope could not be reached at detection (down), against an error budget of 0; "
                           "nothing was patched."), stop
    assert {name: (fleet.service_version(name), host_state(fleet, name)) for name in ("up-1", "up-2")} == before
    assert not any(e["event_data"].get("task", "").startswith(("Open the wave", "Measure each planned", "Record on each deferred"))
                   for e in run.events if e["event"] == "runner_on_ok")
    (gate,) = audit_records(tmp_path, "gate")
    assert (gate["data"]["gate"], gate["data"]["decision"], gate["data"]["hosts"]) == ("before the first wave", "halt", ["down"])
    (recorded,) = audit_records(tmp_path, "plan")
    assert recorded["data"]["plan"]["left_out"] == {"exclude_hosts": [], "unreachable": "fail"}
    assert [(f["host"], f["status"]) for f in recorded["data"]["failures"]] == [("down", "unknown")]
    assert statuses(run)["down"][0] == "unknown" and statuses(run)["down"][1].startswith("unreachable at detection: ")
    assert {statuses(run)[name] for name in ("up-1", "up-2")} == {("not started", "the rollout stopped first")}

    left_out = ansible(ROLLOUT, inventory, env=audit_env(tmp_path),
                       extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_soak=0, fleetpatch_exclude_hosts=["down"]))
    assert left_out.returncode == 0, left_out.stdout[-6000:]
    assert versions(fleet, ["up-1", "up-2"]) == {"up-1": "7.0.28", "up-2": "7.0.28"}
    assert statuses(left_out)["down"] == ("left out", "left out by the operator (exclude_hosts)")
    assert left_out.stats["down"]["unreachable"] == 0  # not contacted
    assert audit_records(tmp_path, "plan")[-1]["data"]["plan"]["left_out"] == {"exclude_hosts": ["down"], "unreachable": "fail"}

    skipped = ansible(ROLLOUT, inventory, env=audit_env(tmp_path),
                      extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_soak=0, fleetpatch_unreachable="skip"))
    assert skipped.returncode == 4, skipped.stdout[-6000:]  # ansible-playbook's code for a host unreachable, nothing failed
    assert statuses(skipped)["down"][0] == "unknown" and statuses(skipped)["down"][1].endswith("left out (unreachable: skip)")
    assert audit_records(tmp_path, "plan")[-1]["data"]["plan"]["left_out"] == {"exclude_hosts": [], "unreachable": "skip"}
    # The halt, then the left-out run's gates after its waves: no gate before the first wave without failures at detection.
    waves = once(left_out, "Plan the waves")["ansible_facts"]["rollout_plan"]["waves"]
    assert [g["data"]["gate"] for g in audit_records(tmp_path, "gate")] == ["before the first wave"] + [f"after {w['name']}" for w in waves]


def test_a_canary_lost_during_its_soak_is_unknown_on_its_applied_version_and_the_halt_says_it_was_not_reached(fleet, ansible, tmp_path):
    """The canary is powered off while it soaks, after its apply completed: the gate counts it as unknown, the
    summary shows the version its apply installed, and the halt message says it could not be reached (its wave's
    rollback never ran on it), not that it was rolled back. The other host is never started."""
    fleet.add([HostSpec(name=name, version="7.0.26") for name in ("s1", "s2")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    extravars = rollout_vars(manifest, fleetpatch_policy={**EMERGENCY, "canary": {"count": 1}}, fleetpatch_soak=8)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("run", ansible(ROLLOUT, fleet.write_inventory(), extravars=extravars,
                                                                              env=audit_env(tmp_path))))
    runner.start()
    deadline = time.monotonic() + 180
    while not (canary := [name for name in ("s1", "s2") if host_state(fleet, name).get("applied")]):  # the apply recorded its release
        assert runner.is_alive() and time.monotonic() < deadline, "the canary was never patched"
        time.sleep(0.2)
    time.sleep(1.5)  # the apply's result is back on the controller: the soak has begun
    (lost,) = canary
    fleet.stop(lost)
    runner.join()
    run = result["run"]

    assert run.returncode != 0
    other = ({"s1", "s2"} - {lost}).pop()
    rows = {row["host"]: row for row in once(run, "Collect every host's outcome")["ansible_facts"]["rollout_outcomes"]["hosts"]}
    assert (rows[lost]["status"], rows[lost]["version"], rows[lost]["detail"]) == (
        "unknown", "7.0.28", "unreachable or failed during the wave; its apply to 7.0.28 had completed")
    assert (rows[other]["status"], rows[other]["version"]) == ("not started", "7.0.26")
    assert once(run, "Stop the rollout, the error budget is spent")["msg"] == (
        f"wave canary: 1 failed against an error budget of 0 ({lost}); of the wave's hosts, could not be reached (state unknown): {lost}; "
        "no later wave starts (the summary says how each host ended)")
    assert fleet.service_version(other) == "7.0.26"


def test_hosts_whose_apply_was_cut_off_are_completed_by_the_rollout(fleet, ansible, tmp_path):
    """Two applies die on their host (SIGKILL by the module's crash hook) after journaling a step: one before the
    switch, one after it. The rollout plans both at the release they are returned to and completes them."""
    fleet.add([HostSpec(name=name, version="7.0.26") for name in ("cut-unpacked", "cut-switched", "clean")])
    inventory = fleet.inventory()
    for step in ("unpacked", "switched"):
        inventory["all"]["hosts"][f"cut-{step}"]["fp_environment"] = {"FLEETPATCH_CRASH_AT": step}
    crash_inventory = tmp_path / "crash.yml"
    crash_inventory.write_text(json.dumps(inventory), encoding="utf-8")
    artifact = fleet.artifact("7.0.28")
    sha256 = artifact.with_name(f"{artifact.name}.sha256").read_text(encoding="utf-8").split()[0]
    crashed = ansible("apply.yml", crash_inventory, extravars={"fp_version": "7.0.28", "fp_artifact": str(artifact), "fp_sha256": sha256},
                      limit="cut-*")
    assert crashed.returncode != 0
    assert {name: host_state(fleet, name)["journal"]["step"] for name in ("cut-unpacked", "cut-switched")} == {
        "cut-unpacked": "unpacked", "cut-switched": "switched"}

    manifest = manifests.write(tmp_path, artifact, urgency="emergency")
    run = ansible(ROLLOUT, fleet.write_inventory(), env=audit_env(tmp_path),
                  extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY, fleetpatch_soak=0))
    assert run.returncode == 0, run.stdout[-6000:]
    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    assert {entry["host"]: entry["version"] for wave in plan["waves"] for entry in wave["hosts"]} == dict.fromkeys(fleet.names, "7.0.26")
    applied = run.results("Apply the patch release (journaled, switched atomically, reloaded, confirmed)")
    assert {name: (applied[name].get("recovered") or {}).get("step") for name in fleet.names} == {
        "cut-unpacked": "unpacked", "cut-switched": "switched", "clean": None}
    assert versions(fleet, fleet.names) == dict.fromkeys(fleet.names, "7.0.28")
    assert all(host_state(fleet, name)["journal"] is None for name in fleet.names)


def test_no_host_starts_after_its_window_closed(fleet, ansible, tmp_path):
    """A routine patch, real time: "late" is inside its window when the plan is made, but the window closes while
    the canary soaks, so its wave does not start it: it is recorded as deferred on the host and in the summary."""
    fleet.add([HostSpec(name="early", region="eu-west", customer="acme"), HostSpec(name="late", region="us-east", customer="globex")])
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="routine")
    # The customer's window (given by the policy, so that it is computed right before the run): a daily RFC 5545
    # window that opened an hour ago and closes in 40 s, time enough for the preflight (under 15 s on this 2-core
    # machine, busy with other runs too).
    now = datetime.datetime.now(datetime.timezone.utc)
    cutoff = (now + datetime.timedelta(seconds=40)).replace(microsecond=0)
    window = {"rrule": "FREQ=DAILY", "dtstart": (cutoff - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "duration": "1h",
              "timezone": "UTC"}
    policy = {"canary": {"count": 1, "region": "eu-west"}, "customer_windows": {"globex": window}}
    soak = int((cutoff - now).total_seconds()) + 5  # the canary's soak outlasts the window
    run = ansible(ROLLOUT, inventory, env=audit_env(tmp_path), extravars=rollout_vars(manifest, fleetpatch_policy=policy, fleetpatch_soak=soak))
    assert run.returncode == 0, run.stdout[-6000:]

    plan = once(run, "Plan the waves")["ansible_facts"]["rollout_plan"]
    assert [[(e["host"], e["window_end"]) for e in wave["hosts"]] for wave in plan["waves"]] == [
        [("early", None)], [("late", cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"))]]
    assert versions(fleet, fleet.names) == {"early": "7.0.28", "late": "7.0.26"}
    following = (cutoff + datetime.timedelta(hours=23)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the daily window's next opening
    assert statuses(run) == {"early": ("patched", ""), "late": ("deferred", f"window closed before its wave; next window {following}")}
    (deferral,) = host_state(fleet, "late")["deferred"]
    assert (deferral["patch"], deferral["reason"], deferral["until"]) == (
        "FP-2025-14847", "its maintenance window closed before its wave started", following)


@pytest.mark.parametrize(("change", "message"), [
    ({"fleetpatch_manifest": None}, "missing required arguments: fleetpatch_manifest"),
    ({"fleetpatch_error_budget": "ten"},
     "fleetpatch_error_budget: expected a count of hosts (2) or a percentage of the planned hosts, at most 100% ('10%'), got 'ten'"),
    pytest.param({"fleetpatch_error_budget": "150%"},  # the check of 'ten'; test__gate.py has both
                 "fleetpatch_error_budget: expected a count of hosts (2) or a percentage of the planned hosts, at most 100% ('10%'), got '150%'",
                 marks=pytest.mark.extended),
    ({"fleetpatch_soak": -5}, "fleetpatch_soak: expected seconds, 0 or more, got -5"),
    ({"fleetpatch_soak": "soon"}, "argument 'fleetpatch_soak' is of type str and we were unable to convert to int: \"'soon'\""),
    pytest.param({"fleetpatch_policy": ["canary"]}, "argument 'fleetpatch_policy' is of type list and we were unable to convert to dict",
                 marks=pytest.mark.extended),  # the argument spec's type check, as for fleetpatch_soak='soon'
    ({"fleetpatch_policy": {"canary": {"count": -1}}}, "fleetpatch.rollout.wave_plan: policy.canary.count: -1"),
    ({"version": "8.0.16"}, "refusing to plan: 1 host(s) in scope run a version outside compatible_with '>=7.0.26,<7.1'"),
])
def test_bad_input_is_named_and_no_host_changes(fleet, ansible, tmp_path, change, message):
    """Each wrong variable, and a fleet with a host outside the patch's compatible_with, stop the rollout in its
    preflight with a message naming the field and the value; no host changes."""
    fleet.add([HostSpec(name="guard-1", version="7.0.26"), HostSpec(name="guard-2", version=change.get("version", "7.0.27"))])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency")
    extravars = rollout_vars(manifest, fleetpatch_policy=EMERGENCY)
    extravars.update({key: value for key, value in change.items() if key != "version"})
    extravars = {key: value for key, value in extravars.items() if value is not None}
    before = {name: (fleet.service_version(name), host_state(fleet, name)) for name in fleet.names}
    run = ansible(ROLLOUT, fleet.write_inventory(), extravars=extravars, env=audit_env(tmp_path))
    assert run.returncode != 0
    failed = [res.get("msg", "") for event in run.events if event["event"] == "runner_on_failed" for res in [event["event_data"]["res"]]]
    assert failed and message in str(failed[0]), failed
    if "version" in change:
        assert "guard-2: 8.0.16" in str(failed[0])  # the plan names the host and its version
    assert {name: (fleet.service_version(name), host_state(fleet, name)) for name in fleet.names} == before, run.stdout[-5000:]
    assert not any(e["event_data"].get("task", "").startswith("Open the wave") for e in run.events)


def test_an_archive_the_hosts_would_refuse_stops_the_rollout_at_preflight(fleet, ansible, tmp_path):
    """The preflight's verified_artifact applies the hosts' own archive rule: a release with a symbolic link in it
    stops the rollout before detection, with the hosts' message naming the member, and the host is untouched."""
    fleet.add([HostSpec(name="spared", version="7.0.26")])
    hostile = tmp_path / "artifact" / "fpdemo-7.0.28.tar.gz"
    hostile.parent.mkdir()
    link = tarfile.TarInfo("fpdemo-7.0.28/fpdemo/shadow")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    with tarfile.open(fleet.artifact("7.0.28")) as source, tarfile.open(hostile, "w:gz") as target:
        for member in source:
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        target.addfile(link)
    manifest = manifests.write(tmp_path, hostile, urgency="emergency")
    # (A host overlays the machine's /root: a controller's local temp there, ansible-local-*, is not the host's, and
    # it changes the times of the directory that holds it; a directory's entries are listed, not its time.)
    files = ("find /srv/fpdemo /var/lib/fleetpatch /tmp /var/tmp /root/.ansible -path '/root/.ansible/tmp/ansible-local-*' -prune "
             "-o -type d -printf '%p d\\n' -o -printf '%p %y %s %T@\\n' 2>/dev/null | sort")
    before = fleet.ssh("spared", files).stdout
    run = ansible(ROLLOUT, fleet.write_inventory(), extravars=rollout_vars(manifest, fleetpatch_policy=EMERGENCY), env=audit_env(tmp_path))
    assert run.returncode != 0
    failed = [event["event_data"] for event in run.events if event["event"] == "runner_on_failed"]
    assert [data["task"] for data in failed] == ["Check the artifact on the controller"]
    assert (f"fleetpatch.rollout.verified_artifact: artifact {hostile}: member 'fpdemo-7.0.28/fpdemo/shadow' is a symbolic link to "
            "'/etc/shadow': a release holds only regular files and directories") in failed[0]["res"]["msg"]
    assert not any(event["event_data"].get("task") == "Detect what every host runs" for event in run.events)
    assert fleet.ssh("spared", files).stdout == before
    assert fleet.service_version("spared") == "7.0.26"


def test_the_role_from_a_playbook_elsewhere_finds_a_manifest_relative_to_that_playbook(fleet, ansible, tmp_path):
    """An operator's own playbook in its own directory runs the fleetpatch.rollout.rollout role with a manifest path
    relative to that playbook (ansible-runner runs from another directory): the role finds it as Ansible finds files,
    every task reads that one file, and the hosts are patched. A path found nowhere is named with every place searched."""
    fleet.add([HostSpec(name="site-1", version="7.0.26"), HostSpec(name="site-2", version="7.0.27")])
    site = tmp_path / "site"
    (site / "patches").mkdir(parents=True)
    manifests.write(site / "patches", fleet.artifact("7.0.28"), urgency="emergency")
    playbook = site / "patch.yml"
    playbook.write_text("- name: Patch our fleet\n  hosts: all\n  gather_facts: false\n  roles:\n    - role: fleetpatch.rollout.rollout\n")
    # The policy (an emergency's decision) and the soak come from the inventory: the role's defaults never hide them.
    inventory = site / "inventory.yml"
    inventory.write_text(yaml.safe_dump(fleet.inventory(extra_vars={"fleetpatch_policy": EMERGENCY, "fleetpatch_soak": 0})), encoding="utf-8")
    run = ansible(playbook, inventory, env=audit_env(tmp_path), extravars={
        "fleetpatch_manifest": "patches/FP-2025-14847.yml", "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob"})
    assert run.returncode == 0, run.stdout[-3000:]
    (plan,) = audit_records(tmp_path, "plan")
    assert plan["data"]["plan"]["emergency"]["decided_by"] == "carol", plan["data"]["plan"]
    record = once(run, "Read and check the patch's change record")["ansible_facts"]["__rollout_record"]
    assert record["manifest_file"] == str(site / "patches" / "FP-2025-14847.yml")
    assert versions(fleet, ["site-1", "site-2"]) == {"site-1": "7.0.28", "site-2": "7.0.28"}

    missing = ansible(playbook, inventory, env=audit_env(tmp_path), extravars={
        "fleetpatch_manifest": "patches/FP-0000-00000.yml", "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob"})
    assert missing.returncode != 0
    message = once(missing, "Read and check the patch's change record")["msg"]
    assert "cannot find 'patches/FP-0000-00000.yml'" in message and f"{site}/patches/FP-0000-00000.yml" in message, message
