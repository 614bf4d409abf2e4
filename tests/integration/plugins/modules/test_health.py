"""fleetpatch.rollout.health on a real SSH host: recording the judgment of an apply (four runs, in one play)."""

from __future__ import annotations

import json
import re

import pytest

from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def applied(fleet, name):
    result = fleet.ssh(name, "cat /var/lib/fleetpatch/state.json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["applied"]


def test_a_healthy_verdict_marks_the_apply_judged_four_runs(fleet, ansible):
    fleet.add([HostSpec(name="db", version="7.0.26")])
    inventory = fleet.write_inventory()
    artifact = fleet.artifact("7.0.28")
    sha256 = artifact.with_name(f"{artifact.name}.sha256").read_text(encoding="utf-8").split()[0]
    run = ansible("apply.yml", inventory, extravars={"fp_version": "7.0.28", "fp_artifact": str(artifact), "fp_sha256": sha256})
    assert run.returncode == 0, run.stdout
    assert "judged" not in applied(fleet, "db")[-1]

    run = ansible("health_judged_four_times.yml", inventory, extravars={"fp_version": "7.0.28", "fp_other_version": "7.0.27"})
    assert run.returncode == 0, run.stdout
    judgments, reads = run.results_each("Judge the health and record it")["db"], run.results_each("Read the state file")["db"]
    assert len(judgments) == len(reads) == 5
    marks = [json.loads(read["stdout"])["applied"][-1].get("judged") for read in reads]
    for (check, changed), result in zip([(True, True), (False, True), (True, False), (False, False)], judgments):
        assert (result["healthy"], result["changed"]) == (True, changed), (check, result)
        assert TIMESTAMP.match(result["judged"]) and (result["diff"]["before"]["judged"] is None) is changed, (check, result)
    assert marks[0] is None and marks[1] == marks[2] == marks[3] and TIMESTAMP.match(marks[1])  # check mode wrote nothing; marked once

    # Another release than the one the apply recorded: nothing to mark.
    assert (judgments[4]["changed"], judgments[4]["judged"]) == (False, None)
    assert marks[4] == marks[3] and applied(fleet, "db")[-1]["judged"] == marks[3]
