"""The fleetpatch.rollout.audit_verify lookup in a real play: an intact log, a tampered one, and one that is missing."""

from __future__ import annotations

import json

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditLog, read_key


def _run_lookup(audited, tmp_path, logs):
    inventory = audited.inventory("local", ["localhost"])
    report = tmp_path / "report.json"
    extra = {"fp_logs": [str(log) for log in logs], "fp_key_file": str(audited.key_file), "fp_report": str(report)}
    run = audited.run("audit_verify.yml", inventory, "-e", json.dumps(extra), env={"ANSIBLE_CALLBACKS_ENABLED": None})
    return run, report


def test_lookup_reports_intact_and_tampered_logs(audited, tmp_path):
    key = read_key(audited.key_file)
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    for path in (good, bad):
        writer = AuditLog(path, key=key)
        for number in range(4):
            writer.append({"event": "task", "host": f"h{number}"})
    lines = bad.read_bytes().splitlines(keepends=True)
    bad.write_bytes(lines[0] + lines[2] + lines[1] + lines[3])
    run, report = _run_lookup(audited, tmp_path, [good, bad])
    assert run.returncode == 0, run.stdout
    results = json.loads(report.read_text(encoding="utf-8"))
    assert [(result["path"], result["ok"], result["records"]) for result in results] == [(str(good), True, 4), (str(bad), False, 4)]
    assert results[1]["problems"] == [{"kind": "reordered", "line": 2, "seq": 3, "message": "line 2 holds seq 3 where seq 2 belongs"}]
    assert (results[0]["hmac_checked"], results[0]["head_checked"]) == (True, True)


def test_lookup_fails_on_a_missing_log(audited, tmp_path):
    missing = tmp_path / "missing.jsonl"
    run, report = _run_lookup(audited, tmp_path, [missing])
    assert run.returncode == 2
    assert f"fleetpatch.rollout.audit_verify: cannot read the audit log {missing}: No such file or directory" in run.stdout
    assert not report.exists()
