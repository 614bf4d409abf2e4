"""The audit callback as AWX runs it (ansible-runner, settings in ansible.cfg) against real SSH hosts, one of them down."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from fleetpatch_dev.fleet import HostSpec

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import read_key, verify

pytestmark = pytest.mark.fleet


def test_runner_run_on_the_fleet_is_recorded_with_the_controller_user(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="web-01", version="7.0.26"), HostSpec(name="web-02", version="7.0.28"), HostSpec(name="web-03", version="7.0.26")])
    fleet.stop("web-03")
    log, head, key_file = tmp_path / "audit" / "audit.jsonl", tmp_path / "elsewhere" / "audit.head", tmp_path / "audit.key"
    head.parent.mkdir()
    key_file.write_text(secrets.token_hex(32), encoding="utf-8")
    # configured through ansible.cfg (the ini options), as a job template's project would
    cfg = Path(ansible.env["ANSIBLE_CONFIG"])
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[defaults]\n", "[defaults]\ncallbacks_enabled = fleetpatch.rollout.audit\n")
                   + f"\n[callback_fleetpatch_audit]\nlog = {log}\nhead_file = {head}\nhmac_key_file = {key_file}\n", encoding="utf-8")
    run = ansible("audit_fleet.yml", fleet.write_inventory(), extravars={
        "awx_user_name": "bob", "awx_job_id": 4711, "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob",
        "fleetpatch_verified_by": "carol", "fleetpatch_patch_id": "FP-2025-14847",
    })
    assert run.returncode == 4, run.stdout  # web-03 is down
    result = verify(log, key=read_key(key_file), head=head)
    assert (result["ok"], result["problems"]) == (True, [])
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert {record["actors"]["controller_user"] for record in records} == {"bob"}
    assert {record["actors"]["controller_job_id"] for record in records} == {4711}
    assert {record["patch_id"] for record in records} == {"FP-2025-14847"}
    detect = {record["host"]: record["data"]["status"] for record in records if record["event"] == "task" and record["data"]["task"] == "Detect"}
    assert detect == {"web-01": "ok", "web-02": "ok", "web-03": "unreachable"}
    assert [record["event"] for record in records if record["event"] != "task"] == [
        "run_start", "play_start", "approval", "wave_start", "gate", "verified", "run_end"]
    assert records[-1]["data"]["stats"] == {host: {"ok": counts["ok"], "changed": counts["changed"], "failures": counts["failures"],
                                                   "unreachable": counts["unreachable"], "skipped": counts["skipped"], "rescued": counts["rescued"],
                                                   "ignored": counts["ignored"]} for host, counts in run.stats.items()}
    assert records[-1]["actors"] == {"approved_by": "alice", "implemented_by": "bob", "verified_by": "carol", "controller_user": "bob",
                                     "controller_job_id": 4711}
