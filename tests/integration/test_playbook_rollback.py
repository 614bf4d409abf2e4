"""playbooks/rollback.yml (the fleetpatch.rollout.rollback role) on real hosts: every host that carries the patch
goes back and says so, the audit trail records the approval, the start, each round's outcomes and the end, a run
without the audit callback or without a second person changes nothing, and --check prints the rounds only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import demo_layout

pytestmark = pytest.mark.fleet

ROLLBACK = Path(__file__).resolve().parents[2] / "playbooks" / "rollback.yml"


def audit_env(tmp_path):
    return {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(tmp_path / "audit" / "audit.jsonl")}


def audit_records(tmp_path, *events):
    """The records of these kinds of event in the audit log of audit_env(tmp_path), in order."""
    lines = (tmp_path / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["event"] in events]


def rollback_vars(manifest, **extra):
    return {"fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob", **extra}


def once(run, task):
    """The result of a run_once task (reported for the first host of the play)."""
    (result,) = run.results(task).values()
    return result


def test_rollback_playbook_returns_every_patched_host(fleet, ansible, tmp_path):
    # Six hosts of the demo layout, on both affected releases, two of them cluster primaries: a hot patch goes back
    # on all of them in one round.
    layout = [dataclasses.replace(spec, version="7.0.27" if spec.version == "7.0.27" else "7.0.26") for spec in demo_layout(6)]
    fleet.add(layout)
    before = {spec.name: spec.version for spec in layout}
    inventory = fleet.write_inventory()
    manifest = str(manifests.write(tmp_path, fleet.artifact("7.0.28")))
    patched = ansible("apply_manifest.yml", inventory, extravars={"fp_manifest": manifest})
    assert patched.returncode == 0, patched.stdout
    assert {fleet.service_version(name) for name in before} == {"7.0.28"}

    # --check: the rounds are printed, nothing changes (the approval is recorded, marked as check mode)
    checked = ansible(ROLLBACK, inventory, extravars=rollback_vars(manifest), check=True, env=audit_env(tmp_path))
    assert checked.returncode == 0, checked.stdout[-3000:]
    printed = once(checked, "Print the rounds")["msg"]
    assert printed["rounds"] == {"1": sorted(before)} or printed["rounds"] == {1: sorted(before)}, printed
    assert f"{len(before)} host(s) go back to previous in 1 round(s)" in printed["rollback"]
    assert {fleet.service_version(name) for name in before} == {"7.0.28"}
    assert all(stats["changed"] == 0 for stats in checked.stats.values())
    (approval,) = audit_records(tmp_path, "approval", "rollback_start", "rollback", "rollback_end")
    assert approval["data"]["check_mode"] is True and approval["data"]["operation"] == "rollback"

    run = ansible(ROLLBACK, inventory, extravars=rollback_vars(manifest), env=audit_env(tmp_path))
    assert run.returncode == 0, run.stdout
    rows = once(run, "Collect what every host did")["ansible_facts"]["rollback_rows"]
    assert [(row["host"], row["outcome"], row["from"], row["to"], row["round"]) for row in rows] == [
        (name, "rolled back", "7.0.28", before[name], 1) for name in sorted(before)]  # a hot patch: one round
    # the trail: the approval (two people), the start with the rounds, the round's outcomes, the end
    records = audit_records(tmp_path, "approval", "rollback_start", "rollback", "rollback_end")[1:]
    assert [record["event"] for record in records] == ["approval", "rollback_start", "rollback", "rollback_end"]
    approval, start, round_one, end = records
    assert approval["data"]["approval"] == {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": True}
    assert start["data"]["rounds"] == [sorted(before)] and start["patch_id"] == "FP-2025-14847"
    assert {row["host"]: row["outcome"] for row in round_one["data"]["outcomes"]} == dict.fromkeys(before, "rolled back")
    assert end["data"]["decision"] == "proceed" and end["data"]["not_rolled_back"] == []
    assert [(row["host"], row["outcome"]) for row in end["data"]["outcomes"]] == [(name, "rolled back") for name in sorted(before)]
    for name, version in before.items():
        assert fleet.service_version(name) == version
        state = json.loads(fleet.ssh(name, "cat /var/lib/fleetpatch/state.json").stdout)
        assert state["components"]["fpdemo"] == {"version": version, "previous": None, "rolled_back_from": "7.0.28"}
        assert [(r["patch"], r["from"], r["to"]) for r in state["rollbacks"]] == [("FP-2025-14847", "7.0.28", version)]
    table = once(run, "Print each host's rollback")["msg"]
    assert table[0].split() == ["HOST", "REGION", "CLUSTER", "ROUND", "OUTCOME", "FROM", "TO", "DETAIL"]
    assert len(table) == len(before) + 1 and all("rolled back" in line for line in table[1:])

    again = ansible(ROLLBACK, inventory, extravars=rollback_vars(manifest), env=audit_env(tmp_path))
    assert again.returncode == 0, again.stdout
    rows = once(again, "Collect what every host did")["ansible_facts"]["rollback_rows"]
    assert {row["outcome"] for row in rows} == {"not carrying"}
    assert all(stats["changed"] == 0 for stats in again.stats.values())


def test_restart_patch_rolls_back_within_the_cluster_budget_and_reports_unreachable(fleet, ansible, tmp_path):
    layout = [dataclasses.replace(spec, version="7.0.26") for spec in demo_layout(6, regions=1, clusters=1, cluster_size=5)]
    fleet.add(layout)
    inventory = fleet.write_inventory()
    manifest = str(manifests.write(tmp_path, fleet.artifact("7.0.28"), **{"class": "restart"}))
    assert ansible("apply_manifest.yml", inventory, extravars={"fp_manifest": manifest}).returncode == 0
    lone = next(spec.name for spec in layout if spec.cluster is None)
    fleet.stop(lone)

    run = ansible(ROLLBACK, inventory, extravars=rollback_vars(manifest), env=audit_env(tmp_path))
    assert run.returncode == 2, run.stdout
    rows = {row["host"]: row for row in once(run, "Collect what every host did")["ansible_facts"]["rollback_rows"]}
    assert rows[lone]["outcome"] == "unknown"
    members = [spec for spec in layout if spec.cluster]
    primary = next(spec.name for spec in members if spec.cluster_role == "primary")
    rounds = {row["round"] for name, row in rows.items() if name != lone}
    # five members keep three up: at most two go back at once, the primary last
    by_round = {r: sorted(name for name, row in rows.items() if row["round"] == r and name != lone) for r in rounds}
    assert [len(names) for _r, names in sorted(by_round.items())] == [2, 2, 1]
    assert by_round[3] == [primary]
    assert all(rows[spec.name]["outcome"] == "rolled back" for spec in members)
    assert once(run, "Fail when a host could not be rolled back or was not reached")["msg"] == f"not rolled back: {lone}"
    (end,) = audit_records(tmp_path, "rollback_end")
    assert end["data"]["decision"] == "halt" and end["data"]["not_rolled_back"] == [lone]


REFUSED = [
    # no audit callback: no trail to record the approval in
    ({}, False, "the audit callback fleetpatch.rollout.audit is not enabled in this run"),
    # one person alone, not an emergency
    ({"fleetpatch_implemented_by": "alice"}, True, "needs someone else to approve a patch of urgency 'routine'"),
    # an emergency without a justification
    ({"fleetpatch_implemented_by": "alice", "fleetpatch_urgency": "emergency"}, True, "only with a written justification"),
    ({"fleetpatch_urgency": "soon"}, True, "fleetpatch_urgency"),
]


def test_a_rollback_needs_its_approval_and_its_audit_trail_and_an_emergency_may_be_one_persons(fleet, ansible, tmp_path):
    """Each refusal stops the rollback before any host is touched, naming why; then an emergency rollback by one
    person with a justification goes through, recorded as such."""
    (spec,) = [dataclasses.replace(spec, version="7.0.26") for spec in demo_layout(1)]
    fleet.add([spec])
    inventory = fleet.write_inventory()
    manifest = str(manifests.write(tmp_path, fleet.artifact("7.0.28")))
    assert ansible("apply_manifest.yml", inventory, extravars={"fp_manifest": manifest}).returncode == 0
    for change, audited, message in REFUSED:
        run = ansible(ROLLBACK, inventory, extravars=rollback_vars(manifest, **change), env=audit_env(tmp_path) if audited else {})
        assert run.returncode != 0, change
        failed = [event["event_data"]["res"].get("msg", "") for event in run.events if event["event"] == "runner_on_failed"]
        assert failed and message in str(failed[0]), (change, failed)
        assert fleet.service_version(spec.name) == "7.0.28", change
        assert not any(event["event_data"].get("task") == "Roll back the hosts of this round" for event in run.events), change

    run = ansible(ROLLBACK, inventory, env=audit_env(tmp_path), extravars=rollback_vars(
        manifest, fleetpatch_implemented_by="alice", fleetpatch_urgency="emergency", fleetpatch_justification="the patch drops sessions"))
    assert run.returncode == 0, run.stdout[-3000:]
    assert fleet.service_version(spec.name) == "7.0.26"
    approval = audit_records(tmp_path, "approval")[-1]
    assert approval["data"]["approval"]["two_person"] is False
    assert approval["data"]["approval"]["justification"] == "the patch drops sessions"
    assert [record["event"] for record in audit_records(tmp_path, "rollback_start", "rollback", "rollback_end")] == [
        "rollback_start", "rollback", "rollback_end"]
