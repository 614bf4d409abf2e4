# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options of the modules that switch a service between releases (apply, rollback).

``fleetpatch.rollout.service.state_file`` is the state file option alone, for the modules that only read it
(detect); ``fleetpatch.rollout.service.state_writer`` is it with ``damaged_state``, for the modules that write the
state file without switching the service (defer).
"""

from __future__ import annotations


class ModuleDocFragment:
    """The service being patched: where its releases live, how it is reloaded, how its version is read."""

    DOCUMENTATION = r"""
options:
  manifest:
    description:
      - Path, on the controller, of the patch manifest (the change record). It is validated against the
        collection's JSON Schema before anything happens, and gives every option below that the task does not
        set itself (component, release, artifact, class, reload and restart commands, version URL).
      - A relative path is found as P(ansible.builtin.file#lookup) finds a file, in the task's role and then the
        playbook's directory (under C(files/) first), then beside the inventory; the current directory plays no part.
        The manifest's own relative paths (its artifact and signature) are relative to the manifest file.
    type: path
  component:
    description:
      - Name of the component, for example V(fpdemo). Recorded in the host's state file.
      - Required unless O(manifest) gives it.
    type: str
  install_dir:
    description:
      - Directory holding C(releases/<version>/) and the C(current) link to the release in use.
    type: path
    default: /srv/fpdemo
  state_file:
    description:
      - The host's fleetpatch state file (JSON), written durably and atomically.
    type: path
    default: /var/lib/fleetpatch/state.json
  damaged_state:
    description:
      - What to do when the state file O(state_file) is damaged (not JSON, not a JSON object, without the format
        this fleetpatch reads, or with a field of the wrong type or one it does not know). The failure names the
        file and every damaged field.
      - V(refuse) fails the task and leaves the file exactly as it is, as evidence; nothing on the host changes.
      - V(move_aside) goes on as if the host had no state file, and before the first write moves the damaged file
        to C(<state_file>.damaged-<UTC time>), never over another file. RV(state_error) says what was wrong
        and RV(state_moved_to) where the file went; moving it reports RV(ignore:changed=true). What the damaged file
        recorded (the release before the patch, an interrupted operation) is then unknown to this run.
      - A run that writes nothing (a refusal, nothing to do, check mode) moves nothing. A file that cannot be read
        at all (permissions, I/O) is never moved.
    type: str
    choices: [refuse, move_aside]
    default: refuse
  patch_class:
    description:
      - V(hot) makes the service take the new release with O(reload_command), without a restart.
      - V(restart) restarts the service with O(restart_command).
      - A patch that needs a reboot or a schema or configuration migration is not a hot patch; fleetpatch does
        not apply it.
    type: str
    choices: [hot, restart]
    default: hot
    aliases: [class]
  reload_command:
    description:
      - Command (argv, no shell) that makes the service reload the release C(current) points to.
      - With O(patch_class=hot), this or O(reload_signal) is required.
    type: list
    elements: str
  reload_signal:
    description:
      - Signal (V(HUP), V(SIGUSR2), ...) sent to the process whose id is in O(pid_file) to make the service
        reload, instead of O(reload_command).
    type: str
  pid_file:
    description:
      - File holding the process id O(reload_signal) goes to. Required with O(reload_signal).
    type: path
  restart_command:
    description:
      - Command (argv, no shell) that restarts the service.
      - Required with O(patch_class=restart); also used to bring back a service that died during an
        interrupted operation.
    type: list
    elements: str
  version_url:
    description:
      - URL, requested from the host itself, where the service answers the version it runs as JSON. The module
        confirms through it that the service runs the release it switched to.
      - Required unless O(manifest) gives it.
    type: str
  version_key:
    description:
      - Key of the JSON object O(version_url) answers which holds the version.
    type: str
    default: version
  confirm_timeout:
    description:
      - Seconds to wait for the service to answer the expected version after a reload or restart.
    type: int
    default: 30
"""

    # state_file as DOCUMENTATION has it (ansible-test reads fragments as plain strings, so it is written twice):
    # change both together.
    STATE_FILE = r"""
options:
  state_file:
    description:
      - The host's fleetpatch state file (JSON), written durably and atomically.
    type: path
    default: /var/lib/fleetpatch/state.json
"""

    # state_file and damaged_state as DOCUMENTATION has them, for the modules that write the state file without
    # switching the service (defer): change all three copies together.
    STATE_WRITER = r"""
options:
  state_file:
    description:
      - The host's fleetpatch state file (JSON), written durably and atomically.
    type: path
    default: /var/lib/fleetpatch/state.json
  damaged_state:
    description:
      - What to do when the state file O(state_file) is damaged (not JSON, not a JSON object, without the format
        this fleetpatch reads, or with a field of the wrong type or one it does not know). The failure names the
        file and every damaged field.
      - V(refuse) fails the task and leaves the file exactly as it is, as evidence; nothing on the host changes.
      - V(move_aside) goes on as if the host had no state file, and before the first write moves the damaged file
        to C(<state_file>.damaged-<UTC time>), never over another file. RV(state_error) says what was wrong
        and RV(state_moved_to) where the file went; moving it reports RV(ignore:changed=true). What the damaged file
        recorded (the release before the patch, an interrupted operation) is then unknown to this run.
      - A run that writes nothing (a refusal, nothing to do, check mode) moves nothing. A file that cannot be read
        at all (permissions, I/O) is never moved.
    type: str
    choices: [refuse, move_aside]
    default: refuse
"""
