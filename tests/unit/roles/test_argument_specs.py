"""Each role's meta/argument_specs.yml against what its tasks read, so the two cannot drift.

A role reads a variable when one of its task files, vars or defaults names it in a value (templates, conditions,
loops), when an action it calls reads it by default (fleetpatch.rollout.audit_event: the approver, implementer,
urgency, justification, verifier), or when a role it includes reads it and the include does not set it. A role's
outputs (registered results, set_fact) and variables it sets for the roles it includes are not reads. Every read
must be documented in the role's spec, every documented variable must be read, and every default in
defaults/main.yml must be the spec's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.fleetpatch.rollout.plugins.action.audit_event import DEFAULT_VARS

ROLES = Path(__file__).resolve().parents[3] / "roles"
NAMES = sorted(path.name for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").is_file())
PREFIX = "fleetpatch.rollout."
# Keys whose values are prose or names, not templates.
PROSE = {"name", "short_description", "description", "kind"}
# What fleetpatch.rollout.audit_event reads from the variables when the task does not say it, per kind of event.
AUDIT_READS = {"approval": ("approved_by", "implemented_by", "urgency", "justification"), "verified": ("verified_by",)}


def load(path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if path.is_file() else None


def spec(role, entry="main"):
    return load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"][entry]["options"]


def values(node, key=None):
    """Every string value under ``node`` (not the keys), but for prose keys."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            if child_key not in PROSE:
                yield from values(child, child_key)
    elif isinstance(node, list):
        for child in node:
            yield from values(child, key)
    elif isinstance(node, str):
        yield node


def tasks(node):
    """Every task mapping under ``node`` (blocks, rescues and always included)."""
    if isinstance(node, list):
        for child in node:
            yield from tasks(child)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from tasks(node.get(key))


def role_files(role, entry):
    """The task files an entry point runs (its own file and those it includes from the same role)."""
    todo, seen = [f"{entry}.yml"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for task in tasks(load(ROLES / role / "tasks" / name) or []):
            for key in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks"):
                if key in task:
                    todo.append(task[key] if isinstance(task[key], str) else task[key]["file"])
    return [ROLES / role / "tasks" / name for name in seen]


def pattern(role):
    # not a plugin's name (fleetpatch.rollout.rollback_rows)
    return re.compile(rf"(?<![.\w])((?:fleetpatch|{re.escape(role)})_[a-z0-9_]+)\b")


def outputs():
    """Names set by some role of the collection (registered or set_fact): results, not inputs."""
    found = set()
    for path in ROLES.glob("*/tasks/*.yml"):
        for task in tasks(load(path) or []):
            if isinstance(task.get("register"), str):
                found.add(task["register"])
            facts = task.get("ansible.builtin.set_fact")
            if isinstance(facts, dict):
                found.update(facts)
    return found


def reads(role, entry="main"):
    """The public variables the entry point reads (see the module docstring)."""
    found, own = set(), pattern(role)
    files = role_files(role, entry) + [ROLES / role / "vars" / "main.yml", ROLES / role / "defaults" / "main.yml"]
    for path in files:
        data = load(path)
        for text in values(data):
            found.update(own.findall(text))
        for task in tasks(data if isinstance(data, list) else []):
            if "fleetpatch.rollout.audit_event" in task:
                args = task["fleetpatch.rollout.audit_event"]
                found.update(DEFAULT_VARS[arg] for arg in AUDIT_READS.get(args["kind"], ()) if arg not in args)
            included = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
            if included and included["name"].startswith(PREFIX):
                other = included["name"][len(PREFIX):]
                passed = set(task.get("vars") or {})
                found.update(name for name in reads(other, included.get("tasks_from", "main")) if name not in passed)
    return {name for name in found if name.startswith(("fleetpatch_", f"{role}_"))} - outputs()


@pytest.mark.parametrize("role", NAMES)
def test_every_variable_a_role_reads_is_in_its_argument_spec_and_no_other(role):
    documented = set(spec(role))
    read = reads(role)
    assert sorted(read - documented) == [], f"{role} reads variables its argument spec does not document"
    assert sorted(documented - read) == [], f"{role}'s argument spec documents variables it never reads"


@pytest.mark.parametrize("role", NAMES)
def test_a_roles_defaults_are_its_argument_specs(role):
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    options = spec(role)
    assert sorted(set(defaults) - set(options)) == [], f"{role}: defaults/main.yml sets variables the spec does not document"
    assert {name: defaults.get(name) for name in options} == {name: option.get("default") for name, option in options.items()}


def test_every_role_has_an_argument_spec():
    assert sorted(path.name for path in ROLES.iterdir() if path.is_dir()) == NAMES
    assert {"rollout", "rollback", "detect", "guarded_apply", "run_lock"} <= set(NAMES)


def test_the_drift_check_sees_a_variable_read_outside_the_spec(tmp_path, monkeypatch):
    """The check itself: a task that reads an undocumented variable is found."""
    role = tmp_path / "roles" / "probe"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "tasks" / "main.yml").write_text("- name: Use x\n  ansible.builtin.debug:\n    msg: '{{ fleetpatch_surprise }}'\n  when: probe_flag\n")
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: {main: {options: {probe_flag: {type: bool}}}}\n")
    monkeypatch.setitem(globals(), "ROLES", tmp_path / "roles")
    assert reads("probe") == {"fleetpatch_surprise", "probe_flag"}

