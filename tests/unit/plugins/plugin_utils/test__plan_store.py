"""Stored plans: written once, read back only as the manifest and the audit trail vouch for them; the gate from the trail."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _plan_store
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._plan_store import PlanStoreError

PLAN = {
    "patch": "FP-1", "now": "2026-12-02T10:00:00Z",
    "waves": [
        {"index": 1, "name": "canary", "hosts": [{"host": "a1", "version": "1.0"}]},
        {"index": 2, "name": "eu", "hosts": [{"host": name, "version": "1.0"} for name in ("e1", "e2", "e3", "e4")]},
        {"index": 3, "name": "us", "hosts": [{"host": "u1", "version": "1.1"}]},
    ],
    "excluded": [{"host": "x1", "version": "2.0", "reason": "fixed"}],
    "deferred": [{"host": "d1", "version": "1.0", "reason": "outside_window"}],
    "failures": [{"host": "lost", "wave": "detection", "status": "unknown", "why": "unreachable at detection"}],
    "summary": {"planned": 7, "policy": {"canary": {"count": 1}}},
}


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "FP-1.yml"
    path.write_text("id: FP-1\n", encoding="utf-8")
    return {"id": "FP-1", "component": "fpdemo", "install_dir": "/srv/fpdemo", "manifest_file": str(path)}


def gate_record(wave, slice_hosts, failures=(), sha="s" * 64, run_id="job-1"):
    return {"event": "gate", "wave": wave, "run_id": run_id,
            "data": {"plan_sha256": sha, "slice": list(slice_hosts), "failures": [{"host": h, "wave": wave, "status": "rolled_back", "why": "unhealthy"}
                                                                               for h in failures]}}


def test_a_written_plan_reads_back_with_the_sha256_of_its_bytes(manifest, tmp_path):
    document = _plan_store.plan_document(PLAN, manifest)
    assert document["detected"] == {"a1": "1.0", "d1": "1.0", "e1": "1.0", "e2": "1.0", "e3": "1.0", "e4": "1.0", "lost": None,
                                     "u1": "1.1", "x1": "2.0"}
    assert document["manifest_sha256"] == hashlib.sha256(b"id: FP-1\n").hexdigest()
    path = tmp_path / "plan.json"
    digest, changed = _plan_store.write_plan(str(path), document)
    assert changed and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _plan_store.write_plan(str(path), document) == (digest, False)  # the same plan again: left alone
    assert _plan_store.read_plan(str(path), manifest) == (document, digest)


def test_check_mode_writes_nothing(manifest, tmp_path):
    digest, changed = _plan_store.write_plan(str(tmp_path / "plan.json"), _plan_store.plan_document(PLAN, manifest), check_mode=True)
    assert changed and len(digest) == 64 and not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda path, manifest: path.write_text("[1]", encoding="utf-8"), "is not a stored plan of format 1 (format: 'list')"),
    (lambda path, manifest: path.write_text("{", encoding="utf-8"), "is not JSON"),
    (lambda path, manifest: path.write_text(json.dumps({"format": 1, "patch": "FP-2", "plan": {"waves": []}}), encoding="utf-8"),
     "is the plan of patch 'FP-2', not of the manifest's 'FP-1'"),
    (lambda path, manifest: open(manifest["manifest_file"], "a", encoding="utf-8").write("# edited\n"), "changed since the plan"),
    (lambda path, manifest: path.unlink(), "cannot be read"),
])
def test_a_plan_that_cannot_be_trusted_is_refused_naming_the_field(manifest, tmp_path, edit, message):
    path = tmp_path / "plan.json"
    _plan_store.write_plan(str(path), _plan_store.plan_document(PLAN, manifest))
    edit(path, manifest)
    with pytest.raises(PlanStoreError) as caught:
        _plan_store.read_plan(str(path), manifest)
    assert message in str(caught.value)
    assert str(caught.value).startswith(("fleetpatch_plan_file:", "fleetpatch_manifest:"))


def test_only_a_plan_record_of_that_sha256_vouches_for_it():
    records = [{"event": "plan", "data": {"plan_sha256": "a"}, "seq": 1},
               {"event": "note", "data": {"plan_sha256": "b"}, "seq": 2},
               {"event": "plan", "data": {"plan_sha256": "b", "check_mode": True}, "seq": 3}]
    assert _plan_store.recorded_plan(records, "a")["seq"] == 1
    assert _plan_store.recorded_plan(records, "b") is None


def test_a_wave_and_its_slice():
    assert _plan_store.find_wave(PLAN, "eu")["index"] == 2
    assert [entry["host"] for entry in _plan_store.slice_wave(PLAN["waves"][1], ["e2", "e4", "u1"])["hosts"]] == ["e2", "e4"]
    with pytest.raises(PlanStoreError, match=r"fleetpatch_wave: the plan has no wave 'ap' \(its waves: 'canary', 'eu', 'us'\)"):
        _plan_store.find_wave(PLAN, "ap")


def test_the_gate_counts_every_slice_and_every_wave_before_it():
    records = [
        gate_record("canary", ["a1"]),
        gate_record("eu", ["e1", "e3"], failures=["e3"], run_id="job-2"),
        gate_record("eu", ["e2", "e4"], failures=["e2"], run_id="job-3"),
        gate_record("eu", ["e9"], failures=["e9"], sha="t" * 64),  # another plan's
        {"event": "gate", "wave": "eu", "run_id": "job-4", "data": {"plan_sha256": "s" * 64, "failures": []}},  # a gate job's decision
    ]
    found = _plan_store.trail_gate(PLAN, "s" * 64, "eu", records, 2)
    assert [(f["host"], f["wave"]) for f in found["failures"]] == [("lost", "detection"), ("e2", "eu"), ("e3", "eu")]  # in the plan's order
    assert [f["host"] for f in found["wave_failures"]] == ["e2", "e3"]
    assert (found["budget"], found["halted"], found["missing"], found["jobs"]) == (2, True, [], ["job-1", "job-2", "job-3"])


def test_a_host_no_job_reported_is_a_failure_and_a_later_run_of_a_host_replaces_the_earlier():
    records = [gate_record("canary", ["a1"], failures=["a1"]), gate_record("canary", ["a1"], run_id="job-2"),
               gate_record("eu", ["e1", "e2", "e3"])]
    found = _plan_store.trail_gate(PLAN, "s" * 64, "eu", records, "50%")
    assert [(f["host"], f["status"], f["why"]) for f in found["failures"][1:]] == [("e4", "unknown", _plan_store.NO_OUTCOME)]
    assert (found["missing"], found["budget"], found["halted"]) == (["e4"], 3, False)
    assert _plan_store.trail_gate(PLAN, "s" * 64, "us", records, 0)["missing"] == ["e4", "u1"]


def test_the_trail_must_verify_before_it_vouches(tmp_path):
    log = tmp_path / "audit.jsonl"
    _audit.AuditLog(str(log)).append_many([{"event": "plan", "data": {"plan_sha256": "a"}}, {"event": "note", "data": {}}])
    sink = {"log": str(log), "run_id": "r"}
    assert [record["event"] for record in _plan_store.trail_records(sink)] == ["plan", "note"]
    lines = log.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace('"a"', '"b"')
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PlanStoreError, match="does not verify, so it cannot vouch for a plan or an outcome"):
        _plan_store.trail_records(sink)
