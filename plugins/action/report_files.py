# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.report_files: write a report's files into a directory on the controller, each atomically."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _status

MODULE = "fleetpatch.rollout.report_files"
ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "files": {"type": "dict", "required": True},
}


class ActionModule(ActionBase):
    """Write the files on the controller; nothing runs on the host."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # nothing runs on the host
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        files = {str(name): text for name, text in args["files"].items()}
        try:
            changed = _status.write_files(args["dest"], files, check_mode=bool(self._task.check_mode))
        except _status.StatusError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        paths = [f"{args['dest'].rstrip('/')}/{name}" for name in files]
        result.update(changed=bool(changed), paths=paths, changed_paths=changed)
        return result
