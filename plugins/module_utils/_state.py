# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a host's fleetpatch state file.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The state file is one JSON object per host::

    {"format": 1,
     "components": {"fpdemo": {"version": "7.0.28", "previous": "7.0.26"}},
     "applied": [{"patch": "FP-2025-14847", "component": "fpdemo", "version": "7.0.28", "from": "7.0.26", "at": "2026-...Z",
                  "judged": "2026-...Z"}],
     "deferred": [{"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-...Z"}],
     "rollbacks": [{"patch": "FP-2025-14847", "component": "fpdemo", "from": "7.0.28", "to": "7.0.26", "at": "..."}],
     "journal": null}

An ``applied`` record gains ``"judged": "<RFC 3339 UTC time>"`` (a string; absent until then) when
``fleetpatch.rollout.health`` judged the patched host healthy after its soak (its options ``judged_patch`` and
``judged_version``; ``_apply.record_judgment``). A record without it is an apply whose run ended before the
judgment: the planner plans that host again, to soak and gate it (``plugin_utils/_waves.py``).

``journal`` is not null while an apply or rollback is under way (it names the operation, the release it
started from, the release it goes to and the last step done); a later run finds it there and reverts it.

Every write is durable and atomic: a temporary file in the same directory, fsync, rename over the old file,
fsync of the directory. A power cut leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = ["STATE_FORMAT", "empty_state", "load_state", "save_state", "durable_write", "fsync_dir", "utc_now"]

STATE_FORMAT = 1


def empty_state():
    """The state of a host fleetpatch has never touched."""
    return {"format": STATE_FORMAT, "components": {}, "applied": [], "deferred": [], "rollbacks": [], "journal": None}


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


def utc_now():
    """The current time in UTC, RFC 3339 with a Z, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fsync_dir(path):
    """Make a directory's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path, data, mode=0o600):
    """Replace ``path`` with ``data`` (bytes) atomically and durably."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def save_state(path, state):
    """Write the host's state durably and atomically."""
    try:
        durable_write(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as exc:
        raise PatchError(f"state file {path} cannot be written: {exc}", state_file=path) from None
