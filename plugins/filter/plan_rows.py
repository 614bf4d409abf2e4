# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_rows
short_description: One row per host of a wave plan, in the order the rollout takes them
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Flattens a plan of P(fleetpatch.rollout.wave_plan#filter) into rows, one per host. First every wave's hosts in
    wave order, then the deferred hosts (the reason and the next window), then the hosts left out (fixed, not
    affected, unknown, quorum, with the detail).
  - Print them with P(fleetpatch.rollout.table#filter).
options:
  _input:
    description: The plan.
    type: dict
    required: true
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
  - plugin: fleetpatch.rollout.table
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Print the plan
  ansible.builtin.debug:
    msg: "{{ rollout_plan | fleetpatch.rollout.plan_rows | fleetpatch.rollout.table(['wave', 'name', 'host', 'region', 'cluster', 'reason']) }}"
"""

RETURN = r"""
_value:
  description: The rows.
  type: list
  elements: dict
  contains:
    wave:
      description: The wave's index, V(null) for a host not planned.
      type: int
    name:
      description: The wave's name (V(canary), a region, V(eu-west 2/3)), or V(deferred), or V(left out).
      type: str
    host:
      description: The host.
      type: str
    region:
      description: Its region, V(null) when it has none.
      type: str
    cluster:
      description: Its cluster, V(null) when it has none.
      type: str
    reason:
      description: Why it is where it is.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._report import ReportError, plan_rows as _plan_rows

FILTER = "fleetpatch.rollout.plan_rows"


def plan_rows(plan):
    """The plan's rows; AnsibleFilterError naming the filter otherwise."""
    try:
        return _plan_rows(plan)
    except ReportError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's plan rows filter."""

    def filters(self):
        return {"plan_rows": plan_rows}
