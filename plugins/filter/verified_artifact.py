# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: verified_artifact
short_description: Check a patch's artifact on the controller before anything changes
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Takes a checked manifest (the output of P(fleetpatch.rollout.manifest#filter)) and checks its artifact on the
    controller as M(fleetpatch.rollout.apply) does, the sha256, the archive by the same rule a host unpacks it
    by, and, when the manifest carries a signature, the OpenSSH signature against O(allowed_signers).
  - The archive rule is the host's own, so an archive a host would refuse is refused here, with the same message
    naming the member. A complete gzip stream (read to its end), one top directory, only regular files and
    directories (no links or devices), no absolute names or C(..), and a C(VERSION) file in the top directory
    that names the manifest's C(fixed_version).
  - A rollout's preflight calls it so that a truncated, corrupt or wrongly signed artifact stops the run before
    the first host is touched.
  - A manifest whose artifact is a URL only is fetched by the hosts themselves and cannot be checked here; the
    result then says so (RV(_value.checked=false)) and each host checks what it fetched, its sha256 and the same archive rule.
options:
  _input:
    description: The checked manifest.
    type: dict
    required: true
  allowed_signers:
    description:
      - The OpenSSH allowed-signers file that vouches for a signed artifact.
      - A relative path is relative to the controller's current directory; to find it relative to the role, the
        playbook or the inventory as Ansible finds files, use P(fleetpatch.rollout.verified_artifact#lookup) instead.
    type: path
seealso:
  - plugin: fleetpatch.rollout.verified_artifact
    plugin_type: lookup
  - module: fleetpatch.rollout.apply
"""

EXAMPLES = r"""
- name: Check the artifact before the first wave
  ansible.builtin.set_fact:
    fp_artifact: "{{ fp_manifest | fleetpatch.rollout.verified_artifact }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: What was checked.
  type: dict
  contains:
    checked:
      description: Whether the artifact was checked here (false for a URL-only artifact).
      type: bool
    sha256:
      description: The artifact's sha256.
      type: str
    size:
      description: Its size in bytes.
      type: int
    signed_by:
      description: The identity whose signature verified, or null without a signature.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, manifest_artifact

FILTER = "fleetpatch.rollout.verified_artifact"


def verified_artifact(manifest, allowed_signers=None):
    """What ``verify_artifact`` found for the manifest's artifact; AnsibleFilterError naming the filter otherwise."""
    try:
        return manifest_artifact(manifest, allowed_signers)
    except ArtifactError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout.verified_artifact."""

    def filters(self):
        return {"verified_artifact": verified_artifact}
