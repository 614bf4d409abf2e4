# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: canary_peers
short_description: The baselines of the hosts a wave has not started yet, per region
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - The canary analysis' peers of a wave of a rollout. A host has started when it is in the wave or in an earlier
    wave of O(plan); the baseline of each host not started (the C(metrics) of its pre-patch
    M(fleetpatch.rollout.health) result) is listed under its C(region) (V(-) when it has none).
  - M(fleetpatch.rollout.health) compares a patched host with its region's list (its C(peers) option).
options:
  _input:
    description: The variables of every host, such as C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to look at, such as C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  plan:
    description: The wave plan (the result of the P(fleetpatch.rollout.wave_plan#filter) filter).
    type: dict
    required: true
  wave:
    description: The wave about to start, one of O(plan)'s C(waves).
    type: dict
    required: true
  baseline:
    description: The variable that holds the host's pre-patch M(fleetpatch.rollout.health) result.
    type: str
    default: __rollout_baseline
"""

EXAMPLES = r"""
- name: Collect the peers of a wave
  ansible.builtin.set_fact:
    peers: "{{ hostvars | fleetpatch.rollout.canary_peers(ansible_play_hosts_all, plan=rollout_plan, wave=rollout_plan.waves[0]) }}"
  run_once: true
  # {"eu-west": [{"health": {"p95_ms": 12.0, ...}}, ...], "us-east": [...]}
"""

RETURN = r"""
_value:
  description: Per region, the list of baselines (metrics) of its hosts not yet started.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _fleet_view as _view

FILTER = "fleetpatch.rollout.canary_peers"


def canary_peers(hostvars, hosts, plan, wave, baseline="__rollout_baseline"):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _view.canary_peers(hostvars, hosts, plan, wave, baseline=baseline)
    except _view.ViewError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's canary_peers filter."""

    def filters(self):
        return {"canary_peers": canary_peers}
