# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.stored_plan: write a rollout's plan to a file, or read it back once the audit trail vouches for it."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _plan_store
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._gate import GateError

MODULE = "fleetpatch.rollout.stored_plan"

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["written", "read"], "default": "read"},
    "path": {"type": "path", "required": True},
    "manifest": {"type": "dict", "required": True},
    "plan": {"type": "dict"},
    "wave": {"type": "str"},
    "hosts": {"type": "list", "elements": "str"},
    "error_budget": {"type": "raw"},
}
NOT_ENABLED = (f"{MODULE}: the audit callback fleetpatch.rollout.audit is not enabled in this run, so there is no audit trail to vouch for "
               "a stored plan: enable it (callbacks_enabled, or ANSIBLE_CALLBACKS_ENABLED=fleetpatch.rollout.audit)")


class ActionModule(ActionBase):
    """Everything on the controller: the plan file and the run's audit trail."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp, task_vars  # nothing runs on the host
        _spec, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("state", "written", ("plan",))],
            required_by={"error_budget": ("wave",), "hosts": ("wave",)},
        )
        try:
            if args["state"] == "written":
                document = _plan_store.plan_document(args["plan"], args["manifest"])
                digest, changed = _plan_store.write_plan(args["path"], document, check_mode=self._task.check_mode)
                result.update(changed=changed, sha256=digest, path=args["path"])
                return result
            result.update(self._read(args))
        except (_plan_store.PlanStoreError, GateError, _audit.AuditError) as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        return result

    def _read(self, args):
        sink = _audit.current_sink()
        if sink is None:
            raise AnsibleActionFail(NOT_ENABLED)
        document, digest = _plan_store.read_plan(args["path"], args["manifest"])
        records = _plan_store.trail_records(sink)
        recorded = _plan_store.recorded_plan(records, digest)
        if recorded is None:
            raise _plan_store.PlanStoreError(
                f"fleetpatch_plan_file: {args['path']} (sha256 {digest}) is not a plan recorded in the audit trail: only a plan that a "
                "rollout or the plan entry point recorded there may run (was it edited, or made with another trail?)")
        found = {"changed": False, "sha256": digest, "path": args["path"], "plan": document["plan"], "document": document,
                 "recorded": {key: recorded.get(key) for key in ("seq", "run_id", "ts")}}
        if args["wave"] is not None:
            wave = _plan_store.find_wave(document["plan"], args["wave"])
            found["wave"] = wave
            if args["hosts"] is not None:
                found["slice"] = _plan_store.slice_wave(wave, args["hosts"])
            if args["error_budget"] is not None:
                found["gate"] = _plan_store.trail_gate(document["plan"], digest, args["wave"], records, args["error_budget"])
        return found
