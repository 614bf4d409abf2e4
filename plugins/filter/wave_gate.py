# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: wave_gate
short_description: The gate after a wave of a rollout, its failures counted against the error budget
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Counts the failures of a wave of the plan of P(fleetpatch.rollout.wave_plan#filter) and says whether the
    rollout must stop.
  - A failure is a host of the wave that was rolled back or failed (from its
    P(fleetpatch.rollout.guarded_apply#role) outcome), or is V(unknown) because it is no longer reachable or
    left no outcome. A host whose window closed before its wave was not started and is not a failure.
  - The budget is a count of hosts or a percentage of the planned hosts, rounded down. The failures count over
    the whole rollout, and the gate halts when they EXCEED the budget. With a budget of 2, two failures go on and
    the third stops the rollout.
  - With O(planned=0) it checks the budget's form only, as the rollout's preflight does.
  - Given the plan itself instead of a wave, it is the gate before the first wave, named V(detection), and counts
    the plan's C(failures), the hosts in scope that were unreachable at detection, so that with a budget of 0
    one such host stops the rollout before anything changes; pass its RV(_value.failures) on to every later gate.
options:
  _input:
    description: The wave, an item of the plan's C(waves); or the plan, for the gate before the first wave.
    type: dict
    required: true
  hosts:
    description:
      - Each host in scope, mapped to what the rollout knows of it. Keys read C(guarded_apply_result) and
        C(window_closed).
    type: dict
    required: true
  reachable:
    description: The hosts still in the play (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  failures:
    description: The failures of the earlier waves, as this filter returned them.
    type: list
    elements: dict
    default: []
  budget:
    description: The error budget, a count (V(2)) or a percentage of the planned hosts (V(10%)).
    type: raw
    default: 0
  planned:
    description: How many hosts the plan holds (the base of a percentage).
    type: int
    required: true
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Gate - count the wave's failures against the error budget
  ansible.builtin.set_fact:
    gate: >-
      {{ wave | fleetpatch.rollout.wave_gate(hosts=what_each_host_did, reachable=ansible_play_hosts, failures=failures_so_far,
                                             budget='10%', planned=plan.summary.planned) }}
  run_once: true

- name: Gate before the first wave - hosts unreachable at detection count against the error budget
  ansible.builtin.set_fact:
    gate: "{{ plan | fleetpatch.rollout.wave_gate(hosts={}, reachable=[], budget=0, planned=plan.summary.planned) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The gate's decision.
  type: dict
  contains:
    failures:
      description: Every failure so far, the earlier waves' and this one's; each has C(host), C(wave), C(status) and C(why).
      type: list
      elements: dict
    wave_failures:
      description: This wave's failures.
      type: list
      elements: dict
    budget:
      description: The budget as a count of hosts.
      type: int
    halted:
      description: V(true) when the failures exceed the budget.
      type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._gate import GateError, gate

FILTER = "fleetpatch.rollout.wave_gate"


def wave_gate(wave, hosts, reachable, planned, failures=None, budget=0):
    """The gate's decision; AnsibleFilterError naming the filter, the field and the value otherwise."""
    try:
        return gate(wave, hosts, reachable, failures, budget, planned)
    except GateError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's wave gate filter."""

    def filters(self):
        return {"wave_gate": wave_gate}
