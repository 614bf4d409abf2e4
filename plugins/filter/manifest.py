# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: manifest
short_description: Read and check a fleetpatch patch manifest
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Reads the patch manifest (the change record of one patch, a YAML file) at the path it is given, checks it
    against the collection's manifest schema and the version rules, and returns it normalised.
  - Every problem is reported at once, one per line, each naming the file, the field and the offending value.
  - A patch whose class is not V(hot) or V(restart) (one that needs a reboot or a schema or configuration
    migration) is refused.
  - The returned manifest holds C(artifact.path) and C(artifact.signature) as absolute paths (relative ones are
    resolved against the manifest file's directory), adds C(monitoring.soak_seconds),
    C(notify.lead_time_seconds) and each probe's C(timeout_seconds), and fills in C(install_dir).
  - The artifact itself is not checked here; the M(fleetpatch.rollout.apply) action checks it on the
    controller before anything changes.
options:
  _input:
    description:
      - Path of the manifest file on the controller, read as it is given. A relative path is relative to the
        controller's current directory, so it depends on where C(ansible-playbook) is started; to find a manifest
        relative to the role, the playbook or the inventory as Ansible finds files, use
        P(fleetpatch.rollout.manifest#lookup) instead.
    type: string
    required: true
seealso:
  - plugin: fleetpatch.rollout.manifest
    plugin_type: lookup
  - module: fleetpatch.rollout.apply
  - module: fleetpatch.rollout.detect
"""

EXAMPLES = r"""
- name: Read the change record of the fpdemo 7.0.28 hot patch
  ansible.builtin.set_fact:
    fp_manifest: "{{ (playbook_dir ~ '/../manifests/FP-2025-14847.yml') | fleetpatch.rollout.manifest }}"

- name: Find out which hosts it concerns
  fleetpatch.rollout.detect:
    component: "{{ fp_manifest.component }}"
    install_dir: "{{ fp_manifest.install_dir }}"
    affected: "{{ fp_manifest.affected }}"
    fixed_version: "{{ fp_manifest.fixed_version }}"
"""

RETURN = r"""
_value:
  description:
    - The manifest, checked and normalised. Its fields are documented in the collection's C(manifests/README.md).
  type: dict
  sample:
    id: FP-2025-14847
    component: fpdemo
    affected: ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
    fixed_version: 7.0.28
    class: hot
    artifact:
      path: /work/fleetpatch/.build/artifacts/fpdemo-7.0.28.tar.gz
      sha256: 15cfc8added145376d53f61b7af502d30e332d4d0ab9a6a01b3b33eef164208c
    monitoring:
      soak: 5m
      soak_seconds: 300
    notify:
      lead_time: 15h
      lead_time_seconds: 54000
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, load_manifest

FILTER = "fleetpatch.rollout.manifest"


def manifest(path):
    """The checked, normalised manifest at ``path``; AnsibleFilterError naming the filter otherwise."""
    if not isinstance(path, str):
        raise AnsibleFilterError(f"{FILTER}: the input must be the path of a manifest file (a string), got {type(path).__name__}")
    if not path.strip():
        raise AnsibleFilterError(f"{FILTER}: the input must be the path of a manifest file, got an empty string")
    try:
        return load_manifest(path)
    except ManifestError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's manifest filter."""

    def filters(self):
        return {"manifest": manifest}
