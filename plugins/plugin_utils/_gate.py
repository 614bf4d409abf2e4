# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate between two waves of a rollout: the error budget, the wave's failures, and whether to stop.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A failure is a host of the wave that was rolled back, failed, or is unknown (unreachable, or no outcome). A host
whose window closed before its wave was not started and is not a failure. The budget is a count of hosts or a
percentage of the planned hosts, rounded down; the failures count over the whole rollout, and the rollout stops
when they EXCEED the budget (a budget of 2: two failures go on, the third stops it).

The first gate comes before the first wave: given the plan itself instead of a wave, it counts the plan's
``failures``, the hosts in scope that were unreachable at detection (``_waves.py``), so that with a budget of 0
one such host stops the rollout before anything changes, and every later gate counts them too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["DETECTION", "GateError", "error_budget", "gate", "plan_failures", "wave_failures"]

_COUNT_RE = re.compile(r"[0-9]+")
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
BUDGET_FIELD = "fleetpatch_error_budget"
DETECTION = "detection"  # the name of the gate before the first wave


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


def plan_failures(plan):
    """The failures a plan found before its first wave (its ``failures``: hosts unreachable at detection), checked."""
    found = plan.get("failures", [])
    if not isinstance(found, list):
        raise GateError(f"plan.failures: expected a list of failure records, got {type(found).__name__} {str(found)[:80]!r}")
    for index, failure in enumerate(found):
        if not isinstance(failure, Mapping) or not isinstance(failure.get("host"), str) or failure.get("status") != "unknown":
            raise GateError(f"plan.failures[{index}]: expected a record with host and status 'unknown', got {str(failure)[:80]!r}")
    return [{"host": failure["host"], "wave": DETECTION, "status": "unknown", "why": failure.get("why") or "unreachable at detection"}
            for failure in found]


def gate(wave, hosts, reachable, failures, budget, planned):
    """The gate after ``wave``: ``failures`` so far plus this wave's, the budget as a count, and whether to halt.

    Given the plan (a mapping with ``waves``) instead of a wave, the gate before the first wave: its new failures
    are the plan's (:func:`plan_failures`).
    """
    if isinstance(wave, Mapping) and isinstance(wave.get("waves"), list):
        limit = error_budget(budget, _planned(planned))
        new = plan_failures(wave)
        total = list(failures or ()) + new
        return {"failures": total, "wave_failures": new, "budget": limit, "halted": len(total) > limit}
    if not isinstance(wave, Mapping) or not isinstance(wave.get("hosts"), list) or "name" not in wave:
        raise GateError(f"wave: expected a wave of the plan of fleetpatch.rollout.wave_plan, got {str(wave)[:80]!r}")
    if not isinstance(hosts, Mapping):
        raise GateError(f"hosts: expected a mapping of host names to their variables, got {type(hosts).__name__}")
    if isinstance(reachable, (str, bytes, Mapping)) or not isinstance(reachable, (list, tuple, set, frozenset)):
        raise GateError(f"reachable: expected the list of hosts still in the play, got {type(reachable).__name__} {str(reachable)[:80]!r}")
    limit = error_budget(budget, _planned(planned))
    new = wave_failures(wave, hosts, reachable)
    total = list(failures or ()) + new
    return {"failures": total, "wave_failures": new, "budget": limit, "halted": len(total) > limit}


def _planned(planned):
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 0:
        raise GateError(f"planned: expected the number of planned hosts (0 or more), got {planned!r}")
    return planned
