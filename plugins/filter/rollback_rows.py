# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_rows
short_description: One row per host of a fleet-wide rollback
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Returns, per host in O(hosts) (sorted by name), C(host), C(region), C(cluster), C(round), C(outcome), C(from),
    C(to) and C(msg), from the host's M(fleetpatch.rollout.rollback) result.
  - C(outcome) is V(rolled back), V(already back) (it ran the old release already), V(not carrying) (it does not
    run the patch's fixed release), V(failed), V(unknown) (not reached, or never rolled back), or V(left out) (O(excluded)).
options:
  _input:
    description: The variables of every host, such as C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to report on, such as C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  result:
    description: The variable that holds the host's M(fleetpatch.rollout.rollback) result.
    type: str
    default: __rollback_rolled
  round_var:
    description: The variable that holds the round (1, 2, ...) the host went back in.
    type: str
    default: __rollback_rolled_round
  excluded:
    description: Hosts left out of the rollback by name, reported V(left out).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Print each host's rollback
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetpatch.rollout.rollback_rows(ansible_play_hosts_all) | fleetpatch.rollout.table(['host', 'round', 'outcome']) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: One row per host, sorted by name.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _fleet_view as _view

FILTER = "fleetpatch.rollout.rollback_rows"


def rollback_rows(hostvars, hosts, result="__rollback_rolled", round_var="__rollback_rolled_round", excluded=None):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _view.rollback_rows(hostvars, hosts, result=result, round_var=round_var, excluded=excluded)
    except _view.ViewError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's rollback_rows filter."""

    def filters(self):
        return {"rollback_rows": rollback_rows}
