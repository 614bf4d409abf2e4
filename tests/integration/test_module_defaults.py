"""The action group fleetpatch.rollout.state (meta/runtime.yml): who is in it, and module_defaults reaching every member.

ansible-core hands a group's module_defaults to each member as they are, and a module refuses an option it does not
take, so the group holds exactly the modules that take ``state_file``, the option its defaults set. A real play on a
real host then gives ``state_file`` only through ``module_defaults: {group/fleetpatch.rollout.state: ...}`` and runs
every member: each one must have read or written that file and none the default one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import HostSpec

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GROUP = "state"
RUNTIME = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))
DEFAULT_STATE_FILE = "/var/lib/fleetpatch/state.json"
STATE_FILE = "/var/lib/fpdemo-state/fleetpatch.json"


def _module_options(tmp_path: Path) -> dict[str, set[str]]:
    """Each module of the collection and the options its documentation (fragments included) gives it."""
    env = ansible_env.prepare(tmp_path)
    modules = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")
    shown = subprocess.run([str(VENV_BIN / "ansible-doc"), "-t", "module", "--json", *(f"fleetpatch.rollout.{m}" for m in modules)],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert shown.returncode == 0, shown.stderr
    docs = json.loads(shown.stdout)
    return {name.rsplit(".", 1)[1]: set(doc["doc"].get("options") or {}) for name, doc in docs.items()}


def test_the_state_group_is_every_module_that_takes_state_file(tmp_path: Path) -> None:
    options = _module_options(tmp_path / "ansible")
    members = RUNTIME["action_groups"][GROUP]
    assert len(members) == len(set(members))
    assert sorted(members) == sorted(name for name, names in options.items() if "state_file" in names)
    assert set(RUNTIME["action_groups"]) == {GROUP}


@pytest.mark.fleet
def test_module_defaults_of_the_group_reach_every_member(fleet, ansible) -> None:
    fleet.add([HostSpec(name="grouped", version="7.0.26")])
    artifact = fleet.artifact("7.0.28")
    sha256 = artifact.with_name("fpdemo-7.0.28.tar.gz.sha256").read_text(encoding="utf-8").split()[0]
    run = ansible("module_defaults.yml", fleet.write_inventory(),
                  extravars={"fp_state_file": STATE_FILE, "fp_artifact": str(artifact), "fp_sha256": sha256})
    assert run.returncode == 0, run.stdout[-4000:]

    def result(task: str) -> dict:
        return run.results(task)["grouped"]

    # lock, apply, health and defer wrote the file the group names; detect read it; rollback found there the
    # release the host ran before the patch (without it, it has none to go back to) and recorded the rollback.
    assert result("Lock the host")["changed"] is True
    assert result("Apply the patch")["changed"] is True
    assert result("Judge the health and record it")["judged"]  # the time it recorded the verdict at
    detected = result("Detect after the apply")
    assert (detected["version"], detected["state_error"]) == ("7.0.28", None)
    assert [(a["patch"], a["version"], a["from"]) for a in detected["applied"]] == [("FP-2025-14847", "7.0.28", "7.0.26")]
    assert [(d["patch"], d["until"]) for d in detected["deferred"]] == [("FP-2025-99999", "2026-03-07T01:00:00Z")]
    assert result("Roll back")["changed"] is True
    assert fleet.service_version("grouped") == "7.0.26"
    assert result("Unlock the host")["changed"] is True

    written = fleet.ssh("grouped", f"cat {STATE_FILE}; test ! -e {DEFAULT_STATE_FILE}")
    assert written.returncode == 0, f"{DEFAULT_STATE_FILE} was written, or {STATE_FILE} was not: {written.stderr}"
    state = json.loads(written.stdout)
    assert state["components"]["fpdemo"]["version"] == "7.0.26"
    assert [("judged" in a, a["version"]) for a in state["applied"]] == [(True, "7.0.28")]
    assert [(r["from"], r["to"]) for r in state["rollbacks"]] == [("7.0.28", "7.0.26")]
    assert [d["patch"] for d in state["deferred"]] == ["FP-2025-99999"]
    assert state.get("lease") is None
