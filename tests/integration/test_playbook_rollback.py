"""playbooks/rollback.yml on 12 real hosts: every host that carries the patch goes back, and says so."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import demo_layout

pytestmark = pytest.mark.fleet

ROLLBACK = Path(__file__).resolve().parents[2] / "playbooks" / "rollback.yml"


def once(run, task):
    """The result of a run_once task (reported for the first host of the play)."""
    (result,) = run.results(task).values()
    return result


def test_rollback_playbook_returns_twelve_patched_hosts(fleet, ansible, tmp_path):
    layout = [dataclasses.replace(spec, version="7.0.27" if spec.version == "7.0.27" else "7.0.26") for spec in demo_layout(12)]
    fleet.add(layout)
    before = {spec.name: spec.version for spec in layout}
    inventory = fleet.write_inventory()
    manifest = str(manifests.write(tmp_path, fleet.artifact("7.0.28")))
    patched = ansible("apply_manifest.yml", inventory, extravars={"fp_manifest": manifest})
    assert patched.returncode == 0, patched.stdout
    assert {fleet.service_version(name) for name in before} == {"7.0.28"}

    run = ansible(ROLLBACK, inventory, extravars={"fleetpatch_manifest": manifest})
    assert run.returncode == 0, run.stdout
    rows = once(run, "Collect what every host did")["ansible_facts"]["fleetpatch_rollback_rows"]
    assert [(row["host"], row["outcome"], row["from"], row["to"], row["round"]) for row in rows] == [
        (name, "rolled back", "7.0.28", before[name], 1) for name in sorted(before)]  # a hot patch: one round
    for name, version in before.items():
        assert fleet.service_version(name) == version
        state = json.loads(fleet.ssh(name, "cat /var/lib/fleetpatch/state.json").stdout)
        assert state["components"]["fpdemo"] == {"version": version, "previous": None, "rolled_back_from": "7.0.28"}
        assert [(r["patch"], r["from"], r["to"]) for r in state["rollbacks"]] == [("FP-2025-14847", "7.0.28", version)]
    table = once(run, "Print each host's rollback")["msg"]
    assert table[0].split() == ["HOST", "REGION", "CLUSTER", "ROUND", "OUTCOME", "FROM", "TO", "DETAIL"]
    assert len(table) == 13 and all("rolled back" in line for line in table[1:])

    again = ansible(ROLLBACK, inventory, extravars={"fleetpatch_manifest": manifest})
    assert again.returncode == 0, again.stdout
    rows = once(again, "Collect what every host did")["ansible_facts"]["fleetpatch_rollback_rows"]
    assert {row["outcome"] for row in rows} == {"not carrying"}
    assert all(stats["changed"] == 0 for stats in again.stats.values())


def test_restart_patch_rolls_back_within_the_cluster_budget_and_reports_unreachable(fleet, ansible, tmp_path):
    layout = [dataclasses.replace(spec, version="7.0.26") for spec in demo_layout(6, regions=1, clusters=1, cluster_size=5)]
    fleet.add(layout)
    inventory = fleet.write_inventory()
    manifest = str(manifests.write(tmp_path, fleet.artifact("7.0.28"), **{"class": "restart"}))
    assert ansible("apply_manifest.yml", inventory, extravars={"fp_manifest": manifest}).returncode == 0
    lone = next(spec.name for spec in layout if spec.cluster is None)
    fleet.stop(lone)

    run = ansible(ROLLBACK, inventory, extravars={"fleetpatch_manifest": manifest})
    assert run.returncode == 2, run.stdout
    rows = {row["host"]: row for row in once(run, "Collect what every host did")["ansible_facts"]["fleetpatch_rollback_rows"]}
    assert rows[lone]["outcome"] == "unknown"
    members = [spec for spec in layout if spec.cluster]
    primary = next(spec.name for spec in members if spec.cluster_role == "primary")
    rounds = {row["round"] for name, row in rows.items() if name != lone}
    # five members keep three up: at most two go back at once, the primary last
    by_round = {r: sorted(name for name, row in rows.items() if row["round"] == r and name != lone) for r in rounds}
    assert [len(names) for _r, names in sorted(by_round.items())] == [2, 2, 1]
    assert by_round[3] == [primary]
    assert all(rows[spec.name]["outcome"] == "rolled back" for spec in members)
    assert once(run, "Fail when a host could not be rolled back or was not reached")["msg"] == f"not rolled back: {lone}"
