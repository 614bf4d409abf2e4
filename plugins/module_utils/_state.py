# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a host's fleetpatch state file.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The state file is one JSON object per host::

    {"format": 1,
     "components": {"fpdemo": {"version": "7.0.28", "previous": "7.0.26"}},
     "applied": [{"patch": "FP-2025-14847", "component": "fpdemo", "version": "7.0.28", "at": "2026-...Z"}],
     "deferred": [{"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-...Z"}],
     "journal": null}

``journal`` is not null while an apply or rollback is under way; a later run finds it there.
"""

from __future__ import annotations

import json

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = ["STATE_FORMAT", "empty_state", "load_state"]

STATE_FORMAT = 1


def empty_state():
    """The state of a host fleetpatch has never touched."""
    return {"format": STATE_FORMAT, "components": {}, "applied": [], "deferred": [], "journal": None}


def load_state(path):
    """The host's state from ``path``; an absent file is the empty state, a damaged one a :class:`PatchError`."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return empty_state()
    except (OSError, ValueError) as exc:
        raise PatchError(f"state file {path} cannot be read: {exc}", state_file=path) from None
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise PatchError(f"state file {path} has format {found!r}; this fleetpatch reads format {STATE_FORMAT}", state_file=path)
    state = empty_state()
    state.update(data)
    return state
