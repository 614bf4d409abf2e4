"""The fleetpatch.rollout.rollback_rounds filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.filter.rollback_rounds import FilterModule, rollback_rounds


def test_filter_is_registered():
    assert FilterModule().filters() == {"rollback_rounds": rollback_rounds}


def test_rounds():
    hosts = [{"host": "db1", "cluster": "db", "cluster_role": "primary"}, {"host": "db2", "cluster": "db"}, {"host": "db3", "cluster": "db"}]
    assert rollback_rounds(hosts) == [["db2"], ["db3"], ["db1"]]


@pytest.mark.parametrize(("hosts", "limits", "message"), [
    ("db1", None, "fleetpatch.rollout.rollback_rounds: the input must be a list of hosts, not str"),
    ([{"host": "a"}], ["a"], "fleetpatch.rollout.rollback_rounds: limits must be a mapping of cluster name to a count, not list"),
    ([{"host": "a", "cluster": "c"}], {"c": -1}, "fleetpatch.rollout.rollback_rounds: max_unavailable: -1 is not a count of hosts (an integer, 0 or more)"),
])
def test_bad_input_names_the_filter(hosts, limits, message):
    with pytest.raises(AnsibleFilterError) as caught:
        rollback_rounds(hosts, limits)
    assert str(caught.value) == message
