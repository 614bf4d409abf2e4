"""What the roles gather from every host's variables (plugin_utils/_fleet_view.py), table by table."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._fleet_view import (
    ViewError, canary_peers, detect_rows, rollback_members, rollback_rows, rollout_hosts,
)


def test_rollout_hosts_reads_each_hosts_facts():
    hostvars = {
        "a": {"region": "eu", "cluster": "db", "__rollout_detected": {"version": "7.0.27"}, "guarded_apply_result": {"status": "patched"},
              "guarded_apply_apply": {"version": "7.0.28", "changed": True}, "__rollout_may_start": True, "unrelated": object()},
        "b": {"region": "us", "__rollout_detected": {"failed": True, "msg": "x"}, "__rollout_wave_rollback": {"changed": True}, "__rollout_may_start": "false"},
        "c": {},
        "not-in-play": {"region": "ap"},
    }
    assert rollout_hosts(hostvars, ["a", "b", "c", "gone"]) == {
        "a": {"region": "eu", "cluster": "db", "version": "7.0.27", "guarded_apply_result": {"status": "patched"},
              "applied": {"version": "7.0.28", "changed": True}, "rollback": None, "window_closed": False},
        "b": {"region": "us", "cluster": None, "version": None, "guarded_apply_result": None, "applied": None,
              "rollback": {"changed": True}, "window_closed": True},
        "c": {"region": None, "cluster": None, "version": None, "guarded_apply_result": None, "applied": None, "rollback": None,
              "window_closed": False},
        "gone": {"region": None, "cluster": None, "version": None, "guarded_apply_result": None, "applied": None, "rollback": None,
                 "window_closed": False},
    }


@pytest.mark.parametrize(("may_start", "closed"), [(True, False), (False, True), ("True", False), ("no", True), ("0", True), (None, True)])
def test_rollout_hosts_reads_the_window_flag_as_ansible_does(may_start, closed):
    assert rollout_hosts({"a": {"__rollout_may_start": may_start}}, ["a"])["a"]["window_closed"] is closed


def _plan(*waves):
    return {"waves": [{"index": index, "name": f"w{index}", "hosts": [{"host": host} for host in hosts]} for index, hosts in enumerate(waves, 1)]}


@pytest.mark.parametrize(("wave", "expected"), [
    # canary wave: every host not in it is a peer, per region, in the play's order
    (1, {"eu": [{"m": "b"}, {"m": "d"}], "us": [{"m": "c"}], "-": [{"m": "e"}]}),
    # the second wave: the canary and the wave's own hosts are not peers any more
    (2, {"-": [{"m": "e"}]}),
    (3, {}),
])
def test_canary_peers(wave, expected):
    hostvars = {
        "a": {"region": "eu", "__rollout_baseline": {"metrics": {"m": "a"}}},
        "b": {"region": "eu", "__rollout_baseline": {"metrics": {"m": "b"}}},
        "c": {"region": "us", "__rollout_baseline": {"metrics": {"m": "c"}}},
        "d": {"region": "eu", "__rollout_baseline": {"metrics": {"m": "d"}}},
        "e": {"__rollout_baseline": {"metrics": {"m": "e"}}},
        "f": {"region": "us", "__rollout_baseline": {"skipped": True}},  # no baseline (judged only, or unreachable)
    }
    plan = _plan(["a"], ["b", "c", "d"], ["e", "f"])
    assert canary_peers(hostvars, ["a", "b", "c", "d", "e", "f"], plan, plan["waves"][wave - 1]) == expected


@pytest.mark.parametrize(("args", "message"), [
    (({}, "a", _plan(), {"index": 1}), "hosts: expected a list of host names, got str 'a'"),
    (({}, ["a", 3], _plan(), {"index": 1}), "hosts[1]: expected a host name, got 3"),
    (({}, [], [], {"index": 1}), "plan: expected a wave plan (a mapping with waves), got list"),
    (({}, [], _plan(), {"name": "x"}), "wave: expected a wave of the plan (a mapping with an index), got {'name': 'x'}"),
    ((["a"], ["a"], _plan(), {"index": 1}), "hostvars: expected a mapping of host names to their variables, got list"),
])
def test_canary_peers_names_the_bad_argument(args, message):
    with pytest.raises(ViewError) as caught:
        canary_peers(*args)
    assert str(caught.value) == message


def test_rollback_members_count_the_whole_inventorys_cluster():
    hostvars = {
        "db1": {"cluster": "db", "cluster_role": "primary"}, "db2": {"cluster": "db", "cluster_role": "secondary"},
        "db3": {"cluster": "db"},  # not in the run: still a member
        "web": {"region": "eu"}, "kv1": {"cluster": "kv"}, "other": {"cluster": "elsewhere"},
    }
    assert rollback_members(hostvars, ["db1", "db2", "web", "kv1"]) == [
        {"host": "db1", "cluster": "db", "cluster_role": "primary", "cluster_size": 3},
        {"host": "db2", "cluster": "db", "cluster_role": "secondary", "cluster_size": 3},
        {"host": "web", "cluster": None, "cluster_role": None, "cluster_size": 0},
        {"host": "kv1", "cluster": "kv", "cluster_role": None, "cluster_size": 1},
    ]


@pytest.mark.parametrize(("result", "outcome", "msg"), [
    (None, "unknown", "not reached: the run never rolled it back"),
    ({"unreachable": True, "msg": "ssh: timeout"}, "unknown", "ssh: timeout"),
    ({"failed": True, "msg": "no previous release"}, "failed", "no previous release"),
    ({"skipped": True}, "unknown", ""),
    ({"carries": False, "changed": False, "version": "7.0.27"}, "not carrying", ""),
    ({"carries": True, "changed": True, "previous": "7.0.28", "version": "7.0.27"}, "rolled back", ""),
    ({"carries": True, "changed": False, "version": "7.0.27"}, "already back", ""),
])
def test_rollback_rows(result, outcome, msg):
    facts = {"region": "eu", "cluster": "db", "__rollback_rolled_round": 2}
    if result is not None:
        facts["__rollback_rolled"] = result
    rows = rollback_rows({"h": facts}, ["h"])
    assert rows == [{"host": "h", "region": "eu", "cluster": "db", "round": 2, "outcome": outcome,
                     "from": (result or {}).get("previous") or "-", "to": (result or {}).get("version") or "-", "msg": msg}]


def test_rollback_rows_report_hosts_left_out_by_name():
    rows = rollback_rows({"a": {"__rollback_rolled": {"unreachable": True}}, "b": {}}, ["a", "b"], excluded=["a"])
    assert [(row["host"], row["outcome"], row["msg"]) for row in rows] == [
        ("a", "left out", "left out by name"), ("b", "unknown", "not reached: the run never rolled it back")]


def test_rollback_rows_are_sorted_and_fill_blanks():
    rows = rollback_rows({"b": {}, "a": {"__rollback_rolled": {"carries": False}}}, ["b", "a"])
    assert [(row["host"], row["region"], row["cluster"], row["round"], row["outcome"]) for row in rows] == [
        ("a", "-", "-", "-", "not carrying"), ("b", "-", "-", "-", "unknown")]


@pytest.mark.parametrize(("result", "expected"), [
    ({"version": "7.0.27", "affected": True, "fixed": False, "applied": [{"patch": "FP-1"}, {"patch": "FP-2"}], "changed": False},
     {"version": "7.0.27", "affected": True, "fixed": False, "applied": ["FP-1", "FP-2"], "msg": "",
      "detected": {"version": "7.0.27", "affected": True, "fixed": False, "applied": [{"patch": "FP-1"}, {"patch": "FP-2"}]}}),
    ({"version": "7.0.28", "affected": None, "fixed": None, "applied": None},
     {"version": "7.0.28", "affected": None, "fixed": None, "applied": [], "msg": "",
      "detected": {"version": "7.0.28", "affected": None, "fixed": None, "applied": None}}),
    ({"unreachable": True, "msg": "Failed to connect"},
     {"version": "unknown", "affected": "unknown", "fixed": "unknown", "applied": [], "msg": "Failed to connect",
      "detected": {"unreachable": True, "msg": "Failed to connect"}}),
    ({"failed": True, "msg": "no such install_dir", "version": "7.0.1"},
     {"version": "unknown", "affected": "unknown", "fixed": "unknown", "applied": [], "msg": "no such install_dir",
      "detected": {"failed": True, "msg": "no such install_dir"}}),
    (None, {"version": "unknown", "affected": "unknown", "fixed": "unknown", "applied": [], "msg": "not reached",
            "detected": {"msg": "not reached"}}),
])
def test_detect_rows(result, expected):
    facts = {"region": "us", "found": result} if result is not None else {"region": "us"}
    assert detect_rows({"h": facts}, ["h"], result="found") == [{"host": "h", "region": "us", "cluster": "-", **expected}]
