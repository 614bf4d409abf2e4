# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.fleet_lock: take or release the fleet lock of the run's audit trail, on the controller."""

from __future__ import annotations

import getpass
import os
import socket

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _fleet_lock
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import templated_var

MODULE = "fleetpatch.rollout.fleet_lock"

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["acquired", "released"], "default": "acquired"},
    "patch_id": {"type": "str"},
    "holder": {"type": "str"},
    "job": {"type": "str"},
    "take_over": {"type": "bool", "default": False},
    "path": {"type": "path"},
}
# Where an argument is not given, the first of these variables that is set.
DEFAULT_VARS = {"holder": ("fleetpatch_implemented_by", "awx_user_name"), "job": ("awx_job_id", "tower_job_id")}


class ActionModule(ActionBase):
    """Take or release the lock; record what happened in the audit trail when the run has one."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # nothing runs on the host
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        for name, variables in DEFAULT_VARS.items():
            if not args.get(name):
                values = [self._var(task_vars, variable) for variable in variables]
                args[name] = next((str(value) for value in values if value not in (None, "")), None)
        sink = _audit.current_sink()
        # Without the audit callback: beside the log its environment setting names, else in Ansible's home directory.
        # With the callback: the lock it names (beside the log, or for a PostgreSQL trail in the log option's directory).
        path = args["path"] or (sink or {}).get("lock") or _fleet_lock.lock_path(
            sink["log"] if sink else os.environ.get("FLEETPATCH_AUDIT_LOG") or os.path.join(C.ANSIBLE_HOME, "fleetpatch", "audit.jsonl"))
        pid = os.getppid()  # the ansible-playbook process this worker was forked from: the run itself
        pid_start = _fleet_lock.process_start(pid)
        # The run's id: the audit trail's, else one that the same run finds again at its end (its process).
        owner = sink["run_id"] if sink else f"{socket.gethostname()}-{pid}-{pid_start}"
        result.update(changed=False, path=path, owner=owner, audited=sink is not None)
        try:
            if args["state"] == "released":
                released = None if self._task.check_mode else _fleet_lock.release(path, owner)
                result.update(changed=released is not None, released=released)
                if released:
                    self._record(sink, {"lock": "released", "path": path, "holder": released})
                return result
            if args["take_over"] and sink is None:
                raise AnsibleActionFail(f"{MODULE}: take_over: a take-over of the fleet lock must be recorded in an audit trail, and this run has "
                                        "none: enable the audit callback fleetpatch.rollout.audit")
            holder = {
                "owner": owner, "who": args["holder"] or getpass.getuser(), "patch": args["patch_id"], "since": _audit.utc_now(),
                "job": args["job"], "controller": socket.gethostname(), "pid": pid, "pid_start": pid_start,
                "user": getpass.getuser(),
            }
            taken = _fleet_lock.acquire(path, holder, take_over=args["take_over"], check_mode=self._task.check_mode)
        except _fleet_lock.FleetLockError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}", result=dict(result, held_by=exc.holder)) from None
        result.update(changed=taken["changed"], holder=taken["holder"], ended=taken["ended"], taken_over=taken["taken_over"])
        if taken["changed"] and not self._task.check_mode:
            self._record(sink, {"lock": "taken over" if taken["taken_over"] else "acquired", "path": path, "holder": taken["holder"],
                                "previous": taken["taken_over"]})
        return result

    def _record(self, sink, data):
        """Append a ``lock`` record to the run's audit trail, when it has one; fail when it cannot be written."""
        if sink is None:
            return
        context = sink.get("context") or {"actors": {}}
        if data["holder"].get("patch"):
            context = _audit.merge_context(context, {"patch_id": data["holder"]["patch"]})
        try:
            _audit.append_to_sink(sink, _audit.make_record("lock", sink["run_id"], context, data=data,
                                                           redact=sink.get("redact_keys", _audit.REDACT_KEYS)))
        except _audit.AuditError as exc:
            raise AnsibleActionFail(f"{MODULE}: the audit log cannot be written, so the run stops here: {exc}") from None

    def _var(self, task_vars, name):
        """A variable's templated value, or None when it is not set or cannot be templated."""
        return templated_var(self._templar, task_vars, name)
