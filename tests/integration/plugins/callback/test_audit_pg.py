"""The audit callback and audit_event writing to PostgreSQL, and witnessed heads, in real ansible-playbook runs against a
real server: concurrent runs into one trail, a database that goes away mid-run, and an old head put back."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import read_key
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit_pg import verify_trail

SCRIPT = Path(__file__).resolve().parents[4] / "bin" / "fleetpatch-audit"
MODULE = "fleetpatch.rollout.audit_event"


def _cli(*args, env=None):
    """bin/fleetpatch-audit with this Python (it has psycopg), isolated from the test's own path."""
    return subprocess.run([sys.executable, "-I", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, check=False, env=env)


def _pg_env(audited, audit_db, **extra):
    audited.env.update({"FLEETPATCH_AUDIT_DSN": audit_db.writer_dsn, "PGPASSWORD": audit_db.password, **extra})


def test_three_runs_at_once_into_one_trail(audited, audit_db, tmp_path):
    _pg_env(audited, audit_db, FLEETPATCH_AUDIT_WITNESS=audit_db.writer_dsn)
    inventory = audited.inventory("load", [f"load-{number:02d}" for number in range(1, 5)])
    started = time.monotonic()
    processes = [audited.start("audit_load.yml", inventory) for _run in range(3)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    elapsed = time.monotonic() - started
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert not audited.log.exists()  # the trail went to the database, not to the file
    key = read_key(audited.key_file)
    result = verify_trail(audit_db.reader_dsn, key=key)
    assert (result["ok"], result["problems"], result["records"], result["last_seq"]) == (True, [], 63, 63)
    records = [json.loads(line) for (line,) in audit_db.execute("SELECT line FROM fleetpatch_audit.trail_main ORDER BY seq")]
    by_run: dict[str, list[dict]] = {}
    for record in records:
        by_run.setdefault(record["run_id"], []).append(record)
    # each run: its own task results (4 tasks on 4 hosts, 2 of them skipping one, and the gate once), its gate event,
    # and the run's start, play start and end
    assert [audited.parse(output).task_results() for output in outputs] == [17, 17, 17]
    assert sorted(sum(1 for record in run if record["event"] == "task") for run in by_run.values()) == [17, 17, 17]
    for run in by_run.values():
        events = [record["event"] for record in run]
        assert (len(events), events[0], events[1], events[-1], events.count("gate")) == (21, "run_start", "play_start", "run_end", 1)
    switches = sum(1 for before, after in zip(records, records[1:]) if before["run_id"] != after["run_id"])
    assert switches > 2  # the runs really wrote at the same time
    # each run published its last record as a witnessed head
    ends = {run[-1]["run_id"]: (run[-1]["seq"], run[-1]["hash"]) for run in by_run.values()}
    assert {seen["run_id"]: (seen["seq"], seen["hash"]) for seen in _audit_pg.read_witness(audit_db.reader_dsn)} == ends
    # the writer role may add, never change
    with psycopg.connect(audit_db.writer_dsn) as connection:
        for statement in ("UPDATE fleetpatch_audit.trail_main SET line = line", "DELETE FROM fleetpatch_audit.trail_main",
                          "TRUNCATE fleetpatch_audit.trail_main"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table trail_main"):
                connection.execute(statement)
            connection.rollback()
    # the command line and the lookup say the same, witness included
    done = _cli("verify", audit_db.reader_dsn, "--key", audited.key_file, "--witness", audit_db.reader_dsn, env=audited.env)
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, f"OK {result['path']}: 63 records, last seq 63; checked: hash chain, HMACs, head file, "
                                                                 "3 witnessed head(s)"), done.stderr
    report = tmp_path / "report.json"
    lookup = audited.run("audit_verify.yml", audited.inventory("local", ["localhost"]), "-e", json.dumps({
        "fp_logs": [audit_db.reader_dsn], "fp_key_file": str(audited.key_file), "fp_report": str(report), "fp_witness": [audit_db.reader_dsn],
    }), env={"ANSIBLE_CALLBACKS_ENABLED": None, "FLEETPATCH_AUDIT_DSN": None})
    assert lookup.returncode == 0, lookup.stdout
    assert [(item["ok"], item["records"], item["witness_checked"]) for item in json.loads(report.read_text(encoding="utf-8"))] == [(True, 63, 3)]
    print(f"\n3 runs x 4 hosts into one PostgreSQL trail: 63 records in {elapsed:.1f} s, {switches} switches between runs")


def test_a_database_that_goes_away_stops_the_rollout_at_the_next_gate(audited, audit_db, postgres):
    _pg_env(audited, audit_db)
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    try:
        # The task records wait for the gate however slow the machine is (no flush by time): what is lost is then known.
        run = audited.run("audit_gate.yml", inventory, "-e", json.dumps({"fp_break_audit": postgres.stop_command()}),
                          env={"FLEETPATCH_AUDIT_FLUSH_SECONDS": "600"})
    finally:
        postgres.resume()
    assert run.returncode == 2, run.stdout
    where = f"postgresql://{audit_db.writer}@127.0.0.1:{postgres.port}/{audit_db.name} trail main"
    assert f"{MODULE}: the audit log cannot be written, so the rollout stops here: cannot connect to the audit database {where}: " in run.stdout
    assert "record(s) not written, the audit trail is incomplete" in run.stdout
    assert "TASK [Patch the second wave]" not in run.stdout
    result = verify_trail(audit_db.reader_dsn, key=read_key(audited.key_file))
    assert (result["ok"], result["problems"]) == (True, [])
    records = [json.loads(line) for (line,) in audit_db.execute("SELECT line FROM fleetpatch_audit.trail_main ORDER BY seq")]
    # Everything written before the database went away is there, and nothing after it. The task records of the first
    # wave were waiting to be written as a group before the gate's own record: they are the records the callback lost.
    assert [(record["event"], record["data"].get("task")) for record in records][-1] == ("approval", None)


def test_a_record_lost_while_the_database_was_away_stops_the_rollout_at_the_next_gate(audited, audit_db, postgres):
    _pg_env(audited, audit_db)
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    try:
        # each record written at once: in groups, the task records of the moment the database was away would wait, and be written later
        run = audited.run("audit_gate.yml", inventory, "-e", json.dumps({"fp_break_audit": postgres.stop_command(),
                                                                         "fp_mend_audit": postgres.start_command()}),
                          env={"FLEETPATCH_AUDIT_FLUSH_RECORDS": "1"})
    finally:
        postgres.resume()
    assert run.returncode == 2, run.stdout
    where = f"postgresql://{audit_db.writer}@127.0.0.1:{postgres.port}/{audit_db.name} trail main"
    # the callback's open connection broke when the server went down; it connected again once the server was back
    assert re.search(re.escape(f"{MODULE}: the audit callback could not write ") + r"\d+" + re.escape(
        f" record(s) of this run, so its audit trail is incomplete and the rollout stops here (last error: cannot write to the audit trail {where}: "),
        run.stdout)
    assert "TASK [Patch the second wave]" not in run.stdout
    result = verify_trail(audit_db.reader_dsn, key=read_key(audited.key_file))
    assert (result["ok"], result["problems"]) == (True, [])
    records = [json.loads(line) for (line,) in audit_db.execute("SELECT line FROM fleetpatch_audit.trail_main ORDER BY seq")]
    tasks = [record["data"]["task"] for record in records if record["event"] == "task"]
    assert "The audit log becomes unwritable" not in tasks  # the record written while the database was down
    assert tasks[-2:] == ["The audit log becomes writable again", "Gate after the first wave"]
    assert [record["event"] for record in records].count("gate") == 1  # the gate's own record was written, then it failed


def test_an_old_head_put_back_fails_verify_witness(audited, audit_db, syslog_server, tmp_path):
    trail = f"t_{secrets.token_hex(4)}"
    audited.env.update({"FLEETPATCH_AUDIT_TRAIL": trail, "PGPASSWORD": audit_db.password,
                        "FLEETPATCH_AUDIT_WITNESS": f"{audit_db.writer_dsn},{syslog_server.address}"})
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    log, head = audited.log, Path(f"{audited.log}.head")
    first = audited.run("audit_gate.yml", inventory)
    assert first.returncode == 0, first.stdout
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.copy2(log, kept / "audit.jsonl")
    shutil.copy2(head, kept / "audit.jsonl.head")
    second = audited.run("audit_gate.yml", inventory)
    assert second.returncode == 0, second.stdout
    syslog_server.wait_for(f'"trail":"{trail}"', count=2)
    total = len(audited.records())
    cut = len((kept / "audit.jsonl").read_bytes().splitlines())
    sources = [audit_db.reader_dsn, str(syslog_server.messages)]
    for source in sources:
        done = _cli("verify", log, "--key", audited.key_file, "--trail", trail, "--witness", source, env=audited.env)
        assert (done.returncode, done.stdout.splitlines()[0]) == (
            0, f"OK {log}: {total} records, last seq {total}; checked: hash chain, HMACs, head file, 2 witnessed head(s)"), done.stdout + done.stderr
    # the first run's log and its signed head put back; then the second run's log cut a little beyond it, with the old head
    lines = log.read_bytes().splitlines(keepends=True)
    for records, label in ((cut, "put back"), (cut + 3, "cut beyond")):
        log.write_bytes(b"".join(lines[:records]))
        shutil.copy2(kept / "audit.jsonl.head", head)
        alone = _cli("verify", log, "--key", audited.key_file, env=audited.env)
        if label == "put back":
            assert alone.returncode == 0, (label, alone.stdout)  # what a file trail alone cannot catch
        # Cut beyond the old head, the file alone catches it only when the head is further behind than one group of records.
        for source in sources:
            done = _cli("verify", log, "--key", audited.key_file, "--trail", trail, "--witness", source, env=audited.env)
            assert done.returncode == 1, (label, source, done.stdout, done.stderr)
            assert any(line.startswith(f"witness: line {records + 1} seq {records + 1}: the log ends at seq {records} but the ")
                       for line in done.stdout.splitlines()), (label, done.stdout)
            assert f"saw seq {total} at the end of run " in done.stdout
    report = tmp_path / "report.json"
    lookup = audited.run("audit_verify.yml", audited.inventory("local", ["localhost"]), "-e", json.dumps({
        "fp_logs": [str(log)], "fp_key_file": str(audited.key_file), "fp_report": str(report), "fp_trail": trail,
        "fp_witness": [str(syslog_server.messages)],
    }), env={"ANSIBLE_CALLBACKS_ENABLED": None})
    assert lookup.returncode == 0, lookup.stdout
    [result] = json.loads(report.read_text(encoding="utf-8"))
    # the log is cut three records beyond the old head: the witness says so (and the head, when that is more than one group behind)
    assert (result["ok"], "witness" in [problem["kind"] for problem in result["problems"]], result["witness_checked"]) == (False, True, 2)


def test_a_dsn_with_a_password_stops_the_run_and_the_password_is_shown_nowhere(audited, tmp_path):
    planted = f"PLANTED-{secrets.token_hex(6)}"
    audited.env.update({"FLEETPATCH_AUDIT_DSN": f"postgresql://writer:{planted}@127.0.0.1:5432/audit"})
    sink_file = tmp_path / "sink.json"
    run = audited.run("audit_sink_env.yml", audited.inventory("audited", ["web-01"]), "-e", f"fp_sink_file={sink_file}")
    refused = ("the PostgreSQL audit DSN (dsn) holds a password (its 'password' field): give the password in PGPASSWORD or a pgpass file "
               "instead, so that it never reaches a record, a message or the environment of the run's workers")
    assert run.returncode == 2, run.stdout
    assert f"record(s) not written, the audit trail is incomplete: {refused}" in run.stdout
    assert f"{MODULE}: the audit log cannot be written, so the rollout stops here: {refused}" in run.stdout
    assert "TASK [Patch]" not in run.stdout
    assert planted not in run.stdout and not audited.log.exists()  # nor did a record go to the file instead
    sink = json.loads(sink_file.read_text(encoding="utf-8"))
    assert (sink["dsn"], sink["broken"]) == (None, refused)
    assert planted not in sink_file.read_text(encoding="utf-8")
