# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate between two waves of a rollout: the error budget, the wave's failures, and whether to stop.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A failure is a host of the wave that was rolled back, failed, or is unknown (unreachable, or no outcome). A host
whose window closed before its wave was not started and is not a failure. The budget is a count of hosts or a
percentage of the planned hosts, rounded down; the failures count over the whole rollout, and the rollout stops
when they EXCEED the budget (a budget of 2: two failures go on, the third stops it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["GateError", "error_budget", "gate", "wave_failures"]

_COUNT_RE = re.compile(r"[0-9]+")
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
BUDGET_FIELD = "fleetpatch_error_budget"


class GateError(ValueError):
    """Input the gate cannot use; the message names the field and the value."""


def error_budget(value, planned):
    """The budget as a count of hosts: ``value`` is a count (``2``, ``"2"``) or a percentage (``"10%"``) of ``planned``."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text is not None and _COUNT_RE.fullmatch(text):
        return int(text)
    match = _PERCENT_RE.fullmatch(text) if text is not None else None
    if match and float(match.group(1)) <= 100:
        return math.floor(float(match.group(1)) * planned / 100)
    raise GateError(f"{BUDGET_FIELD}: expected a count of hosts (2) or a percentage of the planned hosts, at most 100% ('10%'), got {value!r}")


def wave_failures(wave, hosts, reachable):
    """The failures of ``wave`` (a wave of the plan): one record (``host``, ``wave``, ``status``, ``why``) per host.

    ``hosts`` maps host names to what the rollout knows of them (``guarded_apply_result``, ``window_closed``);
    ``reachable`` lists the hosts still in the play.
    """
    reachable = set(reachable)
    failed = []
    for entry in wave["hosts"]:
        name = entry["host"]
        facts = hosts.get(name) or {}
        outcome = facts.get("guarded_apply_result")
        record = {"host": name, "wave": wave["name"]}
        if name not in reachable:
            failed.append({**record, "status": "unknown", "why": "unreachable or failed during the wave"})
        elif facts.get("window_closed"):
            continue
        elif not isinstance(outcome, Mapping):
            failed.append({**record, "status": "unknown", "why": "no outcome recorded"})
        elif outcome.get("status") in ("rolled_back", "failed"):
            first = (outcome.get("failures") or [{}])[0]
            failed.append({**record, "status": outcome["status"], "why": outcome.get("error") or first.get("why") or "unhealthy"})
    return failed


def gate(wave, hosts, reachable, failures, budget, planned):
    """The gate after ``wave``: ``failures`` so far plus this wave's, the budget as a count, and whether to halt."""
    if not isinstance(wave, Mapping) or not isinstance(wave.get("hosts"), list) or "name" not in wave:
        raise GateError(f"wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got {str(wave)[:80]!r}")
    if not isinstance(hosts, Mapping):
        raise GateError(f"hosts: expected a mapping of host names to their variables, got {type(hosts).__name__}")
    if isinstance(reachable, (str, bytes, Mapping)) or not isinstance(reachable, (list, tuple, set, frozenset)):
        raise GateError(f"reachable: expected the list of hosts still in the play, got {type(reachable).__name__} {str(reachable)[:80]!r}")
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 0:
        raise GateError(f"planned: expected the number of planned hosts (0 or more), got {planned!r}")
    limit = error_budget(budget, planned)
    new = wave_failures(wave, hosts, reachable)
    total = list(failures or ()) + new
    return {"failures": total, "wave_failures": new, "budget": limit, "halted": len(total) > limit}
