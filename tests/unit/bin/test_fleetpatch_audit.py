"""bin/fleetpatch-audit as an operator runs it: a plain Python 3 without Ansible, from a checkout or a copy of it."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditLog

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "bin" / "fleetpatch-audit"
# The system's Python has no Ansible: the verifier must not need it. Fall back to this one (-I: no site-packages).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _run(*args, script=SCRIPT):
    return subprocess.run([PYTHON, "-I", str(script), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.jsonl"
    (tmp_path / "key").write_bytes(b"k3y\n")
    writer = AuditLog(path, key=b"k3y")
    for number in range(5):
        writer.append({"event": "task", "host": f"h{number}"})
    return path


def test_intact_log(log):
    done = _run("verify", log, "--key", log.parent / "key")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"OK {log}: 5 records, last seq 5; checked: hash chain, HMACs, head file\n", "")


def test_tampered_log(log):
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:1] + lines[2:4]))
    done = _run("verify", log, "--key", log.parent / "key")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"TAMPERED {log}: 2 kind(s) of damage",
        "deleted: line 2 seq 3: seq 2 deleted before line 2 (seq 3)",
        "truncated: line 4 seq 5: the log ends at seq 4 (line 3) but the head file says seq 5: 1 record(s) cut off the end",
    ]
    done = _run("verify", log, "--no-head", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert [(p["kind"], p["line"], p["seq"]) for p in result["problems"]] == [("deleted", 2, 3)]
    assert result["notes"] == ["HMACs not checked: no key given"]


def test_wrong_key_is_forgery(log, tmp_path):
    (tmp_path / "other").write_text("another key\n", encoding="utf-8")
    done = _run("verify", log, "--key", tmp_path / "other")
    assert done.returncode == 1
    assert done.stdout.splitlines()[1:] == [
        "forged: line 1 seq 1: line 1 (seq 1) has no valid HMAC: it was written or re-hashed without the key",
        f"head: head file seq 5: head file {log}.head has no valid HMAC: it was written without the key",
    ]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (("verify", "{dir}/nothing.jsonl"), "fleetpatch-audit: cannot read the audit log {dir}/nothing.jsonl: No such file or directory\n"),
        (("verify", "{dir}/audit.jsonl", "--key", "{dir}/nokey"),
         "fleetpatch-audit: cannot read the audit HMAC key file {dir}/nokey: No such file or directory\n"),
    ],
)
def test_unreadable_input_is_exit_2(log, args, stderr):
    done = _run(*(arg.format(dir=log.parent) for arg in args))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", stderr.format(dir=log.parent))


def test_usage_error_is_exit_2(log):
    done = _run("check", log)
    assert done.returncode == 2
    assert "invalid choice: 'check'" in done.stderr
    assert _run("verify", log, "--head", "x", "--no-head").returncode == 2


def test_runs_from_a_copy_of_the_collection_and_through_a_link(log, tmp_path):
    copy = tmp_path / "installed" / "ansible_collections" / "fleetpatch" / "rollout"
    (copy / "plugins").mkdir(parents=True)
    shutil.copytree(REPO / "plugins" / "plugin_utils", copy / "plugins" / "plugin_utils")
    shutil.copytree(REPO / "bin", copy / "bin")
    link = tmp_path / "fleetpatch-audit"
    link.symlink_to(copy / "bin" / "fleetpatch-audit")
    for script in (copy / "bin" / "fleetpatch-audit", link):
        assert _run("verify", log, script=script).returncode == 0


# --- PostgreSQL: init-db, verify, export (the Python that runs the tests has psycopg; the system's has not) -------------


def _run_pg(*args, env=None):
    return subprocess.run([sys.executable, "-I", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def test_init_db_sql_needs_no_database_nor_psycopg():
    done = _run("init-db", "--sql", "--trail", "prod_eu", "--writer", "awx_audit")
    assert (done.returncode, done.stderr) == (0, "")
    assert "CREATE TABLE IF NOT EXISTS fleetpatch_audit.trail_prod_eu (" in done.stdout
    assert 'GRANT SELECT, INSERT ON fleetpatch_audit.trail_prod_eu, fleetpatch_audit.witness TO "awx_audit";' in done.stdout
    assert _run("init-db").returncode == 2  # neither a DSN nor --sql


def test_postgres_without_psycopg_is_exit_2(tmp_path):
    done = _run("verify", "postgresql://auditor@127.0.0.1/audit")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("fleetpatch-audit: the PostgreSQL audit sink needs the Python package psycopg (psycopg 3) on the controller, and it is "
                           f"not installed in {PYTHON}: pip install psycopg\n")


def test_init_db_verify_and_export_a_trail(audit_db, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"k3y\n")
    done = _run_pg("init-db", audit_db.admin, "--trail", "main", "--trail", "second")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.endswith("trail(s) main, second; writer role fleetpatch_audit_writer, reader role fleetpatch_audit_reader\n")
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit_pg import PgAuditLog  # pylint: disable=import-outside-toplevel

    writer = PgAuditLog(audit_db.writer_dsn, "second", key=b"k3y")
    for number in range(3):
        writer.append({"event": "task", "host": f"h{number}"})
    writer.close()
    where = f"postgresql://{audit_db.reader}@127.0.0.1:{audit_db.server.port}/{audit_db.name} trail second"
    done = _run_pg("verify", audit_db.reader_dsn, "--trail", "second", "--key", key_file)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"OK {where}: 3 records, last seq 3; checked: hash chain, HMACs, head file\n", "")
    out = tmp_path / "export.jsonl"
    done = _run_pg("export", audit_db.reader_dsn, out, "--trail", "second", "--key", key_file)
    assert (done.returncode, done.stdout) == (0, f"exported 3 records of {where} to {out} (head seq 3 in {out}.head)\n")
    assert _run("verify", out, "--key", key_file).stdout == f"OK {out}: 3 records, last seq 3; checked: hash chain, HMACs, head file\n"
    # a record changed behind the triggers' back: both say where
    with audit_db.server.connect(audit_db.name) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute("UPDATE fleetpatch_audit.trail_second SET line = replace(line, '\"h1\"', '\"h9\"') WHERE seq = 2")
    done = _run_pg("verify", audit_db.reader_dsn, "--trail", "second", "--key", key_file)
    assert (done.returncode, done.stdout.splitlines()[1:]) == (1, ["edited: line 2 seq 2: line 2 (seq 2) was edited: its content does not match its hash"])
    assert _run_pg("export", audit_db.reader_dsn, out, "--trail", "second", "--key", key_file).returncode == 0
    done = _run("verify", out, "--key", key_file)
    assert (done.returncode, done.stdout.splitlines()[1:]) == (1, ["edited: line 2 seq 2: line 2 (seq 2) was edited: its content does not match its hash"])


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (("verify", "postgresql://auditor:pw@127.0.0.1/audit"),
         "fleetpatch-audit: the PostgreSQL audit DSN (dsn) holds a password (its 'password' field): give the password in PGPASSWORD or a "
         "pgpass file instead, so that it never reaches a record, a message or the environment of the run's workers\n"),
        (("verify", "postgresql://auditor@127.0.0.1/audit", "--trail", "Prod"),
         "fleetpatch-audit: the audit trail name 'Prod' is not valid: use lower-case letters, digits and underscores (41 at most), "
         "starting with a letter or an underscore\n"),
        (("verify", "{dir}/audit.jsonl", "--witness", "{dir}/no-syslog"),
         "fleetpatch-audit: cannot read the witness syslog file {dir}/no-syslog: No such file or directory\n"),
    ],
    ids=["password", "trail-name", "witness-missing"],
)
def test_bad_targets_are_exit_2(log, args, stderr):
    done = _run_pg(*(arg.format(dir=log.parent) for arg in args))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", stderr.format(dir=log.parent))


def test_repair_a_torn_committed_line_then_verify_lists_it(log):
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]) + lines[-1][:30])  # the head says seq 5 was committed; its line is torn
    key = log.parent / "key"
    done = _run("repair", log)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"fleetpatch-audit: the records of the audit log {log} are signed, and no HMAC key was given: give the key that "
                           "signs it, or the repair record would read as forged\n")
    done = _run("repair", log, "--key", key)
    sha = hashlib.sha256(lines[-1][:30]).hexdigest()
    user = pwd.getpwuid(os.getuid()).pw_name
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"repaired {log}: cut torn line 5 (30 bytes, sha256 {sha}); the head file said seq 5; recorded as seq 5 by {user}\n"
    done = _run("verify", log, "--key", key)
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == f"OK {log}: 5 records, last seq 5; checked: hash chain, HMACs, head file; REPAIRED: 1 cut(s) on record, listed below"
    assert done.stdout.splitlines()[1].startswith(f"note: line 5 (seq 5): repaired by {user}")
    result = json.loads(_run("verify", log, "--key", key, "--json").stdout)
    assert [(item["event"], item["line"], item["data"]["sha256"]) for item in result["repairs"]] == [("repair", 5, sha)]
    done = _run("repair", log, "--key", key)
    assert (done.returncode, done.stdout) == (0, f"nothing to repair: {log} ends with a complete line\n")


def test_repair_of_a_missing_log_is_exit_2(tmp_path):
    done = _run("repair", tmp_path / "none.jsonl")
    message = f"fleetpatch-audit: cannot read the audit log {tmp_path / 'none.jsonl'}: No such file or directory\n"
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)
