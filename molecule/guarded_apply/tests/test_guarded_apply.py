"""What the guarded_apply role left on each host, seen through pytest-testinfra over SSH.

Molecule's testinfra verifier runs this file with ``--connection=ansible --ansible-inventory=<its inventory>
--hosts=fleet`` (molecule.yml: verifier.options): the ``host`` fixture is each fleet host in turn, reached by SSH
with the inventory's own connection settings. What to expect is read from the change record the scenario
converged (the inventory's ``guarded_apply_manifest``), so a copy of this scenario with another patch needs no edit.
"""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

STATE_FILE = "/var/lib/fleetpatch/state.json"


@pytest.fixture
def record(host):
    """The change record converge applied: the file named by the inventory's guarded_apply_manifest."""
    with open(host.ansible.get_variables()["guarded_apply_manifest"], encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def install_dir(record):
    return record.get("install_dir", f"/srv/{record['component']}")


def test_current_points_at_the_fixed_release(host, record, install_dir):
    current = host.file(f"{install_dir}/current")
    assert current.is_symlink
    assert current.linked_to == f"{install_dir}/releases/{record['fixed_version']}"
    assert host.file(f"{install_dir}/current/VERSION").content_string == f"{record['fixed_version']}\n"


def test_the_state_file_records_the_patch_applied_and_judged_healthy(host, record):
    state = json.loads(host.file(STATE_FILE).content_string)
    component = state["components"][record["component"]]
    assert component["version"] == record["fixed_version"]
    (applied,) = state["applied"]  # applied once: the idempotence converge recorded nothing more
    assert (applied["patch"], applied["component"], applied["version"]) == (record["id"], record["component"], record["fixed_version"])
    assert applied["from"] == component["previous"] != record["fixed_version"]
    assert applied.get("judged"), "the patch was applied but its health never judged"
    assert state.get("rollbacks", []) == [] and state.get("journal") is None and state.get("lease") is None


def test_the_service_answers_the_fixed_version(host, record):
    # Asked on the host itself, as its own health probes ask it (version_url).
    script = f"import urllib.request; print(urllib.request.urlopen({record['version_url']!r}, timeout=10).read().decode())"
    answer = json.loads(host.check_output(f"/usr/bin/python3 -c {shlex.quote(script)}"))
    assert (answer["component"], answer["version"]) == (record["component"], record["fixed_version"])
