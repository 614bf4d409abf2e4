#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: detect
short_description: Find which version of a component a host runs, and whether it is affected
version_added: 0.1.0
description:
  - Finds the installed version of O(component) by one of several read-only strategies, tells whether that
    version lies in the O(affected) range of a patch and whether it is at or above O(fixed_version), and reads
    what fleetpatch recorded on the host in its state file (patches applied, patches deferred, rollbacks, an
    interrupted apply).
  - Makes one round trip to the host and changes nothing on it.
  - A state file that cannot be read, or is damaged, does not stop the detection. RV(version), RV(affected)
    and RV(fixed) are reported, RV(state_error) says what is wrong with the file, and RV(applied),
    RV(deferred), RV(rollbacks) and RV(interrupted) are V(null) (unknown).
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.info_module
  - fleetpatch.rollout.service.state_file
options:
  component:
    description:
      - Name of the component, for example V(fpdemo).
      - With O(strategy=package) it is also the package name unless O(package) is set.
    type: str
    required: true
  strategy:
    description:
      - How to find the installed version.
      - V(current_link) reads the name of the release directory that C(<install_dir>/current) points to.
      - V(version_file) reads O(version_file), by default C(<install_dir>/current/VERSION).
      - V(command) runs O(command) and takes the first group of O(version_regex) from its output.
      - V(package) asks the dpkg database (or rpm, where there is no dpkg) for the version of O(package), the
        whole version with its epoch and revision (or release).
      - V(http) requests O(url) and takes O(version_key) from the JSON it answers, or the first group of
        O(version_regex) when set.
    type: str
    choices: [current_link, version_file, command, package, http]
    default: current_link
  install_dir:
    description:
      - Directory holding C(releases/<version>/) and the C(current) link.
    type: path
    default: /srv/fpdemo
  version_file:
    description:
      - File whose content is the version, with O(strategy=version_file).
    type: path
  command:
    description:
      - Command (argv list, no shell) whose output carries the version, with O(strategy=command).
    type: list
    elements: str
  version_regex:
    description:
      - Regular expression that finds the version in a command's output or an HTTP body; its first group is
        the version, or the whole match when it has no group.
      - With O(strategy=command) it defaults to the first dotted number, such as C(7.0.28) or C(7.0.28-rc1).
      - With O(strategy=http) and no O(version_regex), the body is read as JSON instead (see O(version_key)).
    type: str
  package:
    description:
      - Package name for O(strategy=package), when it differs from O(component).
    type: str
  url:
    description:
      - URL answering the version, with O(strategy=http); requested from the host itself.
    type: str
  version_key:
    description:
      - Key of the JSON object that O(url) answers which holds the version.
    type: str
    default: version
  timeout:
    description:
      - Seconds to wait for an HTTP answer, with O(strategy=http).
    type: int
    default: 10
  affected:
    description:
      - Version range of the affected versions, for example V(>=7.0.0,<7.0.28 || >=8.0.0,<8.0.17).
      - Comparators C(==), C(!=), C(<), C(<=), C(>), C(>=) joined by commas must all hold; C(||) separates
        alternatives.
      - Without it RV(affected) is V(null).
      - With O(strategy=package) the versions are compared as the host's package database compares them, in
        C(dpkg --compare-versions) order for dpkg (C([epoch:]upstream[-revision]), so V(7.0.28~rc1) sorts before
        V(7.0.28) and V(7.0.28-1) after it) and in C(rpmvercmp) order for rpm (C([epoch:]version[-release]), a
        version without a release before every release of it). Write the bounds in that form, for example
        V(<1:9.2p1-2+deb12u5).
    type: str
  fixed_version:
    description:
      - First version that carries the fix; without it RV(fixed) is V(null).
      - Compared like O(affected), in the package database's order with O(strategy=package).
    type: str
notes:
  - Needs nothing on the host but Python 3; O(strategy=package) needs C(dpkg-query) or C(rpm).
seealso:
  - name: CVE-2025-14847
    description: The vulnerability that the defect of the collection's demo service is modelled on.
    link: https://www.cve.org/CVERecord?id=CVE-2025-14847
"""

EXAMPLES = r"""
- name: Which fpdemo release does the current link point to, and is it affected?
  fleetpatch.rollout.detect:
    component: fpdemo
    install_dir: /srv/fpdemo
    affected: ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
    fixed_version: 7.0.28
  register: fp_detect

- name: Ask the running service itself
  fleetpatch.rollout.detect:
    component: fpdemo
    strategy: http
    url: http://127.0.0.1:8080/version

- name: Read the version from a command's output
  fleetpatch.rollout.detect:
    component: openssl
    strategy: command
    command: [openssl, version]
    version_regex: 'OpenSSL (\d+\.\d+\.\d+)'

- name: Read the version from the package database
  fleetpatch.rollout.detect:
    component: openssh-server
    strategy: package
"""

RETURN = r"""
component:
  description: The component asked about.
  returned: success
  type: str
  sample: fpdemo
strategy:
  description: The strategy that found the version.
  returned: success
  type: str
  sample: current_link
version:
  description: The installed version.
  returned: success
  type: str
  sample: 7.0.26
affected:
  description: Whether RV(version) lies in O(affected); V(null) without O(affected).
  returned: success
  type: bool
  sample: true
fixed:
  description: Whether RV(version) is at or above O(fixed_version); V(null) without O(fixed_version).
  returned: success
  type: bool
  sample: false
applied:
  description:
    - Patches fleetpatch applied to this component on the host, oldest first; V(null) when RV(state_error) is set.
    - C(judged) is when M(fleetpatch.rollout.health) judged the patched host healthy; a record without it is an
      apply whose run ended before the judgment.
  returned: success
  type: list
  elements: dict
  sample: [{"patch": "FP-2025-14847", "component": "fpdemo", "version": "7.0.28", "from": "7.0.26", "at": "2026-11-22T03:10:00Z",
            "judged": "2026-11-22T03:15:02Z"}]
deferred:
  description: Patches fleetpatch deferred on this host, with the reason and until when; V(null) when RV(state_error) is set.
  returned: success
  type: list
  elements: dict
  sample: [{"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-11-28T01:00:00Z"}]
rollbacks:
  description:
    - Rollbacks of this component fleetpatch made on the host, oldest first, each with the patch it took back
      (V(null) for a rollback run without one), the releases it went from and to, and when; V(null) when
      RV(state_error) is set.
  returned: success
  type: list
  elements: dict
  sample: [{"patch": "FP-2025-14847", "component": "fpdemo", "from": "7.0.28", "to": "7.0.26", "at": "2026-11-22T03:20:00Z"}]
interrupted:
  description:
    - The journal of an apply or rollback that did not finish, or V(null).
    - V(null) also when RV(state_error) is set; an operation may then be under way or cut off unnoticed.
  returned: success
  type: dict
  sample: null
state_error:
  description:
    - Why the state file O(state_file) could not be read (damaged, naming the file and every bad field, or
      unreadable), or V(null) when it was read (an absent file reads as a host fleetpatch never touched).
  returned: success
  type: str
  sample: "state file /var/lib/fleetpatch/state.json: components.fpdemo.version is 5, expected a string"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import STATE_FILE_ARGSPEC
from ansible_collections.fleetpatch.rollout.plugins.module_utils._detect import STRATEGIES, detect
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import ModuleHost


def main():
    module = AnsibleModule(
        argument_spec={
            "component": {"type": "str", "required": True},
            "strategy": {"type": "str", "choices": list(STRATEGIES), "default": "current_link"},
            "install_dir": {"type": "path", "default": "/srv/fpdemo"},
            "version_file": {"type": "path"},
            "command": {"type": "list", "elements": "str"},
            "version_regex": {"type": "str"},
            "package": {"type": "str"},
            "url": {"type": "str"},
            "version_key": {"type": "str", "default": "version", "no_log": False},
            "timeout": {"type": "int", "default": 10},
            "affected": {"type": "str"},
            "fixed_version": {"type": "str"},
            **STATE_FILE_ARGSPEC,
        },
        required_if=[("strategy", "command", ("command",)), ("strategy", "http", ("url",))],
        supports_check_mode=True,
    )
    try:
        result = detect(module.params, ModuleHost(module))
    except PatchError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
