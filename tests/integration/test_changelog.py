"""The changelog as antsibull-changelog will release it: a dry run of ``antsibull-changelog release`` in a copy.

antsibull-changelog announces new modules, plugins and roles itself, from their ``version_added`` (a role's in the
``main`` entry point of its ``meta/argument_specs.yml``), and new playbooks from ``add object.playbook`` sections of
the fragments. So the release must list every one of them, and no fragment may announce one in prose as well.
``antsibull-changelog lint`` (the fragments' form) is a stage of scripts/test.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
VERSION = GALAXY["version"]

# plugins/ directories whose files antsibull-changelog does not announce: shared code and documentation, and action
# plugins, which are the modules of the same name.
NOT_ANNOUNCED = {"doc_fragments", "module_utils", "plugin_utils", "action", "__pycache__"}

# A change entry that announces something antsibull-changelog announces itself.
ANNOUNCEMENT = re.compile(r"\bnew (?:\w+ )?(?:modules?|filters?|roles?|callbacks?|lookups?|actions?|plugins?|playbooks?)\b",
                          re.IGNORECASE)


def _collection_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return [p for p in listed.stdout.split("\0") if p and (REPO / p).is_file()]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The release entry of ``changelogs/changelog.yaml`` after a release of this version in a copy of the collection."""
    copy = tmp_path_factory.mktemp("changelog") / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    copy.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in _collection_files():
            archive.add(REPO / path, arcname=path)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        archive.extractall(copy, filter="tar")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    done = subprocess.run([str(VENV_BIN / "antsibull-changelog"), "release", "--version", VERSION], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (copy / "CHANGELOG.rst").is_file()
    changelog = yaml.safe_load((copy / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    return changelog["releases"][VERSION]


def _announced(entries: list[dict]) -> list[str]:
    return sorted(entry["name"] for entry in entries)


def test_the_release_announces_every_module_plugin_role_and_playbook(release: dict) -> None:
    plugins = REPO / "plugins"
    expected = {
        directory.name: sorted({p.stem for p in directory.iterdir() if p.suffix == ".py" and p.name != "__init__.py"})
        for directory in sorted(plugins.iterdir()) if directory.is_dir() and directory.name not in NOT_ANNOUNCED
    }
    assert _announced(release.get("modules", [])) == expected.pop("modules")
    assert {kind: _announced(entries) for kind, entries in release.get("plugins", {}).items()} == \
        {kind: names for kind, names in expected.items() if names}
    objects = release.get("objects", {})
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert _announced(objects.get("role", [])) == roles, "a role's meta/argument_specs.yml needs version_added in main"
    playbooks = sorted(p.stem for p in (REPO / "playbooks").glob("*.yml"))
    assert _announced(objects.get("playbook", [])) == playbooks, "a new playbook needs an `add object.playbook` fragment"


def test_no_change_entry_announces_what_antsibull_changelog_announces(release: dict) -> None:
    announcing = [entry for section, entries in release.get("changes", {}).items() if section != "release_summary"
                  for entry in entries if ANNOUNCEMENT.search(entry)]
    assert announcing == []
