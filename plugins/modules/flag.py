#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flag
short_description: Turn a service's feature flag on or off, and make the running service take it
version_added: 0.1.0
description:
  - Sets the flag O(name) to O(enabled) in the service's flags file, a JSON object whose key C(flags) maps
    each flag's name to true or false. The file is written durably and atomically. The module then makes the
    service reload it (O(reload_command) or O(reload_signal)), and, with O(confirm_url), waits until the
    service reports the flag at its new value.
  - If the service does not take it, the flags file is put back as it was, the service reloaded, and the task
    fails.
  - A patch can ship dark behind a flag; turning the flag off is the single-toggle revert.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
options:
  name:
    description:
      - Name of the flag, for example V(strict_length_check).
    type: str
    required: true
  enabled:
    description:
      - Whether the flag is on.
    type: bool
    required: true
  flags_file:
    description:
      - The service's flags file. An absent file holds no flags.
    type: path
    default: /etc/fpdemo/flags.json
  reload_command:
    description:
      - Command (argv, no shell) that makes the service reload its flags. This or O(reload_signal) is required.
    type: list
    elements: str
  reload_signal:
    description:
      - Signal (V(HUP), ...) sent to the process whose id is in O(pid_file), instead of O(reload_command).
    type: str
  pid_file:
    description:
      - File holding the process id O(reload_signal) goes to.
    type: path
  confirm_url:
    description:
      - URL, requested from the host itself, where the service answers a JSON object whose key C(flags) holds
        the flags it runs with. Without it the flag is not confirmed.
    type: str
  confirm_timeout:
    description:
      - Seconds to wait for O(confirm_url) to show the new value.
    type: int
    default: 30
seealso:
  - module: fleetpatch.rollout.apply
"""

EXAMPLES = r"""
- name: Turn on the length check that mitigates the leak, without a restart
  fleetpatch.rollout.flag:
    name: strict_length_check
    enabled: true
    reload_command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, reload]
    confirm_url: http://127.0.0.1:8080/flags
"""

RETURN = r"""
name:
  description: The flag.
  returned: success
  type: str
  sample: strict_length_check
enabled:
  description: Its value now.
  returned: success
  type: bool
  sample: true
flags:
  description: Every flag in the flags file now.
  returned: success
  type: dict
  sample: {"strict_length_check": true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._flag import set_flag
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "enabled": {"type": "bool", "required": True},
            "flags_file": {"type": "path", "default": "/etc/fpdemo/flags.json"},
            "reload_command": {"type": "list", "elements": "str"},
            "reload_signal": {"type": "str"},
            "pid_file": {"type": "path"},
            "confirm_url": {"type": "str"},
            "confirm_timeout": {"type": "int", "default": 30},
        },
        required_one_of=[("reload_command", "reload_signal")],
        mutually_exclusive=[("reload_command", "reload_signal")],
        required_by={"reload_signal": ("pid_file",)},
        supports_check_mode=True,
    )
    run_operation(module, set_flag, ("name",))


if __name__ == "__main__":
    main()
