# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail in PostgreSQL (psycopg 3), its witness table, and the witnesses a run publishes its head to.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

``bin/fleetpatch-audit`` loads this file by its path, without Ansible: it then loads ``_audit.py`` and
``_audit_witness.py`` from beside it. psycopg is imported only when installed; without it, everything that needs a
database raises :class:`AuditError` naming the package.

Schema ``fleetpatch_audit`` (created by :func:`init_sql`, which ``fleetpatch-audit init-db`` runs or prints):

- ``trail_<name>``, one append-only table per trail: ``seq`` (primary key), ``prev``, ``hash``, ``hmac`` and
  ``line``, the record's canonical JSON exactly as the file holds it, so :func:`_audit.verify_lines` checks the rows
  with the one rule it applies to the file. An insert trigger accepts a row only when it continues the chain at the
  trail's head (seq + 1, prev = the head's hash) and its columns agree with its line, and moves the head on; other
  triggers refuse UPDATE, DELETE and TRUNCATE, whoever asks.
- ``heads``, one row per trail (seq and hash of its last record). Only that insert trigger moves it, one record
  forward at a time (a trigger refuses any other update); writers lock it through ``lock_head(trail)``, a
  SECURITY DEFINER function, so they need no UPDATE right on it and can never move it back.
- ``witness``, insert-only too: the heads that runs published (trail, seq, hash, HMAC, run id).
- ``fleet_lock``, one row per trail (made with its head row): the trail's fleet lock (``share``, ``holders`` and
  ``ended``, see ``_fleet_lock.py``). A run changes it in one transaction under the row's lock
  (:func:`fleet_lock_update`), so the jobs of one trail on separate controllers are kept apart.

A writer role gets USAGE on the schema, SELECT and INSERT on the trail and witness tables, SELECT on ``heads`` and
EXECUTE on ``lock_head``, and SELECT and UPDATE of the lock's state columns on ``fleet_lock`` (no INSERT, DELETE or
TRUNCATE: taking and releasing the lock rewrites its row, and ``SELECT ... FOR UPDATE`` needs that UPDATE right
anyway; every change of the lock is recorded in the trail); a reader role gets SELECT only. An append is one transaction: lock the head row, chain
the records onto it, insert them, commit. Concurrent writers wait for the lock, so the chain stays linear.

Passwords never go into a DSN here: a DSN with a ``password`` field is refused (the DSN is shown in messages,
records and the environment of the run's workers); libpq reads the password from ``PGPASSWORD`` or a pgpass file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.types.json import Jsonb
except ImportError:  # an optional dependency: only the PostgreSQL sink needs it
    psycopg = None
    conninfo_to_dict = None
    Jsonb = None

if __package__:
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_witness
else:  # loaded by its path (bin/fleetpatch-audit): the modules beside this file, loaded the same way, once
    def _sibling(name):
        module_name = f"fleetpatch_rollout{name}"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"))
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    _audit = _sibling("_audit")
    _audit_witness = _sibling("_audit_witness")

AuditError = _audit.AuditError

__all__ = [
    "DEFAULT_READER", "DEFAULT_TRAIL", "DEFAULT_WRITER", "PgAuditLog", "SCHEMA", "append_to_sink", "check_dsn", "check_name", "describe",
    "export", "fleet_lock_update", "head_hmac", "init_db", "init_sql", "is_dsn", "open_log", "publish_witness", "read_trail", "read_witness", "verify_trail",
]

SCHEMA = "fleetpatch_audit"
DEFAULT_TRAIL = "main"
DEFAULT_WRITER = "fleetpatch_audit_writer"
DEFAULT_READER = "fleetpatch_audit_reader"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_ROLE = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")
_LOCK_TIMEOUT = 60
_CONNECT_TIMEOUT = 10
PACKAGE_MISSING = ("the PostgreSQL audit sink needs the Python package psycopg (psycopg 3) on the controller, and it is not installed "
                   "in {python}: pip install psycopg")


def _need_psycopg():
    if psycopg is None:
        raise AuditError(PACKAGE_MISSING.format(python=sys.executable))


def is_dsn(text):
    """Whether ``text`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URI) rather than a file."""
    return isinstance(text, str) and text.startswith(("postgresql://", "postgres://"))


def check_name(name, what="trail"):
    """``name`` when it is a valid trail name (a to z, digits, underscores; 41 characters at most); AuditError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AuditError(f"the audit {what} name {name!r} is not valid: use lower-case letters, digits and underscores (41 at most), "
                         "starting with a letter or an underscore")
    return name


def _check_role(role):
    if not isinstance(role, str) or not _ROLE.match(role):
        raise AuditError(f"the role name {role!r} is not valid: use lower-case letters, digits, underscores and $, starting with a letter")
    return role


def check_dsn(dsn, field="dsn"):
    """The libpq parameters of ``dsn``; AuditError when psycopg is missing, it cannot be parsed, or it holds a password.

    A password in the DSN is refused rather than hidden: the DSN is named in messages and records and travels to the
    run's workers in their environment, and a refusal cannot miss a place the way a redaction can.
    """
    _need_psycopg()
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        # libpq's message quotes the text around the error, which may be a password: name the field only.
        raise AuditError(f"the PostgreSQL audit DSN ({field}) is not a valid libpq connection string or postgresql:// URI") from None
    if params.get("password"):
        raise AuditError(f"the PostgreSQL audit DSN ({field}) holds a password (its 'password' field): give the password in PGPASSWORD or "
                         "a pgpass file instead, so that it never reaches a record, a message or the environment of the run's workers")
    return params


def describe(dsn, trail=None):
    """What messages name a trail or database by: ``postgresql://user@host:port/db`` (and `` trail NAME``), no password."""
    params = check_dsn(dsn)
    user = params.get("user") or os.environ.get("PGUSER") or ""
    host = params.get("host") or os.environ.get("PGHOST") or ""
    port = params.get("port") or os.environ.get("PGPORT") or ""
    where = f"postgresql://{user + '@' if user else ''}{host}{':' + port if port else ''}/{params.get('dbname') or os.environ.get('PGDATABASE') or ''}"
    return f"{where} trail {trail}" if trail else where


def _connect(dsn, what):
    check_dsn(dsn)
    try:
        connection = psycopg.connect(dsn, connect_timeout=_CONNECT_TIMEOUT, application_name="fleetpatch-audit")
    except psycopg.Error as exc:
        raise AuditError(f"cannot connect to the audit database {what}: {_message(exc)}") from None
    return connection


def _message(exc):
    """The first line of a database error (libpq's messages never hold the password, which is not in the DSN anyway)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _table(trail):
    return f"{SCHEMA}.trail_{check_name(trail)}"


# --- the schema -------------------------------------------------------------------------------------------------

_FUNCTIONS = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.heads (
    trail text PRIMARY KEY,
    seq bigint NOT NULL CHECK (seq >= 0),
    hash text NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.witness (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trail text NOT NULL,
    seq bigint NOT NULL,
    hash text NOT NULL,
    hmac text,
    run_id text,
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS witness_trail ON {SCHEMA}.witness (trail, seq);
CREATE TABLE IF NOT EXISTS {SCHEMA}.fleet_lock (
    trail text PRIMARY KEY,
    share text CHECK (share <> ''),
    holders jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(holders) = 'array'),
    ended jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(ended) = 'array'),
    changed_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((share IS NULL AND jsonb_array_length(holders) <= 1) OR (share IS NOT NULL AND jsonb_array_length(holders) >= 1))
);

CREATE OR REPLACE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'fleetpatch audit: % on %.% is refused: the audit trail is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE OR REPLACE FUNCTION {SCHEMA}.head_moves_on() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.trail <> OLD.trail OR NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'fleetpatch audit: the head of trail % moves one record forward at a time (seq % to %), and only by an insert',
            OLD.trail, OLD.seq, NEW.seq USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION {SCHEMA}.lock_head(p_trail text, OUT seq bigint, OUT hash text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT h.seq, h.hash FROM {SCHEMA}.heads h WHERE h.trail = p_trail FOR UPDATE
$fn$;

CREATE OR REPLACE FUNCTION {SCHEMA}.advance_head() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    head_seq bigint;
    head_hash text;
    body jsonb;
BEGIN
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM {SCHEMA}.heads h WHERE h.trail = TG_ARGV[0] FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fleetpatch audit: trail % has no head row: run fleetpatch-audit init-db', TG_ARGV[0];
    END IF;
    IF NEW.seq <> head_seq + 1 OR NEW.prev <> head_hash THEN
        RAISE EXCEPTION 'fleetpatch audit: seq % does not continue trail % at its head (seq %)', NEW.seq, TG_ARGV[0], head_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    body := NEW.line::jsonb;
    IF jsonb_typeof(body) <> 'object' OR body->'seq' <> to_jsonb(NEW.seq) OR body->>'prev' IS DISTINCT FROM NEW.prev
            OR body->>'hash' IS DISTINCT FROM NEW.hash OR body->>'hmac' IS DISTINCT FROM NEW.hmac THEN
        RAISE EXCEPTION 'fleetpatch audit: the columns of seq % of trail % differ from its line', NEW.seq, TG_ARGV[0]
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE {SCHEMA}.heads SET seq = NEW.seq, hash = NEW.hash WHERE trail = TG_ARGV[0];
    RETURN NEW;
END
$fn$;

REVOKE ALL ON FUNCTION {SCHEMA}.lock_head(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION {SCHEMA}.advance_head() FROM PUBLIC;
REVOKE ALL ON {SCHEMA}.heads, {SCHEMA}.witness, {SCHEMA}.fleet_lock FROM PUBLIC;
DROP TRIGGER IF EXISTS head_moves_on ON {SCHEMA}.heads;
CREATE TRIGGER head_moves_on BEFORE UPDATE ON {SCHEMA}.heads FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.head_moves_on();
"""


def _role(role):
    return f"""DO $do$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN CREATE ROLE "{role}" NOLOGIN; END IF;
END $do$;
"""


def _refusals(table):
    name = table.split(".")[1]
    return f"""DROP TRIGGER IF EXISTS {name}_no_change ON {table};
CREATE TRIGGER {name}_no_change BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change();
DROP TRIGGER IF EXISTS {name}_no_truncate ON {table};
CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
"""


def _trail_sql(trail):
    table = _table(trail)
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    prev text NOT NULL,
    hash text NOT NULL,
    hmac text,
    line text NOT NULL
);
REVOKE ALL ON {table} FROM PUBLIC;
INSERT INTO {SCHEMA}.heads (trail, seq, hash) VALUES ('{trail}', 0, '{_audit.GENESIS}') ON CONFLICT (trail) DO NOTHING;
DROP TRIGGER IF EXISTS trail_{trail}_chain ON {table};
CREATE TRIGGER trail_{trail}_chain BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.advance_head('{trail}');
{_refusals(table)}"""


def init_sql(trails=(DEFAULT_TRAIL,), writer=DEFAULT_WRITER, reader=DEFAULT_READER):
    """The SQL that creates the schema, the tables of ``trails``, their triggers, and the writer and reader roles.

    Idempotent: run it again to add a trail or re-grant. A role that does not exist yet is created without LOGIN
    (grant it to the login roles of the controllers, ``GRANT fleetpatch_audit_writer TO awx``); an existing one is
    only granted its rights. Run it as the database's owner or a superuser, in one transaction.
    """
    trails = [check_name(trail) for trail in trails] or [DEFAULT_TRAIL]
    writer, reader = _check_role(writer), _check_role(reader)
    parts = ["-- fleetpatch.rollout audit trail: schema, append-only tables and roles (fleetpatch-audit init-db --sql)", _FUNCTIONS,
             _refusals(f"{SCHEMA}.witness")]
    # heads: updated by the insert trigger only (head_moves_on checks each update), never deleted nor truncated
    parts.append(f"""DROP TRIGGER IF EXISTS heads_no_delete ON {SCHEMA}.heads;
CREATE TRIGGER heads_no_delete BEFORE DELETE ON {SCHEMA}.heads FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change();
DROP TRIGGER IF EXISTS heads_no_truncate ON {SCHEMA}.heads;
CREATE TRIGGER heads_no_truncate BEFORE TRUNCATE ON {SCHEMA}.heads FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
""")
    parts.extend(_trail_sql(trail) for trail in trails)
    # the fleet lock of every trail, those made before the lock's table existed included
    parts.append(f"INSERT INTO {SCHEMA}.fleet_lock (trail) SELECT trail FROM {SCHEMA}.heads ON CONFLICT (trail) DO NOTHING;\n")
    parts.extend(_role(role) for role in dict.fromkeys((writer, reader)))
    tables = ", ".join(_table(trail) for trail in trails)
    parts.append(f"""GRANT USAGE ON SCHEMA {SCHEMA} TO "{writer}", "{reader}";
GRANT SELECT, INSERT ON {tables}, {SCHEMA}.witness TO "{writer}";
GRANT SELECT ON {SCHEMA}.heads TO "{writer}";
GRANT EXECUTE ON FUNCTION {SCHEMA}.lock_head(text) TO "{writer}";
GRANT SELECT, UPDATE (share, holders, ended, changed_at) ON {SCHEMA}.fleet_lock TO "{writer}";
GRANT SELECT ON {tables}, {SCHEMA}.heads, {SCHEMA}.witness, {SCHEMA}.fleet_lock TO "{reader}";
""")
    return "\n".join(parts)


def init_db(dsn, trails=(DEFAULT_TRAIL,), writer=DEFAULT_WRITER, reader=DEFAULT_READER):
    """Run :func:`init_sql` on the database of ``dsn`` in one transaction; what it did, as text."""
    statements = init_sql(trails, writer, reader)
    what = describe(dsn)
    with _connect(dsn, what) as connection:
        try:
            encoding = connection.execute("SHOW server_encoding").fetchone()[0]
            if encoding.upper() not in ("UTF8", "UTF-8"):
                raise AuditError(f"the audit database {what} has the encoding {encoding}: the trail's lines are UTF-8, create it with ENCODING 'UTF8'")
            connection.execute(statements)
            connection.commit()
        except psycopg.Error as exc:
            raise AuditError(f"cannot create the audit schema in {what}: {_message(exc)}") from None
    return f"audit schema {SCHEMA} ready in {what}: trail(s) {', '.join(trails)}; writer role {writer}, reader role {reader}"


# --- writing ----------------------------------------------------------------------------------------------------


class PgAuditLog:
    """Appends records to one trail of the PostgreSQL sink, as :class:`_audit.AuditLog` does to a file.

    One connection per process: a worker forked from the process that opened it opens its own (the parent's is
    never used, nor closed, from a child, which would end the parent's session).
    """

    def __init__(self, dsn, trail=DEFAULT_TRAIL, key=None, lock_timeout=_LOCK_TIMEOUT):
        self.trail = check_name(trail)
        self.path = describe(dsn, self.trail)  # what messages name: the DSN's place, without any secret
        self.dsn = dsn
        self.key = key
        self.lock_timeout = lock_timeout
        self._connection = None
        self._pid = None

    def _connected(self):
        if self._connection is None or self._pid != os.getpid() or self._connection.closed or self._connection.broken:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
            connection = _connect(self.dsn, self.path)
            try:
                connection.execute(f"SET lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
                connection.commit()
            except psycopg.Error as exc:
                connection.close()
                raise AuditError(f"cannot write to the audit trail {self.path}: {_message(exc)}") from None
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def close(self):
        """Close this process's connection (a child's copy of the parent's is left alone)."""
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def append(self, record):
        """Add ``record`` as the trail's next record and return it as written (committed)."""
        return self.append_many([record])[0]

    def append_many(self, records):
        """Add ``records`` in order, in ONE transaction under the head row's lock; return them as written (committed).

        Raises AuditError when they cannot be written; then none of them is.
        """
        prepared = []
        for record in records:
            record = {key: value for key, value in record.items() if key not in ("seq", "prev", "hash", "hmac")}
            try:
                _audit.canonical(record)
            except (TypeError, ValueError) as exc:
                raise AuditError(f"an audit record must hold JSON values only: {exc}") from None
            prepared.append(record)
        connection = self._connected()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT seq, hash FROM {SCHEMA}.lock_head(%s)", (self.trail,))
                seq, prev = cursor.fetchone()
                if seq is None:
                    raise AuditError(f"the audit trail {self.path} does not exist: run fleetpatch-audit init-db with --trail {self.trail}")
                written, rows = [], []
                for record in prepared:
                    record = dict(record, seq=seq + 1, prev=prev)
                    record.setdefault("ts", _audit.utc_now())  # taken under the lock: timestamps rise with seq
                    record["hash"] = _audit.record_hash(record)
                    if self.key is not None:
                        record["hmac"] = _audit.record_hmac(record, self.key)
                    rows.append((record["seq"], prev, record["hash"], record.get("hmac"), _audit.canonical(record).decode("utf-8")))
                    written.append(record)
                    seq, prev = record["seq"], record["hash"]
                cursor.executemany(f"INSERT INTO {_table(self.trail)} (seq, prev, hash, hmac, line) VALUES (%s, %s, %s, %s, %s)", rows)
            connection.commit()
        except psycopg.Error as exc:
            self._abandon()
            raise AuditError(f"cannot write to the audit trail {self.path}: {_message(exc)}") from None
        except AuditError:
            self._abandon()
            raise
        return written

    def _abandon(self):
        try:
            self._connection.rollback()
        except psycopg.Error:
            self.close()


def open_log(sink):
    """The writer of a published sink (see :func:`_audit.publish_sink`): a trail in PostgreSQL, or the file log.

    A sink the callback could not open (``broken``: why) raises that error: its records go nowhere else.
    """
    if sink.get("broken"):
        raise AuditError(sink["broken"])
    key = _audit.read_key(sink["key_file"]) if sink.get("key_file") else None
    if sink.get("dsn"):
        return PgAuditLog(sink["dsn"], sink.get("trail") or DEFAULT_TRAIL, key=key)
    return _audit.AuditLog(sink["log"], key=key, head=sink.get("head"))


def append_to_sink(sink, record):
    """Append ``record`` to the sink of this run through a writer of this process's own; the record as written."""
    log = open_log(sink)
    try:
        return log.append(record)
    finally:
        if isinstance(log, PgAuditLog):
            log.close()


# --- the fleet lock ---------------------------------------------------------------------------------------------


def fleet_lock_update(dsn, trail, change, missing_ok=False, lock_timeout=30):
    """Change the fleet lock of ``trail`` in ONE transaction under its row's lock; what ``change`` returned as its result.

    ``change(row)`` gets the row as ``{"share", "holders", "ended"}`` and returns ``(new row or None, result)``; a new
    row is written and committed, None changes nothing. An exception from ``change`` rolls back and is raised as it is.
    A schema made before the lock's table existed, or without the trail's row, raises AuditError naming init-db; with
    ``missing_ok`` (releasing), ``change(None)`` is called instead, since no run can hold such a lock.
    """
    what = describe(dsn, check_name(trail))
    with _connect(dsn, what) as connection:
        try:
            with connection.transaction():
                connection.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
                try:
                    with connection.transaction():  # a savepoint: a missing table leaves the transaction usable
                        row = connection.execute(f"SELECT share, holders, ended FROM {SCHEMA}.fleet_lock WHERE trail = %s FOR UPDATE",
                                                 (trail,)).fetchone()
                except psycopg.errors.UndefinedTable:
                    row = None
                if row is None:
                    if missing_ok:
                        return change(None)[1]
                    raise AuditError(f"the audit database has no fleet lock for trail {trail}: run fleetpatch-audit init-db --trail {trail} as "
                                     "the database's owner, which adds it (and the table, to a schema made before it existed)")
                new, result = change({"share": row[0], "holders": row[1], "ended": row[2]})
                if new is not None:
                    connection.execute(f"UPDATE {SCHEMA}.fleet_lock SET share = %s, holders = %s, ended = %s, changed_at = now() WHERE trail = %s",
                                       (new["share"], Jsonb(new["holders"]), Jsonb(new["ended"]), trail))
        except psycopg.errors.LockNotAvailable:
            raise AuditError(f"its row stayed locked by another run for {lock_timeout} s") from None
        except psycopg.Error as exc:
            raise AuditError(f"cannot change it in {what}: {_message(exc)}") from None
    return result


# --- reading ----------------------------------------------------------------------------------------------------


def _read_only(connection):
    connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    connection.read_only = True


def read_trail(dsn, trail=DEFAULT_TRAIL):
    """``(rows, head)`` of a trail, read in one snapshot: rows ``(seq, prev, hash, hmac, line)`` by seq; head ``(seq, hash)`` or None."""
    what = describe(dsn, check_name(trail))
    with _connect(dsn, what) as connection:
        _read_only(connection)
        try:
            rows = connection.execute(f"SELECT seq, prev, hash, hmac, line FROM {_table(trail)} ORDER BY seq").fetchall()
            head = connection.execute(f"SELECT seq, hash FROM {SCHEMA}.heads WHERE trail = %s", (trail,)).fetchone()
        except psycopg.errors.UndefinedTable:
            raise AuditError(f"the audit trail {what} does not exist: run fleetpatch-audit init-db with --trail {trail}") from None
        except psycopg.Error as exc:
            raise AuditError(f"cannot read the audit trail {what}: {_message(exc)}") from None
    return rows, head


def _column_problem(rows):
    """The first row whose columns do not say what its line says, as a problem of kind ``edited``; or None."""
    for number, (seq, prev, digest, mac, line) in enumerate(rows, start=1):
        record, _reason = _audit._parse(line)  # pylint: disable=protected-access  # the one parser of a line
        if record is None:
            continue  # verify_lines reports the line itself
        if (record.get("seq"), record.get("prev"), record.get("hash"), record.get("hmac")) != (seq, prev, digest, mac):
            return {"kind": "edited", "line": number, "seq": seq,
                    "message": f"line {number} (seq {seq}): the row's columns (seq, prev, hash, hmac) differ from its record: it was changed in place"}
    return None


def verify_trail(dsn, trail=DEFAULT_TRAIL, key=None, check_head=True, witness=None):
    """Check a trail in PostgreSQL the way :func:`_audit.verify` checks a file: the result of :func:`_audit.verify_lines`.

    Each row's line is a line of the log, in the order of seq; the head row is the head, and the columns of each row
    must agree with its line. ``witness`` is a list of witnessed heads (see :func:`read_witness`).
    """
    rows, head = read_trail(dsn, trail)
    state = None
    if check_head:
        state = ({"source": "head row", "seq": head[0], "hash": head[1]} if head else
                 {"source": "head row", "problem": f"the head row of trail {trail} is missing"})
    lines = [line.encode("utf-8") for *_columns, line in rows]
    result = _audit.verify_lines(lines, key=key, head=state, path=describe(dsn, trail), witness=witness)
    problem = _column_problem(rows)
    if problem is not None:
        result = _audit.add_problem(result, problem)
    return result


def export(dsn, out, trail=DEFAULT_TRAIL, key=None):
    """Write a trail as a JSON Lines file ``out`` (the rows' lines, by seq) and its head row as ``out.head``.

    The head file is signed with ``key`` when given, so that ``fleetpatch-audit verify --key`` checks the export as it
    checks a log the callback wrote. Both files are written whole or not at all. Returns ``(records, head seq)``.
    """
    rows, head = read_trail(dsn, trail)
    data = b"".join(line.encode("utf-8") + b"\n" for *_columns, line in rows)
    head_record = {"seq": head[0], "hash": head[1]} if head else None
    if head_record is not None and key is not None:
        head_record["hmac"] = head_hmac(head[0], head[1], key)
    out = os.path.abspath(os.fspath(out))
    try:
        _write_file(out, data)
        if head_record is not None:
            _write_file(out + ".head", _audit.canonical(head_record) + b"\n")
    except OSError as exc:
        raise AuditError(f"cannot write the export {out}: {exc.strerror or exc}") from None
    return len(rows), head[0] if head else None


def _write_file(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# --- witnesses --------------------------------------------------------------------------------------------------


def head_hmac(seq, digest, key):
    """The HMAC of a head (``seq``, ``hash``) with ``key``, as the head file and a witnessed head carry it."""
    return _audit._head_hmac(seq, digest, key)  # pylint: disable=protected-access  # the head file's own format


def publish_witness(witness, head):
    """Publish a trail's head (``trail``, ``seq``, ``hash``, ``hmac``, ``run_id``) to ``witness``: a DSN or a syslog address.

    A ``postgresql://`` URI inserts it into the insert-only ``witness`` table; ``syslog``, ``syslog:///dev/log`` or
    ``syslog://HOST:PORT`` (UDP) sends it to syslog. Returns what it was published to; AuditError when it cannot be.
    """
    if is_dsn(witness):
        check_dsn(witness, "witness")
        what = describe(witness)
        with _connect(witness, what) as connection:
            try:
                connection.execute(f"INSERT INTO {SCHEMA}.witness (trail, seq, hash, hmac, run_id) VALUES (%s, %s, %s, %s, %s)",
                                   (head["trail"], head["seq"], head["hash"], head.get("hmac"), head.get("run_id")))
                connection.commit()
            except psycopg.Error as exc:
                raise AuditError(f"cannot publish the head of trail {head['trail']} to the witness {what}: {_message(exc)}") from None
        return f"witness table of {what}"
    try:
        return _audit_witness.publish_syslog(witness, head)
    except _audit_witness.WitnessError as exc:
        raise AuditError(str(exc)) from None


def read_witness(source, trail=DEFAULT_TRAIL):
    """The heads of ``trail`` that the witness ``source`` holds (a ``postgresql://`` URI: its witness table; else a syslog file), oldest first."""
    check_name(trail)
    if not is_dsn(source):
        try:
            return _audit_witness.read_syslog(source, trail)
        except _audit_witness.WitnessError as exc:
            raise AuditError(str(exc)) from None
    check_dsn(source, "witness")
    what = describe(source)
    with _connect(source, what) as connection:
        _read_only(connection)
        try:
            rows = connection.execute(f"SELECT seq, hash, hmac, run_id, published_at FROM {SCHEMA}.witness WHERE trail = %s ORDER BY id",
                                      (trail,)).fetchall()
        except psycopg.Error as exc:
            raise AuditError(f"cannot read the witness {what}: {_message(exc)}") from None
    return [{"source": f"witness table of {what}", "seq": seq, "hash": digest, "hmac": mac, "run_id": run_id,
             "published": published.isoformat()} for seq, digest, mac, run_id, published in rows]
