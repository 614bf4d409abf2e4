# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files the controller reads, found the way Ansible finds files: relative to the role, the playbook or the inventory.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

One rule for every file fleetpatch reads on the controller (a patch manifest, the pre-notification record, the
allowed-signers file, an artifact named by a task), used by the lookups and by the action plugins alike:

- an absolute path (or one that starts with ``~``) is used as it is;
- a relative path is searched for as ``lookup('ansible.builtin.file')`` and the ``copy`` action search for one
  (``DataLoader.path_dwim_relative_stack``): in each directory of the task's search path, which runs from the
  innermost role of the task's dependency chain out to the playbook's directory, first under ``files/`` and
  then in the directory itself, and last in the playbook's directory;
- then in the directory of each inventory source (``ansible-playbook -i``) and the host's ``inventory_dir``,
  so that a file kept beside the inventory is found when the playbook is one shipped in a collection.

The controller's current directory is not searched (unless it is one of those): a playbook finds the same
files from wherever it is started. When no candidate exists, :class:`SearchPathError` lists every path searched, in
order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible.errors import AnsibleFileNotFound

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import short_repr

__all__ = ["SearchPathError", "find_file", "inventory_dirs", "lookup_file", "task_file"]


class SearchPathError(ValueError):
    """A controller file that is not where Ansible looks; ``searched`` lists the paths tried, in order."""

    def __init__(self, message, searched=()):
        self.searched = list(searched)
        super().__init__(message + "".join(f"\n  {path}" for path in self.searched))


def _unique(paths):
    """``paths`` normalised, each once, in their first order."""
    seen = []
    for path in paths:
        path = os.path.normpath(path)
        if path not in seen:
            seen.append(path)
    return seen


def inventory_dirs(variables):
    """The directories of the run's inventory sources, then the host's ``inventory_dir``, each once.

    ``variables`` are a task's variables: ``ansible_inventory_sources`` (what ``-i`` named: files, directories or
    host lists, the last left out) and ``inventory_dir``.
    """
    found = []
    if not isinstance(variables, Mapping):
        return found
    sources = variables.get("ansible_inventory_sources")
    if isinstance(sources, str):
        sources = [sources]
    for source in sources if isinstance(sources, (list, tuple)) else ():
        if not isinstance(source, str) or not source:
            continue
        if os.path.isdir(source):
            found.append(os.path.abspath(source))
        elif os.path.isfile(source):
            found.append(os.path.dirname(os.path.abspath(source)))
    directory = variables.get("inventory_dir")
    if isinstance(directory, str) and directory:
        found.append(os.path.abspath(directory))
    return _unique(found)


def find_file(loader, needle, search_path, *, inventory=(), subdir="files", is_role=False):
    """The path of the controller file ``needle``, found by this module's rule; SearchPathError otherwise.

    ``loader`` is Ansible's DataLoader (its ``path_dwim_relative_stack`` walks ``search_path``, the task's search
    path, with ``subdir`` and falls back to the playbook's directory); ``inventory`` are the inventory
    directories searched after it (:func:`inventory_dirs`). An absolute path is returned as it is, ``~``
    expanded, whether it exists or not: whoever reads it says so.
    """
    if not isinstance(needle, str) or not needle.strip():
        raise SearchPathError(f"expected the path of a file on the controller, got {type(needle).__name__} {short_repr(needle)}")
    if needle.startswith(("/", "~")):
        return os.path.expanduser(needle)
    searched = []
    try:
        found = loader.path_dwim_relative_stack(list(search_path), subdir, needle, is_role=is_role)
    except AnsibleFileNotFound as exc:
        searched = list(exc.paths or ())
    else:
        return os.path.normpath(found)
    searched = _unique(searched)
    for directory in inventory:
        candidate = os.path.normpath(os.path.join(directory, needle))
        if candidate in searched:
            continue
        searched.append(candidate)
        if os.path.exists(candidate):
            return candidate
    raise SearchPathError(f"cannot find {needle!r} relative to the role, the playbook or the inventory; searched:", searched)


def lookup_file(lookup, needle, variables):
    """``needle`` found for a lookup plugin, through the search path ``lookup('ansible.builtin.file')`` uses."""
    variables = variables if variables is not None else {}
    search_path = variables.get("ansible_search_path") or [lookup.get_basedir(variables)]
    return find_file(lookup._loader, needle, search_path, inventory=inventory_dirs(variables), is_role="role_path" in variables)


def task_file(action, needle, task_vars):
    """``needle`` found for an action plugin, through its task's search path (as ``ActionBase._find_needle``)."""
    return find_file(action._loader, needle, action._task.get_search_path(), inventory=inventory_dirs(task_vars))
