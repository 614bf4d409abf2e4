# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: verified_artifact
short_description: Check a patch's artifact on the controller, its allowed-signers file found as Ansible finds files
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Checks the artifact of each manifest on the controller exactly as P(fleetpatch.rollout.verified_artifact#filter)
    does (the sha256, the archive by the hosts' own unpack rule, and, when the manifest carries a signature, the
    OpenSSH signature against O(allowed_signers)), and returns what it found.
  - Each term is a checked manifest (what P(fleetpatch.rollout.manifest#lookup) returns) or the path of a manifest
    file, which is then found and read as that lookup does.
  - A relative O(allowed_signers), or a relative manifest path, is searched for as P(ansible.builtin.file#lookup)
    searches, in the task's search path (under C(files/) and then in the directory itself, from the task's role
    out to the playbook's directory), then in the directory of each inventory source and the host's
    C(inventory_dir); the controller's current directory is not searched. An absolute path is used as it is. A file that
    cannot be found is an error that names it and lists every path searched.
  - A manifest whose artifact is a URL only is fetched by the hosts themselves and cannot be checked here; the
    result then says so (RV(_raw[].checked=false)) and each host checks what it fetched.
options:
  _terms:
    description:
      - Checked manifests (mappings), or paths of manifest files on the controller. One result is returned for
        each.
    type: list
    elements: raw
    required: true
  allowed_signers:
    description:
      - The OpenSSH allowed-signers file that vouches for a signed artifact, the operator's trust root (never part
        of the manifest). Required when a manifest carries C(artifact.signature).
      - Absolute, or relative to the role, the playbook or the inventory as described above.
    type: str
seealso:
  - plugin: fleetpatch.rollout.verified_artifact
    plugin_type: filter
  - plugin: fleetpatch.rollout.manifest
    plugin_type: lookup
  - module: fleetpatch.rollout.apply
  - ref: playbook_task_paths
    description: Search paths used for relative files.
"""

EXAMPLES = r"""
- name: Read the change record
  ansible.builtin.set_fact:
    fp_manifest: "{{ lookup('fleetpatch.rollout.manifest', 'FP-2025-14847.yml') }}"
  run_once: true

- name: Check its artifact and signature before the first wave (keys/allowed_signers beside the playbook)
  ansible.builtin.set_fact:
    fp_artifact: "{{ lookup('fleetpatch.rollout.verified_artifact', fp_manifest, allowed_signers='keys/allowed_signers') }}"
  run_once: true

- name: Say who signed it
  ansible.builtin.debug:
    msg: "{{ fp_artifact.sha256 }} signed by {{ fp_artifact.signed_by }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description:
    - What was checked, one result per term.
    - With a single term, the C(lookup) function returns that result itself (C(query) always returns the list).
  type: list
  elements: dict
  contains:
    checked:
      description: Whether the artifact was checked here (false for a URL-only artifact).
      type: bool
    sha256:
      description: The artifact's sha256.
      type: str
    size:
      description: Its size in bytes (null when not checked here).
      type: int
    signed_by:
      description: The identity whose signature verified, or null without a signature.
      type: str
  sample:
    - checked: true
      sha256: 15cfc8added145376d53f61b7af502d30e332d4d0ab9a6a01b3b33eef164208c
      size: 5120
      signed_by: release@fleetpatch.example
"""

from collections.abc import Mapping

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, manifest_artifact
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, load_manifest
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, lookup_file

LOOKUP = "fleetpatch.rollout.verified_artifact"


class LookupModule(LookupBase):
    """fleetpatch.rollout.verified_artifact."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        results = []
        try:
            allowed_signers = self.get_option("allowed_signers")
            if allowed_signers is not None:
                allowed_signers = lookup_file(self, allowed_signers, variables)
        except SearchPathError as exc:
            raise AnsibleLookupError(f"{LOOKUP}: allowed_signers: {exc}") from None
        for term in terms:
            try:
                manifest = term if isinstance(term, Mapping) else load_manifest(lookup_file(self, term, variables))
                results.append(manifest_artifact(manifest, allowed_signers))
            except (SearchPathError, ManifestError, ArtifactError) as exc:
                raise AnsibleLookupError(f"{LOOKUP}: {exc}") from None
        return results
