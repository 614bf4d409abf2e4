"""playbooks/detect.yml (the fleetpatch.rollout.detect role) on real hosts: from a manifest or from explicit
variables (never both), unreachable hosts reported unknown, the rows written as JSON, and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._detect_report import read_detect_report

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet

DETECT = Path(__file__).resolve().parents[2] / "playbooks" / "detect.yml"


def rows_of(run):
    (result,) = run.results("Collect what every host answered").values()
    return {row["host"]: row for row in result["ansible_facts"]["detect_rows"]}


def failure(run):
    return [event["event_data"]["res"].get("msg", "") for event in run.events if event["event"] == "runner_on_failed"]


def test_detect_from_a_manifest_or_from_variables_never_both(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="old", version="7.0.26", region="eu"), HostSpec(name="fixed", version="7.0.28", region="us"),
               HostSpec(name="down", version="7.0.26", region="eu")])
    fleet.stop("down")
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"))
    report = tmp_path / "report" / "detect.json"
    report.parent.mkdir()

    run = ansible(DETECT, inventory, extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_detect_report": str(report)})
    assert run.returncode == 4, run.stdout[-3000:]  # an unreachable host
    rows = rows_of(run)
    assert {name: (row["version"], row["affected"], row["fixed"]) for name, row in rows.items()} == {
        "old": ("7.0.26", True, False), "fixed": ("7.0.28", False, True), "down": ("unknown", "unknown", "unknown")}
    assert rows["down"]["msg"]  # why it is unknown
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["hosts"] == sorted(rows.values(), key=lambda row: row["host"])
    assert {key: written[key] for key in ("format", "component", "install_dir", "strategy", "patch")} == {
        "format": 1, "component": "fpdemo", "install_dir": "/srv/fpdemo", "strategy": "current_link", "patch": "FP-2025-14847"}
    assert read_detect_report(str(report))["hosts"]["down"]["unreachable"] is True  # the schema holds, and the planner sees why
    changed = {event["event_data"]["task"] for event in run.events if event["event"] == "runner_on_ok" and event["event_data"]["res"].get("changed")}
    assert changed == {"Write the report as JSON on the controller (the rows, and what was detected; the rollout role can plan from it)"}

    explicit = {"fleetpatch_component": "fpdemo", "fleetpatch_install_dir": "/srv/fpdemo", "fleetpatch_affected": ">=7.0.0,<7.0.27"}
    run = ansible(DETECT, inventory, limit="old,fixed", extravars=explicit)
    assert run.returncode == 0, run.stdout[-3000:]
    assert {name: (row["version"], row["affected"], row["fixed"]) for name, row in rows_of(run).items()} == {
        "old": ("7.0.26", True, None), "fixed": ("7.0.28", False, None)}

    for extravars, message in [
        ({**explicit, "fleetpatch_manifest": str(manifest)},
         "fleetpatch_manifest is given: leave out fleetpatch_component, fleetpatch_install_dir, fleetpatch_affected, the manifest says them"),
        ({}, "give fleetpatch_manifest (the patch change record), or fleetpatch_component and where it is installed"),
        ({"fleetpatch_component": "fpdemo"}, "fleetpatch_install_dir: needed with fleetpatch_detect_strategy=current_link"),
        ({"fleetpatch_component": "fpdemo", "fleetpatch_detect_strategy": "guess"}, "fleetpatch_detect_strategy"),
    ]:
        run = ansible(DETECT, inventory, limit="old,fixed", extravars=extravars)
        assert run.returncode == 2, (extravars, run.stdout[-3000:])
        assert message in str(failure(run)), (extravars, failure(run))
        assert not any(event["event_data"].get("task") == "Detect the installed version" for event in run.events), extravars
