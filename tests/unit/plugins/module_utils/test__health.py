"""Health metrics and verdicts: the threshold and baseline arithmetic, then real probes against a local fpdemo."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from fleetpatch_dev.loopback import http_server
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._health import (
    DEFAULT_CONSECUTIVE_FAILURES, Rounds, check_health, evaluate, median, percentile, run_probe, summarize,
)


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 95, None),
    ([7.0], 50, 7.0),
    ([7.0], 99, 7.0),
    ([1, 2, 3, 4], 50, 2),
    ([4, 3, 2, 1], 50, 2),  # order does not matter
    (list(range(1, 101)), 95, 95),
    (list(range(1, 101)), 99, 99),
    (list(range(1, 101)), 100, 100),
    (list(range(1, 21)), 95, 19),  # nearest rank: ceil(0.95 x 20) = 19
    ([1, 1000], 95, 1000),  # with two samples one outlier is the p95
])
def test_percentile_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


@pytest.mark.parametrize(("values", "expected"), [([], None), ([3], 3), ([3, 1], 2.0), ([5, 1, 3], 3)])
def test_median(values, expected):
    assert median(values) == expected


def test_summary_counts_failed_samples_and_their_latency():
    samples = [(True, 1.0, None), (False, 2.0, "HTTP 500, expected 200"), (False, None, "refused"), (True, 4.0, None)]
    assert summarize(samples) == {
        "type": "http", "samples": 4, "errors": 2, "error_rate": 50.0,
        "p50_ms": 2.0, "p95_ms": 4.0, "p99_ms": 4.0, "max_ms": 4.0,
        "errors_seen": ["HTTP 500, expected 200", "refused"],
    }


def test_an_empty_sample_set_measures_nothing():
    assert summarize([]) == {
        "type": "http", "samples": 0, "errors": 0, "error_rate": None,
        "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "errors_seen": [],
    }


def metrics(p95, error_rate=0.0, kind="http", samples=10):
    return {"type": kind, "samples": samples, "errors": 0, "error_rate": error_rate,
            "p50_ms": p95, "p95_ms": p95, "p99_ms": p95, "max_ms": p95, "errors_seen": []}


EMPTY = summarize([])
PEERS = [{"h": metrics(5.0)}, {"h": metrics(10.0)}, {"h": metrics(400.0)}]  # median p95 10 ms


@pytest.mark.parametrize(("measured", "thresholds", "baseline", "peers", "failures"), [
    # absolute: the default error rate is 0 %, and a limit is "at most", so equal passes
    (metrics(5.0), {}, None, None, []),
    (metrics(5.0, error_rate=10.0), {}, None, None, [("error_rate", 10.0, 0.0, "max_error_rate")]),
    (metrics(5.0, error_rate=10.0), {"max_error_rate": 10}, None, None, []),
    (metrics(5.0, error_rate=10.001), {"max_error_rate": 10}, None, None, [("error_rate", 10.001, 10.0, "max_error_rate")]),
    (metrics(250.0), {"max_p95_ms": 250}, None, None, []),
    (metrics(250.5), {"max_p95_ms": 250}, None, None, [("p95_ms", 250.5, 250.0, "max_p95_ms")]),
    (metrics(300.0), {"max_p50_ms": 100, "max_p99_ms": 500}, None, None, [("p50_ms", 300.0, 100.0, "max_p50_ms")]),
    # an empty sample set breaks every absolute threshold on it: it never passes
    (EMPTY, {}, None, None, [("error_rate", None, 0.0, "max_error_rate")]),
    (EMPTY, {"max_p95_ms": 250}, None, None, [("error_rate", None, 0.0, "max_error_rate"), ("p95_ms", None, 250.0, "max_p95_ms")]),
    # relative to the same host's baseline: limit = factor x max(baseline p95, floor)
    (metrics(30.0), {"baseline_p95_factor": 3}, {"h": metrics(10.0)}, None, []),
    (metrics(30.001), {"baseline_p95_factor": 3}, {"h": metrics(10.0)}, None, [("p95_ms", 30.001, 30.0, "baseline_p95_factor")]),
    # a zero baseline: the floor (1 ms by default, or as set) is what the factor multiplies
    (metrics(3.0), {"baseline_p95_factor": 3}, {"h": metrics(0.0)}, None, []),
    (metrics(3.5), {"baseline_p95_factor": 3}, {"h": metrics(0.0)}, None, [("p95_ms", 3.5, 3.0, "baseline_p95_factor")]),
    (metrics(9.0), {"baseline_p95_factor": 3, "latency_floor_ms": 5}, {"h": metrics(0.0)}, None, []),
    # an empty measurement against a good baseline fails
    (EMPTY, {"baseline_p95_factor": 3, "max_error_rate": 100}, {"h": metrics(10.0)}, None,
     [("error_rate", None, 100.0, "max_error_rate"), ("p95_ms", None, 30.0, "baseline_p95_factor")]),
    # canary analysis: against the median of the unpatched peers
    (metrics(20.0), {"peers_p95_factor": 2}, None, PEERS, []),
    (metrics(21.0), {"peers_p95_factor": 2}, None, PEERS, [("p95_ms", 21.0, 20.0, "peers_p95_factor")]),
    (metrics(5.0, error_rate=6.0), {"max_error_rate": 50, "peers_error_rate_slack": 5}, None, [{"h": metrics(5.0, error_rate=1.0)}], []),
    (metrics(5.0, error_rate=6.5), {"max_error_rate": 50, "peers_error_rate_slack": 5}, None, [{"h": metrics(5.0, error_rate=1.0)}],
     [("error_rate", 6.5, 6.0, "peers_error_rate_slack")]),
    # command probes have no latency limits
    (metrics(900.0, kind="command"), {"max_p95_ms": 250, "baseline_p95_factor": 2}, {"h": metrics(1.0)}, None, []),
])
def test_evaluate(measured, thresholds, baseline, peers, failures):
    found, _skipped = evaluate({"h": measured}, thresholds, baseline, peers)
    assert [(f["metric"], f["measured"], f["limit"], f["threshold"]) for f in found] == failures
    assert all(f["probe"] == "h" for f in found)


@pytest.mark.parametrize(("thresholds", "baseline", "peers", "skipped"), [
    ({"baseline_p95_factor": 3}, {}, None, [("baseline_p95_factor", "no baseline p95 for this probe")]),
    ({"baseline_p95_factor": 3}, {"h": EMPTY}, None, [("baseline_p95_factor", "no baseline p95 for this probe")]),
    ({"peers_p95_factor": 2}, None, [], [("peers_p95_factor", "no peers' median p95 for this probe")]),
    ({"peers_p95_factor": 2, "peers_error_rate_slack": 1}, None, [{"other": metrics(1.0)}],
     [("peers_p95_factor", "no peers' median p95 for this probe"), ("peers_error_rate_slack", "no peers' error rate for this probe")]),
    ({"baseline_p95_factor": 3}, None, None, []),  # no baseline given at all: nothing to compare, nothing to report
])
def test_a_missing_reference_is_reported_not_passed_silently(thresholds, baseline, peers, skipped):
    failures, found = evaluate({"h": metrics(5.0)}, thresholds, baseline, peers)
    assert failures == []
    assert [(s["threshold"], s["why"]) for s in found] == skipped


def test_failure_names_probe_metric_value_and_limit():
    failures, _skipped = evaluate({"health": metrics(312.4)}, {"max_p95_ms": 250})
    assert failures == [{"probe": "health", "metric": "p95_ms", "measured": 312.4, "limit": 250.0,
                         "threshold": "max_p95_ms", "why": "p95_ms 312.4 > 250.0"}]


# -- rounds: a breach must persist before it fails the verdict -----------------------------------------------


def breach():
    return [{"probe": "h", "metric": "p95_ms", "measured": 300.0, "limit": 250.0, "threshold": "max_p95_ms", "why": "p95_ms 300.0 > 250.0"}]


def take_rounds(pattern, soak_rounds, limit):
    """Feed :class:`Rounds` the rounds of ``pattern`` (``B`` breached, ``.`` passed) the way check_health does,
    the soak's time being up after ``soak_rounds`` rounds; the pattern must say every round that is taken."""
    rounds = Rounds(limit)
    for number, mark in enumerate(pattern, 1):
        rounds.add(breach() if mark == "B" else [])
        if not rounds.more(time_up=number >= soak_rounds):
            break
    else:
        raise AssertionError(f"{pattern!r} ran out while Rounds still wanted another round")
    failures, transient, rule = rounds.verdict()
    return rounds.count, rule, sorted({f["round"] for f in failures}), sorted({f["round"] for f in transient}), rounds.where(rule)


# (pattern, rounds the soak's time allows, consecutive_failures) -> (rounds taken, rule, rounds that failed the
# verdict, breaching rounds tolerated, how the message says the rounds)
@pytest.mark.parametrize(("pattern", "soak_rounds", "limit", "expected"), [
    # the default: 3 in a row
    (".....", 5, 3, (5, None, [], [], None)),
    ("B....", 5, 3, (5, None, [], [1], None)),  # one noisy round: tolerated
    ("..B..", 5, 3, (5, None, [], [3], None)),
    ("BB...", 5, 3, (5, None, [], [1, 2], None)),
    ("BBB", 5, 3, (3, "consecutive", [1, 2, 3], [], "rounds 1-3 in a row")),  # persistent: the soak stops there
    (".BBB", 5, 3, (4, "consecutive", [2, 3, 4], [], "rounds 2-4 in a row")),
    ("B.BBB", 5, 3, (5, "consecutive", [3, 4, 5], [1], "rounds 3-5 in a row")),
    # a breach open at the end of the soak is followed up until it persists or a round passes
    ("....B.", 5, 3, (6, None, [], [5], None)),
    ("....BB.", 5, 3, (7, None, [], [5, 6], None)),
    ("....BBB", 5, 3, (7, "consecutive", [5, 6, 7], [], "rounds 5-7 in a row")),
    ("...BBB", 5, 3, (6, "consecutive", [4, 5, 6], [], "rounds 4-6 in a row")),
    # the whole soak: flapping (at least half of the rounds, and at least 3, breached) fails; rare noise does not
    ("B.B.B.", 6, 3, (6, "prevalent", [1, 3, 5], [], "3 of 6 rounds breached, the first in round 1")),
    ("B.B.B.B.", 7, 3, (8, "prevalent", [1, 3, 5, 7], [], "4 of 8 rounds breached, the first in round 1")),
    ("BB.BB..", 7, 3, (7, "prevalent", [1, 2, 4, 5], [], "4 of 7 rounds breached, the first in round 1")),
    ("B.B..B..", 8, 3, (8, None, [], [1, 3, 6], None)),  # 3 of 8: the exception, not the rule
    ("B.B....", 7, 3, (7, None, [], [1, 3], None)),  # half of 4 would be 2, but fewer than 3 never fail
    # one round (soak 0): a breach is confirmed by up to consecutive_failures - 1 more rounds
    (".", 1, 3, (1, None, [], [], None)),
    ("B.", 1, 3, (2, None, [], [1], None)),
    ("BB.", 1, 3, (3, None, [], [1, 2], None)),  # 2 of 3 breached, but fewer than 3
    ("BBB", 1, 3, (3, "consecutive", [1, 2, 3], [], "rounds 1-3 in a row")),
    ("B.", 1, 2, (2, None, [], [1], None)),
    ("BB", 1, 2, (2, "consecutive", [1, 2], [], "rounds 1-2 in a row")),
    # 1: the first breaching round fails the host, as the rounds did before consecutive_failures existed
    ("B", 5, 1, (1, "consecutive", [1], [], "round 1")),
    ("..B", 5, 1, (3, "consecutive", [3], [], "round 3")),
    ("B", 1, 1, (1, "consecutive", [1], [], "round 1")),
    ("..", 2, 1, (2, None, [], [], None)),
])
def test_a_breach_must_persist(pattern, soak_rounds, limit, expected):
    assert take_rounds(pattern, soak_rounds, limit) == expected


def test_rounds_number_their_failures_and_keep_them_whole():
    rounds = Rounds(2)
    rounds.add([])
    rounds.add(breach() + breach())
    rounds.add(breach())
    failures, transient, rule = rounds.verdict()
    assert (rule, [f["round"] for f in failures], transient) == ("consecutive", [2, 2, 3], [])
    assert failures[0] == dict(breach()[0], round=2)


# A command probe that counts its runs in a file and fails on the runs listed: one sample per round, so the
# rounds that breach are exactly those. Soak 0.35 s, 0.1 s apart: the soak's time allows 4 rounds (0 to 0.3 s).
COUNTING = (
    "import pathlib, sys\n"
    "path = pathlib.Path(sys.argv[1])\n"
    "count = int(path.read_text()) + 1 if path.exists() else 1\n"
    "path.write_text(str(count))\n"
    "sys.exit(1 if str(count) in sys.argv[2].split(',') else 0)\n"
)


@pytest.mark.parametrize(("failing", "extra", "healthy", "rounds", "msg"), [
    ("", {}, True, 4, "healthy: 1 probes, 4 rounds"),
    ("2", {}, True, 4, "healthy: 1 probes, 4 rounds, 1 of them breached but never 3 in a row"),
    ("4", {}, True, 5, "healthy: 1 probes, 5 rounds, 1 of them breached but never 3 in a row"),  # confirmed by round 5
    ("4,5", {}, True, 6, "healthy: 1 probes, 6 rounds, 2 of them breached but never 3 in a row"),
    ("4,5,6", {}, False, 6, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (rounds 4-6 in a row)"),
    ("1,2,3", {}, False, 3, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (rounds 1-3 in a row)"),
    ("1,2,4", {}, False, 5, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (3 of 5 rounds breached, the first in round 1)"),
    ("2", {"consecutive_failures": 1}, False, 2, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (round 2)"),
    ("2,3", {"consecutive_failures": 2}, False, 3, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (rounds 2-3 in a row)"),
    # one round (soak 0) that breaches is confirmed before it fails; one that passes is the whole check
    ("", {"soak": 0}, True, 1, "healthy: 1 probes, 1 rounds"),
    ("1", {"soak": 0}, True, 2, "healthy: 1 probes, 2 rounds, 1 of them breached but never 3 in a row"),
    ("1,2,3", {"soak": 0}, False, 3, "unhealthy: probe flaky: error_rate 100.0 > 0.0 [max_error_rate] (rounds 1-3 in a row)"),
])
def test_rounds_on_real_probes(host, tmp_path, failing, extra, healthy, rounds, msg):
    probe = {"name": "flaky", "type": "command", "samples": 1, "command": [sys.executable, "-c", COUNTING, str(tmp_path / "count"), failing]}
    result = check_health(params([probe], **{"soak": 0.35, "interval": 0.1, "fail_on_unhealthy": False, **extra}), host)
    assert (result["healthy"], result["rounds"], result["msg"]) == (healthy, rounds, msg)
    breached = [int(number) for number in failing.split(",") if number and int(number) <= rounds]
    assert result["breached_rounds"] == breached
    decided = {f["round"] for f in result["failures"]}
    assert sorted(decided | {f["round"] for f in result["transient_failures"]}) == breached
    assert not decided & {f["round"] for f in result["transient_failures"]}
    assert result["consecutive_failures"] == extra.get("consecutive_failures", DEFAULT_CONSECUTIVE_FAILURES)
    assert result["metrics"]["flaky"]["samples"] == rounds  # the pooled metrics count every round taken


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "3"])
def test_consecutive_failures_must_be_a_count_of_rounds(host, value):
    with pytest.raises(PatchError) as caught:
        check_health(params([{"name": "ok", "type": "command", "command": ["true"]}], consecutive_failures=value), host)
    assert str(caught.value) == f"consecutive_failures: expected a number of rounds, 1 or more, got {value!r}"
    assert caught.value.details == {"consecutive_failures": value}


# -- real probes, on this machine ----------------------------------------------------------------------------


def probe_http(fpdemo_host, path="/health", **extra):
    return {"name": "health", "type": "http", "url": f"http://127.0.0.1:{fpdemo_host.port}{path}", **extra}


def params(probes, **extra):
    return {"probes": probes, "samples": 5, "soak": 0, "interval": 0.1, "thresholds": {}, "fail_on_unhealthy": True, **extra}


def test_a_good_release_is_healthy(host, fpdemo_host):
    fpdemo_host.install("7.0.28")
    fpdemo_host.ctl("start")
    probes = [probe_http(fpdemo_host, expect_body='"status": ?"ok"'), {"name": "port", "type": "tcp", "port": fpdemo_host.port}]
    result = check_health(params(probes, thresholds={"max_p95_ms": 1000}), host)
    assert result["healthy"] is True and result["failures"] == []
    assert result["metrics"]["health"]["samples"] == 5 and result["metrics"]["health"]["error_rate"] == 0.0
    assert result["metrics"]["port"]["samples"] == 5
    assert 0 < result["metrics"]["health"]["p95_ms"] < 1000
    assert result["rounds"] == 1 and result["vulnerable"] is None


def test_the_bad_release_fails_with_the_metric_that_broke(host, fpdemo_host):
    fpdemo_host.install("7.0.29")  # answers /health with 500
    fpdemo_host.ctl("start")
    with pytest.raises(PatchError) as caught:
        check_health(params([probe_http(fpdemo_host)]), host)
    # soak 0 is one round; its breach is confirmed by two more before the verdict fails
    assert str(caught.value) == "unhealthy: probe health: error_rate 100.0 > 0.0 [max_error_rate] (rounds 1-3 in a row)"
    details = caught.value.details
    assert details["healthy"] is False and details["rounds"] == 3 and details["transient_failures"] == []
    assert [(f["round"], f["measured"]) for f in details["failures"]] == [(1, 100.0), (2, 100.0), (3, 100.0)]
    assert details["metrics"]["health"]["errors_seen"] == ["HTTP 500, expected 200"]


def test_the_slow_release_fails_its_baseline(host, fpdemo_host):
    fpdemo_host.install("7.0.27")
    fpdemo_host.ctl("start")
    baseline = check_health(params([probe_http(fpdemo_host)]), host)["metrics"]
    fpdemo_host.install("7.0.30")  # answers after 300 ms
    fpdemo_host.ctl("restart")
    # factor 2: 7.0.30 adds 300 ms to every request, so its p95 is over twice the baseline's unless this machine
    # made the baseline's own p95 150 ms or more
    result = check_health(params([probe_http(fpdemo_host)], baseline=baseline, thresholds={"baseline_p95_factor": 2},
                                 fail_on_unhealthy=False), host)
    assert result["healthy"] is False
    failure = result["failures"][0]
    assert (failure["metric"], failure["threshold"]) == ("p95_ms", "baseline_p95_factor")
    assert failure["measured"] >= 300 and failure["measured"] > failure["limit"]
    assert result["msg"].startswith("unhealthy: probe health: p95_ms ")


def test_soak_repeats_rounds_and_stops_once_a_breach_persisted(host, fpdemo_host, tmp_path):
    fpdemo_host.install("7.0.28")
    fpdemo_host.ctl("start")
    started = time.monotonic()
    result = check_health(params([probe_http(fpdemo_host)], soak=1.0, interval=0.25), host)
    assert time.monotonic() - started >= 0.75
    assert result["rounds"] == 5 and result["metrics"]["health"]["samples"] == 25  # at 0, 0.25, 0.5, 0.75 and 1 s
    # a regression during the soak: the file appears after the first rounds and the command probe fails
    marker = tmp_path / "regressed"
    probe = {"name": "regression", "type": "command", "command": [sys.executable, "-c", f"import os,sys; sys.exit(os.path.exists({str(marker)!r}))"]}
    threading.Timer(0.6, marker.touch).start()
    with pytest.raises(PatchError) as caught:
        check_health(params([probe], soak=5.0, interval=0.2), host)
    first = caught.value.details["failures"][0]["round"]
    assert 2 <= first <= 5
    assert [f["round"] for f in caught.value.details["failures"]] == [first, first + 1, first + 2]
    assert caught.value.details["rounds"] == first + 2
    assert caught.value.details["soaked_seconds"] < 3  # it stopped at the third bad round in a row, not after 5 s


def test_nothing_listening(host):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        result = check_health(params([{"name": "down", "type": "http", "url": f"http://127.0.0.1:{port}/health", "timeout": 2},
                                      {"name": "port", "type": "tcp", "port": port, "timeout": 2}], fail_on_unhealthy=False), host)
    assert result["metrics"]["down"]["error_rate"] == 100.0 and result["metrics"]["down"]["p95_ms"] is None
    # a service that does not answer at all breaches every round: it fails after three in a row
    assert result["rounds"] == 3 and result["msg"].endswith("(rounds 1-3 in a row)")
    assert [(f["round"], f["probe"], f["metric"]) for f in result["failures"]] == [
        (number, probe, "error_rate") for number in (1, 2, 3) for probe in ("down", "port")]
    assert "Connection refused" in result["metrics"]["port"]["errors_seen"][0]


@pytest.mark.parametrize(("version", "vulnerable"), [("7.0.27", True), ("7.0.28", False)])
def test_the_vulnerability_probe(host, fpdemo_host, version, vulnerable):
    fpdemo_host.install(version)
    fpdemo_host.ctl("start")
    checker = {"name": "leak-gone", "type": "command", "vulnerability": True,
               "command": [sys.executable, str(fpdemo_host.install_dir / "bin" / "fpdemoctl.py"), "--config", str(fpdemo_host.config_path), "check-leak"]}
    result = check_health(params([probe_http(fpdemo_host), checker], fail_on_unhealthy=False), host)
    assert result["vulnerable"] is vulnerable and result["healthy"] is not vulnerable
    if vulnerable:
        assert result["failures"][0]["threshold"] == "vulnerability"
        assert "exit 4, expected 0: LEAK" in result["failures"][0]["why"]
    assert result["rounds"] == 1  # the health probes still give their metrics; a failing verdict is not soaked further
    assert result["metrics"]["health"]["error_rate"] == 0.0


def test_a_baseline_skips_the_vulnerability_probe(host, fpdemo_host):
    fpdemo_host.install("7.0.27")
    fpdemo_host.ctl("start")
    failing = {"name": "leak-gone", "type": "command", "vulnerability": True, "command": ["false"]}
    result = check_health(params([probe_http(fpdemo_host), failing], check_vulnerability=False), host)
    assert (result["healthy"], result["vulnerable"], sorted(result["metrics"])) == (True, None, ["health"])


@pytest.mark.parametrize(("probes", "message"), [
    ([], "probes: at least one probe is needed to judge a host's health"),
    ([{"name": "a", "type": "tcp", "port": 1}, {"name": "a", "type": "tcp", "port": 2}], "probes[1].name: 'a' is used by two probes; names must be unique"),
    ([{"type": "smtp"}], "probes: type 'smtp' is not one of http, tcp, command"),
])
def test_bad_probes(host, probes, message):
    with pytest.raises(PatchError) as caught:
        check_health(params(probes), host)
    assert str(caught.value) == message


# -- run_probe: one sample, against a real HTTP server and TCP listener on 127.0.0.1 and real commands ---------------


PROBE_BODIES = {"/ok": (200, b'{"status": "ok"}'), "/teapot": (418, b"short and stout"), "/down": (503, b'{"status": "down"}')}


@pytest.fixture(scope="module")
def probe_server():
    """``(base URL, port)`` of an HTTP server on 127.0.0.1; ``/slow`` answers after 1 s."""
    with http_server({**PROBE_BODIES, "/slow": (200, b"late", 1.0)}, default=(200, b"late")) as served:
        yield served


@pytest.fixture(scope="module")
def closed_port():
    """A port on 127.0.0.1 that is bound but never listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ``{url}`` is the server's base URL, ``{port}`` its port, ``{closed}`` the refusing port. ``elapsed`` says
# whether a latency was measured (an answer came back) or is None (nothing came back).
@pytest.mark.parametrize(("probe", "ok", "detail", "elapsed"), [
    ({"type": "http", "url": "{url}/ok"}, True, None, "measured"),
    ({"type": "http", "url": "{url}/ok", "expect_body": '"status": ?"ok"'}, True, None, "measured"),
    ({"type": "http", "url": "{url}/ok", "expect_body": "^ok$"}, False, "body does not match '^ok$'", "measured"),
    ({"type": "http", "url": "{url}/teapot"}, False, "HTTP 418, expected 200", "measured"),
    ({"type": "http", "url": "{url}/teapot", "expect_status": 418, "expect_body": "stout"}, True, None, "measured"),
    ({"type": "http", "url": "{url}/down", "expect_body": "ok"}, False, "HTTP 503, expected 200", "measured"),  # status judged first
    ({"type": "http", "url": "{url}/slow", "timeout": 0.2}, False, "GET {url}/slow failed: timed out", None),
    ({"type": "http", "url": "http://127.0.0.1:{closed}/ok"}, False, "GET http://127.0.0.1:{closed}/ok failed: [Errno 111] Connection refused", None),
    ({"type": "tcp", "port": "{port}"}, True, None, "measured"),
    ({"type": "tcp", "host": "127.0.0.1", "port": "{port}"}, True, None, "measured"),
    ({"type": "tcp", "port": "{closed}"}, False, "connect 127.0.0.1:{closed}: [Errno 111] Connection refused", None),
    ({"type": "command", "command": ["true"]}, True, None, "measured"),
    ({"type": "command", "command": ["false"]}, False, "exit 1, expected 0", "measured"),
    ({"type": "command", "command": ["sh", "-c", "exit 3"], "expect_rc": 3}, True, None, "measured"),
    ({"type": "command", "command": ["true"], "expect_rc": 3}, False, "exit 0, expected 3", "measured"),
    # the last line said, stderr before stdout, cut to 200 characters
    ({"type": "command", "command": ["sh", "-c", "echo out; echo first >&2; echo 'bad thing' >&2; exit 2"]}, False,
     "exit 2, expected 0: bad thing", "measured"),
    ({"type": "command", "command": ["sh", "-c", "echo only stdout; exit 1"]}, False, "exit 1, expected 0: only stdout", "measured"),
    ({"type": "command", "command": ["sh", "-c", "printf '%0300d\\n' 0 >&2; exit 1"]}, False, "exit 1, expected 0: " + "0" * 200, "measured"),
    # a hung command is ended by coreutils timeout, and said so
    ({"type": "command", "command": ["sleep", "5"], "timeout": 0.3}, False, "sleep timed out after 0.3 s", "measured"),
])
def test_run_probe(host, probe_server, closed_port, probe, ok, detail, elapsed):
    url, port = probe_server
    values = {"url": url, "port": port, "closed": closed_port}
    probe = {key: value.format(**values) if isinstance(value, str) and key in ("url", "port") else value for key, value in probe.items()}
    if "port" in probe:
        probe["port"] = int(probe["port"])
    found_ok, found_elapsed, found_detail = run_probe(host, probe)
    assert (found_ok, found_detail) == (ok, None if detail is None else detail.format(**values))
    if elapsed is None:
        assert found_elapsed is None
    else:
        assert isinstance(found_elapsed, float) and found_elapsed >= 0
    if probe.get("timeout") == 0.3:
        assert 300 <= found_elapsed < 4000  # killed at the timeout, not after the 5 s sleep


def test_run_probe_refuses_an_unknown_type(host):
    with pytest.raises(PatchError) as caught:
        run_probe(host, {"name": "mail", "type": "smtp"})
    assert (str(caught.value), caught.value.details) == ("probes: type 'smtp' is not one of http, tcp, command", {"probe": "mail"})
