# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: detect_report
short_description: Find, read and check a detection report, to plan without contacting any host
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Reads each detection report that the P(fleetpatch.rollout.detect#role) role wrote (its
    C(fleetpatch_detect_report) option), checks it against the collection's C(detect_report.schema.json) and returns
    what it found on every host, as the planner reads a detection.
  - A relative path is found the way P(fleetpatch.rollout.notifications#lookup) finds one, never in the controller's
    current directory.
  - With O(manifest), a report made for another component or install directory is refused.
options:
  _terms:
    description: Paths of detection reports (JSON) on the controller.
    type: list
    elements: str
    required: true
  manifest:
    description: The checked manifest (P(fleetpatch.rollout.manifest#lookup)) the plan is for.
    type: dict
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read the report the detect role wrote yesterday
  ansible.builtin.set_fact:
    fp_report: "{{ lookup('fleetpatch.rollout.detect_report', 'reports/detect.json', manifest=fp_manifest) }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description: One result per term; with a single term, the C(lookup) function returns that result itself.
  type: list
  elements: dict
  contains:
    detected_at:
      description: When the detection ran (RFC 3339, UTC).
      type: str
    component:
      description: The component detected.
      type: str
    patch:
      description: The manifest id the detection was made for, or V(null).
      type: str
    hosts:
      description: Per host name, the detection result (C(version), C(affected), C(fixed), C(applied), ...; or C(unreachable) with C(msg)).
      type: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._detect_report import DetectReportError, read_detect_report
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, lookup_file

LOOKUP = "fleetpatch.rollout.detect_report"


class LookupModule(LookupBase):
    """fleetpatch.rollout.detect_report."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        manifest = self.get_option("manifest")
        results = []
        for term in terms:
            try:
                results.append(read_detect_report(lookup_file(self, term, variables), manifest=manifest))
            except (SearchPathError, DetectReportError) as exc:
                raise AnsibleLookupError(f"{LOOKUP}: {exc}") from None
        return results
