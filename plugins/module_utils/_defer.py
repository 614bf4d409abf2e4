# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deferrals: a patch the rollout left out on this host for now, why, and until when.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A host keeps at most one deferral per patch (the latest decision) in its state file's ``deferred`` list; an
apply of that patch removes it.
"""

from __future__ import annotations

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._lease import check_lease
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import utc_now, with_state_file

__all__ = ["record_deferral"]


def record_deferral(params, host, check_mode):
    """Record that ``params['patch_id']`` is deferred on this host; the module's result."""
    reason = (params.get("reason") or "").strip()
    if not reason:
        raise PatchError("reason: a deferral needs a reason, for example 'outside maintenance window'")
    return _record(dict(params, reason=reason), host, check_mode)


@with_state_file
def _record(store, params, host, check_mode):
    """The deferral recorded in ``store`` (``params['reason']`` already checked)."""
    del host  # nothing to run: the state file is all it touches
    state = store.state
    check_lease(state, params.get("owner"), store.path)
    reason = params["reason"]
    wanted = {"patch": params["patch_id"], "reason": reason, "until": params.get("deferred_until")}
    before = [entry for entry in state["deferred"] if entry.get("patch") == params["patch_id"]]
    same = [entry for entry in before if {key: entry.get(key) for key in wanted} == wanted]
    result = {"changed": not same or len(before) > 1, "deferred": dict(wanted)}
    after = [entry for entry in state["deferred"] if entry.get("patch") != params["patch_id"]]
    after.append(same[0] if same else {**wanted, "at": utc_now()})
    result["diff"] = {"before": {"deferred": before}, "after": {"deferred": [after[-1]]}}
    if result["changed"] and not check_mode:
        state["deferred"] = after
        store.save()
    return result
