# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet lock: one rollout or rollback at a time per audit trail, on the controller.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The lock is a JSON file beside the audit log (``<log>.fleet-lock``)::

    {"format": 1,
     "holder": {"owner": "<run id>", "who": "bob", "patch": "FP-2025-14847", "since": "2026-...Z", "job": "4711",
                "controller": "ctl-1", "pid": 12345, "pid_start": "884211", "user": "root"},
     "ended": ["<run id>", ...]}

``holder`` is the run that holds the lock (null when free); ``ended`` lists the last runs that released it, newest
last, so that a later run may reclaim the host locks such a run left behind (a run that halts stops before it can
release every host). The file is changed under an exclusive ``flock`` of its directory and replaced atomically.

A holder on this controller whose process is gone (its pid no longer runs, or runs another program since) is
stale; a holder on another controller cannot be checked from here. Either is taken over only when the operator
asks for it; a live holder never is.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from contextlib import contextmanager

from ansible_collections.fleetpatch.rollout.plugins.module_utils._flock import flock_until

__all__ = ["FleetLockError", "LOCK_SUFFIX", "ENDED_KEPT", "lock_path", "process_start", "holder_status", "describe",
           "read_lock", "acquire", "release"]

LOCK_SUFFIX = ".fleet-lock"
ENDED_KEPT = 200  # the runs remembered as ended: far more than the runs whose host locks can still be around
FORMAT = 1
_GUARD_TIMEOUT = 30


class FleetLockError(Exception):
    """The fleet lock is held, damaged or cannot be written; the message names the holder or the file."""

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder


def lock_path(audit_log):
    """The fleet lock of the audit trail whose log is ``audit_log``."""
    return os.path.abspath(os.path.expanduser(audit_log)) + LOCK_SUFFIX


def process_start(pid):
    """The start time (clock ticks since boot) of process ``pid`` as text, or None when no such process runs."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as handle:
            stat = handle.read()
    except (OSError, ValueError, TypeError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count the fields after its closing one.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def holder_status(holder, controller=None):
    """``"alive"``, ``"gone"`` or ``"unknown"`` (held from another controller) for a lock holder."""
    if holder.get("controller") != (controller or socket.gethostname()):
        return "unknown"
    started = process_start(holder.get("pid"))
    return "alive" if started is not None and started == holder.get("pid_start") else "gone"


def describe(holder):
    """A holder as a person reads it."""
    text = f"{holder.get('who') or holder.get('user') or 'someone'} for {holder.get('patch') or 'an unnamed patch'} since {holder.get('since')}"
    if holder.get("job"):
        text += f", job {holder['job']}"
    return f"{text}, pid {holder.get('pid')} on {holder.get('controller')} (run {holder.get('owner')})"


def _empty():
    return {"format": FORMAT, "holder": None, "ended": []}


def read_lock(path):
    """The lock file's content; a missing file is a free lock, a damaged one a :class:`FleetLockError`."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return _empty()
    except (OSError, ValueError) as exc:
        raise FleetLockError(f"fleet lock {path} cannot be read: {exc}; it is left as it is: look at it, then remove it") from None
    problems = []
    if not isinstance(data, dict):
        problems.append(f"is a JSON {type(data).__name__}, expected an object")
    else:
        if data.get("format") != FORMAT:
            problems.append(f"format is {data.get('format')!r}, expected {FORMAT}")
        if data.get("holder") is not None and not (isinstance(data["holder"], dict) and isinstance(data["holder"].get("owner"), str)):
            problems.append("holder is not null nor an object with a string owner")
        if not (isinstance(data.get("ended"), list) and all(isinstance(item, str) for item in data["ended"])):
            problems.append("ended is not a list of strings")
    if problems:
        raise FleetLockError(f"fleet lock {path}: {'; '.join(problems)}; it is left as it is: look at it, then remove it")
    return data


@contextmanager
def _guarded(path):
    """Hold the exclusive flock of the lock file's directory (created when missing)."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o750, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise FleetLockError(f"fleet lock {path}: cannot open its directory: {exc.strerror or exc}") from None
    try:
        try:
            taken = flock_until(fd, time.monotonic() + _GUARD_TIMEOUT)
        except OSError as exc:
            raise FleetLockError(f"fleet lock {path}: cannot lock its directory: {exc.strerror}") from None
        if not taken:
            raise FleetLockError(f"fleet lock {path}: its directory stayed locked for {_GUARD_TIMEOUT} s")
        yield
    finally:
        os.close(fd)


def _write(path, data):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".fleet-lock.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise FleetLockError(f"fleet lock {path} cannot be written: {exc.strerror or exc}") from None


def acquire(path, holder, take_over=False, check_mode=False):
    """Take the lock for ``holder`` (a mapping with at least ``owner``); what happened, as a mapping.

    Returns ``{"holder": ..., "ended": [...], "taken_over": <previous holder or None>, "changed": bool}``. A lock
    held by a live run is refused whatever ``take_over`` says; a stale one, or one held from another controller,
    only without ``take_over``. ``check_mode`` decides the same and writes nothing.
    """
    with _guarded(path):
        data = read_lock(path)
        current = data["holder"]
        result = {"holder": holder, "ended": list(data["ended"]), "taken_over": None, "changed": True}
        if current and current["owner"] == holder["owner"]:
            return dict(result, holder=current, changed=False)
        if current:
            status = holder_status(current)
            if status == "alive":
                raise FleetLockError(f"another fleetpatch run holds the fleet lock {path}: {describe(current)}; it is still running: "
                                     "wait for it to end", holder=current)
            if not take_over:
                why = (f"its process {current.get('pid')} no longer runs" if status == "gone"
                       else f"it was taken on another controller, {current.get('controller')}, so this one cannot tell whether it still runs")
                raise FleetLockError(f"another fleetpatch run holds the fleet lock {path}: {describe(current)}; {why}. If that run is gone, "
                                     "take its lock over (the rollout's fleetpatch_take_over_lock=true); the take-over is recorded "
                                     "in the audit trail", holder=current)
            result["taken_over"] = current
            result["ended"] = (result["ended"] + [current["owner"]])[-ENDED_KEPT:]
        if not check_mode:
            _write(path, {"format": FORMAT, "holder": holder, "ended": result["ended"]})
        return result


def release(path, owner):
    """Free the lock when ``owner`` holds it and remember ``owner`` as ended; the released holder, or None."""
    if not os.path.exists(path):
        return None
    with _guarded(path):
        data = read_lock(path)
        current = data["holder"]
        if not current or current["owner"] != owner:
            return None
        _write(path, {"format": FORMAT, "holder": None, "ended": (data["ended"] + [owner])[-ENDED_KEPT:]})
        return current
