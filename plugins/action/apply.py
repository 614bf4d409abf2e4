# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of fleetpatch.rollout.apply: read the manifest, check the artifact, ship it only where needed.

The artifact is checked before the first round trip to the host, by the host's own archive rule too
(``module_utils/_archive.py``): an archive the host would refuse never leaves the controller.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import manifest_task_args
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, verify_artifact

MODULE = "fleetpatch.rollout.apply"


class ActionModule(ActionBase):
    """Verify the artifact on the controller, run the module, transfer the artifact only when the host asks."""

    # No temporary directory up front: a host that already has the release costs one round trip, not two.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused: the connection's own temporary directory is used
        args = manifest_task_args(self, task_vars, MODULE, "apply", files=("manifest", "artifact", "signature", "allowed_signers"))
        source = args.get("artifact")
        if args.get("signature") and not source:
            raise AnsibleActionFail(f"{MODULE}: a signature is checked on the controller's copy of the artifact: give artifact, not only artifact_url")
        if source:
            try:
                verify_artifact(
                    source, args.get("artifact_sha256"), version=args.get("version"), signature=args.get("signature"),
                    allowed_signers=args.get("allowed_signers"), identity=args.get("signer"),
                )
            except ArtifactError as exc:
                raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        try:
            outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            if outcome.get("needs_artifact"):
                if not source:
                    raise AnsibleActionFail(f"{MODULE}: the host does not have release {args.get('version')} and neither artifact nor artifact_url was given")
                tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
                remote = self._connection._shell.join_path(tmpdir, "artifact.tar.gz")
                self._transfer_file(source, remote)
                self._fixup_perms2((tmpdir, remote))
                args["artifact_path"] = remote
                first = outcome
                outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
                outcome["transferred"] = True
                if "recovered" in first:  # the first call reverted an interrupted operation before asking
                    outcome.setdefault("recovered", first["recovered"])
                    outcome["changed"] = True
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        outcome.pop("needs_artifact", None)
        result.update(outcome)
        return result
