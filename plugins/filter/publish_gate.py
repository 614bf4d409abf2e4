# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: publish_gate
short_description: Whether a patch's advisory may be published, from the fleet status report
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - The advisory may be published when every host in scope of the report of
    P(fleetpatch.rollout.status_report#filter) is V(patched), V(not affected), or V(deferred) with a recorded reason.
  - A host V(affected), V(failed), V(rolled back) or V(unknown) blocks it, and so does an empty scope.
options:
  _input:
    description: The report.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse to publish while a host is still exposed, naming it
  ansible.builtin.assert:
    that: gate.ready
    fail_msg: "{{ gate.msg }}"
    success_msg: "{{ gate.msg }}"
  vars:
    gate: "{{ report | fleetpatch.rollout.publish_gate }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    ready:
      description: Whether the advisory may be published.
      type: bool
    counts:
      description: The number of hosts in each state.
      type: dict
    blocking:
      description: The hosts that keep it back, each with C(host), C(state) and C(detail).
      type: list
      elements: dict
    msg:
      description: The count of each state, and the hosts that keep it back with why.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _status

FILTER = "fleetpatch.rollout.publish_gate"


def publish_gate(report):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _status.publish_gate(report)
    except _status.StatusError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's publish_gate filter."""

    def filters(self):
        return {"publish_gate": publish_gate}
