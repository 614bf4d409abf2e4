"""Deferrals in the state file."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._defer import record_deferral
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError


def params(tmp_path, **changes):
    return {"patch_id": "FP-2025-14847", "reason": "outside maintenance window", "deferred_until": "2026-11-24T01:00:00Z",
            "state_file": str(tmp_path / "state.json"), **changes}


def deferred(tmp_path):
    path = tmp_path / "state.json"
    return json.loads(path.read_text(encoding="utf-8"))["deferred"] if path.exists() else None


def test_four_runs_then_a_new_decision_replaces_the_old(tmp_path):
    for check, changed in ((True, True), (False, True), (True, False), (False, False)):
        assert record_deferral(params(tmp_path), None, check)["changed"] is changed, check
    (entry,) = deferred(tmp_path)
    expected = {"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-11-24T01:00:00Z"}
    assert {k: entry[k] for k in ("patch", "reason", "until")} == expected
    later = params(tmp_path, deferred_until="2026-11-26T01:00:00Z")
    assert record_deferral(later, None, False)["changed"] is True
    assert [e["until"] for e in deferred(tmp_path)] == ["2026-11-26T01:00:00Z"]
    other = params(tmp_path, patch_id="FP-2026-00001")
    record_deferral(other, None, False)
    assert [e["patch"] for e in deferred(tmp_path)] == ["FP-2025-14847", "FP-2026-00001"]


def test_a_deferral_needs_a_reason(tmp_path):
    with pytest.raises(PatchError) as caught:
        record_deferral(params(tmp_path, reason="  "), None, False)
    assert str(caught.value) == "reason: a deferral needs a reason, for example 'outside maintenance window'"
    assert deferred(tmp_path) is None


DAMAGED = b'{"format": 1, "deferred": [{"patch": "FP-2025-14847", "reason": "outside maintenance window"}]}'


def test_a_damaged_state_file_is_refused_and_kept(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(DAMAGED)
    for check in (True, False):
        with pytest.raises(PatchError) as caught:
            record_deferral(params(tmp_path), None, check)
        assert str(caught.value) == (f"state file {path}: 2 problems: deferred[0].until is missing; deferred[0].at is missing; "
                                     "the file is left as it is (damaged_state=move_aside moves it aside and starts afresh)")
    assert path.read_bytes() == DAMAGED
    assert sorted(os.listdir(tmp_path)) == ["state.json"]


def test_move_aside_then_record(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(DAMAGED)
    error = f"state file {path}: 2 problems: deferred[0].until is missing; deferred[0].at is missing"
    checked = record_deferral(params(tmp_path, damaged_state="move_aside"), None, True)
    assert (checked["changed"], checked["state_error"], "state_moved_to" in checked) == (True, error, False)
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    result = record_deferral(params(tmp_path, damaged_state="move_aside"), None, False)
    (aside,) = [name for name in os.listdir(tmp_path) if name != "state.json"]
    assert (result["changed"], result["state_error"], result["state_moved_to"]) == (True, error, str(tmp_path / aside))
    assert (tmp_path / aside).read_bytes() == DAMAGED
    assert [entry["until"] for entry in deferred(tmp_path)] == ["2026-11-24T01:00:00Z"]
