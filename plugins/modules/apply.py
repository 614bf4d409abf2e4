#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: apply
short_description: Apply a patch release to a host, hot when it can, with the way back kept ready
version_added: 0.1.0
description:
  - Installs the release O(version) of O(component) from O(artifact), switches the C(current) link to it
    atomically, makes the service take it (a reload for a hot patch, a restart otherwise), confirms through
    O(version_url) that the service runs it, and records the patch in the host's state file.
  - The release the host ran before stays installed, and M(fleetpatch.rollout.rollback) returns to it.
  - Every step is journaled in the state file first. An apply interrupted at any point (SSH drop, controller
    killed, power cut) is reverted by the next apply or rollback, which then does its own work, so a host always
    ends on exactly the old or the new release.
  - If the service does not answer O(version) after the activation, the host is returned to its old release
    and the task fails.
  - The artifact is checked on the controller before anything happens (sha256, the archive, and the signature
    when O(signature) is set), copied to the host only when the host does not have the release yet, and
    checked there again before it is unpacked. With O(artifact_url) instead, the host downloads it and checks it.
  - The archive is judged by one rule, on the controller and on the host alike, so an archive the host would
    refuse is refused before it is shipped, with the same message naming the member. It must be a complete
    gzip tar archive with one top directory, only regular files and directories below it (no links, devices or
    FIFOs), no absolute names or C(..), and a C(VERSION) file in the top directory that names O(version).
  - Refuses to downgrade, and refuses when the installed version is outside O(compatible_with).
  - With O(judge), the patched service's health is judged in the same call, after the apply completed and the
    host's state lock was released, by the check of M(fleetpatch.rollout.health) with the options it shares with
    it (O(probes), O(thresholds), O(baseline), O(peers), ...; with O(manifest), from its C(monitoring) section).
    Its result is RV(health). A host this call patched, or one an earlier run patched but ended before judging
    (RV(judged) false), is soaked for O(soak) seconds and a healthy verdict marks the apply's record C(judged) in
    the state file, as O(fleetpatch.rollout.health#module:judged_patch) does; a host already patched and judged
    is checked once and nothing is marked. An unhealthy verdict leaves the host patched (the rollback is the
    caller's) and fails the task only with O(fail_on_unhealthy).
  - The check is made in this call only where the soak allows, when it takes at most O(judge_max_soak) seconds;
    otherwise RV(health) is V(null) and the caller judges with M(fleetpatch.rollout.health), after it has learned
    that the apply completed. A host lost during a long soak is then known to run the applied release, while
    one lost during a check made in this call is not known to (the next run finds its apply unjudged and judges it).
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
  - fleetpatch.rollout.service
  - fleetpatch.rollout.lease
  - fleetpatch.rollout.health
attributes:
  action:
    support: full
    description: The controller half checks and transfers the artifact.
options:
  patch_id:
    description:
      - Identifier of the patch, for example V(FP-2025-14847). Recorded in the state file.
      - Required unless O(manifest) gives it.
    type: str
  version:
    description:
      - The release to run, usually the patch's fixed version.
      - Required unless O(manifest) gives it (its C(fixed_version)).
    type: str
  artifact:
    description:
      - Path of the release tarball on the controller. Its single top directory holds the release, with a
        C(VERSION) file naming O(version).
      - Needed when the host does not have the release installed yet.
      - A relative path is found as P(ansible.builtin.file#lookup) finds a file, in the task's role and then the
        playbook's directory (under C(files/) first), then beside the inventory; the current directory plays no part.
    type: path
  artifact_sha256:
    description:
      - sha256 of O(artifact), checked on the controller and again on the host.
      - Required unless O(manifest) gives it.
    type: str
  signature:
    description:
      - OpenSSH signature (C(ssh-keygen -Y sign), namespace V(fleetpatch)) of O(artifact), verified on the
        controller with O(allowed_signers) and O(signer) before anything happens.
      - A relative path is found as P(ansible.builtin.file#lookup) finds a file, in the task's role and then the
        playbook's directory (under C(files/) first), then beside the inventory; the current directory plays no part.
    type: path
  allowed_signers:
    description:
      - OpenSSH allowed-signers file that holds the key O(signer) may sign with. Required with O(signature).
      - A relative path is found as P(ansible.builtin.file#lookup) finds a file, in the task's role and then the
        playbook's directory (under C(files/) first), then beside the inventory; the current directory plays no part.
    type: path
  signer:
    description:
      - Identity the signature must belong to. Required with O(signature).
    type: str
  artifact_url:
    description:
      - URL the host downloads the artifact from itself, when it does not have the release yet and no
        O(artifact) is given. The download is checked against O(artifact_sha256) on the host before it is
        unpacked; a signature cannot be checked this way.
    type: str
  artifact_path:
    description:
      - Path of the artifact on the host. Set by the controller half after it copied O(artifact); set it
        yourself only when the artifact is already on the host.
    type: path
  compatible_with:
    description:
      - Version range of the releases that may run beside O(version) during the rollout. A host whose
        installed version is outside it is refused.
    type: str
  judge:
    description:
      - Judge the patched service's health in the same call (see the description), with the options of the health
        check below. Those options are used only with V(true).
    type: bool
    default: false
  judge_max_soak:
    description:
      - With O(judge), the longest soak, in seconds, taken in this call; a longer one is left to
        M(fleetpatch.rollout.health) (RV(health) is V(null)). V(0) judges here only a check of one round (and
        the rounds that confirm a breach).
    type: float
    default: 0
notes:
  - With O(judge), the judgment costs no round trip of its own where the soak allows (see O(judge_max_soak)).
  - Makes one module round trip to a host that already has the release (or runs it), and two plus one file
    transfer to a host that needs the artifact.
seealso:
  - module: fleetpatch.rollout.detect
  - module: fleetpatch.rollout.rollback
"""

EXAMPLES = r"""
- name: Apply the patch its change record describes
  fleetpatch.rollout.apply:
    manifest: /srv/patches/FP-2025-14847.yml
    allowed_signers: /etc/fleetpatch/allowed_signers

- name: Apply the fpdemo 7.0.28 hot patch
  fleetpatch.rollout.apply:
    patch_id: FP-2025-14847
    component: fpdemo
    version: 7.0.28
    artifact: /srv/patches/fpdemo-7.0.28.tar.gz
    artifact_sha256: "{{ fp_sha256 }}"
    compatible_with: ">=7.0.26,<7.1"
    patch_class: hot
    reload_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, reload]
    restart_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, restart]
    version_url: http://127.0.0.1:8080/version

- name: Measure the service's health before the patch
  fleetpatch.rollout.health:
    manifest: /srv/patches/FP-2025-14847.yml
    soak: 0
    consecutive_failures: 1
    check_vulnerability: false
  register: fp_baseline

- name: Apply the patch and judge it in the same call (an emergency, no soak), against the baseline
  fleetpatch.rollout.apply:
    manifest: /srv/patches/FP-2025-14847.yml
    judge: true
    soak: 0
    baseline: "{{ fp_baseline.metrics }}"
    fail_on_unhealthy: false
  register: fp_applied

- name: Roll back when the patched release is unhealthy
  fleetpatch.rollout.rollback:
    manifest: /srv/patches/FP-2025-14847.yml
  when: fp_applied.health is not none and not fp_applied.health.healthy
"""

RETURN = r"""
patch:
  description: The patch applied.
  returned: success
  type: str
  sample: FP-2025-14847
component:
  description: The component patched.
  returned: success
  type: str
  sample: fpdemo
version:
  description: The release the service runs now.
  returned: success
  type: str
  sample: 7.0.28
previous:
  description: The release the host ran before the patch (what M(fleetpatch.rollout.rollback) returns to).
  returned: success
  type: str
  sample: 7.0.26
judged:
  description:
    - Whether the health of the apply that made the host run RV(version) was judged healthy (the C(judged) mark
      M(fleetpatch.rollout.health) writes with O(fleetpatch.rollout.health#module:judged_patch)); V(false) for an
      apply this run makes, or one an earlier run made but ended before judging it.
    - V(null) when the host already ran RV(version) by other means (no apply of this patch recorded).
    - As the state file had it before this call; the mark that O(judge) writes is in RV(health).
  returned: success
  type: bool
  sample: false
health:
  description:
    - With O(judge), the result of the health check made in this call, as M(fleetpatch.rollout.health) returns it
      (RV(fleetpatch.rollout.health#module:healthy), RV(fleetpatch.rollout.health#module:metrics),
      RV(fleetpatch.rollout.health#module:failures), ...), with RV(fleetpatch.rollout.health#module:judged) when
      a mark was due (the apply was to be judged).
    - V(null) when the soak is longer than O(judge_max_soak), for the caller to judge.
  returned: with O(judge), when the apply completed
  type: dict
  sample:
    healthy: true
    vulnerable: false
    judged: "2026-03-03T01:31:07Z"
    rounds: 1
    failures: []
    transient_failures: []
    msg: "healthy: 2 probes, 1 rounds"
recovered:
  description: The journal of an interrupted apply or rollback that this run reverted first.
  returned: when an interrupted operation was found
  type: dict
  sample: {"op": "apply", "from": "7.0.26", "to": "7.0.28", "step": "switched"}
interrupted:
  description: In check mode, the journal of an interrupted operation that a real run would revert.
  returned: in check mode, when an interrupted operation was found
  type: dict
state_error:
  description:
    - What is wrong with the damaged state file that this run went on without, with O(damaged_state=move_aside).
  returned: when the state file was damaged and O(damaged_state=move_aside)
  type: str
  sample: "state file /var/lib/fleetpatch/state.json: components.fpdemo.version is 5, expected a string"
state_moved_to:
  description:
    - Where the damaged state file was moved before this run wrote the state afresh.
  returned: when a damaged state file was moved aside
  type: str
  sample: /var/lib/fleetpatch/state.json.damaged-20261202T031500Z
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._apply import apply_patch, judge_applied
from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import HEALTH_ARGSPEC, SERVICE_ARGSPEC, SERVICE_REQUIRED_IF
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


def main():
    module = AnsibleModule(
        argument_spec={
            **SERVICE_ARGSPEC,
            "patch_id": {"type": "str"},
            "version": {"type": "str"},
            "artifact": {"type": "path"},
            "artifact_sha256": {"type": "str"},
            "signature": {"type": "path"},
            "allowed_signers": {"type": "path"},
            "signer": {"type": "str"},
            "artifact_url": {"type": "str"},
            "artifact_path": {"type": "path"},
            "compatible_with": {"type": "str"},
            "judge": {"type": "bool", "default": False},
            "judge_max_soak": {"type": "float", "default": 0},
            **HEALTH_ARGSPEC,
        },
        required_if=SERVICE_REQUIRED_IF,
        mutually_exclusive=[("reload_command", "reload_signal")],
        required_by={"signature": ("allowed_signers", "signer")},
        supports_check_mode=True,
    )
    run_operation(module, apply_patch, ("component", "patch_id", "version", "artifact_sha256", "version_url"), then=judge_applied)


if __name__ == "__main__":
    main()
