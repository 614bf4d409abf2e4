# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: detect_rows
short_description: One row per host of a detection, unreachable hosts as unknown
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Returns, per host in O(hosts) (sorted by name), C(host), C(region), C(cluster), C(version), C(affected), C(fixed),
    C(applied) (the patches its state file lists) and C(msg), from the host's M(fleetpatch.rollout.detect) result.
  - A host without a result (unreachable, failed) is reported with version and verdicts V(unknown), never as
    clean, and why in C(msg).
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
    description: The variable that holds the host's M(fleetpatch.rollout.detect) result.
    type: str
    default: __detect_result
"""

EXAMPLES = r"""
- name: Print what every host runs
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetpatch.rollout.detect_rows(ansible_play_hosts_all, result='found') | fleetpatch.rollout.table(['host', 'version', 'affected']) }}"
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

FILTER = "fleetpatch.rollout.detect_rows"


def detect_rows(hostvars, hosts, result="__detect_result"):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _view.detect_rows(hostvars, hosts, result=result)
    except _view.ViewError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's detect_rows filter."""

    def filters(self):
        return {"detect_rows": detect_rows}
