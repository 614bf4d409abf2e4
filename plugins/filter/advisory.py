# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: advisory
short_description: A patch's advisory as OSV JSON, CSAF 2.0 JSON or a Markdown notice for self-hosted users
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Made from the patch's change record. Each affected line of its C(affected) range (an alternative, such as
    V(>=7.0.0,<7.0.28)) is fixed by its exclusive upper bound, or by C(fixed_version) when it has none.
  - V(osv) is an OSV record (schema 1.6.0) checked against each requirement the OSV specification states for the
    fields it holds. No well-kept package ships the OSV schema, so the checks are the collection's own, tested one
    by one. The affected package is named only when the manifest gives C(advisory.ecosystem).
  - V(csaf) is a CSAF 2.0 security advisory checked with C(jsonschema) against the official OASIS schema that the
    Python package C(csaf) ships (a controller requirement of this format).
  - V(notice) is Markdown for people who run the component themselves. It says who is affected, which version
    to upgrade to from each affected line, and what changed.
  - A document that fails its checks is an error naming each field.
options:
  _input:
    description: The change record, as P(fleetpatch.rollout.manifest#lookup) returns it.
    type: dict
    required: true
  format:
    description: Which document.
    type: str
    choices: [osv, csaf, notice]
    required: true
  publisher:
    description:
      - Who publishes the advisory, with V(csaf). C(name), C(namespace) (the publisher's http(s) URL), and
        optionally C(category) (default V(vendor)) and C(contact_details).
    type: dict
  now:
    description: The publication time (RFC 3339, UTC, ending in Z); now when not given.
    type: str
requirements:
  - csaf (Python package, for V(csaf))
"""

EXAMPLES = r"""
- name: Write the OSV record
  ansible.builtin.copy:
    content: "{{ record | fleetpatch.rollout.advisory('osv') | to_nice_json }}\n"
    dest: /srv/advisories/FP-2025-14847.osv.json
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The OSV record or the CSAF document (a mapping), or the notice (Markdown text).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _advisory

FILTER = "fleetpatch.rollout.advisory"


def advisory(manifest, form, publisher=None, now=None):
    """See DOCUMENTATION; AnsibleFilterError naming the filter, the field and the value."""
    try:
        return _advisory.document(manifest, form, publisher=publisher, now=now)
    except _advisory.AdvisoryError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's advisory filter."""

    def filters(self):
        return {"advisory": advisory}
