# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_policy
short_description: Lay a rollout's survey-style inputs (scalars) over its wave plan policy
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Returns the policy mapping of P(fleetpatch.rollout.wave_plan#filter) with each given input laid over it, so a
    job template's survey, whose fields hold a scalar or a list of scalars, can set what the policy mapping holds.
  - An input that is not given (V(null) or empty text, as an unanswered survey field is) leaves the policy as it is.
    A count replaces the policy's percent and the other way round; a canary region replaces the spread.
  - The result is checked when the plan is made; an input of the wrong kind is refused here, named.
options:
  _input:
    description: The policy mapping (C(fleetpatch_policy)); V(null) for none.
    type: dict
    required: true
  canary_count:
    description: How many canary hosts (C(canary.count)).
    type: raw
  canary_percent:
    description: The canary as a percentage of the planned hosts, rounded up (C(canary.percent)).
    type: raw
  canary_region:
    description: Take every canary host from this region (C(canary.region)).
    type: str
  region_order:
    description: Regions in the order their waves run (C(region_order)), a list or one text with commas (V(eu,us)).
    type: raw
  batch_count:
    description: Hosts per wave within a region (C(batch.count)).
    type: raw
  batch_percent:
    description: A region's hosts per wave, as a percentage (C(batch.percent)).
    type: raw
  unwindowed:
    description: What to do with hosts without a maintenance window, V(anytime) or V(defer) (C(unwindowed)).
    type: str
  emergency_decided_by:
    description: Who decided that an emergency patch overrides the maintenance windows (C(emergency.decided_by)).
    type: str
  emergency_justification:
    description: Why the emergency patch overrides the windows (C(emergency.justification)).
    type: str
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: A survey's answers over the inventory's policy
  ansible.builtin.debug:
    msg: "{{ {'canary': {'percent': 10}} | fleetpatch.rollout.rollout_policy(canary_count='2', region_order='eu,us') }}"
  # {"canary": {"count": 2}, "region_order": ["eu", "us"]}
"""

RETURN = r"""
_value:
  description: The policy with the inputs laid over it.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import PlanError, policy_with_inputs

FILTER = "fleetpatch.rollout.rollout_policy"


def rollout_policy(policy, **inputs):
    """``policy`` with ``inputs`` laid over it; AnsibleFilterError naming the filter and the input otherwise."""
    try:
        return policy_with_inputs(policy, inputs)
    except PlanError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout.rollout_policy."""

    def filters(self):
        return {"rollout_policy": rollout_policy}
