# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probes run on a host, the metrics they give, and the verdict of thresholds on them.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A probe is sampled N times per round: ``http`` (GET a URL from the host itself: the status, optionally a body
pattern), ``tcp`` (connect), ``command`` (run argv, expect an exit code). Each probe's samples give its
metrics: the sample count, errors, the error rate in percent and the p50/p95/p99 latency in milliseconds
(nearest-rank percentiles over every sample that came back, failed ones included, so a timeout shows as slow).

Thresholds (all optional; only the error rate has a default, 0 %):

``max_error_rate``
    percent of failed samples a probe may have.
``max_p50_ms`` / ``max_p95_ms`` / ``max_p99_ms``
    absolute latency limits (http and tcp probes).
``baseline_p95_factor``
    p95 <= factor x the p95 the same probe measured on the same host before the patch (``baseline``).
``peers_p95_factor``, ``peers_error_rate_slack``
    canary analysis: p95 <= factor x the median p95 of still-unpatched hosts of the region (``peers``), and
    error rate <= their median error rate + slack percentage points.
``latency_floor_ms``
    the smallest reference latency a factor multiplies (default 1 ms): a baseline of 0 ms (or 0.02 ms) would
    make any real measurement a breach, so ``limit = factor x max(reference, floor)``.

A metric that could not be measured (no sample came back) breaks every absolute threshold on it: an empty
sample set never passes. A relative check whose reference is missing or empty (no baseline for this probe,
no peer that measured it) is not a failure but is listed in ``not_evaluated`` with the reason, so the caller
sees what was not compared.

A probe marked ``vulnerability`` proves the fixed vulnerability is gone (for fpdemo, a checker that sends the
over-long-length request and looks for foreign bytes): it runs once, at the start, and any failed sample makes
the host ``vulnerable``: unhealthy at once, whatever the rounds say.

Rounds and the verdict (:class:`Rounds`). Every round is judged on its own. A round that breaks a threshold is a
*breach*; the verdict fails only when a breach persists, as Argo Rollouts' ``failureLimit`` and Flagger's
``threshold`` make an analysis fail only after repeated failed measurements:

* ``consecutive_failures`` (N, default 3) breaching rounds in a row fail the host, and the soak stops there.
  With N = 1 the first breaching round fails it (no tolerance for a noisy moment).
* A breach still open when the soak's time is up is followed up: rounds go on, on the same schedule, until it
  either reaches N rounds in a row (fails) or a round passes (it was transient). So a check of one round
  (``soak`` 0) that breaches is confirmed by up to N - 1 more rounds before it fails.
* The whole soak: at the end, a soak in which at least half of the rounds, and at least N of them, breached
  fails too, although no N of them were consecutive: a release that keeps flapping is broken, not noisy.

Why not judge the pooled samples of the whole soak against the thresholds, as well? Pooling cannot fail a soak
whose every round passed (a pooled error rate is a weighted mean of the rounds' rates, and a pooled nearest-rank
percentile is at most the worst round's), so it adds a verdict only when some round breached, and then it is
exactly the single noisy round that flips it: one failed sample in 60 breaks ``max_error_rate: 0``. The rules
on the rounds above replace it. The pooled metrics are still what the result reports.
"""

from __future__ import annotations

import math
import re
import socket
import time

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = [
    "DEFAULT_CONSECUTIVE_FAILURES",
    "DEFAULT_SAMPLES",
    "LATENCY_METRICS",
    "Rounds",
    "check_health",
    "check_health_params",
    "evaluate",
    "median",
    "percentile",
    "run_probe",
    "summarize",
]

DEFAULT_SAMPLES = {"http": 10, "tcp": 10, "command": 1}
DEFAULT_CONSECUTIVE_FAILURES = 3
LATENCY_METRICS = ("p50_ms", "p95_ms", "p99_ms")
LATENCY_PROBES = ("http", "tcp")
DEFAULT_FLOOR_MS = 1.0
MAX_DETAILS = 3


def percentile(values, q):
    """The ``q``-th percentile (0 < q <= 100) of ``values`` by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values):
    """The median of ``values`` (mean of the middle two for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def _ms(value):
    return None if value is None else round(value, 3)


def summarize(samples, probe_type="http"):
    """The metrics of one probe's ``samples``: a list of ``(ok, elapsed_ms, detail)``."""
    count = len(samples)
    errors = sum(1 for ok, _elapsed, _detail in samples if not ok)
    latencies = [elapsed for _ok, elapsed, _detail in samples if elapsed is not None]
    details = []
    for ok, _elapsed, detail in samples:
        if not ok and detail and detail not in details and len(details) < MAX_DETAILS:
            details.append(detail)
    return {
        "type": probe_type,
        "samples": count,
        "errors": errors,
        "error_rate": round(100.0 * errors / count, 3) if count else None,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
        "errors_seen": details,
    }


def _failure(probe, metric, measured, limit, threshold, why=None):
    return {"probe": probe, "metric": metric, "measured": measured, "limit": limit, "threshold": threshold,
            "why": why or (f"no sample measured {metric}" if measured is None else f"{metric} {measured} > {limit}")}


def _absolute(name, metrics, thresholds):
    failures = []
    limit = thresholds.get("max_error_rate")
    limit = 0.0 if limit is None else float(limit)
    if metrics["error_rate"] is None or metrics["error_rate"] > limit:
        failures.append(_failure(name, "error_rate", metrics["error_rate"], limit, "max_error_rate"))
    if metrics.get("type") not in LATENCY_PROBES:
        return failures
    for metric in LATENCY_METRICS:
        key = "max_" + metric
        if thresholds.get(key) is None:
            continue
        limit = float(thresholds[key])
        if metrics[metric] is None or metrics[metric] > limit:
            failures.append(_failure(name, metric, metrics[metric], limit, key))
    return failures


def _relative(name, metrics, factor, reference, floor, threshold, source):
    """The p95 of ``metrics`` against ``factor`` x ``reference`` (its p95): ``(failure or None, skipped or None)``."""
    if reference is None:
        return None, {"probe": name, "threshold": threshold, "why": f"no {source} p95 for this probe"}
    limit = round(float(factor) * max(float(reference), floor), 3)
    measured = metrics["p95_ms"]
    if measured is None or measured > limit:
        why = None if measured is None else f"p95_ms {measured} > {limit} ({factor} x {source} {reference})"
        return _failure(name, "p95_ms", measured, limit, threshold, why), None
    return None, None


def evaluate(metrics, thresholds=None, baseline=None, peers=None):
    """Judge ``metrics`` (probe name to :func:`summarize` output): ``(failures, not_evaluated)``.

    ``baseline`` is the metrics dict the same host measured before the patch; ``peers`` a list of such dicts
    from still-unpatched hosts. Failures are ordered by probe name, then threshold.
    """
    thresholds = thresholds or {}
    floor = thresholds.get("latency_floor_ms")
    floor = DEFAULT_FLOOR_MS if floor is None else float(floor)
    failures, skipped = [], []
    for name in sorted(metrics):
        probe = metrics[name]
        failures.extend(_absolute(name, probe, thresholds))
        if probe.get("type") not in LATENCY_PROBES:
            continue
        factor = thresholds.get("baseline_p95_factor")
        if factor is not None and baseline is not None:
            reference = (baseline.get(name) or {}).get("p95_ms")
            failure, skip = _relative(name, probe, factor, reference, floor, "baseline_p95_factor", "baseline")
            failures.extend([failure] if failure else [])
            skipped.extend([skip] if skip else [])
        if peers is not None:
            failures_peers, skipped_peers = _against_peers(name, probe, thresholds, floor, peers)
            failures.extend(failures_peers)
            skipped.extend(skipped_peers)
    return failures, skipped


def _against_peers(name, probe, thresholds, floor, peers):
    failures, skipped = [], []
    measured = [peer[name] for peer in peers if isinstance(peer, dict) and isinstance(peer.get(name), dict)]
    factor = thresholds.get("peers_p95_factor")
    if factor is not None:
        reference = median([m["p95_ms"] for m in measured if m.get("p95_ms") is not None])
        failure, skip = _relative(name, probe, factor, reference, floor, "peers_p95_factor", "peers' median")
        failures.extend([failure] if failure else [])
        skipped.extend([skip] if skip else [])
    slack = thresholds.get("peers_error_rate_slack")
    if slack is not None:
        reference = median([m["error_rate"] for m in measured if m.get("error_rate") is not None])
        if reference is None:
            skipped.append({"probe": name, "threshold": "peers_error_rate_slack", "why": "no peers' error rate for this probe"})
        else:
            limit = round(reference + float(slack), 3)
            if probe["error_rate"] is None or probe["error_rate"] > limit:
                failures.append(_failure(name, "error_rate", probe["error_rate"], limit, "peers_error_rate_slack"))
    return failures, skipped


def _elapsed_ms(start):
    return (time.monotonic() - start) * 1000.0


def run_probe(host, probe):
    """One sample of ``probe`` on ``host``: ``(ok, elapsed_ms, detail)``; ``elapsed_ms`` None when nothing came back."""
    timeout = float(probe.get("timeout") or 5)
    kind = probe["type"]
    start = time.monotonic()
    if kind == "http":
        try:
            status, body = host.request(probe["url"], timeout)
        except PatchError as exc:
            return False, None, str(exc)
        elapsed = _elapsed_ms(start)
        expected = probe.get("expect_status") or 200
        if status != expected:
            return False, elapsed, f"HTTP {status}, expected {expected}"
        pattern = probe.get("expect_body")
        if pattern and not re.search(pattern, body):
            return False, elapsed, f"body does not match {pattern!r}"
        return True, elapsed, None
    if kind == "tcp":
        address = (probe.get("host") or "127.0.0.1", int(probe["port"]))
        try:
            socket.create_connection(address, timeout=timeout).close()
        except OSError as exc:
            return False, None, f"connect {address[0]}:{address[1]}: {exc}"
        return True, _elapsed_ms(start), None
    if kind == "command":
        return _run_command(host, probe, timeout, start)
    raise PatchError(f"probes: type {kind!r} is not one of http, tcp, command", probe=probe.get("name"))


def _run_command(host, probe, timeout, start):
    argv = list(probe["command"])
    limiter = host.which("timeout")
    if limiter:  # coreutils timeout: a hung checker must not hang the health check
        argv = [limiter, "-k", "2", f"{timeout:g}", *argv]
    rc, out, err = host.run(argv)
    elapsed = _elapsed_ms(start)
    expected = probe.get("expect_rc")
    expected = 0 if expected is None else int(expected)
    if limiter and rc in (124, 137) and expected not in (124, 137):
        return False, elapsed, f"{probe['command'][0]} timed out after {timeout:g} s"
    if rc != expected:
        said = (err or out or "").strip().splitlines()
        return False, elapsed, f"exit {rc}, expected {expected}" + (f": {said[-1][:200]}" if said else "")
    return True, elapsed, None


def _names(probes):
    names, seen = [], set()
    for index, probe in enumerate(probes):
        name = probe.get("name") or f"{probe['type']}{index}"
        if name in seen:
            raise PatchError(f"probes[{index}].name: {name!r} is used by two probes; names must be unique", probe=name)
        seen.add(name)
        names.append(name)
    return names


def _round(host, probes, names, samples):
    taken = {}
    for name, probe in zip(names, probes):
        count = probe.get("samples") or samples or DEFAULT_SAMPLES[probe["type"]]
        taken[name] = [run_probe(host, probe) for _index in range(int(count))]
    return taken


class Rounds:
    """The rounds of one check and the verdict the persistence rules give them (see the module's docstring).

    :meth:`add` takes each round's failures (an empty list for a round that passed) and numbers them;
    :meth:`more` says whether to take another round; :meth:`verdict` says what failed the check, if anything.
    """

    def __init__(self, limit):
        self.limit = limit
        self.count = 0
        self.breaches = []  # (round, failures) of every round that breached
        self.streak = []  # the same for the breaching rounds in a row up to the last round

    def add(self, failures):
        """Record the next round, with its ``failures`` (each gets its ``round`` number)."""
        self.count += 1
        for failure in failures:
            failure["round"] = self.count
        if failures:
            self.breaches.append((self.count, failures))
            self.streak.append((self.count, failures))
        else:
            self.streak = []

    @property
    def persistent(self):
        """Whether the last ``limit`` rounds all breached."""
        return len(self.streak) >= self.limit

    def more(self, time_up):
        """Whether to take another round: none once a breach persisted; past the soak only while a breach is open."""
        if self.persistent:
            return False
        return not time_up or bool(self.streak)

    def verdict(self):
        """``(failures, transient, rule)``.

        ``failures`` are those of the rounds that fail the check (none when it passes), ``transient`` those of
        the other breaching rounds, and ``rule`` names what failed it: ``consecutive`` (``limit`` rounds in a
        row), ``prevalent`` (at least half of the rounds, and at least ``limit``) or None.
        """
        if self.persistent:
            deciding, rule = self.streak, "consecutive"
        elif len(self.breaches) >= self.limit and 2 * len(self.breaches) >= self.count:
            deciding, rule = self.breaches, "prevalent"
        else:
            deciding, rule = [], None
        numbers = {number for number, _failures in deciding}
        failures = [failure for _number, found in deciding for failure in found]
        transient = [failure for number, found in self.breaches if number not in numbers for failure in found]
        return failures, transient, rule

    def where(self, rule):
        """The rounds that ``rule`` failed, as the verdict's message says them."""
        if rule == "consecutive":
            first, last = self.streak[0][0], self.streak[-1][0]
            return f"round {first}" if first == last else f"rounds {first}-{last} in a row"
        if rule == "prevalent":
            return f"{len(self.breaches)} of {self.count} rounds breached, the first in round {self.breaches[0][0]}"
        return None


def _consecutive_failures(params):
    """The ``consecutive_failures`` of ``params`` (the default when unset); PatchError when it is not 1 or more."""
    value = params.get("consecutive_failures")
    if value is None:
        return DEFAULT_CONSECUTIVE_FAILURES
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PatchError(f"consecutive_failures: expected a number of rounds, 1 or more, got {value!r}", consecutive_failures=value)
    return value


def _settings(params):
    """``(probes, names, consecutive_failures)`` of ``params``; PatchError naming what is wrong."""
    probes = params.get("probes") or []
    if not probes:
        raise PatchError("probes: at least one probe is needed to judge a host's health")
    return probes, _names(probes), _consecutive_failures(params)


def check_health_params(params):
    """Refuse ``params`` that :func:`check_health` would refuse, before anything else happens (an apply that judges
    in the same call checks them before it changes the host); PatchError naming the field and value."""
    _settings(params)


def check_health(params, host, check_mode=False):
    """Probe ``host`` per ``params`` over the soak and judge it; the module's result.

    Raises :class:`PatchError` carrying the whole result when the host is unhealthy (or still vulnerable) and
    ``fail_on_unhealthy`` is set.
    """
    probes, names, limit = _settings(params)
    thresholds = params.get("thresholds") or {}
    soak = float(params.get("soak") or 0)
    interval = max(float(params.get("interval") or 1), 0.0)
    started = time.monotonic()

    checks = [(n, p) for n, p in zip(names, probes) if p.get("vulnerability") and params.get("check_vulnerability", True)]
    vulnerable = None
    found_vulnerable = []
    if checks:
        found = _round(host, [p for _n, p in checks], [n for n, _p in checks], 1)
        vulnerable = False
        for name, taken in found.items():
            bad = [detail for ok, _elapsed, detail in taken if not ok]
            if bad:
                vulnerable = True
                found_vulnerable.append(_failure(name, "vulnerable", True, False, "vulnerability", f"the fixed vulnerability is still there: {bad[0]}"))

    health = [(n, p) for n, p in zip(names, probes) if not p.get("vulnerability")]
    cumulative = {name: [] for name, _probe in health}
    kinds = {name: probe["type"] for name, probe in health}
    rounds, skipped = Rounds(limit), []
    soak_started = time.monotonic()
    while health:
        taken = _round(host, [p for _n, p in health], [n for n, _p in health], params.get("samples"))
        for name, samples in taken.items():
            cumulative[name].extend(samples)
        current = {name: summarize(samples, kinds[name]) for name, samples in taken.items()}
        round_failures, skipped = evaluate(current, thresholds, params.get("baseline"), params.get("peers"))
        rounds.add(round_failures)
        # rounds start on a fixed schedule (0, interval, 2 x interval, ...) up to the end of the soak, and go on
        # past it only while a breach is open; a vulnerable host is not soaked further
        due = soak_started + rounds.count * interval if interval > 0 else time.monotonic()
        time_up = due - soak_started > soak or (interval <= 0 and due - soak_started >= soak)
        if vulnerable or not rounds.more(time_up):
            break
        time.sleep(max(0.0, due - time.monotonic()))

    metrics = {name: summarize(samples, kinds[name]) for name, samples in cumulative.items()}
    judged, transient, rule = rounds.verdict()
    failures = found_vulnerable + judged
    healthy = not failures
    result = {
        "changed": False,
        "healthy": healthy,
        "vulnerable": vulnerable,
        "metrics": metrics,
        "failures": failures,
        "transient_failures": transient,
        "breached_rounds": [number for number, _found in rounds.breaches],
        "not_evaluated": skipped,
        "rounds": rounds.count,
        "consecutive_failures": limit,
        "soaked_seconds": round(time.monotonic() - started, 3),
        "thresholds": thresholds,
    }
    if healthy:
        tolerated = len(rounds.breaches)
        result["msg"] = f"healthy: {len(metrics)} probes, {rounds.count} rounds" + (
            f", {tolerated} of them breached but never {limit} in a row" if tolerated else "")
        return result
    first = failures[0]
    where = f" ({rounds.where(rule)})" if "round" in first else ""
    result["msg"] = f"unhealthy: probe {first['probe']}: {first['why']} [{first['threshold']}]{where}"
    if params.get("fail_on_unhealthy", True):
        raise PatchError(result.pop("msg"), **result)
    return result
