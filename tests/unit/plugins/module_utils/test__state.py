"""The host's state file: durable atomic writes, tolerant reads of an absent file, clear errors otherwise."""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import (
    durable_write,
    empty_state,
    fsync_dir,
    load_state,
    save_state,
    utc_now,
)


def test_absent_file_is_the_empty_state(tmp_path):
    assert load_state(str(tmp_path / "none.json")) == {
        "format": 1, "components": {}, "applied": [], "deferred": [], "rollbacks": [], "journal": None,
    }


def test_round_trip_creates_the_directory_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "var/lib/fleetpatch/state.json"
    state = empty_state()
    state["components"]["fpdemo"] = {"version": "7.0.28", "previous": "7.0.26"}
    save_state(str(path), state)
    assert load_state(str(path)) == state
    assert os.listdir(path.parent) == ["state.json"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_older_files_gain_new_keys(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format": 1, "components": {}, "applied": [], "deferred": [], "journal": None}), encoding="utf-8")
    assert load_state(str(path))["rollbacks"] == []


def test_unwritable_state_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(PatchError, match=r"state file .*/file/state\.json cannot be written"):
        save_state(str(blocker / "state.json"), empty_state())


def test_durable_write_replaces_whole_files(tmp_path):
    path = tmp_path / "f"
    durable_write(str(path), b"old")
    durable_write(str(path), b"new", mode=0o644)
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o644
    fsync_dir(str(tmp_path))


def test_utc_now_is_rfc3339_zulu():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())
