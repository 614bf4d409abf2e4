"""The guarded_apply role on real hosts: a good patch passes its health, a noisy moment does not roll it back, a
bad one is rolled back by itself, and a host is called failed only when its health after the rollback breaks twice.
Included twice for one host in one play, each run applies, judges and reports its own outcome.

The manifests are the test ones (fleetpatch_dev.manifests: rounds 1 s apart, limits that judge the patch and not
this machine's load) with the default of 3 breaching rounds in a row; the faults come from fleetpatch_dev.faults,
injected at a moment read from the service's own log.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleetpatch_dev import faults, manifests, probe
from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet

CONSECUTIVE = 3  # monitoring.consecutive_failures when the manifest does not say


def state(fleet, name):
    return json.loads(fleet.ssh(name, "cat /var/lib/fleetpatch/state.json").stdout)


def stall_during_soak(fleet, name, version):
    """Freeze the service for 2.5 s once its soak has started: after the reload into ``version``, the apply's
    version check, and the first probe of the soak. One sample of one round waits at least 1.5 s (rounds are 1 s
    apart), over the test manifest's max_p95_ms of 1000."""
    log = faults.ServiceLog(fleet, name)
    log.wait_for(rf"fpdemo {version} \(abi 1\) serving")
    log.wait_for(r'"GET /version ')
    log.wait_for(r'"GET /health ')
    faults.stall(fleet, name, 2.5)


def after_the_rollback(fleet, name, bad, fault):
    """Run ``fault`` once ``name`` was rolled back from ``bad`` to 7.0.27 and the rollback confirmed the version,
    that is just before the role checks the host's health after the rollback."""
    log = faults.ServiceLog(fleet, name)
    log.wait_for(rf"fpdemo {bad} \(abi 1\) serving")
    log.wait_for(r"fpdemo 7\.0\.27 \(abi 1\) serving")
    log.wait_for(r'"GET /version ')
    fault()


def test_a_noisy_moment_does_not_roll_back_a_persistent_breach_does(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name=name, version="7.0.27") for name in ("good", "noisy", "failing", "slow")])
    paths = {
        "good": manifests.write(tmp_path / "good", fleet.artifact("7.0.28"), version="7.0.28"),
        "noisy": manifests.write(tmp_path / "noisy", fleet.artifact("7.0.28"), version="7.0.28"),
        "failing": manifests.write(tmp_path / "failing", fleet.artifact("7.0.29"), version="7.0.29"),
        "slow": manifests.write(tmp_path / "slow", fleet.artifact("7.0.30"), version="7.0.30"),
    }
    extravars = {"fp_manifests": {name: str(path) for name, path in paths.items()}, "fp_soak": 3}  # rounds at 0, 1, 2, 3 s
    with ThreadPoolExecutor(1) as pool:
        noise = pool.submit(stall_during_soak, fleet, "noisy", "7.0.28")
        run = ansible("guarded_apply.yml", fleet.write_inventory(), extravars=extravars)
        noise.result(timeout=60)
    assert run.returncode == 2, run.stdout
    assert {name: run.stats[name]["failures"] for name in paths} == {"good": 0, "noisy": 0, "failing": 1, "slow": 1}

    recorded = run.results("Record the outcome for the wave")
    outcome = {name: result["ansible_facts"]["guarded_apply_result"] for name, result in recorded.items()}
    verdicts = run.results("Judge the patched service's health over the soak, and record on the host that its apply was judged healthy")
    assert outcome["good"]["status"] == "patched" and outcome["good"]["version"] == "7.0.28"
    assert outcome["good"]["vulnerable"] is False and outcome["good"]["failures"] == []
    assert fleet.service_version("good") == "7.0.28" and not probe.leak(fleet.address("good"))

    # the stall broke one round's p95 (one sample of ten answered over 1.5 s late): tolerated, the patch holds
    noisy = outcome["noisy"]
    assert (noisy["status"], noisy["version"], noisy["rolled_back"], noisy["failures"]) == ("patched", "7.0.28", False, [])
    breached = verdicts["noisy"]["breached_rounds"]
    assert len(breached) == 1 and verdicts["noisy"]["rounds"] == 4, verdicts["noisy"]
    assert {(f["probe"], f["metric"], f["threshold"], f["round"]) for f in noisy["transient_failures"]} >= {("health", "p95_ms", "max_p95_ms", breached[0])}
    assert all(f["measured"] > 1000 for f in noisy["transient_failures"] if f["threshold"] == "max_p95_ms")
    assert verdicts["noisy"]["msg"] == f"healthy: 2 probes, 4 rounds, 1 of them breached but never {CONSECUTIVE} in a row"
    assert fleet.service_version("noisy") == "7.0.28"
    assert state(fleet, "noisy").get("rollbacks", []) == []

    # 7.0.29 answers /health with 500 in every round: three in a row, then back to 7.0.27, healthy at once
    failing = outcome["failing"]
    assert (failing["status"], failing["version"], failing["rolled_back"], failing["health_after_rollback"]) == ("rolled_back", "7.0.27", True, True)
    assert failing["checks_after_rollback"] == 1
    assert failing["failures"] == [{"probe": "health", "metric": "error_rate", "measured": 100.0, "limit": 0.0,
                                    "threshold": "max_error_rate", "why": "error_rate 100.0 > 0.0", "round": number} for number in (1, 2, 3)]
    assert verdicts["failing"]["rounds"] == 3  # it stopped at the third bad round, before the soak's end
    message = run.results("Fail the host whose patch did not hold")["failing"]["msg"]
    assert message == "FP-2025-14847.yml: rolled back: unhealthy: probe health: error_rate 100.0 > 0.0 [max_error_rate] (rounds 1-3 in a row)"
    assert fleet.service_version("failing") == "7.0.27"

    # 7.0.30 answers every request 300 ms late: its median broke the limit in three rounds in a row
    slow = outcome["slow"]
    assert slow["status"] == "rolled_back" and fleet.service_version("slow") == "7.0.27"
    p50 = [f for f in slow["failures"] if (f["probe"], f["metric"], f["threshold"]) == ("health", "p50_ms", "max_p50_ms")]
    assert [f["round"] for f in p50] == [1, 2, 3] and all(f["measured"] >= 300 for f in p50)

    for name, bad in (("failing", "7.0.29"), ("slow", "7.0.30")):
        recorded = state(fleet, name)
        assert recorded["components"]["fpdemo"]["version"] == "7.0.27", recorded
        assert [r["from"] for r in recorded["rollbacks"]] == [bad], recorded
    for name in ("good", "noisy"):
        assert [(a["patch"], a["from"], a["version"]) for a in state(fleet, name)["applied"]] == [("FP-2025-14847", "7.0.27", "7.0.28")]

    again = ansible("guarded_apply.yml", fleet.write_inventory(), extravars=extravars, limit="good")
    assert again.returncode == 0, again.stdout
    assert again.results("Show the outcome")["good"]["guarded_apply_result"]["status"] == "unchanged"
    assert again.stats["good"]["changed"] == 0


def test_a_breach_after_the_rollback_is_checked_again_before_the_host_is_called_failed(fleet, ansible, tmp_path):
    """Both hosts get the bad 7.0.29 and are rolled back. Then ``outage`` answers 503 to the 30 requests of the
    first check after the rollback (3 rounds of 10) and starts the service again: the second check finds it
    healthy, the host is rolled back, not failed. ``dead``'s service is killed and stays down: both checks fail."""
    fleet.add([HostSpec(name=name, version="7.0.27") for name in ("outage", "dead")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.29"), version="7.0.29")
    extravars = {"fp_manifests": {"outage": str(manifest), "dead": str(manifest)}, "fp_soak": 0}
    with ThreadPoolExecutor(2) as pool:
        faulted = [
            pool.submit(after_the_rollback, fleet, "outage", "7.0.29", lambda: faults.outage(fleet, "outage", 30)),
            pool.submit(after_the_rollback, fleet, "dead", "7.0.29", lambda: faults.crash(fleet, "dead")),
        ]
        run = ansible("guarded_apply.yml", fleet.write_inventory(), extravars=extravars)
        for future in faulted:
            future.result(timeout=60)
    assert run.returncode == 2, run.stdout
    recorded = run.results("Record the outcome for the wave")
    outcome = {name: result["ansible_facts"]["guarded_apply_result"] for name, result in recorded.items()}
    first = run.results("Check the service's health after the rollback")
    again = run.results("Check the service's health after the rollback once more, the first check breached")

    # the first check: 503 in three rounds in a row; the second: healthy again
    outage = outcome["outage"]
    assert (outage["status"], outage["version"], outage["health_after_rollback"], outage["checks_after_rollback"]) == ("rolled_back", "7.0.27", True, 2)
    assert first["outage"]["healthy"] is False and first["outage"]["msg"].endswith("(rounds 1-3 in a row)")
    assert [f["round"] for f in outage["first_failures_after_rollback"] if f["why"] == "error_rate 100.0 > 0.0"] == [1, 2, 3]
    assert "HTTP 503, expected 200" in first["outage"]["metrics"]["health"]["errors_seen"]
    assert again["outage"]["healthy"] is True and outage["failures_after_rollback"] == []
    assert fleet.service_version("outage") == "7.0.27"
    assert run.results("Fail the host whose patch did not hold")["outage"]["msg"].startswith("FP-2025-14847.yml: rolled back: ")

    # a service that does not answer at all for three rounds, twice: failed
    dead = outcome["dead"]
    assert (dead["status"], dead["version"], dead["health_after_rollback"], dead["checks_after_rollback"]) == ("failed", "7.0.27", False, 2)
    for check in (first["dead"], again["dead"]):
        assert check["healthy"] is False and check["rounds"] == 3 and check["metrics"]["health"]["error_rate"] == 100.0
        assert "Connection refused" in check["metrics"]["health"]["errors_seen"][0]
    assert run.results("Fail the host whose patch did not hold")["dead"]["msg"] == (
        "FP-2025-14847.yml: failed: unhealthy: probe health: error_rate 100.0 > 0.0 [max_error_rate] (rounds 1-3 in a row); "
        "still unhealthy after the rollback, checked 2 times: error_rate 100.0 > 0.0")
    for name in ("outage", "dead"):
        assert [r["from"] for r in state(fleet, name)["rollbacks"]] == ["7.0.29"]


JUDGE = "Judge the patched service's health over the soak, and record on the host that its apply was judged healthy"


def after_the_soak_began(fleet, name, version, fault):
    """Run ``fault`` once ``name`` serves ``version``, its apply confirmed it and the soak's first probe ran."""
    log = faults.ServiceLog(fleet, name)
    log.wait_for(rf"fpdemo {version} \(abi 1\) serving")
    log.wait_for(r'"GET /version ')
    log.wait_for(r'"GET /health ')
    fault()


def test_included_twice_for_one_host_each_run_applies_judges_and_reports_its_own_outcome(fleet, ansible, tmp_path):
    """One play includes the role twice for each host, with two change records, never failing the host.

    ``forward`` is patched to 7.0.28, then gets the bad 7.0.29 and is rolled back to 7.0.28. ``stuck`` gets the
    bad 7.0.29 and is rolled back, then the slow 7.0.30, whose rollback fails: the release to return to was
    removed during the soak, so no health check follows it, and none of the first run's may be reported.
    ``lost`` gets 7.0.29 and is rolled back, then 7.0.28, and is powered off during the soak: its second run has
    no outcome, only its apply."""
    fleet.add([HostSpec(name="forward", version="7.0.27"), HostSpec(name="stuck", version="7.0.27"), HostSpec(name="lost", version="7.0.27")])
    fixed = manifests.write(tmp_path, fleet.artifact("7.0.28"), version="7.0.28")
    failing = manifests.write(tmp_path, fleet.artifact("7.0.29"), version="7.0.29", name="FP-2025-14929.yml", id="FP-2025-14929",
                              affected=">=7.0.0,<7.0.29")
    slow = manifests.write(tmp_path, fleet.artifact("7.0.30"), version="7.0.30", name="FP-2025-14930.yml", id="FP-2025-14930")
    runs = {
        "forward": [{"manifest": str(fixed), "soak": 0}, {"manifest": str(failing), "soak": 0}],
        "stuck": [{"manifest": str(failing), "soak": 0}, {"manifest": str(slow), "soak": 0}],
        "lost": [{"manifest": str(failing), "soak": 0}, {"manifest": str(fixed), "soak": 3}],
    }
    applied = {"forward": ["7.0.28", "7.0.29"], "stuck": ["7.0.29", "7.0.30"], "lost": ["7.0.29", "7.0.28"]}
    remove_old_release = ["rm", "-rf", "/srv/fpdemo/releases/7.0.27"]
    with ThreadPoolExecutor(2) as pool:
        faulted = [
            pool.submit(after_the_soak_began, fleet, "stuck", "7.0.30", lambda: fleet.exec("stuck", remove_old_release)),
            pool.submit(after_the_soak_began, fleet, "lost", "7.0.28", lambda: fleet.stop("lost")),
        ]
        run = ansible("guarded_apply_twice.yml", fleet.write_inventory(), extravars={"fp_runs": runs})
        for future in faulted:
            future.result(timeout=60)
    assert run.returncode == 4, run.stdout  # lost is unreachable; no host is failed
    assert {name: (run.stats[name]["failures"], run.stats[name]["unreachable"]) for name in runs} == {
        "forward": (0, 0), "stuck": (0, 0), "lost": (0, 1)}

    first = {name: result["guarded_apply_result"] for name, result in run.results("Show the first run's outcome").items()}
    second = {name: result["guarded_apply_result"] for name, result in run.results("Show the second run's outcome").items()}
    baselines = run.results_each("Measure the service's health before the patch (the baseline)")
    applies = run.results_each("Apply the patch release (journaled, switched atomically, reloaded, confirmed)")
    judges = run.results_each(JUDGE)
    assert set(second) == {"forward", "stuck"}

    # A run without a soak is judged in the apply's own call (its health task skipped); the 3 s soak by the health
    # task, once the apply's result was back on the controller, which therefore knows the apply of a host lost in it.
    assert {name: [apply["health"] is None for apply in applies[name]] for name in runs} == {
        "forward": [False, False], "stuck": [False, False], "lost": [False, True]}
    assert {name: [bool(judge.get("skipped")) for judge in judges[name]] for name in runs} == {
        "forward": [True, True], "stuck": [True, True], "lost": [True, False]}
    verdicts = {name: [apply["health"] if apply["health"] is not None else judge for apply, judge in zip(applies[name], judges[name])]
                for name in runs}

    # Every run measured its baseline, applied its own patch and judged it; each outcome holds its own verdict.
    for name in runs:
        assert len(baselines[name]) == 2 and all("metrics" in baseline for baseline in baselines[name]), baselines[name]
        assert [(apply["changed"], apply["version"]) for apply in applies[name]] == [(True, version) for version in applied[name]], applies[name]
    for name, outcomes in (("forward", [first, second]), ("stuck", [first, second]), ("lost", [first])):
        assert len(verdicts[name]) == 2 and not any(verdict.get("skipped") for verdict in verdicts[name]), verdicts[name]
        for outcome, verdict in zip((o[name] for o in outcomes), verdicts[name]):
            assert (outcome["metrics"], outcome["failures"]) == (verdict["metrics"], verdict["failures"])

    # forward: patched and judged healthy, then the bad 7.0.29 rolled back to 7.0.28 and checked
    assert (first["forward"]["status"], first["forward"]["version"], first["forward"]["previous"]) == ("patched", "7.0.28", "7.0.27"), first["forward"]
    assert verdicts["forward"][0]["healthy"] is True and first["forward"]["rolled_back"] is False
    back = second["forward"]
    assert (back["status"], back["version"], back["previous"], back["rolled_back"]) == ("rolled_back", "7.0.28", "7.0.28", True)
    assert verdicts["forward"][1]["healthy"] is False and "error_rate 100.0 > 0.0" in {f["why"] for f in back["failures"]}, back
    assert back["health_after_rollback"] is True and back["checks_after_rollback"] in (1, 2)  # 2: a busy moment breached the first
    assert fleet.service_version("forward") == "7.0.28"
    recorded = state(fleet, "forward")
    assert [(a["patch"], a["from"], a["version"]) for a in recorded["applied"]] == [
        ("FP-2025-14847", "7.0.27", "7.0.28"), ("FP-2025-14929", "7.0.28", "7.0.29")]
    assert [(r["patch"], r["from"], r["to"]) for r in recorded["rollbacks"]] == [("FP-2025-14929", "7.0.29", "7.0.28")]

    # stuck: rolled back and checked; then 7.0.30 is too slow, and its rollback fails: failed, with no check after a
    # rollback, nor the first run's
    assert (first["stuck"]["status"], first["stuck"]["health_after_rollback"]) == ("rolled_back", True)
    assert first["stuck"]["checks_after_rollback"] in (1, 2)
    stuck = second["stuck"]
    assert stuck["status"] == "failed" and stuck["rolled_back"] is False, stuck
    assert stuck["error"].startswith("rollback target fpdemo 7.0.27 is not installed completely"), stuck["error"]
    assert {f["threshold"] for f in stuck["failures"]} >= {"max_p50_ms"}
    assert (stuck["health_after_rollback"], stuck["checks_after_rollback"], stuck["failures_after_rollback"], stuck["first_failures_after_rollback"]) == (
        None, 0, [], [])
    assert fleet.service_version("stuck") == "7.0.30"

    # lost: rolled back in the first run; powered off in the second run's soak: the controller knows its apply
    # (7.0.28), and no outcome, not the first run's
    assert first["lost"]["status"] == "rolled_back"
    assert verdicts["lost"][1].get("unreachable") is True, verdicts["lost"][1]
    known = {item["item"]: item["msg"] for item in run.results("Show each host's outcome and apply")["localhost"]["results"]}
    assert known["lost"]["result"] is None, known["lost"]
    assert (known["lost"]["applied"]["changed"], known["lost"]["applied"]["version"]) == (True, "7.0.28")
    assert known["forward"]["result"] == second["forward"] and known["stuck"]["result"] == second["stuck"]
