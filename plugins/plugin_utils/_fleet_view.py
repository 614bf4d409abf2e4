# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the roles gather from every host's variables: one mapping or list of rows, built in Python, not in Jinja.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Each function takes ``hostvars`` (a mapping of host names to their variables, such as Ansible's ``hostvars``;
only the variables named here are read, so a host's other variables are never templated) and ``hosts`` (the
names to report on, in the play's order). The filters ``rollout_hosts``, ``canary_peers``, ``rollback_members``,
``rollback_rows`` and ``detect_rows`` wrap them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._detect_report import detected_of

__all__ = ["ViewError", "canary_peers", "detect_rows", "rollback_members", "rollback_rows", "rollout_hosts"]

# The outcomes of a fleet-wide rollback, in the order its summary counts them.
ROLLBACK_OUTCOMES = ("rolled back", "already back", "not carrying", "failed", "unknown", "left out")


class ViewError(ValueError):
    """Input a view cannot be made of; the message names the argument and the value."""


def _host_names(hosts, name="hosts"):
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise ViewError(f"{name}: expected a list of host names, got {type(hosts).__name__} {hosts!r}")
    for index, host in enumerate(hosts):
        if not isinstance(host, str) or not host:
            raise ViewError(f"{name}[{index}]: expected a host name, got {host!r}")
    return list(hosts)


def _vars_of(hostvars, host):
    """The variables of ``host``, or an empty mapping when ``hostvars`` does not know it."""
    if not isinstance(hostvars, Mapping):
        raise ViewError(f"hostvars: expected a mapping of host names to their variables, got {type(hostvars).__name__}")
    if host not in hostvars:
        return {}
    found = hostvars[host]
    return found if isinstance(found, Mapping) else {}


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def rollout_hosts(hostvars, hosts, detected="__rollout_detected", rollback="__rollout_wave_rollback", may_start="__rollout_may_start"):
    """What the rollout knows of each host, the input of the rollout's gates and summary.

    Per host: ``region``, ``cluster``, ``version`` (detected before the rollout: ``<detected>.version``),
    ``guarded_apply_result`` and ``applied`` (the guarded_apply role's outcome and its apply's result),
    ``rollback`` (the result of rolling its halted wave back) and ``window_closed`` (its window closed before its
    wave: ``<may_start>`` is false).
    """
    known = {}
    for host in _host_names(hosts):
        facts = _vars_of(hostvars, host)
        may = facts.get(may_start, True)
        known[host] = {
            "region": facts.get("region"), "cluster": facts.get("cluster"),
            "version": _mapping(facts.get(detected)).get("version"),
            "guarded_apply_result": facts.get("guarded_apply_result"),
            "applied": facts.get("guarded_apply_apply"),
            "rollback": facts.get(rollback),
            "window_closed": not _truthy(may),
        }
    return known


def _truthy(value):
    """Ansible's ``bool`` filter's reading of a flag (a string like "false" is false)."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
    return bool(value)


def canary_peers(hostvars, hosts, plan, wave, baseline="__rollout_baseline"):
    """The baselines of the hosts not yet started, per region: the canary analysis' peers for ``wave``.

    A host has started when it is in ``wave`` or an earlier wave of ``plan``. Its baseline is
    ``<baseline>.metrics`` (a host without one is left out); its region is its ``region`` variable, ``-`` when it
    has none. Returns a mapping of regions to lists of metrics, in the order of ``hosts``.
    """
    if not isinstance(plan, Mapping) or not isinstance(plan.get("waves"), Sequence):
        raise ViewError(f"plan: expected a wave plan (a mapping with waves), got {type(plan).__name__}")
    if not isinstance(wave, Mapping) or not isinstance(wave.get("index"), int):
        raise ViewError(f"wave: expected a wave of the plan (a mapping with an index), got {wave!r}")
    started = set()
    for earlier in plan["waves"]:
        if earlier["index"] <= wave["index"]:
            started.update(entry["host"] for entry in earlier["hosts"])
    peers = {}
    for host in _host_names(hosts):
        if host in started:
            continue
        facts = _vars_of(hostvars, host)
        metrics = _mapping(facts.get(baseline)).get("metrics")
        if metrics is None:
            continue
        peers.setdefault(facts.get("region") or "-", []).append(metrics)
    return peers


def rollback_members(hostvars, hosts):
    """The hosts of a fleet-wide rollback as the rollback_rounds filter takes them.

    Each entry has ``host``, ``cluster`` and ``cluster_role`` (its variables) and ``cluster_size``: the number
    of hosts in ``hostvars`` (the whole inventory) whose ``cluster`` is the same, so a cluster's members outside
    the run still count against its budget.
    """
    names = _host_names(hosts)
    if not isinstance(hostvars, Mapping):
        raise ViewError(f"hostvars: expected a mapping of host names to their variables, got {type(hostvars).__name__}")
    wanted = {_vars_of(hostvars, host).get("cluster") for host in names} - {None, ""}
    sizes = {}
    if wanted:
        for host in hostvars:
            cluster = _vars_of(hostvars, host).get("cluster")
            if cluster in wanted:
                sizes[cluster] = sizes.get(cluster, 0) + 1
    members = []
    for host in names:
        facts = _vars_of(hostvars, host)
        cluster = facts.get("cluster") or None
        members.append({"host": host, "cluster": cluster, "cluster_role": facts.get("cluster_role"),
                        "cluster_size": sizes.get(cluster, 0) if cluster else 0})
    return members


def _rollback_outcome(done):
    if not done or done.get("unreachable"):
        return "unknown"
    if done.get("failed"):
        return "failed"
    if done.get("skipped"):
        return "unknown"
    if not done.get("carries"):
        return "not carrying"
    return "rolled back" if done.get("changed") else "already back"


def rollback_rows(hostvars, hosts, result="__rollback_rolled", round_var="__rollback_rolled_round", excluded=()):
    """One row per host (sorted by name) of a fleet-wide rollback: what its round did.

    ``<result>`` is the host's rollback result (absent: the host was never reached, "unknown"), ``<round_var>``
    the round it went back in; a host in ``excluded`` was left out by name ("left out"). Each row has ``host``,
    ``region``, ``cluster``, ``round``, ``outcome`` (one of :data:`ROLLBACK_OUTCOMES`), ``from`` and ``to`` (the
    versions) and ``msg`` (why, for a failed, unknown or left-out host).
    """
    left_out = set(_host_names(excluded or [], "excluded"))
    rows = []
    for host in sorted(_host_names(hosts)):
        facts = _vars_of(hostvars, host)
        done = _mapping(facts.get(result))
        outcome = "left out" if host in left_out else _rollback_outcome(done)
        msg = "left out by name" if outcome == "left out" else ""
        if outcome in ("failed", "unknown"):
            msg = done.get("msg") or ("not reached: the run never rolled it back" if not done else "")
        rows.append({"host": host, "region": facts.get("region") or "-", "cluster": facts.get("cluster") or "-",
                     "round": facts.get(round_var) or "-", "outcome": outcome,
                     "from": done.get("previous") or "-", "to": done.get("version") or "-", "msg": msg})
    return rows


def detect_rows(hostvars, hosts, result="__detect_result"):
    """One row per host (sorted by name) of a detection: the version it runs and whether it is affected.

    ``<result>`` is the host's detect result; a host without one (unreachable, or failed) is reported with version
    and verdicts ``unknown`` and the reason in ``msg``. Each row has ``host``, ``region``, ``cluster``,
    ``version``, ``affected``, ``fixed``, ``applied`` (the patches its state file lists), ``msg`` and ``detected``,
    the detection result as the planner reads it (what a detection report keeps, to plan from later).
    """
    rows = []
    for host in sorted(_host_names(hosts)):
        facts = _vars_of(hostvars, host)
        found = _mapping(facts.get(result))
        answered = bool(found) and not (found.get("failed") or found.get("unreachable") or found.get("skipped"))
        applied = found.get("applied") if answered else None
        rows.append({
            "host": host, "region": facts.get("region") or "-", "cluster": facts.get("cluster") or "-",
            "version": (found.get("version") or "unknown") if answered else "unknown",
            "affected": found.get("affected", "unknown") if answered else "unknown",
            "fixed": found.get("fixed", "unknown") if answered else "unknown",
            "applied": [entry.get("patch") for entry in applied or () if isinstance(entry, Mapping) and entry.get("patch")],
            "msg": "" if answered else (found.get("msg") or "not reached"),
            "detected": detected_of(found),
        })
    return rows
