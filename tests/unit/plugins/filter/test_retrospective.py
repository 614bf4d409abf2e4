"""The retrospective filter: it reads the trail the fleet report was drawn from, and names itself in its errors."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.filter.retrospective import retrospective

MANIFEST = {"id": "FP-2025-14847", "title": "t", "detected_at": "2026-03-02T08:00:00Z"}


def test_the_trail_of_the_report_gives_the_canary_start(tmp_path):
    log = tmp_path / "audit.jsonl"
    records = [{"seq": 1, "event": "wave_start", "ts": "2026-03-02T09:00:00.5Z", "patch_id": "FP-2025-14847", "wave": "canary", "data": {}}]
    log.write_text("".join(json.dumps(record) + "\n" for record in records) + '{"torn', encoding="utf-8")
    retro = retrospective({"history": {"source": str(log), "points": []}}, MANIFEST)
    assert [(m["name"], m["at"]) for m in retro["milestones"] if m["at"]] == [("detection", "2026-03-02T08:00:00Z"), ("canary start", "2026-03-02T09:00:00Z")]
    assert "| canary start | 2026-03-02T09:00:00Z | 1h | wave_start record seq 1 |" in retro["markdown"]


def test_a_report_without_a_trail_still_gives_the_detection():
    retro = retrospective({"history": {"source": None, "points": []}}, MANIFEST, published="2026-03-02T10:00:00+00:00")
    assert [(m["name"], m["since_detection"]) for m in retro["milestones"] if m["at"]] == [("detection", "0s"), ("publication", "2h")]


@pytest.mark.parametrize(("report", "kwargs", "message"), [
    ({"history": {"source": "/nonexistent/audit.jsonl"}}, {}, "fleetpatch.rollout.retrospective: audit log /nonexistent/audit.jsonl: cannot be read"),
    ({}, {"published": "later"}, "fleetpatch.rollout.retrospective: published: 'later'"),
])
def test_errors_name_the_filter(report, kwargs, message):
    with pytest.raises(AnsibleFilterError) as raised:
        retrospective(report, MANIFEST, **kwargs)
    assert str(raised.value).startswith(message)
