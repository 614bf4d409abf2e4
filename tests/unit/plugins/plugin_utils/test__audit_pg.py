"""The audit trail in a real PostgreSQL server: appends, the schema's refusals, concurrent writers, tampering by a
superuser, export, witnessed heads, and the errors a misconfigured sink gives."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from pathlib import Path

import psycopg
import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditError, AuditLog, verify
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit_pg import PgAuditLog, verify_trail

KEY = b"fleetpatch-test-key"
PLUGIN_UTILS = Path(_audit_pg.__file__).parent


def _fill(dsn, count=6, trail="main"):
    log = PgAuditLog(dsn, trail, key=KEY)
    try:
        written = [log.append({"event": "task", "host": f"web-{number:02d}"}) for number in range(1, count + 1)]
    finally:
        log.close()
    return written


def _problems(result):
    return [(problem["kind"], problem["line"], problem["seq"], problem["message"]) for problem in result["problems"]]


def test_rows_hold_the_records_as_the_file_would(audit_db, tmp_path):
    written = _fill(audit_db.writer_dsn, 4)
    log = PgAuditLog(audit_db.writer_dsn, key=KEY)
    grouped = log.append_many([{"event": "task", "host": "db-1"}, {"event": "gate", "data": {"gate": "wave-1"}}])
    log.close()
    assert [record["seq"] for record in written + grouped] == [1, 2, 3, 4, 5, 6]
    rows = audit_db.execute("SELECT seq, prev, hash, hmac, line FROM fleetpatch_audit.trail_main ORDER BY seq")
    assert [(seq, prev, digest, mac, json.loads(line)) for seq, prev, digest, mac, line in rows] == [
        (record["seq"], record["prev"], record["hash"], record["hmac"], record) for record in written + grouped]
    # each row's line is byte for byte the line a file trail holds for the same record
    assert [line.encode() for *_rest, line in rows] == [_audit.canonical(record) for record in written + grouped]
    assert audit_db.execute("SELECT seq, hash FROM fleetpatch_audit.heads WHERE trail = 'main'") == [(6, grouped[-1]["hash"])]
    result = verify_trail(audit_db.reader_dsn, key=KEY)
    assert (result["ok"], result["records"], result["last_seq"], result["head_checked"], result["hmac_checked"]) == (True, 6, 6, True, True)
    assert result["path"] == f"postgresql://{audit_db.reader}@127.0.0.1:{audit_db.server.port}/{audit_db.name} trail main"
    # the export is a log that verify checks the same way, and the same file a file trail would be
    assert _audit_pg.export(audit_db.reader_dsn, tmp_path / "export.jsonl", key=KEY) == (6, 6)
    exported = verify(tmp_path / "export.jsonl", key=KEY, head=tmp_path / "export.jsonl.head")
    assert (exported["ok"], exported["records"], exported["last_hash"]) == (True, 6, result["last_hash"])


def test_init_is_idempotent_and_adds_trails(audit_db):
    _fill(audit_db.writer_dsn, 2)
    message = _audit_pg.init_db(audit_db.admin, ["main", "prod_eu"])
    assert message.endswith("trail(s) main, prod_eu; writer role fleetpatch_audit_writer, reader role fleetpatch_audit_reader")
    assert audit_db.execute("SELECT trail, seq FROM fleetpatch_audit.heads ORDER BY trail") == [("main", 2), ("prod_eu", 0)]
    _fill(audit_db.writer_dsn, 3, trail="prod_eu")
    assert verify_trail(audit_db.reader_dsn, "main", key=KEY)["records"] == 2
    assert verify_trail(audit_db.reader_dsn, "prod_eu", key=KEY)["records"] == 3
    with pytest.raises(AuditError, match=r"^the audit trail postgresql://\S+ trail nope does not exist: run fleetpatch-audit init-db with --trail nope$"):
        PgAuditLog(audit_db.writer_dsn, "nope").append({"event": "note"})


REFUSED_TO_THE_WRITER = [
    "UPDATE fleetpatch_audit.trail_main SET line = line WHERE seq = 1",
    "DELETE FROM fleetpatch_audit.trail_main WHERE seq = 3",
    "TRUNCATE fleetpatch_audit.trail_main",
    "UPDATE fleetpatch_audit.heads SET seq = 1, hash = hash",
    "DELETE FROM fleetpatch_audit.witness",
    "ALTER TABLE fleetpatch_audit.trail_main DISABLE TRIGGER ALL",
]


@pytest.mark.parametrize("statement", REFUSED_TO_THE_WRITER)
def test_the_writer_role_cannot_change_or_move_back_anything(audit_db, statement):
    _fill(audit_db.writer_dsn, 3)
    with psycopg.connect(audit_db.writer_dsn) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute(statement)
    assert verify_trail(audit_db.reader_dsn, key=KEY)["records"] == 3


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE fleetpatch_audit.trail_main SET line = line WHERE seq = 1",
         "fleetpatch audit: UPDATE on fleetpatch_audit.trail_main is refused: the audit trail is append-only"),
        ("DELETE FROM fleetpatch_audit.trail_main WHERE seq = 3",
         "fleetpatch audit: DELETE on fleetpatch_audit.trail_main is refused: the audit trail is append-only"),
        ("TRUNCATE fleetpatch_audit.trail_main", "fleetpatch audit: TRUNCATE on fleetpatch_audit.trail_main is refused: the audit trail is append-only"),
        ("UPDATE fleetpatch_audit.heads SET seq = 1",
         "fleetpatch audit: the head of trail main moves one record forward at a time (seq 3 to 1), and only by an insert"),
        ("DELETE FROM fleetpatch_audit.heads", "fleetpatch audit: DELETE on fleetpatch_audit.heads is refused: the audit trail is append-only"),
        ("INSERT INTO fleetpatch_audit.trail_main (seq, prev, hash, line) VALUES (5, 'x', 'y', '{}')",
         "fleetpatch audit: seq 5 does not continue trail main at its head (seq 3)"),
        ("INSERT INTO fleetpatch_audit.trail_main (seq, prev, hash, line) SELECT 4, hash, 'y', '{\"seq\":4}' FROM fleetpatch_audit.heads",
         "fleetpatch audit: the columns of seq 4 of trail main differ from its line"),
    ],
    ids=["update", "delete", "truncate", "head-back", "head-delete", "gap", "columns-disagree"],
)
def test_the_database_refuses_even_its_owner(audit_db, statement, message):
    _fill(audit_db.writer_dsn, 3)
    with pytest.raises(psycopg.Error) as caught:
        audit_db.execute(statement)
    assert str(caught.value).splitlines()[0] == message


def _tamper(audit_db, statement):
    """What a superuser can still do: switch the triggers off for the session and change the table."""
    with audit_db.server.connect(audit_db.name) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute(statement)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE fleetpatch_audit.trail_main SET line = replace(line, 'web-03', 'web-99') WHERE seq = 3",
         [("edited", 3, 3, "line 3 (seq 3) was edited: its content does not match its hash")]),
        ("DELETE FROM fleetpatch_audit.trail_main WHERE seq = 4", [("deleted", 4, 5, "seq 4 deleted before line 4 (seq 5)")]),
        ("DELETE FROM fleetpatch_audit.trail_main WHERE seq = 6",
         [("truncated", 6, 6, "the log ends at seq 5 (line 5) but the head row says seq 6: 1 record(s) cut off the end")]),
    ],
    ids=["line-edited", "row-deleted", "tail-cut"],
)
def test_a_superusers_change_is_named_and_the_export_says_the_same(audit_db, tmp_path, statement, expected):
    _fill(audit_db.writer_dsn, 6)
    _tamper(audit_db, statement)
    result = verify_trail(audit_db.reader_dsn, key=KEY)
    assert (result["ok"], _problems(result)) == (False, expected)
    _audit_pg.export(audit_db.reader_dsn, tmp_path / "export.jsonl", key=KEY)
    exported = verify(tmp_path / "export.jsonl", key=KEY, head=tmp_path / "export.jsonl.head")
    assert _problems(exported) == [(kind, line, seq, text.replace("head row", "head file")) for kind, line, seq, text in expected]


def test_a_row_whose_columns_were_changed_is_named(audit_db):
    _fill(audit_db.writer_dsn, 4)
    _tamper(audit_db, "UPDATE fleetpatch_audit.trail_main SET hmac = NULL WHERE seq = 2")
    result = verify_trail(audit_db.reader_dsn, key=KEY)
    assert _problems(result) == [("edited", 2, 2, "line 2 (seq 2): the row's columns (seq, prev, hash, hmac) differ from its record: it was changed in place")]


def _append_from_child(log, count, name):
    for number in range(count):
        log.append({"event": "task", "host": f"{name}-{number}"})


def test_concurrent_writers_keep_one_chain_and_children_never_use_the_parents_connection(audit_db):
    log = PgAuditLog(audit_db.writer_dsn, key=KEY)
    log.append({"event": "run_start"})  # the parent's connection is open when the children are forked
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_append_from_child, args=(log, 25, f"child{number}")) for number in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    log.append({"event": "run_end"})  # still the parent's own session: the children neither used nor closed it
    log.close()
    result = verify_trail(audit_db.reader_dsn, key=KEY)
    assert (result["ok"], result["records"], result["last_seq"]) == (True, 102, 102)
    sessions = audit_db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s", (audit_db.name, audit_db.writer))
    assert sessions == [(0,)]


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://writer:s3cret-pw@127.0.0.1:5432/audit", "host=127.0.0.1 user=writer password=s3cret-pw dbname=audit",
     "postgresql://writer@127.0.0.1/audit?password=s3cret-pw"],
    ids=["uri", "keywords", "uri-query"],
)
def test_a_dsn_with_a_password_is_refused_without_showing_it(dsn):
    with pytest.raises(AuditError) as caught:
        PgAuditLog(dsn)
    assert str(caught.value) == (
        "the PostgreSQL audit DSN (dsn) holds a password (its 'password' field): give the password in PGPASSWORD or a pgpass file instead, "
        "so that it never reaches a record, a message or the environment of the run's workers")
    with pytest.raises(AuditError, match=r"^the PostgreSQL audit DSN \(witness\) holds a password"):
        _audit_pg.publish_witness(dsn if dsn.startswith("postgresql") else "postgresql://w:s3cret-pw@h/db", {"trail": "main", "seq": 1, "hash": "x"})


def test_an_unparseable_dsn_is_named_without_its_text():
    with pytest.raises(AuditError) as caught:
        PgAuditLog("host=db password")
    assert str(caught.value) == "the PostgreSQL audit DSN (dsn) is not a valid libpq connection string or postgresql:// URI"


def test_an_unreachable_database_is_an_audit_error(postgres):
    log = PgAuditLog(f"postgresql://nobody@127.0.0.1:{postgres.port}/nowhere")
    with pytest.raises(AuditError, match=rf"^cannot connect to the audit database postgresql://nobody@127.0.0.1:{postgres.port}/nowhere trail main: "):
        log.append({"event": "note"})


def test_without_psycopg_the_error_names_the_package(tmp_path):
    """The system's Python has no psycopg: load the module by its path, as bin/fleetpatch-audit does."""
    python = "/usr/bin/python3"
    if subprocess.run([python, "-I", "-c", "import psycopg"], capture_output=True, check=False).returncode == 0:
        pytest.fail(f"{python} has psycopg: this test needs a Python without it")
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('fleetpatch_rollout_audit_pg', {str(PLUGIN_UTILS / '_audit_pg.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "try:\n    module.PgAuditLog('postgresql://writer@127.0.0.1/audit')\n"
        "except module.AuditError as exc:\n    print(exc)\n"
        "print(module.init_sql(['main']).count('CREATE TRIGGER trail_main_'))\n"
    )
    done = subprocess.run([python, "-I", "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "the PostgreSQL audit sink needs the Python package psycopg (psycopg 3) on the controller, and it is not installed in "
        f"{python}: pip install psycopg",
        "3",  # the SQL for a DBA needs no psycopg: the trail's chain, no-change and no-truncate triggers
    ]


@pytest.mark.parametrize("name", ["Main", "1st", "a-b", "", "x" * 42, "main; DROP TABLE x"])
def test_trail_names_are_checked(name):
    with pytest.raises(AuditError, match=r"^the audit trail name .* is not valid: use lower-case letters, digits and underscores"):
        _audit_pg.check_name(name)


# --- witnessed heads ----------------------------------------------------------------------------------------------


def _witness(source, record, key=KEY, run_id="run-1", trail="main"):
    head = {"trail": trail, "seq": record["seq"], "hash": record["hash"], "run_id": run_id,
            "hmac": _audit_pg.head_hmac(record["seq"], record["hash"], key) if key else None}
    return _audit_pg.publish_witness(source, head)


def _file_log(path, count):
    log = AuditLog(path, key=KEY)
    return [log.append({"event": "task", "host": f"h{number}"}) for number in range(count)]


def test_witness_table_catches_a_log_put_back_or_rewritten(audit_db, tmp_path):
    path = tmp_path / "audit.jsonl"
    first = _file_log(path, 3)
    assert _witness(audit_db.writer_dsn, first[-1]) == f"witness table of postgresql://{audit_db.writer}@127.0.0.1:{audit_db.server.port}/{audit_db.name}"
    kept = path.read_bytes(), (tmp_path / "audit.jsonl.head").read_bytes()
    second = _file_log(path, 3)
    _witness(audit_db.writer_dsn, second[-1], run_id="run-2")
    witnessed = _audit_pg.read_witness(audit_db.reader_dsn)
    assert [(seen["seq"], seen["run_id"]) for seen in witnessed] == [(3, "run-1"), (6, "run-2")]
    intact = verify(path, key=KEY, head=f"{path}.head", witness=witnessed)
    assert (intact["ok"], intact["witness_checked"]) == (True, 2)
    assert _audit.format_report(intact).startswith(f"OK {path}: 6 records, last seq 6; checked: hash chain, HMACs, head file, 2 witnessed head(s)")
    # the old log and its signed head put back: verify alone passes, the witness does not
    path.write_bytes(kept[0])
    (tmp_path / "audit.jsonl.head").write_bytes(kept[1])
    assert verify(path, key=KEY, head=f"{path}.head")["ok"]
    source = f"witness table of postgresql://{audit_db.reader}@127.0.0.1:{audit_db.server.port}/{audit_db.name}"
    assert _problems(verify(path, key=KEY, head=f"{path}.head", witness=witnessed)) == [
        ("witness", 4, 4, f"the log ends at seq 3 but the {source} saw seq 6 at the end of run run-2: the log was cut back by 3 record(s) after that")]
    # rewritten from seq 2 on by someone with the key, past the witnessed head: it differs there
    path.unlink()
    (tmp_path / "audit.jsonl.head").unlink()
    log = AuditLog(path, key=KEY)
    log.append(json.loads(kept[0].splitlines()[0]))
    for number in range(6):
        log.append({"event": "task", "host": f"forged-{number}"})
    assert _problems(verify(path, key=KEY, head=f"{path}.head", witness=witnessed))[0][:3] == ("witness", 3, 3)


def test_a_witnessed_head_without_the_key_is_not_taken(audit_db, tmp_path):
    path = tmp_path / "audit.jsonl"
    records = _file_log(path, 2)
    _witness(audit_db.writer_dsn, dict(records[-1], seq=9), key=b"another key")
    result = verify(path, key=KEY, head=f"{path}.head", witness=_audit_pg.read_witness(audit_db.reader_dsn))
    assert (result["ok"], result["witness_checked"]) == (True, 0)
    source = f"witness table of postgresql://{audit_db.reader}@127.0.0.1:{audit_db.server.port}/{audit_db.name}"
    assert result["notes"] == [f"a head seq 9 in the {source} has no valid HMAC: not taken as witnessed",
                               "the witness holds no head of this trail: nothing to compare"]
