#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback
short_description: Return a host to the release it ran before a patch, or to a named one
version_added: 0.1.0
description:
  - Switches the C(current) link back to the release the host ran before its last patch (as recorded by
    M(fleetpatch.rollout.apply) in the state file), or to the release O(to), atomically; makes the service
    take it; confirms through O(version_url) that it runs it; and records the rollback in the state file.
  - A hot rollback whose reload the service refuses (another ABI) falls back to O(restart_command).
  - A missing or incomplete target release is a clear failure, and nothing changes.
  - If the service does not answer the target version, the host is returned to the release it ran and the
    task fails. An interrupted apply or rollback found in the journal is reverted first.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
  - fleetpatch.rollout.service
  - fleetpatch.rollout.lease
options:
  to:
    description:
      - The release to return to. V(previous) means the release the host ran before its last apply or
        rollback of O(component).
    type: str
    default: previous
  patch_id:
    description:
      - The patch being rolled back, recorded with the rollback.
    type: str
  from_version:
    description:
      - Roll back only a host that runs this release (the patch's fixed version); a host on any other release
        is left as it is and reported with RV(carries=false). Given O(manifest), it is the manifest's
        C(fixed_version) unless set.
    type: str
seealso:
  - module: fleetpatch.rollout.apply
"""

EXAMPLES = r"""
- name: Roll back the patch its change record describes
  fleetpatch.rollout.rollback:
    manifest: /srv/patches/FP-2025-14847.yml

- name: Put fpdemo back on the release it ran before the patch
  fleetpatch.rollout.rollback:
    component: fpdemo
    patch_id: FP-2025-14847
    reload_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, reload]
    restart_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, restart]
    version_url: http://127.0.0.1:8080/version

- name: Return to a named release with a restart
  fleetpatch.rollout.rollback:
    component: fpdemo
    to: 7.0.27
    patch_class: restart
    restart_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, restart]
    version_url: http://127.0.0.1:8080/version
"""

RETURN = r"""
component:
  description: The component rolled back.
  returned: success
  type: str
  sample: fpdemo
version:
  description: The release the service runs now.
  returned: success
  type: str
  sample: 7.0.26
previous:
  description: The release the host ran before this rollback.
  returned: success
  type: str
  sample: 7.0.28
carries:
  description: Whether the host ran O(from_version) (or, without it, whether there was anything to roll back).
  returned: success
  type: bool
  sample: true
recovered:
  description: The journal of an interrupted apply or rollback that this run reverted first.
  returned: when an interrupted operation was found
  type: dict
  sample: {"op": "apply", "from": "7.0.26", "to": "7.0.28", "step": "switched"}
interrupted:
  description: In check mode, the journal of an interrupted operation that a real run would revert.
  returned: in check mode, when an interrupted operation was found
  type: dict
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

from ansible_collections.fleetpatch.rollout.plugins.module_utils._apply import rollback_patch
from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import SERVICE_ARGSPEC, SERVICE_REQUIRED_IF
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


def main():
    module = AnsibleModule(
        argument_spec={
            **SERVICE_ARGSPEC,
            "to": {"type": "str", "default": "previous"},
            "patch_id": {"type": "str"},
            "from_version": {"type": "str"},
        },
        required_if=SERVICE_REQUIRED_IF,
        mutually_exclusive=[("reload_command", "reload_signal")],
        supports_check_mode=True,
    )
    run_operation(module, rollback_patch, ("component", "version_url"))


if __name__ == "__main__":
    main()
