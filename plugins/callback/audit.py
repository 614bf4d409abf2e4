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
    Records are written, flushed and C(fsync)ed under an exclusive lock on the log, so several runs can share one
    log; the chain head is also written to O(head_file), which is how a cut-off tail is found.
    C(fleetpatch-audit verify) (in the collection's C(bin) directory) and the
    P(fleetpatch.rollout.audit_verify#lookup) lookup check a log.
  - The records of task results are written in groups, one write and one C(fsync) for each (see O(flush_records)
    and O(flush_seconds)); a record's C(ts) is when its event happened. The records the rollout depends on are
    durable before it goes on, because M(fleetpatch.rollout.audit_event) and M(fleetpatch.rollout.fleet_lock)
    write their own records at once, and every record waiting here is written before such a task starts, so they
    follow everything before them in the log. What waits is also written when a play starts and when the run
    ends or is interrupted. A controller killed outright loses the records still waiting (at most
    O(flush_records), none older than O(flush_seconds) unless a long task ran since).
  - A log that ends with a torn line the head file says had been committed is damage, not a crash's leftover; the
    callback writes nothing more to it (each record counts as not written) until an operator runs
    C(fleetpatch-audit repair), which cuts the line off on record.
  - When the run ends, even in failure, it releases the fleet lock (M(fleetpatch.rollout.fleet_lock)) that the run
    still holds beside its log, and records the release.
  - Nothing of the result of a C(no_log) task is written but its status, not even when it fails, nor of any
    item of a loop. Other results are reduced to the keys in O(include); vaulted values in them are replaced, and
    so is every value under a key named like one of O(redact_keys), at any depth.
  - The actors, the patch and the wave come from the extra variables C(fleetpatch_approved_by),
    C(fleetpatch_implemented_by), C(fleetpatch_verified_by), C(fleetpatch_patch_id),
    C(fleetpatch_artifact_sha256) and C(fleetpatch_wave), from AWX's C(awx_user_name) and C(awx_job_id) (or
    C(tower_*)), and from the records M(fleetpatch.rollout.audit_event) writes during the run (an approval, a
    wave's start, a verification).
  - A callback cannot stop a run. When a record cannot be written the callback warns and counts it, and the next
    M(fleetpatch.rollout.audit_event) fails the play, so a rollout stops at its next gate. When the records were
    written but the head file could not be updated, it warns that the head file could not be updated; no record
    is counted as lost.
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
  redact_keys:
    description:
      - Values under keys named like these, in the results kept (O(include)) and in the data of
        M(fleetpatch.rollout.audit_event), at any depth, are written as V(<redacted>), whatever they are.
      - A key is named like one of these when, lower-cased and with every character other than a letter or a
        digit dropped, it contains it reduced the same way. So V(password) covers C(db_password), C(PASSWORD),
        C(passwords) and C(userPassword), V(api_key) covers C(X-Api-Key) and C(apiKey). It errs on the side of
        hiding (V(secret) covers C(secretary) too).
      - Setting it replaces the list; name the defaults too to keep them. An empty list redacts nothing by key
        (vaulted values and C(no_log) results are still kept out).
    type: list
    elements: str
    default: [password, passwd, token, secret, private_key, api_key]
    env:
      - name: FLEETPATCH_AUDIT_REDACT_KEYS
    ini:
      - section: callback_fleetpatch_audit
        key: redact_keys
  flush_records:
    description:
      - The most task-result records that wait to be written together. V(1) writes each at once.
    type: int
    default: 100
    env:
      - name: FLEETPATCH_AUDIT_FLUSH_RECORDS
    ini:
      - section: callback_fleetpatch_audit
        key: flush_records
  flush_seconds:
    description:
      - How long a record may wait to be written with others, in seconds; checked at each event of the run (a
        task result, a task's start), so a record may wait through one long task. V(0) writes each at once.
    type: float
    default: 2.0
    env:
      - name: FLEETPATCH_AUDIT_FLUSH_SECONDS
    ini:
      - section: callback_fleetpatch_audit
        key: flush_seconds
notes:
  - Each write costs one C(fsync) of the log, one of the head file and one of their directory (about 1 ms each
    on the idle 2-core controller this was measured on, several times that under load). Written in groups, the
    callback's cost on a 200-task play on 2 hosts was below the run-to-run noise of C(bench/audit_overhead.py)
    (medians of 7 runs, on/off 0.95 wall and 0.97 CPU), against 1.07 wall and 1.04 CPU when each record was
    written at once.
  - With O(dsn), each record is one committed transaction (about 5 ms on a local server here, most of it the
    server's C(fsync) of its write-ahead log).
  - With O(dsn), the fleet lock (M(fleetpatch.rollout.fleet_lock)) is the trail's row of the table
    C(fleetpatch_audit.fleet_lock) in that database, so it keeps apart the jobs of separate controllers and AWX execution
    nodes too; C(fleetpatch-audit init-db) creates it.
seealso:
  - module: fleetpatch.rollout.audit_event
  - plugin: fleetpatch.rollout.audit_verify
    plugin_type: lookup
"""

import atexit
import functools
import getpass
import os
import socket
import time
import uuid

from ansible.plugins.callback import CallbackBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg, _fleet_lock
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._secrets import vault_plaintexts, vaulted

EVENT_ACTION = "fleetpatch.rollout.audit_event"
# The actions that append to the trail themselves (in the worker): the records waiting here are written before they start.
WRITERS = frozenset({EVENT_ACTION, "audit_event", "fleetpatch.rollout.fleet_lock", "fleet_lock"})


def _counted(method):
    """Run a callback method; an unexpected error loses its record, so count it as one not written."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # Ansible would only warn and lose the record
            if self._sink is None:
                raise
            self._drop(exc, 1)
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
        self._pending = []  # records waiting to be written, in the order of their events
        self._pending_since = 0.0
        self._pid = os.getpid()
        atexit.register(self._flush_at_exit)

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        path = os.path.abspath(os.path.expanduser(self.get_option("log")))
        head = self.get_option("head_file")
        key_file = self.get_option("hmac_key_file")
        self._include = tuple(self.get_option("include") or ())
        self._redact = tuple(str(name).strip() for name in self.get_option("redact_keys") or () if str(name).strip())
        self._flush_records = max(1, self.get_option("flush_records"))
        self._flush_seconds = max(0.0, self.get_option("flush_seconds"))
        dsn, trail = self.get_option("dsn"), self.get_option("trail")
        self._witness = [item for item in self.get_option("witness") or () if item]
        self._sink = {
            "log": path, "head": os.path.abspath(os.path.expanduser(head)) if head else path + ".head",
            "key_file": os.path.abspath(os.path.expanduser(key_file)) if key_file else None,
            "run_id": self._run_id, "dropped": 0, "error": None, "context": self._context, "redact_keys": list(self._redact),
            "dsn": dsn or None, "trail": trail, "lock": None if dsn else _fleet_lock.lock_path(path),  # with a DSN, the trail's row
        }
        key = None
        if key_file:
            try:
                key = _audit.read_key(self._sink["key_file"])
            except _audit.AuditError as exc:
                self._drop(exc, 1)
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
            self._drop(exc, 1)
        _audit.publish_sink(self._sink)

    def _set_context(self, update):
        """Lay ``update`` over the actors, patch and wave the records name, and tell the workers."""
        self._context = _audit.merge_context(self._context, update)
        if self._sink is not None:
            self._sink["context"] = self._context
            _audit.publish_sink(self._sink)

    # --- writing ------------------------------------------------------------------------------------------------

    def _drop(self, exc, count):
        """Count records that could not be written, tell the workers, warn once per distinct error."""
        self._sink["dropped"] += count
        self._sink["error"] = str(exc)
        _audit.publish_sink(self._sink)
        self._warn(f"fleetpatch.rollout.audit: {count} record(s) not written, the audit trail is incomplete: {exc}", str(exc))

    def _warn(self, message, error):
        if error not in self._errors:
            self._errors.add(error)
            self._display.warning(message)

    def _write(self, event, host=None, data=None):
        """Make the record of an event now (its time, its context) and queue it; write the queue when it is due."""
        if self._log is None:
            if self._sink is not None:  # the sink could not be opened: every record is one lost
                self._sink["dropped"] += 1
                _audit.publish_sink(self._sink)
            return
        if self._sink["error"] and self._log.key is None and self._sink["key_file"]:
            self._sink["dropped"] += 1  # the key could not be read: never write unsigned records instead
            _audit.publish_sink(self._sink)
            return
        record = _audit.make_record(event, self._run_id, self._context, host=host, data=data, secret=vaulted, plaintexts=self._play_secrets,
                                    redact=self._redact)
        record["ts"] = _audit.utc_now()
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(record)
        self._flush_if_due()

    def _flush_if_due(self):
        if self._pending and (len(self._pending) >= self._flush_records or time.monotonic() - self._pending_since >= self._flush_seconds):
            self._flush()

    def _flush(self):
        """Write the records waiting, as one group; count them as not written when that fails."""
        if not self._pending or self._log is None:
            return
        records, self._pending = self._pending, []
        try:
            if not self._sink["dsn"]:
                directory = os.path.dirname(self._log.path)
                if not os.path.isdir(directory):
                    try:
                        os.makedirs(directory, mode=0o750, exist_ok=True)
                    except OSError as exc:
                        raise _audit.AuditError(f"cannot create the directory of the audit log {directory}: "
                                                f"{_audit.describe_os_error(exc, directory)}") from None
            written = self._log.append_many(records)
            if written:
                self._last = written[-1]
        except _audit.HeadError as exc:
            self._warn(f"fleetpatch.rollout.audit: {exc}. No record was lost; until a later write updates the head file, verify "
                       "reports it behind the log", f"head file {self._log.head}")  # once a run, not once a write
        except (OSError, _audit.AuditError) as exc:
            self._drop(exc, len(records))

    def _flush_at_exit(self):
        """A run that ends without its end (interrupted) still writes what it queued; never in a forked worker."""
        if os.getpid() == self._pid and self._pending:
            self._flush()

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
        self._flush()

    @_counted
    def v2_playbook_on_task_start(self, task, is_conditional):
        del is_conditional
        self._task_start(task)

    @_counted
    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task)

    def _task_start(self, task):
        """Before a task that writes to the trail itself starts (its worker is forked after this), write what waits."""
        if task.action in WRITERS or getattr(task, "_resolved_action", None) in WRITERS:
            self._flush()
        else:
            self._flush_if_due()

    @_counted
    def v2_playbook_on_stats(self, stats):
        self._start_run()
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._release_fleet_lock()
        dropped = self._sink["dropped"] if self._sink else 0
        self._write("run_end", data={"stats": summary, "records_dropped": dropped})
        self._flush()
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
        """Let this run leave the fleet lock (fleetpatch.rollout.fleet_lock) when it still holds it: a failed run ends too."""
        if self._log is None:
            return
        try:
            store = _fleet_lock.store_for(self._sink)
            released = _fleet_lock.release(store, self._run_id)
        except _fleet_lock.FleetLockError as exc:
            self._display.warning(f"fleetpatch.rollout.audit: the fleet lock of this run could not be released: {exc}")
            return
        if released:
            self._write("lock", data={"lock": "released", "path": store.where, "holder": released, "by": "the run's end"})

    # --- task results -----------------------------------------------------------------------------------------------

    def _task_result(self, result, status, **extra):
        task = result.task
        values = result.result
        if task.action in (EVENT_ACTION, "audit_event") or getattr(task, "resolved_action", None) == EVENT_ACTION:
            written = values.get("audit") if isinstance(values.get("audit"), dict) else {}
            self._set_context(written.get("context") or {})
        data = _audit.task_data(values, status, bool(task.no_log) or "censored" in values, self._include, secret=vaulted,
                                plaintexts=self._plaintexts(result.host), redact=self._redact)
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
