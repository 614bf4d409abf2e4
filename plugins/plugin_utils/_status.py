# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet status report of one patch: every host's state, per region and cluster, and the share patched over time.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Pure functions of plain data (the filters ``status_report``, ``status_render`` and ``publish_gate`` wrap them),
so the rule that gives a host its state is unit-tested here, not spread over Jinja.

A host's state for the patch (:func:`host_state`; the first rule that applies decides):

1. ``unknown``: the host gave no detection (unreachable, the detection failed, or left out by name), or its
   state file is damaged (``state_error``): what fleetpatch did there cannot be told.
2. ``failed``: an apply or a rollback was cut off on it (its state file's journal: a re-run completes or reverts
   it), or it is still affected and its last apply of the patch in the audit trail failed (after any deferral or
   rollback its state file records).
3. ``patched``: it runs a version outside the affected range, at or above the fixed version (applied by
   fleetpatch or not; the detail says which, and whether the patched host was judged healthy).
4. ``not affected``: it runs a version outside the affected range, below the fixed version: it never needed
   the patch.
5. ``deferred``: it is affected and its state file records a deferral of the patch with a reason (and until
   when: its next window), made after any rollback of the patch there.
6. ``rolled back``: it is affected and its state file records a rollback of the patch.
7. ``affected``: it is affected, and none of the above.

The share patched over time (:func:`history`) is drawn from the audit trail's ``task`` records of the patch
(the record's ``patch_id``, or the result's ``patch``) on hosts in scope: an ``apply`` (``fleetpatch.rollout.apply``)
that ended ``ok`` or ``changed`` makes the host patched from that record's time on, a ``rollback``
(``fleetpatch.rollout.rollback``) that ended ``changed`` makes it unpatched again; failed, skipped and
unreachable results change nothing. A host the report finds patched that the trail never saw patched (it came on
the fixed release, or a trail that is not this one patched it) counts as patched from the chart's start. The
chart starts at the trail's first record of the patch and ends at the report's own count, at the time it was
made. The share is of the hosts the patch concerns: every host in scope but those ``not affected``.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence

__all__ = [
    "BLOCKING", "STATES", "StatusError", "fleet_report", "history", "host_state", "publish_gate", "read_trail", "render",
    "render_csv", "render_html", "write_files",
]

STATES = ("patched", "affected", "deferred", "failed", "rolled back", "unknown", "not affected")
# The states that keep the advisory back: a host affected with no recorded reason, or whose state is not known.
BLOCKING = ("affected", "failed", "rolled back", "unknown")
APPLY_ACTIONS = ("fleetpatch.rollout.apply", "apply")
ROLLBACK_ACTIONS = ("fleetpatch.rollout.rollback", "rollback")
REPORT_FORMAT = 1
_COLOURS = {"patched": "#2e7d32", "affected": "#c62828", "deferred": "#ef6c00", "failed": "#6a1b9a", "rolled back": "#ad1457",
            "unknown": "#546e7a", "not affected": "#90a4ae"}
_COLUMNS = ("host", "region", "cluster", "version", "state", "next_window", "applied_at", "judged_at", "detail")


class StatusError(ValueError):
    """Input a report cannot be made of; the message names the argument or field and the value."""


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def _patch_of(manifest):
    if not isinstance(manifest, Mapping):
        raise StatusError(f"manifest: expected the change record of fleetpatch.rollout.manifest, got {type(manifest).__name__}")
    missing = [key for key in ("id", "component", "affected", "fixed_version") if not isinstance(manifest.get(key), str)]
    if missing:
        raise StatusError(f"manifest: expected the change record of fleetpatch.rollout.manifest, it lacks {', '.join(missing)}")
    return {key: manifest.get(key) for key in ("id", "title", "component", "affected", "fixed_version", "severity", "urgency", "advisories")}


def _latest(entries, patch_id, fixed_version=None):
    """The last record of ``patch_id`` in a state file list (``rollbacks`` also counts a patch-less one from the fix)."""
    found = None
    for entry in entries or ():
        if not isinstance(entry, Mapping):
            continue
        if entry.get("patch") == patch_id or (fixed_version and entry.get("patch") is None and entry.get("from") == fixed_version):
            if found is None or str(entry.get("at") or "") >= str(found.get("at") or ""):
                found = entry
    return found


def host_state(result, patch_id, fixed_version=None, answered=True, last_apply=None):
    """``(state, detail, extra)`` of one host; see the module docstring for the rule.

    ``result`` is the host's fleetpatch.rollout.detect result (or None); ``answered`` false when the host was not
    reached in this run; ``last_apply`` the audit trail's last apply record of the patch on the host, as
    :func:`trail_outcomes` keeps it (``status``, ``at``, ``msg``). ``extra`` has ``next_window``, ``applied_at`` and
    ``judged_at`` (each None when it does not apply).
    """
    extra = {"next_window": None, "applied_at": None, "judged_at": None}
    found = _mapping(result)
    if not answered or not found or found.get("failed") or found.get("unreachable") or found.get("skipped") or "version" not in found:
        why = found.get("msg") or ("left out by name" if found.get("skipped") else "not reached by this run")
        return "unknown", f"not detected: {why}", extra
    if found.get("state_error"):
        return "unknown", f"runs {found['version']}; its state file cannot be trusted: {found['state_error']}", extra
    journal = found.get("interrupted")
    if isinstance(journal, Mapping):
        return "failed", (f"a {journal.get('op', 'operation')} from {journal.get('from')} to {journal.get('to')} was cut off "
                          f"(last step {journal.get('step') or 'none'}); run it again to complete or revert it"), extra
    applied = _latest(found.get("applied"), patch_id)
    if applied:
        extra["applied_at"], extra["judged_at"] = applied.get("at"), applied.get("judged")
    version = found["version"]
    if found.get("affected") is False:
        if found.get("fixed") is False:
            return "not affected", f"runs {version}, outside the affected range and below the fixed version", extra
        if not applied:
            return "patched", f"runs {version}; {patch_id} was not applied here by fleetpatch", extra
        judged = f"judged healthy {applied['judged']}" if applied.get("judged") else "not yet judged healthy (the rollout soaks and gates it again)"
        return "patched", f"runs {version}; {patch_id} applied {applied.get('at')} from {applied.get('from') or '?'}, {judged}", extra
    deferral = _latest(found.get("deferred"), patch_id)
    if deferral and not str(deferral.get("reason") or "").strip():
        deferral = None  # a deferral is its reason: one without any explains nothing
    rollback = _latest(found.get("rollbacks"), patch_id, fixed_version)
    since = max(str((deferral or {}).get("at") or ""), str((rollback or {}).get("at") or ""))
    if isinstance(last_apply, Mapping) and last_apply.get("status") == "failed" and str(last_apply.get("at") or "") >= since:
        return "failed", f"runs {version}; its last apply of {patch_id} failed at {last_apply.get('at')}: {last_apply.get('msg') or 'no message'}", extra
    if deferral and (not rollback or str(deferral.get("at") or "") >= str(rollback.get("at") or "")):
        extra["next_window"] = deferral.get("until")
        return "deferred", f"runs {version}; {deferral.get('reason') or 'no reason recorded'}; next window {deferral.get('until') or 'none'}", extra
    if rollback:
        return "rolled back", f"runs {version}; rolled back from {rollback.get('from')} to {rollback.get('to')} at {rollback.get('at')}", extra
    if found.get("affected") is None:
        return "unknown", f"runs {version}; the detection was not given the affected range", extra
    return "affected", f"runs {version}, in the affected range", extra


def read_trail(path):
    """The records of an audit log (JSON Lines), in order; lines that are not a JSON object (a torn tail) are skipped.

    ``(records, skipped)``; StatusError naming the file when it cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise StatusError(f"audit log {path}: cannot be read: {exc.strerror or exc}") from None
    records, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def _counted(record, patch_id, hosts):
    """``(host, kind)`` of a trail record that the chart counts (kind ``patched``, ``unpatched`` or ``apply failed``), or None."""
    data = _mapping(record.get("data"))
    host = record.get("host")
    if record.get("event") != "task" or host not in hosts or (record.get("patch_id") or data.get("patch")) != patch_id:
        return None
    action, status = data.get("action"), data.get("status")
    if action in APPLY_ACTIONS:
        if status in ("ok", "changed"):
            return host, "patched"
        if status == "failed":
            return host, "apply failed"
    elif action in ROLLBACK_ACTIONS and status == "changed":
        return host, "unpatched"
    return None


def trail_outcomes(records, patch_id, hosts):
    """Per host in ``hosts``, its last apply of the patch in the trail: ``{"status": "ok"|"failed", "at", "msg"}``."""
    last = {}
    for record in records:
        counted = _counted(record, patch_id, hosts)
        if counted and counted[1] in ("patched", "apply failed"):
            last[counted[0]] = {"status": "failed" if counted[1] == "apply failed" else "ok", "at": record.get("ts"),
                                "msg": _mapping(record.get("data")).get("msg")}
    return last


def _share(count, concerned):
    return round(100.0 * count / concerned, 1) if concerned else None


def history(records, patch_id, rows, generated):
    """The share of the fleet patched over time (see the module docstring): a list of ``{at, patched, share}``.

    ``rows`` are the report's host rows (their ``state`` now); ``generated`` the report's time, its last point.
    """
    hosts = {row["host"] for row in rows}
    concerned = sum(1 for row in rows if row["state"] != "not affected")
    now_patched = {row["host"] for row in rows if row["state"] == "patched"}
    events, start = [], None
    for record in records:
        if start is None and (record.get("patch_id") or _mapping(record.get("data")).get("patch")) == patch_id and record.get("ts"):
            start = record["ts"]
        counted = _counted(record, patch_id, hosts)
        if counted and counted[1] != "apply failed" and record.get("ts"):
            events.append((record["ts"], counted[0], counted[1] == "patched"))
    seen = {host for _at, host, patched in events if patched}
    patched = set(now_patched - seen)
    points = []
    if start is not None:
        points.append({"at": start, "patched": len(patched), "share": _share(len(patched), concerned)})
    for at, host, is_patched in events:
        before = len(patched)
        (patched.add if is_patched else patched.discard)(host)
        if len(patched) != before:
            points.append({"at": at, "patched": len(patched), "share": _share(len(patched), concerned)})
    points.append({"at": generated, "patched": len(now_patched), "share": _share(len(now_patched), concerned)})
    return points


def _host_names(hosts, name):
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise StatusError(f"{name}: expected a list of host names, got {type(hosts).__name__} {hosts!r}")
    for index, host in enumerate(hosts):
        if not isinstance(host, str) or not host:
            raise StatusError(f"{name}[{index}]: expected a host name, got {host!r}")
    return list(hosts)


def _counts(rows):
    counts = dict.fromkeys(STATES, 0)
    for row in rows:
        counts[row["state"]] += 1
    return counts


def _groups(rows, key):
    groups = {}
    for row in rows:
        value = row.get(key)
        if key == "cluster" and value in (None, "", "-"):
            continue
        group = groups.setdefault(value or "-", {key: value or "-", "hosts": 0, **dict.fromkeys(STATES, 0)})
        if key == "cluster":
            group.setdefault("regions", [])
            if row["region"] not in group["regions"]:
                group["regions"].append(row["region"])
        group["hosts"] += 1
        group[row["state"]] += 1
    return [groups[name] for name in sorted(groups)]


def fleet_report(hostvars, hosts, manifest, result="__status_detected", reachable=None, excluded=(), trail=None, generated=None):
    """The fleet report of ``manifest``'s patch over ``hosts`` (each host's ``<result>``, its detect result).

    ``reachable`` lists the hosts still reached in the run (others are ``unknown``; None: every host), ``excluded``
    the hosts left out by name, ``trail`` ``{"path", "records", "skipped"}`` of the audit log (or None), and
    ``generated`` the report's time (an RFC 3339 UTC string; default now).
    """
    patch = _patch_of(manifest)
    names = _host_names(hosts, "hosts")
    reached = None if reachable is None else set(_host_names(reachable, "reachable"))
    left_out = set(_host_names(excluded or [], "excluded"))
    if not isinstance(hostvars, Mapping):
        raise StatusError(f"hostvars: expected a mapping of host names to their variables, got {type(hostvars).__name__}")
    generated = generated or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = (trail or {}).get("records") or []
    last_applies = trail_outcomes(records, patch["id"], set(names))
    rows = []
    for host in sorted(names):
        facts = _mapping(hostvars.get(host)) if host in hostvars else {}
        found = _mapping(facts.get(result))
        if host in left_out:
            state, detail, extra = "unknown", "left out by name (fleetpatch_exclude_hosts): not contacted", {
                "next_window": None, "applied_at": None, "judged_at": None}
        else:
            state, detail, extra = host_state(found, patch["id"], patch["fixed_version"], reached is None or host in reached,
                                              last_applies.get(host))
        version = found.get("version") if "version" in found and not found.get("failed") else None
        rows.append({"host": host, "region": facts.get("region") or "-", "cluster": facts.get("cluster") or "-",
                     "version": version or "unknown", "state": state, **extra, "detail": detail})
    counts = _counts(rows)
    concerned = len(rows) - counts["not affected"]
    return {
        "format": REPORT_FORMAT, "patch": patch, "generated": generated, "states": list(STATES), "counts": counts,
        "total": len(rows), "concerned": concerned, "patched_share": _share(counts["patched"], concerned),
        "regions": _groups(rows, "region"), "clusters": _groups(rows, "cluster"), "hosts": rows,
        "history": {"source": (trail or {}).get("path"), "records": len(records), "skipped": (trail or {}).get("skipped", 0),
                    "points": history(records, patch["id"], rows, generated)},
    }


def _check_report(report):
    if not isinstance(report, Mapping) or report.get("format") != REPORT_FORMAT or not isinstance(report.get("hosts"), list):
        raise StatusError(f"report: expected the report of fleetpatch.rollout.status_report, got {str(report)[:60]!r}")


def render_csv(report):
    """The report's host rows as CSV, a header line first."""
    _check_report(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in report["hosts"]:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in _COLUMNS})
    return out.getvalue()


def _parse_time(text):
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _chart(points):
    """The share patched over time as an inline SVG (a step line), or a paragraph when there is nothing to draw."""
    timed = [(when, point) for point in points if (when := _parse_time(point.get("at"))) and point.get("share") is not None]
    if not timed:
        return '<p class="empty" id="history-empty">No host this patch concerns: nothing to chart.</p>'
    width, height, left, right, top, bottom = 720, 240, 48, 16, 16, 40
    start, end = timed[0][0], timed[-1][0]
    span = (end - start).total_seconds() or 1.0

    def x(when):
        return round(left + (width - left - right) * (when - start).total_seconds() / span, 1)

    def y(share):
        return round(top + (height - top - bottom) * (1 - share / 100.0), 1)

    path, dots = [], []
    for index, (when, point) in enumerate(timed):
        if index:
            path.append(f"L{x(when)},{y(timed[index - 1][1]['share'])}")
        path.append(f"{'M' if not index else 'L'}{x(when)},{y(point['share'])}")
        dots.append(f'<circle cx="{x(when)}" cy="{y(point["share"])}" r="3" class="dot" data-at="{html.escape(str(point["at"]))}" '
                    f'data-share="{point["share"]}" data-patched="{point["patched"]}"><title>{html.escape(str(point["at"]))}: '
                    f'{point["patched"]} patched ({point["share"]}%)</title></circle>')
    grid = "".join(f'<line x1="{left}" x2="{width - right}" y1="{y(level)}" y2="{y(level)}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(level) + 4}" text-anchor="end">{level}%</text>' for level in (0, 25, 50, 75, 100))
    labels = (f'<text x="{left}" y="{height - bottom + 18}" text-anchor="start">{html.escape(start.strftime("%Y-%m-%d %H:%M:%S"))} UTC</text>'
              f'<text x="{width - right}" y="{height - bottom + 18}" text-anchor="end">{html.escape(end.strftime("%Y-%m-%d %H:%M:%S"))} UTC</text>')
    last = timed[-1][1]
    return (f'<svg id="history" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="Share of the hosts the patch concerns that are patched, over time">{grid}{labels}'
            f'<path d="{" ".join(path)}" class="line"/>{"".join(dots)}'
            f'<text id="share-now" x="{width - right}" y="{top + 12}" text-anchor="end" class="now">now {last["share"]}%</text></svg>')


def _bar(group):
    total = group["hosts"] or 1
    parts = "".join(f'<span style="width:{100.0 * group[state] / total:.3f}%;background:{_COLOURS[state]}" title="{state}: {group[state]}"></span>'
                    for state in STATES if group[state])
    return f'<div class="bar">{parts}</div>'


def _group_table(groups, key, title):
    if not groups:
        return f'<h2>{title}</h2><p class="empty">No host in scope has a {key}.</p>'
    head = "".join(f"<th>{state}</th>" for state in STATES)
    body = []
    for group in groups:
        cells = "".join(f'<td data-state="{state}">{group[state]}</td>' for state in STATES)
        where = f'<td>{html.escape(", ".join(group["regions"]))}</td>' if key == "cluster" else ""
        body.append(f'<tr data-{key}="{html.escape(str(group[key]))}"><th scope="row">{html.escape(str(group[key]))}</th>{where}'
                    f'<td data-total="{group["hosts"]}">{group["hosts"]}</td>{cells}<td class="barcell">{_bar(group)}</td></tr>')
    region_head = "<th>region</th>" if key == "cluster" else ""
    return (f'<h2>{title}</h2><table class="groups" id="{key}s"><thead><tr><th>{key}</th>{region_head}<th>hosts</th>{head}<th></th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1c2833;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#566573;margin:0 0 16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border-radius:6px;padding:8px 14px;color:#fff;min-width:96px}
.tile .count{display:block;font-size:26px;font-weight:700}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #d5dbdb;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#eaeded}td[data-state],td[data-total]{text-align:right}
.bar{display:flex;width:180px;height:12px;background:#eee;border-radius:3px;overflow:hidden}.bar span{display:block;height:100%}
.state{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;white-space:nowrap}
svg text{font-size:11px;fill:#566573}svg .grid{stroke:#e5e8e8}svg .line{fill:none;stroke:#2e7d32;stroke-width:2}
svg .dot{fill:#2e7d32}svg .now{font-size:13px;font-weight:700;fill:#2e7d32}
.empty{color:#566573}.detail{color:#34495e}
"""


def render_html(report):
    """The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched from anywhere."""
    _check_report(report)
    patch = report["patch"]
    esc = html.escape
    tiles = "".join(f'<div class="tile" data-state="{state}" style="background:{_COLOURS[state]}"><span class="count">{report["counts"][state]}</span>'
                    f"{state}</div>" for state in STATES)
    rows = []
    for row in report["hosts"]:
        state = row["state"]
        rows.append(f'<tr data-host="{esc(row["host"])}" data-state="{state}"><td>{esc(row["host"])}</td><td>{esc(str(row["region"]))}</td>'
                    f'<td>{esc(str(row["cluster"]))}</td><td>{esc(str(row["version"]))}</td>'
                    f'<td><span class="state" style="background:{_COLOURS[state]}">{state}</span></td>'
                    f'<td>{esc(row["next_window"] or "")}</td><td class="detail">{esc(row["detail"])}</td></tr>')
    hist = report.get("history") or {}
    source = (f"drawn from the audit trail {esc(str(hist['source']))} ({hist.get('records', 0)} records read"
              + (f", {hist['skipped']} unreadable lines skipped" if hist.get("skipped") else "") + ")"
              if hist.get("source") else "no audit trail given: the chart shows the report's own count only")
    share = report["patched_share"]
    title = f"{patch['id']}: fleet status"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{esc(patch["id"])}: {esc(patch.get("title") or "")}</h1>'
        f'<p class="meta">{esc(patch["component"])}, affected <code>{esc(patch["affected"])}</code>, fixed in {esc(patch["fixed_version"])}'
        f' &middot; severity {esc(str(patch.get("severity") or "-"))}, urgency {esc(str(patch.get("urgency") or "-"))}'
        f' &middot; report made <time id="generated">{esc(report["generated"])}</time></p>'
        f'<p id="summary"><b id="patched-share">{"-" if share is None else f"{share}%"}</b> of the <b id="concerned">{report["concerned"]}</b> hosts '
        f'the patch concerns are patched (<b id="total">{report["total"]}</b> hosts in scope).</p>'
        f'<div class="tiles" id="states">{tiles}</div>'
        f"<h2>Share of the fleet patched over time</h2><p class=\"meta\">{source}.</p>{_chart(hist.get('points') or [])}"
        f"{_group_table(report['regions'], 'region', 'Per region')}{_group_table(report['clusters'], 'cluster', 'Per cluster')}"
        f'<h2>Hosts</h2><table id="hosts"><thead><tr><th>host</th><th>region</th><th>cluster</th><th>version</th><th>state</th>'
        f'<th>next window</th><th>detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</body></html>\n"
    )


def render(report, form):
    """The report as the text of one file: ``json``, ``csv`` or ``html``."""
    if form == "json":
        _check_report(report)
        return json.dumps(report, indent=2, sort_keys=False) + "\n"
    if form == "csv":
        return render_csv(report)
    if form == "html":
        return render_html(report)
    raise StatusError(f"format: expected json, csv or html, got {form!r}")


def publish_gate(report):
    """Whether the advisory may be published: every host in scope patched, not affected, or deferred with a reason.

    ``{"ready", "counts", "blocking": [{host, state, detail}], "msg"}``; an empty scope is never ready.
    """
    _check_report(report)
    blocking = []
    for row in report["hosts"]:
        if row["state"] in BLOCKING:
            blocking.append({"host": row["host"], "state": row["state"], "detail": row.get("detail") or ""})
    counts = dict(report["counts"])
    tally = ", ".join(f"{counts[state]} {state}" for state in STATES)
    patch = report["patch"]["id"]
    if not report["hosts"]:
        msg = f"{patch}: no host in scope; the advisory is published only when the fleet it covers is known safe"
    elif blocking:
        names = "; ".join(f"{entry['host']} ({entry['state']}: {entry['detail']})" for entry in blocking)
        msg = (f"{patch}: not published: {len(blocking)} host(s) in scope are neither patched nor deferred with a reason "
               f"({tally}): {names}")
    else:
        msg = f"{patch}: every host in scope is patched or deferred with a reason ({tally})"
    return {"ready": bool(report["hosts"]) and not blocking, "counts": counts, "blocking": blocking, "msg": msg}


def write_files(directory, files, check_mode=False):
    """Write ``files`` (a mapping of file names to their text) into ``directory`` on the controller, each atomically.

    Each file is written to a temporary file in ``directory``, fsynced and renamed over the old one, then the
    directory is fsynced: a reader sees the old file or the new one, never a torn one. A file whose text is already
    there is not rewritten. Returns the paths that changed (or would, in check mode), in the order given.
    """
    if not isinstance(directory, str) or not directory:
        raise StatusError(f"dest: expected a directory path, got {directory!r}")
    if not isinstance(files, Mapping) or not files:
        raise StatusError(f"files: expected a mapping of file names to their text, got {files!r}")
    for name, text in files.items():
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\0" in name:
            raise StatusError(f"files: {name!r} is not a plain file name (no directory part)")
        if not isinstance(text, str):
            raise StatusError(f"files.{name}: expected the file's text, got {type(text).__name__}")
    changed = []
    for name, text in files.items():
        path = os.path.join(directory, name)
        data = text.encode("utf-8")
        try:
            with open(path, "rb") as handle:
                if handle.read() == data:
                    continue
        except OSError:
            pass
        changed.append(path)
        if check_mode:
            continue
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temporary, 0o644)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
            directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)
        except OSError as exc:
            raise StatusError(f"{path}: cannot be written: {exc.strerror or exc}") from None
    return changed
