# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet lock: one rollout or rollback at a time per audit trail, or the runs of one share key together.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The lock's state is ``{"share": <key or None>, "holders": [holder, ...], "ended": ["<run id>", ...]}``. A holder is
``{"owner": "<run id>", "who": "bob", "patch": "FP-2025-14847", "since": "2026-...Z", "job": "4711",
"controller": "ctl-1", "pid": 12345, "pid_start": "884211", "user": "root"}``. ``holders`` are the runs that hold
the lock (none when it is free); more than one only when each gave the same ``share`` key (the slices of one wave
of a stored plan, run as parallel jobs). ``ended`` lists the last runs that released the lock, newest last, so that
a later run may reclaim the host locks such a run left behind (a run that halts stops before it can release every
host).

:func:`take` and :func:`give_back` decide, from a state, what the next state is: the one set of rules. Two stores
keep the state, each changing it in one step under its own lock:

- :class:`FileStore`, a JSON file beside the audit log (``<log>.fleet-lock``), changed under an exclusive ``flock``
  of its directory and replaced atomically. A lock without a share key is written as format 1 (``"holder"``: the
  holder or null), which earlier versions of the collection read too; a shared one as format 2 (``"share"`` and
  ``"holders"``), which they refuse to touch. Both are read.
- :class:`PgStore`, the trail's row of ``fleetpatch_audit.fleet_lock`` in the PostgreSQL audit sink, changed in one
  transaction under the row's lock (see :func:`_audit_pg.fleet_lock_update`), so that the jobs of one trail on
  separate controllers or execution nodes are kept apart as the runs of one controller are by the file.

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
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg

__all__ = ["FleetLockError", "LOCK_SUFFIX", "ENDED_KEPT", "FileStore", "PgStore", "lock_path", "process_start", "holder_status",
           "describe", "empty", "check_state", "take", "give_back", "store_for", "read_lock", "acquire", "release"]

LOCK_SUFFIX = ".fleet-lock"
ENDED_KEPT = 200  # the runs remembered as ended: far more than the runs whose host locks can still be around
FORMAT = 2  # the newest format of the file; format 1 (one holder, no share key) is still written when it says everything
_GUARD_TIMEOUT = 30


class FleetLockError(Exception):
    """The fleet lock is held, damaged or cannot be written; the message names the holder or the lock.

    ``holder`` is the holder named first (a live one when a live one refused the run), ``holders`` all of them.
    """

    def __init__(self, message, holder=None, holders=None):
        super().__init__(message)
        self.holder = holder
        self.holders = holders if holders is not None else ([holder] if holder else [])


def lock_path(audit_log):
    """The fleet lock file of the audit trail whose log is ``audit_log``."""
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


# --- the state and its transitions (pure: no file, no database) -----------------------------------------------------


def empty():
    """The state of a free lock that no run has held yet."""
    return {"share": None, "holders": [], "ended": []}


def _share_key(share):
    """A share key as the state holds it: None for none (an empty or blank key shares with nobody)."""
    if share is None:
        return None
    if not isinstance(share, str):
        raise FleetLockError(f"the fleet lock's share key must be text, not {type(share).__name__} ({share!r})")
    return share.strip() or None


def _problems(state):
    """What is wrong with the shape of ``state`` (share, holders, ended), as phrases."""
    problems = []
    if not (state.get("share") is None or (isinstance(state["share"], str) and state["share"].strip())):
        problems.append("share is not null nor a non-empty string")
    holders = state.get("holders")
    if not (isinstance(holders, list) and all(isinstance(item, dict) and isinstance(item.get("owner"), str) for item in holders)):
        problems.append("holders is not a list of objects with a string owner")
    elif len(holders) > 1 and state.get("share") is None:
        problems.append(f"{len(holders)} holders without a share key")
    elif not holders and state.get("share") is not None:
        problems.append("a share key without a holder")
    if not (isinstance(state.get("ended"), list) and all(isinstance(item, str) for item in state["ended"])):
        problems.append("ended is not a list of strings")
    return problems


def check_state(state, where, remedy, problems=()):
    """``state`` (share, holders, ended) when it has that shape; FleetLockError naming ``where`` and what is wrong otherwise."""
    problems = list(problems) + _problems(state)
    if problems:
        raise FleetLockError(f"fleet lock {where}: {'; '.join(problems)}; it is left as it is: {remedy}")
    return {"share": state.get("share"), "holders": list(state["holders"]), "ended": list(state["ended"])}


def _held_by(where, holders, share):
    """How a refusal names the lock's holders: who, and the share key they hold it under."""
    if len(holders) == 1:
        text = f"another fleetpatch run holds the fleet lock {where}: {describe(holders[0])}"
    else:
        text = f"{len(holders)} fleetpatch runs hold the fleet lock {where} together: {'; '.join(describe(holder) for holder in holders)}"
    if share is not None:
        text += f" (shared under the key {share!r}: only a run given that key joins {'it' if len(holders) == 1 else 'them'})"
    return text


def _not_checked(holder, status, alone):
    """Why a holder that is not known to run may still hold the lock: its process is gone, or runs elsewhere."""
    subject = "its process" if alone else f"the process of run {holder['owner']}"
    if status == "gone":
        return f"{subject} {holder.get('pid')} no longer runs"
    return (f"{'it' if alone else 'run ' + holder['owner']} was taken on another controller, {holder.get('controller')}, so this one cannot "
            "tell whether it still runs")


def take(state, holder, share=None, take_over=False, where="", status=holder_status):
    """The lock taken for ``holder`` (a mapping with at least ``owner``): ``(new state or None when unchanged, result)``.

    ``result`` is ``{"holder", "holders", "share", "ended", "taken_over", "taken_over_all", "changed"}``: ``taken_over`` is
    the holder replaced (the first, when several shared the lock) or None, ``taken_over_all`` every one. A free lock
    is taken; a lock held under the same non-empty ``share`` key is joined. Any other holder refuses the run
    (:class:`FleetLockError` naming it): a live one whatever ``take_over`` says; a gone one, or one on another
    controller (``status`` tells which), only without ``take_over``. With it, every holder is replaced and remembered as
    ended. ``where`` names the lock in messages.
    """
    share = _share_key(share)
    holders = state["holders"]
    result = {"holder": holder, "holders": holders, "share": state["share"], "ended": list(state["ended"]), "taken_over": None,
              "taken_over_all": [], "changed": False}
    mine = [current for current in holders if current["owner"] == holder["owner"]]
    if mine:  # this run holds it already
        return None, dict(result, holder=mine[0])
    taken_over = []
    if holders and not (share is not None and share == state["share"]):
        one = len(holders) == 1
        statuses = [(current, status(current)) for current in holders]
        alive = [current for current, state_of in statuses if state_of == "alive"]
        if alive:
            still = ("it is still running: wait for it to end" if one else
                     f"{', '.join('run ' + current['owner'] for current in alive)} still {'runs' if len(alive) == 1 else 'run'}: wait for them to end")
            raise FleetLockError(f"{_held_by(where, holders, state['share'])}; {still}", holder=alive[0], holders=holders)
        if not take_over:
            why = "; ".join(_not_checked(current, state_of, one) for current, state_of in statuses)
            raise FleetLockError(f"{_held_by(where, holders, state['share'])}; {why}. If {'that run is' if one else 'those runs are'} gone, take "
                                 f"{'its' if one else 'their'} lock over (the rollout's fleetpatch_take_over_lock=true); the take-over is recorded "
                                 "in the audit trail", holder=holders[0], holders=holders)
        taken_over, holders = holders, []
    new = {
        "share": share,
        "holders": holders + [holder],
        "ended": (state["ended"] + [current["owner"] for current in taken_over])[-ENDED_KEPT:],
    }
    return new, dict(result, holders=new["holders"], share=share, ended=new["ended"], taken_over=taken_over[0] if taken_over else None,
                     taken_over_all=taken_over, changed=True)


def give_back(state, owner):
    """The lock released by the run ``owner``: ``(new state or None when unchanged, the released holder or None)``.

    Only that run leaves; the lock is free (its share key gone) when the last holder has left. ``owner`` is
    remembered as ended.
    """
    mine = [current for current in state["holders"] if current["owner"] == owner]
    if not mine:
        return None, None
    holders = [current for current in state["holders"] if current["owner"] != owner]
    return {"share": state["share"] if holders else None, "holders": holders, "ended": (state["ended"] + [owner])[-ENDED_KEPT:]}, mine[0]


# --- the file -------------------------------------------------------------------------------------------------------


class FileStore:
    """The lock as a JSON file (format 1 or 2), changed under the exclusive ``flock`` of its directory."""

    remedy = "look at it, then remove it"

    def __init__(self, path):
        self.path = path
        self.where = path

    def read(self):
        """The state in the file; a missing file is a free lock, a damaged one a :class:`FleetLockError`."""
        path = self.path
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return empty()
        except (OSError, ValueError) as exc:
            raise FleetLockError(f"fleet lock {path} cannot be read: {exc}; it is left as it is: {self.remedy}") from None
        if not isinstance(data, dict):
            raise FleetLockError(f"fleet lock {path}: is a JSON {type(data).__name__}, expected an object; it is left as it is: {self.remedy}")
        problems = []
        if data.get("format") == 1:  # one holder or none, no share key
            holder = data.get("holder")
            if holder is not None and not (isinstance(holder, dict) and isinstance(holder.get("owner"), str)):
                problems.append("holder is not null nor an object with a string owner")
                holder = None
            state = {"share": None, "holders": [holder] if holder else [], "ended": data.get("ended")}
        elif data.get("format") == FORMAT:
            state = {"share": data.get("share"), "holders": data.get("holders"), "ended": data.get("ended")}
        else:
            raise FleetLockError(f"fleet lock {path}: format is {data.get('format')!r}, expected 1 or {FORMAT}; it is left as it is: {self.remedy}")
        return check_state(state, path, self.remedy, problems)

    @staticmethod
    def document(state):
        """The file's content for ``state``: format 1 when it says everything (no share key), else format 2."""
        if state["share"] is None and len(state["holders"]) <= 1:
            return {"format": 1, "holder": state["holders"][0] if state["holders"] else None, "ended": state["ended"]}
        return {"format": FORMAT, "share": state["share"], "holders": state["holders"], "ended": state["ended"]}

    def update(self, change, missing_ok=False):
        """Apply ``change(state) -> (new state or None, result)`` under the directory's lock; write the new state; the result.

        With ``missing_ok``, a missing file is not created: ``change`` sees a free lock and nothing is written.
        """
        if missing_ok and not os.path.exists(self.path):
            return change(empty())[1]
        with self._guarded():
            new, result = change(self.read())
            if new is not None:
                self._write(self.document(new))
            return result

    @contextmanager
    def _guarded(self):
        """Hold the exclusive flock of the lock file's directory (created when missing)."""
        path = self.path
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

    def _write(self, data):
        path = self.path
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


# --- the database ---------------------------------------------------------------------------------------------------


class PgStore:
    """The lock as the trail's row of ``fleetpatch_audit.fleet_lock``, changed in one transaction under the row's lock."""

    def __init__(self, dsn, trail=_audit_pg.DEFAULT_TRAIL, lock_timeout=_GUARD_TIMEOUT):
        self.dsn = dsn
        self.trail = _audit_pg.check_name(trail)
        self.lock_timeout = lock_timeout
        try:
            self.where = f"{_audit_pg.describe(dsn, self.trail)} (table {_audit_pg.SCHEMA}.fleet_lock)"
        except _audit.AuditError as exc:
            raise FleetLockError(f"fleet lock of trail {self.trail}: {exc}") from None
        self.remedy = (f"look at it, then free it as the database's owner (UPDATE {_audit_pg.SCHEMA}.fleet_lock SET share = NULL, "
                       f"holders = '[]' WHERE trail = '{self.trail}')")

    def update(self, change, missing_ok=False):
        """Apply ``change(state) -> (new state or None, result)`` to the row, locked; write the new state; the result.

        With ``missing_ok``, a schema without the lock's table or row (made before it existed) is a free lock.
        """
        def on_row(row):
            if row is None:
                return None, change(empty())[1]
            return change(check_state(row, self.where, self.remedy))

        try:
            return _audit_pg.fleet_lock_update(self.dsn, self.trail, on_row, missing_ok=missing_ok, lock_timeout=self.lock_timeout)
        except _audit.AuditError as exc:
            raise FleetLockError(f"fleet lock {self.where}: {exc}") from None

    def read(self):
        """The state in the row (read under its lock, changing nothing)."""
        return self.update(lambda state: (None, state))


def store_for(sink=None, path=None, default_log=None):
    """Where the fleet lock of a run is: the file ``path`` when given; the trail's row when the run's audit sink (as
    :func:`_audit.current_sink` returns it) is PostgreSQL; else the file beside its log, or beside ``default_log``."""
    if path:
        return FileStore(path)
    if sink and sink.get("dsn"):
        return PgStore(sink["dsn"], sink.get("trail") or _audit_pg.DEFAULT_TRAIL)
    if sink:
        return FileStore(sink.get("lock") or lock_path(sink["log"]))
    return FileStore(lock_path(default_log))


# --- the operations -------------------------------------------------------------------------------------------------


def _store(where):
    return FileStore(where) if isinstance(where, str) else where


def read_lock(where):
    """The lock's state (share, holders, ended) in the file ``where`` or the store ``where``."""
    return _store(where).read()


def acquire(where, holder, take_over=False, check_mode=False, share=None):
    """Take the lock in ``where`` (a file path or a store) for ``holder``; what happened, as :func:`take` says.

    ``check_mode`` decides the same and writes nothing.
    """
    store = _store(where)

    def change(state):
        new, result = take(state, holder, share=share, take_over=take_over, where=store.where)
        return (None if check_mode else new), result

    return store.update(change)


def release(where, owner):
    """Let the run ``owner`` leave the lock in ``where`` (a file path or a store) and remember it as ended; the released holder, or None."""
    return _store(where).update(lambda state: give_back(state, owner), missing_ok=True)
