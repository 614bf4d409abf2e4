# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.audit_event: append one rollout event to the run's audit log, on the controller.

The log, head file, HMAC key and run id are the ones the run's fleetpatch.rollout.audit callback published when
it started (this worker was forked after that, so it inherits them): one configuration, one log, one chain.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import templated_var
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._approvals import URGENCIES, ApprovalError, check_approval
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._secrets import vault_plaintexts, vaulted

MODULE = "fleetpatch.rollout.audit_event"
KINDS = ("approval", "plan", "wave_start", "wave_end", "gate", "rollback", "rollback_start", "rollback_end", "verified", "lock", "note", "notification")

ARGUMENT_SPEC = {
    "kind": {"type": "str", "required": True, "choices": list(KINDS)},
    "approved_by": {"type": "str"},
    "implemented_by": {"type": "str"},
    "urgency": {"type": "str", "choices": list(URGENCIES)},
    "justification": {"type": "str"},
    "verified_by": {"type": "str"},
    "patch_id": {"type": "str"},
    "artifact_sha256": {"type": "str"},
    "wave": {"type": "str"},
    "gate": {"type": "str"},
    "decision": {"type": "str", "choices": ["proceed", "halt"]},
    "hosts": {"type": "list", "elements": "str"},
    "data": {"type": "dict", "default": {}},
}
# Where an argument is not given, the variable of the same meaning that the callback reads too.
DEFAULT_VARS = {
    "approved_by": "fleetpatch_approved_by", "implemented_by": "fleetpatch_implemented_by", "urgency": "fleetpatch_urgency",
    "justification": "fleetpatch_justification", "verified_by": "fleetpatch_verified_by",
}
# Who launched the job and which jobs it belongs to, as AWX / Automation Controller set them (or their older tower_* names).
PLATFORM_VARS = {
    "user": ("awx_user_name", "tower_user_name"), "job_id": ("awx_job_id", "tower_job_id"),
    "workflow_job_id": ("awx_workflow_job_id", "tower_workflow_job_id"),
}
NOT_ENABLED = (f"{MODULE}: the audit callback fleetpatch.rollout.audit is not enabled in this run, so there is no audit trail to "
               "add to: enable it (callbacks_enabled, or ANSIBLE_CALLBACKS_ENABLED=fleetpatch.rollout.audit)")


class ActionModule(ActionBase):
    """Write the event through the same AuditLog as the callback; fail when it cannot be written."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # nothing runs on the host
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("kind", "gate", ("gate", "decision")), ("kind", "wave_start", ("wave",)), ("kind", "wave_end", ("wave",))],
        )
        sink = _audit.current_sink()
        if sink is None:
            raise AnsibleActionFail(NOT_ENABLED)
        for name, variable in DEFAULT_VARS.items():
            if args.get(name) is None:
                args[name] = self._var(task_vars, variable)
        kind = args["kind"]
        # What the callback knows (extra vars, earlier events), then this host's variables, then the arguments.
        context = _audit.merge_context(sink.get("context") or {"actors": {}},
                                       _audit.context_from_vars({name: self._var(task_vars, name) for names in _audit.ACTOR_VARS.values() for name in names}))
        context = _audit.merge_context(context, _audit.context_from_vars({name: self._var(task_vars, name) for name in _audit.CONTEXT_VARS.values()}))
        update = {key: args[key] for key in ("patch_id", "artifact_sha256", "wave") if args.get(key)}
        data = {key: args[key] for key in ("gate", "decision", "hosts") if args.get(key) is not None}
        data.update(args["data"])
        if self._task.check_mode:
            data["check_mode"] = True
        refusal = None
        if kind == "approval":
            platform = self._platform(task_vars)
            try:
                approval = check_approval(args["approved_by"], args["implemented_by"], args["urgency"] or "routine", args["justification"],
                                          platform_user=platform.get("user"))
                if platform:
                    approval["platform"] = platform
                data["approval"] = approval
                update["actors"] = {"approved_by": approval["approved_by"], "implemented_by": approval["implemented_by"]}
            except ApprovalError as exc:
                refusal = str(exc)
                data["refused"] = refusal
                data["approval"] = {key: args[key] for key in ("approved_by", "implemented_by", "urgency", "justification")}
                if platform:
                    data["approval"]["platform"] = platform
        elif kind == "verified":
            if not (args["verified_by"] or "").strip():
                raise AnsibleActionFail(f"{MODULE}: kind=verified needs verified_by (or the variable fleetpatch_verified_by): who verified the patch")
            update["actors"] = {"verified_by": args["verified_by"].strip()}
        context = _audit.merge_context(context, update)
        # What the callback names in the records that follow: a wave that ended is no one's wave any more.
        following = {key: value for key, value in update.items() if value}
        if kind == "wave_end":
            following["wave"] = None
        host = None if self._task.run_once else task_vars.get("inventory_hostname")
        record = _audit.make_record(kind, sink["run_id"], context, host=host, data=data, secret=vaulted, plaintexts=vault_plaintexts(task_vars),
                                    redact=sink.get("redact_keys", _audit.REDACT_KEYS))
        try:
            written = _audit_pg.append_to_sink(sink, record)  # the file, or PostgreSQL through a connection of this worker's own
        except _audit.HeadError as exc:
            raise AnsibleActionFail(f"{MODULE}: the record was written, but the rollout stops here because {exc}") from None
        except _audit.AuditError as exc:
            raise AnsibleActionFail(f"{MODULE}: the audit log cannot be written, so the rollout stops here: {exc}") from None
        result.update(changed=False, audit={
            "log": sink["log"], "seq": written["seq"], "hash": written["hash"], "event": kind, "run_id": sink["run_id"],
            "context": following,
        })
        if refusal:
            raise AnsibleActionFail(f"{MODULE}: approval refused: {refusal}", result=result)
        if kind == "approval":
            result["approval"] = data["approval"]
        if sink.get("dropped"):
            raise AnsibleActionFail(
                f"{MODULE}: the audit callback could not write {sink['dropped']} record(s) of this run, so its audit trail is incomplete "
                f"and the rollout stops here (last error: {sink.get('error')})", result=result,
            )
        return result

    def _platform(self, task_vars):
        """Who launched the job and its ids, when AWX / Automation Controller runs it: ``{}`` otherwise."""
        found = {}
        for field, names in PLATFORM_VARS.items():
            for name in names:
                value = self._var(task_vars, name)
                if value is not None and value != "":
                    found[field] = value if isinstance(value, int) and not isinstance(value, bool) else str(value)
                    break
        return found

    def _var(self, task_vars, name):
        """A variable's templated value, or None when it is not set or cannot be templated."""
        return templated_var(self._templar, task_vars, name)
