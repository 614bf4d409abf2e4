# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: audit
type: notification
short_description: Write a tamper-evident audit trail of every run (hash chain, optional HMAC)
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.audit
description:
  - Appends one JSON object per line to O(log) for the start and end of the run, the start of each play and
    every task result of every host (ok, changed, failed, unreachable, skipped), with a sequence number, a UTC
    timestamp, the run id, the actors (C(approved_by), C(implemented_by), C(verified_by), and the AWX /
    Automation Controller user and job id when the run comes from there), the patch id, the artifact's sha256,
    the host and the wave.
  - The rollout's own events (approvals, waves, gates, rollbacks, verification) are written to the same log by
    M(fleetpatch.rollout.audit_event), which finds the log through this callback.
  - Each record carries the hash of the one before it (a hash chain), and an HMAC when O(hmac_key_file) is set.
    Each record is written, flushed and C(fsync)ed under an exclusive lock on the log before the next event, so
    several runs can share one log; the chain head is also written to O(head_file), which is how a cut-off tail
    is found. C(fleetpatch-audit verify) (in the collection's C(bin) directory) and the
    P(fleetpatch.rollout.audit_verify#lookup) lookup check a log.
  - When the run ends, even in failure, it releases the fleet lock (M(fleetpatch.rollout.fleet_lock)) that the run
    still holds beside its log, and records the release.
  - Nothing of the result of a C(no_log) task is written but its status, not even when it fails, nor of any
    item of a loop. Other results are reduced to the keys in O(include); vaulted values in them are replaced.
  - The actors, the patch and the wave come from the extra variables C(fleetpatch_approved_by),
    C(fleetpatch_implemented_by), C(fleetpatch_verified_by), C(fleetpatch_patch_id),
    C(fleetpatch_artifact_sha256) and C(fleetpatch_wave), from AWX's C(awx_user_name) and C(awx_job_id) (or
    C(tower_*)), and from the records M(fleetpatch.rollout.audit_event) writes during the run (an approval, a
    wave's start, a verification).
  - A callback cannot stop a run. When a record cannot be written the callback warns and counts it, and the next
    M(fleetpatch.rollout.audit_event) fails the play, so a rollout stops at its next gate.
  - With O(dsn) the trail goes to a PostgreSQL database instead of O(log) (psycopg 3 needed on the controller),
    one append-only table per trail (O(trail)), created with C(fleetpatch-audit init-db). Each record is one
    transaction that locks the trail's head row, so concurrent runs (parallel and sliced AWX jobs) keep one linear
    chain; the database refuses UPDATE, DELETE and TRUNCATE on the trail. Each forked worker that writes a record
    (M(fleetpatch.rollout.audit_event)) opens its own connection. The trail outlives the execution environment of
    an AWX job, which the file does not.
  - At the end of the run the head of the trail (seq, hash and HMAC of the last record this run wrote) is published
    to each O(witness), which keeps it where the writers of the log cannot rewrite it. C(fleetpatch-audit verify
    --witness) then finds a log cut back to, or rewritten after, a head a run published.
  - What a file trail alone cannot catch, even with O(hmac_key_file) set. Anyone who can write the log and the head
    file can put back an older copy of both (the log cut back to an earlier head, with that head's signed file),
    or cut the log to any later record and keep the old head. Anyone who holds the key can rewrite the log and
    re-sign it. Only a witness (or the PostgreSQL sink, whose writers cannot update or delete) shows those.
requirements:
  - enable it with C(callbacks_enabled) (C(ANSIBLE_CALLBACKS_ENABLED=fleetpatch.rollout.audit))
options:
  log:
    description:
      - Path of the audit log, created when missing (with its directory). Not written when O(dsn) is set.
    type: path
    default: ~/.ansible/fleetpatch/audit.jsonl
    env:
      - name: FLEETPATCH_AUDIT_LOG
    ini:
      - section: callback_fleetpatch_audit
        key: log
  head_file:
    description:
      - Path of the file that holds the chain head (the last record's sequence number and hash).
      - Keep it somewhere the log's writers cannot quietly rewrite together with the log if you can.
      - Defaults to the path of O(log) followed by V(.head).
    type: path
    env:
      - name: FLEETPATCH_AUDIT_HEAD_FILE
    ini:
      - section: callback_fleetpatch_audit
        key: head_file
  include:
    description:
      - The keys of a task result (other than a C(no_log) one) that go into its record, besides its status and
        C(changed). Values are cut to 1000 characters; a loop's items are only counted.
    type: list
    elements: str
    default: [msg, rc, patch, component, version, previous]
    env:
      - name: FLEETPATCH_AUDIT_INCLUDE
    ini:
      - section: callback_fleetpatch_audit
        key: include
  dsn:
    description:
      - A PostgreSQL connection string (V(postgresql://user@host:5432/db), or libpq's V(host=... dbname=...)), to write
        the trail to that database instead of O(log). Create the schema first with C(fleetpatch-audit init-db).
      - It must not hold a password; one that does is refused. libpq reads the password from E(PGPASSWORD) or a pgpass
        file (E(PGPASSFILE), V(~/.pgpass)), so it never reaches a record, a message or the environment of the run.
      - Without it the trail is the file O(log).
    type: str
    version_added: 0.1.0
    env:
      - name: FLEETPATCH_AUDIT_DSN
    ini:
      - section: callback_fleetpatch_audit
        key: dsn
  trail:
    description:
      - The name of the trail (lower-case letters, digits and underscores); its table in the PostgreSQL sink
        (C(fleetpatch_audit.trail_<name>)), and what witnessed heads are filed under, for a file trail too.
      - Give each trail that shares a witness a name of its own.
    type: str
    default: main
    version_added: 0.1.0
    env:
      - name: FLEETPATCH_AUDIT_TRAIL
    ini:
      - section: callback_fleetpatch_audit
        key: trail
  witness:
    description:
      - Where the head of the trail is published when the run ends, for C(fleetpatch-audit verify --witness).
      - A V(postgresql://) URI (without a password) inserts it into the insert-only C(fleetpatch_audit.witness) table
        of that database; V(syslog) (V(/dev/log)), V(syslog:///PATH) (a unix socket) or V(syslog://HOST:PORT) (UDP) sends
        it to syslog, tag C(fleetpatch-audit), text C(fleetpatch-audit-witness {...}).
      - A head that cannot be published is warned about; the run has ended by then.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
    env:
      - name: FLEETPATCH_AUDIT_WITNESS
    ini:
      - section: callback_fleetpatch_audit
        key: witness
notes:
  - Each record costs one C(fsync) of the log, one of the head file and one of their directory (under a
    millisecond each on the controller's disk this was measured on).
  - With O(dsn), each record is one committed transaction (about 5 ms on a local server here, most of it the
    server's C(fsync) of its write-ahead log).
  - With O(dsn), the fleet lock (M(fleetpatch.rollout.fleet_lock)) is the file C(<trail>.fleet-lock) in the directory
    of O(log); it keeps apart the runs of one controller, not the jobs of separate AWX execution environments.
seealso:
  - module: fleetpatch.rollout.audit_event
  - plugin: fleetpatch.rollout.audit_verify
    plugin_type: lookup
"""

import functools
import getpass
import os
import socket
import uuid

from ansible.plugins.callback import CallbackBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg, _fleet_lock
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._secrets import vault_plaintexts, vaulted

EVENT_ACTION = "fleetpatch.rollout.audit_event"


def _counted(method):
    """Run a callback method; an unexpected error loses its record, so count it as one not written."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # Ansible would only warn and lose the record
            if self._sink is None:
                raise
            self._drop(exc)
            return None

    return wrapper


class CallbackModule(CallbackBase):
    """Writes each event of the run to the audit log as a chained record."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "fleetpatch.rollout.audit"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._log = None
        self._sink = None
        self._context = {"actors": {}}
        self._run_id = uuid.uuid4().hex
        self._play = None
        self._run_start = None
        self._errors = set()
        self._items = {}
        self._play_obj = None
        self._play_secrets = set()
        self._host_secrets = {}
        self._last = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        path = os.path.abspath(os.path.expanduser(self.get_option("log")))
        head = self.get_option("head_file")
        key_file = self.get_option("hmac_key_file")
        self._include = tuple(self.get_option("include") or ())
        dsn, trail = self.get_option("dsn"), self.get_option("trail")
        self._witness = [item for item in self.get_option("witness") or () if item]
        self._sink = {
            "log": path, "head": os.path.abspath(os.path.expanduser(head)) if head else path + ".head",
            "key_file": os.path.abspath(os.path.expanduser(key_file)) if key_file else None,
            "run_id": self._run_id, "dropped": 0, "error": None, "context": self._context,
            "dsn": dsn or None, "trail": trail, "lock": _fleet_lock.lock_path(os.path.join(os.path.dirname(path), trail) if dsn else path),
        }
        key = None
        if key_file:
            try:
                key = _audit.read_key(self._sink["key_file"])
            except _audit.AuditError as exc:
                self._drop(exc)
        try:
            _audit_pg.check_name(trail)
            if dsn:
                self._log = _audit_pg.PgAuditLog(dsn, trail, key=key)
                self._sink.update(log=self._log.path, head=None)
            else:
                self._log = _audit.AuditLog(path, key=key, head=self._sink["head"])
        except _audit.AuditError as exc:  # a DSN with a password, no psycopg, a bad trail name: no record can be written
            self._log = None
            self._sink.update(dsn=None, broken=str(exc))  # the workers fail with the same error, and never see that DSN
            self._drop(exc)
        _audit.publish_sink(self._sink)

    def _set_context(self, update):
        """Lay ``update`` over the actors, patch and wave the records name, and tell the workers."""
        self._context = _audit.merge_context(self._context, update)
        if self._sink is not None:
            self._sink["context"] = self._context
            _audit.publish_sink(self._sink)

    # --- writing ------------------------------------------------------------------------------------------------

    def _drop(self, exc):
        """Count a record that could not be written, tell the workers, warn once per distinct error."""
        self._sink["dropped"] += 1
        self._sink["error"] = str(exc)
        _audit.publish_sink(self._sink)
        if str(exc) not in self._errors:
            self._errors.add(str(exc))
            self._display.warning(f"fleetpatch.rollout.audit: a record was not written, the audit trail is incomplete: {exc}")

    def _write(self, event, host=None, data=None):
        if self._log is None:
            if self._sink is not None:  # the sink could not be opened: every record is one lost
                self._sink["dropped"] += 1
                _audit.publish_sink(self._sink)
            return
        if self._sink["error"] and self._log.key is None and self._sink["key_file"]:
            self._sink["dropped"] += 1  # the key could not be read: never write unsigned records instead
            _audit.publish_sink(self._sink)
            return
        try:
            if not self._sink["dsn"]:
                directory = os.path.dirname(self._log.path)
                if not os.path.isdir(directory):
                    os.makedirs(directory, mode=0o750, exist_ok=True)
            self._last = self._log.append(_audit.make_record(event, self._run_id, self._context, host=host, data=data, secret=vaulted,
                                                             plaintexts=self._play_secrets))
        except (OSError, _audit.AuditError) as exc:
            self._drop(exc)

    # --- the run --------------------------------------------------------------------------------------------------

    @_counted
    def v2_playbook_on_start(self, playbook):
        # Written when the first play starts, which is when the extra variables (actors, patch) can be read.
        self._run_start = {
            "playbook": os.path.basename(getattr(playbook, "_file_name", "") or ""),
            "controller": {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid()},
        }

    def _start_run(self):
        if self._run_start is not None:
            data, self._run_start = self._run_start, None
            self._write("run_start", data=data)

    @_counted
    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        manager = play.get_variable_manager()
        extra = getattr(manager, "extra_vars", None) or {}
        self._set_context(_audit.context_from_vars(extra))
        self._play_obj = play
        self._play_secrets = self._vault_plaintexts()
        self._host_secrets = {}
        self._start_run()
        self._write("play_start", data={"play": self._play})

    @_counted
    def v2_playbook_on_stats(self, stats):
        self._start_run()
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._release_fleet_lock()
        self._write("run_end", data={"stats": summary, "records_dropped": self._sink["dropped"] if self._sink else 0})
        self._publish_head()
        if isinstance(self._log, _audit_pg.PgAuditLog):
            self._log.close()
        _audit.publish_sink(None)

    def _publish_head(self):
        """Publish the head this run left (its last record) to each witness; warn about those that cannot take it."""
        if self._last is None or not self._witness:
            return
        head = {"trail": self._sink["trail"], "seq": self._last["seq"], "hash": self._last["hash"], "run_id": self._run_id,
                "hmac": _audit_pg.head_hmac(self._last["seq"], self._last["hash"], self._log.key) if self._log.key is not None else None}
        for witness in self._witness:
            try:
                _audit_pg.publish_witness(witness, head)
            except _audit.AuditError as exc:
                self._display.warning(f"fleetpatch.rollout.audit: the head of this run (seq {head['seq']}) could not be published to a witness: {exc}")

    def _release_fleet_lock(self):
        """Free the fleet lock (fleetpatch.rollout.fleet_lock) when this run still holds it: a failed run ends too."""
        if self._log is None:
            return
        path = self._sink["lock"]
        try:
            released = _fleet_lock.release(path, self._run_id)
        except _fleet_lock.FleetLockError as exc:
            self._display.warning(f"fleetpatch.rollout.audit: the fleet lock of this run could not be released: {exc}")
            return
        if released:
            self._write("lock", data={"lock": "released", "path": path, "holder": released, "by": "the run's end"})

    # --- task results -----------------------------------------------------------------------------------------------

    def _task_result(self, result, status, **extra):
        task = result.task
        values = result.result
        if task.action in (EVENT_ACTION, "audit_event") or getattr(task, "resolved_action", None) == EVENT_ACTION:
            written = values.get("audit") if isinstance(values.get("audit"), dict) else {}
            self._set_context(written.get("context") or {})
        data = _audit.task_data(values, status, bool(task.no_log) or "censored" in values, self._include, secret=vaulted,
                                plaintexts=self._plaintexts(result.host))
        items = self._items.pop((result.host.get_name(), task._uuid), None)
        if items:  # counted from the item events, which say failed or skipped even when no_log hides the items
            data["loop"] = items
        data.update(task=task.get_name(), action=task.action, play=self._play, **extra)
        self._write("task", host=result.host.get_name(), data=data)

    def _vault_plaintexts(self, **where):
        """The plaintexts of the vaulted variables of the play (and host), to be kept out of the records."""
        if self._play_obj is None:
            return set()
        try:
            return vault_plaintexts(self._play_obj.get_variable_manager().get_vars(play=self._play_obj, include_hostvars=False, **where))
        except Exception as exc:  # pylint: disable=broad-exception-caught  # never let the audit break the run
            self._display.warning(f"fleetpatch.rollout.audit: cannot list the vaulted variables to keep out of the log: {exc}")
            return set()

    def _plaintexts(self, host):
        """The plaintexts of the vaulted variables of the play and of ``host``, read once per play and host."""
        name = host.get_name()
        if name not in self._host_secrets:
            self._host_secrets[name] = self._play_secrets | self._vault_plaintexts(host=host)
        return self._host_secrets[name]

    @_counted
    def v2_runner_on_ok(self, result):
        self._task_result(result, "changed" if result.result.get("changed") else "ok")

    @_counted
    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_result(result, "failed", ignore_errors=bool(ignore_errors))

    @_counted
    def v2_runner_on_unreachable(self, result):
        self._task_result(result, "unreachable")

    @_counted
    def v2_runner_on_skipped(self, result):
        self._task_result(result, "skipped")

    def _item(self, result, status):
        counts = self._items.setdefault((result.host.get_name(), result.task._uuid), {"items": 0})
        counts["items"] += 1
        if status == "ok" and result.result.get("changed"):
            status = "changed"
        if status != "ok":
            counts[status] = counts.get(status, 0) + 1

    @_counted
    def v2_runner_item_on_ok(self, result):
        self._item(result, "ok")

    @_counted
    def v2_runner_item_on_failed(self, result):
        self._item(result, "failed")

    @_counted
    def v2_runner_item_on_skipped(self, result):
        self._item(result, "skipped")
