# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature flags in a service's flags file: turn one on or off, make the service reload, confirm it took it.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The flags file is ``{"flags": {"<name>": true|false}}``. A patch can ship dark behind a flag; turning the flag off
is the single-toggle revert.
"""

from __future__ import annotations

import json
import time

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import Service
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import durable_write

__all__ = ["read_flags", "set_flag"]


def read_flags(path):
    """The flags in ``path`` as a dict; an absent file holds no flags, a damaged one is a :class:`PatchError`."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PatchError(f"flags file {path} cannot be read: {exc}", flags_file=path) from None
    flags = data.get("flags") if isinstance(data, dict) else None
    if not isinstance(flags, dict) or not all(isinstance(value, bool) for value in flags.values()):
        raise PatchError(f'flags file {path} is not {{"flags": {{"<name>": true|false}}}}', flags_file=path)
    return flags


def _write(path, flags):
    durable_write(path, (json.dumps({"flags": flags}, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode=0o644)


def _confirmed(host, params, enabled):
    """Wait until the service's confirm URL shows the flag at ``enabled``; True when it does (or nothing to ask)."""
    if not params["confirm_url"]:
        return True
    deadline = time.monotonic() + params["confirm_timeout"]
    while True:
        try:
            if json.loads(host.get(params["confirm_url"], 5)).get("flags", {}).get(params["name"], False) is enabled:
                return True
        except (PatchError, ValueError, AttributeError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def set_flag(params, host, check_mode):
    """Turn the flag ``params['name']`` on or off (``params['enabled']``); the module's result."""
    path = params["flags_file"]
    flags = read_flags(path)
    before = dict(flags)
    after = dict(flags, **{params["name"]: params["enabled"]})
    result = {"changed": before != after, "name": params["name"], "enabled": params["enabled"], "flags": after,
              "diff": {"before": {"flags": before}, "after": {"flags": after}}}
    if not result["changed"] or check_mode:
        return result
    service = Service(host, params)
    _write(path, after)
    try:
        service.activate("hot")
    except PatchError as exc:
        service.last_error = str(exc)
    if service.last_error is None and _confirmed(host, params, params["enabled"]):
        return result
    _write(path, before)  # the service did not take it: put the file back as it was and reload that
    try:
        service.activate("hot")
    except PatchError:
        pass
    cause = f" ({service.last_error})" if service.last_error else ""
    raise PatchError(f"the service did not take flag {params['name']}={str(params['enabled']).lower()}{cause}; {path} was restored")
