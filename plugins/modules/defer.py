#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: defer
short_description: Record on a host that a patch was deferred, why, and until when
version_added: 0.1.0
description:
  - Writes the deferral of patch O(patch_id) into the host's fleetpatch state file (its C(deferred) list), with
    O(reason) and O(deferred_until), durably and atomically. A host keeps one deferral per patch, the latest; applying
    the patch with M(fleetpatch.rollout.apply) removes it.
  - M(fleetpatch.rollout.detect) reports the deferrals a host carries.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
  - fleetpatch.rollout.service.state_writer
  - fleetpatch.rollout.lease
options:
  patch_id:
    description:
      - The patch deferred, like V(FP-2025-14847).
    type: str
    required: true
  reason:
    description:
      - Why, for example V(outside maintenance window).
    type: str
    required: true
  deferred_until:
    description:
      - When the patch may go ahead, an RFC 3339 UTC timestamp (the start of the host's next window).
    type: str
seealso:
  - module: fleetpatch.rollout.detect
"""

EXAMPLES = r"""
- name: Defer the patch to the host's next maintenance window
  fleetpatch.rollout.defer:
    patch_id: FP-2025-14847
    reason: outside maintenance window
    deferred_until: "2026-11-24T01:00:00Z"
"""

RETURN = r"""
deferred:
  description: The deferral recorded.
  returned: success
  type: dict
  sample: {"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-11-24T01:00:00Z"}
state_error:
  description:
    - What is wrong with the damaged state file that this run went on without, with O(damaged_state=move_aside).
  returned: when the state file was damaged and O(damaged_state=move_aside)
  type: str
  sample: "state file /var/lib/fleetpatch/state.json: components.fpdemo.version is 5, expected a string"
state_moved_to:
  description:
    - Where the damaged state file was moved before this run wrote the state afresh.
  returned: when a damaged state file was moved aside
  type: str
  sample: /var/lib/fleetpatch/state.json.damaged-20261202T031500Z
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import OWNER_ARGSPEC, STATE_WRITER_ARGSPEC
from ansible_collections.fleetpatch.rollout.plugins.module_utils._defer import record_deferral
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


def main():
    module = AnsibleModule(
        argument_spec={
            "patch_id": {"type": "str", "required": True},
            "reason": {"type": "str", "required": True},
            "deferred_until": {"type": "str"},
            **STATE_WRITER_ARGSPEC,
            **OWNER_ARGSPEC,
        },
        supports_check_mode=True,
    )
    run_operation(module, record_deferral, ("patch_id", "reason"))


if __name__ == "__main__":
    main()
