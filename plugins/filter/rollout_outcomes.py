# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_outcomes
short_description: What a rollout did to every host, and the count of each outcome per region
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Given the plan of P(fleetpatch.rollout.wave_plan#filter), what the rollout knows of each host and the gate's
    failures, says for every host one outcome. The first of these rules that applies decides.
  - V(failed), V(rolled back) or V(unknown) when the gate counted the host as a failure. V(unknown) is a host that
    could not be reached or gave no outcome; it is never reported patched.
  - V(rolled back) when its halted wave was rolled back.
  - V(patched) or V(unchanged) from the outcome of the P(fleetpatch.rollout.guarded_apply#role) role.
  - V(deferred) with the next window when the plan deferred it, or when its window closed before its wave (the
    plan's C(next_window) of the host).
  - V(unchanged) when the plan left it out because it already runs the fix, V(unknown) when its version could
    not be detected, V(left out) for the other reasons.
  - V(not started) when it was planned but the rollout stopped first.
  - Used by P(fleetpatch.rollout.rollout#playbook) for its summary.
options:
  _input:
    description: The plan.
    type: dict
    required: true
  hosts:
    description:
      - Each host in scope, mapped to what the rollout knows of it. Keys read
        C(region), C(cluster), C(version) (detected before the rollout), C(guarded_apply_result) (the role's
        outcome), C(applied) (the result of its apply, C(guarded_apply_apply), whose version a host lost during
        its soak runs), C(rollback) (the result of rolling its halted wave back), C(window_closed) (true when its window
        closed before its wave).
    type: dict
    required: true
  failures:
    description: The gate's failure records, each with C(host), C(status) and C(why).
    type: list
    elements: dict
    default: []
  gate:
    description:
      - The last gate's decision (P(fleetpatch.rollout.wave_gate#filter)). When it halted, RV(_value.halt) says why
        and what became of the halted wave's hosts.
    type: dict
  wave:
    description:
      - The wave whose gate halted, or V(null) when the gate before the first wave halted (hosts unreachable at
        detection).
    type: dict
seealso:
  - plugin: fleetpatch.rollout.table
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Print what happened per region and per host
  ansible.builtin.debug:
    msg: >-
      {{ outcome.regions | fleetpatch.rollout.table(['region'] + outcome.statuses)
         + outcome.hosts | fleetpatch.rollout.table(['host', 'region', 'cluster', 'version', 'status', 'detail']) }}
  vars:
    outcome: "{{ rollout_plan | fleetpatch.rollout.rollout_outcomes(hosts=what_each_host_did, failures=gate_failures) }}"
"""

RETURN = r"""
_value:
  description: The outcomes.
  type: dict
  contains:
    hosts:
      description: One row per host, sorted by name, with C(host), C(region), C(cluster), C(version) (the one it
        runs now as far as the rollout knows), C(status) and C(detail).
      type: list
      elements: dict
    regions:
      description: Per region (sorted), C(region) and the number of hosts with each status.
      type: list
      elements: dict
    statuses:
      description: The statuses, in the order the summary counts them.
      type: list
      elements: str
    halt:
      description:
        - With a halted O(gate), why the rollout stops and, for a wave, which of its hosts were rolled back, could
          not be reached, failed or were not started; V(null) otherwise.
      type: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._report import OUTCOMES, ReportError, halt_message, outcome_rows, tally

FILTER = "fleetpatch.rollout.rollout_outcomes"


def rollout_outcomes(plan, hosts, failures=None, gate=None, wave=None):
    """The outcomes; AnsibleFilterError naming the filter, the field and the value otherwise."""
    try:
        rows = outcome_rows(plan, hosts, failures or ())
        halt = halt_message(gate, wave, rows) if gate is not None and (not isinstance(gate, Mapping) or gate.get("halted")) else None
    except ReportError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None
    return {"hosts": rows, "regions": tally(rows, "region", "status", OUTCOMES), "statuses": list(OUTCOMES), "halt": halt}


class FilterModule:
    """fleetpatch.rollout's rollout outcome filter."""

    def filters(self):
        return {"rollout_outcomes": rollout_outcomes}
