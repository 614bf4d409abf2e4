"""fleetpatch.rollout.audit_event in real runs: the two-person rule at preflight, and a rollout stopping at the gate
after its audit sink failed."""

from __future__ import annotations

import json
import subprocess

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import read_key, verify

MODULE = "fleetpatch.rollout.audit_event"


def _verified(audited):
    result = verify(audited.log, key=read_key(audited.key_file), head=f"{audited.log}.head")
    assert (result["ok"], result["problems"]) == (True, [])
    return audited.records()


@pytest.mark.parametrize(
    ("extra", "approval"),
    [
        ({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob"},
         {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": True}),
        ({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": " Alice", "fleetpatch_urgency": "emergency",
          "fleetpatch_justification": "exploited in the wild, nobody else on call"},
         {"approved_by": "alice", "implemented_by": "Alice", "urgency": "emergency", "two_person": False,
          "justification": "exploited in the wild, nobody else on call"}),
        # Under AWX the implementer is the user who launched the job, and the approval names the job and its workflow.
        ({"fleetpatch_approved_by": "alice", "awx_user_name": "bob", "awx_job_id": 812, "awx_workflow_job_id": 811},
         {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": True,
          "platform": {"user": "bob", "job_id": 812, "workflow_job_id": 811}}),
    ],
    ids=["two-people", "emergency-justified", "awx-launcher-implements"],
)
def test_preflight_accepts_and_records(audited, extra, approval):
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    run = audited.run("audit_approval.yml", inventory, "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout
    records = _verified(audited)
    recorded = [record for record in records if record["event"] == "approval"]
    assert [record["data"] for record in recorded] == [{"approval": approval}]
    assert recorded[0]["actors"]["approved_by"] == approval["approved_by"]
    assert [record["host"] for record in records if record["event"] == "task" and record["data"]["task"] == "Patch"] in (
        ["web-01", "web-02"], ["web-02", "web-01"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "ALICE "},
         "approved_by 'alice' and implemented_by 'ALICE ' are the same person: the two-person rule needs someone else to approve a patch of "
         "urgency 'routine'"),
        ({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "alice", "fleetpatch_urgency": "emergency"},
         "approved_by 'alice' and implemented_by 'alice' are the same person: an emergency patch may skip the two-person rule only with a "
         "written justification, got None"),
        ({"fleetpatch_implemented_by": "bob"}, "approved_by is required: name the person"),
        ({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "mallory", "awx_user_name": "bob"},
         "implemented_by 'mallory' is not the AWX user 'bob' who launched this job: under AWX the implementer is whoever launched the job; "
         "leave implemented_by out, or let 'mallory' launch it"),
        ({"fleetpatch_approved_by": "bob", "awx_user_name": "Bob"},
         "approved_by 'bob' and implemented_by 'Bob' are the same person: the two-person rule needs someone else to approve a patch of "
         "urgency 'routine'"),
    ],
    ids=["same-person", "emergency-without-justification", "no-approver", "awx-implementer-differs", "awx-launcher-approves"],
)
def test_preflight_refuses_records_the_refusal_and_changes_nothing(audited, extra, message):
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    run = audited.run("audit_approval.yml", inventory, "-e", json.dumps(extra))
    assert run.returncode == 2, run.stdout
    assert f"{MODULE}: approval refused: {message}" in run.stdout
    assert "TASK [Patch]" not in run.stdout
    records = _verified(audited)
    refusals = [record for record in records if record["event"] == "approval"]
    assert [record["data"]["refused"] for record in refusals] == [message]
    assert [record["data"]["status"] for record in records if record["event"] == "task"] == ["failed"]


def test_without_the_callback_the_event_fails(audited):
    inventory = audited.inventory("audited", ["web-01"])
    run = audited.run("audit_approval.yml", inventory, "-e", "fleetpatch_approved_by=alice", "-e", "fleetpatch_implemented_by=bob",
                      env={"ANSIBLE_CALLBACKS_ENABLED": None})
    assert run.returncode == 2, run.stdout
    assert (f"{MODULE}: the audit callback fleetpatch.rollout.audit is not enabled in this run, so there is no audit trail to add to: "
            "enable it (callbacks_enabled, or ANSIBLE_CALLBACKS_ENABLED=fleetpatch.rollout.audit)") in run.stdout
    assert "TASK [Patch]" not in run.stdout
    assert not audited.log.exists()


@pytest.fixture
def immutable(audited):
    """Undo ``chattr +i`` on the log, whatever the test did."""
    yield
    if audited.log.exists():
        subprocess.run(["chattr", "-i", str(audited.log)], check=False)


def test_immutable_log_stops_the_rollout_at_the_next_gate(audited, immutable):
    del immutable
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    # the task records wait to be written in a group (none for its age here): the group fails at the gate's start
    run = audited.run("audit_gate.yml", inventory, "-e", f"fp_break_audit='chattr +i {audited.log}'", env={"FLEETPATCH_AUDIT_FLUSH_SECONDS": "3600"})
    assert run.returncode == 2, run.stdout
    assert (f"{MODULE}: the audit log cannot be written, so the rollout stops here: cannot open the audit log {audited.log}: "
            "Operation not permitted") in run.stdout
    # Approve, the first wave on 2 hosts, the step that broke the log, the skipped one that would mend it
    assert (f"fleetpatch.rollout.audit: 5 record(s) not written, the audit trail is incomplete: cannot open the audit log {audited.log}: "
            "Operation not permitted") in run.stdout
    assert "TASK [Patch the second wave]" not in run.stdout
    subprocess.run(["chattr", "-i", str(audited.log)], check=True)
    records = _verified(audited)
    # every record written by an audit_event is there, and what came before it: the log ends with the approval
    assert [record["event"] for record in records] == ["run_start", "play_start", "approval"]


def test_a_record_lost_earlier_stops_the_rollout_at_the_next_gate(audited, immutable):
    del immutable
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    # each record written at once, so the one of the step that breaks the log is lost while it is broken
    run = audited.run("audit_gate.yml", inventory, "-e", f"fp_break_audit='chattr +i {audited.log}'", "-e", f"fp_mend_audit='chattr -i {audited.log}'",
                      env={"FLEETPATCH_AUDIT_FLUSH_RECORDS": "1"})
    assert run.returncode == 2, run.stdout
    assert (f"{MODULE}: the audit callback could not write 1 record(s) of this run, so its audit trail is incomplete and the rollout stops "
            f"here (last error: cannot open the audit log {audited.log}: Operation not permitted)") in run.stdout
    assert "TASK [Patch the second wave]" not in run.stdout
    records = _verified(audited)
    tasks = [record["data"]["task"] for record in records if record["event"] == "task"]
    assert "The audit log becomes unwritable" not in tasks  # the record the callback could not write
    assert tasks[-2:] == ["The audit log becomes writable again", "Gate after the first wave"]
    assert [record["event"] for record in records].count("gate") == 1  # the gate's own record was written, then it failed


def test_a_log_that_is_a_directory_stops_the_rollout_before_anything_changes(audited):
    audited.log.mkdir(parents=True)
    inventory = audited.inventory("audited", ["web-01", "web-02"])
    run = audited.run("audit_gate.yml", inventory)
    assert run.returncode == 2, run.stdout
    assert f"{MODULE}: the audit log cannot be written, so the rollout stops here: cannot open the audit log {audited.log}: Is a directory" in run.stdout
    assert "TASK [Patch the first wave]" not in run.stdout


def test_check_mode_records_too_and_says_so(audited):
    inventory = audited.inventory("audited", ["web-01"])
    run = audited.run("audit_approval.yml", inventory, "--check", "-e", json.dumps({"fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob"}))
    assert run.returncode == 0, run.stdout
    records = _verified(audited)
    approval = next(record for record in records if record["event"] == "approval")
    assert approval["data"] == {"approval": {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": True}, "check_mode": True}
    assert [record["data"]["status"] for record in records if record["event"] == "task"] == ["ok", "skipped"]  # command skips in check mode
