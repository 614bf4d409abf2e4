"""The availability rule and the rollback rounds built on it."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._availability import AvailabilityError, max_unavailable, rollback_rounds


@pytest.mark.parametrize(("members", "limit", "expected"), [
    (1, None, 0), (2, None, 0), (3, None, 1), (4, None, 1), (5, None, 2), (7, None, 3), (3, 2, 2), (3, 0, 0),
])
def test_max_unavailable_keeps_a_strict_majority_up(members, limit, expected):
    assert max_unavailable(members, limit) == expected


@pytest.mark.parametrize("limit", [-1, 1.5, "2", True])
def test_a_bad_limit_is_named(limit):
    with pytest.raises(AvailabilityError) as caught:
        max_unavailable(3, limit)
    assert str(caught.value) == f"max_unavailable: {limit!r} is not a count of hosts (an integer, 0 or more)"


def member(name, cluster=None, role="secondary", size=None):
    return {"host": name, "cluster": cluster, "cluster_role": role if cluster else None, "cluster_size": size}


@pytest.mark.parametrize(("hosts", "limits", "rounds"), [
    ([], None, []),
    ([member("web2"), member("web1")], None, [["web1", "web2"]]),
    # three members: one at a time, secondaries first, the primary last; hosts of no cluster go first
    ([member("db1", "db", "primary"), member("db2", "db"), member("db3", "db"), member("web")], None,
     [["db2", "web"], ["db3"], ["db1"]]),
    # five members: two at a time
    ([member(f"db{i}", "db", "primary" if i == 1 else "secondary") for i in range(1, 6)], None, [["db2", "db3"], ["db4", "db5"], ["db1"]]),
    # an explicit limit
    ([member(f"db{i}", "db", "primary" if i == 1 else "secondary") for i in range(1, 4)], {"db": 2}, [["db2", "db3"], ["db1"]]),
    # two members (budget 0) still go one at a time
    ([member("a1", "a", "primary"), member("a2", "a")], None, [["a2"], ["a1"]]),
    # only two of five members in play, but the cluster has five: two may go at once
    ([member("db1", "db", "primary", 5), member("db2", "db", size=5)], None, [["db1", "db2"]]),
    # two clusters side by side share rounds
    ([member("a1", "a", "primary"), member("a2", "a"), member("a3", "a"), member("b1", "b", "primary"), member("b2", "b"), member("b3", "b")],
     None, [["a2", "b2"], ["a3", "b3"], ["a1", "b1"]]),
])
def test_rollback_rounds(hosts, limits, rounds):
    assert rollback_rounds(hosts, limits) == rounds


def test_a_bad_host_is_named():
    with pytest.raises(AvailabilityError) as caught:
        rollback_rounds([member("a"), {"cluster": "x"}])
    assert str(caught.value) == "hosts[1]: {'cluster': 'x'} is not a host (a mapping with a host name under 'host')"
