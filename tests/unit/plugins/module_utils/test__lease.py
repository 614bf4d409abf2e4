"""module_utils/_lease.py: the host lock of one run (the state file's lease) and the state lock of one module call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._lease import check_lease, describe_lease, lock_file, set_lease, state_lock
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import empty_state, save_state

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MINE = {"owner": "run-a", "holder": "bob", "patch": "FP-1", "since": "2026-12-02T03:00:00Z", "job": "41", "controller": "ctl-1"}
THEIRS = {"owner": "run-b", "holder": "dave", "patch": "FP-2", "since": "2026-12-01T22:00:00Z", "job": None, "controller": "ctl-2"}
HELD = ("this host is locked by another fleetpatch run: dave for FP-2 since 2026-12-01T22:00:00Z, from ctl-2 (run run-b); nothing was "
        "changed. Wait for that run to end; if it is gone (killed), re-run the rollout with take-over of its lock")


def params(path, **changes):
    return {"state_file": str(path), "owner": "run-a", "state": "acquired", "holder": "bob", "patch_id": "FP-1", "job": "41",
            "controller": "ctl-1", "reclaim": [], "take_over": False, **changes}


def write(path, lease):
    state = empty_state()
    state["lease"] = lease
    save_state(str(path), state)


def read(path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


@pytest.mark.parametrize(("before", "changes", "check", "changed", "key", "after_owner"), [
    (None, {}, False, True, None, "run-a"),                                   # a free host is locked
    (None, {}, True, True, None, None),                                       # check mode writes nothing
    (MINE, {}, False, False, None, "run-a"),                                  # held by this run already: no change
    (THEIRS, {"reclaim": ["run-x", "run-b"]}, False, True, "reclaimed", "run-a"),  # an ended run's lock is reclaimed
    (THEIRS, {"take_over": True}, False, True, "taken_over", "run-a"),        # the operator takes a gone run's lock
    (THEIRS, {"take_over": True}, True, True, "taken_over", "run-b"),         # ... in check mode only said
    (MINE, {"state": "released"}, False, True, "released", None),             # the holder releases
    (MINE, {"state": "released"}, True, True, "released", "run-a"),           # ... in check mode only said
    (THEIRS, {"state": "released"}, False, False, None, "run-b"),             # another run's lock is left alone
])
def test_set_lease(tmp_path, before, changes, check, changed, key, after_owner):
    path = tmp_path / "state.json"
    if before is not None:
        write(path, before)
    result = set_lease(params(path, **changes), None, check)
    assert result["changed"] is changed
    if key:
        assert result[key] == before
    lease = (read(path) or {}).get("lease")
    assert (lease or {}).get("owner") == after_owner
    if after_owner == "run-a" and before is not MINE:
        assert TIMESTAMP.match(lease.pop("since"))
        assert lease == {"owner": "run-a", "holder": "bob", "patch": "FP-1", "job": "41", "controller": "ctl-1"}


def test_a_lock_held_by_another_run_is_refused_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "state.json"
    write(path, THEIRS)
    before = path.read_bytes()
    with pytest.raises(PatchError) as caught:
        set_lease(params(path, reclaim=["run-x"]), None, False)
    assert str(caught.value) == HELD
    assert caught.value.details == {"held_by": THEIRS, "state_file": str(path)}
    assert path.read_bytes() == before


def test_releasing_on_a_host_without_a_state_file_writes_nothing(tmp_path):
    result = set_lease(params(tmp_path / "state.json", state="released"), None, False)
    assert result == {"changed": False, "lease": None}
    assert not (tmp_path / "state.json").exists()


@pytest.mark.parametrize(("lease", "owner", "refused"), [
    (None, None, False),
    (None, "run-a", False),
    (THEIRS, "run-b", False),
    (THEIRS, "run-a", True),
    (THEIRS, None, True),   # a call outside any run may not touch a host a run holds
])
def test_check_lease(lease, owner, refused):
    state = dict(empty_state(), lease=lease)
    if refused:
        with pytest.raises(PatchError, match=re.escape(HELD)):
            check_lease(state, owner, "/var/lib/fleetpatch/state.json")
    else:
        check_lease(state, owner, "/var/lib/fleetpatch/state.json")


@pytest.mark.parametrize(("lease", "text"), [
    (MINE, "bob for FP-1 since 2026-12-02T03:00:00Z, job 41, from ctl-1 (run run-a)"),
    ({"owner": "r"}, "someone for an unnamed patch since an unknown time (run r)"),
])
def test_describe_lease(lease, text):
    assert describe_lease(lease) == text


def test_owner_is_required(tmp_path):
    with pytest.raises(PatchError, match=r"^owner: a lock needs the id of the run that holds it$"):
        set_lease(params(tmp_path / "state.json", owner=" "), None, False)


def test_the_state_lock_is_kept_away_from_the_state_file(tmp_path):
    """The lock file is in the system's lock directory: a call that changes nothing leaves nothing beside the state."""
    state_file = tmp_path / "fleetpatch" / "state.json"
    with state_lock(str(state_file), timeout=1):
        assert os.path.exists(lock_file(str(state_file)))
    assert not state_file.parent.exists()
    assert lock_file(str(state_file)) == lock_file(str(tmp_path / "fleetpatch" / ".." / "fleetpatch" / "state.json"))
    assert lock_file(str(state_file)) != lock_file(str(tmp_path / "other" / "state.json"))


def test_the_state_lock_keeps_a_second_call_out_until_the_first_ends(tmp_path):
    """A real second process holds the lock: this one waits, then fails naming the state file; once it ends, it gets in."""
    state_file = tmp_path / "fleetpatch" / "state.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)"), lock_file(str(state_file))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(PatchError) as caught:
            with state_lock(str(state_file), timeout=0.5):
                pytest.fail("the lock was taken while another process held it")
        assert time.monotonic() - started >= 0.5
        assert str(caught.value) == f"cannot lock the state file {state_file}: another fleetpatch operation on this host held it for 0.5 s"
    finally:
        holder.kill()
        holder.wait()
    with state_lock(str(state_file), timeout=5):
        pass


def test_a_released_lock_that_was_all_the_file_held_leaves_no_file(tmp_path):
    path = tmp_path / "state.json"
    set_lease(params(path), None, False)
    assert read(path)["lease"]["owner"] == "run-a"
    set_lease(params(path, state="released"), None, False)
    assert not path.exists()  # as before the run: a host with no state file


def test_a_released_lock_leaves_the_rest_of_the_state(tmp_path):
    path = tmp_path / "state.json"
    state = empty_state()
    state["deferred"] = [{"patch": "FP-1", "reason": "outside maintenance window", "until": None, "at": "2026-12-02T03:00:00Z"}]
    state["lease"] = MINE
    save_state(str(path), state)
    set_lease(params(path, state="released"), None, False)
    assert read(path) == {key: value for key, value in state.items() if key != "lease"}
