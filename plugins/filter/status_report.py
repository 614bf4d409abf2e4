# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: status_report
short_description: The fleet status report of one patch, from every host's detection and the audit trail
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Gives every host in O(hosts) one state for the patch of O(manifest), by the first of these rules that applies.
  - V(unknown) when the host gave no M(fleetpatch.rollout.detect) result in this run (unreachable, failed, not
    reached, or left out by name in O(excluded)) or its state file is damaged.
  - V(failed) when an apply or rollback was cut off on it (its state file's journal), or it is still affected and
    its last apply of the patch in the audit trail failed (after any deferral or rollback it records).
  - V(patched) when it runs a version outside the affected range, at or above the fixed version.
  - V(not affected) when it runs a version outside the affected range, below the fixed version.
  - V(deferred) when it is affected and its state file records a deferral of the patch with a reason (the next
    window is its C(until)), made after any rollback of the patch there.
  - V(rolled back) when it is affected and its state file records a rollback of the patch.
  - V(affected) otherwise.
  - Counts the states over the fleet, per region and per cluster, and draws the share of the hosts the patch
    concerns (all but V(not affected)) that were patched over time from the audit trail's task records of the
    patch on these hosts. An apply that ended V(ok) or V(changed) makes a host patched from that record on, a
    rollback that ended V(changed) unpatched again. A host found patched that the trail never saw patched counts
    from the chart's start. The last point is the report's own count.
extends_documentation_fragment:
  - fleetpatch.rollout.host_view
options:
  manifest:
    description: The patch's change record, as P(fleetpatch.rollout.manifest#lookup) returns it.
    type: dict
    required: true
  result:
    description: The variable that holds each host's M(fleetpatch.rollout.detect) result.
    type: str
    default: __status_detected
  reachable:
    description:
      - The hosts still reached in this run, such as C(ansible_play_hosts); a host outside it is V(unknown), whatever
        an earlier result of it says. Every host when not given.
    type: list
    elements: str
  excluded:
    description: Hosts left out by name (not contacted), reported V(unknown).
    type: list
    elements: str
    default: []
  audit_log:
    description:
      - The audit log (JSON Lines) the chart is drawn from.
      - When not given, the log of this run's P(fleetpatch.rollout.audit#callback) callback when it is enabled (and
        the file exists), else none. V(false) draws from none.
    type: raw
"""

EXAMPLES = r"""
- name: Build the fleet report from each host's detection
  ansible.builtin.set_fact:
    report: >-
      {{ hostvars | fleetpatch.rollout.status_report(ansible_play_hosts_all, record, result='found',
                                                     reachable=ansible_play_hosts, audit_log='/var/log/fleetpatch/audit.jsonl') }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    format:
      description: The report's format, V(1).
      type: int
    patch:
      description: C(id), C(title), C(component), C(affected), C(fixed_version), C(severity), C(urgency), C(advisories).
      type: dict
    generated:
      description: When the report was made (RFC 3339, UTC).
      type: str
    states:
      description: The states, in the order the report counts them.
      type: list
      elements: str
    counts:
      description: The number of hosts in each state.
      type: dict
    total:
      description: The hosts in scope.
      type: int
    concerned:
      description: The hosts the patch concerns (all but V(not affected)).
      type: int
    patched_share:
      description: The percentage of RV(_value.concerned) that is patched, one decimal; V(null) when none is concerned.
      type: float
    regions:
      description: Per region (sorted), C(region), C(hosts) and the count of each state.
      type: list
      elements: dict
    clusters:
      description: Per cluster (sorted), C(cluster), C(regions), C(hosts) and the count of each state.
      type: list
      elements: dict
    hosts:
      description:
        - One row per host, sorted by name, with C(host), C(region), C(cluster), C(version), C(state), C(next_window),
          C(applied_at), C(judged_at) and C(detail).
      type: list
      elements: dict
    history:
      description:
        - C(source) (the audit log read, or V(null)), C(records) (how many), C(skipped) (lines that were not
          records) and C(points), the chart's points, each C(at), C(patched) and C(share).
      type: dict
"""

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _status

FILTER = "fleetpatch.rollout.status_report"


def _trail(audit_log):
    """``{"path", "records", "skipped"}`` of the log to chart from, or None."""
    if audit_log is False or audit_log == "":
        return None
    if audit_log is None:
        sink = _audit.current_sink()
        if not sink or not os.path.isfile(sink["log"]):
            return None
        audit_log = sink["log"]
    if not isinstance(audit_log, str):
        raise _status.StatusError(f"audit_log: expected the path of an audit log, or false, got {audit_log!r}")
    records, skipped = _status.read_trail(audit_log)
    return {"path": audit_log, "records": records, "skipped": skipped}


def status_report(hostvars, hosts, manifest, result="__status_detected", reachable=None, excluded=None, audit_log=None):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _status.fleet_report(hostvars, hosts, manifest, result=result, reachable=reachable, excluded=excluded or (),
                                    trail=_trail(audit_log))
    except _status.StatusError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's status_report filter."""

    def filters(self):
        return {"status_report": status_report}
