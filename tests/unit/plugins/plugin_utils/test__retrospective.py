"""The retrospective: milestones from the manifest, the ledger, the trail and the report's history; the decisions."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._retrospective import RetrospectiveError, render_markdown, retrospective

PATCH = "FP-2025-14847"
MANIFEST = {"id": PATCH, "title": "fpdemo: a leak", "severity": "high", "urgency": "urgent", "fixed_version": "7.0.28",
            "detected_at": "2026-03-02T08:00:00Z"}


def rec(seq, event, ts, patch=PATCH, wave=None, **data):
    return {"seq": seq, "event": event, "ts": ts, "patch_id": patch, "wave": wave, "host": None, "data": data}


RECORDS = [
    rec(1, "notification", "2026-03-02T10:00:05Z", customer="globex", status="failed"),
    rec(2, "notification", "2026-03-02T10:00:09Z", customer="acme", status="sent", notified_at="2026-03-02T10:00:07Z"),
    rec(3, "approval", "2026-03-03T01:30:00Z", approval={"approved_by": "alice", "implemented_by": "bob", "urgency": "urgent", "two_person": True,
                                                         "platform": {"user": "bob", "job_id": 812}}),
    rec(4, "plan", "2026-03-03T01:30:02Z", plan={}, overrides=[{"host": "euw-01", "customer": "acme", "reason": "urgent", "detail": "told 15h before"}],
        deferred=[{"host": "use-02", "customer": "stark", "detail": "told too late", "next_window": "2026-03-07T01:00:00Z"}]),
    rec(5, "wave_start", "2026-03-03T01:31:00Z", wave="canary"),
    rec(6, "wave_start", "2026-03-03T01:35:00Z", wave="eu-west"),
    rec(7, "gate", "2026-03-03T01:40:00Z", wave="eu-west", gate="after eu-west", decision="halt", error_budget=0,
        failures=[{"host": "euw-02", "status": "rolled back"}]),
    rec(8, "rollback", "2026-03-03T01:41:00Z", wave="eu-west", hosts=["euw-02", "euw-03"]),
    rec(9, "wave_start", "2026-03-03T01:50:00Z", patch="FP-2025-00001", wave="canary"),  # another patch's
    rec(10, "plan", "2026-03-03T01:55:00Z", check_mode=True, overrides=[{"host": "x"}]),  # a dry run decides nothing
]
REPORT = {"history": {"points": [
    {"at": "2026-03-03T01:30:02Z", "patched": 0, "share": 0.0},
    {"at": "2026-03-03T01:32:00Z", "patched": 2, "share": 50.0},
    {"at": "2026-03-03T01:36:00Z", "patched": 3, "share": 75.0},
    {"at": "2026-03-03T01:38:00Z", "patched": 4, "share": 100.0},
]}}


def test_the_milestones_come_from_the_manifest_the_ledger_the_trail_and_the_history():
    ledger = {"notifications": [
        {"customer": "acme", "patch_id": PATCH, "notified_at": "2026-03-02T10:00:07Z", "channel": "email", "by": "noc"},
        {"customer": "hooli", "patch_id": "FP-2025-00001", "notified_at": "2026-01-01T00:00:00Z", "channel": "email", "by": "noc"},
    ]}
    retro = retrospective(MANIFEST, RECORDS, report=REPORT, ledger=ledger, published="2026-03-03T09:00:00Z")
    assert [(m["name"], m["at"], m["since_detection"]) for m in retro["milestones"]] == [
        ("detection", "2026-03-02T08:00:00Z", "0s"),
        ("first notice", "2026-03-02T10:00:07Z", "2h7s"),
        ("canary start", "2026-03-03T01:31:00Z", "17h31m"),
        ("majority patched", "2026-03-03T01:36:00Z", "17h36m"),  # 50 % is not more than half
        ("whole fleet", "2026-03-03T01:38:00Z", "17h38m"),
        ("publication", "2026-03-03T09:00:00Z", "1d1h"),
    ]
    assert retro["milestones"][2]["source"] == "wave_start record seq 5"


def test_without_a_ledger_the_first_notice_is_the_trails_first_sent_notification_and_missing_milestones_are_not_reached():
    retro = retrospective(MANIFEST, RECORDS[:4], report={"history": {"points": [{"at": "2026-03-03T01:30:02Z", "patched": 0, "share": 0.0}]}})
    found = {m["name"]: (m["at"], m["source"]) for m in retro["milestones"]}
    assert found["first notice"] == ("2026-03-02T10:00:07Z", "the audit trail's notification records")
    assert [name for name, (at, _source) in found.items() if at is None] == ["canary start", "majority patched", "whole fleet", "publication"]
    assert "| whole fleet | not reached | - | - |" in render_markdown(retro)


def test_the_decisions_in_the_order_of_the_trail():
    retro = retrospective(MANIFEST, RECORDS, report=REPORT)
    assert [(d["kind"], d["what"]) for d in retro["decisions"]] == [
        ("approval", "rollout: approved by alice, implemented by bob (urgent); AWX job job_id 812, user bob"),
        ("window overridden", "euw-01 (customer acme)"),
        ("deferred", "use-02 (customer stark)"),
        ("gate halted", "after eu-west"),
        ("rolled back", "euw-02, euw-03"),
    ]
    assert retro["decisions"][2]["why"] == "told too late; next window 2026-03-07T01:00:00Z"
    assert retro["decisions"][3]["why"] == "error budget 0 exceeded: euw-02 rolled back"
    assert retro["decisions"][4]["why"] == "the wave eu-west halted at its gate"


def test_a_refused_approval_and_a_fleet_wide_rollback_are_decisions_too():
    records = [rec(1, "approval", "2026-03-03T02:00:00Z", operation="rollback", refused="the same person",
                   approval={"approved_by": "bob", "implemented_by": "bob", "urgency": "routine"}),
               rec(2, "rollback", "2026-03-03T02:05:00Z", hosts=["a"], round=1)]
    assert [(d["kind"], d["what"], d["why"]) for d in retrospective(MANIFEST, records)["decisions"]] == [
        ("approval refused", "rollback: approved by bob, implemented by bob (routine)", "the same person"),
        ("rolled back", "a", "a fleet-wide rollback, round 1"),
    ]


def test_the_markdown_has_the_timeline_and_the_decisions():
    text = render_markdown(retrospective(MANIFEST, RECORDS, report=REPORT, published="2026-03-03T09:00:00Z"))
    assert text.startswith("# Retrospective: FP-2025-14847\n\nfpdemo: a leak\n")
    assert "| canary start | 2026-03-03T01:31:00Z | 17h31m | wave_start record seq 5 |" in text
    assert "| 2026-03-03T01:30:02Z | deferred | use-02 (customer stark) | told too late; next window 2026-03-07T01:00:00Z |" in text
    assert "No decision" in render_markdown(retrospective(MANIFEST, []))


@pytest.mark.parametrize(("args", "message"), [
    (({"id": PATCH, "detected_at": "yesterday"}, []), "manifest.detected_at: 'yesterday'"),
    (({"title": "no id"}, []), "manifest: expected a checked change record with an id, got dict"),
    ((MANIFEST, {"records": []}), "records: expected the audit trail's records as a list, got dict"),
])
def test_bad_input_is_named(args, message):
    with pytest.raises(RetrospectiveError) as raised:
        retrospective(*args)
    assert message in str(raised.value)


def test_a_bad_publication_time_is_named():
    with pytest.raises(RetrospectiveError) as raised:
        retrospective(MANIFEST, [], published="soon")
    assert "published: 'soon'" in str(raised.value)
