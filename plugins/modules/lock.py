#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: lock
short_description: Take or release a host's fleetpatch lock for one rollout or rollback run
version_added: 0.1.0
description:
  - A rollout or a rollback holds every host in its scope for its whole run. This module writes the lock (the
    C(lease) entry of the host's state file) naming the run O(owner), who holds it (O(holder)), the patch, since
    when, the job and the controller, and removes it at the end.
  - While a host is locked, M(fleetpatch.rollout.apply), M(fleetpatch.rollout.rollback) and
    M(fleetpatch.rollout.defer) refuse any call that does not name the holding run as their O(owner), so two
    rollouts can never work on one host at once, even from two controllers.
  - A host locked by another run is refused with the holder named, and nothing changes, unless that run is known
    to have ended (O(reclaim)) or the operator takes its lock over (O(take_over)); the result then says whose lock
    was taken (RV(reclaimed) or RV(taken_over)), for the audit trail.
  - Releasing a lock that another run holds, or no lock, changes nothing.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
  - fleetpatch.rollout.service.state_file
options:
  owner:
    description:
      - The id of the run that takes or releases the lock; the rollout uses the id of its audit trail's run, as
        M(fleetpatch.rollout.fleet_lock) returns it.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock for O(owner); V(released) removes it when O(owner) holds it.
    type: str
    choices: [acquired, released]
    default: acquired
  holder:
    description:
      - Who runs the rollout (the implementer), shown to anyone the lock refuses.
    type: str
  patch_id:
    description:
      - The patch the run rolls out or back.
    type: str
  job:
    description:
      - The job that runs it, for example the AWX job id.
    type: str
  controller:
    description:
      - The controller the run is on.
    type: str
  reclaim:
    description:
      - Runs known to have ended (their fleet lock was released). A lock one of them left on the host is taken
        without O(take_over).
    type: list
    elements: str
    default: []
  take_over:
    description:
      - Take a lock held by another run. Only for a run that is gone (killed, its controller lost); the lock of a
        live run protects hosts it is patching.
    type: bool
    default: false
seealso:
  - module: fleetpatch.rollout.fleet_lock
  - module: fleetpatch.rollout.apply
"""

EXAMPLES = r"""
- name: Lock the host for this run
  fleetpatch.rollout.lock:
    owner: "{{ fleet_lock.owner }}"
    holder: bob
    patch_id: FP-2025-14847

- name: Release it at the end
  fleetpatch.rollout.lock:
    owner: "{{ fleet_lock.owner }}"
    state: released
"""

RETURN = r"""
lease:
  description: The lock the host carries after the call (null when none).
  returned: success
  type: dict
  sample: {"owner": "9f1c...", "holder": "bob", "patch": "FP-2025-14847", "since": "2026-12-02T03:10:00Z", "job": "4711", "controller": "ctl-1"}
held_by:
  description: The lock of another run that made the call fail.
  returned: when the host is locked by another run
  type: dict
reclaimed:
  description: The lock of an ended run that this call replaced.
  returned: when such a lock was found
  type: dict
taken_over:
  description: The lock of another run that O(take_over) replaced.
  returned: when a lock was taken over
  type: dict
released:
  description: The lock this call removed.
  returned: with O(state=released), when O(owner) held the lock
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import STATE_FILE_ARGSPEC
from ansible_collections.fleetpatch.rollout.plugins.module_utils._lease import set_lease
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


def main():
    module = AnsibleModule(
        argument_spec={
            "owner": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["acquired", "released"], "default": "acquired"},
            "holder": {"type": "str"},
            "patch_id": {"type": "str"},
            "job": {"type": "str"},
            "controller": {"type": "str"},
            "reclaim": {"type": "list", "elements": "str", "default": []},
            "take_over": {"type": "bool", "default": False},
            **STATE_FILE_ARGSPEC,
        },
        supports_check_mode=True,
    )
    run_operation(module, set_lease, ("owner",))


if __name__ == "__main__":
    main()
