# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way fleetpatch's state-changing modules talk to Ansible.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
"""

from __future__ import annotations

from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import missing_options
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import ModuleHost
from ansible_collections.fleetpatch.rollout.plugins.module_utils._lease import state_lock

__all__ = ["run_operation"]


def run_operation(module, operation, required, then=None):
    """Check the ``required`` options, run ``operation(params, host, check_mode)``, and end the module with its result.

    A :class:`PatchError` becomes ``fail_json`` with its details; the diff is returned only with ``--diff``.
    A module with a state file runs the operation under the host's state lock (outside check mode, which writes
    nothing), so that no other fleetpatch call on the host runs at the same time.
    ``then(params, host, check_mode, result)``, when given, runs after the lock is released and returns the result
    (the health check that judges an apply in the same call: it takes the lock itself only to record its verdict).
    """
    problem = missing_options(module.params, required)
    if problem:
        module.fail_json(msg=problem)
    host = ModuleHost(module)
    try:
        if module.params.get("state_file") and not module.check_mode:
            with state_lock(module.params["state_file"]):
                result = operation(module.params, host, module.check_mode)
        else:
            result = operation(module.params, host, module.check_mode)
        if then is not None:
            result = then(module.params, host, module.check_mode, result)
    except PatchError as exc:
        if not module._diff:
            exc.details.pop("diff", None)
        module.fail_json(msg=str(exc), **exc.details)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
