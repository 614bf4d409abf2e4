# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: status_render
short_description: A fleet status report as the text of a JSON, CSV or self-contained HTML file
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Renders the report of P(fleetpatch.rollout.status_report#filter) as V(json) (the report itself), V(csv) (one
    line per host, a header first) or V(html).
  - The HTML page is self-contained, so it can be mailed or opened offline. Its CSS and its chart (an SVG) are
    inline, it has no script, and it fetches nothing from anywhere. It shows the count of hosts in each state, the
    share of the fleet patched over time, the counts per region and per cluster, and every host with its state,
    next window and why.
options:
  _input:
    description: The report.
    type: dict
    required: true
  format:
    description: What to render.
    type: str
    choices: [json, csv, html]
    required: true
"""

EXAMPLES = r"""
- name: Write the report as a page
  ansible.builtin.copy:
    content: "{{ report | fleetpatch.rollout.status_render('html') }}"
    dest: /srv/reports/FP-2025-14847-status.html
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The file's text.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _status

FILTER = "fleetpatch.rollout.status_render"


def status_render(report, form):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the argument and the value."""
    try:
        return _status.render(report, form)
    except _status.StatusError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's status_render filter."""

    def filters(self):
        return {"status_render": status_render}
