"""Customer notices: who is told, the times they are given, the templates, the ledger, and SMTP against a real server."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev.mailserver import MailServer, make_certificate

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _notify
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import load_manifest

REPO = Path(__file__).resolve().parents[4]
MANIFEST = load_manifest(REPO / "manifests" / "FP-2025-14847.yml")  # urgent, lead time 15h
TEMPLATES = {part: (f"notice_{part}.j2", (REPO / "roles" / "notify" / "templates" / f"notice_{part}.j2").read_text()) for part in ("subject", "body")}
UTC = datetime.timezone.utc
# Tuesday 2026-03-03, 12:00 UTC (13:00 in Berlin): the Berlin tue/thu 02:00 window opened at 01:00Z and closed at 05:00Z.
NOW = "2026-03-03T12:00:00Z"
BERLIN = {"days": ["tue", "thu"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
SENDER = "fleetpatch NOC <noc@fleetpatch.example>"


def host(customer="acme", version="7.0.26", contact="ops@acme.example", window=None, **more):
    facts = {"customer": customer, "detect": {"version": version}, "maintenance_window": window}
    if contact is not None:
        facts["customer_contact"] = contact
    return {**facts, **more}


def manifest(**changes):
    return {**MANIFEST, **changes}


@pytest.mark.parametrize(
    ("hosts", "told", "unknown", "no_customer"),
    [
        # Only affected hosts count: acme's fixed host and hooli's fixed one are nobody's news.
        ({"a1": host(), "a2": host(version="7.0.28"), "h1": host("hooli", "7.0.28", "ops@hooli.example")},
         {"acme": (["ops@acme.example"], ["a1"])}, [], []),
        # 8.0.16 is in the second range; 7.0.25 is outside compatible_with, still affected: its customer is told.
        ({"a1": host(version="8.0.16"), "g1": host("globex", "7.0.25", "sec@globex.example")},
         {"acme": (["ops@acme.example"], ["a1"]), "globex": (["sec@globex.example"], ["g1"])}, [], []),
        # One notice per customer, to every contact its affected hosts name, each address once.
        ({"a1": host(contact="Acme Ops <OPS@acme.example>, boss@acme.example"), "a2": host(contact=["ops@acme.example", "sec@acme.example"])},
         {"acme": (["Acme Ops <OPS@acme.example>", "boss@acme.example", "sec@acme.example"], ["a1", "a2"])}, [], []),
        # A customer whose affected hosts name no contact is still a notice (it fails when sent).
        ({"a1": host(contact=None)}, {"acme": ([], ["a1"])}, [], []),
        # Unknown versions are never affected: listed, not told of; an affected host without customer is listed.
        ({"a1": {"customer": "acme", "detect": {"failed": True, "msg": "boom"}}, "a2": {"customer": "acme", "detect": {"unreachable": True, "msg": "gone"}},
          "x1": {"detect": {"version": "7.0.26"}}},
         {}, [("a1", "detection failed: 'boom'"), ("a2", "'gone'")], ["x1"]),
    ],
    ids=["affected-only", "both-ranges", "contacts-merged", "no-contact", "unknown-and-no-customer"],
)
def test_who_is_told(hosts, told, unknown, no_customer):
    plan = _notify.plan_notices(hosts, MANIFEST)
    assert {entry["customer"]: (entry["to"], [row["host"] for row in entry["hosts"]]) for entry in plan.customers} == told
    assert [(row["host"], row["why"]) for row in plan.unknown] == unknown
    assert [row["host"] for row in plan.no_customer] == no_customer


def test_a_detection_report_says_what_hosts_run_and_a_host_it_lacks_is_unknown():
    hosts = {"a1": {"customer": "acme", "customer_contact": "ops@acme.example"}, "a2": {"customer": "acme", "customer_contact": "ops@acme.example"},
             "a3": {"customer": "acme"}}
    # What a detection report found (read_detect_report's hosts): a2 was unreachable.
    report = {"a1": {"version": "7.0.26", "affected": True}, "a2": {"unreachable": True, "msg": "Failed to connect"},
              "elsewhere": {"version": "7.0.26"}}
    plan = _notify.plan_notices(hosts, MANIFEST, report=report)
    assert [[row["host"] for row in entry["hosts"]] for entry in plan.customers] == [["a1"]]
    assert [(row["host"], row["why"]) for row in plan.unknown] == [("a2", "'Failed to connect'"), ("a3", "not in the detection report")]


@pytest.mark.parametrize(
    ("hosts", "report", "errors"),
    [
        ({"a1": host(contact="not an address")}, None, ["a1: customer_contact: 'not an address' is not an e-mail address such as ops@example.com"]),
        ({"a1": host(contact=42)}, None, ["a1: customer_contact: expected an e-mail address or a list of them, got 42"]),
        ({"a1": host(customer="")}, None, ["a1: customer: '' is not a non-empty string"]),
        ({"a1": host(window={**BERLIN, "timezone": "Mars/Base"})}, None, ["a1: maintenance_window.timezone: 'Mars/Base' is not an IANA time zone such as "
                                                                          "'Europe/Berlin'"]),
        ({"a1": host()}, {"a1": "7.0.26"}, ["detect report: a1: expected a detection result, got '7.0.26'"]),
        ({"a1": host()}, [{"host": "a1", "version": "7.0.26"}],
         ["detect report: expected the detection result of each host by name, got list [{'host': 'a1', 'version': '7.0.26'}]"]),
    ],
    ids=["contact-text", "contact-number", "customer-empty", "window-zone", "report-entry", "report-rows"],
)
def test_bad_input_is_refused_naming_host_field_and_value(hosts, report, errors):
    with pytest.raises(_notify.NotifyError) as raised:
        _notify.plan_notices(hosts, MANIFEST, report=report)
    assert raised.value.errors == errors


@pytest.mark.parametrize(
    ("urgency", "now", "overrides_from", "overridden"),
    [
        # Urgent: the lead time after now, cut to the minute; the next window (Thursday 01:00Z) comes after it.
        ("urgent", "2026-03-03T12:00:59Z", "2026-03-04T03:00:00Z", True),
        # Told at 10:30 on Monday: the window opens Tuesday 01:00Z, before the override (01:30Z): patched in it.
        ("urgent", "2026-03-02T10:30:00Z", "2026-03-03T01:30:00Z", False),
        ("emergency", "2026-03-03T12:00:30Z", "2026-03-03T12:00:00Z", True),
        ("routine", "2026-03-03T12:00:00Z", None, False),
    ],
)
def test_when_the_windows_are_overridden(urgency, now, overrides_from, overridden):
    plan = _notify.plan_notices({"a1": host(window=BERLIN), "a2": host()}, manifest(urgency=urgency))
    view = _notify.notice_view(plan, plan.customers[0], now)
    assert view["overrides_from"] == overrides_from
    first, second = view["hosts"]
    assert (first["window"], first["overridden"]) == ("tue, thu 02:00 for 4h (Europe/Berlin)", overridden)
    assert (second["window"], second["next_window"], second["overridden"]) == (None, None, False)


def test_an_open_window_is_shown_open_and_a_customer_window_stands_in():
    policy = {"customer_windows": {"acme": {"days": ["tue"], "start": "12:00", "duration": "2h", "timezone": "UTC"}}}
    plan = _notify.plan_notices({"a1": host()}, MANIFEST, policy=policy)
    row = _notify.notice_view(plan, plan.customers[0], NOW)["hosts"][0]
    assert row == {"host": "a1", "region": None, "cluster": None, "version": "7.0.26", "window": "tue 12:00 for 2h (UTC)", "window_open": True,
                   "next_window": "2026-03-03T12:00:00Z", "next_window_end": "2026-03-03T14:00:00Z", "overridden": False}


def test_the_default_body_says_until_when_an_open_window_is_open():
    policy = {"customer_windows": {"acme": {"days": ["tue"], "start": "12:00", "duration": "2h", "timezone": "UTC"}}}
    plan = _notify.plan_notices({"a1": host()}, manifest(urgency="routine"), policy=policy)
    view = _notify.notice_view(plan, plan.customers[0], NOW)
    body = _notify.render(TEMPLATES["body"][1], "body", {"notice": view, "patch": view["patch"], "sender": SENDER})
    assert "Each host is patched inside its next maintenance window." in body
    assert "  maintenance window: tue 12:00 for 2h (UTC); open now, until 2026-03-03T14:00:00Z\n" in body


def test_the_default_templates_say_patch_hosts_and_when():
    plan = _notify.plan_notices({"a1": host(window=BERLIN, region="eu-west"), "a2": host(version="7.0.27")}, MANIFEST)
    view = _notify.notice_view(plan, plan.customers[0], NOW)
    variables = {"notice": view, "patch": view["patch"], "sender": SENDER}
    subject = _notify.render(TEMPLATES["subject"][1], "subject", variables)
    body = _notify.render(TEMPLATES["body"][1], "body", variables)
    assert subject == ("[HIGH] FP-2025-14847: fpdemo: POST /v1/echo answers more bytes than it was sent, leaking other requests' data - your "
                       "maintenance windows may be overridden from 2026-03-04T03:00:00Z")
    for line in ("Patch:    FP-2025-14847 (CVE-2025-14847)\n", "Severity: high\n", "Urgency:  urgent\n",
                 "outside their maintenance windows from\n2026-03-04T03:00:00Z (UTC) on, 15h after this notice.",
                 "- a1 (eu-west), running fpdemo 7.0.26\n  maintenance window: tue, thu 02:00 for 4h (Europe/Berlin); next 2026-03-05T01:00:00Z to "
                 "2026-03-05T05:00:00Z\n  overridden: may be patched from 2026-03-04T03:00:00Z\n",
                 "- a2, running fpdemo 7.0.27\n  no maintenance window: may be patched at any time\n"):
        assert line in body


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ notice.nope }}", "mine.j2, line 1: UndefinedError: 'dict object' has no attribute 'nope'"),
        ("line\n{% if %}", "mine.j2, line 2: TemplateSyntaxError: Expected an expression, got 'end of statement block'"),
        ("{{ ''.__class__.__mro__ }}", "mine.j2, line 1: SecurityError: access to attribute '__class__' of 'str' object is unsafe."),
    ],
    ids=["undefined", "syntax", "sandbox"],
)
def test_a_template_error_names_the_template_and_line(source, error):
    with pytest.raises(_notify.NotifyError) as raised:
        _notify.render(source, "mine.j2", {"notice": {}})
    assert str(raised.value) == error


def _plan(**hosts):
    return _notify.plan_notices(hosts, MANIFEST)


def _records(path):
    return [(record["customer"], record["patch_id"]) for record in yaml.safe_load(path.read_text())["notifications"]]


def test_send_tells_each_customer_once_and_a_refusal_stops_nobody_else(tmp_path):
    plan = _plan(a1=host(), g1=host("globex", contact="sec@globex.example"), i1=host("initech", contact="it@initech.example"),
                 n1=host("nocontact", contact=None))
    ledger_path = tmp_path / "notifications.yml"
    with MailServer(refuse=["it@initech.example"]) as server:
        transport = _notify.SmtpTransport("127.0.0.1", server.port, security="none", timeout=10)
        with _notify.Ledger(ledger_path) as ledger:
            results = _notify.send_notices(plan, ledger, TEMPLATES, SENDER, transport=transport, by="jane")
        first = {result["customer"]: result for result in results}
        statuses = {name: result["status"] for name, result in first.items()}
        assert statuses == {"acme": "sent", "globex": "sent", "initech": "failed", "nocontact": "failed"}
        assert first["initech"]["error"].endswith("refused every recipient: it@initech.example (550 5.1.1 <it@initech.example>: mailbox unavailable)")
        assert first["nocontact"]["error"] == "no contact: none of its affected hosts (n1) sets customer_contact"
        assert _records(ledger_path) == [("acme", "FP-2025-14847"), ("globex", "FP-2025-14847")]
        record = yaml.safe_load(ledger_path.read_text())["notifications"][0]
        assert record == {"customer": "acme", "patch_id": "FP-2025-14847", "notified_at": first["acme"]["notified_at"], "channel": "email", "by": "jane",
                          "note": f"Message-ID {first['acme']['message_id']} to ops@acme.example"}
        assert sorted(server.by_recipient()) == ["ops@acme.example", "sec@globex.example"]
        server.refuse.clear()
        with _notify.Ledger(ledger_path) as ledger:
            again = {result["customer"]: result for result in _notify.send_notices(plan, ledger, TEMPLATES, SENDER, transport=transport)}
        statuses = {name: result["status"] for name, result in again.items()}
        assert statuses == {"acme": "already_notified", "globex": "already_notified", "initech": "sent", "nocontact": "failed"}
        assert again["acme"]["notified_at"] == first["acme"]["notified_at"]
        assert {address: len(messages) for address, messages in server.by_recipient().items()} == {
            "ops@acme.example": 1, "sec@globex.example": 1, "it@initech.example": 1}
    mail = server.by_recipient()["ops@acme.example"][0].message
    assert (mail["From"], mail["To"], mail["X-Fleetpatch-Customer"]) == (SENDER, "ops@acme.example", "acme")
    assert "- a1, running fpdemo 7.0.26" in mail.get_content()


def test_check_mode_and_a_broken_template_send_and_write_nothing(tmp_path):
    plan = _plan(a1=host(), g1=host("globex", contact="sec@globex.example"))
    ledger_path = tmp_path / "notifications.yml"
    with MailServer() as server:
        transport = _notify.SmtpTransport("127.0.0.1", server.port, security="none", timeout=10)
        with _notify.Ledger(ledger_path, write=False) as ledger:
            results = _notify.send_notices(plan, ledger, TEMPLATES, SENDER, check_mode=True)
        assert [(result["customer"], result["status"]) for result in results] == [("acme", "would_send"), ("globex", "would_send")]
        assert "Dear acme team," in results[0]["body"]
        broken = {**TEMPLATES, "body": ("body.j2", "{% if notice.customer == 'globex' %}{{ notice.nope }}{% endif %}")}
        with _notify.Ledger(ledger_path) as ledger, pytest.raises(_notify.NotifyError, match="body.j2, line 1: UndefinedError"):
            _notify.send_notices(plan, ledger, broken, SENDER, transport=transport)
        assert server.messages == []
    assert sorted(os.listdir(tmp_path)) == ["notifications.yml.lock"]


def test_two_runs_at_once_tell_each_customer_once(tmp_path):
    """Each run holds the ledger's lock from its read to its last record: the second reads what the first recorded.
    The server takes 0.3 s a message, so that without the lock both runs would read an empty ledger and send."""
    plan = _plan(a1=host(), g1=host("globex", contact="sec@globex.example"))
    ledger_path = tmp_path / "notifications.yml"
    outcomes = []

    def run(transport):
        with _notify.Ledger(ledger_path, lock_timeout=30) as ledger:
            results = _notify.send_notices(plan, ledger, TEMPLATES, SENDER, transport=transport)
        outcomes.append(sorted((result["customer"], result["status"]) for result in results))

    with MailServer(delay=0.3) as server:
        transport = _notify.SmtpTransport("127.0.0.1", server.port, security="none", timeout=10)
        runs = [threading.Thread(target=run, args=(transport,)), threading.Thread(target=run, args=(transport,))]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(60)
        assert {address: len(messages) for address, messages in server.by_recipient().items()} == {"ops@acme.example": 1, "sec@globex.example": 1}
    assert sorted(outcomes) == [[("acme", "already_notified"), ("globex", "already_notified")], [("acme", "sent"), ("globex", "sent")]]
    assert _records(ledger_path) == [("acme", "FP-2025-14847"), ("globex", "FP-2025-14847")]


def test_the_ledger_keeps_hand_written_records_and_refuses_a_bad_one(tmp_path):
    path = tmp_path / "notifications.json"
    path.write_text('{"notifications": [{"customer": "acme", "patch_id": "FP-2025-14847", "notified_at": "2025-12-18T10:00:00+01:00", '
                    '"channel": "phone", "by": "jane"}]}')
    with _notify.Ledger(path) as ledger:
        assert ledger.told("acme", "FP-2025-14847")["notified_at"] == "2025-12-18T09:00:00Z"
        ledger.add({"customer": "globex", "patch_id": "FP-2025-14847", "notified_at": "2025-12-18T10:00:00Z", "channel": "email", "by": "x"})
    assert [record["customer"] for record in __import__("json").loads(path.read_text())["notifications"]] == ["acme", "globex"]
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []
    path.write_text('{"notifications": [{"customer": "acme", "patch_id": "CVE-1", "notified_at": "yesterday", "channel": "email", "by": "x"}]}')
    with pytest.raises(_notify.NotifyError) as raised, _notify.Ledger(path):
        pass
    assert str(raised.value).startswith(f"{path}: notifications[0].notified_at: 'yesterday' is not an RFC 3339 time")
    assert f"{path}: notifications[0].patch_id: " in str(raised.value)


def test_a_second_run_waits_for_the_ledger_lock_and_gives_up_naming_it(tmp_path):
    path = tmp_path / "notifications.yml"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True)\ntime.sleep(30)\n", f"{path}.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(_notify.NotifyError) as raised, _notify.Ledger(path, lock_timeout=0.3):
            pass
        assert str(raised.value) == f"ledger: {path}.lock is held by another run for more than 0.3s; try again when it ends"
    finally:
        holder.kill()
        holder.wait()
    with _notify.Ledger(path, lock_timeout=5) as ledger:
        assert ledger.data == {"notifications": []}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _message():
    return _notify.build_message(SENDER, ["ops@acme.example"], "subject", "body\n", "acme", "FP-2025-14847", datetime.datetime.now(UTC))


def test_starttls_and_login(tls_files):
    cert, _key = tls_files
    with MailServer(tls_files=tls_files, login=("fleetpatch", "s3cret-Pw")) as server:
        before = datetime.datetime.now(UTC)
        accepted = _notify.SmtpTransport("127.0.0.1", server.port, username="fleetpatch", password="s3cret-Pw", ca_file=str(cert), timeout=10).send(_message())
        assert before <= accepted <= datetime.datetime.now(UTC)
        assert ([received.rcpt_tos for received in server.messages], server.logins) == ([["ops@acme.example"]], ["fleetpatch"])


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"username": "fleetpatch", "password": "wrong-Pw"}, "{where} refused the login of 'fleetpatch': 535 5.7.8 Authentication credentials invalid"),
        ({"security": "none", "username": None, "password": None}, "{where} answered 530 Must issue a STARTTLS command first"),
        ({"ca_file": None}, "cannot send through {where}: SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                            "self-signed certificate"),
    ],
    ids=["wrong-password", "no-starttls", "untrusted-certificate"],
)
def test_a_refused_session_says_why_and_never_the_password(tls_files, settings, error):
    cert, _key = tls_files
    with MailServer(tls_files=tls_files, login=("fleetpatch", "s3cret-Pw")) as server:
        options = {"username": "fleetpatch", "password": "s3cret-Pw", "ca_file": str(cert), "timeout": 10, **settings}
        with pytest.raises(_notify.SendError) as raised:
            _notify.SmtpTransport("127.0.0.1", server.port, **options).send(_message())
    text = str(raised.value)
    assert text.startswith(error.format(where=f"127.0.0.1:{server.port}")) and "Pw" not in text
    assert server.messages == []


def test_a_server_without_starttls_is_refused_when_starttls_is_asked():
    with MailServer() as server:
        with pytest.raises(_notify.SendError, match=rf"^127.0.0.1:{server.port} does not offer STARTTLS \(smtp.security is 'starttls'\)$"):
            _notify.SmtpTransport("127.0.0.1", server.port, timeout=10).send(_message())
        assert server.messages == []


@pytest.mark.parametrize(
    ("settings", "errors"),
    [
        ({"host": ""}, ["smtp.host: expected the mail server's name or address, got ''"]),
        ({"host": "mx", "security": "ssl"}, ["smtp.security: 'ssl' is not one of 'starttls', 'tls', 'none'"]),
        ({"host": "mx", "security": "none", "username": "u"}, ["smtp.username: a login over an unencrypted connection would send the password in "
                                                               "clear: set smtp.security to 'starttls' or 'tls'"]),
        ({"host": "mx", "port": 70000}, ["smtp.port: 70000 is not a TCP port"]),
    ],
)
def test_smtp_settings_are_checked(settings, errors):
    with pytest.raises(_notify.NotifyError) as raised:
        _notify.SmtpTransport(**settings)
    assert raised.value.errors == errors
