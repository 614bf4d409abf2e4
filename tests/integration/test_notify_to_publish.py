"""The whole path of telling people, on the test fleet: notify, then an urgent rollout, then status, then publish.

The customers told the lead time before get their windows overridden, the one the mail server refused is deferred;
the ledger, the mails received and the plan agree, and the published retrospective tells the same story.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import HostSpec, customer_contact
from fleetpatch_dev.mailserver import MailServer

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import format_utc, parse_utc

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
PATCH = "FP-2025-14847"
LEAD = datetime.timedelta(hours=15)  # the manifest's notify.lead_time
PUBLISHER = {"name": "Example Corp", "namespace": "https://example.com"}
REFUSED = "ops@initech.example"


def _window():
    """A weekly one-hour window three days from now (UTC): closed now and the lead time from now."""
    day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).strftime("%a").lower()
    return {"days": [day], "start": "02:00", "duration": "1h", "timezone": "UTC"}


# ansible-runner starts ansible-playbook through forkpty while the mail server's thread runs; the child execs at once.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_notify_then_an_urgent_rollout_then_status_then_publish(fleet, ansible, tmp_path):
    window = _window()
    fleet.add([HostSpec(name="acme-1", customer="acme", maintenance_window=window),
               HostSpec(name="globex-1", customer="globex", version="7.0.27", maintenance_window=window),
               HostSpec(name="initech-1", customer="initech", maintenance_window=window)])
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="urgent")
    ledger = tmp_path / "notifications.yml"
    log = tmp_path / "audit" / "audit.jsonl"
    audit = {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(log)}
    common = {"fleetpatch_manifest": str(manifest), "fleetpatch_notifications": str(ledger)}

    # Notify: the server refuses initech's contact; acme and globex are told and recorded.
    with MailServer(refuse=[REFUSED]) as server:
        notify = ansible(REPO / "playbooks" / "notify.yml", inventory, env=audit, extravars={
            **common, "fleetpatch_notify_sender": "fleetpatch NOC <noc@fleetpatch.example>", "fleetpatch_smtp_host": "127.0.0.1",
            "fleetpatch_smtp_port": server.port, "fleetpatch_smtp_security": "none"})
        received = server.by_recipient()
    assert notify.returncode == 2, notify.stdout[-4000:]  # initech is not told, and the run says so
    told = {record["customer"]: record["notified_at"] for record in yaml.safe_load(ledger.read_text(encoding="utf-8"))["notifications"]}
    assert sorted(told) == ["acme", "globex"]
    assert sorted(received) == sorted(customer_contact(name).split("<")[1].rstrip(">") for name in told)

    # The urgent rollout, the lead time after the last notice: the told customers' windows are overridden, initech waits.
    now = format_utc(max(parse_utc(at) for at in told.values()) + LEAD + datetime.timedelta(seconds=1))
    rollout = ansible(REPO / "playbooks" / "rollout.yml", inventory, env=audit, extravars={
        **common, "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob", "fleetpatch_soak": 0, "fleetpatch_now": now})
    assert rollout.returncode == 0, rollout.stdout[-6000:]
    (planned,) = rollout.results("Plan the waves").values()
    plan = planned["ansible_facts"]["rollout_plan"]
    # The ledger, the mails and the plan agree: overridden are exactly the customers mailed and recorded.
    assert sorted(override["customer"] for override in plan["overrides"]) == sorted(told)
    assert [(entry["host"], entry["customer"]) for entry in plan["deferred"]] == [("initech-1", "initech")]
    assert "customer initech has no pre-notification of FP-2025-14847" in plan["deferred"][0]["detail"]
    assert fleet.service_version("acme-1") == fleet.service_version("globex-1") == "7.0.28"
    assert fleet.service_version("initech-1") == "7.0.26"

    # Status: two patched, one deferred to its window; publish is then allowed, with its retrospective.
    reports = tmp_path / "reports"
    status = ansible(REPO / "playbooks" / "status.yml", inventory, env=audit,
                     extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_status_dir": str(reports)})
    assert status.returncode == 0, status.stdout[-4000:]
    report = json.loads((reports / f"{PATCH}-status.json").read_text(encoding="utf-8"))
    assert {row["host"]: row["state"] for row in report["hosts"]} == {"acme-1": "patched", "globex-1": "patched", "initech-1": "deferred"}
    advisories = tmp_path / "advisories"
    publish = ansible(REPO / "playbooks" / "publish.yml", inventory, env=audit, extravars={
        **common, "fleetpatch_advisory_dir": str(advisories), "fleetpatch_advisory_publisher": PUBLISHER})
    assert publish.returncode == 0, publish.stdout[-4000:]
    retro = (advisories / f"{PATCH}.retrospective.md").read_text(encoding="utf-8")
    assert f"| first notice | {format_utc(min(parse_utc(at) for at in told.values()))} |" in retro
    decisions = retro.split("## Decisions")[1]
    assert decisions.count("| window overridden |") == 2 and "| deferred | initech-1 (customer initech) |" in decisions
    notices = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["data"]["customer"], r["data"]["status"]) for r in notices if r["event"] == "notification") == [
        ("acme", "sent"), ("globex", "sent"), ("initech", "failed")]
