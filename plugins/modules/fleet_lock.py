#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_lock
short_description: Take or release the fleet lock, so that one rollout or rollback runs at a time
version_added: 0.1.0
description:
  - A rollout or a rollback takes the fleet lock before it touches any host and keeps it for its whole run. A second run
    that shares the audit trail is then refused at once, with the holder named (who, which patch, since when, which
    job, which process on which controller), and nothing changes.
  - The lock is a file beside the run's audit log (the log of the P(fleetpatch.rollout.audit#callback) callback; without
    the callback, the log that E(FLEETPATCH_AUDIT_LOG) names, else C(fleetpatch/audit.jsonl) in Ansible's home directory,
    C(~/.ansible) by default), C(<log>.fleet-lock), or O(path).
  - The lock is released by O(state=released), and in any case by the audit callback when the run ends, even when it
    failed. A run killed outright (SIGKILL, a lost controller) leaves it behind; such a stale lock is taken over only
    with O(take_over), and the take-over is recorded in the audit trail. A lock whose process still runs on this
    controller is never taken over.
  - Returns the run's id (RV(owner)), which M(fleetpatch.rollout.lock) writes on every host of the run, and the runs
    known to have ended (RV(ended)), whose host locks may be reclaimed.
  - Each acquisition, take-over and release is recorded in the audit trail when the run has one (kind C(lock)).
  - The lock protects the runs of one audit trail, that is of one controller or of the controllers that share the
    trail's directory. Runs from different trails are kept apart by the host locks of M(fleetpatch.rollout.lock).
  - Runs on the controller only; it never contacts the host.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
attributes:
  action:
    support: full
    description: Everything happens on the controller.
  check_mode:
    support: full
    details:
      - In check mode a held lock is still refused, so a dry run says who holds the fleet; nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Taking a lock the run already holds changes nothing.
options:
  state:
    description:
      - V(acquired) takes the lock for this run; V(released) frees it when this run holds it.
    type: str
    choices: [acquired, released]
    default: acquired
  patch_id:
    description:
      - The patch the run rolls out or back, shown to anyone the lock refuses.
    type: str
  holder:
    description:
      - Who runs it. Default the variable C(fleetpatch_implemented_by), else AWX's C(awx_user_name), else the
        controller's user.
    type: str
  job:
    description:
      - The job that runs it. Default AWX's C(awx_job_id) (or C(tower_job_id)).
    type: str
  take_over:
    description:
      - Take over a lock whose run is gone (its process no longer runs on this controller) or that was taken on
        another controller. Needs the audit callback, which records the take-over.
    type: bool
    default: false
  path:
    description:
      - The lock file. Default C(<audit log>.fleet-lock).
    type: path
seealso:
  - module: fleetpatch.rollout.lock
  - plugin: fleetpatch.rollout.audit
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Take the fleet lock (a second rollout is refused here, with the holder named)
  fleetpatch.rollout.fleet_lock:
    patch_id: FP-2025-14847
  register: fleet_lock
  run_once: true

- name: Release it
  fleetpatch.rollout.fleet_lock:
    state: released
  run_once: true
"""

RETURN = r"""
owner:
  description: The run's id, the audit callback's run id when it is enabled (else the controller, process id and start).
  returned: always
  type: str
  sample: 0c6f8f1d2a3b4c5d6e7f809112233445
audited:
  description: Whether the run has an audit trail (the audit callback is enabled), where lock events are recorded.
  returned: always
  type: bool
path:
  description: The lock file.
  returned: always
  type: str
  sample: /var/log/fleetpatch/audit.jsonl.fleet-lock
holder:
  description: The lock as held by this run.
  returned: with O(state=acquired)
  type: dict
  sample: {"owner": "0c6f...", "who": "bob", "patch": "FP-2025-14847", "since": "2026-12-02T03:10:00Z", "job": "4711",
           "controller": "ctl-1", "pid": 12345, "pid_start": "884211", "user": "root"}
ended:
  description: The last runs that released the lock, oldest first (the one taken over included).
  returned: with O(state=acquired)
  type: list
  elements: str
taken_over:
  description: The lock of the gone run that O(take_over) replaced, or null.
  returned: with O(state=acquired)
  type: dict
held_by:
  description: The holder of the lock that made the task fail.
  returned: when the lock is held by another run
  type: dict
released:
  description: The lock this task freed, or null.
  returned: with O(state=released)
  type: dict
"""
