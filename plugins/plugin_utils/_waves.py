# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The wave planner: which hosts a patch touches, in which order, and which wait for their maintenance window.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

:func:`plan_waves` turns the hosts' inventory variables and detection results, a checked manifest and a rollout
policy into a plain, JSON-serialisable plan (see its docstring for the shape). Pure Python; it decides, it
runs nothing. The rules, in the order they apply:

1. Scope. A host the operator names in ``exclude_hosts`` is left out as ``operator``, whatever its state. A
   host that was unreachable at detection is excluded as ``unreachable`` and counts against the rollout's error
   budget as ``unknown`` (it is listed in the plan's ``failures``, which the first gate starts from), unless
   ``unreachable`` is ``skip``: then it is left out as ``unknown`` like a host whose detection failed (never
   planned as patched). A host at or above ``fixed_version`` and outside ``affected`` is excluded as ``fixed``,
   unless the last patch the host's state file records applying is this one, to the release it runs, and its
   health was never judged (no ``judged`` mark: a run killed between the apply and the end of the soak): that
   host is in scope, ``judge_only``, so that its wave soaks and gates it like any other. One outside
   ``affected`` is excluded as ``not_affected``. The rest, the affected hosts, are in scope.
2. Mixed versions. If any host in scope runs a version outside ``compatible_with`` (the versions that may run
   beside ``fixed_version`` during the rollout), the plan is refused with :class:`PlanError` naming every such
   host and its version.
3. Quorum (``_availability.py``). A cluster of n members (every host given with that cluster name) may lose
   ``max_unavailable`` at once, by default floor((n - 1) / 2), which keeps a strict majority up. Members whose
   detection failed count as down already. A cluster left with no budget has its hosts excluded as ``quorum``.
4. Windows (``_windows.py``). A host with a maintenance window open now is planned with that window's end as
   its cutoff (``window_end``: the rollout must not start it later). Otherwise: ``routine`` defers it with its
   next window; ``urgent`` overrides the window only when the host's customer was told of this patch at least
   ``notify.lead_time`` ago (``_notifications.py``), and defers it otherwise; ``emergency`` overrides every
   window and records who decided it and why (``policy.emergency``). Overridden hosts have no cutoff.
5. Waves. The canary first; then region by region (the policy's ``region_order``, then the other regions,
   smallest first, ties by name); hosts without a region last. Each region is cut into batches; within it,
   hosts outside clusters and secondaries come before primaries, a primary goes in a later wave than every
   secondary of its cluster planned in this run (a primary whose secondaries are planned in a later region
   moves to that region), and no wave holds more than a cluster's budget. Ties are broken by host name, so
   the same input gives the same plan.

The policy is checked against ``plan.schema.json`` (properties), with defaults documented there and in
:data:`DEFAULT_POLICY`. It plans 100,000 hosts in well under a second: every window is read and evaluated
once per distinct window, every version once per distinct version, and no step compares hosts pairwise.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import math
import operator
from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._availability import max_unavailable
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import parse_duration
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._notifications import NotificationError, load_notifications, validate_notifications
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import NO_JSONSCHEMA, path_text, schema_problems, short_repr, validator
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import (
    PLAN_SCHEMA, UTC, WindowError, format_utc, parse_utc, parse_window, window_key, window_state,
)

__all__ = [
    "DEFAULT_POLICY", "HOST_VARIABLES", "PlanError", "POLICY_INPUTS", "UNREACHABLE_MODES", "follow_up", "host_variables", "plan_waves",
    "policy_with_inputs", "unjudged_apply", "validate_policy",
]

DEFAULT_POLICY = {
    "canary": {"count": 1, "spread": "regions"},
    "region_order": [],
    "batch": {"percent": 100},
    "max_unavailable": None,
    "unwindowed": "anytime",
    "customer_windows": {},
    "emergency": None,
}
URGENCIES = ("routine", "urgent", "emergency")
UNREACHABLE_MODES = ("fail", "skip")
DETECTION_WAVE = "detection"  # the "wave" of the failures found before the first wave
ROLES = ("primary", "secondary")
_ROLES_OR_NONE = frozenset(ROLES + (None,))
NO_REGION = "no region"
_MAX_LINES = 50
_POLICY_VALIDATOR = validator(PLAN_SCHEMA)


# The host variables the planner reads, besides the detection result (its ``detect_key``): nothing else of a host's
# variables matters to the plan, so a caller that reads hosts' variables one by one reads only these.
HOST_VARIABLES = ("region", "cluster", "cluster_role", "customer", "maintenance_window", "version")


def host_variables(detect_key):
    """The names of the host variables :func:`plan_waves` reads with ``detect_key``, in a fixed order."""
    return HOST_VARIABLES + ((detect_key,) if detect_key not in HOST_VARIABLES else ())


class PlanError(ValueError):
    """A plan fleetpatch refuses to make. ``errors`` holds one line per problem; ``hosts`` maps host to version
    when the refusal is about mixed versions."""

    def __init__(self, errors, hosts=None):
        self.errors = list(errors)
        self.hosts = dict(hosts or {})
        lines = self.errors[:_MAX_LINES]
        if len(self.errors) > _MAX_LINES:
            lines.append(f"... and {len(self.errors) - _MAX_LINES} more")
        super().__init__("\n".join(lines))


def validate_policy(policy):
    """The policy with its defaults filled in (customer windows read); PlanError naming field and value otherwise."""
    if policy is None:
        policy = {}
    if not isinstance(policy, dict):
        raise PlanError([f"policy: expected a mapping, got {type(policy).__name__} {short_repr(policy)}"])
    if _POLICY_VALIDATOR is None:
        raise PlanError([f"policy: cannot check it: {NO_JSONSCHEMA}"])
    errors = [f"{path_text(('policy',) + path)}: {message}" for path, message in schema_problems(_POLICY_VALIDATOR, policy)]
    windows = {}
    for customer, data in sorted((policy.get("customer_windows") or {}).items()) if isinstance(policy.get("customer_windows"), dict) else ():
        if isinstance(data, dict):
            try:
                windows[customer] = parse_window(data, f"policy.customer_windows.{customer}")
            except WindowError as exc:
                errors.extend(str(exc).splitlines())
    if errors:
        raise PlanError(errors)
    result = {key: policy.get(key, default) for key, default in DEFAULT_POLICY.items()}
    canary = dict(policy.get("canary") or {})
    if "count" not in canary and "percent" not in canary:
        canary["count"] = DEFAULT_POLICY["canary"]["count"]
    if "region" not in canary:
        canary.setdefault("spread", "regions")
    result["canary"] = canary
    result["batch"] = dict(policy.get("batch") or DEFAULT_POLICY["batch"])
    result["region_order"] = list(result["region_order"])
    result["customer_windows"] = windows
    return result


# The policy's fields as scalars (or a list of scalars), the way a job template's survey asks for them: input name ->
# (the policy field it sets, what it must be). Given a value, each replaces that field of the policy mapping.
POLICY_INPUTS = {
    "canary_count": (("canary", "count"), "count"),
    "canary_percent": (("canary", "percent"), "percent"),
    "canary_region": (("canary", "region"), "text"),
    "region_order": (("region_order",), "names"),
    "batch_count": (("batch", "count"), "count"),
    "batch_percent": (("batch", "percent"), "percent"),
    "unwindowed": (("unwindowed",), "text"),
    "emergency_decided_by": (("emergency", "decided_by"), "text"),
    "emergency_justification": (("emergency", "justification"), "text"),
}
# Fields of one choice: setting one drops the others (count or percent; a canary region or a spread).
_EXCLUSIVE = {("canary", "count"): ("percent",), ("canary", "percent"): ("count",), ("canary", "region"): ("spread",),
              ("batch", "count"): ("percent",), ("batch", "percent"): ("count",)}


def _input_value(name, value, kind):
    """An input's value as the policy holds it; PlanError naming the variable otherwise. ``None`` when not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # not given: a survey's unanswered optional field is empty
    label = f"fleetpatch_{name}"
    if kind in ("count", "percent"):
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and text.isdigit():
            text = int(text)
        elif isinstance(text, str) and kind == "percent":
            try:
                text = float(text)
            except ValueError:
                pass
        if isinstance(text, bool) or not isinstance(text, (int, float)) or (kind == "count" and not isinstance(text, int)):
            wanted = "a whole number, 0 or more" if kind == "count" else "a percentage"
            raise PlanError([f"{label}: expected {wanted}, got {short_repr(value)}"])
        return text
    if kind == "names":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
            raise PlanError([f"{label}: expected region names, a list or one text separated by commas, got {short_repr(value)}"])
        return [item.strip() for item in items if item.strip()]
    if not isinstance(value, str):
        raise PlanError([f"{label}: expected text, got {type(value).__name__} {short_repr(value)}"])
    return value.strip()


def policy_with_inputs(policy, inputs):
    """``policy`` (a mapping, or None) with the survey-style ``inputs`` laid over it, as a new mapping.

    ``inputs`` maps the names of :data:`POLICY_INPUTS` to a value, or to None (or empty text) when not given. A
    count replaces the policy's percent and the other way round; a canary region replaces the spread. What results
    is checked later, by :func:`validate_policy`. PlanError names the variable (``fleetpatch_<name>``) and value of
    an input of the wrong kind, and any input fleetpatch does not know.
    """
    if policy is None:
        policy = {}
    if not isinstance(policy, dict):
        raise PlanError([f"policy: expected a mapping, got {type(policy).__name__} {short_repr(policy)}"])
    unknown = sorted(set(inputs) - set(POLICY_INPUTS))
    if unknown:
        raise PlanError([f"unknown policy input(s) {', '.join(unknown)}: expected {', '.join(POLICY_INPUTS)}"])
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in policy.items()}
    for name, (path, kind) in POLICY_INPUTS.items():
        value = _input_value(name, inputs.get(name), kind)
        if value is None:
            continue
        if len(path) == 1:
            merged[path[0]] = value
            continue
        section = merged.get(path[0])
        section = dict(section) if isinstance(section, dict) else {}
        for other in _EXCLUSIVE.get(path, ()):
            section.pop(other, None)
        section[path[1]] = value
        merged[path[0]] = section
    return merged


def _manifest_rules(manifest):
    """``(id, urgency, affected, fixed, compatible, lead_time)`` from a checked manifest; PlanError otherwise."""
    if not isinstance(manifest, dict):
        raise PlanError([f"manifest: expected the checked manifest (a mapping), got {type(manifest).__name__} {short_repr(manifest)}"])
    errors = []
    patch_id = manifest.get("id")
    if not isinstance(patch_id, str) or not patch_id:
        errors.append(f"manifest.id: required, got {short_repr(patch_id)}")
    urgency = manifest.get("urgency")
    if urgency not in URGENCIES:
        errors.append(f"manifest.urgency: {short_repr(urgency)} is not one of {', '.join(repr(item) for item in URGENCIES)}")
    parsed = {}
    for field, kind in (("affected", VersionRange), ("compatible_with", VersionRange), ("fixed_version", Version)):
        try:
            parsed[field] = kind(manifest.get(field))
        except VersionError as exc:
            errors.append(f"manifest.{field}: {exc}")
    lead_time = None
    if urgency == "urgent":
        notify = manifest.get("notify") if isinstance(manifest.get("notify"), dict) else {}
        seconds = notify.get("lead_time_seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            try:
                seconds = parse_duration(notify.get("lead_time"))
            except ValueError as exc:
                errors.append(f"manifest.notify.lead_time: required when urgency is 'urgent': {exc}")
        if isinstance(seconds, int):
            lead_time = datetime.timedelta(seconds=seconds)
    if errors:
        raise PlanError(errors)
    return patch_id, urgency, parsed["affected"], parsed["fixed_version"], parsed["compatible_with"], lead_time


def _host_items(hosts):
    """``[(name, facts)]`` from a mapping of name to facts, or a list of facts each naming its host."""
    if isinstance(hosts, Mapping):
        return list(hosts.items())
    if isinstance(hosts, (list, tuple)):
        items, errors, seen = [], [], set()
        for index, facts in enumerate(hosts):
            name = None
            if isinstance(facts, Mapping):
                name = facts.get("host", facts.get("name", facts.get("inventory_hostname")))
            if not isinstance(name, str) or not name:
                errors.append(f"hosts[{index}]: expected a mapping naming its host (host: <name>), got {short_repr(facts)}")
            elif name in seen:
                errors.append(f"hosts[{index}]: host {name!r} is listed twice")
            else:
                seen.add(name)
                items.append((name, facts))
        if errors:
            raise PlanError(errors)
        return items
    raise PlanError([f"hosts: expected a mapping of host name to variables or a list of them, got {type(hosts).__name__} {short_repr(hosts)}"])


def _detected(facts, detect_key):
    """``(version, None, False)`` from a host's detection result, or ``(None, why it is unknown, unreachable)``."""
    result = facts.get(detect_key)
    if result is not None:
        if result.__class__ is not dict and not isinstance(result, Mapping):
            return None, f"detect result is not a mapping: {short_repr(result)}", False
        if result.get("unreachable"):
            return None, f"{short_repr(result.get('msg', ''))}", True
        if result.get("failed"):
            return None, f"detection failed: {short_repr(result.get('msg', ''))}", False
        if result.get("skipped"):
            return None, "detection was skipped", False
        if result.get("state_error"):
            # The version is known, but not whether an operation was cut off there: the host cannot be placed.
            return None, f"state file unusable: {short_repr(result['state_error'])}", False
        interrupted = result.get("interrupted")
        if isinstance(interrupted, Mapping) and interrupted.get("op") == "apply" and interrupted.get("from"):
            # An apply cut off on the host is reverted by the next apply: the host counts at the release it goes back to.
            return interrupted["from"], None, False
        version = result.get("version")
    else:
        version = facts.get("version")
    if version is None or version == "unknown":
        return None, "no detection result", False
    return version, None, False


def unjudged_apply(result, patch_id, version):
    """Whether a detection ``result`` shows that ``version`` runs because of an apply of ``patch_id`` never judged.

    True when the last ``applied`` record of the host's state file (as ``fleetpatch.rollout.detect`` returns it)
    is of ``patch_id``, to ``version``, without a ``judged`` mark: the apply completed, but the run that made it
    ended before the soak judged the host healthy. A host that runs the fix by other means has no such record.
    """
    applied = result.get("applied") if isinstance(result, Mapping) else None
    if not isinstance(applied, list) or not applied or not isinstance(applied[-1], Mapping):
        return False
    last = applied[-1]
    return last.get("patch") == patch_id and str(last.get("version")) == version and not last.get("judged")


class _Host:
    """One host as the planner sees it."""

    __slots__ = ("name", "region", "cluster", "role", "customer", "version", "window", "window_end", "note", "decision", "next_window",
                 "after_window", "judge_only")

    def __init__(self, name, facts):
        self.name = name
        self.region = facts.get("region")
        self.cluster = facts.get("cluster")
        self.role = facts.get("cluster_role")
        self.customer = facts.get("customer")
        self.version = None
        self.window = None
        self.window_end = None
        self.note = ""
        self.decision = None
        self.next_window = None
        self.after_window = None
        self.judge_only = False

    def problems(self):
        """Lines about variables of the wrong kind."""
        region, cluster, customer = self.region, self.cluster, self.customer
        if ((region is None or (region.__class__ is str and region)) and (cluster is None or (cluster.__class__ is str and cluster))
                and (customer is None or (customer.__class__ is str and customer)) and self.role in _ROLES_OR_NONE):
            return ()  # the usual case, quickly
        found = []
        for field in ("region", "cluster", "customer"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                found.append(f"{self.name}: {field}: {short_repr(value)} is not a non-empty string")
        if self.role is not None and self.role not in ROLES:
            found.append(f"{self.name}: cluster_role: {short_repr(self.role)} is not one of 'primary', 'secondary'")
        return found


def _classify(version, cache, affected, fixed, compatible):
    """``(status, compatible)`` of a version string, cached: status is affected, fixed, not_affected or bad."""
    found = cache.get(version)
    if found is None:
        try:
            parsed = Version(version)
        except VersionError:
            found = ("bad", True)
        else:
            if parsed in affected:
                found = ("affected", parsed in compatible)
            else:
                found = ("fixed" if parsed >= fixed else "not_affected", True)
        cache[version] = found
    return found


def _batch_size(batch, count):
    """Hosts per wave of a group of ``count`` hosts."""
    if "count" in batch:
        return batch["count"]
    return max(1, math.ceil(batch["percent"] * count / 100))


def _pack(members, size, budget, open_secondaries):
    """Cut one group's hosts (ordered) into waves of at most ``size`` within every cluster's budget.

    A primary waits until no secondary of its cluster is left to place in an earlier wave. Hosts skipped in one
    wave are tried first in the next, so every host is looked at a bounded number of times.
    """
    waves = []
    carry = []
    position = 0
    total = len(members)
    while carry or position < total:
        wave, used, skipped = [], {}, []
        for host in carry:
            if len(wave) < size and _fits(host, used, budget, open_secondaries):
                wave.append(host)
            else:
                skipped.append(host)
        while len(wave) < size and position < total:
            host = members[position]
            position += 1
            if _fits(host, used, budget, open_secondaries):
                wave.append(host)
            else:
                skipped.append(host)
        if not wave:  # cannot happen with budgets of at least 1; never loop forever
            raise PlanError([f"internal error: cannot place {', '.join(host.name for host in skipped[:10])}"])
        for host in wave:
            if host.cluster is not None and host.role != "primary":
                open_secondaries[host.cluster] -= 1
        waves.append(wave)
        carry = skipped
    return waves


def _fits(host, used, budget, open_secondaries):
    """Whether ``host`` may join a wave whose clusters already lose ``used``; counts it in when it may."""
    cluster = host.cluster
    if cluster is None:
        return True
    if used.get(cluster, 0) >= budget[cluster]:
        return False
    if host.role == "primary" and open_secondaries.get(cluster, 0):
        return False
    used[cluster] = used.get(cluster, 0) + 1
    return True


def _role_rank(host):
    return (host.cluster is not None) + (host.role == "primary")


def _pick_canary(policy, groups, order, hosts_by_region, total, planned_secondaries):
    """The canary hosts, taken from ``groups`` (region name to ordered hosts) as the policy says."""
    canary = policy["canary"]
    if "count" in canary:
        wanted = canary["count"]
    else:
        wanted = math.ceil(canary["percent"] * total / 100)
    wanted = min(wanted, total)
    if wanted <= 0:
        return [], "no canary"

    def pool(region):
        # Primaries that have secondaries to go first are no canaries; hosts outside clusters go first.
        return [host for host in groups.get(region, ()) if not (host.role == "primary" and planned_secondaries.get(host.cluster))]

    if "region" in canary:
        region = canary["region"]
        if region not in hosts_by_region:
            known = ", ".join(sorted(name for name in hosts_by_region if name != NO_REGION)) or "none"
            raise PlanError([f"policy.canary.region: {short_repr(region)} is not the region of any host (regions: {known})"])
        candidates = sorted(pool(region), key=lambda host: (_role_rank(host), host.name))
        if not candidates:
            raise PlanError([f"policy.canary.region: no host of region {region!r} can be patched now (each is excluded or deferred): "
                             "choose another canary region"])
        return candidates[:wanted], f"confined to region {region}"
    pools = [sorted(pool(region), key=lambda host: (_role_rank(host), host.name)) for region in order]
    chosen = []
    depth = 0
    while len(chosen) < wanted and any(depth < len(candidates) for candidates in pools):
        for candidates in pools:
            if depth < len(candidates) and len(chosen) < wanted:
                chosen.append(candidates[depth])
        depth += 1
    return chosen, "spread over regions"


class _Decider:
    """Window decisions of one plan (the caller asks once per distinct window and once per customer)."""

    def __init__(self, urgency, patch_id, lead_time, notifications, emergency, now):
        self.urgency = urgency
        self.patch_id = patch_id
        self.lead_time = lead_time
        self.notifications = notifications
        self.now = now
        self.lead_passes = {}  # customer -> when the lead time since its notice passes, for a customer told too late
        self.emergency_note = None
        if urgency == "emergency":
            self.emergency_note = f"emergency patch: windows overridden, decided by {emergency['decided_by']}: {emergency['justification']}"

    def customer(self, customer):
        """``(may override, why it may, why it may not)`` for a host of this customer."""
        if self.urgency == "emergency":
            return True, self.emergency_note, None
        if self.urgency == "routine":
            return False, None, "routine patch: only inside the maintenance window"
        if customer is None:
            return False, None, "urgent patch: the host has no customer to pre-notify, so its window holds"
        ok, record = (False, None) if self.notifications is None else self.notifications.notified_since(customer, self.patch_id, self.lead_time, self.now)
        if record is None:
            return False, None, f"urgent patch: customer {customer} has no pre-notification of {self.patch_id}, so its window holds"
        told = format_utc(record["notified_at"])
        lead = _duration_text(self.lead_time)
        if ok:
            how = f"by {record['by']} via {record['channel']}"
            return True, f"urgent patch: customer {customer} notified at {told} {how}, at least the lead time {lead} ago", None
        self.lead_passes[customer] = format_utc(record["notified_at"] + self.lead_time)
        return False, None, (f"urgent patch: customer {customer} notified at {told}, lead time {lead} not reached until "
                             f"{self.lead_passes[customer]}, so its window holds")

    def state(self, window):
        """``(open window's end as text or None, next start, next end)`` of a window at now."""
        current, upcoming = window_state(window, self.now)
        return (
            format_utc(current[1]) if current else None,
            format_utc(upcoming[0]) if upcoming else None,
            format_utc(upcoming[1]) if upcoming else None,
        )


def _deferred(host, reason, detail, next_start, next_end, lead_passes=None):
    """A deferred host, with when a next run could patch it (``progress_at``): its next window, or sooner the moment
    the lead time since its customer's notice passes (an urgent patch may then override the window)."""
    progress_at, progress = next_start, "its next maintenance window opens" if next_start else None
    if lead_passes and (progress_at is None or lead_passes < progress_at):
        progress_at, progress = lead_passes, f"the lead time since customer {host.customer}'s notice passes"
    return {
        "host": host.name, "region": host.region, "cluster": host.cluster, "customer": host.customer, "version": host.version,
        "reason": reason, "detail": detail, "next_window": next_start, "next_window_end": next_end,
        "progress_at": progress_at, "progress": progress,
    }


def follow_up(deferred):
    """When a next run would make progress on the ``deferred`` hosts of a plan: the earliest ``progress_at``, the
    hosts it frees and why (``{"at", "hosts", "why"}``), or None when no deferred host would ever be freed by time."""
    timed = [entry for entry in deferred if entry.get("progress_at")]
    if not timed:
        return None
    at = min(entry["progress_at"] for entry in timed)
    first = [entry for entry in timed if entry["progress_at"] == at]
    return {"at": at, "hosts": sorted(entry["host"] for entry in first), "why": sorted({entry["progress"] for entry in first})}


def _duration_text(delta):
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def plan_waves(hosts, manifest, policy=None, now=None, notifications=None, detect_key="detect", exclude_hosts=None, unreachable="fail"):
    """Plan the rollout of ``manifest`` over ``hosts``; return the plan as plain data, raise PlanError otherwise.

    ``hosts`` maps host name to its variables (or is a list of them, each with ``host``): ``region``,
    ``cluster``, ``cluster_role`` (``primary`` or ``secondary``), ``customer``, ``maintenance_window`` and the
    detection result, either under ``detect_key`` (default ``detect``: what ``fleetpatch.rollout.detect``
    returned, registered; failed, unreachable or skipped makes the host unknown) or as ``version`` (the detect playbook's report rows; the
    string ``unknown`` makes the host unknown). Affected and fixed are decided here from ``version`` by the
    manifest's ranges. ``manifest`` is a checked manifest (``fleetpatch.rollout.manifest``). ``policy`` is
    described by ``plan.schema.json``; ``now`` an aware datetime or RFC 3339 string (default: the current
    time); ``notifications`` the pre-notification record (a path, its loaded data, or None); ``exclude_hosts``
    the names of hosts the operator leaves out, whatever their state (each must be one of ``hosts``);
    ``unreachable`` what a host unreachable at detection does: ``fail`` (count against the error budget, listed
    in ``failures``) or ``skip`` (left out as ``unknown``).

    The plan (times are UTC, ``2025-12-18T09:30:00Z``)::

        {"patch": "FP-2025-14847", "urgency": "routine", "now": "...",
         "waves": [{"index": 1, "name": "canary", "group": "canary",
                    "hosts": [{"host", "region", "cluster", "cluster_role", "customer", "version",
                               "window": "open" | "override" | "none", "window_end": "..." | None,
                               "next_window": "..." | None, "judge_only": False,
                               "reason": "why it is in this wave"}]},
                   {"index": 2, "name": "eu-west 1/2", "group": "eu-west", "hosts": [...]}, ...],
         "excluded": [{"host", "region", "cluster", "customer", "version",
                       "reason": "fixed" | "not_affected" | "unknown" | "unreachable" | "operator" | "quorum", "detail"}],
         "failures": [{"host", "wave": "detection", "status": "unknown", "why"}],
         "deferred": [{"host", "region", "cluster", "customer", "version", "reason": "outside_window" | "no_window", "detail",
                       "next_window": "..." | None, "next_window_end": "..." | None}],
         "overrides": [{"host", "customer", "reason": "urgent" | "emergency", "detail", "next_window"}],
         "summary": {"hosts", "planned", "waves", "canary", "judge_only", "excluded": {reason: count}, "deferred", "overrides",
                     "region_order", "emergency": {"decided_by", "justification"} | None, "policy": {...},
                     "left_out": {"exclude_hosts": [...], "unreachable": "fail" | "skip"}}}

    ``window_end`` is the cutoff: the rollout must not start the host at or after it (``may_start``);
    ``next_window`` the start of the host's next window after that (None without a cutoff), for a host whose
    window closes before its turn. ``judge_only`` marks a host that already runs the fix by an apply never judged
    (its wave only soaks and gates it). ``failures`` are the hosts unreachable at detection, counted against the
    error budget before the first wave. Lists other than the waves' hosts are sorted by host name; a wave's
    hosts too.
    """
    patch_id, urgency, affected, fixed, compatible, lead_time = _manifest_rules(manifest)
    policy = validate_policy(policy)
    if urgency == "emergency" and not policy["emergency"]:
        raise PlanError(["policy.emergency: required when the manifest's urgency is 'emergency': who decided to override the maintenance windows "
                         "(decided_by) and why (justification)"])
    try:
        now = datetime.datetime.now(UTC) if now is None else parse_utc(now, "now")
        if isinstance(notifications, str):
            notifications = load_notifications(notifications)
        elif notifications is not None:
            notifications = validate_notifications(notifications)
    except (ValueError, NotificationError) as exc:
        raise PlanError(str(exc).splitlines()) from None
    left_out = _left_out(exclude_hosts, unreachable)

    with _gc_paused():
        return _plan(hosts, patch_id, urgency, affected, fixed, compatible, lead_time, policy, now, notifications, detect_key, left_out)


def _left_out(exclude_hosts, unreachable):
    """``{"exclude_hosts": sorted names, "unreachable": mode}`` checked; PlanError naming the field and value otherwise."""
    errors = []
    if exclude_hosts is None:
        exclude_hosts = []
    if isinstance(exclude_hosts, (str, bytes, Mapping)) or not isinstance(exclude_hosts, (list, tuple, set, frozenset)):
        errors.append(f"exclude_hosts: expected a list of host names, got {type(exclude_hosts).__name__} {short_repr(exclude_hosts)}")
        exclude_hosts = []
    for index, name in enumerate(exclude_hosts):
        if not isinstance(name, str) or not name:
            errors.append(f"exclude_hosts[{index}]: expected a host name, got {short_repr(name)}")
    if unreachable not in UNREACHABLE_MODES:
        errors.append(f"unreachable: {short_repr(unreachable)} is not one of {', '.join(repr(mode) for mode in UNREACHABLE_MODES)}")
    if errors:
        raise PlanError(errors)
    return {"exclude_hosts": sorted(set(exclude_hosts)), "unreachable": unreachable}


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while planning.

    The planner makes a few acyclic objects per host; with the GC on, their number triggers repeated full
    collections over the caller's host data as well (a third of the time at 100,000 hosts).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(hosts, patch_id, urgency, affected, fixed, compatible, lead_time, policy, now, notifications, detect_key, left_out):
    """plan_waves after its arguments are checked."""
    items = _host_items(hosts)
    errors = []
    excluded = []
    failures = []
    operator_names = set(left_out["exclude_hosts"])
    unknown_names = operator_names.difference(name for name, _facts in items)
    if unknown_names:
        raise PlanError([f"exclude_hosts: {name!r} is not a host of the rollout (its hosts, after any --limit)" for name in sorted(unknown_names)])
    skip_unreachable = left_out["unreachable"] == "skip"
    in_scope = []
    mixed = {}
    versions = {}
    members = {}
    down = {}
    regions_all = set()
    windows = {}
    same_object = {}
    customers = {}
    decider = _Decider(urgency, patch_id, lead_time, notifications, policy["emergency"], now)
    customer_windows = policy["customer_windows"]
    defer_unwindowed = policy["unwindowed"] == "defer"
    for name, facts in items:
        if facts.__class__ is not dict and not isinstance(facts, Mapping):
            errors.append(f"{name}: expected a mapping of host variables, got {type(facts).__name__} {short_repr(facts)}")
            continue
        host = _Host(name, facts)
        found = host.problems()
        if found:
            errors.extend(found)
            continue
        regions_all.add(host.region if host.region is not None else NO_REGION)
        cluster = host.cluster
        if cluster is not None:
            members[cluster] = members.get(cluster, 0) + 1
        version, why, lost = _detected(facts, detect_key)
        status = "unknown"
        if version is not None:
            host.version = version = str(version)
            status, ok = _classify(version, versions, affected, fixed, compatible)
            if status == "bad":
                status, why = "unknown", f"detected version {short_repr(version)} is not a version"
            elif not ok and name not in operator_names:
                mixed[name] = version
        if status == "unknown" and cluster is not None:
            down[cluster] = down.get(cluster, 0) + 1
        if name in operator_names:
            state = f"; unreachable: {why}" if lost else f"; runs {version}" if status != "unknown" else ""
            excluded.append(_excluded(host, "operator", f"left out by the operator (exclude_hosts){state}"))
            continue
        if status == "affected":
            in_scope.append(host)
        elif status == "fixed" and unjudged_apply(facts.get(detect_key), patch_id, version):
            host.judge_only = True
            host.note = f"runs {version}, applied by an earlier run of {patch_id} that ended before its health was judged: judged now"
            in_scope.append(host)
        elif status == "fixed":
            excluded.append(_excluded(host, "fixed", f"runs {version}, at or above the fixed version {fixed}"))
            continue
        elif status == "not_affected":
            excluded.append(_excluded(host, "not_affected", f"runs {version}, outside the affected range {affected}"))
            continue
        elif lost and not skip_unreachable:
            excluded.append(_excluded(host, "unreachable", f"unreachable at detection: {why}; counts against the error budget as unknown"))
            failures.append({"host": name, "wave": DETECTION_WAVE, "status": "unknown", "why": f"unreachable at detection: {why}"})
            continue
        else:
            excluded.append(_excluded(host, "unknown", f"unreachable: {why}; left out (unreachable: skip)" if lost else why))
            continue
        # Its window: read and evaluated once per distinct window; decided here, sorted out after the budgets.
        data = facts.get("maintenance_window")
        if data is not None:
            # Hosts that share one window object (group variables) skip even the key. The entry keeps ``data``
            # alive, so that its id is not reused by another object (lazy host variables make new ones).
            seen = same_object.get(id(data))
            state = seen[1] if seen is not None and seen[0] is data else None
            if state is None:
                key = window_key(data)
                state = windows.get(key)
                if state is None:
                    try:
                        state = windows[key] = decider.state(parse_window(data))
                    except WindowError as exc:
                        state = windows[key] = exc
                same_object[id(data)] = (data, state)
            if state.__class__ is WindowError:
                errors.extend(f"{name}: {line}" for line in str(state).splitlines())
                continue
        elif host.customer in customer_windows:
            key = ("customer", host.customer)
            state = windows.get(key)
            if state is None:
                state = windows[key] = decider.state(customer_windows[host.customer])
        else:
            host.decision = "defer_unwindowed" if defer_unwindowed else "none"
            continue
        closes, next_start, next_end = state
        decided = customers.get(host.customer)
        if decided is None:
            decided = customers[host.customer] = decider.customer(host.customer)
        may_override, because, refusal = decided
        if closes is not None:
            host.decision = "open"
            if may_override:
                host.note = f"in its maintenance window (closing {closes}; no cutoff: {because})" + (f"; {host.note}" if host.note else "")
            else:
                host.window_end = closes
                host.after_window = next_start
                host.note = f"in its maintenance window until {closes}" + (f"; {host.note}" if host.note else "")
        elif may_override:
            host.decision = "override"
            host.note = because + (f"; {host.note}" if host.note else "")
            host.next_window = next_start
        else:
            host.decision = "deferred"
            host.note = refusal + (f"; {host.note}" if host.note else "")
            host.next_window = (next_start, next_end)
    if errors:
        raise PlanError(sorted(errors))
    if mixed:
        lines = [f"refusing to plan: {len(mixed)} host(s) in scope run a version outside compatible_with {compatible.text!r}, "
                 f"which cannot run beside {fixed} during the rollout (leave them out of the rollout's hosts, or fix the manifest):"]
        lines.extend(f"{name}: {mixed[name]}" for name in sorted(mixed))
        raise PlanError(lines, hosts=mixed)

    # Quorum budgets: a cluster with none left has its hosts excluded; the others go where their window says.
    limits = policy["max_unavailable"]
    budget = {}
    for cluster, count in members.items():
        budget[cluster] = max_unavailable(count, _policy_limit(limits, cluster)) - down.get(cluster, 0)
    planned, deferred, overrides = [], [], []
    for host in in_scope:
        decision = host.decision
        if host.cluster is not None and budget[host.cluster] <= 0:
            excluded.append(_excluded(host, "quorum", _quorum_text(host.cluster, members, down, limits)))
        elif decision == "open":
            host.window = "open"
            planned.append(host)
        elif decision == "override":
            host.window = "override"
            overrides.append({"host": host.name, "customer": host.customer, "reason": urgency, "detail": host.note, "next_window": host.next_window})
            planned.append(host)
        elif decision == "deferred":
            deferred.append(_deferred(host, "outside_window", host.note, *host.next_window, lead_passes=decider.lead_passes.get(host.customer)))
        elif decision == "none":
            host.window = "none"
            host.note = "no maintenance window" + (f"; {host.note}" if host.note else "")
            planned.append(host)
        else:
            deferred.append(_deferred(host, "no_window", "no maintenance window, and the policy defers such hosts (unwindowed: defer)"
                                      + (f"; {host.note}" if host.note else ""), None, None))

    waves, order, canary_count = _waves(planned, policy, regions_all, budget, members)
    by_host = operator.itemgetter("host")
    excluded.sort(key=by_host)
    deferred.sort(key=by_host)
    overrides.sort(key=by_host)
    failures.sort(key=by_host)
    counts = dict.fromkeys(("fixed", "not_affected", "unknown", "unreachable", "operator", "quorum"), 0)
    for entry in excluded:
        counts[entry["reason"]] += 1
    summary_policy = dict(policy, customer_windows=sorted(policy["customer_windows"]))
    return {
        "patch": patch_id,
        "urgency": urgency,
        "now": format_utc(now),
        "waves": waves,
        "excluded": excluded,
        "deferred": deferred,
        "overrides": overrides,
        "failures": failures,
        "follow_up": follow_up(deferred),
        "summary": {
            "hosts": len(items),
            "planned": len(planned),
            "waves": len(waves),
            "canary": canary_count,
            "judge_only": sum(1 for host in planned if host.judge_only),
            "excluded": counts,
            "deferred": len(deferred),
            "overrides": len(overrides),
            "region_order": order,
            "emergency": dict(policy["emergency"]) if urgency == "emergency" else None,
            "policy": summary_policy,
            "left_out": left_out,
        },
    }


def _excluded(host, reason, detail):
    return {"host": host.name, "region": host.region, "cluster": host.cluster, "customer": host.customer, "version": host.version,
            "reason": reason, "detail": detail}


def _policy_limit(limits, cluster):
    """What policy.max_unavailable (checked: a count, or counts by cluster name) sets for ``cluster``, or None."""
    if isinstance(limits, int):
        return limits
    if isinstance(limits, dict):
        return limits.get(cluster)
    return None


def _quorum_text(cluster, members, down, limits):
    count = members[cluster]
    limit = _policy_limit(limits, cluster)
    if limit is not None:
        rule = f"policy.max_unavailable allows {limit}"
    else:
        rule = f"keeping a strict majority up allows {max_unavailable(count)}"
    text = f"cluster {cluster} has {count} member(s): {rule} down at once"
    if down.get(cluster):
        text += f", and {down[cluster]} member(s) of unknown state count as down already"
    return text + "; set policy.max_unavailable to patch it"


def _waves(planned, policy, regions_all, budget, members):
    """``(waves, region order, canary size)`` of the planned hosts."""
    by_region = {}
    for host in planned:
        by_region.setdefault(host.region if host.region is not None else NO_REGION, []).append(host)
    # Smallest region first (by hosts planned), ties by name; the policy's order before that; no region last.
    listed = list(policy["region_order"])
    others = sorted((region for region in by_region if region not in listed and region != NO_REGION), key=lambda region: (len(by_region[region]), region))
    order = listed + others + ([NO_REGION] if NO_REGION in by_region else [])

    planned_secondaries = {}
    for host in planned:
        if host.cluster is not None and host.role != "primary":
            planned_secondaries[host.cluster] = planned_secondaries.get(host.cluster, 0) + 1
    canary, how = _pick_canary(policy, by_region, [region for region in order if region in by_region], {region: True for region in regions_all},
                               len(planned), planned_secondaries)
    groups = [("canary", canary)] if canary else []
    chosen = {host.name for host in canary}
    for host in canary:
        host.note = f"picked as canary, {how}; {host.note}"
    position = {}
    for region in order:
        rest = [host for host in by_region.get(region, ()) if host.name not in chosen]
        if rest:
            position[region] = len(groups)
            groups.append((region, rest))
    # A primary goes after every planned secondary of its cluster: when they are in a later group, it moves there.
    last_group = {}
    for index, (_name, hosts) in enumerate(groups):
        for host in hosts:
            if host.cluster is not None and host.role != "primary":
                last_group[host.cluster] = index
    moved = []
    for index, (_name, hosts) in enumerate(groups):
        keep = []
        for host in hosts:
            target = last_group.get(host.cluster) if host.role == "primary" else None
            if target is not None and target > index:
                host.note = f"moved from {groups[index][0]} to follow the secondaries of {host.cluster} in {groups[target][0]}; {host.note}"
                moved.append((target, host))
            else:
                keep.append(host)
        hosts[:] = keep
    for target, host in moved:
        groups[target][1].append(host)

    waves = []
    open_secondaries = dict(planned_secondaries)
    for name, hosts in groups:
        if not hosts:
            continue
        hosts.sort(key=lambda host: (host.role == "primary", host.name))
        size = len(hosts) if name == "canary" else _batch_size(policy["batch"], len(hosts))
        cut = _pack(hosts, size, budget, open_secondaries)
        for number, wave in enumerate(cut, 1):
            label = name if len(cut) == 1 else f"{name} {number}/{len(cut)}"
            wave.sort(key=lambda host: host.name)
            waves.append({"index": len(waves) + 1, "name": label, "group": name, "hosts": [_entry(host, label, budget, members) for host in wave]})
    return waves, [region for region in order if region != NO_REGION and region in by_region], len(canary)


def _entry(host, label, budget, members):
    note = host.note
    if host.cluster is not None:
        role = "primary" if host.role == "primary" else "secondary" if host.role == "secondary" else "member"
        note += f"; {role} of {host.cluster}: at most {budget[host.cluster]} of its {members[host.cluster]} members down per wave"
        if host.role == "primary":
            note += ", after its secondaries"
    return {
        "host": host.name, "region": host.region, "cluster": host.cluster, "cluster_role": host.role, "customer": host.customer,
        "version": host.version, "window": host.window, "window_end": host.window_end, "next_window": host.after_window,
        "judge_only": host.judge_only, "reason": f"{label}: {note}",
    }
