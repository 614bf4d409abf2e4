# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: table
short_description: Lines of an aligned text table, for a debug message an operator reads
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Turns a list of mappings into the lines of a text table. A header line comes first, then one line per
    mapping; each column is as wide as its widest cell (the last column is not padded).
  - A missing, null or empty value prints C(-), a boolean C(yes) or C(no), a list its items joined by commas.
  - The playbooks of this collection print their plans, outcomes and summaries with it.
options:
  _input:
    description: The rows, a list of mappings.
    type: list
    elements: dict
    required: true
  columns:
    description:
      - The columns, in order. Each is a key of the rows (its header is the key in capitals, C(_) read as a
        space) or a two-item list C([header, key]).
    type: list
    elements: raw
    required: true
seealso:
  - plugin: fleetpatch.rollout.plan_rows
    plugin_type: filter
  - plugin: fleetpatch.rollout.rollout_outcomes
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Print each host's version
  ansible.builtin.debug:
    msg: "{{ rows | fleetpatch.rollout.table(['host', 'region', ['VERSION NOW', 'version']]) }}"
  vars:
    rows:
      - {host: euw-01, region: eu-west, version: 7.0.28}
      - {host: aps-02, region: ap-south, version: 7.0.26}
# msg:
#   - "HOST   REGION   VERSION NOW"
#   - "euw-01 eu-west  7.0.28"
#   - "aps-02 ap-south 7.0.26"
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._report import ReportError, format_table

FILTER = "fleetpatch.rollout.table"


def table(rows, columns):
    """The lines of the table; AnsibleFilterError naming the filter, the field and the value otherwise."""
    try:
        return format_table(rows, columns)
    except ReportError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's text table filter."""

    def filters(self):
        return {"table": table}
