# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How many members of a cluster may be down at once, and rollback rounds that respect it.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The one rule: a cluster of ``n`` members keeps a strict majority up, so at most ``(n - 1) // 2`` members may be
down at once (1 of 3, 2 of 5, 0 of 2 or 1), unless the operator gives ``max_unavailable`` for it. The wave
planner and the fleet-wide rollback both ask this module.
"""

from __future__ import annotations

__all__ = ["AvailabilityError", "max_unavailable", "rollback_rounds"]


class AvailabilityError(ValueError):
    """A host or limit that cannot be used; the message names the field and the value."""


def max_unavailable(members, limit=None):
    """Members of a cluster of ``members`` hosts that may be down at once: ``limit`` if given, else a strict majority stays up."""
    if limit is None:
        return (members - 1) // 2
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise AvailabilityError(f"max_unavailable: {limit!r} is not a count of hosts (an integer, 0 or more)")
    return limit


def _role_rank(host):
    return 1 if host.get("cluster_role") == "primary" else 0


def rollback_rounds(hosts, limits=None):
    """Put ``hosts`` (dicts with ``host`` and optionally ``cluster``, ``cluster_role``) in rounds.

    A round holds at most the cluster's budget of each cluster's hosts, secondaries before the primary; hosts
    outside clusters go in the first round. ``cluster_size`` (when given on a host) is the cluster's real size,
    so that members outside ``hosts`` count. Returns a list of rounds, each a sorted list of host names. A
    cluster whose budget is 0 still goes one host per round: a rollback puts back a release the cluster ran
    before, and leaving a bad release on it is worse than one member down.
    """
    limits = limits or {}
    clusters = {}
    rounds = [[]]
    for index, host in enumerate(hosts):
        if not isinstance(host, dict) or not host.get("host"):
            raise AvailabilityError(f"hosts[{index}]: {host!r} is not a host (a mapping with a host name under 'host')")
        if host.get("cluster"):
            clusters.setdefault(host["cluster"], []).append(host)
        else:
            rounds[0].append(host["host"])
    for cluster, members in sorted(clusters.items()):
        size = max([len(members)] + [int(m.get("cluster_size") or 0) for m in members])
        budget = max(1, max_unavailable(size, limits.get(cluster)))
        ordered = sorted(members, key=lambda m: (_role_rank(m), m["host"]))
        for position, member in enumerate(ordered):
            index = position // budget
            while len(rounds) <= index:
                rounds.append([])
            rounds[index].append(member["host"])
    return [sorted(names) for names in rounds if names]
