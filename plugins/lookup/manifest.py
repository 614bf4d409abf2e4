# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: manifest
short_description: Find, read and check a fleetpatch patch manifest
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Finds each patch manifest (the change record of one patch, a YAML file) the way
    P(ansible.builtin.file#lookup) finds a file, reads it, checks it and returns it normalised exactly as
    P(fleetpatch.rollout.manifest#filter) does, with the absolute path of the file it read in
    RV(_raw[].manifest_file).
  - A relative path is searched for in the task's search path, under C(files/) and then in the directory itself,
    from the task's role out to the playbook's directory, then in the directory of each inventory source and the
    host's C(inventory_dir). The controller's current directory is not searched, so a playbook finds the same
    manifest from wherever C(ansible-playbook) is started. An absolute path is read as it is.
  - A manifest that cannot be found is an error that names it and lists every path searched. Every problem of
    a manifest that is found but not valid is reported at once, one per line, each naming the file, the field
    and the offending value.
  - Relative C(artifact.path) and C(artifact.signature) in the manifest are relative to the manifest file
    itself; the record holds them absolute.
options:
  _terms:
    description:
      - Paths of manifest files on the controller, absolute or relative to the role, the playbook or the
        inventory as described above. One record is returned for each.
    type: list
    elements: str
    required: true
notes:
  - Give the returned RV(_raw[].manifest_file) to the modules' O(fleetpatch.rollout.apply#module:manifest)
    option so that every task reads the same file.
seealso:
  - plugin: fleetpatch.rollout.manifest
    plugin_type: filter
  - plugin: fleetpatch.rollout.verified_artifact
    plugin_type: lookup
  - module: fleetpatch.rollout.apply
  - ref: playbook_task_paths
    description: Search paths used for relative files.
"""

EXAMPLES = r"""
- name: Read the change record kept in the playbook's files/ directory (or beside the playbook or the inventory)
  ansible.builtin.set_fact:
    fp_manifest: "{{ lookup('fleetpatch.rollout.manifest', 'FP-2025-14847.yml') }}"

- name: Find out which hosts it concerns
  fleetpatch.rollout.detect:
    component: "{{ fp_manifest.component }}"
    install_dir: "{{ fp_manifest.install_dir }}"
    affected: "{{ fp_manifest.affected }}"
    fixed_version: "{{ fp_manifest.fixed_version }}"

- name: Apply the patch from the very file the lookup read
  fleetpatch.rollout.apply:
    manifest: "{{ fp_manifest.manifest_file }}"
"""

RETURN = r"""
_raw:
  description:
    - One record per term, each the manifest checked and normalised as
      P(fleetpatch.rollout.manifest#filter) returns it (its fields are documented in the collection's
      C(manifests/README.md)), plus RV(_raw[].manifest_file).
    - With a single term, the C(lookup) function returns that record itself (C(query) always returns the list).
  type: list
  elements: dict
  contains:
    manifest_file:
      description: The absolute path of the manifest file that was read.
      type: str
      sample: /srv/rollouts/files/FP-2025-14847.yml
  sample:
    - id: FP-2025-14847
      component: fpdemo
      affected: ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
      fixed_version: 7.0.28
      class: hot
      artifact:
        path: /srv/rollouts/.build/artifacts/fpdemo-7.0.28.tar.gz
        sha256: 15cfc8added145376d53f61b7af502d30e332d4d0ab9a6a01b3b33eef164208c
      monitoring:
        soak: 5m
        soak_seconds: 300
      manifest_file: /srv/rollouts/files/FP-2025-14847.yml
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import MANIFEST_FILE_KEY, ManifestError, load_manifest
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, lookup_file

LOOKUP = "fleetpatch.rollout.manifest"


class LookupModule(LookupBase):
    """fleetpatch.rollout.manifest."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        records = []
        for term in terms:
            try:
                path = lookup_file(self, term, variables)
                record = load_manifest(path)
            except (SearchPathError, ManifestError) as exc:
                raise AnsibleLookupError(f"{LOOKUP}: {exc}") from None
            record[MANIFEST_FILE_KEY] = path
            records.append(record)
        return records
