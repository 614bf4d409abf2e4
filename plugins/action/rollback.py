# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of fleetpatch.rollout.rollback: take the service's settings from the patch manifest."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, task_args

MODULE = "fleetpatch.rollout.rollback"


class ActionModule(ActionBase):
    """Fill the module's arguments from O(manifest), then run it: one round trip."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused
        try:
            args = task_args(self._task.args, "rollback")
        except ManifestError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
