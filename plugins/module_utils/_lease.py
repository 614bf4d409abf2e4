# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One fleetpatch operation at a time on a host: the state lock of one module call, and the lease of one run.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Two layers protect a host:

* :func:`state_lock` is an exclusive ``flock`` of the state file's lock file (in ``/run/lock``, never beside the state
  file, which a refused call must leave as it found it), held by a state-changing module for its whole call (read the
  state, change the host, write the state). Two calls on one host never interleave, so a
  journal that a call finds under the lock belongs to a call that is over: it was killed, and may be reverted.
* The lease is the state file's ``lease`` entry, taken by a rollout or a rollback for its whole run (the ``lock``
  module) and released at its end::

      "lease": {"owner": "<run id>", "holder": "bob", "patch": "FP-2025-14847", "since": "2026-...Z",
                "job": "4711", "controller": "ctl-1"}

  While a lease is there, every state-changing call that names another owner, or none, is refused and the holder
  is named: a second rollout cannot touch a host the first one is working on, even from another controller. A
  lease is taken from another run only when that run is known to have ended (``reclaim``) or when the operator
  says that it is gone (``take_over``); the result says whose lease was taken.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from contextlib import contextmanager

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._flock import flock_until
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import empty_state, utc_now, with_state_file

__all__ = ["LOCK_TIMEOUT", "lock_file", "state_lock", "describe_lease", "check_lease", "set_lease"]

LOCK_TIMEOUT = 120  # seconds a call waits for another call on the same host (an unpack of a large artifact)


LOCK_DIRS = ("/run/lock", "/var/lock")  # the system's lock directories (tmpfs: nothing outlives a reboot); else the temp dir


def lock_file(state_file):
    """The lock file of ``state_file``: in the system's lock directory, so no lock ever lands beside the state."""
    directory = next((path for path in LOCK_DIRS if os.path.isdir(path) and os.access(path, os.W_OK)), tempfile.gettempdir())
    digest = hashlib.sha256(os.path.abspath(state_file).encode("utf-8")).hexdigest()[:16]
    return os.path.join(directory, f"fleetpatch-state-{digest}.lock")


@contextmanager
def state_lock(state_file, timeout=LOCK_TIMEOUT):
    """Hold the exclusive lock of ``state_file`` (its :func:`lock_file`) for the ``with`` block."""
    path = lock_file(state_file)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise PatchError(f"cannot lock the state file {state_file} ({path}): {exc.strerror or exc}", state_file=state_file) from None
    try:
        try:
            taken = flock_until(fd, time.monotonic() + timeout, 0.1)
        except OSError as exc:
            raise PatchError(f"cannot lock the state file {state_file} ({path}): {exc.strerror}", state_file=state_file) from None
        if not taken:
            raise PatchError(f"cannot lock the state file {state_file}: another fleetpatch operation on this host held it for {timeout:g} s",
                             state_file=state_file)
        yield
    finally:
        os.close(fd)  # releases the lock


def describe_lease(lease):
    """A lease as a person reads it: who, which patch, since when, which job and run."""
    text = f"{lease.get('holder') or 'someone'} for {lease.get('patch') or 'an unnamed patch'} since {lease.get('since') or 'an unknown time'}"
    if lease.get("job"):
        text += f", job {lease['job']}"
    if lease.get("controller"):
        text += f", from {lease['controller']}"
    return f"{text} (run {lease.get('owner')})"


def check_lease(state, owner, state_file):
    """Raise :class:`PatchError` when the host is leased to another run than ``owner`` (None: no run)."""
    lease = state.get("lease")
    if lease and lease.get("owner") != owner:
        raise PatchError(
            f"this host is locked by another fleetpatch run: {describe_lease(lease)}; nothing was changed. "
            "Wait for that run to end; if it is gone (killed), re-run the rollout with take-over of its lock",
            held_by=lease, state_file=state_file,
        )


@with_state_file
def set_lease(store, params, host, check_mode):
    """The ``lock`` module: take (``state=acquired``) or release the host's lease for run ``params['owner']``."""
    del host  # the state file is all it touches
    owner = params["owner"]
    if not (owner or "").strip():
        raise PatchError("owner: a lock needs the id of the run that holds it")
    state = store.state
    current = state.get("lease")
    result = {"changed": False, "lease": current}
    if params["state"] == "released":
        if current and current.get("owner") == owner:
            result.update(changed=True, lease=None, released=current)
            if not check_mode:
                del state["lease"]
                if state == empty_state():
                    store.discard()  # the lock was all it held: the host is left as the run found it, with no state file
                else:
                    store.save()
        return result
    if current and current.get("owner") == owner:
        return result
    if current:
        if current.get("owner") in (params.get("reclaim") or ()):
            result["reclaimed"] = current
        elif params.get("take_over"):
            result["taken_over"] = current
        else:
            check_lease(state, owner, store.path)
    lease = {"owner": owner, "holder": params.get("holder"), "patch": params.get("patch_id"), "since": utc_now(),
             "job": params.get("job"), "controller": params.get("controller")}
    result.update(changed=True, lease=lease)
    result["diff"] = {"before": {"lease": current}, "after": {"lease": lease}}
    if not check_mode:
        state["lease"] = lease
        store.save()
    return result
