"""The fleetpatch.rollout.manifest filter: called directly, and through a real ansible templar."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from fleetpatch_dev import ansible_env

from ansible_collections.fleetpatch.rollout.plugins.filter.manifest import FilterModule, manifest

REPO = Path(__file__).resolve().parents[4]
DEMO = REPO / "manifests" / "FP-2025-14847.yml"
ANSIBLE = Path(sys.executable).parent / "ansible"


def test_filter_is_registered():
    assert FilterModule().filters() == {"manifest": manifest}


def test_demo_manifest():
    result = manifest(str(DEMO))
    assert result["id"] == "FP-2025-14847"
    assert result["artifact"]["path"] == str(REPO / ".build" / "artifacts" / "fpdemo-7.0.28.tar.gz")
    assert result["notify"]["lead_time_seconds"] == 54000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "fleetpatch.rollout.manifest: the input must be the path of a manifest file (a string), got NoneType"),
        (["m.yml"], "fleetpatch.rollout.manifest: the input must be the path of a manifest file (a string), got list"),
        ({"id": "FP-2025-14847"}, "fleetpatch.rollout.manifest: the input must be the path of a manifest file (a string), got dict"),
        ("  ", "fleetpatch.rollout.manifest: the input must be the path of a manifest file, got an empty string"),
    ],
)
def test_bad_input(value, message):
    with pytest.raises(AnsibleFilterError) as error:
        manifest(value)
    assert error.value.message == message


def test_invalid_manifest(tmp_path):
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["class"] = "schema_migration"
    data["artifact"]["sha256"] = "abc"
    path = tmp_path / "FP-2025-14847.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(AnsibleFilterError) as error:
        manifest(str(path))
    assert error.value.message.splitlines() == [
        "fleetpatch.rollout.manifest: FP-2025-14847.yml: artifact.sha256: 'abc' does not match '^[0-9a-f]{64}$'",
        "FP-2025-14847.yml: class: 'schema_migration' is not a hot patch: fleetpatch cannot apply it (it applies class 'hot', "
        "a reload, or 'restart', a service restart; a patch that needs a reboot or a schema or configuration migration is out of its scope)",
    ]


def test_missing_file(tmp_path):
    with pytest.raises(AnsibleFilterError) as error:
        manifest(str(tmp_path / "FP-2025-00000.yml"))
    assert error.value.message == (
        f"fleetpatch.rollout.manifest: FP-2025-00000.yml: cannot read {tmp_path / 'FP-2025-00000.yml'}: No such file or directory"
    )


def _template(tmp_path, expression):
    """Run ``debug: msg=<expression>`` on localhost through the ansible command line; return (rc, its JSON)."""
    env = ansible_env.prepare(tmp_path / "ansible")
    try:
        result = subprocess.run(
            [str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.debug", "-a", f"msg={expression}"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        ansible_env.close_connections(env)  # removes its control-socket directory too
    _host, _sep, answer = result.stdout.partition("=>")
    return result.returncode, json.loads(answer)


@pytest.mark.slow
def test_through_ansible(tmp_path):
    rc, answer = _template(tmp_path, f"{{{{ '{DEMO}' | fleetpatch.rollout.manifest }}}}")
    assert rc == 0, answer
    assert answer["msg"]["fixed_version"] == "7.0.28"
    assert answer["msg"]["monitoring"]["soak_seconds"] == 300


@pytest.mark.slow
def test_error_through_ansible(tmp_path):
    rc, answer = _template(tmp_path, f"{{{{ '{tmp_path}/FP-2025-00000.yml' | fleetpatch.rollout.manifest }}}}")
    assert rc != 0
    assert "fleetpatch.rollout.manifest: FP-2025-00000.yml: cannot read" in answer["msg"]
