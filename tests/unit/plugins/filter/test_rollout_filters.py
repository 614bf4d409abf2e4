"""The fleetpatch.rollout.table, plan_rows, rollout_outcomes and wave_gate filters: thin wrappers that name themselves."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.filter import plan_rows, rollout_outcomes, table, wave_gate


@pytest.mark.parametrize(("module", "name"), [
    (table, "table"), (plan_rows, "plan_rows"), (rollout_outcomes, "rollout_outcomes"), (wave_gate, "wave_gate"),
])
def test_filter_is_registered(module, name):
    assert module.FilterModule().filters() == {name: getattr(module, name)}


def test_table():
    assert table.table([{"host": "a"}], ["host"]) == ["HOST", "a"]


def test_plan_rows():
    plan = {"waves": [{"index": 1, "name": "canary", "hosts": [{"host": "a", "reason": "canary"}]}], "deferred": [], "excluded": []}
    assert plan_rows.plan_rows(plan) == [{"wave": 1, "name": "canary", "host": "a", "region": None, "cluster": None, "reason": "canary"}]


def test_rollout_outcomes_counts_per_region_in_the_summary_order():
    plan = {"waves": [{"index": 1, "name": "canary", "hosts": [{"host": "a", "reason": "canary"}]}], "deferred": [], "excluded": []}
    hosts = {"a": {"region": "eu", "guarded_apply_result": {"status": "patched", "version": "2"}}, "b": {"region": "eu"}}
    outcome = rollout_outcomes.rollout_outcomes(plan, hosts)
    assert outcome["statuses"] == ["patched", "unchanged", "deferred", "failed", "rolled back", "unknown", "not started", "left out"]
    assert outcome["regions"] == [{"region": "eu", "patched": 1, "unchanged": 0, "deferred": 0, "failed": 0, "rolled back": 0,
                                   "unknown": 1, "not started": 0, "left out": 0}]
    assert [row["status"] for row in outcome["hosts"]] == ["patched", "unknown"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: table.table("x", ["host"]), "fleetpatch.rollout.table: rows: expected a list of mappings, got str"),
    (lambda: plan_rows.plan_rows(None), "fleetpatch.rollout.plan_rows: plan: expected the plan of fleetpatch.rollout.wave_plan, got NoneType 'None'"),
    (lambda: rollout_outcomes.rollout_outcomes({"waves": []}, []),
     "fleetpatch.rollout.rollout_outcomes: hosts: expected a mapping of host names to their variables, got list"),
])
def test_bad_input_names_the_filter(call, message):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert str(caught.value) == message


def test_wave_gate_filter():
    wave = {"name": "canary", "hosts": [{"host": "a"}]}
    assert wave_gate.wave_gate(wave, {"a": {}}, [], planned=1) == {
        "failures": [{"host": "a", "wave": "canary", "status": "unknown", "why": "unreachable or failed during the wave"}],
        "wave_failures": [{"host": "a", "wave": "canary", "status": "unknown", "why": "unreachable or failed during the wave"}],
        "budget": 0, "halted": True}
    with pytest.raises(AnsibleFilterError) as caught:
        wave_gate.wave_gate(wave, {}, [], planned=1, budget="lots")
    assert str(caught.value) == ("fleetpatch.rollout.wave_gate: fleetpatch_error_budget: expected a count of hosts (2) or a percentage of the "
                                 "planned hosts, at most 100% ('10%'), got 'lots'")
