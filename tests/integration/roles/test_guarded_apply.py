"""The guarded_apply role on real hosts: a good patch passes its health, a bad one is rolled back by itself."""

from __future__ import annotations

import json

import pytest

from fleetpatch_dev import manifests, probe
from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet


def state(fleet, name):
    return json.loads(fleet.ssh(name, "cat /var/lib/fleetpatch/state.json").stdout)


def test_good_patch_holds_bad_ones_roll_back_by_themselves(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name=name, version="7.0.27") for name in ("good", "failing", "slow")])
    paths = {
        "good": manifests.write(tmp_path / "good", fleet.artifact("7.0.28"), version="7.0.28"),
        "failing": manifests.write(tmp_path / "failing", fleet.artifact("7.0.29"), version="7.0.29"),
        "slow": manifests.write(tmp_path / "slow", fleet.artifact("7.0.30"), version="7.0.30"),
    }
    extravars = {"fp_manifests": {name: str(path) for name, path in paths.items()}, "fp_soak": 2}
    run = ansible("guarded_apply.yml", fleet.write_inventory(), extravars=extravars)
    assert run.returncode == 2, run.stdout
    assert (run.stats["good"]["failures"], run.stats["failing"]["failures"], run.stats["slow"]["failures"]) == (0, 1, 1)

    recorded = run.results("Record the outcome for the wave")
    outcome = {name: result["ansible_facts"]["guarded_apply_result"] for name, result in recorded.items()}
    assert outcome["good"]["status"] == "patched" and outcome["good"]["version"] == "7.0.28"
    assert outcome["good"]["vulnerable"] is False and outcome["good"]["failures"] == []
    assert fleet.service_version("good") == "7.0.28" and not probe.leak(fleet.address("good"))

    # 7.0.29 answers /health with 500: the error rate broke, the host went back to 7.0.27 and is healthy again
    failing = outcome["failing"]
    assert (failing["status"], failing["version"], failing["rolled_back"], failing["health_after_rollback"]) == ("rolled_back", "7.0.27", True, True)
    assert failing["failures"][0] == {"probe": "health", "metric": "error_rate", "measured": 100.0, "limit": 0.0,
                                      "threshold": "max_error_rate", "why": "error_rate 100.0 > 0.0", "round": 1}
    message = run.results("Fail the host whose patch did not hold")["failing"]["msg"]
    assert message == "FP-2025-14847.yml: rolled back: unhealthy: probe health: error_rate 100.0 > 0.0 [max_error_rate] (round 1)"
    assert fleet.service_version("failing") == "7.0.27"

    # 7.0.30 answers 300 ms late: its p95 broke the absolute limit (and the baseline factor too, unless this busy
    # machine measured a baseline p95 above 60 ms: the unit tests pin that arithmetic down)
    slow = outcome["slow"]
    assert slow["status"] == "rolled_back" and fleet.service_version("slow") == "7.0.27"
    assert ("health", "p95_ms", "max_p95_ms") in {(f["probe"], f["metric"], f["threshold"]) for f in slow["failures"]}
    assert all(f["measured"] >= 300 and f["measured"] > f["limit"] for f in slow["failures"])

    for name, bad in (("failing", "7.0.29"), ("slow", "7.0.30")):
        recorded = state(fleet, name)
        assert recorded["components"]["fpdemo"]["version"] == "7.0.27", recorded
        assert [r["from"] for r in recorded["rollbacks"]] == [bad], recorded
    assert [(a["patch"], a["from"], a["version"]) for a in state(fleet, "good")["applied"]] == [("FP-2025-14847", "7.0.27", "7.0.28")]

    again = ansible("guarded_apply.yml", fleet.write_inventory(), extravars=extravars, limit="good")
    assert again.returncode == 0, again.stdout
    assert again.results("Show the outcome")["good"]["guarded_apply_result"]["status"] == "unchanged"
    assert again.stats["good"]["changed"] == 0
