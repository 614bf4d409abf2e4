"""The fleetpatch.rollout.audit callback in real ansible-playbook runs: what it writes, concurrently, and what it never writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from fleetpatch_dev import mounts

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import read_key, verify

GOLDEN = Path(__file__).parent / "golden" / "audit_golden.json"
VOLATILE = ("ts", "hash", "prev", "hmac", "seq", "batch")  # batch: where a group of records starts depends on timing
# ansible-core 2.19 words some failures differently from 2.21, which the golden file was written with.
CORE_MESSAGES = {"non-zero return code": "The command exited with a non-zero return code."}


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (SSH to it is refused at once: unreachable)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def normalise(records: list[dict], port: int) -> list[dict]:
    """Records without what changes from run to run; the results of one task sorted by host (forks finish in any order)."""
    run_ids = {record["run_id"] for record in records}
    assert len(run_ids) == 1
    out = []
    for record in records:
        record = {key: value for key, value in record.items() if key not in VOLATILE}
        record["run_id"] = "RUN"
        if record["event"] == "run_start":
            record["data"] = {**record["data"], "controller": "CONTROLLER"}
        if "msg" in record["data"]:
            msg = record["data"]["msg"].replace(str(port), "PORT")
            record["data"]["msg"] = CORE_MESSAGES.get(msg, msg)
        out.append(record)
    grouped, index = [], 0
    while index < len(out):
        end = index
        while end < len(out) and out[end]["event"] == "task" and out[index]["event"] == "task" and out[end]["data"]["task"] == out[index]["data"]["task"]:
            end += 1
        end = max(end, index + 1)
        grouped.extend(sorted(out[index:end], key=lambda record: record["host"] or ""))
        index = end
    return grouped


def test_golden_run(audited):
    port = _closed_port()
    inventory = audited.inventory("audited", ["web-01", "web-02", "gone"], gone={
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "nobody",
    })
    run = audited.run("audit_golden.yml", inventory, "-e", "fleetpatch_patch_id=FP-2025-14847", "-e", "fleetpatch_artifact_sha256=" + "ab" * 32,
                      "-e", "awx_user_name=bob", "-e", "awx_job_id=4711")
    assert run.returncode == 4, run.stdout  # 4: a host was unreachable
    records = audited.records()
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    assert [record["ts"] for record in records] == sorted(record["ts"] for record in records)
    result = verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")
    assert (result["ok"], result["problems"], result["records"]) == (True, [], len(records))
    got = normalise(records, port)
    if os.environ.get("FLEETPATCH_UPDATE_GOLDEN"):  # regenerates the file, to be reviewed before it is committed
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))
    # every task result of the run is in the log, and no other
    assert sum(1 for record in records if record["event"] == "task") == run.task_results()


def test_two_runs_with_20_forks_share_one_log(audited):
    inventory = audited.inventory("load", [f"load-{number:02d}" for number in range(1, 21)])
    started = time.monotonic()
    processes = [audited.start("audit_load.yml", inventory, "--forks", "20") for _run in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    elapsed = time.monotonic() - started
    assert [process.returncode for process in processes] == [0, 0], outputs
    records = audited.records()
    result = verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")
    assert (result["ok"], result["problems"], result["records"], result["last_seq"]) == (True, [], len(records), len(records))
    by_run: dict[str, list[dict]] = {}
    for record in records:
        by_run.setdefault(record["run_id"], []).append(record)
    assert len(by_run) == 2
    # each run's own count of its task results (its recap): 4 tasks on 20 hosts (half of them skipping one) and the gate once
    expected = [audited.parse(output).task_results() for output in outputs]
    assert expected == [81, 81]
    counts = sorted(sum(1 for record in run_records if record["event"] == "task") for run_records in by_run.values())
    assert counts == expected
    for run_records in by_run.values():
        statuses = [record["data"]["status"] for record in run_records if record["event"] == "task"]
        assert (statuses.count("ok"), statuses.count("skipped")) == (71, 10)
    for run_records in by_run.values():
        events = [record["event"] for record in run_records]
        assert (events[0], events[1], events[-1], events.count("gate")) == ("run_start", "play_start", "run_end", 1)
    # the two runs really overlapped: their records interleave in the log
    switches = sum(1 for before, after in zip(records, records[1:]) if before["run_id"] != after["run_id"])
    assert switches > 1
    print(f"\n2 runs x 20 hosts x 5 tasks: {len(records)} records in {elapsed:.1f} s, {switches} switches between runs")


def test_secrets_never_reach_the_log_the_head_or_stdout(audited, tmp_path):
    token = secrets_token()
    planted = {
        "fp_failing_secret": f"FAILING-{token}",
        "fp_loop_secrets": [f"LOOP1-{token}", f"LOOP2-{token}"],
    }
    vaulted = f"VAULTED-{token}"
    inline = f"INLINE-{token}"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "extra.json").write_text(json.dumps(planted), encoding="utf-8")
    (inputs / "vault-pass").write_text("correct horse battery staple\n", encoding="utf-8")
    vault_file = inputs / "vault.yml"
    vault_file.write_text(f"fp_vault_secret: {vaulted}\n", encoding="utf-8")
    encrypt = subprocess.run([str(Path(audited.env["PATH"].split(":")[0]) / "ansible-vault"), "encrypt", "--vault-password-file",
                              str(inputs / "vault-pass"), str(vault_file)], env=audited.env, capture_output=True, text=True, check=False)
    assert encrypt.returncode == 0, encrypt.stderr
    assert vaulted not in vault_file.read_text(encoding="utf-8")
    inline_file = inputs / "inline.yml"
    encrypt = subprocess.run([str(Path(audited.env["PATH"].split(":")[0]) / "ansible-vault"), "encrypt_string", "--vault-password-file",
                              str(inputs / "vault-pass"), "--name", "fp_inline_secret", inline], env=audited.env, capture_output=True, text=True, check=False)
    assert encrypt.returncode == 0, encrypt.stderr
    inline_file.write_text(encrypt.stdout, encoding="utf-8")
    assert "!vault" in encrypt.stdout and inline not in encrypt.stdout
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    run = audited.run("audit_secrets.yml", inventory, "-e", f"@{inputs / 'extra.json'}", "-e", f"fp_vault_file={vault_file}",
                      "-e", f"fp_inline_vault_file={inline_file}",
                      "--vault-password-file", str(inputs / "vault-pass"))
    assert run.returncode == 0, run.stdout
    needles = [planted["fp_failing_secret"], *planted["fp_loop_secrets"], vaulted, inline]
    # the secrets were used: the failing no_log task failed, the loop over them ran, the vaulted values were echoed
    records = audited.records()
    tasks = {(record["data"]["task"], record["host"]): record["data"] for record in records if record["event"] == "task"}
    assert tasks[("A no_log task that fails", "web-01")] == {
        "status": "failed", "changed": False, "no_log": True, "ignore_errors": True, "task": "A no_log task that fails",
        "action": "ansible.builtin.command", "play": "Secrets the audit trail must never hold",
    }
    assert tasks[("A no_log loop", "web-02")]["loop"] == {"items": 2}
    assert tasks[("A no_log loop that fails on an item", "web-02")]["loop"] == {"items": 2, "failed": 1}
    assert tasks[("A no_log loop that fails on an item", "web-02")]["status"] == "failed"
    assert tasks[("Use the vaulted value", "web-01")]["status"] == "ok"
    note = next(record for record in records if record["event"] == "note")
    assert note["data"] == {"token": "<redacted>", "derived": "<redacted>", "inline": "<redacted>", "pasted": "before <redacted> and <redacted> after"}
    # ... and appear nowhere: not in the log, its head, the output, or any file the run left (ansible home, temp)
    assert "fleetpatch.rollout.audit:" not in run.stdout  # no warning: every record written, the vaulted variables listed
    assert [needle for needle in needles if needle in run.stdout] == []
    left = [path for path in tmp_path.rglob("*") if path.is_file() and inputs not in path.parents]
    assert audited.log in left
    found = [(str(path), needle) for path in left for needle in needles if needle.encode() in path.read_bytes()]
    assert found == []
    assert verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")["ok"] is True


def secrets_token() -> str:
    """A value that cannot turn up by chance."""
    return os.urandom(12).hex()


def test_include_chooses_the_result_keys_kept(audited):
    inventory = audited.inventory("audited", ["web-01"])
    run = audited.run("audit_approval.yml", inventory, "-e", "fleetpatch_approved_by=alice", "-e", "fleetpatch_implemented_by=bob",
                      env={"FLEETPATCH_AUDIT_INCLUDE": "rc,stdout,start"})
    assert run.returncode == 0, run.stdout
    patch = next(record["data"] for record in audited.records() if record["event"] == "task" and record["data"]["task"] == "Patch")
    assert sorted(patch) == ["action", "changed", "play", "rc", "start", "status", "stdout", "task"]
    assert (patch["rc"], patch["stdout"]) == (0, "")


def test_records_are_written_in_groups_and_before_each_task_that_writes_itself(audited):
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    # groups of 4 at most, none written for its age: where each group starts is then known
    run = audited.run("audit_gate.yml", inventory, env={"FLEETPATCH_AUDIT_FLUSH_RECORDS": "4", "FLEETPATCH_AUDIT_FLUSH_SECONDS": "3600"})
    assert run.returncode == 0, run.stdout
    records = audited.records()
    assert verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")["ok"] is True
    assert [(record["event"], record["data"].get("task"), record.get("batch")) for record in records] == [
        ("run_start", None, 2), ("play_start", None, None),  # written when the play starts
        ("approval", None, None),  # by the worker, alone, durable before the play goes on
        ("task", "Approve", 4), ("task", "Patch the first wave", None), ("task", "Patch the first wave", None),
        ("task", "The audit log becomes unwritable", None),  # 4 waiting: written
        ("task", "The audit log becomes writable again", None),  # written before the gate's worker starts
        ("gate", None, None),
        ("task", "Gate after the first wave", 4), ("task", "Patch the second wave", None), ("task", "Patch the second wave", None),
        ("run_end", None, None),
    ]
    # each record's time is its event's, not its write's: the results of a task come before the next task's record
    assert [record["ts"] for record in records] == sorted(record["ts"] for record in records)


def test_values_under_secret_keys_are_redacted_with_the_configured_list(audited):
    planted = {"fp_password": f"PW-{secrets_token()}", "fp_api_key": f"AK-{secrets_token()}", "fp_pin": f"PIN-{secrets_token()}"}
    inventory = audited.inventory("audited", ["web-01"])
    run = audited.run("audit_redact.yml", inventory, "-e", json.dumps(planted))
    assert run.returncode == 0, run.stdout
    records = audited.records()
    result = next(record["data"]["msg"] for record in records if record["event"] == "task" and record["data"]["task"] == "A result that carries credentials")
    note = next(record["data"] for record in records if record["event"] == "note")
    assert result == {"user": "deploy", "db_password": "<redacted>", "endpoints": [{"name": "primary", "X-Api-Key": "<redacted>", "pin": planted["fp_pin"]}]}
    assert note == {"ticket": "CHG-1", "db_password": "<redacted>", "service": {"apiKey": "<redacted>", "pin": planted["fp_pin"]}}
    assert [name for name in ("fp_password", "fp_api_key") if planted[name] in audited.log.read_text(encoding="utf-8")] == []
    # the list is the callback's option, and the workers (audit_event) use the one it published
    audited.log.unlink()
    Path(f"{audited.log}.head").unlink()
    run = audited.run("audit_redact.yml", inventory, "-e", json.dumps(planted), env={"FLEETPATCH_AUDIT_REDACT_KEYS": "pin"})
    assert run.returncode == 0, run.stdout
    records = audited.records()
    result = next(record["data"]["msg"] for record in records if record["event"] == "task" and record["data"]["task"] == "A result that carries credentials")
    note = next(record["data"] for record in records if record["event"] == "note")
    assert result["endpoints"] == [{"name": "primary", "X-Api-Key": planted["fp_api_key"], "pin": "<redacted>"}]
    assert note["service"] == {"apiKey": planted["fp_api_key"], "pin": "<redacted>"}
    assert verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")["ok"] is True


def test_read_only_filesystems_are_named_and_a_head_failure_loses_no_record(audited, tmp_path):
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    with mounts.tmpfs(tmp_path / "ro") as mounted:
        mounted.read_only()
        head = mounted.directory / "audit.head"
        # only the head file cannot be written: the records are, and the warning says so
        run = audited.run("audit_plain.yml", inventory, env={"FLEETPATCH_AUDIT_HEAD_FILE": str(head)})
        assert run.returncode == 0, run.stdout
        warnings = [line for line in run.stdout.splitlines() if "fleetpatch.rollout.audit:" in line]
        assert len(warnings) == 1, run.stdout
        assert f"the head file {head} could not be updated: {mounted.directory} is on a read-only filesystem" in warnings[0]
        assert "No record was lost" in run.stdout and "not written" not in run.stdout
        records = audited.records()
        assert [record["event"] for record in records] == ["run_start", "play_start", "task", "task", "task", "task", "run_end"]
        assert records[-1]["data"]["records_dropped"] == 0
        assert verify(audited.log, key=read_key(audited.key_file))["ok"] is True
        # the log itself on a read-only filesystem: the rollout stops at its first record, naming the cause
        log = mounted.directory / "audit.jsonl"
        run = audited.run("audit_gate.yml", inventory, env={"FLEETPATCH_AUDIT_LOG": str(log)})
        assert run.returncode == 2, run.stdout
        cause = f"cannot open the audit log {log}: {mounted.directory} is on a read-only filesystem"
        assert f"fleetpatch.rollout.audit_event: the audit log cannot be written, so the rollout stops here: {cause}" in run.stdout
        assert f"record(s) not written, the audit trail is incomplete: {cause}" in run.stdout
        assert "TASK [Patch the first wave]" not in run.stdout


def test_an_interrupted_run_still_writes_the_records_it_kept_waiting(audited):
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    process = audited.start("audit_interrupted.yml", inventory, env={"FLEETPATCH_AUDIT_FLUSH_SECONDS": "3600"})
    output = []
    for line in process.stdout:  # the results of "Look" wait in the callback while "Wait long" runs
        output.append(line)
        if line.startswith("TASK [Wait long]"):
            break
    time.sleep(1)
    process.send_signal(signal.SIGINT)  # an operator's Ctrl-C
    output.append(process.communicate(timeout=60)[0])
    assert process.returncode != 0, "".join(output)
    records = audited.records()
    assert [(record["event"], record["data"].get("task"), record["host"]) for record in records[2:]] in (
        [("task", "Look", "web-01"), ("task", "Look", "web-02")], [("task", "Look", "web-02"), ("task", "Look", "web-01")])
    assert [record["event"] for record in records[:2]] == ["run_start", "play_start"]
    assert verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")["ok"] is True
