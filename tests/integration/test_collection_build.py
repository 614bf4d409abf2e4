"""The collection as an operator gets it: built by ansible-galaxy, installed from the tarball, documented.

The tarball must carry everything the collection runs with and nothing of its development material,
and once installed, ansible-doc must render every plugin in plugins/ from the installed copy.
Plugins are found by walking plugins/, so a new plugin is covered the moment its file exists.
Filter and test plugins are expected one per file, the file named after the plugin (or documented by a
``<name>.yml`` next to it), as ansible-doc looks them up by that name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"

# Development material that must never be shipped.
LEFT_OUT = ("tests", "tools", "demo", "manifests", "scripts", "bench", "molecule", ".config", ".ci", ".build", ".venv", ".git")

# What the collection runs with: every file under these, in the checkout, must be in the tarball.
SHIPPED_DIRS = ("plugins", "roles", "playbooks", "meta", "inventories", "bin")

# plugins/ subdirectories that hold no plugin ansible-doc can show: shared code and documentation, and
# action plugins, which are documented by the module of the same name.
NOT_DOCUMENTED = {"doc_fragments", "module_utils", "plugin_utils", "action", "terminal", "__pycache__"}

# ansible-doc's plugin types, by plugins/ directory name.
DOC_TYPES = {
    "modules": "module",
    **{name: name for name in ("become", "cache", "callback", "cliconf", "connection", "httpapi", "inventory",
                               "lookup", "netconf", "shell", "vars", "strategy", "test", "filter")},
}


def _plugins() -> list[tuple[str, str]]:
    """(ansible-doc type, FQCN) of every plugin file under plugins/, or (directory, "") for an unknown directory."""
    found: set[tuple[str, str]] = set()
    plugins = REPO / "plugins"
    if not plugins.is_dir():
        return []
    for directory in sorted(p for p in plugins.iterdir() if p.is_dir() and p.name not in NOT_DOCUMENTED):
        doc_type = DOC_TYPES.get(directory.name)
        files = [
            f for f in sorted(directory.rglob("*"))
            if f.is_file() and "__pycache__" not in f.parts and f.name != "__init__.py"
            and f.suffix in (".py", ".yml", ".yaml")
        ]
        if not files:
            continue
        if doc_type is None:
            found.add((directory.name, ""))
            continue
        for path in files:
            relative = path.relative_to(directory).with_suffix("")
            found.add((doc_type, f"{FQCN}.{'.'.join(relative.parts)}"))
    return sorted(found)


PLUGINS = _plugins()


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def _tracked_files(top: str) -> set[str]:
    """Files git would commit under top (tracked, plus untracked but not ignored), relative to the repository."""
    listed = _run("git", "ls-files", "-co", "--exclude-standard", "-z", "--", top, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    return {p for p in listed.stdout.split("\0") if p and (REPO / p).is_file()}


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    built = _run(VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO, cwd=out)
    assert built.returncode == 0, built.stdout + built.stderr
    path = out / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert path.is_file(), built.stdout
    return path


@pytest.fixture(scope="module")
def members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as archive:
        return {m.name.removeprefix("./").rstrip("/") for m in archive.getmembers()}


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding only the collection installed from the tarball."""
    path = tmp_path_factory.mktemp("collections")
    result = _run(VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", tarball, "-p", path,
                  cwd=path, env=_ansible_env(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def _ansible_env(collections: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def test_tarball_leaves_out_development_material(members: set[str]) -> None:
    shipped = sorted(m for m in members if m.split("/")[0] in LEFT_OUT or m.startswith(".venv"))
    assert shipped == []
    assert not [m for m in members if m.endswith((".pyc", ".tar.gz")) or "__pycache__" in m.split("/")]


def test_tarball_carries_what_the_collection_runs_with(tarball: Path, members: set[str]) -> None:
    required = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", GALAXY["readme"]}
    if (REPO / "LICENSE").is_file():
        required.add("LICENSE")
    for top in SHIPPED_DIRS:
        required |= {p for p in _tracked_files(top) if not p.endswith(".pyc")}
    assert sorted(required - members) == []

    with tarfile.open(tarball) as archive:
        manifest_file = archive.extractfile("MANIFEST.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    assert info["license"] == GALAXY["license"]


def test_installed_collection_is_found(installed: Path) -> None:
    target = installed / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    assert (target / "MANIFEST.json").is_file()
    listed = _run(VENV_BIN / "ansible-galaxy", "collection", "list", FQCN, "--format", "json", "-p", installed,
                  cwd=installed, env=_ansible_env(installed))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    versions = {name: meta["version"] for found in json.loads(listed.stdout).values() for name, meta in found.items()}
    assert versions == {FQCN: GALAXY["version"]}


def test_installed_audit_verifier_runs(installed: Path, tmp_path: Path) -> None:
    script = installed / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"] / "bin" / "fleetpatch-audit"
    assert os.access(script, os.X_OK)
    (tmp_path / "audit.jsonl").write_bytes(b"")
    done = _run(sys.executable, "-I", script, "verify", tmp_path / "audit.jsonl", "--no-head", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"OK {tmp_path / 'audit.jsonl'}: 0 records")


def test_module_list_names_every_module(installed: Path) -> None:
    listed = _run(VENV_BIN / "ansible-doc", "-t", "module", "-l", FQCN, "--json", cwd=installed, env=_ansible_env(installed))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "ERROR" not in listed.stdout + listed.stderr
    expected = sorted(name for doc_type, name in PLUGINS if doc_type == "module")
    assert sorted(json.loads(listed.stdout)) == expected


# Defined only when there are plugins: pytest reports an empty parameter set as a skipped test, and a
# collection without plugins has nothing to skip (the tests above still build, install and list it).
if PLUGINS:

    @pytest.mark.parametrize(("doc_type", "name"), PLUGINS, ids=[f"{t}:{n}" for t, n in PLUGINS])
    def test_plugin_documentation_renders(installed: Path, doc_type: str, name: str) -> None:
        assert name, f"plugins/{doc_type}/ is not a plugin type ansible-doc knows: {sorted(DOC_TYPES)}"
        shown = _run(VENV_BIN / "ansible-doc", "-t", doc_type, name, cwd=installed, env=_ansible_env(installed))
        output = shown.stdout + shown.stderr
        assert shown.returncode == 0, output
        assert "ERROR" not in output
        # rendered from the installed copy, not from some other fleetpatch.rollout on the machine
        assert str(installed) in shown.stdout
