"""Controller files found as Ansible finds them, in one real ansible-playbook run started from another directory.

The lookups (manifest, verified_artifact, notifications) and the action plugins (health, apply) are given relative
paths; the run starts in ``elsewhere/``, beside the project, so a path relative to the current directory would not
be found. Each case is one task of one playbook (failing ones with ``ignore_errors``), whose registered results
the tests check:

    project/play.yml                      the playbook
    project/FP-2025-14847.yml             beside the playbook; its artifact (signed) in project/artifacts/
    project/files/FP-bad.yml              in the playbook's files/, invalid
    project/FP-health.yml                 beside the playbook; a command probe, for health on localhost
    project/keys/allowed_signers          relative to the playbook's directory
    project/files/notifications.yml       in the playbook's files/
    project/roles/patcher/files/FP-role.yml   in a role's files/
    inventory/hosts.yml, inventory/FP-inventory.yml   beside the inventory
    elsewhere/FP-cwd-only.yml             in the current directory only: never found
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import ansible_env, artifacts, signing

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "manifests" / "FP-2025-14847.yml"
NOTIFICATIONS = REPO / "docs" / "notifications.example.yml"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
ACME = {"region": "r", "customer": "acme", "version": "7.0.26",
        "maintenance_window": {"days": ["sat"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}}

PLAY = """\
- name: Find the controller's files through the search path
  hosts: localhost
  gather_facts: false
  vars:
    fp_results: {}
  tasks:
    - name: manifest beside the playbook
      ansible.builtin.set_fact:
        fp_record: "{{ lookup('fleetpatch.rollout.manifest', 'FP-2025-14847.yml') }}"

    - name: manifest in a role's files/
      ansible.builtin.include_role:
        name: patcher

    - name: manifest beside the inventory
      ansible.builtin.set_fact:
        fp_inventory_record: "{{ lookup('fleetpatch.rollout.manifest', 'FP-inventory.yml') }}"

    - name: manifest in the current directory only
      ansible.builtin.set_fact:
        fp_unused: "{{ lookup('fleetpatch.rollout.manifest', 'FP-cwd-only.yml') }}"
      register: fp_cwd_only
      ignore_errors: true

    - name: several manifests at once
      ansible.builtin.set_fact:
        fp_several: "{{ query('fleetpatch.rollout.manifest', 'FP-2025-14847.yml', 'FP-inventory.yml') | map(attribute='manifest_file') }}"

    - name: an invalid manifest
      ansible.builtin.set_fact:
        fp_unused: "{{ lookup('fleetpatch.rollout.manifest', 'FP-bad.yml') }}"
      register: fp_invalid
      ignore_errors: true

    - name: artifact of the record, signers relative to the playbook
      ansible.builtin.set_fact:
        fp_artifact_of_record: "{{ lookup('fleetpatch.rollout.verified_artifact', fp_record, allowed_signers='keys/allowed_signers') }}"

    - name: artifact of a manifest path
      ansible.builtin.set_fact:
        fp_artifact_of_path: "{{ lookup('fleetpatch.rollout.verified_artifact', 'FP-2025-14847.yml', allowed_signers='keys/allowed_signers') }}"

    - name: artifact with a missing signers file
      ansible.builtin.set_fact:
        fp_unused: "{{ lookup('fleetpatch.rollout.verified_artifact', fp_record, allowed_signers='keys/nobody') }}"
      register: fp_signers_missing
      ignore_errors: true

    - name: notifications in the playbook's files/, planned with
      ansible.builtin.set_fact:
        fp_plan: >-
          {{ fp_hosts | fleetpatch.rollout.wave_plan(fp_record, now='2025-12-19T01:00:00Z',
                                                     notifications=lookup('fleetpatch.rollout.notifications', 'notifications.yml')) }}

    - name: notifications nowhere
      ansible.builtin.set_fact:
        fp_unused: "{{ lookup('fleetpatch.rollout.notifications', 'told.yml') }}"
      register: fp_notifications_missing
      ignore_errors: true

    - name: health with a manifest beside the playbook
      fleetpatch.rollout.health:
        manifest: FP-health.yml
      register: fp_health

    - name: health with a missing manifest
      fleetpatch.rollout.health:
        manifest: FP-missing.yml
      register: fp_health_missing
      ignore_errors: true

    - name: apply (check mode) with manifest and signers relative to the playbook
      fleetpatch.rollout.apply:
        manifest: FP-2025-14847.yml
        allowed_signers: keys/allowed_signers
        install_dir: "{{ fp_srv }}"
        state_file: "{{ fp_state_file }}"
      check_mode: true
      register: fp_apply

    - name: apply with a missing signers file
      fleetpatch.rollout.apply:
        manifest: FP-2025-14847.yml
        allowed_signers: keys/nobody
        install_dir: "{{ fp_srv }}"
        state_file: "{{ fp_state_file }}"
      register: fp_apply_signers_missing
      ignore_errors: true

    - name: write the results
      ansible.builtin.copy:
        content: >-
          {{ {'record': fp_record, 'role_record': fp_role_record, 'inventory_record': fp_inventory_record,
              'cwd_only': fp_cwd_only, 'several': fp_several, 'invalid': fp_invalid,
              'notifications_missing': fp_notifications_missing, 'artifact_of_record': fp_artifact_of_record, 'artifact_of_path': fp_artifact_of_path,
              'signers_missing': fp_signers_missing, 'plan': fp_plan, 'health': fp_health, 'health_missing': fp_health_missing,
              'apply': fp_apply, 'apply_signers_missing': fp_apply_signers_missing} | to_json }}
        dest: "{{ fp_results_file }}"
        mode: "0600"
"""

ROLE_TASKS = """\
- name: Read the role's own manifest
  ansible.builtin.set_fact:
    fp_role_record: "{{ lookup('fleetpatch.rollout.manifest', 'FP-role.yml') }}"
"""


def _manifest(**changes):
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(results, directories)`` of the one run."""
    root = tmp_path_factory.mktemp("search-path")
    project, inventory, elsewhere = root / "project", root / "inventory", root / "elsewhere"
    for directory in (project / "files", project / "keys", project / "artifacts", project / "roles" / "patcher" / "tasks",
                      project / "roles" / "patcher" / "files", inventory, elsewhere, root / "srv" / "releases" / "7.0.26"):
        directory.mkdir(parents=True)
    built = artifacts.build("7.0.28", project / "artifacts")
    key, allowed, identity = signing.make_signer(root / "signer")
    (project / "keys" / "allowed_signers").write_text(allowed.read_text(encoding="utf-8"), encoding="utf-8")
    signing.sign(built.path, key)
    artifact = {"path": "artifacts/fpdemo-7.0.28.tar.gz", "sha256": built.sha256, "signature": "artifacts/fpdemo-7.0.28.tar.gz.sig",
                "signer": identity}
    (project / "FP-2025-14847.yml").write_text(_manifest(artifact=artifact), encoding="utf-8")
    health = yaml.safe_load(_manifest())
    health["monitoring"] = {"probes": [{"name": "true", "type": "command", "command": ["/bin/true"]}], "soak": "0s"}
    (project / "FP-health.yml").write_text(yaml.safe_dump(health), encoding="utf-8")
    (project / "files" / "FP-bad.yml").write_text(_manifest(**{"class": "reboot"}), encoding="utf-8")
    (project / "files" / "notifications.yml").write_text(NOTIFICATIONS.read_text(encoding="utf-8"), encoding="utf-8")
    (project / "roles" / "patcher" / "tasks" / "main.yml").write_text(ROLE_TASKS, encoding="utf-8")
    (project / "roles" / "patcher" / "files" / "FP-role.yml").write_text(_manifest(id="FP-2025-0001"), encoding="utf-8")
    (inventory / "FP-inventory.yml").write_text(_manifest(id="FP-2025-0002"), encoding="utf-8")
    (elsewhere / "FP-cwd-only.yml").write_text(_manifest(id="FP-2025-0003"), encoding="utf-8")
    (project / "play.yml").write_text(PLAY, encoding="utf-8")
    (root / "srv" / "current").symlink_to("releases/7.0.26")
    hosts = inventory / "hosts.yml"
    hostvars = {"ansible_connection": "local", "fp_hosts": {"acme-1": ACME}, "fp_srv": str(root / "srv"),
                "fp_state_file": str(root / "state.json"), "fp_results_file": str(root / "results.json")}
    hosts.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": hostvars}}}), encoding="utf-8")

    env = ansible_env.prepare(root / "ansible")
    try:
        result = subprocess.run([str(PLAYBOOK), "-i", "../inventory/hosts.yml", "../project/play.yml"], cwd=elsewhere, env=env,
                                capture_output=True, text=True, timeout=300, check=False)
    finally:
        ansible_env.close_connections(env)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((root / "results.json").read_text(encoding="utf-8"))
    return results, {"root": root, "project": project, "inventory": inventory, "built": built, "identity": identity}


def _searched(message):
    """The paths an error lists after its ``searched:`` line."""
    return [line.strip() for line in message.split("searched:", 1)[1].splitlines() if line.strip()]


def test_manifest_lookup_finds_beside_the_playbook_in_a_role_and_beside_the_inventory(run):
    results, dirs = run
    project = dirs["project"]
    record = results["record"]
    assert (record["id"], record["manifest_file"]) == ("FP-2025-14847", str(project / "FP-2025-14847.yml"))
    assert record["artifact"]["path"] == str(project / "artifacts" / "fpdemo-7.0.28.tar.gz")  # relative to the manifest file
    role = results["role_record"]
    assert (role["id"], role["manifest_file"]) == ("FP-2025-0001", str(project / "roles" / "patcher" / "files" / "FP-role.yml"))
    found = results["inventory_record"]
    assert (found["id"], found["manifest_file"]) == ("FP-2025-0002", str(dirs["inventory"] / "FP-inventory.yml"))


def test_a_file_in_the_current_directory_only_is_not_found_and_the_error_lists_the_paths_searched(run):
    results, dirs = run
    message = results["cwd_only"]["msg"]
    assert "fleetpatch.rollout.manifest: cannot find 'FP-cwd-only.yml' relative to the role, the playbook or the inventory; searched:" in message
    project, inventory = dirs["project"], dirs["inventory"]
    assert _searched(message) == [str(project / "files" / "FP-cwd-only.yml"), str(project / "FP-cwd-only.yml"),
                                  str(inventory / "FP-cwd-only.yml")]


def test_manifest_lookup_of_several_terms_and_of_an_invalid_manifest(run):
    results, dirs = run
    assert results["several"] == [str(dirs["project"] / "FP-2025-14847.yml"), str(dirs["inventory"] / "FP-inventory.yml")]
    assert "fleetpatch.rollout.manifest: FP-bad.yml: class: 'reboot' is not a hot patch" in results["invalid"]["msg"]


def test_verified_artifact_lookup_checks_the_signature_with_signers_relative_to_the_playbook(run):
    results, dirs = run
    built = dirs["built"]
    expected = {"checked": True, "sha256": built.sha256, "size": built.path.stat().st_size, "signed_by": dirs["identity"]}
    assert results["artifact_of_record"] == expected
    assert results["artifact_of_path"] == expected
    message = results["signers_missing"]["msg"]
    assert "fleetpatch.rollout.verified_artifact: allowed_signers: cannot find 'keys/nobody'" in message
    assert _searched(message) == [str(dirs["project"] / "files" / "keys" / "nobody"), str(dirs["project"] / "keys" / "nobody"),
                                  str(dirs["inventory"] / "keys" / "nobody")]


def test_notifications_lookup_feeds_the_wave_plan(run):
    results, _dirs = run
    plan = results["plan"]
    # acme was told at 2025-12-18T10:00Z, 15 h before now: its closed window is overridden
    assert ([entry["host"] for entry in plan["overrides"]], plan["deferred"]) == (["acme-1"], [])
    message = results["notifications_missing"]["msg"]
    assert "fleetpatch.rollout.notifications: cannot find 'told.yml' relative to the role, the playbook or the inventory; searched:" in message
    assert len(_searched(message)) == 3


def test_action_plugins_find_a_relative_manifest_and_signers(run):
    results, dirs = run
    health = results["health"]
    assert (health.get("failed", False), health["healthy"], sorted(health["metrics"])) == (False, True, ["true"])
    apply = results["apply"]
    assert (apply.get("failed", False), apply["changed"], apply["previous"], apply["version"]) == (False, True, "7.0.26", "7.0.28")
    project, inventory = dirs["project"], dirs["inventory"]
    missing = results["health_missing"]
    assert missing["failed"] is True
    assert missing["msg"].startswith("fleetpatch.rollout.health: manifest: cannot find 'FP-missing.yml' relative to the role, the playbook or the "
                                     "inventory; searched:")
    assert _searched(missing["msg"]) == [str(project / "files" / "FP-missing.yml"), str(project / "FP-missing.yml"),
                                         str(inventory / "FP-missing.yml")]
    signers = results["apply_signers_missing"]
    assert signers["failed"] is True
    assert signers["msg"].startswith("fleetpatch.rollout.apply: allowed_signers: cannot find 'keys/nobody'")
    assert not (dirs["root"] / "state.json").exists()  # neither apply wrote anything
