# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The retrospective of a patch: its timeline and the decisions taken, from the audit trail and the ledger.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The milestones, each with its time (RFC 3339, UTC) and the time since detection, or None when not reached:

- ``detection``: the manifest's ``detected_at``;
- ``first notice``: the earliest pre-notification of the patch in the ledger (``notified_at``), or else the earliest
  ``notification`` record of the trail that says a notice was sent;
- ``canary start``: the first ``wave_start`` record of the patch's wave ``canary`` (or ``canary 1/N``);
- ``majority patched``: the first moment more than half of the hosts the patch concerns ran the fix, and ``whole
  fleet``: the first moment all of them did, from the fleet report's history (the share patched over time, drawn
  from the trail's apply and rollback records: ``_status.history``);
- ``publication``: when the advisory was published.

The decisions, in the order of the trail: approvals (who approved and who implemented, the urgency, a justification,
the AWX job), the windows the plan overrode and the hosts it deferred (with the reason), the gates that halted a
wave, and the rollbacks.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import _duration_text
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import format_utc, parse_utc

__all__ = ["MILESTONES", "RetrospectiveError", "render_markdown", "retrospective"]

MILESTONES = ("detection", "first notice", "canary start", "majority patched", "whole fleet", "publication")


class RetrospectiveError(ValueError):
    """Input a retrospective cannot be made of; the message names the field and the value."""


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def _time(value, field):
    try:
        return parse_utc(value, field)
    except ValueError as exc:
        raise RetrospectiveError(str(exc)) from None


def _of_patch(record, patch_id):
    return isinstance(record, Mapping) and (record.get("patch_id") or _mapping(record.get("data")).get("patch")) == patch_id


def _first_notice(patch_id, ledger, records):
    told = [entry.get("notified_at") for entry in _mapping(ledger).get("notifications") or () if _mapping(entry).get("patch_id") == patch_id]
    if told:
        return min(_time(value, "notifications[].notified_at") for value in told), "the pre-notification ledger"
    sent = [_mapping(record.get("data")).get("notified_at") or record.get("ts") for record in records
            if record.get("event") == "notification" and _of_patch(record, patch_id) and _mapping(record.get("data")).get("status") == "sent"]
    if sent:
        return min(_time(value, "ts") for value in sent), "the audit trail's notification records"
    return None, None


def _canary_start(patch_id, records):
    for record in records:
        wave = record.get("wave") or _mapping(record.get("data")).get("wave") or ""
        if record.get("event") == "wave_start" and _of_patch(record, patch_id) and str(wave).split(" ", maxsplit=1)[0] == "canary":
            return _time(record.get("ts"), "ts"), f"wave_start record seq {record.get('seq')}"
    return None, None


def _share_reached(points, above=None, full=False):
    for point in points or ():
        share = _mapping(point).get("share")
        if share is None:
            continue
        if (full and share >= 100) or (above is not None and share > above):
            return _time(point.get("at"), "history.points[].at"), f"{point.get('patched')} hosts patched ({share} %)"
    return None, None


def _approval(record, data):
    approval = _mapping(data.get("approval"))
    who = f"approved by {approval.get('approved_by')}, implemented by {approval.get('implemented_by')} ({approval.get('urgency')})"
    if approval.get("justification"):
        who += f"; justification: {approval['justification']}"
    platform = _mapping(approval.get("platform"))
    if platform:
        who += "; AWX job " + ", ".join(f"{key} {value}" for key, value in sorted(platform.items()))
    operation = data.get("operation") or "rollout"
    if data.get("refused"):
        return {"kind": "approval refused", "what": f"{operation}: {who}", "why": data["refused"]}
    return {"kind": "approval", "what": f"{operation}: {who}", "why": None}


def _decisions(patch_id, records):
    found = []
    for record in records:
        if not _of_patch(record, patch_id):
            continue
        data = _mapping(record.get("data"))
        event, at = record.get("event"), format_utc(_time(record["ts"], "ts")) if record.get("ts") else None
        if event == "approval":
            found.append({"at": at, **_approval(record, data)})
        elif event == "plan" and not data.get("check_mode"):
            for override in data.get("overrides") or ():
                override = _mapping(override)
                found.append({"at": at, "kind": "window overridden", "what": f"{override.get('host')} (customer {override.get('customer')})",
                              "why": override.get("detail")})
            for deferral in data.get("deferred") or ():
                deferral = _mapping(deferral)
                next_window = f"; next window {deferral['next_window']}" if deferral.get("next_window") else ""
                found.append({"at": at, "kind": "deferred", "what": f"{deferral.get('host')} (customer {deferral.get('customer')})",
                              "why": f"{deferral.get('detail')}{next_window}"})
        elif event == "gate" and data.get("decision") == "halt":
            failures = [f"{_mapping(item).get('host')} {_mapping(item).get('status')}" for item in data.get("failures") or ()]
            found.append({"at": at, "kind": "gate halted", "what": data.get("gate") or record.get("wave"),
                          "why": f"error budget {data.get('error_budget')} exceeded: " + ", ".join(failures)})
        elif event == "rollback":
            hosts = ", ".join(data.get("hosts") or ())
            why = f"the wave {record.get('wave')} halted at its gate" if record.get("wave") else f"a fleet-wide rollback, round {data.get('round')}"
            found.append({"at": at, "kind": "rolled back", "what": hosts, "why": why})
    return found


def retrospective(manifest, records, report=None, ledger=None, published=None):
    """The retrospective of ``manifest``'s patch: ``{"patch", "milestones", "decisions"}``.

    ``records`` are the audit trail's records in order, ``report`` the fleet report (``_status.fleet_report``) whose
    history gives the share patched over time, ``ledger`` the pre-notification record's data, ``published`` when the
    advisory was published. Each milestone is ``{"name", "at", "since_detection", "source"}``; each decision
    ``{"at", "kind", "what", "why"}``.
    """
    if not isinstance(manifest, Mapping) or not manifest.get("id"):
        raise RetrospectiveError(f"manifest: expected a checked change record with an id, got {type(manifest).__name__}")
    if not isinstance(records, (list, tuple)):
        raise RetrospectiveError(f"records: expected the audit trail's records as a list, got {type(records).__name__}")
    patch_id = manifest["id"]
    records = [record for record in records if isinstance(record, Mapping)]
    detected = _time(manifest.get("detected_at"), "manifest.detected_at")
    points = _mapping(_mapping(report).get("history")).get("points")
    found = {
        "detection": (detected, "the manifest's detected_at"),
        "first notice": _first_notice(patch_id, ledger, records),
        "canary start": _canary_start(patch_id, records),
        "majority patched": _share_reached(points, above=50),
        "whole fleet": _share_reached(points, full=True),
        "publication": (_time(published, "published"), "the advisory") if published else (None, None),
    }
    milestones = []
    for name in MILESTONES:
        at, source = found[name]
        since = None
        if at is not None:
            delta = at - detected
            since = ("-" + _duration_text(-delta)) if delta.total_seconds() < 0 else _duration_text(delta)
        milestones.append({"name": name, "at": format_utc(at), "since_detection": since, "source": source})
    return {"patch": {key: manifest.get(key) for key in ("id", "title", "severity", "urgency", "fixed_version")},
            "milestones": milestones, "decisions": _decisions(patch_id, records)}


def _cell(value):
    return "-" if value in (None, "") else str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(retro):
    """The retrospective as a Markdown document: the timeline as a table, then the decisions."""
    patch = retro["patch"]
    lines = [f"# Retrospective: {patch['id']}", "", f"{patch.get('title') or ''}".strip(), "",
             f"Severity {_cell(patch.get('severity'))}, urgency {_cell(patch.get('urgency'))}, fixed in {_cell(patch.get('fixed_version'))}.",
             "", "## Timeline", "", "| milestone | time (UTC) | since detection | from |", "| --- | --- | --- | --- |"]
    for milestone in retro["milestones"]:
        at = milestone["at"] or "not reached"
        lines.append(f"| {milestone['name']} | {at} | {_cell(milestone['since_detection'])} | {_cell(milestone['source'])} |")
    lines += ["", "## Decisions", ""]
    if not retro["decisions"]:
        lines.append("No decision is recorded in the audit trail.")
    else:
        lines += ["| time (UTC) | decision | what | why |", "| --- | --- | --- | --- |"]
        lines += [f"| {_cell(item['at'])} | {item['kind']} | {_cell(item['what'])} | {_cell(item['why'])} |" for item in retro["decisions"]]
    return "\n".join(lines) + "\n"
