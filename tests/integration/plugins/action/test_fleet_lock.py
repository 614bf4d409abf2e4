"""fleetpatch.rollout.fleet_lock in real ansible-playbook runs whose audit trail is in a real PostgreSQL server: the
lock is the trail's row, two runs of one share key (two slices of one wave) hold it together, any other run is
refused naming them, each leaves on its own, and the lock of a killed run is taken over only when asked."""

from __future__ import annotations

import json
import os
import re
import signal
import time

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import read_key
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit_pg import verify_trail

PLAYBOOK = "fleet_lock_hold.yml"
TASK = "fleetpatch.rollout.fleet_lock"


def _holders(audit_db):
    """The run ids that hold the trail's lock, and the ended ones."""
    ((share, holders, ended),) = audit_db.execute("SELECT share, holders, ended FROM fleetpatch_audit.fleet_lock WHERE trail = 'main'")
    return share, [holder["owner"] for holder in holders], ended


def _until(check, process, what):
    """Wait until ``check()`` holds while ``process`` still runs."""
    started = time.monotonic()
    while not check():
        assert process.poll() is None, f"the run ended before {what}: {process.communicate()[0][-3000:]}"
        assert time.monotonic() - started < 120, f"no {what} within 120 s"
        time.sleep(0.1)


def _lock_records(audit_db):
    lines = [json.loads(line) for (line,) in audit_db.execute("SELECT line FROM fleetpatch_audit.trail_main ORDER BY seq")]
    return [record for record in lines if record["event"] == "lock"]


def test_slices_of_one_wave_hold_the_database_lock_together_and_others_are_refused(audited, audit_db, tmp_path):
    audited.env.update({"FLEETPATCH_AUDIT_DSN": audit_db.writer_dsn, "PGPASSWORD": audit_db.password})
    inventory = audited.inventory("local", ["localhost"])
    where = f"postgresql://{audit_db.writer}@127.0.0.1:{audit_db.server.port}/{audit_db.name} trail main (table fleetpatch_audit.fleet_lock)"
    go = {name: tmp_path / f"go-{name}" for name in ("a", "b", "e")}

    def start(name, **extra):
        return audited.start(PLAYBOOK, inventory, "-e", json.dumps({"fp_holder": name, **extra}))

    first = start("alice", fp_share="sha wave-1", fp_go=str(go["a"]))
    second = None
    try:
        _until(lambda: len(_holders(audit_db)[1]) == 1, first, "the first slice held the lock")
        second = start("bruno", fp_share="sha wave-1", fp_go=str(go["b"]))
        _until(lambda: len(_holders(audit_db)[1]) == 2, second, "the second slice joined")
        assert _holders(audit_db)[0] == "sha wave-1"

        # another wave's slice, and a run with no key: refused, both slices named with their processes
        for extra in ({"fp_share": "sha wave-2"}, {}):
            refused = audited.run(PLAYBOOK, inventory, "-e", json.dumps({"fp_holder": "carol", **extra}))
            assert refused.returncode == 2, refused.stdout
            assert re.search(rf"{TASK}: 2 fleetpatch runs hold the fleet lock {re.escape(where)} together: alice for FP-2025-14847 since \S+Z, "
                             rf"pid {first.pid} on \S+ \(run [0-9a-f]{{32}}\); bruno for FP-2025-14847 since \S+Z, pid {second.pid} on \S+ "
                             r"\(run [0-9a-f]{32}\) \(shared under the key 'sha wave-1': only a run given that key joins them\); run [0-9a-f]{32}, "
                             r"run [0-9a-f]{32} still run: wait for them to end", refused.stdout), refused.stdout
        assert first.poll() is None and second.poll() is None, "a slice ended before the others were refused: the test proves nothing"

        # the second slice leaves first: the first still holds the lock, alone
        go["b"].touch()
        assert second.wait(timeout=120) == 0, second.communicate()[0][-3000:]
        share, holders, ended = _holders(audit_db)
        assert (share, len(holders), len(ended)) == ("sha wave-1", 1, 1)
        refused = audited.run(PLAYBOOK, inventory, "-e", json.dumps({"fp_holder": "carol"}))
        assert refused.returncode == 2 and f"another fleetpatch run holds the fleet lock {where}: alice for FP-2025-14847" in refused.stdout, refused.stdout
        go["a"].touch()
        assert first.wait(timeout=120) == 0, first.communicate()[0][-3000:]
    finally:
        for name in ("a", "b"):
            go[name].touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert _holders(audit_db)[:2] == (None, [])
    records = _lock_records(audit_db)
    assert [(record["data"]["lock"], record["data"]["holder"]["who"], len(record["data"].get("holders", []))) for record in records] == [
        ("acquired", "alice", 1), ("joined", "bruno", 2), ("released", "bruno", 0), ("released", "alice", 0)]
    assert _holders(audit_db)[2] == [records[2]["run_id"], records[3]["run_id"]]  # each slice ended, in the order it left
    assert not list(tmp_path.glob("audit/*fleet-lock*"))  # no file beside the log option: the database holds the lock

    # A slice killed outright keeps its lock: a new run is refused naming it, and takes it over only when asked.
    killed = start("erin", fp_share="sha wave-2", fp_go=str(go["e"]))
    try:
        _until(lambda: len(_holders(audit_db)[1]) == 1, killed, "the slice to kill held the lock")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    finally:
        go["e"].touch()  # lets its orphaned wait_for end
    refused = audited.run(PLAYBOOK, inventory, "-e", json.dumps({"fp_holder": "carol"}))
    assert refused.returncode == 2
    assert (f"(shared under the key 'sha wave-2': only a run given that key joins it); its process {killed.pid} no longer runs. "
            "If that run is gone") in refused.stdout
    taken = audited.run(PLAYBOOK, inventory, "-e", json.dumps({"fp_holder": "carol", "fp_take_over": True}))
    assert taken.returncode == 0, taken.stdout
    over = [record for record in _lock_records(audit_db) if record["data"]["lock"] == "taken over"]
    assert [(record["data"]["holder"]["who"], record["data"]["previous"]["who"], record["data"]["previous"]["pid"]) for record in over] == [
        ("carol", "erin", killed.pid)]
    assert _holders(audit_db)[:2] == (None, [])
    result = verify_trail(audit_db.reader_dsn, key=read_key(audited.key_file))
    assert (result["ok"], result["problems"]) == (True, [])


def test_the_run_lock_role_passes_its_share_key_and_each_slice_locks_its_own_hosts(audited, audit_db, tmp_path):
    audited.env.update({"FLEETPATCH_AUDIT_DSN": audit_db.writer_dsn, "PGPASSWORD": audit_db.password})
    names = ["slice-a", "slice-b", "other"]
    inventory = audited.inventory("local", names, **{name: {"fleetpatch_state_file": str(tmp_path / f"{name}.json")} for name in names})
    go = tmp_path / "go"
    first = audited.start("run_lock_hold.yml", inventory, "--limit", "slice-a", "-e", json.dumps({"fp_share": "sha wave-1", "fp_go": str(go)}))
    try:
        _until(lambda: len(_holders(audit_db)[1]) == 1 and (tmp_path / "slice-a.json").exists(), first, "the first slice held its locks")
        # the first slice's host is locked by its own run, which holds the fleet lock
        assert json.loads((tmp_path / "slice-a.json").read_text(encoding="utf-8"))["lease"]["owner"] == _holders(audit_db)[1][0]
        second = audited.run("run_lock_hold.yml", inventory, "--limit", "slice-b", "-e", json.dumps({"fp_share": "sha wave-1"}))
        assert second.returncode == 0, second.stdout
        refused = audited.run("run_lock_hold.yml", inventory, "--limit", "other")
        assert refused.returncode == 2, refused.stdout
        assert re.search(rf"another fleetpatch run holds the fleet lock postgresql://\S+ trail main \(table fleetpatch_audit.fleet_lock\): \S+ for "
                         rf"FP-2025-14847 since \S+Z, pid {first.pid} on \S+ \(run [0-9a-f]{{32}}\) \(shared under the key 'sha wave-1'",
                         refused.stdout), refused.stdout[-3000:]
        assert first.poll() is None, "the first slice ended before the others ran: the test proves nothing"
        go.touch()
        assert first.wait(timeout=120) == 0, first.communicate()[0][-3000:]
    finally:
        go.touch()
        if first.poll() is None:
            first.kill()
            first.wait()
    assert [(record["data"]["lock"], len(record["data"].get("holders", []))) for record in _lock_records(audit_db)] == [
        ("acquired", 1), ("joined", 2), ("released", 0), ("released", 0)]
    assert "TASK [fleetpatch.rollout.run_lock : Lock the host for this run]" not in refused.stdout  # refused before any host lock


def test_a_run_whose_audit_sink_cannot_be_opened_is_refused_the_lock(audited, tmp_path):
    audited.env.update({"FLEETPATCH_AUDIT_DSN": "postgresql://writer:secret@127.0.0.1:5432/audit"})
    refused = audited.run(PLAYBOOK, audited.inventory("local", ["localhost"]))
    assert refused.returncode == 2, refused.stdout
    assert (f"{TASK}: the audit trail cannot be written, so the fleet lock is not taken: the PostgreSQL audit DSN (dsn) holds a password "
            "(its 'password' field)") in refused.stdout
    assert "secret" not in refused.stdout
    assert not list(tmp_path.rglob("*fleet-lock*"))  # nothing taken, nowhere
