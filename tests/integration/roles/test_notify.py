"""The notify role in real ansible-playbook runs against a real SMTP server (aiosmtpd on loopback).

Hosts are inventory entries whose versions come from a detection report, so no host is contacted: what is under
test is who is told what, the mails the server received, the ledger, the audit trail, and the plan the ledger
then makes for an urgent rollout.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import HostSpec
from fleetpatch_dev.mailserver import MailServer, make_certificate

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import load_manifest
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import plan_waves
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import parse_utc

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "notify.yml"
MANIFEST = REPO / "manifests" / "FP-2025-14847.yml"  # urgent, notify.lead_time 15h
LEAD = datetime.timedelta(hours=15)
CONTACT = {"acme": "Acme Ops <ops@acme.example>", "globex": "sec@globex.example", "initech": "it@initech.example",
           "hooli": "ops@hooli.example", "stark": "ops@stark.example"}
# host: (customer, version in the detection report); stark-1 is not in it (unknown), hooli's host runs the fix.
HOSTS = {"acme-1": ("acme", "7.0.26"), "acme-2": ("acme", "7.0.28"), "globex-1": ("globex", "7.0.27"), "initech-1": ("initech", "7.0.26"),
         "hooli-1": ("hooli", "7.0.28"), "stark-1": ("stark", None)}


def _window():
    """A weekly one-hour window three days from now (UTC): closed for the next two days, whenever the test runs."""
    day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).strftime("%a").lower()
    return {"days": [day], "start": "02:00", "duration": "1h", "timezone": "UTC"}


def _setup(tmp_path):
    window = _window()
    hostvars = {name: {"ansible_connection": "local", "customer": customer, "customer_contact": CONTACT[customer], "maintenance_window": window,
                       "region": "eu-west"} for name, (customer, _version) in HOSTS.items()}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hostvars}}), encoding="utf-8")
    report = tmp_path / "detect.json"
    # A detection report as the detect role writes it (detect_report.schema.json).
    rows = [{"host": name, "detected": {"version": version}} for name, (_c, version) in HOSTS.items() if version]
    report.write_text(json.dumps({"format": 1, "detected_at": "2026-03-03T12:00:00Z", "component": "fpdemo", "install_dir": "/srv/fpdemo",
                                  "patch": "FP-2025-14847", "hosts": rows}), encoding="utf-8")
    return inventory, report, hostvars


def _extravars(report, ledger, port):
    return {"fleetpatch_manifest": str(MANIFEST), "fleetpatch_detect_report": str(report), "fleetpatch_notifications": str(ledger),
            "fleetpatch_notify_sender": "fleetpatch NOC <noc@fleetpatch.example>", "fleetpatch_smtp_host": "127.0.0.1",
            "fleetpatch_smtp_port": port, "fleetpatch_smtp_security": "none"}


TELL = "Tell each customer of the affected hosts once (a customer in the ledger is not told again)"


def _notices(run, first_host="acme-1"):
    return {notice["customer"]: notice for notice in run.results(TELL)[first_host]["notices"]}


def _ledger(path):
    return {(record["customer"], record["patch_id"]): record["notified_at"] for record in yaml.safe_load(path.read_text())["notifications"]}


# ansible-runner starts ansible-playbook through forkpty while the mail server's thread runs; the child execs at once.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_notify_tells_each_affected_customer_once_survives_a_refusal_and_the_plan_agrees(tmp_path, ansible):
    inventory, report, hostvars = _setup(tmp_path)
    ledger = tmp_path / "notifications.yml"
    audit_log = tmp_path / "audit" / "audit.jsonl"
    audit_env = {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(audit_log)}

    # Check mode: who would be told what; nothing sent, nothing written.
    with MailServer() as server:
        dry = ansible(PLAYBOOK, inventory, extravars=_extravars(report, ledger, server.port), check=True, env=audit_env)
        assert dry.returncode == 0, dry.stdout
        assert server.messages == []
    assert not ledger.exists() and not Path(f"{ledger}.lock").exists()
    would = _notices(dry)
    assert {customer: (notice["status"], notice["hosts"]) for customer, notice in would.items()} == {
        "acme": ("would_send", ["acme-1"]), "globex": ("would_send", ["globex-1"]), "initech": ("would_send", ["initech-1"])}
    assert "acme-1 (eu-west), running fpdemo 7.0.26" in would["acme"]["body"] and "acme-2" not in would["acme"]["body"]

    # The server refuses initech's contact: acme and globex are told and recorded, initech is reported and not recorded.
    with MailServer(refuse=["it@initech.example"]) as server:
        first = ansible(PLAYBOOK, inventory, extravars=_extravars(report, ledger, server.port), env=audit_env)
        received = server.by_recipient()
    assert first.returncode == 2, first.stdout
    assert "1 customer(s) not told of FP-2025-14847, not recorded as notified: initech: 127.0.0.1:" in first.stdout, first.stdout
    assert "refused every recipient: it@initech.example (550 5.1.1" in first.stdout
    assert sorted(received) == ["ops@acme.example", "sec@globex.example"]
    assert all(len(messages) == 1 for messages in received.values())
    told = _notices(first)
    assert {customer: notice["status"] for customer, notice in told.items()} == {"acme": "sent", "globex": "sent", "initech": "failed"}
    recorded = _ledger(ledger)
    assert sorted(recorded) == [("acme", "FP-2025-14847"), ("globex", "FP-2025-14847")]
    for customer, address in (("acme", "ops@acme.example"), ("globex", "sec@globex.example")):
        mail = received[address][0].message
        notice = told[customer]
        # a long Message-ID may be folded onto its own line, which leaves the value a leading space
        assert (mail["Message-ID"].strip(), mail["X-Fleetpatch-Patch"], mail["X-Fleetpatch-Customer"]) == (notice["message_id"], "FP-2025-14847", customer)
        assert recorded[(customer, "FP-2025-14847")] == notice["notified_at"]
        # The promised time is in the subject and never after the moment the planner may override.
        assert notice["overrides_from"] in mail["Subject"] and mail["Subject"].startswith("[HIGH] FP-2025-14847: fpdemo: ")
        promised, at = parse_utc(notice["overrides_from"]), parse_utc(notice["notified_at"])
        assert datetime.timedelta(0) <= at + LEAD - promised < datetime.timedelta(minutes=2)
        assert f"{customer}-1 (eu-west), running fpdemo" in mail.get_content()
    audited = [json.loads(line) for line in audit_log.read_text().splitlines()]
    notes = {record["data"]["customer"]: record for record in audited if record["event"] == "notification"}
    assert {customer: (record["data"]["status"], record["patch_id"]) for customer, record in notes.items()} == {
        "acme": ("sent", "FP-2025-14847"), "globex": ("sent", "FP-2025-14847"), "initech": ("failed", "FP-2025-14847")}
    assert notes["acme"]["data"]["notified_at"] == recorded[("acme", "FP-2025-14847")]

    # The ledger makes the urgent plan: at the lead time after acme's and globex's notices their windows are
    # overridden; initech (untold) is deferred; a second short of it, acme waits too.
    manifest = load_manifest(MANIFEST)
    hosts = {name: {**{key: value for key, value in facts.items() if key != "ansible_connection"}, "version": HOSTS[name][1] or "unknown"}
             for name, facts in hostvars.items()}
    last = max(parse_utc(recorded[(customer, "FP-2025-14847")]) for customer in ("acme", "globex"))
    plan = plan_waves(hosts, manifest, now=last + LEAD, notifications=str(ledger))
    assert sorted(entry["host"] for entry in plan["overrides"]) == ["acme-1", "globex-1"]
    assert [(entry["host"], entry["reason"]) for entry in plan["deferred"]] == [("initech-1", "outside_window")]
    assert "customer initech has no pre-notification of FP-2025-14847" in plan["deferred"][0]["detail"]
    early = plan_waves(hosts, manifest, now=parse_utc(recorded[("acme", "FP-2025-14847")]) + LEAD - datetime.timedelta(seconds=1),
                       notifications=str(ledger))
    assert "acme-1" in [entry["host"] for entry in early["deferred"]]

    # A re-run with the server accepting everyone: only initech is told; nobody gets a second notice.
    with MailServer() as server:
        second = ansible(PLAYBOOK, inventory, extravars=_extravars(report, ledger, server.port), env=audit_env)
        assert second.returncode == 0, second.stdout
        assert sorted(server.by_recipient()) == ["it@initech.example"]
    again = _notices(second)
    statuses = {customer: notice["status"] for customer, notice in again.items()}
    assert statuses == {"acme": "already_notified", "globex": "already_notified", "initech": "sent"}
    assert again["acme"]["notified_at"] == recorded[("acme", "FP-2025-14847")]
    later = _ledger(ledger)
    assert sorted(later) == [("acme", "FP-2025-14847"), ("globex", "FP-2025-14847"), ("initech", "FP-2025-14847")]
    # Told late: at acme's and globex's lead time initech still waits for its window; at its own, it is overridden.
    told_late = parse_utc(later[("initech", "FP-2025-14847")])
    assert told_late > last
    plan = plan_waves(hosts, manifest, now=last + LEAD, notifications=str(ledger))
    assert [entry["host"] for entry in plan["deferred"]] == ["initech-1"] and "lead time 15h not reached" in plan["deferred"][0]["detail"]
    plan = plan_waves(hosts, manifest, now=told_late + LEAD, notifications=str(ledger))
    assert sorted(entry["host"] for entry in plan["overrides"]) == ["acme-1", "globex-1", "initech-1"]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_notify_detects_on_real_hosts_and_tells_only_the_affected_customer(fleet, ansible, tmp_path):
    """Without a detection report the role asks every host what it runs (two test-fleet hosts, one already fixed)."""
    fleet.add([HostSpec(name="old", version="7.0.26", customer="acme"), HostSpec(name="fixed", version="7.0.28", customer="globex")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"))
    ledger = tmp_path / "notifications.yml"
    with MailServer() as server:
        extravars = {"fleetpatch_manifest": str(manifest), "fleetpatch_notifications": str(ledger), "fleetpatch_notify_sender": "noc@fleetpatch.example",
                     "fleetpatch_smtp_host": "127.0.0.1", "fleetpatch_smtp_port": server.port, "fleetpatch_smtp_security": "none"}
        run = ansible(PLAYBOOK, fleet.write_inventory(), extravars=extravars)
        assert run.returncode == 0, run.stdout[-3000:]
        assert sorted(server.by_recipient()) == ["ops@acme.example"]
    assert {customer: (notice["status"], notice["hosts"]) for customer, notice in _notices(run, "old").items()} == {"acme": ("sent", ["old"])}
    assert sorted(_ledger(ledger)) == [("acme", "FP-2025-14847")]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_starttls_and_a_vaulted_password_that_nothing_keeps(tmp_path, ansible):
    """The login's password comes from a vaulted inventory variable: it reaches the server, and no output (-vvv),
    ledger or audit record holds it."""
    secret = "n0t-in-any-log-7f3a"
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("vault-key-for-this-test\n")
    encrypted = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_pass),
                                secret, "--name", "fleetpatch_smtp_password"], capture_output=True, text=True, check=True).stdout
    inventory, report, _hostvars = _setup(tmp_path)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(encrypted, encoding="utf-8")
    cert, key = make_certificate(tmp_path)
    ledger = tmp_path / "notifications.yml"
    audit_log = tmp_path / "audit" / "audit.jsonl"
    with MailServer(tls_files=(cert, key), login=("fleetpatch", secret)) as server:
        extravars = {**_extravars(report, ledger, server.port), "fleetpatch_smtp_security": "starttls", "fleetpatch_smtp_username": "fleetpatch",
                     "fleetpatch_smtp_ca_file": str(cert)}
        run = ansible(PLAYBOOK, inventory, extravars=extravars, env={
            "ANSIBLE_VAULT_PASSWORD_FILE": str(vault_pass), "ANSIBLE_VERBOSITY": "3",
            "ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(audit_log)})
        assert run.returncode == 0, run.stdout[-3000:]
        assert sorted(server.by_recipient()) == ["it@initech.example", "ops@acme.example", "sec@globex.example"]
        assert server.logins == ["fleetpatch"] * 3
    assert sorted(_ledger(ledger)) == [("acme", "FP-2025-14847"), ("globex", "FP-2025-14847"), ("initech", "FP-2025-14847")]
    events = json.dumps(run.events)
    for text in (run.stdout, events, ledger.read_text(), audit_log.read_text()):
        assert secret not in text
