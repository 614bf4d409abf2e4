# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller half shared by modules that take their settings from a patch manifest.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A relative path in an option naming a controller file (``manifest``; apply's ``artifact``, ``signature`` and
``allowed_signers``) is found through the task's search path, then the inventory's directories
(``_search_path.py``), before the manifest is read: the same task finds the same files from wherever
``ansible-playbook`` is started.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, task_args
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, task_file

__all__ = ["ManifestAction", "manifest_task_args", "templated_var"]


def templated_var(templar, task_vars, name):
    """The variable ``name`` of ``task_vars`` templated, or None when it is not set or cannot be templated."""
    if name not in task_vars:
        return None
    try:
        return templar.template(task_vars[name])
    except AnsibleError:
        return None


def manifest_task_args(action, task_vars, module, operation, files=("manifest",)):
    """The task's arguments for ``module``, with its manifest's filled in underneath; AnsibleActionFail naming the module otherwise.

    Each option in ``files`` that the task sets is a controller file found first (see the module's header);
    the manifest's own relative paths (its artifact and signature) are relative to the manifest file.
    """
    args = dict(action._task.args)
    for option in files:
        if args.get(option) is not None:
            try:
                args[option] = task_file(action, args[option], task_vars)
            except SearchPathError as exc:
                raise AnsibleActionFail(f"{module}: {option}: {exc}") from None
    try:
        return task_args(args, operation)
    except ManifestError as exc:
        raise AnsibleActionFail(f"{module}: {exc}") from None


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
        args = manifest_task_args(self, task_vars, self.MODULE, self.OPERATION)
        result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        return result
