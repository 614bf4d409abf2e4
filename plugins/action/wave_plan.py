# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleetpatch.rollout.wave_plan: plan the waves of the play's hosts on the controller, reading only what the planner needs.

The filter of the same name takes a mapping of every host's variables, which a play builds from ``hostvars``:
templating each host's whole variables costs about a millisecond per host and more, and the mapping lives as long
as the task. This action reads, for each host, the few variables the planner uses (``_waves.host_variables``)
straight from the variable manager (what ``hostvars[host]`` would give, without its lazy wrapper), templates only
those that are set, and plans once. The plan is returned as RV(plan), and with O(fact) set for every host of the
play, as ``ansible.builtin.set_fact`` would (a variable of the play, not a cached fact, on ansible-core 2.21 and
later; see the module's notes for 2.19 and 2.20).
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.inventory.helpers import get_group_vars, sort_groups
from ansible.plugins.action import ActionBase
from ansible.utils.vars import combine_vars, validate_variable_name
from ansible.vars.plugins import get_vars_from_inventory_sources, get_vars_from_path

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, load_manifest
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, task_file
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import UNREACHABLE_MODES, PlanError, host_variables, plan_waves

try:  # ansible-core 2.21 and later: an action sets variables at the precedence of its choice
    from ansible.plugins.action import VariableLayer
except ImportError:  # pragma: no cover - ansible-core 2.19 and 2.20
    VariableLayer = None

MODULE = "fleetpatch.rollout.wave_plan"

ARGUMENT_SPEC = {
    "manifest": {"type": "raw", "required": True},
    "policy": {"type": "dict"},
    "now": {"type": "str"},
    "notifications": {"type": "raw"},
    "detect_key": {"type": "str", "default": "detect"},
    "exclude_hosts": {"type": "list", "elements": "str", "default": []},
    "unreachable": {"type": "str", "choices": list(UNREACHABLE_MODES), "default": "fail"},
    "hosts": {"type": "list", "elements": "str"},
    "fact": {"type": "str"},
}


def _may_template(value):
    """Whether ``value`` holds text that could be a template (a ``{``): only such values are templated.

    The rest (most inventory variables, registered results) are taken as they are, which is what templating them
    would give, without the cost of a template engine per host.
    """
    kind = value.__class__
    if kind is str or isinstance(value, str):
        return "{" in value
    if kind is dict or isinstance(value, Mapping):
        return any(_may_template(item) for item in value.values()) or any(_may_template(key) for key in value)
    if kind is list or isinstance(value, (list, tuple)):
        return any(_may_template(item) for item in value)
    return False


class ActionModule(ActionBase):
    """Read the planner's variables of every host, plan, return the plan (and set it as a fact, when asked)."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # nothing runs on the host
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not args["detect_key"]:
            raise AnsibleActionFail(f"{MODULE}: detect_key: expected a variable name, got {args['detect_key']!r}")
        if args["fact"] is not None:
            try:
                validate_variable_name(args["fact"])
            except AnsibleError as exc:
                raise AnsibleActionFail(f"{MODULE}: fact: {exc}") from None
        manifest = self._manifest(args["manifest"], task_vars)
        notifications = args["notifications"]
        if isinstance(notifications, str):
            notifications = self._file("notifications", notifications, task_vars)
        names = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all") or ())
        hosts = self._host_vars(task_vars, names, host_variables(args["detect_key"]))
        try:
            plan = plan_waves(hosts, manifest, policy=args["policy"], now=args["now"], notifications=notifications,
                              detect_key=args["detect_key"], exclude_hosts=args["exclude_hosts"], unreachable=args["unreachable"])
        except PlanError as exc:
            raise AnsibleActionFail(f"{MODULE}: {exc}") from None
        result.update(changed=False, plan=plan)
        if args["fact"] is not None:
            facts = {args["fact"]: plan}
            if VariableLayer is not None:
                # As ansible.builtin.set_fact does: a variable of the play's hosts (one shared object), not a cached fact.
                self.register_host_variables({}, VariableLayer.CACHEABLE_FACT)
                self.register_host_variables(facts, VariableLayer.EPHEMERAL_FACT)
            result["ansible_facts"] = facts
        return result

    def _file(self, option, path, task_vars):
        """A controller file named by ``option``, found like the manifest; AnsibleActionFail naming the option otherwise."""
        try:
            return task_file(self, path, task_vars)
        except SearchPathError as exc:
            raise AnsibleActionFail(f"{MODULE}: {option}: {exc}") from None

    def _manifest(self, manifest, task_vars):
        """The checked manifest: the option's mapping, or its file read and checked."""
        if isinstance(manifest, Mapping):
            return dict(manifest)
        if not isinstance(manifest, str) or not manifest:
            raise AnsibleActionFail(f"{MODULE}: manifest: expected the checked manifest or the path of its file, got {type(manifest).__name__}")
        try:
            return load_manifest(self._file("manifest", manifest, task_vars))
        except ManifestError as exc:
            raise AnsibleActionFail(f"{MODULE}: manifest: {exc}") from None

    def _host_vars(self, task_vars, names, keys):
        """Host name -> the variables among ``keys`` that the host has, each templated in that host's context.

        What ``hostvars[name][key]`` gives, key by key, without templating any other variable of the host (see
        :class:`_HostVariables`).
        """
        hostvars = task_vars.get("hostvars")
        if hostvars is None or not hasattr(hostvars, "raw_get"):
            raise AnsibleActionFail(f"{MODULE}: the play's hostvars are not available to the task")
        reader = _HostVariables(hostvars, keys)
        found = {}
        unknown = []
        for name in names:
            if name in found:
                continue
            raw = reader.get(name)
            if raw is None:
                unknown.append(name)
                continue
            picked = {}
            for key, value in raw.items():
                if _may_template(value):
                    templar = self._templar.copy_with_new_env(available_variables=hostvars.raw_get(name))
                    try:
                        value = templar.template(value)
                    except AnsibleError as exc:
                        raise AnsibleActionFail(f"{MODULE}: {name}: {key}: cannot template it: {exc}") from None
                picked[key] = value
            found[name] = picked
        if unknown:
            raise AnsibleActionFail(f"{MODULE}: hosts: not in the inventory: {', '.join(sorted(unknown))}")
        return found


class _HostVariables:
    """A few variables of many hosts, as ``hostvars`` has them (untemplated), read layer by layer.

    ``hostvars[host]`` asks the variable manager for all of the host's variables, merged from every source, about a
    millisecond per host, most of it spent on sources that hold none of the planner's variables. This reads the
    same sources in the same order of precedence (the variable manager's ``get_vars`` for a host without a play or
    a task: the inventory's and the vars plugins' ``all`` and group variables in ``VARIABLE_PRECEDENCE`` order, the
    host's inventory and vars plugin variables, facts, ``include_vars``, ``set_fact`` and registered variables,
    extra vars), each group combination once, and keeps only ``keys``.

    It falls back to the variable manager's own merge (``hostvars.raw_get``) for a host whose facts hold one of
    ``keys``, for every host when dictionaries are merged (``hash_behaviour=merge``), and for every host when the
    two ways disagree on the first host (a later ansible-core that merges differently).
    """

    def __init__(self, hostvars, keys):
        self._hostvars = hostvars
        self._keys = tuple(keys)
        self._groups = {}
        manager = getattr(hostvars, "_variable_manager", None)
        self._manager = manager
        self._fast = manager is not None and C.DEFAULT_HASH_BEHAVIOUR != "merge" and all(
            hasattr(manager, name) for name in ("_inventory", "_loader", "_fact_cache", "_vars_cache", "_nonpersistent_fact_cache", "_extra_vars"))
        self._checked = False

    def get(self, name):
        """The host's variables among the keys (a new dict), or None when it is not a host of the inventory."""
        if not self._fast:
            return self._slow(name)
        host = self._manager._inventory.get_host(name)
        if host is None:
            return None
        found = self._read(host)
        if not self._checked:
            self._checked = True
            slow = self._slow(name)
            if slow != found:
                self._fast = False
                return slow
        return found

    def _slow(self, name):
        data = self._hostvars.raw_get(name) if name in self._hostvars else None
        if not isinstance(data, Mapping):
            return None
        return {key: data[key] for key in self._keys if key in data}

    def _read(self, host):
        manager = self._manager
        keys = self._keys
        try:
            facts = manager._fact_cache.get(host.name)
        except KeyError:
            facts = None
        if facts and any(key in facts for key in keys):
            return self._slow(host.name)
        groups = tuple(group.name for group in host.get_groups())
        found = self._groups.get(groups)
        if found is None:
            found = self._groups[groups] = self._group_layers(host)
        found = dict(found)
        stage = "task"
        layers = (host.get_vars(), get_vars_from_inventory_sources(manager._loader, manager._inventory._sources, [host], stage))
        layers += tuple(get_vars_from_path(manager._loader, path, [host], stage) for path in self._basedirs())
        layers += (manager._vars_cache.get(host.name) or {}, manager._nonpersistent_fact_cache.get(host.name) or {}, manager._extra_vars or {})
        for layer in layers:
            if layer:
                for key in keys:
                    if key in layer:
                        found[key] = layer[key]
        return found

    def _basedirs(self):
        """The directories whose group_vars and host_vars ``hostvars`` reads (the playbook's, outside ad hoc runs)."""
        manager = self._manager
        return [manager._loader.get_basedir()] if getattr(manager, "safe_basedir", False) else []

    def _group_layers(self, host):
        """The keys as the groups of ``host`` (``all`` first) set them, in the configured order of precedence."""
        manager = self._manager
        loader, sources, stage = manager._loader, manager._inventory._sources, "task"
        all_group = manager._inventory.groups.get("all")
        host_groups = sort_groups([group for group in host.get_groups() if group.name != "all"])

        def from_paths(entities):
            data = {}
            for path in self._basedirs():
                data = combine_vars(data, get_vars_from_path(loader, path, entities, stage))
            return data

        sources_of = {
            "all_inventory": all_group.get_vars,
            "all_plugins_inventory": lambda: get_vars_from_inventory_sources(loader, sources, [all_group], stage),
            "all_plugins_play": lambda: from_paths([all_group]),
            "groups_inventory": lambda: get_group_vars(host_groups),
            "groups_plugins_inventory": lambda: get_vars_from_inventory_sources(loader, sources, host_groups, stage),
            "groups_plugins_play": lambda: from_paths(host_groups),
        }
        found = {}
        for entry in C.VARIABLE_PRECEDENCE:
            read = sources_of.get(entry)
            if read is None:  # an entry this reader does not know (plugins_by_groups): the variable manager decides
                self._fast = False
                return found
            layer = read()
            for key in self._keys:
                if key in layer:
                    found[key] = layer[key]
        return found
