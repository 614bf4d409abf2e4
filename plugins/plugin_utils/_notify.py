# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Customer pre-notification: who is told of a patch, what they are told, and the ledger of when each was told.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The ``fleetpatch.rollout.notify`` action is a thin shell over this module:

1. :func:`plan_notices` finds the customers to tell from the hosts' variables (``customer``, ``customer_contact``,
   ``maintenance_window``) and what detection found on them. A host is told of when the patch's ``affected``
   range holds the version it runs, by the planner's own rules (``_waves.py``): a host whose detection failed or
   that was unreachable is never called affected, and is listed as ``unknown`` instead. One notice per customer,
   to every contact its affected hosts name.
2. :func:`notice_view` gives a notice's times at a moment: the planner overrides a customer's windows for an
   ``urgent`` patch only once ``notified_at + notify.lead_time <= now`` (``_notifications.py``), and
   ``notified_at`` is when the mail server accepted the notice, which is never before the notice was written.
   So the notice promises ``overrides_from = now + lead_time`` (cut to the minute), and the planner cannot
   override any earlier. An ``emergency`` overrides at once; a ``routine`` patch never.
3. :func:`render` fills the operator's Jinja2 templates (a sandbox, undefined names are errors).
4. :class:`SmtpTransport` sends one message through SMTP (smtplib: STARTTLS or TLS, authentication); a refusal
   is a :class:`SendError` naming the server's answer. The moment ``send_message`` returns is the moment the
   server accepted the message.
5. :class:`Ledger` is the pre-notification record the planner reads (``notifications.schema.json``), rewritten
   atomically and durably (temporary file, fsync, rename, fsync of the directory) after every accepted notice,
   under an exclusive ``flock`` on ``<ledger>.lock`` held for the whole run, so two runs never send the same
   notice twice and never lose each other's records.
6. :func:`send_notices` runs them: every notice is rendered before the first is sent (a broken template sends
   nothing), a customer already in the ledger for the patch is not told again, a refused or failed send is
   reported for that customer and not recorded, and the others are sent all the same.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import os
import smtplib
import ssl
import time
from email.message import EmailMessage

import yaml

try:
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import SandboxedEnvironment
except ImportError:  # pragma: no cover - ansible-core requires Jinja2
    SandboxedEnvironment = None

from ansible_collections.fleetpatch.rollout.plugins.module_utils._flock import flock_until
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import durable_write
from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._notifications import NotificationError, validate_notifications
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import ReadError, read_yaml, short_repr
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import (
    PlanError, _detected, _duration_text, _host_items, _manifest_rules, validate_policy,
)
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import UTC, WindowError, format_utc, parse_utc, parse_window, window_state

__all__ = [
    "CONTACT_VAR", "SECURITY", "Ledger", "NotifyError", "SendError", "SmtpTransport", "build_message", "notice_view", "plan_notices",
    "render", "send_notices", "window_text",
]

CONTACT_VAR = "customer_contact"
SECURITY = ("starttls", "tls", "none")
CHANNEL = "email"
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_LEDGER_HEADER = ("# Pre-notification record (format: notifications.schema.json of the fleetpatch.rollout collection),\n"
                  "# kept by fleetpatch.rollout.notify: one record per customer and patch, notified_at when the mail server accepted it.\n")


class NotifyError(ValueError):
    """Input the notification cannot use, or a ledger it cannot keep; one line per problem, each naming field and value."""

    def __init__(self, errors):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


class SendError(Exception):
    """A notice the mail server refused or that could not be delivered to it; the text says which and why."""


# -- who is told what ---------------------------------------------------------------------------------------------


def _contacts(value, host):
    """The addresses a host's ``customer_contact`` names (a string of comma-separated addresses, or a list)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(item, str) for item in items):
        raise NotifyError(f"{host}: {CONTACT_VAR}: expected an e-mail address or a list of them, got {short_repr(value)}")
    found = []
    for item in items:
        for name, address in email.utils.getaddresses([item]):
            local, _sep, domain = address.rpartition("@")
            if not local or not domain or any(char.isspace() or char in "<>,;" for char in address):
                raise NotifyError(f"{host}: {CONTACT_VAR}: {short_repr(item)} is not an e-mail address such as ops@example.com")
            found.append(email.utils.formataddr((name, address)) if name else address)
    return found


def window_text(data):
    """A window mapping as a person reads it: ``tue, thu 02:00 for 4h (Europe/Berlin)``."""
    if "rrule" in data:
        return f"{data['rrule']} from {data['dtstart']} for {data['duration']} ({data['timezone']})"
    return f"{', '.join(data['days'])} {data['start']} for {data['duration']} ({data['timezone']})"


class _NoticePlan:
    """What :func:`plan_notices` found: the patch, its rules, one entry per customer, and the hosts not told of."""

    __slots__ = ("patch", "urgency", "lead_time", "unwindowed", "customers", "unknown", "no_customer")

    def __init__(self, patch, urgency, lead_time, unwindowed):
        self.patch = patch
        self.urgency = urgency
        self.lead_time = lead_time
        self.unwindowed = unwindowed
        self.customers = []
        self.unknown = []
        self.no_customer = []


def plan_notices(hosts, manifest, policy=None, detect_key="detect", report=None):
    """Who is told of ``manifest``'s patch: one entry per customer with affected hosts; NotifyError otherwise.

    ``hosts`` maps host name to its variables, as for the planner (``plan_waves``): ``customer``,
    ``customer_contact`` (an address, or a list), ``maintenance_window``, ``region``, ``cluster`` and the detection
    result under ``detect_key`` (or ``version``, as a detect report's rows give it). ``policy`` is the rollout's:
    its ``customer_windows`` stand in for hosts without a window of their own, its ``unwindowed`` says what
    happens to hosts without any. ``report``, when given, is what a detection report found per host (the
    ``hosts`` mapping of ``_detect_report.read_detect_report``: host name to its detection result): it says what
    each host runs instead, read by the planner's rules, and a host it does not list is unknown.
    """
    try:
        patch_id, urgency, affected, _fixed, _compatible, lead_time = _manifest_rules(manifest)
        policy = validate_policy(policy)
        items = _host_items(hosts)
    except PlanError as exc:
        raise NotifyError(exc.errors) from None
    plan = _NoticePlan(
        {key: manifest.get(key) for key in ("id", "title", "severity", "urgency", "advisories", "component", "fixed_version", "affected")},
        urgency, lead_time, policy["unwindowed"],
    )
    plan.patch["id"] = patch_id
    errors = []
    rows = _report_rows(report) if report is not None else None
    customers = {}
    windows = {}
    for name, facts in sorted(items, key=lambda item: item[0]):
        if not isinstance(facts, dict):
            errors.append(f"{name}: expected a mapping of host variables, got {short_repr(facts)}")
            continue
        if rows is None:
            version, why, _lost = _detected(facts, detect_key)
        elif name in rows:
            version, why, _lost = _detected({detect_key: rows[name]}, detect_key)
        else:
            version, why = None, "not in the detection report"
        if version is None:
            plan.unknown.append({"host": name, "customer": facts.get("customer"), "why": why})
            continue
        try:
            if Version(str(version)) not in affected:
                continue
        except VersionError:
            plan.unknown.append({"host": name, "customer": facts.get("customer"), "why": f"detected version {short_repr(version)} is not a version"})
            continue
        customer = facts.get("customer")
        if customer is None:
            plan.no_customer.append({"host": name, "version": str(version)})
            continue
        if not isinstance(customer, str) or not customer:
            errors.append(f"{name}: customer: {short_repr(customer)} is not a non-empty string")
            continue
        entry = customers.setdefault(customer, {"customer": customer, "to": [], "seen": set(), "hosts": []})
        contact = facts.get(CONTACT_VAR)
        if contact is not None:
            try:
                for address in _contacts(contact, name):
                    plain = email.utils.parseaddr(address)[1].lower()
                    if plain not in entry["seen"]:
                        entry["seen"].add(plain)
                        entry["to"].append(address)
            except NotifyError as exc:
                errors.extend(exc.errors)
        data = facts.get("maintenance_window")
        window = None
        if data is not None:
            key = json.dumps(data, sort_keys=True, default=str)
            if key not in windows:
                try:
                    windows[key] = (parse_window(data), window_text(data))
                except WindowError as exc:
                    windows[key] = exc
            window = windows[key]
            if isinstance(window, WindowError):
                errors.extend(f"{name}: {line}" for line in str(window).splitlines())
                continue
        elif customer in policy["customer_windows"]:
            found = policy["customer_windows"][customer]
            window = (found, window_text(found.data))
        entry["hosts"].append({"host": name, "region": facts.get("region"), "cluster": facts.get("cluster"), "version": str(version),
                               "window": window})
    if errors:
        raise NotifyError(sorted(errors))
    plan.customers = [customers[name] for name in sorted(customers)]
    return plan


def _report_rows(report):
    """A detection report's results by host; NotifyError naming the entry otherwise."""
    if not isinstance(report, dict):
        raise NotifyError(f"detect report: expected the detection result of each host by name, got {type(report).__name__} {short_repr(report)}")
    for host, detected in report.items():
        if not isinstance(detected, dict):
            raise NotifyError(f"detect report: {host}: expected a detection result, got {short_repr(detected)}")
    return report


def _floor_minute(moment):
    return moment.replace(second=0, microsecond=0)


def notice_view(plan, entry, now):
    """One customer's notice at ``now`` (an aware datetime), as plain data for the templates and the result.

    ``overrides_from`` is when the rollout may start patching the customer's hosts outside their windows: for an
    urgent patch ``now + lead_time``, cut down to the minute (the ledger's ``notified_at`` is later than ``now``,
    so the planner never overrides before it); for an emergency ``now``; for a routine patch None.
    """
    now = parse_utc(now, "now")
    if plan.urgency == "urgent":
        overrides_from = _floor_minute(now + plan.lead_time)
    elif plan.urgency == "emergency":
        overrides_from = _floor_minute(now)
    else:
        overrides_from = None
    hosts = []
    for item in entry["hosts"]:
        row = {key: item[key] for key in ("host", "region", "cluster", "version")}
        row.update(window=None, window_open=False, next_window=None, next_window_end=None, overridden=False)
        if item["window"] is not None:
            window, text = item["window"]
            current, upcoming = window_state(window, now)
            row["window"] = text
            row["window_open"] = current is not None
            shown = current or upcoming
            if shown is not None:
                row["next_window"], row["next_window_end"] = format_utc(shown[0]), format_utc(shown[1])
            # Overridden: the next chance to patch it inside its window comes after the rollout may override it.
            row["overridden"] = overrides_from is not None and (shown is None or shown[0] > overrides_from)
        hosts.append(row)
    return {
        "customer": entry["customer"], "to": list(entry["to"]), "hosts": hosts, "patch": dict(plan.patch), "urgency": plan.urgency,
        "lead_time": _duration_text(plan.lead_time) if plan.lead_time is not None else None, "now": format_utc(now),
        "overrides_from": format_utc(overrides_from), "unwindowed": plan.unwindowed,
    }


# -- the message ------------------------------------------------------------------------------------------------


def render(source, name, variables):
    """``source`` (a Jinja2 template's text) rendered with ``variables`` in a sandbox; NotifyError naming ``name``."""
    if SandboxedEnvironment is None:  # pragma: no cover
        raise NotifyError(f"{name}: cannot render it: Jinja2 is missing")
    environment = SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                       autoescape=False)  # nosec B701 - plain-text mail, not HTML
    try:
        return environment.from_string(source).render(**variables)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc.__traceback__)
        raise NotifyError(f"{name}{f', line {line}' if line else ''}: {type(exc).__name__}: {exc}") from None


def _template_line(trace):
    """The template's line where a rendering error happened (Jinja2 maps its frames to ``<template>``), or None."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def build_message(sender, to, subject, body, customer, patch_id, now):
    """The notice as an e-mail: one line of subject, the body as UTF-8 text, a Message-ID and fleetpatch's headers."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())  # one line, whatever the template wrote
    message["Date"] = email.utils.format_datetime(now.astimezone(UTC))
    domain = sender.rpartition("@")[2].strip(" >") or None
    message["Message-ID"] = email.utils.make_msgid(idstring=f"{patch_id}.{customer}".replace(" ", "_"), domain=domain)
    message["X-Fleetpatch-Patch"] = patch_id
    message["X-Fleetpatch-Customer"] = customer
    message.set_content(body)
    return message


class SmtpTransport:
    """Sends one message per SMTP session (smtplib): plain, STARTTLS or TLS, with a login when a username is given.

    The password is kept only here and sent only after TLS is up: a username with ``security=none`` is refused.
    """

    def __init__(self, host, port=None, security="starttls", username=None, password=None, timeout=30, ca_file=None):
        errors = []
        if not isinstance(host, str) or not host:
            errors.append(f"smtp.host: expected the mail server's name or address, got {short_repr(host)}")
        if security not in SECURITY:
            errors.append(f"smtp.security: {short_repr(security)} is not one of {', '.join(repr(item) for item in SECURITY)}")
        if username and security == "none":
            errors.append("smtp.username: a login over an unencrypted connection would send the password in clear: set smtp.security to "
                          "'starttls' or 'tls'")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
            errors.append(f"smtp.port: {short_repr(port)} is not a TCP port")
        if errors:
            raise NotifyError(errors)
        self.host = host
        self.port = port or _DEFAULT_PORTS[security]
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_file = ca_file

    def __repr__(self):
        return f"SmtpTransport({self.host}:{self.port}, {self.security}, user={self.username!r})"

    def _context(self):
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, message):
        """Send ``message``; the UTC time the server accepted it. SendError with the server's answer otherwise."""
        where = f"{self.host}:{self.port}"
        try:
            if self.security == "tls":
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise SendError(f"{where} does not offer STARTTLS (smtp.security is 'starttls')")
                    client.starttls(context=self._context())
                    client.ehlo()
                if self.username:
                    client.login(self.username, "" if self._password is None else str(self._password))
                refused = client.send_message(message)
                accepted = datetime.datetime.now(UTC)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"{where} refused every recipient: {_refusals(exc.recipients)}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"{where} refused the login of {self.username!r}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise SendError(f"cannot send through {where}: {type(exc).__name__}: {exc}") from None
        if refused:
            raise SendError(f"{where} accepted the notice for some recipients but refused {_refusals(refused)}: the customer counts as not told")
        return accepted


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refusals(refused):
    return "; ".join(f"{address} ({code} {_text(answer)})" for address, (code, answer) in sorted(refused.items()))


# -- the ledger -------------------------------------------------------------------------------------------------


class Ledger:
    """The pre-notification record at ``path``, read and checked; with ``write``, locked for the run and kept.

    Use as a context manager. A missing file is an empty record (created by the first :meth:`add`); an existing
    one that is not a valid record is refused before anything is sent, naming the file and each bad field.
    """

    def __init__(self, path, write=True, lock_timeout=60.0):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.lock_path = self.path + ".lock"
        self.write = write
        self.lock_timeout = lock_timeout
        self.data = None
        self.checked = None
        self._fd = None

    def __enter__(self):
        if self.write:
            directory = os.path.dirname(self.path)
            if not os.path.isdir(directory):
                raise NotifyError(f"ledger: the directory of {self.path} does not exist")
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            if not flock_until(self._fd, time.monotonic() + self.lock_timeout):
                os.close(self._fd)
                self._fd = None
                raise NotifyError(f"ledger: {self.lock_path} is held by another run for more than {self.lock_timeout:g}s; try again when it ends")
        try:
            self._read()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        return False

    def _read(self):
        if not os.path.exists(self.path):
            self.data = {"notifications": []}
        else:
            try:
                data = read_yaml(self.path)
            except ReadError as exc:
                raise NotifyError(f"ledger: {exc}") from None
            try:
                validate_notifications(data, self.path)
            except NotificationError as exc:
                raise NotifyError(str(exc).splitlines()) from None
            self.data = data
        self.checked = validate_notifications(self.data, self.path)

    def told(self, customer, patch_id):
        """The earliest record of ``customer`` told of ``patch_id``, as the file has it, or None."""
        found = self.checked.earliest.get((customer, patch_id))
        if found is None:
            return None
        return {**found, "notified_at": format_utc(found["notified_at"])}

    def add(self, record):
        """Append ``record`` and rewrite the file atomically and durably (the run must hold the lock)."""
        if self._fd is None:
            raise NotifyError("ledger: not open for writing")
        record = json.loads(json.dumps(record))  # plain str, whatever subclass the values came as (Ansible tags its strings)
        data = {**self.data, "notifications": [*self.data["notifications"], record]}
        checked = validate_notifications(data, self.path)
        if self.path.endswith(".json"):
            text = json.dumps(data, indent=2) + "\n"
        else:
            text = _LEDGER_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
        mode = os.stat(self.path).st_mode & 0o777 if os.path.exists(self.path) else 0o644
        durable_write(self.path, text.encode("utf-8"), mode=mode)
        self.data, self.checked = data, checked


def _ceil_second(moment):
    """``moment`` rounded up to the whole second: a record never says earlier than the server accepted."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
    return moment


def send_notices(plan, ledger, templates, sender, transport=None, check_mode=False, now=None, by=None):
    """Tell every customer of ``plan`` once; one result per customer, in customer order.

    ``templates`` is ``{"subject": (name, text), "body": (name, text)}``; ``sender`` the From address; ``now``
    a fixed time to write every notice at (for tests; it must not be later than the sends) or None for the
    clock at each send; ``by`` who tells them
    (the ledger's ``by``, default ``sender``). A result's ``status`` is ``sent``, ``already_notified``,
    ``would_send`` (check mode) or ``failed`` (``error`` says why); ``sent`` ones are in the ledger before the
    next customer is told. Every notice is rendered once before the first is sent, so that a template error
    sends nothing (NotifyError).
    """
    patch_id = plan.patch["id"]
    clock = (lambda: parse_utc(now, "now")) if now is not None else (lambda: datetime.datetime.now(UTC))

    def compose(entry):
        view = notice_view(plan, entry, clock())
        variables = {"notice": view, "patch": view["patch"], "sender": sender}
        return view, {part: render(text, name, variables) for part, (name, text) in templates.items()}

    pending = []
    results = []
    for entry in plan.customers:
        told = ledger.told(entry["customer"], patch_id)
        view, texts = compose(entry)
        result = {"customer": entry["customer"], "to": view["to"], "hosts": [row["host"] for row in view["hosts"]],
                  "overrides_from": view["overrides_from"], "subject": " ".join(texts["subject"].split()), "status": None,
                  "notified_at": None, "message_id": None, "error": None}
        if told is not None:
            result.update(status="already_notified", notified_at=told["notified_at"], overrides_from=None, subject=None)
        elif not view["to"]:
            result.update(status="failed", error=f"no contact: none of its affected hosts ({', '.join(result['hosts'])}) sets {CONTACT_VAR}")
        elif check_mode:
            result.update(status="would_send", body=texts["body"])
        else:
            pending.append((entry, result))
        results.append(result)
    for entry, result in pending:
        view, texts = compose(entry)  # times as of this send
        moment = clock()
        message = build_message(sender, view["to"], texts["subject"], texts["body"], entry["customer"], patch_id, moment)
        result.update(overrides_from=view["overrides_from"], subject=str(message["Subject"]), message_id=str(message["Message-ID"]))
        try:
            accepted = transport.send(message)
        except SendError as exc:
            result.update(status="failed", error=str(exc))
            continue
        notified_at = format_utc(_ceil_second(accepted))
        note = f"Message-ID {result['message_id']} to {', '.join(view['to'])}"
        ledger.add({"customer": entry["customer"], "patch_id": patch_id, "notified_at": notified_at, "channel": CHANNEL,
                    "by": by or sender, "note": note})
        result.update(status="sent", notified_at=notified_at)
    return results
