# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_rounds
short_description: Put hosts in rollback rounds that keep every cluster's majority up
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Takes a list of hosts, each a mapping with C(host) and, for a cluster member, C(cluster), C(cluster_role)
    and C(cluster_size) (the cluster's size in the whole inventory), and returns rounds, a list of lists of host
    names.
  - A round holds at most a cluster's budget of its members, secondaries before its primary. The budget is
    the cluster's entry in O(limits), or else what keeps a strict majority up (1 of 3, 2 of 5). A cluster with a
    budget of 0 goes one host per round. Hosts outside clusters are all in the first round.
options:
  _input:
    description: The hosts.
    type: list
    elements: dict
    required: true
  limits:
    description: Per cluster name, the number of its members that may be down at once.
    type: dict
    default: {}
seealso:
  - module: fleetpatch.rollout.rollback
"""

EXAMPLES = r"""
- name: Rounds for two 3-member clusters and a host of no cluster
  ansible.builtin.debug:
    msg: "{{ hosts | fleetpatch.rollout.rollback_rounds }}"
  vars:
    hosts:
      - {host: db1, cluster: db, cluster_role: primary}
      - {host: db2, cluster: db, cluster_role: secondary}
      - {host: db3, cluster: db, cluster_role: secondary}
      - {host: web1}
  # [["db2", "web1"], ["db3"], ["db1"]]
"""

RETURN = r"""
_value:
  description: The rounds, in order; each a sorted list of host names.
  type: list
  elements: list
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._availability import AvailabilityError, rollback_rounds as _rounds

FILTER = "fleetpatch.rollout.rollback_rounds"


def rollback_rounds(hosts, limits=None):
    """The rounds of ``hosts``; AnsibleFilterError naming the filter otherwise."""
    if not isinstance(hosts, list):
        raise AnsibleFilterError(f"{FILTER}: the input must be a list of hosts, not {type(hosts).__name__}")
    if limits is not None and not isinstance(limits, dict):
        raise AnsibleFilterError(f"{FILTER}: limits must be a mapping of cluster name to a count, not {type(limits).__name__}")
    try:
        return _rounds(hosts, limits)
    except AvailabilityError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout.rollback_rounds."""

    def filters(self):
        return {"rollback_rounds": rollback_rounds}
