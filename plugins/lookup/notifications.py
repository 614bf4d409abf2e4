# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: notifications
short_description: Find, read and check a pre-notification record
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Finds each pre-notification record (which customers were told of which patch, and when; a YAML or JSON file)
    the way P(ansible.builtin.file#lookup) finds a file, checks it against the collection's
    C(notifications.schema.json) and returns its data, ready for the O(fleetpatch.rollout.wave_plan#filter:notifications)
    option of P(fleetpatch.rollout.wave_plan#filter).
  - A relative path is searched for in the task's search path, under C(files/) and then in the directory itself,
    from the task's role out to the playbook's directory, then in the directory of each inventory source and the
    host's C(inventory_dir). The controller's current directory is not searched, so a playbook finds the same
    record from wherever C(ansible-playbook) is started. An absolute path is read as it is.
  - A record that cannot be found is an error that names it and lists every path searched. Every problem of a
    record that is found but not valid is reported at once, one per line, each naming the file and the field.
options:
  _terms:
    description:
      - Paths of pre-notification records on the controller, absolute or relative to the role, the playbook or the
        inventory as described above. One result is returned for each.
      - The format is C(plugins/plugin_utils/notifications.schema.json); an example is C(docs/notifications.example.yml).
    type: list
    elements: str
    required: true
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
  - ref: playbook_task_paths
    description: Search paths used for relative files.
"""

EXAMPLES = r"""
- name: Plan the rollout; the customers told in advance are listed in files/notifications.yml beside the playbook
  ansible.builtin.set_fact:
    fp_plan: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)))
         | fleetpatch.rollout.wave_plan(fp_manifest, detect_key='fp_detected',
                                        notifications=lookup('fleetpatch.rollout.notifications', 'notifications.yml')) }}
  run_once: true
"""

RETURN = r"""
_raw:
  description:
    - One result per term, the record's data as the file holds it, once checked (C(notified_at) as the file writes
      it).
    - With a single term, the C(lookup) function returns that result itself (C(query) always returns the list).
  type: list
  elements: dict
  contains:
    notifications:
      description:
        - One record per customer told of one patch, each with C(customer), C(patch_id), C(notified_at) (an RFC 3339
          time with an offset), C(channel), C(by) and optionally C(note).
      type: list
      elements: dict
  sample:
    - notifications:
        - customer: acme
          patch_id: FP-2025-14847
          notified_at: "2025-12-18T10:00:00Z"
          channel: email
          by: jane.doe@fleetpatch.example
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._notifications import NotificationError, read_notifications
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, lookup_file

LOOKUP = "fleetpatch.rollout.notifications"


class LookupModule(LookupBase):
    """fleetpatch.rollout.notifications."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        results = []
        for term in terms:
            try:
                results.append(read_notifications(lookup_file(self, term, variables)))
            except (SearchPathError, NotificationError) as exc:
                raise AnsibleLookupError(f"{LOOKUP}: {exc}") from None
        return results
