# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the playbooks print: aligned text tables, the plan's rows, and every host's outcome of a rollout.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Pure functions of plain data (the filters ``table``, ``plan_rows`` and ``rollout_outcomes`` wrap them), so the
rules that decide what a host's line says are unit-tested here rather than spread over Jinja in the playbooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["OUTCOMES", "ReportError", "format_table", "halt_message", "outcome_rows", "plan_rows", "tally"]

# The rollout's outcomes, in the order the summary counts them.
OUTCOMES = ("patched", "unchanged", "deferred", "failed", "rolled back", "unknown", "not started", "left out")
# Where an excluded host's reason puts it in the summary (other reasons: "left out").
_EXCLUDED_OUTCOME = {"unknown": "unknown", "unreachable": "unknown", "fixed": "unchanged"}
# How the halt message names what became of a halted wave's hosts (by their outcome), in this order.
_HALT_GROUPS = (("rolled back", "rolled back"), ("unknown", "could not be reached (state unknown)"), ("failed", "failed"),
                ("deferred", "not started (window closed)"))


class ReportError(ValueError):
    """Input a report cannot be made of; the message names the field and the value."""


def _cell(value):
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def _columns(columns):
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence) or not columns:
        raise ReportError(f"columns: expected a non-empty list of keys or of [header, key] pairs, got {columns!r}")
    pairs = []
    for index, column in enumerate(columns):
        if isinstance(column, str) and column:
            pairs.append((column.upper().replace("_", " "), column))
        elif isinstance(column, Sequence) and not isinstance(column, (str, bytes)) and len(column) == 2 and all(
                isinstance(part, str) and part for part in column):
            pairs.append((column[0], column[1]))
        else:
            raise ReportError(f"columns[{index}]: expected a key or a [header, key] pair, got {column!r}")
    return pairs


def format_table(rows, columns):
    """The lines of an aligned text table: a header, then one line per row.

    ``columns`` lists keys (header: the key in capitals) or ``[header, key]`` pairs. A column is as wide as its
    widest cell; the last one is not padded. A missing, null or empty value prints ``-``, a boolean ``yes``/``no``,
    a list its items joined by commas.
    """
    pairs = _columns(columns)
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ReportError(f"rows: expected a list of mappings, got {type(rows).__name__}")
    cells = [[header for header, _key in pairs]]
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ReportError(f"rows[{index}]: expected a mapping, got {type(row).__name__} {row!r}")
        cells.append([_cell(row.get(key)) for _header, key in pairs])
    widths = [max(len(line[column]) for line in cells) for column in range(len(pairs))]
    return [" ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + (" " if len(line) > 1 else "") + line[-1]
            for line in cells]


def tally(rows, by, key, values):
    """Per value of ``row[by]`` (sorted), how many rows have each of ``values`` in ``row[key]``.

    A list of mappings: ``{by: group, value: count, ...}``, ready for :func:`format_table`.
    """
    groups = {}
    for row in rows:
        counts = groups.setdefault(str(row.get(by) if row.get(by) is not None else "-"), dict.fromkeys(values, 0))
        if row.get(key) in counts:
            counts[row.get(key)] += 1
    return [{by: group, **counts} for group, counts in sorted(groups.items())]


def _check_plan(plan):
    if not isinstance(plan, Mapping) or not isinstance(plan.get("waves"), list):
        raise ReportError(f"plan: expected the plan of fleetpatch.rollout.wave_plan, got {type(plan).__name__} {str(plan)[:60]!r}")


def plan_rows(plan):
    """One row per host of a wave plan: the waves' hosts in order, then the deferred, then those left out.

    Each row has ``wave`` (its index, ``-`` when not planned), ``name`` (the wave's name, ``deferred`` or
    ``left out``), ``host``, ``region``, ``cluster`` and ``reason``.
    """
    _check_plan(plan)
    rows = []
    for wave in plan["waves"]:
        for host in wave["hosts"]:
            rows.append({"wave": wave["index"], "name": wave["name"], "host": host["host"], "region": host.get("region"),
                         "cluster": host.get("cluster"), "reason": host["reason"]})
    for host in plan.get("deferred", []):
        rows.append({"wave": None, "name": "deferred", "host": host["host"], "region": host.get("region"), "cluster": host.get("cluster"),
                     "reason": f"{host['detail']}; next window {host.get('next_window') or 'none'}"})
    for host in plan.get("excluded", []):
        rows.append({"wave": None, "name": "left out", "host": host["host"], "region": host.get("region"), "cluster": host.get("cluster"),
                     "reason": f"{host['reason']}: {host['detail']}"})
    return rows


def _applied_version(facts):
    """The version a host's apply reported when it completed (``applied``: the apply's result), or None."""
    applied = facts.get("applied")
    if not isinstance(applied, Mapping) or applied.get("failed") or applied.get("unreachable") or applied.get("skipped"):
        return None
    return applied.get("version") or None


def _outcome(name, facts, plan_index, failed):
    """(outcome, detail) of one host; ``plan_index`` maps host names to their kind of plan entry."""
    result = facts.get("guarded_apply_result")
    kind, entry = plan_index.get(name, (None, None))
    if name in failed:
        detail = failed[name].get("why") or ""
        applied = _applied_version(facts)
        if applied and not isinstance(result, Mapping) and not (facts.get("rollback") or {}).get("changed"):
            detail += f"; its apply to {applied} had completed"
        return failed[name]["status"].replace("_", " "), detail
    rollback = facts.get("rollback") or {}
    if rollback.get("unreachable"):
        return "unknown", f"its wave's rollback could not reach it: {rollback.get('msg') or 'unreachable'}"
    if rollback.get("failed"):
        return "failed", f"its wave's rollback failed: {rollback.get('msg') or 'no message'}"
    if rollback.get("changed"):
        return "rolled back", "its wave was rolled back"
    if isinstance(result, Mapping) and result.get("status") in ("patched", "unchanged"):
        return result["status"], ""
    if kind == "deferred":
        return "deferred", f"next window {entry.get('next_window') or 'none'}"
    if kind == "excluded":
        return _EXCLUDED_OUTCOME.get(entry["reason"], "left out"), entry.get("detail") or ""
    if facts.get("window_closed"):
        following = entry.get("next_window") if kind == "planned" else None
        return "deferred", "window closed before its wave" + (f"; next window {following}" if following else "")
    if kind == "planned":
        return "not started", "the rollout stopped first"
    return "unknown", ""


def outcome_rows(plan, hosts, failures=()):
    """One row per host (sorted by name): what the rollout did to it, in the words of :data:`OUTCOMES`.

    ``hosts`` maps each host in scope to what the rollout knows of it: ``region``, ``cluster``,
    ``guarded_apply_result`` (the role's outcome, when the host's wave started it), ``rollback`` (the result of
    rolling its halted wave back: changed, failed or unreachable, with ``version`` and ``msg``), ``applied`` (the
    result of its apply: a host lost during its soak has no ``guarded_apply_result``, but runs the applied
    version), ``window_closed`` (true when its window closed before its wave) and ``version`` (the version
    detected before the rollout). ``failures`` are the gate's records
    (``host``, ``status``, ``why``). Each row has ``host``, ``region``, ``cluster``, ``version`` (the one it
    runs now, as far as the rollout knows), ``status`` and ``detail``.
    """
    _check_plan(plan)
    if not isinstance(hosts, Mapping):
        raise ReportError(f"hosts: expected a mapping of host names to their variables, got {type(hosts).__name__}")
    plan_index = {}
    for wave in plan["waves"]:
        for entry in wave["hosts"]:
            plan_index[entry["host"]] = ("planned", entry)
    for kind, key in (("deferred", "deferred"), ("excluded", "excluded")):
        for entry in plan.get(key, []):
            plan_index[entry["host"]] = (kind, entry)
    failed = {}
    for index, failure in enumerate(failures or ()):
        if not isinstance(failure, Mapping) or not failure.get("host") or not failure.get("status"):
            raise ReportError(f"failures[{index}]: expected a mapping with host and status, got {failure!r}")
        failed[failure["host"]] = failure
    rows = []
    for name in sorted(hosts):
        facts = hosts[name] if isinstance(hosts[name], Mapping) else {}
        status, detail = _outcome(name, facts, plan_index, failed)
        result = facts.get("guarded_apply_result")
        rollback = facts.get("rollback") or {}
        if rollback.get("changed"):
            version = rollback.get("version")
        elif isinstance(result, Mapping):
            version = result.get("version")
        else:
            version = _applied_version(facts)
        rows.append({"host": name, "region": facts.get("region") or "-", "cluster": facts.get("cluster") or "-",
                     "version": version or facts.get("version") or "unknown", "status": status, "detail": detail})
    return rows


def halt_message(gate, wave, rows):
    """Why a rollout stops, and what became of the hosts of the wave that stopped it.

    ``gate`` is the halting gate's decision (``failures``, ``budget``); ``wave`` the halted wave of the plan, or
    None for the gate before the first wave (hosts unreachable at detection); ``rows`` the :func:`outcome_rows`
    after the wave's rollback, which tell the hosts rolled back from those that could not be reached.
    """
    if not isinstance(gate, Mapping) or not isinstance(gate.get("failures"), list) or "budget" not in gate:
        raise ReportError(f"gate: expected the decision of fleetpatch.rollout.wave_gate, got {str(gate)[:60]!r}")
    failures = gate["failures"]
    names = ", ".join(str(failure.get("host")) for failure in failures if isinstance(failure, Mapping))
    if wave is None:
        return (f"before the first wave: {len(failures)} host(s) in scope could not be reached at detection ({names}), against an error "
                f"budget of {gate['budget']}; nothing was patched. Bring them back, or leave them out of the rollout by name "
                "(fleetpatch_exclude_hosts) or every host unreachable at detection (fleetpatch_unreachable: skip)")
    if not isinstance(wave, Mapping) or not isinstance(wave.get("hosts"), list) or "name" not in wave:
        raise ReportError(f"wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got {str(wave)[:60]!r}")
    status = {row.get("host"): row.get("status") for row in rows if isinstance(row, Mapping)}
    groups = {}
    for entry in wave["hosts"]:
        groups.setdefault(status.get(entry["host"], "unknown"), []).append(entry["host"])
    labels = dict(_HALT_GROUPS)
    order = [key for key, _label in _HALT_GROUPS] + sorted(key for key in groups if key not in labels)
    parts = [f"{labels.get(key, key)}: {', '.join(groups[key])}" for key in order if key in groups]
    return (f"wave {wave['name']}: {len(failures)} failed against an error budget of {gate['budget']} ({names}); of the wave's hosts, "
            + "; ".join(parts) + "; no later wave starts (the summary says how each host ended)")
