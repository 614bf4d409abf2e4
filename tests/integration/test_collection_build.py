"""The collection as an operator gets it: built by ansible-galaxy, installed from the tarball, documented.

The tarball must carry everything the collection runs with and the operator's documentation (docs/, the manifest
field reference and its example), and nothing of its development material; every file the documentation points
at must be in it too. Once installed, ansible-doc must render every plugin in plugins/ from the installed copy.
Plugins are found by walking plugins/, so a new plugin is covered the moment its file exists.
Filter and test plugins are expected one per file, the file named after the plugin (or documented by a
``<name>.yml`` next to it), as ansible-doc looks them up by that name.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
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
REQUIREMENTS = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
                if line.split("#")[0].strip()]
BINDEP = [line.strip() for line in (REPO / "bindep.txt").read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
EE_DEFINITION = REPO / "awx" / "execution-environment.yml"
# What ansible-builder installs into every execution environment itself, and so leaves out of a collection's requirements.
EE_PROVIDED = ("ansible-core", "pyyaml")

# Development material that must never be shipped.
LEFT_OUT = ("tests", "tools", "demo", "scripts", "bench", "molecule", ".config", ".ci", ".build", ".venv", ".git")

# What the collection runs with, and its documentation: every file under these, in the checkout, must be in the tarball.
SHIPPED_DIRS = ("plugins", "roles", "playbooks", "meta", "inventories", "bin", "docs", "manifests")

# The manifest field reference, which the plugins' documentation and the docs send operators to.
MANIFEST_REFERENCE = "manifests/README.md"

# The operator's documentation whose references to files must resolve in the tarball: every Markdown file under these.
# (The top-level README is also the repository's guide for developers, and names their tooling.)
DOC_DIRS = ("docs", "manifests")

# A Markdown link's target, and a code span; fenced code blocks are left out (commands and examples, not references).
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
FENCED_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)

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


def test_tarball_carries_the_manifest_reference_and_the_docs(members: set[str]) -> None:
    docs = {p for top in DOC_DIRS for p in _tracked_files(top) if p.endswith(".md")}
    assert MANIFEST_REFERENCE in docs
    assert any(p.startswith("docs/") for p in docs)
    assert sorted(docs - members) == []


def _file_references(doc: str, text: str) -> list[tuple[str, str]]:
    """(reference, the path it names in the collection) of every file a Markdown document points at.

    A link's relative target is resolved from the document's directory, as Markdown renderers do. A code span
    naming a relative path whose first part is at the top of the repository (``plugins/...``, ``tools/...``) is
    resolved from the collection's root, which is how the documentation names files in prose.
    """
    text = FENCED_BLOCK.sub("", text)
    found = []
    for match in MARKDOWN_LINK.finditer(text):
        target = match.group(1).split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue
        found.append((match.group(0), posixpath.normpath(posixpath.join(posixpath.dirname(doc), target))))
    for match in CODE_SPAN.finditer(text):
        path = match.group(1).rstrip("/")
        top = path.split("/", 1)[0]
        if "/" in path and top not in ("", ".", "..", "~") and (REPO / top).exists():
            found.append((match.group(0), posixpath.normpath(path)))
    return found


def test_every_file_the_docs_point_at_is_in_the_tarball(tarball: Path, members: set[str]) -> None:
    docs = sorted(m for m in members if m.split("/")[0] in DOC_DIRS and m.endswith(".md"))
    assert MANIFEST_REFERENCE in docs
    missing = []
    checked = 0
    with tarfile.open(tarball) as archive:
        by_name = {m.name.removeprefix("./"): m for m in archive.getmembers()}
        for doc in docs:
            member = archive.extractfile(by_name[doc])
            assert member is not None
            for reference, path in _file_references(doc, member.read().decode("utf-8")):
                checked += 1
                if path.startswith("..") or not (path in members or any(m.startswith(path + "/") for m in members)):
                    missing.append(f"{doc}: {reference} -> {path}")
    assert missing == []
    assert checked, "the docs point at no file: the reference patterns no longer match how they name files"


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


# The plugins by ansible-doc type: one ansible-doc run renders every plugin of a type (ansible-core starts once per
# type, not once per plugin).
PLUGIN_TYPES = {doc_type: [name for t, name in PLUGINS if t == doc_type] for doc_type in sorted({t for t, _name in PLUGINS})}


# Defined only when there are plugins: pytest reports an empty parameter set as a skipped test, and a
# collection without plugins has nothing to skip (the tests above still build, install and list it).
if PLUGINS:

    @pytest.mark.parametrize("doc_type", sorted(PLUGIN_TYPES))
    def test_plugin_documentation_renders(installed: Path, doc_type: str) -> None:
        names = PLUGIN_TYPES[doc_type]
        assert all(names), f"plugins/{doc_type}/ is not a plugin type ansible-doc knows: {sorted(DOC_TYPES)}"
        shown = _run(VENV_BIN / "ansible-doc", "-t", doc_type, *names, cwd=installed, env=_ansible_env(installed))
        output = shown.stdout + shown.stderr
        assert shown.returncode == 0, output
        assert "ERROR" not in output and "was not found" not in output, output
        # each plugin rendered, from the installed copy, not from some other fleetpatch.rollout on the machine
        installed_dir = installed / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"] / "plugins"
        rendered = re.findall(rf"^> {doc_type.upper()} (\S+) \({re.escape(str(installed_dir))}/", shown.stdout, re.MULTILINE)
        assert sorted(rendered) == sorted(names), output


ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "meta" / "argument_specs.yml").is_file())


@pytest.mark.parametrize("role", ROLES)
def test_role_documentation_lists_every_variable_of_its_argument_spec(installed: Path, role: str) -> None:
    """ansible-doc -t role, from the installed copy, shows each entry point with every option of its spec (which
    tests/unit/roles/test_argument_specs.py compares with what the role's tasks read)."""
    shown = _run(VENV_BIN / "ansible-doc", "-t", "role", f"{FQCN}.{role}", "--json", cwd=installed, env=_ansible_env(installed))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    (doc,) = json.loads(shown.stdout).values()
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    assert sorted(doc["entry_points"]) == sorted(spec)
    for entry, documented in spec.items():
        shown_options = doc["entry_points"][entry].get("options") or {}
        assert sorted(shown_options) == sorted(documented.get("options") or {}), entry
        assert all(option.get("description") for option in shown_options.values()), entry


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()


def test_execution_environment_context_renders_with_the_built_collection(tarball: Path, tmp_path: Path) -> None:
    definition = yaml.safe_load(EE_DEFINITION.read_text(encoding="utf-8"))
    # The EE installs the ansible-core the collection supports, and the tarball that galaxy.yml's version builds.
    core = next(line for line in REQUIREMENTS if _requirement_name(line) == "ansible-core")
    assert definition["dependencies"]["ansible_core"]["package_pip"] == core
    assert [entry["src"] for entry in definition["additional_build_files"]] == [tarball.name]
    shutil.copy(EE_DEFINITION, tmp_path / EE_DEFINITION.name)
    shutil.copy(tarball, tmp_path / tarball.name)
    done = _run(VENV_BIN / "ansible-builder", "create", "-f", EE_DEFINITION.name, "-c", "context", "--output-filename", "Containerfile",
                cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    context = tmp_path / "context"
    assert (context / "_build" / "collections" / tarball.name).read_bytes() == tarball.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert galaxy == {"collections": [{"name": f"/build/collections/{tarball.name}", "type": "file"}]}
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert f'ARG ANSIBLE_INSTALL_REFS="{core} ansible-runner' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    # The collection is installed from the tarball, then its own dependencies are found by introspection and installed.
    galaxy_step = containerfile.index("ansible-galaxy collection install")
    assert galaxy_step < containerfile.index("introspect.py introspect") < containerfile.index("install-from-bindep")
    # Every job of the image writes the audit trail (a credential type may not set ANSIBLE_* variables in AWX).
    assert containerfile.index("\nENV ANSIBLE_CALLBACKS_ENABLED=fleetpatch.rollout.audit\n") > galaxy_step


def test_execution_environment_introspection_finds_every_dependency(installed: Path) -> None:
    done = _run(VENV_BIN / "ansible-builder", "introspect", installed, cwd=installed)
    assert done.returncode == 0, done.stdout + done.stderr
    found = yaml.safe_load(done.stdout)

    def lines(kind: str) -> list[str]:
        return [entry.split("#")[0].strip() for entry in found[kind]]

    assert lines("python") == [line for line in REQUIREMENTS if _requirement_name(line) not in EE_PROVIDED]
    assert lines("system") == BINDEP


def test_bindep_names_packages_this_debian_controller_has() -> None:
    # bindep parses the file and checks the dpkg entries against this Debian machine, which runs the collection.
    done = _run(VENV_BIN / "bindep", "--brief", "--file", REPO / "bindep.txt", cwd=REPO)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
