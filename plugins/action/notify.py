# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.notify: tell each customer of the affected hosts once, by e-mail, and keep the ledger, on the controller.

The logic is plugins/plugin_utils/_notify.py; this finds the files, reads the arguments and reports.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _notify
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._detect_report import DetectReportError, read_detect_report
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, find_file, inventory_dirs, task_file

MODULE = "fleetpatch.rollout.notify"

ARGUMENT_SPEC = {
    "hosts": {"type": "dict", "required": True},
    "manifest": {"type": "dict", "required": True},
    "ledger": {"type": "str", "required": True},
    "sender": {"type": "str", "required": True},
    "by": {"type": "str"},
    "policy": {"type": "dict", "default": {}},
    "detect_key": {"type": "str", "default": "detect"},
    "detect_report": {"type": "str"},
    "subject_template": {"type": "str", "default": "notice_subject.j2"},
    "body_template": {"type": "str", "default": "notice_body.j2"},
    "smtp_host": {"type": "str", "default": "localhost"},
    "smtp_port": {"type": "int"},
    "smtp_security": {"type": "str", "default": "starttls", "choices": list(_notify.SECURITY)},
    "smtp_username": {"type": "str"},
    "smtp_password": {"type": "str", "no_log": True},
    "smtp_ca_file": {"type": "str"},
    "smtp_timeout": {"type": "int", "default": 30},
    "lock_timeout": {"type": "int", "default": 60},
}


class ActionModule(ActionBase):
    """Plan the notices, send those not yet in the ledger, record each accepted one; never stops at one customer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # nothing runs on the host
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        try:
            templates = {part: self._template(args[f"{part}_template"], task_vars) for part in ("subject", "body")}
            ledger_path = self._ledger_path(args["ledger"], task_vars)
            report = self._report(args["detect_report"], task_vars, args["manifest"]) if args["detect_report"] else None
            plan = _notify.plan_notices(args["hosts"], args["manifest"], policy=args["policy"], detect_key=args["detect_key"], report=report)
            transport = None if check_mode else _notify.SmtpTransport(
                args["smtp_host"], args["smtp_port"], security=args["smtp_security"], username=args["smtp_username"],
                password=args["smtp_password"], timeout=args["smtp_timeout"], ca_file=args["smtp_ca_file"],
            )
            with _notify.Ledger(ledger_path, write=not check_mode, lock_timeout=args["lock_timeout"]) as ledger:
                notices = _notify.send_notices(plan, ledger, templates, args["sender"], transport=transport, check_mode=check_mode, by=args["by"])
        except (_notify.NotifyError, SearchPathError) as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        failed = [notice["customer"] for notice in notices if notice["status"] == "failed"]
        result.update(
            changed=any(notice["status"] in ("sent", "would_send") for notice in notices),
            patch_id=plan.patch["id"], ledger=ledger_path, notices=notices, failed_customers=failed,
            unknown_hosts=plan.unknown, hosts_without_customer=plan.no_customer,
        )
        return result

    def _template(self, name, task_vars):
        """``(path, text)`` of a template, found as the template action finds one (``templates/``), then beside the inventory."""
        try:
            path = find_file(self._loader, name, self._task.get_search_path(), inventory=inventory_dirs(task_vars), subdir="templates")
            with open(path, encoding="utf-8") as handle:
                return path, handle.read()
        except OSError as exc:
            raise _notify.NotifyError(f"template {name}: cannot read it: {exc.strerror or exc}") from None

    def _report(self, needle, task_vars, manifest):
        """Each host's detection in a detection report, found as Ansible finds files and checked for the manifest."""
        try:
            return read_detect_report(task_file(self, needle, task_vars), manifest=manifest)["hosts"]
        except DetectReportError as exc:
            raise _notify.NotifyError(f"detect report {exc}") from None

    def _ledger_path(self, needle, task_vars):
        """The ledger's path: absolute as given, or found as Ansible finds files; a new one beside the inventory."""
        try:
            return task_file(self, needle, task_vars)
        except SearchPathError as exc:
            directories = inventory_dirs(task_vars)
            if not directories:
                raise _notify.NotifyError(f"ledger: {exc}\n(a new ledger is created beside the inventory; this run has no inventory "
                                          "directory: give an absolute path)") from None
            return f"{directories[0]}/{needle}"
