"""ManifestAction, the controller half of health and rollback: a real ansible-playbook run on localhost (-c local).

An action plugin needs a task, a connection, a loader and a templar that only a play sets up, so it is run the
way Ansible runs it, once for the whole table: each case is one task of one playbook, whose registered result
the table then checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import ansible_env
from fleetpatch_dev.loopback import http_server

REPO = Path(__file__).resolve().parents[4]
DEMO = REPO / "manifests" / "FP-2025-14847.yml"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
NOT_HOT = (
    "is not a hot patch: fleetpatch cannot apply it (it applies class 'hot', a reload, or 'restart', a service restart; "
    "a patch that needs a reboot or a schema or configuration migration is out of its scope)"
)
# what the module makes of the demo manifest's monitoring.thresholds (floats, by its argument spec)
DEMO_THRESHOLDS = {"max_error_rate": 0.0, "max_p95_ms": 250.0, "baseline_p95_factor": 5.0, "peers_p95_factor": 5.0, "latency_floor_ms": 20.0}


def cases(url):
    """``{name: (task, expected)}``: ``url`` is a live HTTP server's; ``{tmp}`` stands for the run's directory.

    ``probes`` expects the names of the probes that ran, ``samples`` the sample counts they had.
    """
    probe = {"name": "ok", "type": "http", "url": f"{url}/ok"}
    return {
        # the manifest gives thresholds, interval, samples and consecutive_failures; the task's probes, samples and soak win
        "health_from_manifest": (
            {"fleetpatch.rollout.health": {"manifest": str(DEMO), "probes": [probe], "samples": 3, "soak": 0}},
            {"failed": False, "healthy": True, "thresholds": DEMO_THRESHOLDS, "probes": ["ok"], "samples": {3}, "rounds": 1,
             "consecutive_failures": 3},
        ),
        # the task's consecutive_failures wins over the manifest's
        "health_consecutive_failures_from_task": (
            {"fleetpatch.rollout.health": {"manifest": str(DEMO), "probes": [probe], "samples": 1, "soak": 0, "consecutive_failures": 1}},
            {"failed": False, "healthy": True, "probes": ["ok"], "rounds": 1, "consecutive_failures": 1},
        ),
        # no manifest: the task's own arguments go through as they are
        "health_without_manifest": (
            {"fleetpatch.rollout.health": {"probes": [probe], "samples": 2, "soak": 0, "thresholds": {"max_p95_ms": 5000}}},
            {"failed": False, "healthy": True, "thresholds": {"max_error_rate": 0.0, "max_p95_ms": 5000.0, "latency_floor_ms": 1.0},
             "probes": ["ok"], "samples": {2}, "rounds": 1},
        ),
        # the manifest's probes are used when the task names none (its vulnerability check is turned off here);
        # whether the demo service answers on this machine does not matter: which probes ran, and how often
        # (consecutive_failures 1: a breach is not confirmed by more rounds, 5 s apart)
        "health_probes_from_manifest": (
            {"fleetpatch.rollout.health": {"manifest": str(DEMO), "soak": 0, "check_vulnerability": False, "fail_on_unhealthy": False,
                                           "consecutive_failures": 1}},
            {"failed": False, "thresholds": DEMO_THRESHOLDS, "probes": ["health", "port"], "samples": {10}, "rounds": 1},
        ),
        "health_missing_manifest": (
            {"fleetpatch.rollout.health": {"manifest": "{tmp}/FP-2025-00000.yml", "probes": [probe]}},
            {"failed": True, "msg": "fleetpatch.rollout.health: FP-2025-00000.yml: cannot read {tmp}/FP-2025-00000.yml: No such file or directory"},
        ),
        "health_invalid_manifest": (
            {"fleetpatch.rollout.health": {"manifest": "{tmp}/bad.yml", "probes": [probe]}},
            {"failed": True, "msg": "fleetpatch.rollout.health: bad.yml: artifact.sha256: 'abc' does not match '^[0-9a-f]{64}$'\n"
                                    f"bad.yml: class: 'reboot' {NOT_HOT}"},
        ),
        "rollback_missing_manifest": (
            {"fleetpatch.rollout.rollback": {"manifest": "{tmp}/FP-2025-00000.yml"}},
            {"failed": True, "msg": "fleetpatch.rollout.rollback: FP-2025-00000.yml: cannot read {tmp}/FP-2025-00000.yml: No such file or directory"},
        ),
        # the manifest names the component and the version to roll back from; the task's install runs another one
        "rollback_from_manifest": (
            {"fleetpatch.rollout.rollback": {"manifest": str(DEMO), "install_dir": "{tmp}/srv", "state_file": "{tmp}/state.json"},
             "check_mode": True},
            {"failed": False, "changed": False, "component": "fpdemo", "version": "7.0.26", "msg": "fpdemo runs 7.0.26, not 7.0.28: nothing to roll back"},
        ),
    }


@pytest.fixture(scope="module")
def http_url():
    with http_server({"/ok": (200, b"ok")}, default=(404, b"ok")) as (url, _port):
        yield url


def _fill(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", tmp)
    if isinstance(value, dict):
        return {key: _fill(item, tmp) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, tmp) for item in value]
    return value


@pytest.fixture(scope="module")
def run(http_url, tmp_path_factory):
    """``(results by case name, the test directory)`` of one real playbook run with every case as a task."""
    tmp_path = tmp_path_factory.mktemp("action")
    tmp = str(tmp_path)
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "current").symlink_to("releases/7.0.26")
    bad = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    bad["class"] = "reboot"
    bad["artifact"]["sha256"] = "abc"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad), encoding="utf-8")
    tasks = []
    for name, (task, _expected) in cases(http_url).items():
        tasks.append({"name": name, **_fill(task, tmp), "register": name, "ignore_errors": True})
    names = list(cases(http_url))
    tasks.append({"name": "write the results", "ansible.builtin.copy": {
        "content": "{{ {" + ", ".join(f"'{name}': {name}" for name in names) + "} | to_json }}", "dest": f"{tmp}/results.json"}})
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False), encoding="utf-8")
    env = ansible_env.prepare(tmp_path / "ansible")
    try:
        result = subprocess.run([str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook)], env=env, capture_output=True, text=True,
                                timeout=300, check=False)
    finally:
        ansible_env.close_connections(env)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / "results.json").read_text(encoding="utf-8")), tmp


@pytest.mark.slow
@pytest.mark.parametrize("name", list(cases("http://127.0.0.1:1")))
def test_manifest_action(run, http_url, name):
    results, tmp = run
    found = results[name]
    _task, expected = cases(http_url)[name]
    expected = _fill(expected, tmp)
    seen = {"failed": bool(found.get("failed"))}
    for key in expected:
        if key == "probes":
            seen[key] = sorted(found["metrics"])
        elif key == "samples":
            seen[key] = {metrics["samples"] for metrics in found["metrics"].values()}
        elif key != "failed":
            seen[key] = found.get(key)
    assert seen == expected


@pytest.mark.parametrize(("task_vars", "name", "expected"), [
    ({"who": "bob"}, "who", "bob"),
    ({"who": "{{ first }}", "first": "alice"}, "who", "alice"),
    ({"who": 42}, "who", 42),
    ({}, "who", None),                               # not set
    ({"who": "{{ nowhere }}"}, "who", None),         # cannot be templated
])
def test_templated_var(task_vars, name, expected):
    """Variables as a play hands them to an action: templates from a playbook or inventory are trusted."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import templated_var

    trusted = {key: trust_as_template(value) if isinstance(value, str) else value for key, value in task_vars.items()}
    assert templated_var(Templar(loader=DataLoader(), variables=trusted), trusted, name) == expected
