"""The host's state file: its whole shape checked on every read, every damage named, damaged files never
overwritten, durable atomic writes, and a run that changes nothing leaves the file as it found it."""

from __future__ import annotations

import datetime
import json
import os
import re

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import (
    StateDamaged,
    StateFile,
    durable_write,
    empty_state,
    fsync_dir,
    load_state,
    save_state,
    state_problems,
    utc_now,
    with_state_file,
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


# --- the shape ------------------------------------------------------------------------------------------------------

AT = "2026-11-22T03:10:00Z"
JOURNAL = {"op": "apply", "patch": "FP-2025-14847", "component": "fpdemo", "class": "hot", "from": "7.0.26", "to": "7.0.28",
           "step": "switched", "started": AT}


def full_state():
    """A state with every kind of record, every optional field included."""
    return {
        "format": 1,
        "components": {"fpdemo": {"version": "7.0.26", "previous": None, "rolled_back_from": "7.0.28"},
                       "other.db": {"version": "1.1", "previous": "1.0"}},
        "applied": [{"patch": "FP-2025-14847", "component": "fpdemo", "version": "7.0.28", "from": "7.0.26", "at": AT},
                    {"patch": "FP-1", "component": "other.db", "version": "1.1", "at": AT}],
        "deferred": [{"patch": "FP-2", "reason": "outside maintenance window", "until": None, "at": AT}],
        "rollbacks": [{"patch": "FP-2025-14847", "component": "fpdemo", "from": "7.0.28", "to": "7.0.26", "at": AT},
                      {"patch": None, "component": "fpdemo", "from": "7.0.27", "to": "7.0.26", "at": AT}],
        "journal": {**JOURNAL, "owner": "run-1"},
        "lease": {"owner": "run-1", "holder": "alice@controller", "patch": "FP-2025-14847", "since": AT, "job": "42", "controller": None},
    }


@pytest.mark.parametrize("state", [
    full_state(),
    {**full_state(), "journal": {**JOURNAL, "step": None, "owner": None}, "lease": None},
    {**full_state(), "journal": {**JOURNAL, "op": "rollback", "patch": None, "class": "restart"}},
    {**full_state(), "lease": {"owner": "run-1", "holder": "bob", "patch": "FP-1", "since": AT}},
    {**full_state(), "lease": {"owner": "run-1", "holder": None, "patch": None, "since": AT}},  # a lock taken outside a rollout
    {"format": 1, "components": {}, "applied": [], "deferred": [], "journal": None},  # before rollbacks were recorded
    {"format": 1},
], ids=["everything", "nulls", "rollback-journal", "lease-without-options", "lease-unnamed", "older-file", "format-only"])
def test_every_shape_fleetpatch_writes_is_accepted(state):
    assert state_problems(state) == []


def changed(**changes):
    """full_state() with top-level keys replaced (a value of ... removes the key)."""
    state = full_state()
    for key, value in changes.items():
        if value is ...:
            del state[key]
        else:
            state[key] = value
    return state


def record(key, index_or_name, **changes):
    """full_state() with one record's fields replaced (a value of ... removes the field)."""
    state = full_state()
    entry = state[key][index_or_name] if index_or_name is not None else state[key]
    for field, value in changes.items():
        if value is ...:
            del entry[field]
        else:
            entry[field] = value
    return state


@pytest.mark.parametrize(("data", "problems"), [
    # the whole file
    ([], ["is not a JSON object: it holds an array"]),
    ("state", ["is not a JSON object: it holds a string"]),
    (None, ["is not a JSON object: it holds null"]),
    (1, ["is not a JSON object: it holds a number"]),
    (True, ["is not a JSON object: it holds a boolean"]),
    ({}, ["has no format field"]),
    ({"components": {}}, ["has no format field"]),
    ({"format": 2, "anything": 1}, ["has format 2; this fleetpatch reads format 1"]),
    ({"format": 0}, ["has format 0; this fleetpatch reads format 1"]),
    ({"format": "1"}, ['has format "1", expected the number 1']),
    ({"format": 1.0}, ["has format 1.0, expected the number 1"]),
    ({"format": True}, ["has format true, expected the number 1"]),
    ({"format": None}, ["has format null, expected the number 1"]),
    # the containers
    (changed(components=[]), ["components is [], expected an object"]),
    (changed(applied={}), ["applied is {}, expected an array"]),
    (changed(deferred=None), ["deferred is null, expected an array"]),
    (changed(rollbacks="none"), ['rollbacks is "none", expected an array']),
    (changed(journal=[]), ["journal is [], expected an object"]),
    (changed(lease="alice"), ['lease is "alice", expected an object']),
    (changed(locks={}), ["locks is not a field this fleetpatch knows"]),
    (changed(**{"my key": 1}), ['"my key" is not a field this fleetpatch knows']),
    # components
    (record("components", "fpdemo", version=5), ["components.fpdemo.version is 5, expected a string"]),
    (record("components", "fpdemo", previous=...), ["components.fpdemo.previous is missing"]),
    (record("components", "fpdemo", previous=7), ["components.fpdemo.previous is 7, expected a string or null"]),
    (record("components", "fpdemo", rolled_back_from=None), ["components.fpdemo.rolled_back_from is null, expected a string"]),
    (record("components", "other.db", version=None), ['components["other.db"].version is null, expected a string']),
    (record("components", "fpdemo", pinned=True), ["components.fpdemo.pinned is not a field this fleetpatch knows"]),
    (changed(components={"fpdemo": "7.0.28"}), ['components.fpdemo is "7.0.28", expected an object']),
    # applied, deferred, rollbacks
    (changed(applied=["FP-1"]), ['applied[0] is "FP-1", expected an object']),
    (record("applied", 0, at=...), ["applied[0].at is missing"]),
    (record("applied", 1, patch=None), ["applied[1].patch is null, expected a string"]),
    (record("applied", 0, **{"from": None}), ["applied[0].from is null, expected a string"]),
    (record("applied", 0, component=["fpdemo"]), ['applied[0].component is ["fpdemo"], expected a string']),
    (record("deferred", 0, until=5), ["deferred[0].until is 5, expected a string or null"]),
    (record("deferred", 0, reason=...), ["deferred[0].reason is missing"]),
    (record("rollbacks", 0, to=None), ["rollbacks[0].to is null, expected a string"]),
    (record("rollbacks", 1, patch=1), ["rollbacks[1].patch is 1, expected a string or null"]),
    # the journal
    (record("journal", None, op="upgrade"), ['journal.op is "upgrade", expected one of "apply", "rollback"']),
    (record("journal", None, **{"class": "reboot"}), ['journal.class is "reboot", expected one of "hot", "restart"']),
    (record("journal", None, step="halfway"),
     ['journal.step is "halfway", expected one of "journaled", "unpacked", "switched", "activated", "confirmed" or null']),
    (record("journal", None, **{"from": None}), ["journal.from is null, expected a string"]),
    (record("journal", None, started=...), ["journal.started is missing"]),
    (record("journal", None, owner=5), ["journal.owner is 5, expected a string or null"]),
    # the lease
    (changed(lease={"owner": "run-1"}), ["lease.holder is missing", "lease.patch is missing", "lease.since is missing"]),
    (record("lease", None, job=42), ["lease.job is 42, expected a string or null"]),
    (record("lease", None, controller=False), ["lease.controller is false, expected a string or null"]),
    # long values are cut short
    (record("components", "fpdemo", version=["x" * 100]), [f'components.fpdemo.version is ["{"x" * 55}..., expected a string']),
    # several problems at once, in the file's order
    ({"format": 1, "components": {"fpdemo": {"version": 5}}, "journal": {**JOURNAL, "op": None}, "extra": 1},
     ["components.fpdemo.version is 5, expected a string", "components.fpdemo.previous is missing",
      'journal.op is null, expected one of "apply", "rollback"', "extra is not a field this fleetpatch knows"]),
])
def test_each_kind_of_damage_is_named(data, problems):
    assert state_problems(data) == problems


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "state file {path} is empty, not JSON"),
    (b"  \n", "state file {path} is empty, not JSON"),
    (b"{broken", "state file {path} is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b'{"format": 1}\n{"format": 1}', "state file {path} is not JSON: Extra data: line 2 column 1 (char 14)"),
    (b'{"format": 1, "journal": "\xff"}', "state file {path} is not JSON: byte 0xff at offset 26 is not UTF-8"),
    (b"[1, 2]", "state file {path} is not a JSON object: it holds an array"),
    (b'{"components": {}}', "state file {path} has no format field"),
    (b'{"format": 2, "components": []}', "state file {path} has format 2; this fleetpatch reads format 1"),
    (b'{"format": "one"}', 'state file {path} has format "one", expected the number 1'),
    (b'{"format": 1, "components": {"fpdemo": {"version": 5, "previous": null}}}',
     "state file {path}: components.fpdemo.version is 5, expected a string"),
    (b'{"format": 1, "applied": [{}], "extra": true}',
     "state file {path}: 5 problems: applied[0].patch is missing; applied[0].component is missing; applied[0].version is missing; "
     "applied[0].at is missing; extra is not a field this fleetpatch knows"),
    (b'{"format": 2, "format": 1}', 'state file {path}: the top level has the key "format" more than once'),
    (b'{"format": 1, "components": {"a": {"version": "1", "previous": null, "version": "2"}}}',
     'state file {path}: components.a has the key "version" more than once'),
])
def test_load_names_the_file_and_the_damage(tmp_path, raw, message):
    path = tmp_path / "state.json"
    path.write_bytes(raw)
    with pytest.raises(StateDamaged) as caught:
        load_state(str(path))
    assert str(caught.value) == message.format(path=path)
    assert caught.value.details["state_file"] == str(path)
    assert path.read_bytes() == raw


def test_an_unreadable_file_is_not_damage(tmp_path):
    (tmp_path / "state.json").mkdir()
    with pytest.raises(PatchError) as caught:
        StateFile(str(tmp_path / "state.json"), "move_aside")
    assert not isinstance(caught.value, StateDamaged)
    assert str(caught.value) == f"state file {tmp_path}/state.json cannot be read: Is a directory"
    assert os.listdir(tmp_path) == ["state.json"]


# --- StateFile: never overwrite damage, move it aside only when asked and only to write -------------------------

DAMAGED = b'{"format": 1, "components": {"fpdemo": {"version": 5, "previous": null}}}'
PROBLEM = "components.fpdemo.version is 5, expected a string"


def aside_names(tmp_path):
    return sorted(name for name in os.listdir(tmp_path) if name.startswith("state.json.damaged-"))


def test_refuse_names_the_damage_and_leaves_the_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(DAMAGED)
    with pytest.raises(StateDamaged) as caught:
        StateFile(str(path))
    assert str(caught.value) == (f"state file {path}: {PROBLEM}; the file is left as it is "
                                 "(damaged_state=move_aside moves it aside and starts afresh)")
    assert caught.value.details == {"state_file": str(path), "state_problems": [PROBLEM]}
    assert path.read_bytes() == DAMAGED
    assert os.listdir(tmp_path) == ["state.json"]


def test_move_aside_moves_only_when_it_writes(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(DAMAGED)
    store = StateFile(str(path), "move_aside")
    assert store.state == empty_state()
    assert store.outcome() == {"state_error": f"state file {path}: {PROBLEM}"}
    store.save()  # nothing changed: nothing written, nothing moved
    assert os.listdir(tmp_path) == ["state.json"]

    store.state["deferred"].append({"patch": "FP-1", "reason": "r", "until": None, "at": AT})
    store.save()
    (aside,) = aside_names(tmp_path)
    assert re.fullmatch(r"state\.json\.damaged-\d{8}T\d{6}Z", aside)
    assert (tmp_path / aside).read_bytes() == DAMAGED
    assert load_state(str(path))["deferred"] == store.state["deferred"]
    assert store.outcome() == {"state_error": f"state file {path}: {PROBLEM}", "state_moved_to": str(tmp_path / aside), "changed": True}

    # Back to the state it started from (an operation refused after its first write): no state file, the evidence kept.
    store.state["deferred"] = []
    store.save()
    assert os.listdir(tmp_path) == [aside]


def test_move_aside_never_replaces_an_earlier_damaged_file(tmp_path):
    path = tmp_path / "state.json"
    now = datetime.datetime.now(datetime.timezone.utc)
    taken = [f"{path}.damaged-{(now + datetime.timedelta(seconds=delta)):%Y%m%dT%H%M%SZ}" for delta in range(3)]
    for name in taken:
        with open(name, "wb") as handle:
            handle.write(b"earlier")
    path.write_bytes(DAMAGED)
    store = StateFile(str(path), "move_aside")
    store.state["components"]["fpdemo"] = {"version": "7.0.28", "previous": "7.0.26"}
    store.save()
    assert store.moved_to in [f"{name}.1" for name in taken]
    assert open(store.moved_to, "rb").read() == DAMAGED
    assert all(open(name, "rb").read() == b"earlier" for name in taken)


def test_a_file_changed_by_someone_else_is_not_moved(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(DAMAGED)
    store = StateFile(str(path), "move_aside")
    path.write_bytes(b"{}")
    store.state["components"]["fpdemo"] = {"version": "7.0.28", "previous": "7.0.26"}
    with pytest.raises(PatchError) as caught:
        store.save()
    assert str(caught.value) == f"state file {path} changed while this run read it; it is left as it is"
    assert os.listdir(tmp_path) == ["state.json"]
    assert path.read_bytes() == b"{}"


@pytest.mark.parametrize("existing", [None, b'{"format": 1, "applied": []}\n'])
def test_returning_to_the_state_read_puts_the_file_back_as_found(tmp_path, existing):
    path = tmp_path / "state.json"
    if existing is not None:
        path.write_bytes(existing)
        path.chmod(0o640)
    store = StateFile(str(path))
    store.state["journal"] = dict(JOURNAL)
    store.save()
    assert load_state(str(path))["journal"] == JOURNAL
    store.state["journal"] = None
    store.save()
    assert (path.read_bytes() if path.exists() else None) == existing
    assert existing is None or path.stat().st_mode & 0o777 == 0o640
    assert [name for name in os.listdir(tmp_path) if name != "state.json"] == []


def test_damaged_state_must_be_a_known_choice(tmp_path):
    with pytest.raises(PatchError) as caught:
        StateFile(str(tmp_path / "state.json"), "ignore")
    assert str(caught.value) == "damaged_state: 'ignore' is not one of refuse, move_aside"


def test_with_state_file_reports_the_damage_in_results_and_failures(tmp_path):
    path = tmp_path / "state.json"

    @with_state_file
    def operation(store, params, host, check_mode):
        if params["fail"]:
            store.state["journal"] = dict(JOURNAL)
            store.save()
            raise PatchError("refused", reason="test")
        return {"changed": False}

    path.write_bytes(DAMAGED)
    assert operation({"state_file": str(path), "damaged_state": "move_aside", "fail": False}, None, False) == {
        "changed": False, "state_error": f"state file {path}: {PROBLEM}"}
    with pytest.raises(PatchError) as caught:
        operation({"state_file": str(path), "damaged_state": "move_aside", "fail": True}, None, False)
    (aside,) = aside_names(tmp_path)
    assert caught.value.details == {"reason": "test", "state_error": f"state file {path}: {PROBLEM}",
                                    "state_moved_to": str(tmp_path / aside), "changed": True}
    assert (tmp_path / aside).read_bytes() == DAMAGED


def test_discard_removes_a_file_that_records_nothing_and_refuses_one_that_does(tmp_path):
    path = tmp_path / "state.json"
    save_state(str(path), {**empty_state(), "lease": None})
    store = StateFile(str(path))
    del store.state["lease"]
    store.discard()
    assert not path.exists()
    store.discard()  # nothing left to remove: no error

    save_state(str(path), {**empty_state(), "deferred": [{"patch": "FP-1", "reason": "r", "until": None, "at": "2026-12-02T03:00:00Z"}]})
    before = path.read_bytes()
    with pytest.raises(PatchError, match=r"holds a state: it is not discarded$"):
        StateFile(str(path)).discard()
    assert path.read_bytes() == before
