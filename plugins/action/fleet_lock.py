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

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg, _fleet_lock
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import templated_var

MODULE = "fleetpatch.rollout.fleet_lock"

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["acquired", "released"], "default": "acquired"},
    "patch_id": {"type": "str"},
    "holder": {"type": "str"},
    "job": {"type": "str"},
    "take_over": {"type": "bool", "default": False},
    "share": {"type": "str"},
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
        # The callback could not open the trail (a DSN with a password, no psycopg, a bad trail name): nothing could be recorded.
        if args["state"] == "acquired" and sink and sink.get("broken"):
            raise AnsibleActionFail(f"{MODULE}: the audit trail cannot be written, so the fleet lock is not taken: {sink['broken']}", result=result)
        # The file O(path); with the audit callback, the lock it keeps: the trail's row for a PostgreSQL trail, else the file
        # beside its log; without it, the file beside the log its environment setting names, else in Ansible's home directory.
        try:
            store = _fleet_lock.store_for(sink, args["path"], default_log=os.environ.get("FLEETPATCH_AUDIT_LOG")
                                          or os.path.join(C.ANSIBLE_HOME, "fleetpatch", "audit.jsonl"))
        except _fleet_lock.FleetLockError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}", result=result) from None
        path = store.where
        pid = os.getppid()  # the ansible-playbook process this worker was forked from: the run itself
        pid_start = _fleet_lock.process_start(pid)
        # The run's id: the audit trail's, else one that the same run finds again at its end (its process).
        owner = sink["run_id"] if sink else f"{socket.gethostname()}-{pid}-{pid_start}"
        result.update(changed=False, path=path, owner=owner, audited=sink is not None)
        try:
            if args["state"] == "released":
                released = None if self._task.check_mode else _fleet_lock.release(store, owner)
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
            taken = _fleet_lock.acquire(store, holder, take_over=args["take_over"], check_mode=self._task.check_mode, share=args["share"])
        except _fleet_lock.FleetLockError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}", result=dict(result, held_by=exc.holder, held_by_all=exc.holders)) from None
        result.update({key: taken[key] for key in ("changed", "holder", "holders", "share", "ended", "taken_over", "taken_over_all")})
        if taken["changed"] and not self._task.check_mode:
            previous = taken["taken_over_all"]
            data = {"lock": "taken over" if previous else ("joined" if len(taken["holders"]) > 1 else "acquired"), "path": path,
                    "holder": taken["holder"], "previous": taken["taken_over"]}
            if taken["share"] is not None:
                data.update(share=taken["share"], holders=[current["owner"] for current in taken["holders"]])
            if len(previous) > 1:
                data["previous_all"] = previous
            self._record(sink, data)
        return result

    def _record(self, sink, data):
        """Append a ``lock`` record to the run's audit trail, when it has one; fail when it cannot be written."""
        if sink is None:
            return
        context = sink.get("context") or {"actors": {}}
        if data["holder"].get("patch"):
            context = _audit.merge_context(context, {"patch_id": data["holder"]["patch"]})
        try:
            # the file, or PostgreSQL through a connection of this worker's own
            _audit_pg.append_to_sink(sink, _audit.make_record("lock", sink["run_id"], context, data=data,
                                                              redact=sink.get("redact_keys", _audit.REDACT_KEYS)))
        except _audit.AuditError as exc:
            raise AnsibleActionFail(f"{MODULE}: the audit log cannot be written, so the run stops here: {exc}") from None

    def _var(self, task_vars, name):
        """A variable's templated value, or None when it is not set or cannot be templated."""
        return templated_var(self._templar, task_vars, name)
