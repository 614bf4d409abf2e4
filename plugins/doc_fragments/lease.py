# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The owner option of the modules that change a host under a run's lock (apply, rollback, defer)."""

from __future__ import annotations


class ModuleDocFragment:
    """The run whose lock the call works under."""

    DOCUMENTATION = r"""
options:
  owner:
    description:
      - The id of the run (a rollout or rollback) that holds this host's lock, as M(fleetpatch.rollout.lock) took it.
      - While a run holds the host's lock, a call that names another owner, or none, is refused with the holder
        named, and nothing changes. Without a lock on the host, any call may proceed.
      - The operation's journal records it, so an interrupted operation can be traced to its run.
    type: str
notes:
  - Every call that changes the host holds an exclusive lock of its state file (a lock file in C(/run/lock)) for its whole
    run, so two fleetpatch calls on one host never interleave (a second one waits up to two minutes, then fails).
"""
