# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: window_open
short_description: Whether a planned host may still be started now, before its window's cutoff
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Answers V(true) when the host may be started at O(now), that is when its C(window_end) (the cutoff
    P(fleetpatch.rollout.wave_plan#filter) put on each host planned inside its maintenance window) is V(null)
    or still ahead; V(false) at the cutoff and after it. A window's cutoff means no new host starts after it;
    a host already started is not stopped.
  - Ask it right before starting each host, not once per wave, because waves take time and windows close.
options:
  _input:
    description:
      - A host entry of a wave of the plan (a mapping with C(window_end)), or the C(window_end) itself (an RFC
        3339 time, or V(null) for no cutoff).
    type: raw
    required: true
  now:
    description:
      - The time to decide for, an RFC 3339 time with an offset. Default is the controller's current time.
    type: str
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Leave a host whose maintenance window closed while earlier waves ran
  ansible.builtin.meta: end_host
  when: not (fp_plan_host | fleetpatch.rollout.window_open)

- name: Decide for a given time
  ansible.builtin.assert:
    that:
      - "'2026-03-03T05:00:00Z' | fleetpatch.rollout.window_open(now='2026-03-03T04:59:59Z')"
      - "not ('2026-03-03T05:00:00Z' | fleetpatch.rollout.window_open(now='2026-03-03T05:00:00Z'))"
"""

RETURN = r"""
_value:
  description: V(true) when the host may still be started at O(now).
  type: bool
"""

import datetime
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import UTC, may_start, parse_utc

FILTER = "fleetpatch.rollout.window_open"


def window_open(value, now=None):
    """Whether a host with this cutoff may still be started at ``now``; AnsibleFilterError naming the filter otherwise."""
    if isinstance(value, Mapping):
        if "window_end" not in value:
            raise AnsibleFilterError(
                f"{FILTER}: the input must be a host entry of a wave plan (with window_end) or a window_end, got a mapping without window_end"
            )
        value = value["window_end"]
    try:
        cutoff = None if value is None else parse_utc(value, "window_end")
        moment = datetime.datetime.now(UTC) if now is None else parse_utc(now, "now")
    except ValueError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None
    return may_start(cutoff, moment)


class FilterModule:
    """fleetpatch.rollout's window cutoff filter."""

    def filters(self):
        return {"window_open": window_open}
