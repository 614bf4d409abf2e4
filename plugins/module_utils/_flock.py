# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for an exclusive ``flock``, for the locks of the host (state file) and of the controller (fleet, audit log).

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
"""

from __future__ import annotations

import errno
import fcntl
import time

__all__ = ["flock_until"]


def flock_until(fd, deadline, interval=0.05):
    """Take the exclusive ``flock`` of ``fd``, trying again until ``time.monotonic()`` passes ``deadline``.

    Returns False when another holder kept it until then; any other error is raised as the ``OSError`` it is.
    """
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
