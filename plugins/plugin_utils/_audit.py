# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail: an append-only, hash-chained JSON Lines log, its head file, and the verifier.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Standard library only: ``bin/fleetpatch-audit`` loads this file by its path, without Ansible.

One record is one line, the canonical JSON of a mapping (keys sorted, no spaces, UTF-8)::

    {"event":"task","hash":"<sha256>","prev":"<hash of the record before>","run_id":"...","seq":7,"ts":"...Z",...}

``hash`` is the sha256 of the canonical record without ``hash`` and ``hmac``; ``prev`` is the ``hash`` of the
record before it (64 zeros for the first), so editing, deleting or reordering a record breaks the chain where it
happened. With a key, ``hmac`` is HMAC-SHA256 over the same bytes, so a record cannot be forged or re-hashed
without the key. After each record the chain head (``seq`` and ``hash``, with its own HMAC) is written to a
second file, ``<log>.head`` by default, which is how a cut-off tail is found.

:class:`AuditLog` appends under an exclusive ``flock`` on the log: it reads only the last record (from the end
of the file), writes one line (or a group of lines, :meth:`AuditLog.append_many`, in one write), ``fsync``s it,
then replaces the head file atomically, all under the lock, so concurrent writers (two ``ansible-playbook`` runs,
the callback and the forked workers of one run) never interleave nor fork the chain. The first record of a group
says how many records the group holds (``batch``): a writer that stops between the group's write and the head's
leaves the head that many records behind, and the verifier accepts no more than that. :func:`verify` checks a log
and names the first bad record of each kind.

No silent repair: an unterminated last line after the record the head file names is a write a crash cut short,
and the next writer cuts it off and records what it cut (``torn_tail``). One at or before it (the head says that
record was committed) is damage: writers refuse to append until an operator runs ``fleetpatch-audit repair``
(:func:`repair`), which cuts it off and records who did it (``repair``). :func:`verify` lists both kinds of record.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import functools
import hashlib
import hmac
import json
import math
import os
import pwd
import socket
import time

__all__ = [
    "ACTOR_VARS", "AuditError", "AuditLog", "CONTEXT_VARS", "FORMAT", "GENESIS", "HeadError", "KINDS", "NO_LOG_TEXT", "REDACTED",
    "REDACT_KEYS", "REPAIR_EVENTS", "SINK_ENV", "add_problem", "append_to_sink", "canonical", "context_from_vars", "current_sink",
    "describe_os_error", "publish_sink", "format_report", "make_record", "merge_context", "read_key", "record_hash", "record_hmac",
    "redacted_key", "repair", "scrub", "task_data", "utc_now", "verify", "verify_lines",
]

GENESIS = "0" * 64
REDACTED = "<redacted>"
NO_LOG_TEXT = "result hidden: no_log"
# What verify() can report, in the order of the checks.
KINDS = ("unparseable", "edited", "forged", "deleted", "reordered", "truncated", "head", "witness")
_LOCK_TIMEOUT = 60.0
_TAIL_BLOCK = 8192
_VAULT_TYPES = frozenset({"AnsibleVaultEncryptedUnicode", "EncryptedString"})
_MESSAGE_LIMIT = 1000
_MIN_SECRET = 4
_COUNT_BLOCK = 1 << 20
# The records that say a log was cut: by a writer after a crash, and by an operator after damage.
REPAIR_EVENTS = ("torn_tail", "repair")
# Values under keys named like these are written as REDACTED (see redacted_key for what "named like" means).
REDACT_KEYS = ("password", "passwd", "token", "secret", "private_key", "api_key")


class AuditError(Exception):
    """The audit log cannot be written or read."""


class HeadError(AuditError):
    """The records were written to the log, but the head file could not be updated.

    ``records`` holds the records as written: none of them was lost.
    """

    def __init__(self, message, records):
        super().__init__(message)
        self.records = records


def describe_os_error(exc, path):
    """Why an operation on ``path`` failed, in words: a read-only filesystem is named as the cause."""
    if getattr(exc, "errno", None) == errno.EROFS:
        return f"{os.path.dirname(os.fspath(path)) or '.'} is on a read-only filesystem"
    return exc.strerror or str(exc)


def canonical(record):
    """The canonical bytes of a record: JSON with sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _body(record):
    return canonical({key: value for key, value in record.items() if key not in ("hash", "hmac")})


def record_hash(record):
    """sha256 (hex) of the record without its ``hash`` and ``hmac``."""
    return hashlib.sha256(_body(record)).hexdigest()


def record_hmac(record, key):
    """HMAC-SHA256 (hex) with ``key`` over the record without its ``hash`` and ``hmac``."""
    return hmac.new(key, _body(record), hashlib.sha256).hexdigest()


def _head_hmac(seq, digest, key):
    return hmac.new(key, canonical({"head": {"hash": digest, "seq": seq}}), hashlib.sha256).hexdigest()


def utc_now():
    """Now, in UTC, as ``2026-11-22T07:41:03.123456Z``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_key(path):
    """The HMAC key in the file at ``path`` (its bytes, without trailing white space); AuditError otherwise."""
    try:
        with open(path, "rb") as handle:
            key = handle.read().rstrip()
    except OSError as exc:
        raise AuditError(f"cannot read the audit HMAC key file {path}: {exc.strerror or exc}") from None
    if not key:
        raise AuditError(f"the audit HMAC key file {path} is empty")
    return key


def _fsync_dir(path):
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class AuditLog:
    """Appends records to one audit log and keeps its head file.

    ``key`` (bytes) adds an HMAC to every record and to the head file. ``head`` defaults to ``<path>.head``.
    """

    def __init__(self, path, key=None, head=None, lock_timeout=_LOCK_TIMEOUT):
        self.path = os.path.abspath(os.fspath(path))
        self.head = os.path.abspath(os.fspath(head)) if head else self.path + ".head"
        self.key = key
        self.lock_timeout = lock_timeout

    def append(self, record):
        """Add ``record`` (a mapping of JSON values) as the next line and return it as written.

        ``seq``, ``prev``, ``hash`` and ``hmac`` are filled in here; ``ts`` too when absent, under the lock. Returns once the
        line and the head file are on disk. Raises AuditError when the line cannot be written, HeadError (an AuditError)
        when it was written but the head file could not be updated.
        """
        return self.append_many([record])[0]

    def append_many(self, records):
        """Add ``records`` as the next lines, in order, with one lock, one write, one ``fsync`` and one head file update.

        Returns them as written, once they and the head file are on disk; the first of two or more says how many were
        written together (``batch``). Nothing is written when one of them is not JSON. Errors as for :meth:`append`.
        """
        records = [{key: value for key, value in record.items() if key not in ("seq", "prev", "hash", "hmac", "batch")} for record in records]
        try:
            for record in records:
                canonical(record)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"an audit record must hold JSON values only: {exc}") from None
        if not records:
            return []
        fd = self._open_locked()
        try:
            return self._append_locked(fd, records)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {describe_os_error(exc, self.path)}") from None
        finally:
            os.close(fd)  # releases the lock

    def _open_locked(self):
        """An fd of the log, opened for append, holding its exclusive lock; the log is created if missing."""
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                created = not os.path.exists(self.path)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            except OSError as exc:
                raise AuditError(f"cannot open the audit log {self.path}: {describe_os_error(exc, self.path)}") from None
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EACCES):
                            raise
                        if time.monotonic() > deadline:
                            raise AuditError(f"cannot lock the audit log {self.path}: another writer held it for {self.lock_timeout:g} s") from None
                        time.sleep(0.005)
                # The log may have been replaced between open and lock: lock the file that is at the path now.
                if os.path.exists(self.path) and os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    if created:
                        _fsync_dir(self.path)
                    return fd
            except OSError as exc:
                os.close(fd)
                raise AuditError(f"cannot lock the audit log {self.path}: {exc.strerror or exc}") from None
            except AuditError:
                os.close(fd)
                raise
            os.close(fd)

    def _append_locked(self, fd, records):
        last, torn = _tail(fd)
        seq, prev = self._chain_end(last)
        if torn:
            records = [self._cut_torn(fd, seq, torn, last is None)] + records
            return self._write_records(fd, seq, prev, records)[1:]
        return self._write_records(fd, seq, prev, records)

    def _cut_torn(self, fd, seq, torn, empty):
        """Cut off the unterminated last line when the head file shows it was never committed; the record of the cut.

        ``seq`` is the last complete record's. The head file is read here, under the log's lock, so no writer moves it.
        """
        cut = _torn_line(fd, torn)
        head_seq, problem, missing = self._head_state()
        if problem is None and head_seq <= seq:
            pass  # the crash case: a writer stopped inside the line after the last committed record
        elif missing and empty:
            # Conservative: a head file missing beside complete records is damage too, since every committed write
            # leaves one; only a log whose very first write was cut short (no complete line) never had a head file.
            pass
        else:
            if problem is None:
                why = (f"its head file {self.head} says seq {head_seq} was committed, and the last complete record is seq {seq}: "
                       "a committed record was damaged")
            elif missing:
                why = f"its head file {self.head} is missing, so whether that record had been committed cannot be told"
            else:
                why = f"its head file cannot be trusted to tell whether that record had been committed ({problem})"
            raise AuditError(f"the audit log {self.path} ends with a torn line {cut['line']} ({cut['bytes']} bytes without a newline) and "
                             f"{why}. Refusing to append: an operator can cut it off on record with `{self._repair_command()}`")
        os.ftruncate(fd, cut.pop("end"))
        return {"event": "torn_tail", "ts": utc_now(), "data": dict(cut, head_seq=head_seq)}

    def _head_state(self):
        """``(seq, problem, missing)`` of the head file: its seq (None when unreadable), what is wrong with it, whether it is missing."""
        if not os.path.exists(self.head):
            return None, f"head file {self.head} is missing", True
        seq, _digest, problem = _read_head(self.head, self.key)
        return seq, problem, False

    def _repair_command(self):
        command = f"fleetpatch-audit repair {self.path}"
        if self.head != self.path + ".head":
            command += f" --head {self.head}"
        return command + (" --key <the HMAC key file>" if self.key is not None else "")

    def _chain_end(self, last):
        """``(seq, hash)`` of the last record, ``(0, GENESIS)`` for an empty log."""
        if last is None:
            return 0, GENESIS
        record, reason = _parse(last)
        if record is None:
            raise AuditError(f"the last record of the audit log {self.path} is not a fleetpatch audit record ({reason}): "
                             f"refusing to chain onto it; run fleetpatch-audit verify")
        return record["seq"], record["hash"]

    def _write_records(self, fd, seq, prev, records):
        """Write ``records`` as seq + 1, seq + 2, ... after ``prev``, in one write, durably, then move the head file on."""
        written, lines = [], []
        for record in records:
            seq += 1
            record = dict(record, seq=seq, prev=prev)
            if len(records) > 1 and not written:
                record["batch"] = len(records)
            if "ts" not in record:
                record["ts"] = utc_now()  # when the caller did not say when it happened: taken under the lock
            body = _body(record)  # what record_hash and record_hmac cover, made once
            record["hash"] = prev = hashlib.sha256(body).hexdigest()
            if self.key is not None:
                record["hmac"] = hmac.new(self.key, body, hashlib.sha256).hexdigest()
            written.append(record)
            lines.append(canonical(record) + b"\n")
        _write_all(fd, b"".join(lines))
        os.fsync(fd)
        self._write_head(seq, prev, written)
        return written

    def _write_head(self, seq, digest, written):
        head = {"seq": seq, "hash": digest}
        if self.key is not None:
            head["hmac"] = _head_hmac(seq, digest, self.key)
        tmp = f"{self.head}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
            try:
                _write_all(fd, canonical(head) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.head)
            _fsync_dir(self.head)
        except OSError as exc:
            first = written[0]["seq"]
            records = f"record seq {seq} was" if first == seq else f"records seq {first} to {seq} were"
            raise HeadError(f"the head file {self.head} could not be updated: {describe_os_error(exc, self.head)} ({records} written to "
                            f"the audit log {self.path})", written) from None


def _torn_line(fd, torn):
    """What an unterminated last line of ``torn`` bytes is: its ``line`` number, ``bytes``, ``sha256`` and where it starts (``end``)."""
    end = os.fstat(fd).st_size - torn
    lines = 0
    for position in range(0, end, _COUNT_BLOCK):
        lines += os.pread(fd, min(_COUNT_BLOCK, end - position), position).count(b"\n")
    fragment = os.pread(fd, torn, end)
    return {"line": lines + 1, "bytes": torn, "sha256": hashlib.sha256(fragment).hexdigest(), "end": end}


def _os_user():
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def repair(path, key=None, head=None):
    """Cut the torn last line off the audit log at ``path`` and record what was cut; the ``repair`` record, or None.

    The operator's way out of a refusal to append (a torn line at or before the head's seq). Under the log's lock: the
    unterminated last line is cut off and a ``repair`` record appended, which holds its ``line``, ``bytes`` and
    ``sha256``, the seq the head file said (``head_seq``; ``head_problem`` when it could not be read), and who ran it
    (``user``, ``uid``, ``host``, and ``sudo_user`` when run through sudo); the head file moves on to it. Returns None,
    changing nothing, when the log ends with a complete line. Raises AuditError when the log is missing or cannot be
    written, its last complete line is not a record, or that record is signed and ``key`` is missing or does not
    sign it (the repair record would read as forged).
    """
    log = AuditLog(path, key=key, head=head)
    if not os.path.isfile(log.path):
        raise AuditError(f"cannot read the audit log {log.path}: No such file or directory")
    fd = log._open_locked()  # pylint: disable=protected-access  # the writer's own lock, taken the writer's way
    try:
        last, torn = _tail(fd)
        if not torn:
            return None
        seq, prev = log._chain_end(last)  # pylint: disable=protected-access
        record = json.loads(last) if last is not None else {}
        if "hmac" in record and (key is None or not hmac.compare_digest(str(record["hmac"]), record_hmac(record, key))):
            raise AuditError(f"the records of the audit log {log.path} are signed, and " + ("no HMAC key was given" if key is None else
                             "the key given does not sign its last record") + ": give the key that signs it, or the repair record would read as forged")
        cut = _torn_line(fd, torn)
        head_seq, problem, _missing = log._head_state()  # pylint: disable=protected-access
        data = {key: value for key, value in cut.items() if key != "end"}
        data.update(head_seq=head_seq, user=_os_user(), uid=os.getuid(), host=socket.gethostname())
        if problem is not None:
            data["head_problem"] = problem
        if os.environ.get("SUDO_USER"):
            data["sudo_user"] = os.environ["SUDO_USER"]
        os.ftruncate(fd, cut["end"])
        return log._write_records(fd, seq, prev, [{"event": "repair", "data": data}])[0]  # pylint: disable=protected-access
    except OSError as exc:
        raise AuditError(f"cannot repair the audit log {log.path}: {describe_os_error(exc, log.path)}") from None
    finally:
        os.close(fd)


def _tail(fd):
    """``(last complete line or None, length of an unterminated fragment after it)``, reading from the end."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, 0
    data = b""
    position = size
    while True:
        step = min(_TAIL_BLOCK, position)
        position -= step
        data = os.pread(fd, step, position) + data
        end = data.rfind(b"\n")
        torn = len(data) - end - 1 if end >= 0 else None
        if end >= 0:
            start = data.rfind(b"\n", 0, end)
            if start >= 0 or position == 0:
                return data[start + 1:end], torn
        if position == 0:
            return None, len(data)  # one unterminated fragment and nothing before it


def _short(value, limit=_MESSAGE_LIMIT):
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _hide(text, plaintexts):
    for plaintext in plaintexts:
        if plaintext in text and (len(plaintext) >= _MIN_SECRET or plaintext == text):
            text = text.replace(plaintext, REDACTED)
    return text


def _squash(name):
    return "".join(character for character in str(name).lower() if character.isalnum())


@functools.lru_cache(maxsize=64)
def _redact_names(keys):
    return tuple(sorted({name for name in map(_squash, keys) if name}))


@functools.lru_cache(maxsize=8192)
def _redacted(key, names):
    squashed = _squash(key)
    return any(name in squashed for name in names)


def redacted_key(key, keys=REDACT_KEYS):
    """Whether the value under ``key`` is redacted: whether ``key`` is named like one of ``keys``.

    "Named like": the key, lower-cased and with every character but letters and digits dropped, contains one of
    ``keys`` reduced the same way. So ``password`` covers ``db_password``, ``PASSWORD``, ``passwords`` and
    ``userPassword``, ``api_key`` covers ``X-Api-Key`` and ``apiKey``, ``private_key`` covers ``ssh_private_key_file``.
    It errs on the side of hiding: ``secret`` covers ``secretary`` too, ``token`` ``tokenizer``.
    """
    return _redacted(str(key), _redact_names(tuple(keys)))


def scrub(value, secret=None, plaintexts=(), redact=REDACT_KEYS):
    """A JSON-safe copy of ``value`` with every vaulted value replaced and no_log results censored.

    Vaulted values are recognised by type (``AnsibleVaultEncryptedUnicode``, ``EncryptedString``), by the
    ``__ansible_vault`` mapping they serialise to, and by ``secret(value)`` when given (the Ansible side passes
    a test that also knows ansible-core's vault tags, which survive templating); every occurrence of one of
    ``plaintexts`` (the vaulted values in play; those shorter than 4 characters only as a whole string) is
    replaced too; the value under a key named like one of ``redact`` (:func:`redacted_key`), in a mapping at any
    depth, is replaced whatever it is; a mapping that says
    ``_ansible_no_log`` becomes ``{"censored": ...}``; Ansible's internal ``_ansible_*`` keys are dropped; any
    other object becomes the name of its type, never its text.
    """
    return _scrub(value, secret, plaintexts, _redact_names(tuple(redact)))


def _scrub(value, secret, plaintexts, names):
    if type(value).__name__ in _VAULT_TYPES or (secret is not None and secret(value)):
        return REDACTED
    if isinstance(value, dict):
        if "__ansible_vault" in value:
            return REDACTED
        if value.get("_ansible_no_log"):
            return {"censored": NO_LOG_TEXT}
        return {_hide(str(key), plaintexts): REDACTED if names and _redacted(str(key), names) else _scrub(item, secret, plaintexts, names)
                for key, item in value.items() if not str(key).startswith("_ansible")}
    if isinstance(value, (list, tuple)):
        return [_scrub(item, secret, plaintexts, names) for item in value]
    if isinstance(value, str):
        return _hide(str(value), plaintexts)  # str() also turns a str subclass (tagged by Ansible) into a plain one
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return f"<{type(value).__name__}>"


def task_data(result, status, no_log, include, secret=None, plaintexts=(), redact=REDACT_KEYS):
    """What the audit log keeps of one task result: never anything of a no_log result but its status.

    ``result`` is the result mapping, ``include`` the result keys to keep (each scrubbed, strings cut to
    1000 characters; one named like one of ``redact`` is kept as REDACTED). A loop result is summarised by counts,
    never by its items, which may be secrets.
    """
    data = {"status": status, "changed": bool(result.get("changed", False))}
    items = result.get("results")
    if isinstance(items, list):
        counts = {"items": len(items)}
        for item in items:
            if isinstance(item, dict):
                for flag in ("changed", "failed", "skipped", "unreachable"):
                    if item.get(flag):
                        counts[flag] = counts.get(flag, 0) + 1
        data["loop"] = counts
    if no_log or result.get("_ansible_no_log"):
        data["no_log"] = True
        return data
    names = _redact_names(tuple(redact))
    for key in include:
        if key in result and key != "results":
            value = REDACTED if names and _redacted(str(key), names) else _scrub(result[key], secret, plaintexts, names)
            data[key] = _short(value) if isinstance(value, str) else value
    return data


ACTOR_VARS = {
    "approved_by": ("fleetpatch_approved_by",),
    "implemented_by": ("fleetpatch_implemented_by",),
    "verified_by": ("fleetpatch_verified_by",),
    "controller_user": ("awx_user_name", "tower_user_name"),
    "controller_job_id": ("awx_job_id", "tower_job_id"),
}
CONTEXT_VARS = {"patch_id": "fleetpatch_patch_id", "artifact_sha256": "fleetpatch_artifact_sha256", "wave": "fleetpatch_wave"}
FORMAT = 1


def _plain(value):
    """A variable's value fit for a record's context, or None (vaulted, unrendered template, or not a scalar)."""
    if type(value).__name__ in _VAULT_TYPES or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip() and "{{" not in value and "{%" not in value:
        return str(value).strip()
    return None


def context_from_vars(variables):
    """The actors, patch and wave that ``variables`` (extra or task vars, already templated) name.

    ``{"actors": {...}, "patch_id": ..., "artifact_sha256": ..., "wave": ...}`` with only the keys found: the
    fleetpatch_* variables, and the AWX / Automation Controller user and job id (``awx_*``, or ``tower_*``).
    """
    context = {"actors": {}}
    for actor, names in ACTOR_VARS.items():
        for name in names:
            value = _plain(variables.get(name))
            if value is not None:
                context["actors"][actor] = value
                break
    for field, name in CONTEXT_VARS.items():
        value = _plain(variables.get(name))
        if value is not None:
            context[field] = value
    return context


def merge_context(base, update):
    """``base`` with the fields and actors of ``update`` laid over it (a new mapping)."""
    merged = {**base, **{key: value for key, value in update.items() if key != "actors"}}
    merged["actors"] = {**base.get("actors", {}), **update.get("actors", {})}
    return merged


def make_record(event, run_id, context, host=None, data=None, secret=None, plaintexts=(), redact=REDACT_KEYS):
    """A record before it is chained: the fields every record has (None where unknown) and ``data`` (scrubbed)."""
    actors = context.get("actors", {})
    return {
        "v": FORMAT, "event": event, "run_id": run_id, "host": host,
        "actors": {actor: actors.get(actor) for actor in ACTOR_VARS},
        "patch_id": context.get("patch_id"), "artifact_sha256": context.get("artifact_sha256"), "wave": context.get("wave"),
        "data": scrub(data or {}, secret, plaintexts, redact),
    }


SINK_ENV = "FLEETPATCH_AUDIT_SINK"


def publish_sink(sink):
    """Tell the run's worker processes (forked later, so they inherit the environment) where the audit goes.

    ``sink`` is a mapping (``log``, ``head``, ``key_file``, ``run_id``, ``dropped``, ``error``, ``context``,
    ``redact_keys``), or None to withdraw it at the end of the run.
    """
    if sink is None:
        os.environ.pop(SINK_ENV, None)
    else:
        os.environ[SINK_ENV] = json.dumps(sink, sort_keys=True)


def current_sink():
    """The sink the audit callback of this run published, or None when it is not enabled."""
    text = os.environ.get(SINK_ENV)
    if not text:
        return None
    try:
        sink = json.loads(text)
    except ValueError:
        return None
    return sink if isinstance(sink, dict) and sink.get("log") and sink.get("run_id") else None


def append_to_sink(sink, record):
    """Append ``record`` to the log of ``sink`` (as :func:`current_sink` returns it), with its key; what was written.

    Raises :class:`AuditError` when the key cannot be read or the record cannot be written.
    """
    key = read_key(sink["key_file"]) if sink.get("key_file") else None
    return AuditLog(sink["log"], key=key, head=sink.get("head")).append(record)


def _read_head(path, key):
    """``(seq, hash, problem message or None)`` of a head file."""
    try:
        with open(path, "rb") as handle:
            head = json.loads(handle.read())
        seq, digest = head["seq"], head["hash"]
        if not isinstance(seq, int) or not isinstance(digest, str):
            raise TypeError("seq or hash of the wrong type")
    except OSError as exc:
        return None, None, f"head file {path} cannot be read: {exc.strerror or exc}"
    except (ValueError, TypeError, KeyError) as exc:
        return None, None, f"head file {path} is not a fleetpatch audit head: {exc}"
    if key is not None and not hmac.compare_digest(str(head.get("hmac", "")), _head_hmac(seq, digest, key)):
        return seq, digest, f"head file {path} has no valid HMAC: it was written without the key"
    return seq, digest, None


def _parse(line):
    """The record on a line, or the reason it is not one."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    for field, kind in (("seq", int), ("prev", str), ("hash", str)):
        if not isinstance(record.get(field), kind) or isinstance(record.get(field), bool):
            return None, f"no valid {field!r}"
    return record, None


def verify(path, key=None, head=None, witness=None):
    """Check the audit log at ``path``: chain, HMACs (with ``key``), the head file (with ``head``) and witnessed heads.

    Returns what :func:`verify_lines` returns. Raises AuditError when the log cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    torn = lines.pop()  # after the final newline: empty unless the last line is incomplete
    state = None
    if head is not None:
        if not os.path.exists(head):
            state = {"source": "head file", "problem": f"head file {head} is missing"}
        else:
            head_seq, head_hash, problem = _read_head(head, key)
            state = {"source": "head file", "seq": head_seq, "hash": head_hash, "problem": problem}
    return verify_lines(lines, torn=torn, key=key, head=state, path=os.fspath(path), witness=witness)


def verify_lines(lines, torn=b"", key=None, head=None, path="", witness=None):
    """Check a trail given as its lines (the canonical JSON of each record, in the order they were stored).

    One rule for every place a trail is kept: the JSONL file, and the rows of the PostgreSQL sink. ``torn`` is an
    incomplete last line (bytes after the final newline), ``head`` what the trail's head says, or None when it is
    not checked: a mapping with ``source`` (how to name it), ``seq`` and ``hash``, and ``problem`` when it could not
    be read or its HMAC is wrong. ``witness`` is a list of the heads a witness saw at the end of earlier runs (each
    with ``source``, ``seq``, ``hash``, ``hmac`` and ``run_id``), or None: the trail must reach each of them and hold
    the same record at its seq. With a key, a witnessed head without a valid HMAC is not taken (a note says so).

    Returns a mapping: ``ok``; ``path``; ``records``; ``last_seq`` and ``last_hash``; ``hmac_checked``;
    ``head_checked``; ``witness_checked`` (how many witnessed heads were compared, only with ``witness``); ``problems``,
    the first bad record of each kind found (``kind``, ``line`` (1-based), ``seq``, ``message``), ordered by line;
    ``notes``; and ``repairs``, every record that says the trail was cut (``event`` ``torn_tail`` or ``repair``,
    ``line``, ``seq``, ``ts``, ``data``), each also told in ``notes``. The kinds are ``unparseable``, ``edited`` (a
    record's content does not match its hash, or the chain breaks where a hash was recomputed), ``forged`` (no valid
    HMAC), ``deleted`` (a gap in the sequence), ``reordered``, ``truncated`` (the head is ahead of the trail),
    ``head`` (the head is missing, unreadable, unsigned, disagrees with the trail, or is further behind it than one
    write: a writer that stops between its two writes leaves it one record behind, or the records of one group, as
    the group's first record says in ``batch``) and ``witness`` (the trail ends before a witnessed head or differs
    from it at its seq: it was cut back or rewritten after a run published that head).
    """
    problems = {}
    notes = []
    repairs = []

    def report(kind, line, seq, message):
        if kind not in problems:
            problems[kind] = {"kind": kind, "line": line, "seq": seq, "message": message}

    parsed = []
    for number, line in enumerate(lines, start=1):
        record, reason = _parse(line)
        if record is None:
            report("unparseable", number, None, f"line {number} is not an audit record: {reason}")
        else:
            parsed.append((number, record))
    if torn:
        report("unparseable", len(lines) + 1, None, f"line {len(lines) + 1} is incomplete (no newline at the end of the log, {len(torn)} bytes)")

    later_seqs = {}
    for number, record in parsed:
        later_seqs[record["seq"]] = later_seqs.get(record["seq"], 0) + 1
    hashes = {}  # seq -> (hash, line) of the records seen so far
    batches = {}  # seq -> how many records were written together from it on
    top = 0
    previous_line = 0
    for number, record in parsed:
        seq = record["seq"]
        later_seqs[seq] -= 1
        garbled, previous_line = number - previous_line - 1, number  # unparseable lines just before this one
        if record_hash(record) != record["hash"]:
            report("edited", number, seq, f"line {number} (seq {seq}) was edited: its content does not match its hash")
        elif key is not None and not hmac.compare_digest(str(record.get("hmac", "")), record_hmac(record, key)):
            report("forged", number, seq, f"line {number} (seq {seq}) has no valid HMAC: it was written or re-hashed without the key")
        expected = top + 1
        if garbled and expected < seq <= expected + garbled:
            pass  # the records in between are the unparseable lines, already reported
        elif seq == expected:
            prev = hashes[top][0] if top else GENESIS
            if record["prev"] != prev:
                where = f"seq {top} on line {hashes[top][1]}" if top else "the start of the log"
                report("edited", number, seq, f"line {number} (seq {seq}) does not chain onto {where}: one of them was edited and its hash recomputed")
        elif seq < expected or later_seqs.get(expected):
            report("reordered", number, seq, f"line {number} holds seq {seq} where seq {expected} belongs")
        else:
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
            report("deleted", number, seq, f"{missing} deleted before line {number} (seq {seq})")
        hashes.setdefault(seq, (record["hash"], number))
        batch = record.get("batch")
        if isinstance(batch, int) and not isinstance(batch, bool) and batch > 1:
            batches.setdefault(seq, batch)
        if record.get("event") in REPAIR_EVENTS:
            repairs.append({"event": record["event"], "line": number, "seq": seq, "ts": record.get("ts"), "data": record.get("data")})
            notes.append(_repair_note(repairs[-1]))
        top = max(top, seq)

    if head is not None:
        source = head["source"]
        head_seq, head_hash = head.get("seq"), head.get("hash")
        if head.get("problem"):
            report("head", None, head_seq, head["problem"])
        elif head_seq > top:
            report("truncated", len(lines) + 1, top + 1, f"the log ends at seq {top} (line {len(lines)}) but the {source} says seq {head_seq}: "
                   f"{head_seq - top} record(s) cut off the end")
        elif head_seq and hashes.get(head_seq, (None,))[0] != head_hash:
            line = hashes.get(head_seq, (None, None))[1]
            report("head", line, head_seq, f"seq {head_seq} in the log differs from the {source}: the log was rewritten from there on")
        elif head_seq < top:
            behind, allowed = top - head_seq, batches.get(head_seq + 1, 1)
            if behind <= allowed:
                notes.append(f"the {source} is {behind} record(s) behind the log (a writer stopped between the two writes)")
            else:
                report("head", hashes.get(head_seq, (None, None))[1] if head_seq else None, head_seq,
                       f"the {source} says seq {head_seq} but the log goes on to seq {top}: {behind} records past it, more than the "
                       f"{allowed} a writer that stopped between its two writes can leave; an old head was put back, or records were "
                       "added without moving the head on")
    checked = _check_witness(witness, key, top, hashes, len(lines), report, notes) if witness is not None else 0
    if key is None:
        notes.append("HMACs not checked: no key given")
    last = hashes.get(top, (None,))[0] if top else None
    ordered = sorted(problems.values(), key=lambda item: (item["line"] is None, item["line"] or 0, KINDS.index(item["kind"])))
    return {
        "ok": not ordered, "path": path, "records": len(parsed), "last_seq": top, "last_hash": last,
        "hmac_checked": key is not None, "head_checked": head is not None, "problems": ordered, "notes": notes, "repairs": repairs,
        **({"witness_checked": checked} if witness is not None else {}),
    }


def _check_witness(witness, key, top, hashes, count, report, notes):
    """Compare the trail (last seq ``top``, ``hashes`` by seq) with each witnessed head; how many were compared."""
    taken = []
    for seen in witness:
        if key is not None and not hmac.compare_digest(str(seen.get("hmac") or ""), _head_hmac(seen["seq"], seen["hash"], key)):
            notes.append(f"a head seq {seen['seq']} in the {seen['source']} has no valid HMAC: not taken as witnessed")
        else:
            taken.append(seen)
    beyond = [seen for seen in taken if seen["seq"] > top]
    if beyond:
        seen = max(beyond, key=lambda item: item["seq"])
        report("witness", count + 1, top + 1, f"the log ends at seq {top} but the {seen['source']} saw seq {seen['seq']} at the end of run "
               f"{seen.get('run_id')}: the log was cut back by {seen['seq'] - top} record(s) after that")
    for seen in sorted(taken, key=lambda item: item["seq"]):
        if 0 < seen["seq"] <= top and hashes.get(seen["seq"], (None,))[0] != seen["hash"]:
            report("witness", hashes.get(seen["seq"], (None, None))[1], seen["seq"],
                   f"seq {seen['seq']} in the log differs from the head the {seen['source']} saw at the end of run {seen.get('run_id')}: "
                   "the log was rewritten from there on")
            break
    if not taken:
        notes.append("the witness holds no head of this trail: nothing to compare")
    return len(taken)


def add_problem(result, problem):
    """``result`` (of :func:`verify_lines`) with ``problem`` added when no problem of its kind comes before it."""
    problems = [item for item in result["problems"] if item["kind"] != problem["kind"] or (item["line"] or 0) <= (problem["line"] or 0)]
    if any(item["kind"] == problem["kind"] for item in problems):
        return result
    problems.append(problem)
    problems.sort(key=lambda item: (item["line"] is None, item["line"] or 0, KINDS.index(item["kind"])))
    return dict(result, ok=False, problems=problems)


def _repair_note(repaired):
    """A repair record in words, for the verifier's notes."""
    data = repaired["data"] if isinstance(repaired["data"], dict) else {}
    what = f"{data.get('bytes', '?')} bytes (sha256 {data.get('sha256', '?')})"
    if data.get("line") is not None:
        what += f" of torn line {data['line']}"
    head = f"; the head file said seq {data['head_seq']}" if data.get("head_seq") is not None else ""
    if repaired["event"] == "repair":
        who = data.get("user", "?") + (f" (sudo from {data['sudo_user']})" if data.get("sudo_user") else "") + f" on {data.get('host', '?')}"
        return f"line {repaired['line']} (seq {repaired['seq']}): repaired by {who} at {repaired['ts']}: cut {what}{head}"
    return f"line {repaired['line']} (seq {repaired['seq']}): a writer cut off {what} left by a write a crash cut short{head}"


def format_report(result):
    """The verifier's report as text: one line per problem, or one line saying the log is intact."""
    if result["ok"]:
        checks = ["hash chain", "HMACs" if result["hmac_checked"] else None, "head file" if result["head_checked"] else None,
                  f"{result['witness_checked']} witnessed head(s)" if result.get("witness_checked") else None]
        lines = [f"OK {result['path']}: {result['records']} records, last seq {result['last_seq']}; checked: {', '.join(c for c in checks if c)}"]
        if result.get("repairs"):
            lines[0] += f"; REPAIRED: {len(result['repairs'])} cut(s) on record, listed below"
    else:
        lines = [f"TAMPERED {result['path']}: {len(result['problems'])} kind(s) of damage"]
        for problem in result["problems"]:
            where = f"line {problem['line']}" if problem["line"] is not None else "head file"
            seq = f" seq {problem['seq']}" if problem["seq"] is not None else ""
            lines.append(f"{problem['kind']}: {where}{seq}: {problem['message']}")
    lines.extend(f"note: {note}" for note in result["notes"])
    return "\n".join(lines)
