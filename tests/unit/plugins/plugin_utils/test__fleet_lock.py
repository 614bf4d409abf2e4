"""plugin_utils/_fleet_lock.py: the fleet lock beside the audit log, with real processes as holders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _fleet_lock
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._fleet_lock import FleetLockError, acquire, holder_status, lock_path, release


def holder(owner, pid=None, controller=None, **extra):
    pid = os.getpid() if pid is None else pid
    return {"owner": owner, "who": "bob", "patch": "FP-1", "since": "2026-12-02T03:00:00Z", "job": "41",
            "controller": controller or socket.gethostname(), "pid": pid, "pid_start": _fleet_lock.process_start(pid), "user": "root", **extra}


@pytest.fixture
def gone_pid():
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def read(path):
    return json.loads(open(path, encoding="utf-8").read())


def test_lock_path_is_beside_the_audit_log(tmp_path):
    assert lock_path(str(tmp_path / "audit.jsonl")) == str(tmp_path / "audit.jsonl.fleet-lock")


def test_a_free_lock_is_taken_and_released_and_the_run_remembered(tmp_path):
    path = str(tmp_path / "audit" / "audit.jsonl.fleet-lock")
    mine = holder("run-a")
    assert acquire(path, mine) == {"holder": mine, "ended": [], "taken_over": None, "changed": True}
    assert read(path) == {"format": 1, "holder": mine, "ended": []}
    assert acquire(path, mine)["changed"] is False  # the same run again
    assert release(path, "run-b") is None           # not the holder: nothing happens
    assert release(path, "run-a") == mine
    assert read(path) == {"format": 1, "holder": None, "ended": ["run-a"]}
    assert acquire(path, holder("run-c"))["ended"] == ["run-a"]


def test_check_mode_decides_the_same_and_writes_nothing(tmp_path):
    path = str(tmp_path / "lock")
    assert acquire(path, holder("run-a"), check_mode=True)["changed"] is True
    assert not os.path.exists(path)


def test_a_live_holder_is_refused_even_with_take_over(tmp_path):
    path = str(tmp_path / "lock")
    live = holder("run-a")  # this test's own process: alive
    acquire(path, live)
    before = open(path, "rb").read()
    for take_over in (False, True):
        with pytest.raises(FleetLockError) as caught:
            acquire(path, holder("run-b"), take_over=take_over)
        assert str(caught.value) == (f"another fleetpatch run holds the fleet lock {path}: bob for FP-1 since 2026-12-02T03:00:00Z, job 41, "
                                     f"pid {os.getpid()} on {socket.gethostname()} (run run-a); it is still running: wait for it to end")
        assert caught.value.holder == live
    assert open(path, "rb").read() == before


def test_a_gone_holder_is_taken_over_only_when_asked(tmp_path, gone_pid):
    path = str(tmp_path / "lock")
    stale = dict(holder("run-a"), pid=gone_pid, pid_start="1")
    acquire(path, stale)
    with pytest.raises(FleetLockError) as caught:
        acquire(path, holder("run-b"))
    assert str(caught.value).endswith(
        f"(run run-a); its process {gone_pid} no longer runs. If that run is gone, take its lock over (the rollout's "
        "fleetpatch_take_over_lock=true); the take-over is recorded in the audit trail")
    taken = acquire(path, holder("run-b"), take_over=True)
    assert taken["taken_over"] == stale and taken["ended"] == ["run-a"]
    assert read(path)["holder"]["owner"] == "run-b"


def test_a_pid_reused_by_another_process_is_gone():
    """The same pid with another start time is another process: the holder is gone."""
    assert holder_status(dict(holder("run-a"), pid_start="0")) == "gone"
    assert holder_status(holder("run-a")) == "alive"


def test_a_holder_on_another_controller_cannot_be_checked_and_needs_take_over(tmp_path):
    path = str(tmp_path / "lock")
    remote = holder("run-a", controller="ctl-elsewhere")
    assert holder_status(remote) == "unknown"
    acquire(path, remote)
    with pytest.raises(FleetLockError, match="it was taken on another controller, ctl-elsewhere, so this one cannot tell whether it still runs"):
        acquire(path, holder("run-b"))
    assert acquire(path, holder("run-b"), take_over=True)["taken_over"] == remote


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "cannot be read: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[]", "is a JSON list, expected an object"),
    ('{"format": 2, "holder": null, "ended": []}', "format is 2, expected 1"),
    ('{"format": 1, "holder": {"owner": 5}, "ended": []}', "holder is not null nor an object with a string owner"),
    ('{"format": 1, "holder": null, "ended": "run-a"}', "ended is not a list of strings"),
])
def test_a_damaged_lock_is_refused_and_left_as_it_is(tmp_path, content, problem):
    path = tmp_path / "lock"
    path.write_text(content, encoding="utf-8")
    for attempt in (lambda: acquire(str(path), holder("run-a"), take_over=True), lambda: release(str(path), "run-a")):
        with pytest.raises(FleetLockError) as caught:
            attempt()
        assert str(caught.value).startswith(f"fleet lock {path}") and problem in str(caught.value)
        assert str(caught.value).endswith("it is left as it is: look at it, then remove it")
    assert path.read_text(encoding="utf-8") == content


def test_the_ended_runs_are_bounded(tmp_path):
    path = str(tmp_path / "lock")
    for index in range(_fleet_lock.ENDED_KEPT + 5):
        acquire(path, holder(f"run-{index}"))
        release(path, f"run-{index}")
    ended = read(path)["ended"]
    assert len(ended) == _fleet_lock.ENDED_KEPT and ended[-1] == f"run-{_fleet_lock.ENDED_KEPT + 4}" and ended[0] == "run-5"
