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
  - When the callback writes the trail to PostgreSQL (its C(dsn) option), the lock is the trail's row of the table
    C(fleetpatch_audit.fleet_lock) in that database instead, taken and released in one transaction under the row's
    lock, so that jobs on separate controllers or AWX execution nodes are kept apart as well. C(fleetpatch-audit init-db)
    creates the table and lets the writer role change the row (SELECT and UPDATE of its state, nothing else). A
    holder's process can be checked only on the controller that took the lock, so a holder from another controller is
    taken over only with O(take_over), as with the file.
  - Runs that give the same O(share) key hold the lock together, for example the slices of one wave of a stored plan
    run as parallel AWX jobs. Any other run is refused while one of them holds it; each leaves on its own, and the lock
    is free when the last has left.
  - The lock is released by O(state=released), and in any case by the audit callback when the run ends, even when it
    failed. A run killed outright (SIGKILL, a lost controller) leaves it behind; such a stale lock is taken over only
    with O(take_over), and the take-over is recorded in the audit trail. A lock whose process still runs on this
    controller is never taken over.
  - Returns the run's id (RV(owner)), which M(fleetpatch.rollout.lock) writes on every host of the run, and the runs
    known to have ended (RV(ended)), whose host locks may be reclaimed.
  - Each acquisition, take-over and release is recorded in the audit trail when the run has one (kind C(lock)).
  - The lock protects the runs of one audit trail, that is of one controller or of the controllers that share the
    trail's directory or its database. Runs from different trails are kept apart by the host locks of
    M(fleetpatch.rollout.lock).
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
      - A lock that several runs share is taken over only when none of them is known to run; all of them are then
        replaced and remembered as ended.
    type: bool
    default: false
  share:
    description:
      - A key that lets runs hold the lock together. A run that gives the same key as the runs that hold the lock
        joins them; a run with another key, or none, is refused while any of them holds it, with each named.
      - The rollout passes the plan's sha256 and the wave's name (V(<sha256> canary)), so that the slices of one wave
        run together and those of different waves never do. Unset or empty, the run holds the lock alone.
    type: str
  path:
    description:
      - The lock file. Default C(<audit log>.fleet-lock), or the trail's row in the database for a PostgreSQL trail.
      - When set, this file is the lock whatever the audit sink is.
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

- name: Take the fleet lock together with the other slices of this wave (AWX job slicing)
  fleetpatch.rollout.fleet_lock:
    patch_id: FP-2025-14847
    share: "{{ lookup('ansible.builtin.file', fleetpatch_plan_file) | hash('sha256') }} {{ fleetpatch_wave }}"
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
  description: The lock file, or for a PostgreSQL trail the database, trail and table that hold it.
  returned: always
  type: str
  sample: /var/log/fleetpatch/audit.jsonl.fleet-lock
holder:
  description: The lock as held by this run.
  returned: with O(state=acquired)
  type: dict
  sample: {"owner": "0c6f...", "who": "bob", "patch": "FP-2025-14847", "since": "2026-12-02T03:10:00Z", "job": "4711",
           "controller": "ctl-1", "pid": 12345, "pid_start": "884211", "user": "root"}
holders:
  description: Every run that holds the lock now, this one included; more than one only when they share it (O(share)).
  returned: with O(state=acquired)
  type: list
  elements: dict
share:
  description: The key under which the lock is held, or null when it is held alone.
  returned: with O(state=acquired)
  type: str
  sample: 3f2a...9c1e canary
ended:
  description: The last runs that released the lock, oldest first (those taken over included).
  returned: with O(state=acquired)
  type: list
  elements: str
taken_over:
  description: The lock of the gone run that O(take_over) replaced (the first, when several shared it), or null.
  returned: with O(state=acquired)
  type: dict
taken_over_all:
  description: Every holder that O(take_over) replaced; empty when none was.
  returned: with O(state=acquired)
  type: list
  elements: dict
held_by:
  description: The holder of the lock that made the task fail (a live one, when one still runs).
  returned: when the lock is held by another run
  type: dict
held_by_all:
  description: Every holder of the lock that made the task fail.
  returned: when the lock is held by another run
  type: list
  elements: dict
released:
  description: The lock this task freed, or null.
  returned: with O(state=released)
  type: dict
"""
