# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_members
short_description: The hosts of a fleet-wide rollback, with their cluster and its size in the whole inventory
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Returns one entry per host in O(hosts), with C(host), C(cluster), C(cluster_role) and C(cluster_size), the
    number of hosts of the whole O(_input) whose C(cluster) is the same, so members outside the run count against
    the cluster's budget.
  - The input of the P(fleetpatch.rollout.rollback_rounds#filter) filter.
options:
  _input:
    description: The variables of every host of the inventory, such as C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to roll back, such as C(ansible_play_hosts).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Put the play's hosts in rollback rounds
  ansible.builtin.set_fact:
    rounds: "{{ hostvars | fleetpatch.rollout.rollback_members(ansible_play_hosts) | fleetpatch.rollout.rollback_rounds }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: One entry per host, in the order of O(hosts).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _fleet_view as _view

FILTER = "fleetpatch.rollout.rollback_members"


def rollback_members(hostvars, hosts):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _view.rollback_members(hostvars, hosts)
    except _view.ViewError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's rollback_members filter."""

    def filters(self):
        return {"rollback_members": rollback_members}
