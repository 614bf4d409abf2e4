# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller half shared by modules that take their settings from a patch manifest.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, task_args

__all__ = ["ManifestAction", "templated_var"]


def templated_var(templar, task_vars, name):
    """The variable ``name`` of ``task_vars`` templated, or None when it is not set or cannot be templated."""
    if name not in task_vars:
        return None
    try:
        return templar.template(task_vars[name])
    except AnsibleError:
        return None


class ManifestAction(ActionBase):
    """Fill the module's arguments from its ``manifest`` option, then run it: one round trip.

    Subclasses name the module (``MODULE``) and the manifest's view of it (``OPERATION``, see
    ``_manifest.module_args``).
    """

    TRANSFERS_FILES = False
    MODULE = ""
    OPERATION = ""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused
        try:
            args = task_args(self._task.args, self.OPERATION)
        except ManifestError as exc:
            raise AnsibleActionFail(f"{self.MODULE}: {exc}") from None
        result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        return result
