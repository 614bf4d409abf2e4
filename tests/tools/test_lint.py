"""scripts/lint fails when the collection meets only a lower ansible-lint profile than the one .ansible-lint requires.

ansible-lint exits 0 when its only findings are warnings, yet counts them against their rule's profile: a run that
printed "Profile 'production' was required, but 'min' profile passed" used to pass. The repository's own scripts/lint
and .ansible-lint run on a small collection made here, once clean and once with a single warning (jinja[spacing],
one of ansible-lint's default warnings, in the basic profile).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent

GALAXY = """\
---
namespace: fleetpatch
name: rollout
version: 0.1.0
readme: README.md
authors:
  - fleetpatch maintainers
description: A small collection that ansible-lint checks.
license:
  - GPL-3.0-or-later
tags:
  - linux
dependencies: {}
"""

PLAYBOOK = """\
---
- name: Say hello
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Print a greeting
      ansible.builtin.debug:
        msg: "%s"
"""


def _collection(root: Path, message: str) -> Path:
    """A collection that meets the production profile but for what ``message`` does, with the repository's lint setup."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "lint", root / "scripts" / "lint")
    shutil.copy2(REPO / ".ansible-lint", root / ".ansible-lint")
    (root / "galaxy.yml").write_text(GALAXY, encoding="utf-8")
    (root / "README.md").write_text("# fleetpatch.rollout\n", encoding="utf-8")
    (root / "meta").mkdir()
    (root / "meta" / "runtime.yml").write_text('---\nrequires_ansible: ">=2.19.0"\n', encoding="utf-8")
    (root / "changelogs").mkdir()
    (root / "changelogs" / "changelog.yaml").write_text("---\nancestor: null\nreleases: {}\n", encoding="utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "hello.yml").write_text(PLAYBOOK % message, encoding="utf-8")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "scripts" / "lint"), str(VENV)], cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize(
    ("message", "returncode", "last_line"),
    [
        ("{{ 'hello' }}", 0, "Profile 'production' was required, and it passed."),
        ("{{'hello'}}", 2, "Profile 'production' was required, but 'min' profile passed."),
    ],
    ids=["production", "a-warning-of-the-basic-profile"],
)
def test_lint_passes_only_when_the_required_profile_passed(tmp_path: Path, message: str, returncode: int, last_line: str) -> None:
    done = _lint(_collection(tmp_path / "collection", message))
    output = done.stdout + done.stderr
    assert done.returncode == returncode, output
    assert done.stderr.rstrip().splitlines()[-1].endswith(last_line), output
    if returncode:
        assert "jinja[spacing]" in output
