"""The gate between waves: the error budget, a wave's failures, whether to stop."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._gate import GateError, error_budget, gate, wave_failures


@pytest.mark.parametrize(("value", "planned", "expected"), [
    (0, 10, 0), (2, 10, 2), ("2", 10, 2), (" 3 ", 10, 3), (15, 10, 15),
    ("10%", 10, 1), ("10%", 9, 0), ("66%", 3, 1), ("66.7%", 3, 2), ("100%", 3, 3), ("0%", 50, 0), ("50%", 0, 0),
])
def test_error_budget(value, planned, expected):
    assert error_budget(value, planned) == expected


@pytest.mark.parametrize("value", ["ten", "-1", -1, "150%", "100.1%", "%", "10 %", 2.5, True, None, [2], "1e3"])
def test_error_budget_names_the_field_and_the_value(value):
    with pytest.raises(GateError) as caught:
        error_budget(value, 10)
    assert str(caught.value) == (
        "fleetpatch_error_budget: expected a count of hosts (2) or a percentage of the planned hosts, at most 100% ('10%'), "
        f"got {value!r}")


WAVE = {"index": 2, "name": "eu 1/2", "hosts": [{"host": name} for name in ("ok", "same", "back", "broken", "lost", "silent", "closed")]}
HOSTS = {
    "ok": {"guarded_apply_result": {"status": "patched"}},
    "same": {"guarded_apply_result": {"status": "unchanged"}},
    "back": {"guarded_apply_result": {"status": "rolled_back", "error": None, "failures": [{"why": "error_rate 100.0 > 0.0"}]}},
    "broken": {"guarded_apply_result": {"status": "failed", "error": "sha256 mismatch", "failures": []}},
    "lost": {"guarded_apply_result": {"status": "patched"}},
    "silent": {"guarded_apply_result": None},
    "closed": {"window_closed": True},
    "elsewhere": {"guarded_apply_result": {"status": "failed"}},
}
REACHABLE = ["ok", "same", "back", "broken", "silent", "closed", "elsewhere"]


def test_wave_failures():
    assert wave_failures(WAVE, HOSTS, REACHABLE) == [
        {"host": "back", "wave": "eu 1/2", "status": "rolled_back", "why": "error_rate 100.0 > 0.0"},
        {"host": "broken", "wave": "eu 1/2", "status": "failed", "why": "sha256 mismatch"},
        {"host": "lost", "wave": "eu 1/2", "status": "unknown", "why": "unreachable or failed during the wave"},
        {"host": "silent", "wave": "eu 1/2", "status": "unknown", "why": "no outcome recorded"},
    ]


def test_a_rolled_back_host_without_a_reason_is_unhealthy():
    wave = {"name": "w", "hosts": [{"host": "a"}]}
    assert wave_failures(wave, {"a": {"guarded_apply_result": {"status": "rolled_back", "failures": []}}}, ["a"])[0]["why"] == "unhealthy"


@pytest.mark.parametrize(("earlier", "budget", "halted"), [
    (0, 4, False),  # 4 failures, a budget of 4: equalled, not exceeded
    (0, 3, True),
    (1, 4, True),  # the failures count over the whole rollout
    (0, "100%", False),  # 100 % of 7 planned
    (0, "50%", True),  # 3
])
def test_gate_halts_only_when_the_failures_exceed_the_budget(earlier, budget, halted):
    before = [{"host": f"old-{n}", "wave": "canary", "status": "failed", "why": "x"} for n in range(earlier)]
    decision = gate(WAVE, HOSTS, REACHABLE, before, budget, planned=7)
    assert decision["halted"] is halted
    assert len(decision["wave_failures"]) == 4 and decision["failures"] == before + decision["wave_failures"]
    assert decision["budget"] == error_budget(budget, 7)


@pytest.mark.parametrize(("wave", "hosts", "message"), [
    ({"hosts": []}, {}, "wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got \"{'hosts': []}\""),
    ("canary", {}, "wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got 'canary'"),
    (WAVE, ["ok"], "hosts: expected a mapping of host names to their variables, got list"),
])
def test_gate_names_the_bad_field(wave, hosts, message):
    with pytest.raises(GateError) as caught:
        gate(wave, hosts, [], [], 0, 1)
    assert str(caught.value) == message


@pytest.mark.parametrize(("reachable", "planned", "message"), [
    ("ok", 1, "reachable: expected the list of hosts still in the play, got str 'ok'"),
    ({"ok": 1}, 1, "reachable: expected the list of hosts still in the play, got dict \"{'ok': 1}\""),
    ([], "7", "planned: expected the number of planned hosts (0 or more), got '7'"),
    ([], -1, "planned: expected the number of planned hosts (0 or more), got -1"),
    ([], True, "planned: expected the number of planned hosts (0 or more), got True"),
])
def test_gate_names_a_bad_reachable_or_planned(reachable, planned, message):
    with pytest.raises(GateError) as caught:
        gate(WAVE, HOSTS, reachable, [], 0, planned)
    assert str(caught.value) == message


LOST = [{"host": "x", "wave": "detection", "status": "unknown", "why": "unreachable at detection: 'timed out'"}]


@pytest.mark.parametrize(("found", "budget", "planned", "halted"), [
    (LOST, 0, 5, True),  # one host unreachable at detection stops a budget of 0 before the first wave
    (LOST, 1, 5, False),
    (LOST * 2, 1, 5, True),
    (LOST, "20%", 5, False),
    (LOST, "19%", 5, True),
    ([], 0, 5, False),
])
def test_the_gate_before_the_first_wave_counts_hosts_unreachable_at_detection(found, budget, planned, halted):
    plan = {"waves": [], "failures": found}
    result = gate(plan, {}, [], None, budget, planned)
    assert result == {"failures": found, "wave_failures": found, "budget": result["budget"], "halted": halted}
    later = gate({"name": "w", "hosts": [{"host": "a"}]}, {"a": {"guarded_apply_result": {"status": "patched"}}}, ["a"], result["failures"],
                 budget, planned)
    assert later["failures"] == found and later["halted"] is halted  # every later gate counts them too


@pytest.mark.parametrize(("plan", "message"), [
    ({"waves": [], "failures": "x"}, "plan.failures: expected a list of failure records, got str 'x'"),
    ({"waves": [], "failures": [{"host": "x", "status": "failed"}]},
     "plan.failures[0]: expected a record with host and status 'unknown', got \"{'host': 'x', 'status': 'failed'}\""),
])
def test_a_bad_plan_is_named(plan, message):
    with pytest.raises(GateError) as caught:
        gate(plan, {}, [], None, 0, 1)
    assert str(caught.value) == message
