# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: retrospective
short_description: The retrospective of a patch, its timeline and the decisions taken, from the audit trail and the ledger
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Takes a fleet report (P(fleetpatch.rollout.status_report#filter)) and reads the audit log it was drawn from (its
    C(history.source)), and returns the patch's milestones, each with its time (UTC) and the time since detection,
    the decisions taken, and both as a Markdown document.
  - The milestones are C(detection) (the manifest's C(detected_at)); C(first notice) (the earliest C(notified_at) of
    the patch in O(notifications), or else the earliest sent C(notification) record of the trail); C(canary start)
    (the first C(wave_start) record of the wave C(canary)); C(majority patched) and C(whole fleet) (the first moments
    more than half, and all, of the hosts the patch concerns ran the fix, from the report's history); and
    C(publication) (O(published)). One not reached has no time.
  - The decisions, in the order of the trail, are the approvals, the windows the plan overrode and the hosts it
    deferred (with the reason), the gates that halted a wave and the rollbacks.
options:
  _input:
    description: The fleet report.
    type: dict
    required: true
  manifest:
    description: The patch's change record, as P(fleetpatch.rollout.manifest#lookup) returns it.
    type: dict
    required: true
  notifications:
    description: The pre-notification record's data (P(fleetpatch.rollout.notifications#lookup)), or V(null).
    type: dict
  published:
    description: When the advisory was published, an RFC 3339 time; V(null) when it is not (yet).
    type: str
seealso:
  - plugin: fleetpatch.rollout.status_report
    plugin_type: filter
"""

EXAMPLES = r"""
- name: The retrospective, once the advisory is out
  ansible.builtin.copy:
    content: "{{ (status_report | fleetpatch.rollout.retrospective(record, notifications=ledger, published=now_utc)).markdown }}"
    dest: /srv/advisories/FP-2025-14847.retrospective.md
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The retrospective.
  type: dict
  contains:
    milestones:
      description: In order, each with C(name), C(at) (V(null) when not reached), C(since_detection) (such as V(15h30m)) and C(source).
      type: list
      elements: dict
    decisions:
      description:
        - Each with C(at), C(kind) (V(approval), V(approval refused), V(window overridden), V(deferred), V(gate halted),
          V(rolled back)), C(what) and C(why).
      type: list
      elements: dict
    markdown:
      description: The timeline and the decisions as a Markdown document.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _retrospective, _status

FILTER = "fleetpatch.rollout.retrospective"


def retrospective(report, manifest, notifications=None, published=None):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        source = ((report or {}).get("history") or {}).get("source") if isinstance(report, dict) else None
        records = _status.read_trail(source)[0] if source else []
        retro = _retrospective.retrospective(manifest, records, report=report, ledger=notifications, published=published)
    except (_retrospective.RetrospectiveError, _status.StatusError) as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None
    return dict(retro, markdown=_retrospective.render_markdown(retro))


class FilterModule:
    """fleetpatch.rollout's retrospective filter."""

    def filters(self):
        return {"retrospective": retrospective}
