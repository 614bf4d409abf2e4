# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_hosts
short_description: What the rollout knows of each host, for its gates and its summary
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Reads a few variables of each host in O(hosts) from O(_input) (Ansible's C(hostvars)) and returns, per host,
    C(region), C(cluster), C(version) (the version detected before the rollout), C(guarded_apply_result) and
    C(applied) (the M(fleetpatch.rollout.guarded_apply) role's outcome and its apply's result), C(rollback) (the
    result of rolling the host's halted wave back) and C(window_closed) (its window closed before its wave).
  - The input of the P(fleetpatch.rollout.wave_gate#filter) and P(fleetpatch.rollout.rollout_outcomes#filter)
    filters. Used by the P(fleetpatch.rollout.rollout#role) role; only the variables named here are read.
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
  detected:
    description: The variable that holds the host's M(fleetpatch.rollout.detect) result.
    type: str
    default: __rollout_detected
  rollback:
    description: The variable that holds the result of rolling the host's halted wave back.
    type: str
    default: __rollout_wave_rollback
  may_start:
    description: The variable that says whether the host could still start when its wave came (its window open).
    type: str
    default: __rollout_may_start
"""

EXAMPLES = r"""
- name: Count the failures of a wave
  ansible.builtin.set_fact:
    gate: "{{ wave | fleetpatch.rollout.wave_gate(hosts=hostvars | fleetpatch.rollout.rollout_hosts(ansible_play_hosts_all), budget=0, planned=12) }}"
"""

RETURN = r"""
_value:
  description: Per host name, what the rollout knows of it.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _fleet_view as _view

FILTER = "fleetpatch.rollout.rollout_hosts"


def rollout_hosts(hostvars, hosts, detected="__rollout_detected", rollback="__rollout_wave_rollback", may_start="__rollout_may_start"):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _view.rollout_hosts(hostvars, hosts, detected=detected, rollback=rollback, may_start=may_start)
    except _view.ViewError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's rollout_hosts filter."""

    def filters(self):
        return {"rollout_hosts": rollout_hosts}
