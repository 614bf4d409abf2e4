"""The fleetpatch.rollout.status_report, status_render, publish_gate and advisory filters: thin wrappers that name themselves,
and the audit log the report's chart is drawn from (given, the run's own, or none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.filter import advisory, publish_gate, status_render, status_report
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit

REPO = Path(__file__).resolve().parents[4]
MANIFEST = yaml.safe_load((REPO / "manifests" / "FP-2025-14847.yml").read_text(encoding="utf-8"))
DETECTED = {"version": "7.0.26", "affected": True, "fixed": False, "applied": [], "deferred": [], "rollbacks": [], "interrupted": None,
            "state_error": None}
HOSTVARS = {"a": {"region": "eu", "__status_detected": DETECTED}}
APPLY = {"event": "task", "ts": "2026-12-01T10:00:00Z", "host": "a", "patch_id": MANIFEST["id"],
         "data": {"action": "fleetpatch.rollout.apply", "status": "failed", "msg": "disk full"}}


@pytest.mark.parametrize(("module", "name"), [
    (status_report, "status_report"), (status_render, "status_render"), (publish_gate, "publish_gate"), (advisory, "advisory"),
])
def test_filter_is_registered(module, name):
    assert module.FilterModule().filters() == {name: getattr(module, name)}


def test_the_chart_is_drawn_from_the_log_given_the_runs_own_or_none(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    log.write_text(json.dumps(APPLY) + "\n", encoding="utf-8")
    monkeypatch.delenv(_audit.SINK_ENV, raising=False)
    assert status_report.status_report(HOSTVARS, ["a"], MANIFEST)["history"]["source"] is None
    given = status_report.status_report(HOSTVARS, ["a"], MANIFEST, audit_log=str(log))
    assert (given["history"]["source"], given["hosts"][0]["state"]) == (str(log), "failed")
    monkeypatch.setenv(_audit.SINK_ENV, json.dumps({"log": str(log), "run_id": "r"}))
    assert status_report.status_report(HOSTVARS, ["a"], MANIFEST)["history"]["source"] == str(log)
    assert status_report.status_report(HOSTVARS, ["a"], MANIFEST, audit_log=False)["history"]["source"] is None
    monkeypatch.setenv(_audit.SINK_ENV, json.dumps({"log": str(tmp_path / "not-yet.jsonl"), "run_id": "r"}))
    assert status_report.status_report(HOSTVARS, ["a"], MANIFEST)["history"]["source"] is None


@pytest.mark.parametrize(("call", "message"), [
    (lambda: status_report.status_report(HOSTVARS, "a", MANIFEST), "fleetpatch.rollout.status_report: hosts: expected a list of host names, got str 'a'"),
    (lambda: status_report.status_report(HOSTVARS, ["a"], MANIFEST, audit_log="/nonexistent/audit.jsonl"),
     "fleetpatch.rollout.status_report: audit log /nonexistent/audit.jsonl: cannot be read: No such file or directory"),
    (lambda: status_report.status_report(HOSTVARS, ["a"], MANIFEST, audit_log=3),
     "fleetpatch.rollout.status_report: audit_log: expected the path of an audit log, or false, got 3"),
    (lambda: status_render.status_render({}, "html"),
     "fleetpatch.rollout.status_render: report: expected the report of fleetpatch.rollout.status_report, got '{}'"),
    (lambda: publish_gate.publish_gate(None), "fleetpatch.rollout.publish_gate: report: expected the report of fleetpatch.rollout.status_report, got 'None'"),
    (lambda: advisory.advisory(MANIFEST, "csaf"), "fleetpatch.rollout.advisory: publisher: expected a mapping with name and namespace, got None"),
])
def test_errors_name_the_filter(call, message):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert str(caught.value) == message


def test_render_gate_and_advisory_pass_through():
    made = status_report.status_report(HOSTVARS, ["a"], MANIFEST)
    assert status_render.status_render(made, "csv").splitlines()[1].startswith("a,eu,-,7.0.26,affected,")
    assert publish_gate.publish_gate(made)["blocking"] == [{"host": "a", "state": "affected", "detail": "runs 7.0.26, in the affected range"}]
    assert advisory.advisory(MANIFEST, "osv", now="2026-12-02T10:00:00Z")["id"] == MANIFEST["id"]
