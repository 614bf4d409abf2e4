"""What the playbooks print: tables, the plan's rows, every host's outcome of a rollout."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._report import (
    OUTCOMES, ReportError, format_table, halt_message, outcome_rows, plan_rows, tally,
)


@pytest.mark.parametrize(("rows", "columns", "lines"), [
    ([], ["host"], ["HOST"]),
    ([{"host": "euw-01", "region": "eu-west"}, {"host": "a", "region": "ap-south"}], ["host", "region"],
     ["HOST   REGION", "euw-01 eu-west", "a      ap-south"]),
    ([{"host": "a", "cluster_role": "primary"}], ["host", "cluster_role"], ["HOST CLUSTER ROLE", "a    primary"]),
    ([{"v": "7.0.28"}], [["VERSION NOW", "v"]], ["VERSION NOW", "7.0.28"]),
    ([{"a": None, "b": "", "c": True, "d": False, "e": ["x", "y"], "f": [], "g": 3}], list("abcdefgh"),
     ["A B C   D  E    F G H", "- - yes no x, y - 3 -"]),
    ([{"host": "a", "why": "long detail text"}, {"host": "bbbbbb", "why": ""}], ["host", "why"],
     ["HOST   WHY", "a      long detail text", "bbbbbb -"]),
])
def test_format_table(rows, columns, lines):
    assert format_table(rows, columns) == lines


@pytest.mark.parametrize(("rows", "columns", "message"), [
    ([], [], "columns: expected a non-empty list of keys or of [header, key] pairs, got []"),
    ([], "host", "columns: expected a non-empty list of keys or of [header, key] pairs, got 'host'"),
    ([], ["host", ""], "columns[1]: expected a key or a [header, key] pair, got ''"),
    ([], ["host", ["A", "b", "c"]], "columns[1]: expected a key or a [header, key] pair, got ['A', 'b', 'c']"),
    ([], [3], "columns[0]: expected a key or a [header, key] pair, got 3"),
    ({"host": "a"}, ["host"], "rows: expected a list of mappings, got dict"),
    ("a", ["host"], "rows: expected a list of mappings, got str"),
    ([{"host": "a"}, "b"], ["host"], "rows[1]: expected a mapping, got str 'b'"),
])
def test_format_table_names_the_bad_field(rows, columns, message):
    with pytest.raises(ReportError) as caught:
        format_table(rows, columns)
    assert str(caught.value) == message


@pytest.mark.parametrize(("rows", "expected"), [
    ([], []),
    ([{"region": "b", "status": "patched"}, {"region": "a", "status": "failed"}, {"region": "b", "status": "patched"},
      {"region": None, "status": "patched"}, {"region": "a", "status": "weird"}],
     [{"region": "-", "patched": 1, "failed": 0}, {"region": "a", "patched": 0, "failed": 1}, {"region": "b", "patched": 2, "failed": 0}]),
])
def test_tally(rows, expected):
    assert tally(rows, "region", "status", ("patched", "failed")) == expected


PLAN = {
    "waves": [
        {"index": 1, "name": "canary", "hosts": [{"host": "c1", "region": "eu", "cluster": None, "reason": "canary: picked"}]},
        {"index": 2, "name": "eu 1/2", "hosts": [
            {"host": "e1", "region": "eu", "cluster": "db", "reason": "eu 1/2: secondary"},
            {"host": "e2", "region": "eu", "cluster": None, "reason": "eu 1/2"},
        ]},
        {"index": 3, "name": "eu 2/2", "hosts": [{"host": "e3", "region": "eu", "cluster": "db", "reason": "eu 2/2: primary"}]},
    ],
    "deferred": [{"host": "d1", "region": "us", "cluster": None, "reason": "outside_window", "detail": "routine patch",
                  "next_window": "2026-03-07T01:00:00Z"},
                 {"host": "d2", "region": "us", "reason": "no_window", "detail": "no window", "next_window": None}],
    "excluded": [{"host": "x1", "region": "us", "reason": "fixed", "detail": "runs 7.0.28"},
                 {"host": "x2", "region": "us", "reason": "unknown", "detail": "unreachable"},
                 {"host": "x3", "region": "us", "reason": "not_affected", "detail": "runs 6.0"},
                 {"host": "x4", "region": "us", "reason": "quorum", "detail": "2 members"}],
}


def test_plan_rows_in_rollout_order_then_deferred_then_left_out():
    assert [(r["wave"], r["name"], r["host"], r["region"], r["cluster"], r["reason"]) for r in plan_rows(PLAN)] == [
        (1, "canary", "c1", "eu", None, "canary: picked"),
        (2, "eu 1/2", "e1", "eu", "db", "eu 1/2: secondary"),
        (2, "eu 1/2", "e2", "eu", None, "eu 1/2"),
        (3, "eu 2/2", "e3", "eu", "db", "eu 2/2: primary"),
        (None, "deferred", "d1", "us", None, "routine patch; next window 2026-03-07T01:00:00Z"),
        (None, "deferred", "d2", "us", None, "no window; next window none"),
        (None, "left out", "x1", "us", None, "fixed: runs 7.0.28"),
        (None, "left out", "x2", "us", None, "unknown: unreachable"),
        (None, "left out", "x3", "us", None, "not_affected: runs 6.0"),
        (None, "left out", "x4", "us", None, "quorum: 2 members"),
    ]


@pytest.mark.parametrize("plan", [None, [], {"waves": "x"}, {}])
def test_plan_rows_refuses_what_is_not_a_plan(plan):
    with pytest.raises(ReportError, match=r"^plan: expected the plan of fleetpatch.rollout.wave_plan, got "):
        plan_rows(plan)


def test_every_outcome_and_its_detail():
    hosts = {
        "c1": {"region": "eu", "version": "7.0.26", "guarded_apply_result": {"status": "patched", "version": "7.0.28"}},
        "e1": {"region": "eu", "cluster": "db", "version": "7.0.26", "guarded_apply_result": {"status": "rolled_back", "version": "7.0.26"}},
        "e2": {"region": "eu", "version": "7.0.26", "guarded_apply_result": {"status": "patched", "version": "7.0.28"},
               "rollback": {"changed": True}},
        "e3": {"region": "eu", "cluster": "db", "version": "7.0.27"},
        "d1": {"region": "us", "version": "7.0.26"},
        "x1": {"region": "us", "version": "7.0.28"},
        "x2": {"region": "us"},
        "x3": {"region": "us", "version": "6.0"},
        "x4": {"region": "us", "version": "7.0.26"},
        "w1": {"region": "us", "version": "7.0.26", "window_closed": True},
        "lost": {"region": "us", "version": "7.0.26", "guarded_apply_result": None},
        "unplanned": {},
    }
    plan = {**PLAN, "waves": [*PLAN["waves"], {"index": 4, "name": "us", "hosts": [{"host": "w1", "reason": "us"}, {"host": "lost", "reason": "us"}]}],
            "deferred": PLAN["deferred"][:1]}
    failures = [{"host": "e1", "status": "rolled_back", "why": "error_rate 100.0 > 0.0"},
                {"host": "lost", "status": "unknown", "why": "unreachable or failed during the wave"}]
    rows = outcome_rows(plan, hosts, failures)
    assert [r["host"] for r in rows] == sorted(hosts)
    assert {r["host"]: (r["status"], r["detail"], r["version"], r["region"], r["cluster"]) for r in rows} == {
        "c1": ("patched", "", "7.0.28", "eu", "-"),
        "e1": ("rolled back", "error_rate 100.0 > 0.0", "7.0.26", "eu", "db"),
        "e2": ("rolled back", "its wave was rolled back", "7.0.26", "eu", "-"),  # no version in the result: the detected one
        "e3": ("not started", "the rollout stopped first", "7.0.27", "eu", "db"),
        "d1": ("deferred", "next window 2026-03-07T01:00:00Z", "7.0.26", "us", "-"),
        "x1": ("unchanged", "runs 7.0.28", "7.0.28", "us", "-"),
        "x2": ("unknown", "unreachable", "unknown", "us", "-"),
        "x3": ("left out", "runs 6.0", "6.0", "us", "-"),
        "x4": ("left out", "2 members", "7.0.26", "us", "-"),
        "w1": ("deferred", "window closed before its wave", "7.0.26", "us", "-"),
        "lost": ("unknown", "unreachable or failed during the wave", "7.0.26", "us", "-"),
        "unplanned": ("unknown", "", "unknown", "-", "-"),
    }
    assert {r["status"] for r in rows} <= set(OUTCOMES)


@pytest.mark.parametrize(("rollback", "status", "detail", "version"), [
    ({"changed": True, "version": "7.0.26"}, "rolled back", "its wave was rolled back", "7.0.26"),
    ({"changed": False, "failed": True, "msg": "target missing"}, "failed", "its wave's rollback failed: target missing", "7.0.28"),
    ({"changed": False, "unreachable": True, "msg": "ssh: timed out"}, "unknown", "its wave's rollback could not reach it: ssh: timed out", "7.0.28"),
    ({"changed": False, "skipped": True}, "patched", "", "7.0.28"),
])
def test_the_halted_wave_s_rollback_decides_what_a_patched_host_is(rollback, status, detail, version):
    hosts = {"c1": {"guarded_apply_result": {"status": "patched", "version": "7.0.28"}, "rollback": rollback, "version": "7.0.26"}}
    assert [(r["status"], r["detail"], r["version"]) for r in outcome_rows(PLAN, hosts)] == [(status, detail, version)]


def test_an_unchanged_host_of_a_wave():
    rows = outcome_rows(PLAN, {"c1": {"guarded_apply_result": {"status": "unchanged", "version": "7.0.28"}, "version": "7.0.28"}})
    assert [(r["status"], r["version"]) for r in rows] == [("unchanged", "7.0.28")]


@pytest.mark.parametrize(("plan", "hosts", "failures", "message"), [
    ("x", {}, (), "plan: expected the plan of fleetpatch.rollout.wave_plan, got str 'x'"),
    (PLAN, ["c1"], (), "hosts: expected a mapping of host names to their variables, got list"),
    (PLAN, {}, [{"host": "c1"}], "failures[0]: expected a mapping with host and status, got {'host': 'c1'}"),
    (PLAN, {}, ["c1"], "failures[0]: expected a mapping with host and status, got 'c1'"),
])
def test_outcome_rows_names_the_bad_field(plan, hosts, failures, message):
    with pytest.raises(ReportError) as caught:
        outcome_rows(plan, hosts, failures)
    assert str(caught.value) == message


@pytest.mark.parametrize(("facts", "failure", "expected"), [
    # lost during its soak: the apply completed, so it runs the applied release (still unknown: never judged)
    ({"applied": {"changed": True, "version": "7.0.28"}}, "unknown",
     ("unknown", "unreachable or failed during the wave; its apply to 7.0.28 had completed", "7.0.28")),
    ({"applied": {"failed": True, "msg": "sha256 mismatch", "version": "7.0.28"}}, "unknown",
     ("unknown", "unreachable or failed during the wave", "7.0.26")),
    ({"applied": {"unreachable": True}}, "unknown", ("unknown", "unreachable or failed during the wave", "7.0.26")),
    ({}, "unknown", ("unknown", "unreachable or failed during the wave", "7.0.26")),
    ({"applied": {"changed": True, "version": "7.0.28"}, "rollback": {"changed": True, "version": "7.0.26"}}, None,
     ("rolled back", "its wave was rolled back", "7.0.26")),
    ({"applied": {"changed": True, "version": "7.0.28"}, "guarded_apply_result": {"status": "patched", "version": "7.0.28"}}, None,
     ("patched", "", "7.0.28")),
])
def test_a_host_lost_after_its_apply_shows_the_applied_version(facts, failure, expected):
    failures = [{"host": "c1", "status": failure, "why": "unreachable or failed during the wave"}] if failure else []
    (row,) = outcome_rows(PLAN, {"c1": {"version": "7.0.26", **facts}}, failures)
    assert (row["status"], row["detail"], row["version"]) == expected


@pytest.mark.parametrize(("entry", "detail"), [
    ({"next_window": "2026-03-05T01:00:00Z"}, "window closed before its wave; next window 2026-03-05T01:00:00Z"),
    ({"next_window": None}, "window closed before its wave"),
    ({}, "window closed before its wave"),
])
def test_a_host_whose_window_closed_shows_its_next_window(entry, detail):
    plan = {"waves": [{"index": 1, "name": "w", "hosts": [{"host": "a", "reason": "w", **entry}]}]}
    (row,) = outcome_rows(plan, {"a": {"version": "7.0.26", "window_closed": True}})
    assert (row["status"], row["detail"]) == ("deferred", detail)


def test_a_host_unreachable_at_detection_is_unknown():
    plan = {"waves": [], "excluded": [{"host": "x", "reason": "unreachable", "detail": "unreachable at detection: 'timed out'"},
                                      {"host": "y", "reason": "operator", "detail": "left out by the operator (exclude_hosts); runs 7.0.26"}]}
    rows = outcome_rows(plan, {"x": {}, "y": {"version": "7.0.26"}},
                        [{"host": "x", "wave": "detection", "status": "unknown", "why": "unreachable at detection: 'timed out'"}])
    assert [(r["host"], r["status"], r["detail"]) for r in rows] == [
        ("x", "unknown", "unreachable at detection: 'timed out'"),
        ("y", "left out", "left out by the operator (exclude_hosts); runs 7.0.26")]


WAVE = {"index": 2, "name": "eu 1/2", "hosts": [{"host": name} for name in ("back", "gone", "broken", "closed", "self", "ghost")]}
ROWS = [{"host": "back", "status": "rolled back"}, {"host": "gone", "status": "unknown"}, {"host": "broken", "status": "failed"},
        {"host": "closed", "status": "deferred"}, {"host": "self", "status": "rolled back"}, {"host": "other", "status": "patched"}]


@pytest.mark.parametrize(("gate", "wave", "rows", "message"), [
    ({"failures": [{"host": "gone"}, {"host": "self"}], "budget": 1}, WAVE, ROWS,
     "wave eu 1/2: 2 failed against an error budget of 1 (gone, self); of the wave's hosts, rolled back: back, self; "
     "could not be reached (state unknown): gone, ghost; failed: broken; not started (window closed): closed; "
     "no later wave starts (the summary says how each host ended)"),
    ({"failures": [{"host": "back"}], "budget": 0}, {"name": "canary", "hosts": [{"host": "back"}]}, ROWS,
     "wave canary: 1 failed against an error budget of 0 (back); of the wave's hosts, rolled back: back; "
     "no later wave starts (the summary says how each host ended)"),
    ({"failures": [{"host": "a"}], "budget": 0}, {"name": "w", "hosts": [{"host": "a"}]}, [{"host": "a", "status": "not started"}],
     "wave w: 1 failed against an error budget of 0 (a); of the wave's hosts, not started: a; no later wave starts (the summary says how each host ended)"),
    ({"failures": [{"host": "x"}, {"host": "y"}], "budget": 0}, None, [],
     "before the first wave: 2 host(s) in scope could not be reached at detection (x, y), against an error budget of 0; nothing was patched. "
     "Bring them back, or leave them out of the rollout by name (fleetpatch_exclude_hosts) or every host unreachable at detection "
     "(fleetpatch_unreachable: skip)"),
])
def test_halt_message_tells_rolled_back_from_unreachable(gate, wave, rows, message):
    assert halt_message(gate, wave, rows) == message


@pytest.mark.parametrize(("gate", "wave", "message"), [
    ("halt", None, "gate: expected the decision of fleetpatch.rollout.wave_gate, got 'halt'"),
    ({"failures": [], "budget": 0}, {"hosts": []}, "wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got \"{'hosts': []}\""),
])
def test_halt_message_names_the_bad_field(gate, wave, message):
    with pytest.raises(ReportError) as caught:
        halt_message(gate, wave, [])
    assert str(caught.value) == message
