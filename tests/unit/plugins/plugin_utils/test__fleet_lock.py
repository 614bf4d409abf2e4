"""plugin_utils/_fleet_lock.py: the fleet lock's rules (pure, liveness given), and both of its stores, the file beside the
audit log and the trail's row in a real PostgreSQL server, with real processes as holders."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys

import psycopg
import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg, _fleet_lock
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
    assert acquire(path, mine) == {"holder": mine, "holders": [mine], "share": None, "ended": [], "taken_over": None, "taken_over_all": [],
                                   "changed": True}
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
    ('{"format": 3, "holder": null, "ended": []}', "format is 3, expected 1 or 2"),
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


# --- the transitions, pure: the holders' liveness is given --------------------------------------------------------

WHERE = "the-lock"


def person(owner, **extra):
    return {"owner": owner, "who": "bob", "patch": "FP-1", "since": "2026-12-02T03:00:00Z", "job": None, "controller": "ctl-1", "pid": 100,
            "pid_start": "7", "user": "root", **extra}


def status_of(**statuses):
    """A liveness check that says what the test wants: run id -> alive, gone or unknown."""
    return lambda holder: statuses[holder["owner"]]


def state(share=None, holders=(), ended=()):
    return {"share": share, "holders": [person(owner) for owner in holders], "ended": list(ended)}


@pytest.mark.parametrize(("before", "owner", "share", "after"), [
    (state(), "a", None, state(None, ["a"])),                                        # free: taken alone
    (state(ended=["x"]), "a", "S", state("S", ["a"], ["x"])),                        # free: taken under a key
    (state("S", ["a"]), "b", "S", state("S", ["a", "b"])),                           # the same key: joined
    (state("S", ["a", "b"], ["x"]), "c", "S", state("S", ["a", "b", "c"], ["x"])),   # a third slice
    (state(), "a", "", state(None, ["a"])),                                          # an empty key shares with nobody
    (state(), "a", "  ", state(None, ["a"])),
])
def test_take_a_free_or_shared_lock(before, owner, share, after):
    new, result = _fleet_lock.take(before, person(owner), share=share, where=WHERE, status=status_of(a="alive", b="alive"))
    assert new == after
    assert (result["changed"], result["holder"], result["holders"], result["share"], result["taken_over"], result["taken_over_all"]) == (
        True, person(owner), after["holders"], after["share"], None, [])


@pytest.mark.parametrize("before", [state(None, ["a"]), state("S", ["a"]), state("S", ["b", "a"])])
def test_a_run_that_holds_the_lock_takes_it_again_without_change(before):
    new, result = _fleet_lock.take(before, dict(person("a"), since="later"), share="T", where=WHERE, status=status_of(b="alive"))
    assert new is None and result["changed"] is False and result["holder"] == person("a") and result["holders"] == before["holders"]


ALIVE_A = "bob for FP-1 since 2026-12-02T03:00:00Z, pid 100 on ctl-1 (run a)"
ALIVE_B = "bob for FP-1 since 2026-12-02T03:00:00Z, pid 100 on ctl-1 (run b)"


@pytest.mark.parametrize(("before", "share", "message"), [
    (state(None, ["a"]), None, f"another fleetpatch run holds the fleet lock the-lock: {ALIVE_A}; it is still running: wait for it to end"),
    (state(None, ["a"]), "S", f"another fleetpatch run holds the fleet lock the-lock: {ALIVE_A}; it is still running: wait for it to end"),
    (state("S", ["a"]), None, f"another fleetpatch run holds the fleet lock the-lock: {ALIVE_A} (shared under the key 'S': only a run given "
                              "that key joins it); it is still running: wait for it to end"),
    (state("S", ["a", "b"]), "T", f"2 fleetpatch runs hold the fleet lock the-lock together: {ALIVE_A}; {ALIVE_B} (shared under the key 'S': "
                                  "only a run given that key joins them); run a, run b still run: wait for them to end"),
])
def test_a_live_holder_refuses_another_key_or_none_even_with_take_over(before, share, message):
    for take_over in (False, True):
        with pytest.raises(FleetLockError) as caught:
            _fleet_lock.take(before, person("c"), share=share, take_over=take_over, where=WHERE, status=status_of(a="alive", b="alive"))
        assert str(caught.value) == message
        assert (caught.value.holder, caught.value.holders) == (before["holders"][0], before["holders"])


def test_one_live_sharer_is_enough_to_refuse_and_is_the_one_named_first():
    with pytest.raises(FleetLockError) as caught:
        _fleet_lock.take(state("S", ["a", "b"]), person("c"), take_over=True, where=WHERE, status=status_of(a="gone", b="alive"))
    assert str(caught.value).endswith("; run b still runs: wait for them to end")
    assert caught.value.holder["owner"] == "b"


@pytest.mark.parametrize(("before", "statuses", "why"), [
    (state(None, ["a"]), {"a": "gone"}, "its process 100 no longer runs. If that run is gone, take its lock over"),
    (state(None, ["a"]), {"a": "unknown"}, "it was taken on another controller, ctl-1, so this one cannot tell whether it still runs. If that run is gone"),
    (state("S", ["a", "b"]), {"a": "gone", "b": "unknown"},
     "the process of run a 100 no longer runs; run b was taken on another controller, ctl-1, so this one cannot tell whether it still runs. "
     "If those runs are gone, take their lock over"),
])
def test_a_holder_not_known_to_run_is_taken_over_only_when_asked(before, statuses, why):
    with pytest.raises(FleetLockError) as caught:
        _fleet_lock.take(before, person("c"), share="S2", where=WHERE, status=status_of(**statuses))
    assert why in str(caught.value)
    assert str(caught.value).endswith("(the rollout's fleetpatch_take_over_lock=true); the take-over is recorded in the audit trail")
    new, result = _fleet_lock.take(dict(before, ended=["x"]), person("c"), share="S2", take_over=True, where=WHERE, status=status_of(**statuses))
    owners = [holder["owner"] for holder in before["holders"]]
    assert new == state("S2", ["c"], ["x", *owners])  # every holder replaced, each remembered as ended
    assert (result["taken_over"], result["taken_over_all"]) == (before["holders"][0], before["holders"])


def test_gone_sharers_do_not_stop_a_slice_of_their_own_key_from_joining():
    new, result = _fleet_lock.take(state("S", ["a"]), person("b"), share="S", where=WHERE, status=status_of(a="gone"))
    assert new == state("S", ["a", "b"]) and result["taken_over"] is None


@pytest.mark.parametrize(("before", "owner", "after"), [
    (state("S", ["a", "b", "c"], ["x"]), "b", state("S", ["a", "c"], ["x", "b"])),  # any order
    (state("S", ["a"], ["x", "b"]), "a", state(None, [], ["x", "b", "a"])),          # the last one frees it, the key goes
    (state(None, ["a"]), "a", state(None, [], ["a"])),
])
def test_give_back_lets_only_that_run_leave(before, owner, after):
    new, released = _fleet_lock.give_back(before, owner)
    assert (new, released) == (after, person(owner))


@pytest.mark.parametrize("before", [state(), state("S", ["a", "b"]), state(None, ["a"], ["c"])])
def test_give_back_by_a_run_that_does_not_hold_it_changes_nothing(before):
    assert _fleet_lock.give_back(before, "c") == (None, None)


def test_the_ended_runs_are_bounded_when_taken_over_and_given_back():
    before = state("S", ["a", "b"], [f"old-{number}" for number in range(_fleet_lock.ENDED_KEPT)])
    new, _result = _fleet_lock.take(before, person("c"), take_over=True, where=WHERE, status=status_of(a="gone", b="gone"))
    assert len(new["ended"]) == _fleet_lock.ENDED_KEPT and new["ended"][-2:] == ["a", "b"] and new["ended"][0] == "old-2"
    assert _fleet_lock.give_back(new, "c")[0]["ended"][-3:] == ["a", "b", "c"]


@pytest.mark.parametrize(("bad", "problem"), [
    ({"share": "", "holders": [person("a")], "ended": []}, "share is not null nor a non-empty string"),
    ({"share": None, "holders": {"owner": "a"}, "ended": []}, "holders is not a list of objects with a string owner"),
    ({"share": None, "holders": [person("a"), person("b")], "ended": []}, "2 holders without a share key"),
    ({"share": "S", "holders": [], "ended": []}, "a share key without a holder"),
    ({"share": None, "holders": [], "ended": [1]}, "ended is not a list of strings"),
])
def test_a_state_of_the_wrong_shape_is_named(bad, problem):
    with pytest.raises(FleetLockError) as caught:
        _fleet_lock.check_state(bad, WHERE, "look at it")
    assert str(caught.value) == f"fleet lock the-lock: {problem}; it is left as it is: look at it"


def test_a_share_key_that_is_not_text_is_refused():
    with pytest.raises(FleetLockError, match=r"^the fleet lock's share key must be text, not int \(5\)$"):
        _fleet_lock.take(state(), person("a"), share=5)


# --- the file: format 1 while it says everything, format 2 when shared ---------------------------------------------


def test_a_shared_lock_is_written_as_format_2_and_freed_back_to_format_1(tmp_path):
    path = str(tmp_path / "lock")
    first, second = holder("run-a"), holder("run-b")
    assert acquire(path, first, share="plan wave-1")["holders"] == [first]
    assert read(path) == {"format": 2, "share": "plan wave-1", "holders": [first], "ended": []}
    assert acquire(path, second, share="plan wave-1")["holders"] == [first, second]
    with pytest.raises(FleetLockError, match=r"^2 fleetpatch runs hold the fleet lock .* together: .*\(run run-a\); .*\(run run-b\) \(shared under the key "
                                             r"'plan wave-1': only a run given that key joins them\); run run-a, run run-b still run: wait for them to end$"):
        acquire(path, holder("run-c"), share="plan wave-2")
    assert release(path, "run-a") == first
    assert read(path) == {"format": 2, "share": "plan wave-1", "holders": [second], "ended": ["run-a"]}
    assert release(path, "run-b") == second
    assert read(path) == {"format": 1, "holder": None, "ended": ["run-a", "run-b"]}  # what an earlier version reads


def test_a_lock_file_an_earlier_version_wrote_is_read_and_kept(tmp_path):
    path = tmp_path / "lock"
    old = holder("run-old")
    path.write_text(json.dumps({"format": 1, "holder": old, "ended": ["run-0"]}), encoding="utf-8")
    assert _fleet_lock.read_lock(str(path)) == {"share": None, "holders": [old], "ended": ["run-0"]}
    with pytest.raises(FleetLockError, match=r"\(run run-old\); it is still running"):
        acquire(str(path), holder("run-new"), share="plan wave-1")  # a share key never joins a run that holds it alone
    assert release(str(path), "run-old") == old
    assert read(path) == {"format": 1, "holder": None, "ended": ["run-0", "run-old"]}


def test_store_for_picks_the_file_or_the_trails_row():
    sink = {"log": "/var/log/fp/audit.jsonl", "lock": "/var/log/fp/audit.jsonl.fleet-lock", "run_id": "r", "dsn": None, "trail": "main"}
    assert _fleet_lock.store_for(sink).where == "/var/log/fp/audit.jsonl.fleet-lock"
    assert _fleet_lock.store_for(sink, path="/tmp/x").where == "/tmp/x"
    assert _fleet_lock.store_for(None, default_log="/tmp/a.jsonl").where == "/tmp/a.jsonl.fleet-lock"
    store = _fleet_lock.store_for(dict(sink, dsn="postgresql://w@127.0.0.1:5432/audit", trail="eu", lock=None))
    assert isinstance(store, _fleet_lock.PgStore)
    assert store.where == "postgresql://w@127.0.0.1:5432/audit trail eu (table fleetpatch_audit.fleet_lock)"


# --- both stores, with real processes as holders; the database is a real PostgreSQL server --------------------------


@pytest.fixture(params=["file", "postgresql"])
def store(request, tmp_path):
    """The fleet lock of one trail in each store: the file beside the log, and the trail's row in the audit database."""
    if request.param == "file":
        return _fleet_lock.FileStore(str(tmp_path / "audit.jsonl.fleet-lock"))
    audit_db = request.getfixturevalue("audit_db")
    return _fleet_lock.PgStore(audit_db.writer_dsn, "main")


def test_two_runs_of_one_share_key_hold_together_and_leave_in_any_order(store, gone_pid):
    first, second, third = holder("run-a"), holder("run-b"), holder("run-c")
    assert acquire(store, first, share="sha wave-1")["changed"] is True
    joined = acquire(store, second, share="sha wave-1")
    assert (joined["holders"], joined["share"], joined["changed"]) == ([first, second], "sha wave-1", True)
    for share in ("sha wave-2", None, ""):  # another key, or none: refused, each holder named
        with pytest.raises(FleetLockError) as caught:
            acquire(store, third, share=share)
        assert str(caught.value).startswith(f"2 fleetpatch runs hold the fleet lock {store.where} together: bob for FP-1 since ")
        assert "(run run-a); bob" in str(caught.value) and "(run run-b) (shared under the key 'sha wave-1'" in str(caught.value)
        assert caught.value.holders == [first, second]
    assert acquire(store, third, share="sha wave-1", check_mode=True)["holders"] == [first, second, third]  # decided, not written
    assert release(store, "run-b") == second  # the one that joined last leaves first
    assert release(store, "run-b") is None
    with pytest.raises(FleetLockError, match=r"^another fleetpatch run holds the fleet lock .*\(run run-a\) \(shared under the key 'sha wave-1': "
                                             r"only a run given that key joins it\); it is still running: wait for it to end$"):
        acquire(store, third)
    assert release(store, "run-a") == first
    assert store.read() == {"share": None, "holders": [], "ended": ["run-b", "run-a"]}
    assert acquire(store, third)["holders"] == [third]
    # a shared lock whose runs are gone: refused naming them, taken over only when asked, every one remembered as ended
    release(store, "run-c")
    stale = [dict(holder(f"run-{name}"), pid=gone_pid, pid_start="1") for name in ("d", "e")]
    for one in stale:
        acquire(store, one, share="sha wave-3")
    with pytest.raises(FleetLockError, match=rf"the process of run run-d {gone_pid} no longer runs; the process of run run-e {gone_pid} no longer runs\. "
                                             "If those runs are gone, take their lock over"):
        acquire(store, holder("run-f"))
    taken = acquire(store, holder("run-f"), take_over=True)
    assert (taken["taken_over"], taken["taken_over_all"], taken["share"]) == (stale[0], stale, None)
    assert store.read()["ended"] == ["run-b", "run-a", "run-c", "run-d", "run-e"]


def test_the_database_lock_is_one_row_per_trail_that_init_db_makes_for_old_trails_too(audit_db):
    _fleet_lock.acquire(_fleet_lock.PgStore(audit_db.writer_dsn, "main"), holder("run-a"))
    audit_db.execute("DROP TABLE fleetpatch_audit.fleet_lock")  # a schema made before the lock's table existed
    _audit_pg.init_db(audit_db.admin, ["prod_eu"])  # names another trail only
    assert audit_db.execute("SELECT trail, share, holders, ended FROM fleetpatch_audit.fleet_lock ORDER BY trail") == [
        ("main", None, [], []), ("prod_eu", None, [], [])]
    _audit_pg.init_db(audit_db.admin, ["main"])  # idempotent: a held lock stays held
    _fleet_lock.acquire(_fleet_lock.PgStore(audit_db.writer_dsn, "prod_eu"), holder("run-b"), share="k")
    _audit_pg.init_db(audit_db.admin, ["main", "prod_eu"])
    assert audit_db.execute("SELECT trail, share, holders->0->>'owner' FROM fleetpatch_audit.fleet_lock ORDER BY trail") == [
        ("main", None, None), ("prod_eu", "k", "run-b")]


@pytest.mark.parametrize("statement", [
    "INSERT INTO fleetpatch_audit.fleet_lock (trail) VALUES ('other')",
    "DELETE FROM fleetpatch_audit.fleet_lock",
    "TRUNCATE fleetpatch_audit.fleet_lock",
    "UPDATE fleetpatch_audit.fleet_lock SET trail = 'other'",
])
def test_the_writer_role_may_only_change_the_state_of_a_lock(audit_db, statement):
    with psycopg.connect(audit_db.writer_dsn) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute(statement)
    with psycopg.connect(audit_db.reader_dsn) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("SELECT 1 FROM fleetpatch_audit.fleet_lock WHERE trail = 'main' FOR UPDATE")
    with psycopg.connect(audit_db.reader_dsn) as connection:  # the reader sees who holds it
        assert connection.execute("SELECT trail, holders FROM fleetpatch_audit.fleet_lock").fetchall() == [("main", [])]


def test_a_damaged_row_is_refused_and_left_as_it_is(audit_db):
    audit_db.execute("""UPDATE fleetpatch_audit.fleet_lock SET holders = '[{"who": "x"}]' WHERE trail = 'main'""")
    store = _fleet_lock.PgStore(audit_db.writer_dsn, "main")
    for attempt in (lambda: acquire(store, holder("run-a"), take_over=True), lambda: release(store, "run-a")):
        with pytest.raises(FleetLockError) as caught:
            attempt()
        assert str(caught.value) == (f"fleet lock {store.where}: holders is not a list of objects with a string owner; it is left as it is: look at "
                                     "it, then free it as the database's owner (UPDATE fleetpatch_audit.fleet_lock SET share = NULL, holders = '[]' "
                                     "WHERE trail = 'main')")
    assert audit_db.execute("SELECT holders FROM fleetpatch_audit.fleet_lock") == [([{"who": "x"}],)]


def test_a_schema_without_the_lock_is_named_and_releasing_there_is_nothing(audit_db):
    audit_db.execute("DROP TABLE fleetpatch_audit.fleet_lock")
    store = _fleet_lock.PgStore(audit_db.writer_dsn, "main")
    with pytest.raises(FleetLockError) as caught:
        acquire(store, holder("run-a"))
    assert str(caught.value) == (f"fleet lock {store.where}: the audit database has no fleet lock for trail main: run fleetpatch-audit init-db "
                                 "--trail main as the database's owner, which adds it (and the table, to a schema made before it existed)")
    assert release(store, "run-a") is None  # the audit callback's release at the end of every run


def test_a_row_locked_too_long_is_named(audit_db):
    store = _fleet_lock.PgStore(audit_db.writer_dsn, "main", lock_timeout=0.5)
    with audit_db.server.connect(audit_db.name) as other, other.transaction():
        other.execute("SELECT 1 FROM fleetpatch_audit.fleet_lock WHERE trail = 'main' FOR UPDATE")
        with pytest.raises(FleetLockError, match=r"^fleet lock .*: its row stayed locked by another run for 0\.5 s$"):
            acquire(store, holder("run-a"))


def _race(dsn, owner, share, barrier, results):
    """One run taking the lock at the same moment as the others, alive until all of them tried."""
    barrier.wait()
    try:
        acquire(_fleet_lock.PgStore(dsn, "main"), holder(owner), share=share)
        results.put((owner, "held"))
    except FleetLockError as exc:
        results.put((owner, str(exc)))
    barrier.wait()


@pytest.mark.parametrize("share", [None, "sha wave-1"])
def test_runs_that_start_at_once_on_the_database_one_wins_or_all_share(audit_db, share):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    runs = [context.Process(target=_race, args=(audit_db.writer_dsn, f"run-{number}", share, barrier, results)) for number in range(4)]
    for run in runs:
        run.start()
    outcome = dict(results.get(timeout=60) for _run in runs)
    for run in runs:
        run.join(timeout=60)
    held = sorted(owner for owner, what in outcome.items() if what == "held")
    holders = audit_db.execute("SELECT holders FROM fleetpatch_audit.fleet_lock WHERE trail = 'main'")[0][0]
    if share is None:
        assert len(held) == 1 and [item["owner"] for item in holders] == held, outcome
        assert all(f"(run {held[0]}); it is still running" in what for owner, what in outcome.items() if owner != held[0]), outcome
    else:
        assert held == [f"run-{number}" for number in range(4)] and sorted(item["owner"] for item in holders) == held
