"""The wave planner: canary, regions, batches, quorum, exclusions, mixed versions, windows and urgency, bad input."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import yaml

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import PlanError, plan_waves, policy_with_inputs, validate_policy

REPO = Path(__file__).resolve().parents[4]
DEMO_INVENTORY = REPO / "inventories" / "demo" / "hosts.yml"
MANIFEST = {
    "id": "FP-2025-14847",
    "urgency": "routine",
    "affected": ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17",
    "fixed_version": "7.0.28",
    "compatible_with": ">=7.0.26,<7.1",
    "notify": {"lead_time": "15h", "lead_time_seconds": 54000},
}
NOW = "2026-03-03T01:30:00Z"  # a Tuesday: 02:30 in Berlin, 20:30 on Monday in New York
TUE_BERLIN = {"days": ["tue", "thu"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}  # open: 01:00Z-05:00Z
SAT_BERLIN = {"days": ["sat", "sun"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}  # closed; next 2026-03-07T01:00Z
NO_CANARY = {"canary": {"count": 0}}


def host(region=None, cluster=None, role=None, customer=None, version="7.0.26", window=None, **extra):
    facts = {"region": region, "customer": customer, "detect": {"changed": False, "version": version, "affected": True}}
    if cluster is not None:
        facts.update(cluster=cluster, cluster_role=role)
    if window is not None:
        facts["maintenance_window"] = window
    facts.update(extra)
    return facts


def manifest(**changes):
    return dict(copy.deepcopy(MANIFEST), **changes)


def plan(hosts, policy=None, urgency="routine", now=NOW, notifications=None, **kwargs):
    return plan_waves(hosts, manifest(urgency=urgency), policy=policy, now=now, notifications=notifications, **kwargs)


def names(result):
    """``[(wave name, [hosts])]``."""
    return [(wave["name"], [entry["host"] for entry in wave["hosts"]]) for wave in result["waves"]]


def regions(spec):
    """Hosts without clusters from ``{"a": 3, "b": 2}``: a1, a2, a3, b1, b2."""
    return {f"{region}{number}": host(region) for region, count in spec.items() for number in range(1, count + 1)}


# --- canary, region order, batches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # default: one canary from the first region in order; regions smallest first, ties by name
        (None, [("canary", ["c1"]), ("b", ["b1", "b2"]), ("a", ["a1", "a2", "a3"])]),
        ({"canary": {"count": 3}}, [("canary", ["a1", "b1", "c1"]), ("b", ["b2"]), ("a", ["a2", "a3"])]),
        ({"canary": {"count": 4, "spread": "regions"}}, [("canary", ["a1", "b1", "b2", "c1"]), ("a", ["a2", "a3"])]),
        # percent of the 6 hosts planned, rounded up
        ({"canary": {"percent": 50}}, [("canary", ["a1", "b1", "c1"]), ("b", ["b2"]), ("a", ["a2", "a3"])]),
        ({"canary": {"percent": 1}}, [("canary", ["c1"]), ("b", ["b1", "b2"]), ("a", ["a1", "a2", "a3"])]),
        ({"canary": {"count": 2, "region": "a"}}, [("canary", ["a1", "a2"]), ("c", ["c1"]), ("b", ["b1", "b2"]), ("a", ["a3"])]),
        ({"canary": {"count": 9, "region": "b"}}, [("canary", ["b1", "b2"]), ("c", ["c1"]), ("a", ["a1", "a2", "a3"])]),
        (NO_CANARY, [("c", ["c1"]), ("b", ["b1", "b2"]), ("a", ["a1", "a2", "a3"])]),
        # the policy's order first, the others smallest first
        ({"canary": {"count": 0}, "region_order": ["a"]}, [("a", ["a1", "a2", "a3"]), ("c", ["c1"]), ("b", ["b1", "b2"])]),
        ({"canary": {"count": 0}, "region_order": ["b", "a", "c"]}, [("b", ["b1", "b2"]), ("a", ["a1", "a2", "a3"]), ("c", ["c1"])]),
        # a region in the order with nothing to plan is skipped
        ({"canary": {"count": 0}, "region_order": ["zz", "a"]}, [("a", ["a1", "a2", "a3"]), ("c", ["c1"]), ("b", ["b1", "b2"])]),
        ({"canary": {"count": 0}, "batch": {"count": 2}}, [("c", ["c1"]), ("b", ["b1", "b2"]), ("a 1/2", ["a1", "a2"]), ("a 2/2", ["a3"])]),
        # percent of the region's hosts, rounded up, at least one
        ({"canary": {"count": 0}, "batch": {"percent": 34}}, [("c", ["c1"]), ("b 1/2", ["b1"]), ("b 2/2", ["b2"]), ("a 1/2", ["a1", "a2"]), ("a 2/2", ["a3"])]),
        ({"canary": {"count": 0}, "batch": {"percent": 0.1}},
         [("c", ["c1"]), ("b 1/2", ["b1"]), ("b 2/2", ["b2"]), ("a 1/3", ["a1"]), ("a 2/3", ["a2"]), ("a 3/3", ["a3"])]),
    ],
)
def test_canary_regions_and_batches(policy, expected):
    result = plan(regions({"a": 3, "b": 2, "c": 1}), policy)
    assert names(result) == expected
    assert [wave["index"] for wave in result["waves"]] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, ["c", "b", "a"]),  # c's only host is the canary: the region is still in the order
        ({"region_order": ["zz", "a"]}, ["a", "c", "b"]),  # a region without hosts planned is left out
    ],
)
def test_region_order_in_summary(policy, expected):
    assert plan(regions({"a": 3, "b": 2, "c": 1}), policy)["summary"]["region_order"] == expected


def test_hosts_without_region_come_last():
    hosts = dict(regions({"a": 1, "b": 2}), x1=host(None), x2=host(None))
    assert names(plan(hosts, {"canary": {"count": 3}})) == [("canary", ["a1", "b1", "x1"]), ("b", ["b2"]), ("no region", ["x2"])]


def test_canary_avoids_primaries_and_prefers_hosts_outside_clusters():
    hosts = {
        "a-db1": host("a", "db", "primary"), "a-db2": host("a", "db", "secondary"), "a-db3": host("a", "db", "secondary"),
        "a-web": host("a"),
        # a primary whose secondaries are already fixed has none to wait for: it may be a canary
        "b-solo": host("b", "pair", "primary"), "b-pair2": host("b", "pair", "secondary", version="7.0.28"),
        "b-pair3": host("b", "pair", "secondary", version="7.0.28"),
    }
    result = plan(hosts, {"canary": {"count": 3}, "region_order": ["a", "b"]})
    # round robin a, b, a; in a, a-web before a-db2 (hosts outside clusters first); a-db1 never (a primary)
    assert names(result) == [("canary", ["a-db2", "a-web", "b-solo"]), ("a 1/2", ["a-db3"]), ("a 2/2", ["a-db1"])]
    assert result["waves"][0]["hosts"][0]["reason"] == (
        "canary: picked as canary, spread over regions; no maintenance window; secondary of db: at most 1 of its 3 members down per wave"
    )
    assert result["summary"]["canary"] == 3


# --- quorum --------------------------------------------------------------------------------------------------


def cluster(name, size, region="r", primary=1):
    return {f"{name}-{number}": host(region, name, "primary" if number <= primary else "secondary") for number in range(1, size + 1)}


@pytest.mark.parametrize(
    ("hosts", "policy", "expected"),
    [
        # 3 members: one down at a time, the primary last
        (cluster("db", 3), None, [("r 1/3", ["db-2"]), ("r 2/3", ["db-3"]), ("r 3/3", ["db-1"])]),
        # 5 members: two at a time
        (cluster("db", 5), None, [("r 1/3", ["db-2", "db-3"]), ("r 2/3", ["db-4", "db-5"]), ("r 3/3", ["db-1"])]),
        # two clusters and a standalone host share waves, each cluster within its own budget
        ({**cluster("x", 3), **cluster("y", 5), "web": host("r")}, None,
         [("r 1/3", ["web", "x-2", "y-2", "y-3"]), ("r 2/3", ["x-3", "y-4", "y-5"]), ("r 3/3", ["x-1", "y-1"])]),
        # a batch smaller than the budget still holds
        (cluster("db", 5), {"batch": {"count": 1}}, [(f"r {n}/5", [name]) for n, name in enumerate(["db-2", "db-3", "db-4", "db-5", "db-1"], 1)]),
        # the policy may allow more, for every cluster or for one
        (cluster("db", 3), {"max_unavailable": 2}, [("r 1/2", ["db-2", "db-3"]), ("r 2/2", ["db-1"])]),
        ({**cluster("x", 3), **cluster("y", 3)}, {"max_unavailable": {"y": 2}},
         [("r 1/3", ["x-2", "y-2", "y-3"]), ("r 2/3", ["x-3", "y-1"]), ("r 3/3", ["x-1"])]),
        # the canary counts too: a 3-member cluster gives one canary per wave
        (cluster("db", 3), {"canary": {"count": 2}}, [("canary 1/2", ["db-2"]), ("canary 2/2", ["db-3"]), ("r", ["db-1"])]),
    ],
)
def test_quorum(hosts, policy, expected):
    policy = {**NO_CANARY, **(policy or {})}
    assert names(plan(hosts, policy)) == expected


def test_primary_follows_secondaries_into_a_later_region():
    hosts = {"eu-p": host("eu", "db", "primary"), "us-s1": host("us", "db", "secondary"), "us-s2": host("us", "db", "secondary"), "eu-web": host("eu")}
    result = plan(hosts, {**NO_CANARY, "region_order": ["eu", "us"]})
    assert names(result) == [("eu", ["eu-web"]), ("us 1/3", ["us-s1"]), ("us 2/3", ["us-s2"]), ("us 3/3", ["eu-p"])]
    assert result["waves"][3]["hosts"][0]["reason"] == (
        "us 3/3: moved from eu to follow the secondaries of db in us; no maintenance window; "
        "primary of db: at most 1 of its 3 members down per wave, after its secondaries"
    )


def test_primary_waits_for_the_wave_after_its_last_secondary():
    hosts = {"p": host("r", "db", "primary"), "s1": host("r", "db", "secondary"), "s2": host("r", "db", "secondary"),
             "s3": host("r", "db", "secondary"), "s4": host("r", "db", "secondary")}
    waves = names(plan(hosts, NO_CANARY))
    assert waves == [("r 1/3", ["s1", "s2"]), ("r 2/3", ["s3", "s4"]), ("r 3/3", ["p"])]


@pytest.mark.parametrize(
    ("size", "unknown", "policy", "expected_waves", "quorum_detail"),
    [
        # 5 members, one unreachable: it counts as down, so one more at a time
        (5, 1, None, [("r 1/4", ["db-3"]), ("r 2/4", ["db-4"]), ("r 3/4", ["db-5"]), ("r 4/4", ["db-1"])], None),
        # 3 members, one unreachable: none to spare
        (3, 1, None, [], "cluster db has 3 member(s): keeping a strict majority up allows 1 down at once, and 1 member(s) of unknown state "
                         "count as down already; set policy.max_unavailable to patch it"),
        # 2 members: a strict majority of 2 is 2
        (2, 0, None, [], "cluster db has 2 member(s): keeping a strict majority up allows 0 down at once; set policy.max_unavailable to patch it"),
        (2, 0, {"max_unavailable": 1}, [("r 1/2", ["db-2"]), ("r 2/2", ["db-1"])], None),
        (3, 1, {"max_unavailable": {"db": 1}}, [], "cluster db has 3 member(s): policy.max_unavailable allows 1 down at once, and 1 member(s) "
                                                   "of unknown state count as down already; set policy.max_unavailable to patch it"),
    ],
)
def test_quorum_budget_left(size, unknown, policy, expected_waves, quorum_detail):
    hosts = cluster("db", size)
    for number in range(2, 2 + unknown):
        hosts[f"db-{number}"]["detect"] = {"unreachable": True, "msg": "Failed to connect to the host via ssh"}
    result = plan(hosts, {**NO_CANARY, **(policy or {})})
    assert names(result) == expected_waves
    quorum = [entry for entry in result["excluded"] if entry["reason"] == "quorum"]
    if quorum_detail is None:
        assert quorum == []
    else:
        assert {entry["host"] for entry in quorum} == {f"db-{n}" for n in range(1, size + 1)} - {f"db-{n}" for n in range(2, 2 + unknown)}
        assert {entry["detail"] for entry in quorum} == {quorum_detail}


# --- what is left out ------------------------------------------------------------------------------------------


def test_excluded_with_reasons():
    hosts = {
        "fixed": host("r", version="7.0.28"),
        "newer": host("r", version="7.0.30"),
        "old": host("r", version="6.9.9"),
        "unreachable": host("r", detect={"unreachable": True, "msg": "Failed to connect to the host via ssh: timed out"}),
        "failed": host("r", detect={"failed": True, "msg": "no fpdemo found"}),
        "damaged": host("r", detect={"version": "7.0.28", "interrupted": None, "state_error": "state file /s.json has no format field"}),
        "skipped": host("r", detect={"skipped": True}),
        "not-run": {"region": "r"},
        "report-row": {"region": "r", "version": "unknown"},
        "garbage": host("r", version="seven"),
        "patched": host("r", version="7.0.27"),
        "from-report": {"region": "r", "version": "7.0.26"},
    }
    result = plan(hosts, NO_CANARY)
    assert names(result) == [("r", ["from-report", "patched"])]
    assert [(entry["host"], entry["reason"], entry["detail"]) for entry in result["excluded"]] == [
        ("damaged", "unknown", "state file unusable: 'state file /s.json has no format field'"),
        ("failed", "unknown", "detection failed: 'no fpdemo found'"),
        ("fixed", "fixed", "runs 7.0.28, at or above the fixed version 7.0.28"),
        ("garbage", "unknown", "detected version 'seven' is not a version"),
        ("newer", "fixed", "runs 7.0.30, at or above the fixed version 7.0.28"),
        ("not-run", "unknown", "no detection result"),
        ("old", "not_affected", "runs 6.9.9, outside the affected range >=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"),
        ("report-row", "unknown", "no detection result"),
        ("skipped", "unknown", "detection was skipped"),
        ("unreachable", "unreachable",
         "unreachable at detection: 'Failed to connect to the host via ssh: timed out'; counts against the error budget as unknown"),
    ]
    assert result["summary"]["excluded"] == {"fixed": 2, "not_affected": 1, "unknown": 6, "unreachable": 1, "operator": 0, "quorum": 0}
    assert result["failures"] == [
        {"host": "unreachable", "wave": "detection", "status": "unknown",
         "why": "unreachable at detection: 'Failed to connect to the host via ssh: timed out'"}]


LOST = {"unreachable": True, "msg": "Failed to connect to the host via ssh: timed out"}


@pytest.mark.parametrize(("kwargs", "excluded", "failures"), [
    ({}, [("lost", "unreachable", "unreachable at detection: 'Failed to connect to the host via ssh: timed out'; "
                                  "counts against the error budget as unknown")], ["lost"]),
    ({"unreachable": "fail"}, [("lost", "unreachable", "unreachable at detection: 'Failed to connect to the host via ssh: timed out'; "
                                                       "counts against the error budget as unknown")], ["lost"]),
    ({"unreachable": "skip"}, [("lost", "unknown", "unreachable: 'Failed to connect to the host via ssh: timed out'; left out (unreachable: skip)")], []),
    ({"exclude_hosts": ["lost"]}, [("lost", "operator", "left out by the operator (exclude_hosts); "
                                                        "unreachable: 'Failed to connect to the host via ssh: timed out'")], []),
    ({"exclude_hosts": ["lost", "ok"]}, [
        ("lost", "operator", "left out by the operator (exclude_hosts); unreachable: 'Failed to connect to the host via ssh: timed out'"),
        ("ok", "operator", "left out by the operator (exclude_hosts); runs 7.0.26")], []),
    ({"exclude_hosts": ["odd"]}, [  # a host outside compatible_with may be left out instead of refusing the plan
        ("lost", "unreachable", "unreachable at detection: 'Failed to connect to the host via ssh: timed out'; "
                                "counts against the error budget as unknown"),
        ("odd", "operator", "left out by the operator (exclude_hosts); runs 8.0.16")], ["lost"]),
])
def test_unreachable_at_detection_counts_unless_left_out(kwargs, excluded, failures):
    hosts = {"lost": host("r", detect=LOST), "ok": host("r")}
    if kwargs.get("exclude_hosts") == ["odd"]:
        hosts["odd"] = host("r", version="8.0.16")
    result = plan(hosts, NO_CANARY, **kwargs)
    assert [(entry["host"], entry["reason"], entry["detail"]) for entry in result["excluded"]] == excluded
    assert [failure["host"] for failure in result["failures"]] == failures
    assert result["summary"]["left_out"] == {"exclude_hosts": sorted(kwargs.get("exclude_hosts", [])), "unreachable": kwargs.get("unreachable", "fail")}
    assert names(result) == ([] if "ok" in kwargs.get("exclude_hosts", []) else [("r", ["ok"])])


def test_a_host_left_out_by_name_is_not_detected():
    result = plan({"gone": host("r", detect={"skipped": True, "changed": False}), "ok": host("r")}, NO_CANARY, exclude_hosts=["gone"])
    assert [(entry["host"], entry["reason"], entry["detail"]) for entry in result["excluded"]] == [
        ("gone", "operator", "left out by the operator (exclude_hosts)")]
    assert result["failures"] == [] and names(result) == [("r", ["ok"])]


def test_an_unreachable_cluster_member_left_out_still_counts_as_down():
    hosts = {**cluster("db", 3), "db-2": host("r", cluster="db", role="secondary", detect=LOST)}
    for kwargs in ({}, {"unreachable": "skip"}, {"exclude_hosts": ["db-2"]}):
        result = plan(hosts, NO_CANARY, **kwargs)
        assert names(result) == [], kwargs  # 3 members, 1 down: no budget left
        assert {entry["reason"] for entry in result["excluded"] if entry["host"] != "db-2"} == {"quorum"}


@pytest.mark.parametrize(("kwargs", "lines"), [
    ({"exclude_hosts": "lost"}, ["exclude_hosts: expected a list of host names, got str 'lost'"]),
    ({"exclude_hosts": ["lost", 3, ""]}, ["exclude_hosts[1]: expected a host name, got 3", "exclude_hosts[2]: expected a host name, got ''"]),
    ({"exclude_hosts": ["lots"]}, ["exclude_hosts: 'lots' is not a host of the rollout (its hosts, after any --limit)"]),
    ({"unreachable": "ignore"}, ["unreachable: 'ignore' is not one of 'fail', 'skip'"]),
    ({"unreachable": None, "exclude_hosts": {"a": 1}}, ["exclude_hosts: expected a list of host names, got dict {'a': 1}",
                                                        "unreachable: None is not one of 'fail', 'skip'"]),
])
def test_bad_left_out_options(kwargs, lines):
    with pytest.raises(PlanError) as caught:
        plan({"lost": host("r", detect=LOST)}, NO_CANARY, **kwargs)
    assert caught.value.errors == lines


def applied(patch="FP-2025-14847", version="7.0.28", judged=None, **extra):
    entry = {"patch": patch, "component": "fpdemo", "version": version, "from": "7.0.26", "at": "2026-03-03T01:00:00Z", **extra}
    if judged:
        entry["judged"] = judged
    return entry


@pytest.mark.parametrize(("records", "judge_only"), [
    ([applied()], True),  # applied by a run that ended before the soak judged it
    ([applied(judged="2026-03-03T01:01:00Z")], False),
    ([], False),  # fixed by other means
    ([applied(patch="FP-2025-0001")], False),  # by another patch
    ([applied(), applied(patch="FP-2025-0001")], False),  # the last apply was another patch's
    ([applied(judged="2026-03-03T01:01:00Z"), applied(at="2026-03-04T00:00:00Z")], True),  # judged, rolled back, applied again
    ([applied(version="7.0.27")], False),  # the record is of another release than the one running
])
def test_a_host_patched_but_never_judged_is_planned_to_be_judged(records, judge_only):
    hosts = {"a": host("r", version="7.0.28", detect={"changed": False, "version": "7.0.28", "applied": records}), "b": host("r")}
    result = plan(hosts, NO_CANARY)
    entries = {entry["host"]: entry for wave in result["waves"] for entry in wave["hosts"]}
    assert {name: entry["judge_only"] for name, entry in entries.items()} == ({"a": True, "b": False} if judge_only else {"b": False})
    assert result["summary"]["judge_only"] == int(judge_only)
    if judge_only:
        assert entries["a"]["version"] == "7.0.28"
        assert entries["a"]["reason"] == ("r: no maintenance window; runs 7.0.28, applied by an earlier run of FP-2025-14847 that ended before "
                                          "its health was judged: judged now")
    else:
        assert [(entry["host"], entry["reason"]) for entry in result["excluded"]] == [("a", "fixed")]


def test_an_unjudged_host_keeps_to_its_window():
    records = [applied()]
    hosts = {"open": host("r", window=TUE_BERLIN, detect={"version": "7.0.28", "applied": records}),
             "closed": host("r", window=SAT_BERLIN, detect={"version": "7.0.28", "applied": records})}
    result = plan(hosts, NO_CANARY)
    (wave,) = result["waves"]
    assert [(entry["host"], entry["judge_only"], entry["window_end"], entry["next_window"]) for entry in wave["hosts"]] == [
        ("open", True, "2026-03-03T05:00:00Z", "2026-03-05T01:00:00Z")]
    assert [(entry["host"], entry["next_window"]) for entry in result["deferred"]] == [("closed", "2026-03-07T01:00:00Z")]
    assert result["deferred"][0]["detail"].endswith("that ended before its health was judged: judged now")


@pytest.mark.parametrize(("facts", "urgency", "window_end", "next_window"), [
    ({"window": TUE_BERLIN}, "routine", "2026-03-03T05:00:00Z", "2026-03-05T01:00:00Z"),  # closes Tuesday, opens again Thursday
    ({"window": TUE_BERLIN}, "emergency", None, None),  # overridden: no cutoff
    ({}, "routine", None, None),  # no window
])
def test_a_planned_host_with_a_cutoff_knows_its_next_window(facts, urgency, window_end, next_window):
    policy = {**NO_CANARY, "emergency": {"decided_by": "carol", "justification": "exploited"}} if urgency == "emergency" else NO_CANARY
    result = plan({"a": host("r", **facts)}, policy, urgency=urgency)
    (entry,) = result["waves"][0]["hosts"]
    assert (entry["window_end"], entry["next_window"]) == (window_end, next_window)


@pytest.mark.parametrize(("detected", "planned_at", "excluded"), [
    ({"version": "7.0.28", "interrupted": {"op": "apply", "step": "switched", "from": "7.0.26", "to": "7.0.28"}}, "7.0.26", None),
    ({"version": "7.0.26", "interrupted": {"op": "apply", "step": "unpacked", "from": "7.0.26", "to": "7.0.28"}}, "7.0.26", None),
    ({"version": "7.0.28", "interrupted": {"op": "rollback", "step": "switched", "from": "7.0.28", "to": "7.0.26"}}, None, "fixed"),
    ({"version": "7.0.28", "interrupted": None}, None, "fixed"),
])
def test_a_cut_off_apply_counts_at_the_release_it_goes_back_to(detected, planned_at, excluded):
    result = plan({"cut": host("r", detect={"changed": False, **detected})}, NO_CANARY)
    assert [entry["version"] for wave in result["waves"] for entry in wave["hosts"]] == ([planned_at] if planned_at else [])
    assert [entry["reason"] for entry in result["excluded"]] == ([excluded] if excluded else [])


def test_mixed_versions_refused_naming_every_host():
    hosts = {"ok": host("r"), "old-7": host("r", version="7.0.20"), "eight": host("r", version="8.0.16"), "fixed": host("r", version="8.0.17")}
    with pytest.raises(PlanError) as error:
        plan(hosts)
    assert str(error.value).splitlines() == [
        "refusing to plan: 2 host(s) in scope run a version outside compatible_with '>=7.0.26,<7.1', which cannot run beside 7.0.28 "
        "during the rollout (leave them out of the rollout's hosts, or fix the manifest):",
        "eight: 8.0.16",
        "old-7: 7.0.20",
    ]
    assert error.value.hosts == {"old-7": "7.0.20", "eight": "8.0.16"}


# --- windows and urgency ---------------------------------------------------------------------------------------


def test_routine_defers_hosts_outside_their_window():
    hosts = {"in": host("r", customer="acme", window=TUE_BERLIN), "out": host("r", customer="acme", window=SAT_BERLIN), "free": host("r")}
    result = plan(hosts, NO_CANARY)
    assert names(result) == [("r", ["free", "in"])]
    entries = {entry["host"]: entry for entry in result["waves"][0]["hosts"]}
    assert (entries["in"]["window"], entries["in"]["window_end"]) == ("open", "2026-03-03T05:00:00Z")
    assert (entries["free"]["window"], entries["free"]["window_end"]) == ("none", None)
    assert entries["in"]["reason"] == "r: in its maintenance window until 2026-03-03T05:00:00Z"
    assert result["deferred"] == [{
        "host": "out", "region": "r", "cluster": None, "customer": "acme", "version": "7.0.26", "reason": "outside_window",
        "detail": "routine patch: only inside the maintenance window",
        "next_window": "2026-03-07T01:00:00Z", "next_window_end": "2026-03-07T05:00:00Z",
        "progress_at": "2026-03-07T01:00:00Z", "progress": "its next maintenance window opens",
    }]
    assert result["overrides"] == []
    assert result["follow_up"] == {"at": "2026-03-07T01:00:00Z", "hosts": ["out"], "why": ["its next maintenance window opens"]}


def test_customer_windows_and_unwindowed_defer():
    hosts = {"acme-1": host("r", customer="acme"), "own": host("r", customer="acme", window=TUE_BERLIN), "nobody": host("r")}
    result = plan(hosts, {**NO_CANARY, "customer_windows": {"acme": SAT_BERLIN}, "unwindowed": "defer"})
    assert names(result) == [("r", ["own"])]
    assert [(entry["host"], entry["reason"], entry["next_window"]) for entry in result["deferred"]] == [
        ("acme-1", "outside_window", "2026-03-07T01:00:00Z"),
        ("nobody", "no_window", None),
    ]
    # A host deferred for having no window is never freed by time; the follow-up names the one that is.
    assert result["follow_up"] == {"at": "2026-03-07T01:00:00Z", "hosts": ["acme-1"], "why": ["its next maintenance window opens"]}


NOTIFIED = {"notifications": [
    {"customer": "acme", "patch_id": "FP-2025-14847", "notified_at": "2026-03-02T10:30:00Z", "channel": "email", "by": "jane"},    # 15h exactly
    {"customer": "globex", "patch_id": "FP-2025-14847", "notified_at": "2026-03-02T10:30:01Z", "channel": "phone", "by": "bob"},  # 1 s short
    {"customer": "hooli", "patch_id": "FP-2025-00001", "notified_at": "2026-01-01T00:00:00Z", "channel": "email", "by": "jane"},  # other patch
]}


def test_urgent_overrides_only_pre_notified_customers():
    hosts = {
        "acme-1": host("r", customer="acme", window=SAT_BERLIN),
        "acme-2": host("r", customer="acme", window=TUE_BERLIN),
        "globex-1": host("r", customer="globex", window=SAT_BERLIN),
        "hooli-1": host("r", customer="hooli", window=SAT_BERLIN),
        "nobody-1": host("r", window=SAT_BERLIN),
    }
    result = plan(hosts, NO_CANARY, urgency="urgent", notifications=NOTIFIED)
    assert names(result) == [("r", ["acme-1", "acme-2"])]
    entries = {entry["host"]: entry for entry in result["waves"][0]["hosts"]}
    assert (entries["acme-1"]["window"], entries["acme-1"]["window_end"]) == ("override", None)
    # inside its window anyway, but it may go on after the window closes: no cutoff
    assert (entries["acme-2"]["window"], entries["acme-2"]["window_end"]) == ("open", None)
    told = "urgent patch: customer acme notified at 2026-03-02T10:30:00Z by jane via email, at least the lead time 15h ago"
    assert result["overrides"] == [{"host": "acme-1", "customer": "acme", "reason": "urgent", "detail": told, "next_window": "2026-03-07T01:00:00Z"}]
    assert [(entry["host"], entry["detail"]) for entry in result["deferred"]] == [
        ("globex-1", "urgent patch: customer globex notified at 2026-03-02T10:30:01Z, lead time 15h not reached until 2026-03-03T01:30:01Z, "
                     "so its window holds"),
        ("hooli-1", "urgent patch: customer hooli has no pre-notification of FP-2025-14847, so its window holds"),
        ("nobody-1", "urgent patch: the host has no customer to pre-notify, so its window holds"),
    ]
    assert {entry["next_window"] for entry in result["deferred"]} == {"2026-03-07T01:00:00Z"}
    # globex was told 1 s too late: a run after its lead time passes may override its window, long before Saturday.
    assert {entry["host"]: (entry["progress_at"], entry["progress"]) for entry in result["deferred"]} == {
        "globex-1": ("2026-03-03T01:30:01Z", "the lead time since customer globex's notice passes"),
        "hooli-1": ("2026-03-07T01:00:00Z", "its next maintenance window opens"),
        "nobody-1": ("2026-03-07T01:00:00Z", "its next maintenance window opens"),
    }
    assert result["follow_up"] == {"at": "2026-03-03T01:30:01Z", "hosts": ["globex-1"],
                                   "why": ["the lead time since customer globex's notice passes"]}


def test_urgent_without_notification_file_defers_out_of_window_hosts():
    result = plan({"acme-1": host("r", customer="acme", window=SAT_BERLIN)}, NO_CANARY, urgency="urgent")
    assert result["deferred"][0]["detail"] == "urgent patch: customer acme has no pre-notification of FP-2025-14847, so its window holds"


def test_notifications_from_a_file(tmp_path):
    path = tmp_path / "told.yml"
    path.write_text(yaml.safe_dump(NOTIFIED), encoding="utf-8")
    result = plan({"acme-1": host("r", customer="acme", window=SAT_BERLIN)}, NO_CANARY, urgency="urgent", notifications=str(path))
    assert [entry["host"] for entry in result["overrides"]] == ["acme-1"]


def test_emergency_overrides_every_window_and_records_who_decided():
    hosts = {"out": host("r", customer="acme", window=SAT_BERLIN), "in": host("r", window=TUE_BERLIN)}
    decision = {"decided_by": "Jane Doe (CISO)", "justification": "exploited in the wild since 2026-03-02"}
    result = plan(hosts, {**NO_CANARY, "emergency": decision}, urgency="emergency")
    assert names(result) == [("r", ["in", "out"])]
    detail = "emergency patch: windows overridden, decided by Jane Doe (CISO): exploited in the wild since 2026-03-02"
    assert result["overrides"] == [{"host": "out", "customer": "acme", "reason": "emergency", "detail": detail, "next_window": "2026-03-07T01:00:00Z"}]
    assert [entry["window_end"] for entry in result["waves"][0]["hosts"]] == [None, None]
    assert result["summary"]["emergency"] == decision


@pytest.mark.parametrize(
    "emergency",
    [None, {"decided_by": "jane"}, {"decided_by": "", "justification": "x"}],
)
def test_emergency_needs_who_and_why(emergency):
    policy = {"emergency": emergency} if emergency is not None else None
    with pytest.raises(PlanError) as error:
        plan({"a": host("r")}, policy, urgency="emergency")
    expected = {
        None: ["policy.emergency: required when the manifest's urgency is 'emergency': who decided to override the maintenance windows "
               "(decided_by) and why (justification)"],
        "jane": ["policy.emergency.justification: required field missing"],
        "": ["policy.emergency.decided_by: must not be empty, got ''"],
    }[None if emergency is None else emergency["decided_by"]]
    assert str(error.value).splitlines() == expected


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "lines"),
    [
        ({"canary": {"count": 1, "percent": 5}}, ["policy.canary: give count or percent, not both"]),
        ({"canary": {"spread": "regions", "region": "a"}}, ["policy.canary: give spread or region, not both"]),
        ({"canary": {"count": -1, "spread": "zones"}}, ["policy.canary.count: -1 is less than 0", "policy.canary.spread: 'zones' is not one of 'regions'"]),
        ({"canary": {"percent": 101}}, ["policy.canary.percent: 101 is more than 100"]),
        ({"batch": {}}, ["policy.batch: give count or percent"]),
        ({"batch": {"count": 2, "percent": 50}}, ["policy.batch: give count or percent, not both"]),
        ({"batch": {"count": 0}}, ["policy.batch.count: 0 is less than 1"]),
        ({"batch": {"percent": 0}}, ["policy.batch.percent: 0 is not more than 0"]),
        ({"batch": {"count": "2"}}, ["policy.batch.count: '2' is not of type 'integer'"]),
        ({"max_unavailable": 0}, ["policy.max_unavailable: 0 is not a count of at least 1 or a mapping of cluster name to such a count"]),
        ({"max_unavailable": {"db": 0}}, ["policy.max_unavailable: {'db': 0} is not a count of at least 1 or a mapping of cluster name to such a count"]),
        ({"region_order": ["a", "a"]}, ["policy.region_order: ['a', 'a'] lists an item more than once"]),
        ({"region_order": "a,b"}, ["policy.region_order: 'a,b' is not of type 'array'"]),
        ({"unwindowed": "never"}, ["policy.unwindowed: 'never' is not one of 'anytime', 'defer'"]),
        ({"waves": 3}, ["policy.waves: unknown field (value 3)"]),
        ({"customer_windows": {"acme": {"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Mars/Base"}}},
         ["policy.customer_windows.acme.timezone: 'Mars/Base' is not an IANA time zone such as 'Europe/Berlin'"]),
        ({"customer_windows": {"acme": "tue 02:00"}}, ["policy.customer_windows.acme: 'tue 02:00' is not of type 'object'"]),
        (["canary"], ["policy: expected a mapping, got list ['canary']"]),
    ],
)
def test_bad_policy(policy, lines):
    with pytest.raises(PlanError) as error:
        plan({"a": host("r")}, policy)
    assert str(error.value).splitlines() == lines


def test_policy_defaults():
    assert validate_policy(None) == {
        "canary": {"count": 1, "spread": "regions"}, "region_order": [], "batch": {"percent": 100}, "max_unavailable": None,
        "unwindowed": "anytime", "customer_windows": {}, "emergency": None,
    }
    assert validate_policy({"canary": {"region": "eu"}})["canary"] == {"region": "eu", "count": 1}


@pytest.mark.parametrize(
    ("hosts", "policy", "lines"),
    [
        ({"a": host("r", "db", "leader")}, None, ["a: cluster_role: 'leader' is not one of 'primary', 'secondary'"]),
        ({"a": host(5), "b": host("r", customer="")}, None, ["a: region: 5 is not a non-empty string", "b: customer: '' is not a non-empty string"]),
        ({"a": "r"}, None, ["a: expected a mapping of host variables, got str 'r'"]),
        ([{"host": "a"}, {"name": "b"}, {"host": "a"}, {"region": "r"}], None,
         ["hosts[2]: host 'a' is listed twice", "hosts[3]: expected a mapping naming its host (host: <name>), got {'region': 'r'}"]),
        ("a,b", None, ["hosts: expected a mapping of host name to variables or a list of them, got str 'a,b'"]),
        ({"a": host("r", window={"days": ["tue"], "start": "2am", "duration": "4h", "timezone": "Mars/Base"})}, None, [
            "a: maintenance_window.start: '2am' is not a time of day such as '02:00' (HH:MM, 24-hour clock)",
            "a: maintenance_window.timezone: 'Mars/Base' is not an IANA time zone such as 'Europe/Berlin'",
        ]),
        ({"a": host("r")}, {"canary": {"region": "eu"}}, ["policy.canary.region: 'eu' is not the region of any host (regions: r)"]),
        ({"a": host("r", window=SAT_BERLIN), "b": host("s")}, {"canary": {"region": "r"}},
         ["policy.canary.region: no host of region 'r' can be patched now (each is excluded or deferred): choose another canary region"]),
    ],
)
def test_bad_hosts(hosts, policy, lines):
    with pytest.raises(PlanError) as error:
        plan(hosts, policy)
    assert str(error.value).splitlines() == lines


@pytest.mark.parametrize(
    ("changes", "lines"),
    [
        ({"urgency": "soon"}, ["manifest.urgency: 'soon' is not one of 'routine', 'urgent', 'emergency'"]),
        ({"urgency": "urgent", "notify": {}},
         ["manifest.notify.lead_time: required when urgency is 'urgent': None is not a duration such as 30s, 5m, 15h or 1h30m "
          "(whole numbers with the units d, h, m, s, in that order)"]),
        ({"compatible_with": "", "fixed_version": "x"}, [
            "manifest.compatible_with: a version range must be a non-empty string, got ''",
            "manifest.fixed_version: 'x' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)",
        ]),
        ({"id": None}, ["manifest.id: required, got None"]),
    ],
)
def test_bad_manifest(changes, lines):
    with pytest.raises(PlanError) as error:
        plan_waves({"a": host("r")}, manifest(**changes), now=NOW)
    assert str(error.value).splitlines() == lines


def test_bad_now_and_notifications():
    with pytest.raises(PlanError) as error:
        plan({"a": host("r")}, now="yesterday")
    assert str(error.value) == "now: 'yesterday' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"
    with pytest.raises(PlanError) as error:
        plan({"a": host("r")}, notifications={"notifications": [{"customer": "acme"}]})
    assert str(error.value).splitlines()[0] == "<notifications>: notifications[0].by: required field missing"


def test_long_error_lists_are_cut():
    hosts = {f"h{n:03d}": host("r", "db", "leader") for n in range(60)}
    with pytest.raises(PlanError) as error:
        plan(hosts)
    lines = str(error.value).splitlines()
    assert len(lines) == 51 and lines[-1] == "... and 10 more"
    assert len(error.value.errors) == 60


# --- shape, determinism, the demo fleet --------------------------------------------------------------------------


def test_same_plan_from_a_list_in_any_order_and_a_mapping():
    hosts = {**cluster("x", 3, "eu"), **cluster("y", 5, "us"), **regions({"eu": 2, "ap": 3}), "w": host("eu", window=TUE_BERLIN)}
    expected = plan(hosts, {"canary": {"count": 2}, "batch": {"count": 3}})
    rows = [dict(facts, host=name) for name, facts in hosts.items()]
    random.Random(7).shuffle(rows)
    assert plan(rows, {"canary": {"count": 2}, "batch": {"count": 3}}) == expected
    json.dumps(expected)  # plain data


def test_detect_key_names_the_registered_result():
    hosts = {"a": {"region": "r", "fleetpatch_detected": {"version": "7.0.26", "changed": False}}}
    assert names(plan(hosts, NO_CANARY, detect_key="fleetpatch_detected")) == [("r", ["a"])]
    assert plan(hosts, NO_CANARY)["excluded"][0]["reason"] == "unknown"


def demo_hosts():
    """The demo inventory's hosts with the versions the demo fleet starts with (fleetpatch_dev.fleet.demo_layout)."""
    hosts = yaml.safe_load(DEMO_INVENTORY.read_text(encoding="utf-8"))["all"]["hosts"]
    order = ["euw-01", "use-01", "aps-01", "euw-02", "use-02", "aps-02", "euw-03", "use-03", "aps-03", "euw-04", "use-04", "aps-04"]
    for index, name in enumerate(order):
        hosts[name]["detect"] = {"version": "7.0.27" if index % 4 == 3 else "7.0.26"}
    hosts["aps-04"]["detect"] = {"version": "7.0.28"}
    return hosts


def test_demo_inventory_routine_on_tuesday_night_in_europe():
    result = plan(demo_hosts(), None, now="2026-03-03T01:30:00Z")
    # Only the Tuesday/Thursday Berlin windows are open: the secondary first (as the canary), its primary after.
    assert names(result) == [("canary", ["euw-03"]), ("eu-west", ["euw-01"])]
    assert [entry["window_end"] for wave in result["waves"] for entry in wave["hosts"]] == ["2026-03-03T05:00:00Z"] * 2
    assert [(entry["host"], entry["reason"]) for entry in result["excluded"]] == [("aps-04", "fixed")]
    assert {entry["host"]: entry["next_window"] for entry in result["deferred"]} == {
        "aps-01": "2026-03-04T20:30:00Z", "aps-02": "2026-03-06T20:30:00Z", "aps-03": "2026-03-04T20:30:00Z",
        "euw-02": "2026-03-07T01:00:00Z", "euw-04": "2026-03-07T01:00:00Z",
        "use-01": "2026-03-07T07:00:00Z", "use-02": "2026-03-03T07:00:00Z", "use-03": "2026-03-07T07:00:00Z", "use-04": "2026-03-03T07:00:00Z",
    }
    assert result["summary"]["planned"] == 2 and result["summary"]["deferred"] == 9


def test_demo_inventory_emergency():
    decision = {"decided_by": "Jane Doe (CISO)", "justification": "exploited in the wild"}
    result = plan(demo_hosts(), {"canary": {"count": 3}, "emergency": decision}, urgency="emergency", now="2026-03-03T01:30:00Z")
    # One canary per region, hosts outside the clusters first; then each 3-member cluster one member at a time,
    # its primary last.
    assert names(result) == [
        ("canary", ["aps-01", "euw-04", "use-04"]),
        ("ap-south", ["aps-02", "aps-03"]),
        ("eu-west 1/3", ["euw-02"]),
        ("eu-west 2/3", ["euw-03"]),
        ("eu-west 3/3", ["euw-01"]),
        ("us-east 1/3", ["use-02"]),
        ("us-east 2/3", ["use-03"]),
        ("us-east 3/3", ["use-01"]),
    ]
    assert result["summary"]["region_order"] == ["ap-south", "eu-west", "us-east"]
    assert result["summary"]["overrides"] == 9  # the two hosts in their open Berlin window are not overrides


def random_fleet(seed, count):
    """Hosts in 4 regions, clusters of 1 to 6 members that may span regions, some unknown or fixed."""
    rng = random.Random(seed)
    hosts = {}
    index = 0
    while index < count:
        size = rng.choice([0, 0, 1, 2, 3, 3, 5, 5, 6])
        name = f"c{index}"
        for member in range(max(size, 1)):
            facts = host(rng.choice("abcd") if rng.random() > 0.05 else None, version=rng.choice(["7.0.26", "7.0.27", "7.0.27", "7.0.28"]))
            if size:
                facts.update(cluster=name, cluster_role="primary" if member == 0 else rng.choice(["secondary", "secondary", None]))
            if rng.random() < 0.05:
                facts["detect"] = {"unreachable": True}
            hosts[f"h{index:04d}"] = facts
            index += 1
    return hosts


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "policy",
    [None, {"canary": {"percent": 10}, "batch": {"count": 7}}, {"canary": {"count": 5, "region": "b"}, "batch": {"percent": 30}, "max_unavailable": 2}],
)
def test_invariants_on_random_fleets(seed, policy):
    hosts = random_fleet(seed, 400)
    result = plan(hosts, policy)
    placed = {entry["host"]: wave["index"] for wave in result["waves"] for entry in wave["hosts"]}
    listed = [entry["host"] for wave in result["waves"] for entry in wave["hosts"]]
    others = [entry["host"] for key in ("excluded", "deferred") for entry in result[key]]
    # every host exactly once: in a wave, excluded or deferred
    assert sorted(listed + others) == sorted(hosts)
    members = {}
    for name, facts in hosts.items():
        if facts.get("cluster"):
            members.setdefault(facts["cluster"], []).append(name)
    for cluster_name, names_in in members.items():
        unknown = sum(1 for name in names_in if hosts[name]["detect"].get("unreachable"))
        limit = (policy or {}).get("max_unavailable", (len(names_in) - 1) // 2)
        per_wave = {}
        for name in names_in:
            if name in placed:
                per_wave[placed[name]] = per_wave.get(placed[name], 0) + 1
        # no wave takes more of a cluster down than its budget, members of unknown state counted as down
        assert all(count + unknown <= limit for count in per_wave.values()), (cluster_name, per_wave, unknown, limit)
        secondaries = [placed[name] for name in names_in if name in placed and hosts[name]["cluster_role"] != "primary"]
        for name in names_in:
            if name in placed and hosts[name]["cluster_role"] == "primary" and secondaries:
                assert placed[name] > max(secondaries), (cluster_name, name)
    assert result["summary"]["planned"] == len(listed) > 150


def test_shared_and_fresh_window_objects_give_the_same_plan():
    shared = dict(TUE_BERLIN)
    one = {f"s{n}": host("r", window=shared) for n in range(3)}
    fresh = {f"s{n}": host("r", window=dict(TUE_BERLIN)) for n in range(3)}
    one["x"] = fresh["x"] = host("r", window=dict(SAT_BERLIN))
    assert plan(one, NO_CANARY) == plan(fresh, NO_CANARY)
    assert names(plan(one, NO_CANARY)) == [("r", ["s0", "s1", "s2"])]


# --- survey-style inputs laid over the policy ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("policy", "inputs", "expected"),
    [
        ({}, {}, {}),
        (None, {"canary_count": None, "region_order": "", "unwindowed": "  "}, {}),  # unanswered survey fields
        ({"canary": {"percent": 10, "spread": "regions"}}, {"canary_count": "2"}, {"canary": {"count": 2, "spread": "regions"}}),
        ({"canary": {"count": 1, "spread": "regions"}}, {"canary_region": " eu "}, {"canary": {"count": 1, "region": "eu"}}),
        ({"canary": {"count": 3}}, {"canary_percent": "12.5"}, {"canary": {"percent": 12.5}}),
        ({}, {"region_order": "eu, us,,ap"}, {"region_order": ["eu", "us", "ap"]}),
        ({"region_order": ["us"]}, {"region_order": ["eu", "us"]}, {"region_order": ["eu", "us"]}),
        ({"batch": {"percent": 50}}, {"batch_count": 4}, {"batch": {"count": 4}}),
        ({"batch": {"count": 4}}, {"batch_percent": 25}, {"batch": {"percent": 25}}),
        ({"unwindowed": "anytime", "max_unavailable": 1}, {"unwindowed": "defer"}, {"unwindowed": "defer", "max_unavailable": 1}),
        ({"emergency": {"decided_by": "ciso", "justification": "old"}}, {"emergency_justification": "exploited in the wild"},
         {"emergency": {"decided_by": "ciso", "justification": "exploited in the wild"}}),
        ({}, {"emergency_decided_by": "ciso", "emergency_justification": "exploited"}, {"emergency": {"decided_by": "ciso", "justification": "exploited"}}),
    ],
)
def test_policy_inputs_lay_over_the_policy(policy, inputs, expected):
    before = copy.deepcopy(policy)
    merged = policy_with_inputs(policy, inputs)
    assert merged == expected
    assert policy == before  # the inventory's mapping is never changed
    validate_policy(merged)  # and what results is a policy the planner takes


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"canary_count": "two"}, "fleetpatch_canary_count: expected a whole number, 0 or more, got 'two'"),
        ({"canary_count": 1.5}, "fleetpatch_canary_count: expected a whole number, 0 or more, got 1.5"),
        ({"batch_count": True}, "fleetpatch_batch_count: expected a whole number, 0 or more, got True"),
        ({"batch_percent": "half"}, "fleetpatch_batch_percent: expected a percentage, got 'half'"),
        ({"region_order": {"eu": 1}}, "fleetpatch_region_order: expected region names, a list or one text separated by commas, got {'eu': 1}"),
        ({"region_order": ["eu", 3]}, "fleetpatch_region_order: expected region names, a list or one text separated by commas, got ['eu', 3]"),
        ({"canary_region": ["eu"]}, "fleetpatch_canary_region: expected text, got list ['eu']"),
        ({"canary_size": 2}, "unknown policy input(s) canary_size: expected canary_count, canary_percent, canary_region, region_order, "
                             "batch_count, batch_percent, unwindowed, emergency_decided_by, emergency_justification"),
    ],
)
def test_policy_inputs_of_the_wrong_kind_are_named(inputs, message):
    with pytest.raises(PlanError) as raised:
        policy_with_inputs({}, inputs)
    assert str(raised.value) == message


def test_a_policy_input_that_breaks_the_policy_is_named_when_the_plan_is_checked():
    with pytest.raises(PlanError) as raised:
        validate_policy(policy_with_inputs({}, {"unwindowed": "sometimes"}))
    assert "policy.unwindowed" in str(raised.value) and "'sometimes'" in str(raised.value)


def test_no_deferred_host_no_follow_up():
    result = plan({"free": host("r")}, NO_CANARY)
    assert result["deferred"] == [] and result["follow_up"] is None
