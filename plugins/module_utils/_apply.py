# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a patch release on a host, or roll it back, as one journaled transaction.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The sequence of an apply, each step recorded in the state file's journal before the next starts::

    journaled -> unpacked -> switched -> activated -> confirmed -> (recorded, journal cleared)

A run that finds a journal (an apply or rollback killed at any step: SSH drop, controller killed, power cut)
first reverts it: ``current`` back to the release the operation started from, the service made to run it again,
the journal cleared. Then it does its own work. A host therefore always ends on exactly the old or the new
release, and re-running an interrupted operation finishes it.

The environment variable ``FLEETPATCH_CRASH_AT=<step>`` makes the process SIGKILL itself right after that
step: the fault-injection tests use it to kill the apply at every point of its sequence.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
from contextlib import nullcontext

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._health import check_health, check_health_params
from ansible_collections.fleetpatch.rollout.plugins.module_utils._lease import check_lease, state_lock
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import (
    Service,
    current_version,
    release_complete,
    switch_current,
    unpack_artifact,
    verify_sha256,
)
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import JOURNAL_STEPS, StateFile, utc_now, with_state_file
from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange

__all__ = ["STEPS", "apply_patch", "judge_applied", "judge_health", "judged_state", "record_judgment", "rollback_patch"]

STEPS = JOURNAL_STEPS  # the journal's steps, in an apply's order (a rollback takes journaled, switched, confirmed)
CRASH_ENV = "FLEETPATCH_CRASH_AT"
DOWNLOAD_TIMEOUT = 120  # seconds without progress before a download from artifact_url is given up


def _crash_point(step):
    """Fault injection: die here, as a killed process would, when the tests ask for it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _version(text, what):
    try:
        return Version(text)
    except VersionError as exc:
        raise PatchError(f"{what}: {exc}") from None


def _installed(params):
    current = current_version(params["install_dir"])
    if current is None:
        raise PatchError(f"{params['component']} is not installed: {params['install_dir']}/current does not exist")
    return current


def _step(store, step):
    store.state["journal"]["step"] = step
    store.save()
    _crash_point(step)


def _activate_and_confirm(service, patch_class, version):
    """Make the service run ``version`` (already linked as current); True when it answers that version.

    A failing reload or restart command is not raised: it shows as the service not answering ``version``,
    and its message stays in ``service.last_error``.
    """
    try:
        service.activate(patch_class)
    except PatchError as exc:
        service.last_error = str(exc)
    return service.confirm(version) == version


def _recover(store, params, service):
    """Revert the interrupted operation in the journal; returns the journal that was reverted."""
    journal = store.state["journal"]
    install_dir = params["install_dir"]
    source = journal.get("from")
    if not source or not release_complete(install_dir, source):
        raise PatchError(
            f"an interrupted {journal.get('op')} of {journal.get('patch')} cannot be reverted: its starting release {source!r} is not installed",
            interrupted=journal,
        )
    leftovers = [os.path.join(install_dir, "releases", ".staging-*"), os.path.join(install_dir, "releases", ".download-*"),
                 os.path.join(install_dir, ".current-*")]
    for leftover in [path for pattern in leftovers for path in glob.glob(pattern)]:
        if os.path.isdir(leftover) and not os.path.islink(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.unlink(leftover)
    if current_version(install_dir) != source:
        switch_current(install_dir, source)
    if service.running_version() != source and not _activate_and_confirm(service, journal.get("class", "restart"), source):
        # A reload cannot bring back a service that died with its process: start it afresh.
        if not _activate_and_confirm(service, "restart", source):
            raise PatchError(f"an interrupted {journal.get('op')} was reverted to {source}, but the service does not answer {source}", interrupted=journal)
    store.state["journal"] = None
    store.save()
    return journal


def _begin(store, params, service, check_mode, result):
    """Load-time work shared by apply and rollback: report or revert an interrupted operation."""
    if not store.state["journal"]:
        return
    result["changed"] = True
    if check_mode:
        result["interrupted"] = store.state["journal"]
    else:
        result["recovered"] = _recover(store, params, service)


def judged_state(state, component, patch_id, version):
    """Whether the health of the apply that made ``component`` run ``version`` was judged.

    True or False when the last ``applied`` record of ``component`` is of ``patch_id`` to ``version`` (it has
    a ``judged`` mark, or not yet); None when the host runs ``version`` by other means (no such record).
    """
    records = [entry for entry in state["applied"] if isinstance(entry, dict) and entry.get("component") in (None, component)]
    if not records or records[-1].get("patch") != patch_id or records[-1].get("version") != version:
        return None
    return bool(records[-1].get("judged"))


def record_judgment(state_file, patch_id, version, check_mode, owner=None):
    """Mark the last ``applied`` record of ``patch_id``, when it is to ``version``, as judged healthy now.

    ``(changed, judged)``: ``judged`` is the record's mark (the time it was judged), or None when the state file
    holds no apply of ``patch_id`` to ``version`` to mark (the release came by other means). The mark is written
    under the host's state lock, and only by the run that holds the host (``owner``), if any does.
    """
    with nullcontext() if check_mode else state_lock(state_file):
        store = StateFile(state_file)
        records = [entry for entry in store.state["applied"] if entry.get("patch") == patch_id]
        if not records or records[-1].get("version") != version:
            return False, None
        record = records[-1]
        if record.get("judged"):
            return False, record["judged"]
        check_lease(store.state, owner, state_file)
        record["judged"] = utc_now()
        if not check_mode:
            store.save()
        return True, record["judged"]


def judge_health(params, host, check_mode, patch_id=None, version=None):
    """The health check of ``params`` (:func:`check_health`); the health module's result, with its diff.

    With ``patch_id``, a healthy verdict is recorded on the host: the last apply of ``patch_id``, when it is to
    ``version``, gets its ``judged`` mark (:func:`record_judgment`; ``judged`` in the result says when, or None).
    This is the one place where a verdict becomes a mark: an unhealthy verdict, or a check that raised, marks nothing.
    """
    thresholds = {key: value for key, value in (params.get("thresholds") or {}).items() if value is not None}  # unset suboptions
    result = check_health(dict(params, thresholds=thresholds), host, check_mode)
    if patch_id:
        result["judged"] = None
        if result["healthy"]:
            result["changed"], result["judged"] = record_judgment(params["state_file"], patch_id, version, check_mode, owner=params.get("owner"))
        result["diff"] = {"before": {"judged": None if result["changed"] else result["judged"]}, "after": {"judged": result["judged"]}}
    return result


def judge_applied(params, host, check_mode, result):
    """With ``params['judge']``, judge the health of the apply whose ``result`` this is, in the same call, where the soak allows.

    The apply's health is to be judged (soaked, and its healthy verdict marked) when this call changed the host, or
    when an earlier run applied the patch but ended before judging it (``judged`` false); a host already patched and
    judged is checked once (no soak) and nothing is marked. The check is made here only when the soak it takes is
    at most ``judge_max_soak`` (default 0: one round); otherwise ``health`` is None and the caller judges with the
    health module, after it has learned that the apply completed (a host lost during a long soak is then known to
    run the applied release). Nothing is judged when the apply has not completed (it asks for the artifact).

    ``result['health']`` is the health module's result (``healthy``, ``metrics``, ``failures``, ..., and
    ``judged`` when a mark was due). ``changed`` and the diff take in the mark. An unhealthy verdict raises
    :class:`PatchError` with the whole result when ``fail_on_unhealthy`` is set; the host stays patched either way
    (the rollback is the caller's decision).
    Runs outside the state lock: its probes must not hold the host's other fleetpatch calls off, and the mark
    takes the lock itself.
    """
    if not params.get("judge") or result.get("needs_artifact"):
        return result
    due = bool(result.get("changed")) or result.get("judged") is False
    soak = max(float(params.get("soak") or 0), 0.0) if due else 0.0
    if soak > max(float(params.get("judge_max_soak") or 0), 0.0):
        result["health"] = None
        return result
    verdict = judge_health(dict(params, soak=soak, fail_on_unhealthy=False), host, check_mode,
                           params["patch_id"] if due else None, params["version"])
    marked = verdict.pop("diff", None)
    marked_now = verdict.pop("changed")
    result["changed"] = bool(result.get("changed")) or marked_now
    result["health"] = verdict
    if marked and "diff" in result:
        result["diff"]["before"].update(marked["before"])
        result["diff"]["after"].update(marked["after"])
    if not verdict["healthy"] and params.get("fail_on_unhealthy", True):
        raise PatchError(verdict["msg"], **result)
    return result


def _diff(before, after):
    return {"before": {"current": before}, "after": {"current": after}}


@with_state_file
def apply_patch(store, params, host, check_mode):
    """Apply the release ``params['version']`` of ``params['component']``; the module's result."""
    state = store.state
    check_lease(state, params.get("owner"), store.path)
    if params.get("judge"):
        check_health_params(params)  # a probe set the health check would refuse is refused before the host changes
    service = Service(host, params)
    target = params["version"]
    result = {"changed": False, "patch": params["patch_id"], "component": params["component"], "version": target}
    target_version = _version(target, "version")
    compatible = None
    if params["compatible_with"]:
        try:
            compatible = VersionRange(params["compatible_with"])
        except VersionError as exc:
            raise PatchError(f"compatible_with: {exc}") from None
    _begin(store, params, service, check_mode, result)
    current = _installed(params)
    result["previous"] = current
    result["diff"] = _diff(current, target)
    current_version_ = _version(current, f"installed release in {params['install_dir']}/current")
    if current_version_ > target_version:
        raise PatchError(f"refusing to downgrade {params['component']} from {current} to {target}", installed=current)
    if current_version_ == target_version:
        result["judged"] = judged_state(state, params["component"], params["patch_id"], target)
        if service.running_version() == target:
            result["previous"] = (state["components"].get(params["component"]) or {}).get("previous", current)
            result["diff"] = _diff(current, current)
            return result
        result["changed"] = True  # linked but not running (an earlier activation failed or the service died)
        if not check_mode and not _activate_and_confirm(service, params["patch_class"], target):
            raise PatchError(f"{params['component']} {target} is installed but the service does not answer {target}", running=service.running_version())
        return result
    if compatible is not None and current_version_ not in compatible:
        raise PatchError(
            f"refusing to patch: {params['component']} {current} is outside compatible_with {params['compatible_with']!r}",
            installed=current,
        )
    result["changed"] = True
    result["judged"] = False  # a new apply: its health is yet to be judged
    needs_unpack = not release_complete(params["install_dir"], target)
    if check_mode:
        return result
    downloaded = None
    if needs_unpack and not params["artifact_path"]:
        if not params["artifact_url"]:
            result["needs_artifact"] = True
            return result
        downloaded = os.path.join(params["install_dir"], "releases", f".download-{os.getpid()}")
        os.makedirs(os.path.dirname(downloaded), mode=0o755, exist_ok=True)
        host.download(params["artifact_url"], downloaded, DOWNLOAD_TIMEOUT)
        params = dict(params, artifact_path=downloaded)
    try:
        if needs_unpack:
            verify_sha256(params["artifact_path"], params["artifact_sha256"])  # a wrong artifact is refused before any write
        return _switch_to(store, params, service, current, needs_unpack, result)
    finally:
        if downloaded and os.path.exists(downloaded):
            os.unlink(downloaded)


def _switch_to(store, params, service, current, needs_unpack, result):
    """The journaled part of an apply: unpack when needed, switch, activate, confirm, record."""
    state = store.state
    target = params["version"]
    state["journal"] = {
        "op": "apply", "patch": params["patch_id"], "component": params["component"], "class": params["patch_class"],
        "from": current, "to": target, "step": None, "started": utc_now(), "owner": params.get("owner"),
    }
    _step(store, "journaled")
    if needs_unpack:
        try:
            unpack_artifact(params["artifact_path"], params["artifact_sha256"], params["install_dir"], target)
        except PatchError:
            state["journal"] = None  # nothing was switched: a refused artifact leaves no operation to revert
            store.save()  # and the file as it was found (none, when there was none)
            raise
    _step(store, "unpacked")
    switch_current(params["install_dir"], target)
    _step(store, "switched")
    try:
        service.activate(params["patch_class"])
    except PatchError as exc:
        service.last_error = str(exc)
    _step(store, "activated")
    seen = service.confirm(target)
    if seen != target:
        journal = state["journal"]
        cause = f" ({service.last_error})" if service.last_error else ""
        _recover(store, params, service)
        raise PatchError(
            f"{params['component']} answered {seen!r} instead of {target} after the {params['patch_class']} activation{cause}; "
            f"the host was returned to {current}",
            running=seen, reverted=journal,
        )
    _step(store, "confirmed")
    state["components"][params["component"]] = {"version": target, "previous": current}
    state["applied"].append({"patch": params["patch_id"], "component": params["component"], "version": target, "from": current, "at": utc_now()})
    state["deferred"] = [entry for entry in state["deferred"] if entry.get("patch") != params["patch_id"]]  # no longer deferred
    state["journal"] = None
    store.save()
    return result


@with_state_file
def rollback_patch(store, params, host, check_mode):
    """Return ``params['component']`` to the release it ran before (or ``params['to']``); the module's result."""
    state = store.state
    check_lease(state, params.get("owner"), store.path)
    service = Service(host, params)
    component = params["component"]
    result = {"changed": False, "component": component}
    _begin(store, params, service, check_mode, result)
    current = _installed(params)
    expected = params.get("from_version")
    if expected and current != expected:
        result.update({"version": current, "previous": current, "carries": False, "diff": _diff(current, current),
                       "msg": f"{component} runs {current}, not {expected}: nothing to roll back"})
        return result
    target = params["to"]
    result["carries"] = True
    if target == "previous":
        recorded = state["components"].get(component) or {}
        if recorded.get("rolled_back_from") and recorded.get("version") == current:
            target = current  # already rolled back: nothing more to undo
        else:
            target = recorded.get("previous")
        if not target:
            raise PatchError(f"no previous release of {component} is recorded on this host; name the release with the option to")
    result.update({"version": target, "previous": current, "diff": _diff(current, target)})
    if target == current:
        result["previous"] = (state["components"].get(component) or {}).get("rolled_back_from", current)
        result["diff"] = _diff(current, current)
        if service.running_version() == target:
            return result
        result["changed"] = True  # already linked, but the service is not running it: start it, record nothing new
        if not check_mode and not (_activate_and_confirm(service, params["patch_class"], target)
                                   or _activate_and_confirm(service, "restart", target)):
            cause = f" ({service.last_error})" if service.last_error else ""
            raise PatchError(f"{component} {target} is installed but the service does not answer {target}{cause}")
        return result
    if not release_complete(params["install_dir"], target):
        raise PatchError(f"rollback target {component} {target} is not installed completely in {params['install_dir']}/releases", target=target)
    result["changed"] = True
    if check_mode:
        return result
    state["journal"] = {
        "op": "rollback", "patch": params["patch_id"], "component": component, "class": params["patch_class"],
        "from": current, "to": target, "step": None, "started": utc_now(), "owner": params.get("owner"),
    }
    _step(store, "journaled")
    switch_current(params["install_dir"], target)
    _step(store, "switched")
    activated = _activate_and_confirm(service, params["patch_class"], target)
    if not activated and params["patch_class"] == "hot":
        activated = _activate_and_confirm(service, "restart", target)  # a reload refused (another ABI): restart
    if not activated:
        journal = state["journal"]
        _recover(store, params, service)
        cause = f" ({service.last_error})" if service.last_error else ""
        raise PatchError(f"rollback of {component} to {target} failed: the service does not answer {target}{cause}; the host was returned to {current}",
                         reverted=journal)
    _step(store, "confirmed")
    state["components"][component] = {"version": target, "previous": None, "rolled_back_from": current}
    state["rollbacks"].append({"patch": params["patch_id"], "component": component, "from": current, "to": target, "at": utc_now()})
    state["journal"] = None
    store.save()
    return result
