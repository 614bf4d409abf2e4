"""apply_patch and rollback_patch against a real fpdemo service on 127.0.0.1, installed in a temporary directory.

No SSH and no mocks: the ``host`` fixture runs the reload and restart commands (fpdemoctl) with subprocess and
asks the service's ``/version`` with the real ``open_url``; ``fpdemo_host`` installs built artifacts and stops
whatever it started. FLEETPATCH_CRASH_AT is not used here (it SIGKILLs the process): the integration tests cover it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import sys
import threading

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._apply import (
    STEPS, apply_patch, judge_applied, judge_health, judged_state, record_judgment, rollback_patch,
)
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import empty_state, save_state

# The same interpreter fpdemo_host runs fpdemoctl with.
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PATCH = "FP-2025-14847"
STARTED = "2026-01-01T00:00:00Z"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FAILING = [HOST_PYTHON, "-c", "import sys; sys.exit('no luck')"]


# --- building params and hosts -------------------------------------------------------------------------------------


def ctl(fp, command):
    """The fpdemoctl command line of this installation."""
    return [HOST_PYTHON, str(fp.install_dir / "bin" / "fpdemoctl.py"), "--config", str(fp.config_path), command]


def service_params(fp, **changes):
    """The SERVICE_ARGSPEC options for the fpdemo installation ``fp``."""
    params = {
        "manifest": None,
        "component": "fpdemo",
        "install_dir": str(fp.install_dir),
        "state_file": str(fp.base / "lib" / "fleetpatch" / "state.json"),
        "patch_class": "hot",
        "reload_command": ctl(fp, "reload"),
        "restart_command": ctl(fp, "restart"),
        "version_url": f"http://127.0.0.1:{fp.port}/version",
        "version_key": "version",
        "confirm_timeout": 10,
    }
    params.update(changes)
    return params


def apply_params(fp, version="7.0.28", with_artifact=True, **changes):
    """apply_patch's params: install ``version`` from its built artifact (copied to the host when ``with_artifact``)."""
    built = fp.built.get(version) or fp.built["7.0.28"]
    params = service_params(
        fp, patch_id=PATCH, version=version, artifact=str(built.path), artifact_sha256=built.sha256, signature=None,
        allowed_signers=None, signer=None, artifact_url=None, artifact_path=str(built.path) if with_artifact else None,
        compatible_with=">=7.0.0,<9",
    )
    params.update(changes)
    return params


def rollback_params(fp, to="previous", **changes):
    """rollback_patch's params."""
    params = service_params(fp, to=to, patch_id=PATCH)
    params.update(changes)
    return params


def prepare(fp, *versions, current=None, start=True):
    """Install ``versions`` (the first one linked as current), link ``current`` if given, start the service."""
    fp.install(versions[0])
    for version in versions[1:]:
        fp.install(version, activate=False)
    if current:
        fp.switch(current)
    if start:
        fp.ctl("start")
    return fp


# --- observing the host --------------------------------------------------------------------------------------------


def answers(fp):
    """What the service answers on /version, or None when nothing listens."""
    try:
        status, body = fp.get("/version")
    except OSError:
        return None
    assert status == 200
    return body["version"]


def linked(fp):
    """Where ``current`` points."""
    return os.readlink(fp.install_dir / "current")


def releases(fp):
    """Every entry of releases/, dot-names included."""
    return sorted(os.listdir(fp.install_dir / "releases"))


def leftovers(fp):
    """Temporaries an apply leaves while it runs: staging and download directories, temporary current links."""
    names = [f"releases/{name}" for name in os.listdir(fp.install_dir / "releases") if name.startswith((".staging-", ".download-"))]
    return sorted(names + [name for name in os.listdir(fp.install_dir) if name.startswith(".current-")])


def read_state(params):
    """The state file as JSON, or None when there is none."""
    try:
        with open(params["state_file"], encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def state_bytes(params):
    """The state file's raw content, or None when there is none."""
    try:
        with open(params["state_file"], "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def stamped(entries):
    """``entries`` with their timestamp ``at`` checked and removed."""
    for entry in entries:
        assert TIMESTAMP.match(entry.pop("at")), entry
    return entries


def applied_state(to="7.0.28", previous="7.0.26"):
    """The state after one successful apply of ``PATCH`` (timestamps removed)."""
    state = empty_state()
    state["components"] = {"fpdemo": {"version": to, "previous": previous}}
    state["applied"] = [{"patch": PATCH, "component": "fpdemo", "version": to, "from": previous}]
    return state


def assert_state(params, expected):
    """The state file holds ``expected``, once the timestamps of its records are checked and removed."""
    state = read_state(params)
    stamped(state["applied"])
    stamped(state["rollbacks"])
    assert state == expected


def diff(before, after):
    return {"before": {"current": before}, "after": {"current": after}}


def apply_result(previous="7.0.26", version="7.0.28", changed=True, judged=False, **extra):
    result = {"changed": changed, "patch": PATCH, "component": "fpdemo", "version": version, "previous": previous,
              "diff": diff(previous, version), "judged": judged}
    result.update(extra)
    return result


def journal(step, op="apply", source="7.0.26", target="7.0.28", patch_class="hot"):
    return {"op": op, "patch": PATCH, "component": "fpdemo", "class": patch_class, "from": source, "to": target, "step": step,
            "started": STARTED}


def write_journal(params, entry, base=None):
    state = base or empty_state()
    state["journal"] = entry
    save_state(params["state_file"], state)


# --- apply ---------------------------------------------------------------------------------------------------------


def test_fresh_apply_then_unchanged_rerun(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    pid = fp.pid()
    params = apply_params(fp)

    assert apply_patch(params, host, False) == apply_result()
    assert_state(params, applied_state())
    assert linked(fp) == "releases/7.0.28"
    assert answers(fp) == "7.0.28"
    assert fp.pid() == pid  # a hot patch: reloaded in place
    assert releases(fp) == ["7.0.26", "7.0.28"]
    assert leftovers(fp) == []

    # The second run needs no artifact: the release is there and running.
    before = state_bytes(params)
    rerun = apply_params(fp, with_artifact=False)
    assert apply_patch(rerun, host, False) == apply_result(changed=False, diff=diff("7.0.28", "7.0.28"))
    assert state_bytes(params) == before
    assert answers(fp) == "7.0.28"


def test_a_judged_apply_says_so_on_the_rerun(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = apply_params(fp)
    assert apply_patch(params, host, False)["judged"] is False
    assert apply_patch(apply_params(fp, with_artifact=False), host, False)["judged"] is False  # never judged: the rerun says so
    assert record_judgment(params["state_file"], PATCH, "7.0.28", False)[0] is True
    rerun = apply_patch(apply_params(fp, with_artifact=False), host, False)
    assert rerun == apply_result(changed=False, diff=diff("7.0.28", "7.0.28"), judged=True)


def record(patch=PATCH, version="7.0.28", component="fpdemo", **extra):
    return {"patch": patch, "component": component, "version": version, "from": "7.0.26", "at": STARTED, **extra}


@pytest.mark.parametrize(("applied", "expected"), [
    ([record()], False),
    ([record(judged=STARTED)], True),
    ([], None),  # runs the release by other means
    ([record(patch="FP-2025-0001")], None),
    ([record(), record(patch="FP-2025-0001")], None),  # the last apply was another patch's
    ([record(), record(patch="FP-2025-0001", component="other")], False),  # another component's records do not count
    ([record(version="7.0.27")], None),
    ([record(judged=STARTED), record()], False),  # judged, rolled back, applied again: the new apply is not judged
])
def test_judged_state(applied, expected):
    state = dict(empty_state(), applied=applied)
    assert judged_state(state, "fpdemo", PATCH, "7.0.28") is expected


@pytest.mark.parametrize(("applied", "check_mode", "changed", "marked"), [
    ([record()], False, True, [True]),
    ([record()], True, True, [False]),  # check mode: reported, not written
    ([record(judged=STARTED)], False, False, [True]),  # once
    ([record(version="7.0.27")], False, False, [False]),  # not the release judged
    ([record(judged=STARTED), record()], False, True, [True, True]),  # the last apply of the patch is the one marked
    ([record(), record(patch="FP-2025-0001")], False, True, [True, False]),
    ([], False, False, []),
])
def test_record_judgment(tmp_path, applied, check_mode, changed, marked):
    path = str(tmp_path / "state.json")
    save_state(path, dict(empty_state(), applied=applied))
    before = read_state({"state_file": path})
    result = record_judgment(path, PATCH, "7.0.28", check_mode)
    after = read_state({"state_file": path})
    assert result[0] is changed
    assert [bool(entry.get("judged")) for entry in after["applied"]] == marked
    if changed and not check_mode:
        assert TIMESTAMP.match(result[1]) and after["applied"][-1 if applied[-1]["patch"] == PATCH else 0]["judged"] == result[1]
    elif not changed:
        assert after == before and result[1] == next((e.get("judged") for e in reversed(applied) if e["patch"] == PATCH and e.get("judged")),
                                                     None)
    if check_mode:
        assert after == before


def test_record_judgment_without_a_state_file_writes_none(tmp_path):
    path = tmp_path / "state.json"
    assert record_judgment(str(path), PATCH, "7.0.28", False) == (False, None)
    assert not path.exists()


# --- judging the health in the apply's own call (judge) -----------------------------------------------------------


def judge_params(fp, version="7.0.28", **changes):
    """apply_patch's params with the health check of the module's ``judge``: /health and the port, 3 samples each,
    the vendor's leak checker as the vulnerability probe (one command sample), one breaching round fails."""
    params = apply_params(fp, version, judge=True, judge_max_soak=0, soak=0, interval=0.2, samples=3, consecutive_failures=1,
                          probes=[{"name": "health", "type": "http", "url": f"http://127.0.0.1:{fp.port}/health"},
                                  {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": fp.port},
                                  {"name": "leak-gone", "type": "command", "command": ctl(fp, "check-leak"), "vulnerability": True}],
                          thresholds={"max_error_rate": 0, "max_p95_ms": None}, baseline=None, peers=None, check_vulnerability=True,
                          fail_on_unhealthy=False, owner=None)
    params.update(changes)
    return params


def apply_and_judge(params, host, check_mode):
    """What the apply module does in one call: the apply (under the lock, here none), then the judgment."""
    return judge_applied(params, host, check_mode, apply_patch(params, host, check_mode))


def marks(params):
    return [bool(entry.get("judged")) for entry in read_state(params)["applied"]]


def test_judge_marks_a_healthy_apply_in_the_same_call_and_a_rerun_only_checks(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = judge_params(fp)
    result = apply_and_judge(params, host, False)
    health = result.pop("health")
    assert result == apply_result(diff={"before": {"current": "7.0.26", "judged": None}, "after": {"current": "7.0.28", "judged": health["judged"]}})
    assert (health["healthy"], health["vulnerable"], health["rounds"], health["failures"]) == (True, False, 1, [])
    assert TIMESTAMP.match(health["judged"]) and "changed" not in health and "diff" not in health
    assert sorted(health["metrics"]) == ["health", "port"] and health["thresholds"] == {"max_error_rate": 0}  # unset limits left out
    assert read_state(params)["applied"][-1]["judged"] == health["judged"]

    rerun = apply_and_judge(judge_params(fp, with_artifact=False, soak=30), host, False)  # judged: checked once, not soaked
    assert (rerun["changed"], rerun["judged"], rerun["health"]["healthy"], rerun["health"]["rounds"]) == (False, True, True, 1)
    assert "judged" not in rerun["health"] and rerun["diff"] == diff("7.0.28", "7.0.28")
    assert marks(params) == [True]


def test_judge_marks_an_apply_an_earlier_run_never_judged(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = judge_params(fp)
    apply_patch(params, host, False)  # applied without judging: a run that ended before its verdict
    assert marks(params) == [False]
    check = apply_and_judge(judge_params(fp, with_artifact=False), host, True)
    assert (check["changed"], check["judged"], check["health"]["healthy"]) == (True, False, True)
    assert marks(params) == [False]  # check mode writes nothing
    rerun = apply_and_judge(judge_params(fp, with_artifact=False), host, False)
    assert (rerun["changed"], rerun["judged"], rerun["health"]["healthy"]) == (True, False, True)
    assert TIMESTAMP.match(rerun["health"]["judged"]) and marks(params) == [True]


def test_judge_leaves_an_unhealthy_apply_unmarked_and_patched(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.27")
    params = judge_params(fp, "7.0.29")  # answers /health with 500
    result = apply_and_judge(params, host, False)
    assert (result["changed"], result["version"], result["health"]["healthy"], result["health"]["judged"]) == (True, "7.0.29", False, None)
    assert result["health"]["failures"][0]["why"] == "error_rate 100.0 > 0.0"
    assert result["health"]["msg"].startswith("unhealthy: probe health: error_rate 100.0 > 0.0")
    assert marks(params) == [False] and answers(fp) == "7.0.29"  # the rollback is the caller's

    with pytest.raises(PatchError) as failed:  # fail_on_unhealthy: the task fails, with every result
        apply_and_judge(judge_params(fp, "7.0.29", with_artifact=False, fail_on_unhealthy=True), host, False)
    assert str(failed.value).startswith("unhealthy: probe health: error_rate 100.0 > 0.0")
    assert (failed.value.details["version"], failed.value.details["health"]["healthy"]) == ("7.0.29", False)
    assert marks(params) == [False]


def test_judge_leaves_a_soak_to_the_health_module(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = judge_params(fp, soak=2)
    result = apply_and_judge(params, host, False)
    assert (result["changed"], result["judged"], result["health"]) == (True, False, None)
    assert marks(params) == [False]
    longer = apply_and_judge(judge_params(fp, with_artifact=False, soak=0.5, judge_max_soak=1), host, False)  # allowed here
    assert (longer["health"]["healthy"], longer["health"]["rounds"]) == (True, 3)  # rounds at 0, 0.2 and 0.4 s
    assert marks(params) == [True]


def test_judge_refuses_a_probe_set_the_check_would_refuse_before_the_host_changes(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    probe = {"name": "health", "type": "http", "url": f"http://127.0.0.1:{fp.port}/health"}
    params = judge_params(fp, probes=[probe, dict(probe)])
    with pytest.raises(PatchError, match=r"^probes\[1\]\.name: 'health' is used by two probes; names must be unique$"):
        apply_and_judge(params, host, False)
    with pytest.raises(PatchError, match=r"^consecutive_failures: expected a number of rounds, 1 or more, got 0$"):
        apply_and_judge(judge_params(fp, consecutive_failures=0), host, False)
    assert (linked(fp), answers(fp), read_state(params)) == ("releases/7.0.26", "7.0.26", None)


def test_without_judge_the_apply_only_applies(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = judge_params(fp, judge=False, probes=None)
    assert apply_and_judge(params, host, False) == apply_result()
    assert marks(params) == [False]


def test_judge_health_marks_only_a_healthy_verdict(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = judge_params(fp)
    apply_patch(params, host, False)
    fp.ctl("stop")
    down = judge_health(dict(params, check_vulnerability=False), host, False, PATCH, "7.0.28")
    assert (down["healthy"], down["changed"], down["judged"]) == (False, False, None)
    assert down["diff"] == {"before": {"judged": None}, "after": {"judged": None}} and marks(params) == [False]
    fp.ctl("start")
    up = judge_health(dict(params, check_vulnerability=False), host, False, PATCH, "7.0.28")
    assert (up["healthy"], up["changed"]) == (True, True) and up["diff"]["before"] == {"judged": None} and marks(params) == [True]


def test_check_mode_reports_the_change_and_changes_nothing(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = apply_params(fp)
    assert apply_patch(params, host, True) == apply_result()
    assert read_state(params) is None
    assert (linked(fp), answers(fp), releases(fp)) == ("releases/7.0.26", "7.0.26", ["7.0.26"])


def test_without_artifact_asks_for_one(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = apply_params(fp, with_artifact=False)
    assert apply_patch(params, host, False) == apply_result(needs_artifact=True)
    assert read_state(params) is None
    assert (linked(fp), answers(fp), releases(fp)) == ("releases/7.0.26", "7.0.26", ["7.0.26"])


def test_without_artifact_when_the_release_is_unpacked_already(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28")
    params = apply_params(fp, with_artifact=False)
    assert apply_patch(params, host, False) == apply_result()
    assert_state(params, applied_state())
    assert (linked(fp), answers(fp)) == ("releases/7.0.28", "7.0.28")


@pytest.mark.parametrize(
    ("installed", "changes", "message"),
    [
        pytest.param(["7.0.28"], {"version": "7.0.27"}, "refusing to downgrade fpdemo from 7.0.28 to 7.0.27", id="downgrade"),
        pytest.param(["7.0.26"], {"compatible_with": ">=7.0.27,<7.1"},
                     "refusing to patch: fpdemo 7.0.26 is outside compatible_with '>=7.0.27,<7.1'", id="outside-compatible_with"),
        pytest.param(["7.0.26"], {"compatible_with": ">=7.0.0 ||"},
                     "compatible_with: version range '>=7.0.0 ||' has an empty alternative", id="empty-alternative"),
        pytest.param(["7.0.26"], {"compatible_with": "~>7.0"},
                     "compatible_with: version range '~>7.0': '~>7.0' is not a comparator such as >=7.0.0", id="bad-comparator"),
        pytest.param(["7.0.26"], {"compatible_with": ">=7.0.x"},
                     "compatible_with: version range '>=7.0.x': '7.0.x' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)",
                     id="bad-range-version"),
        pytest.param(["7.0.26"], {"version": "7.0.x"},
                     "version: '7.0.x' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)", id="bad-version"),
    ],
)
def test_refusals_change_nothing(fpdemo_host, host, installed, changes, message):
    fp = prepare(fpdemo_host, *installed)
    params = apply_params(fp, **changes)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == message
    assert read_state(params) is None
    assert (linked(fp), answers(fp), releases(fp)) == (f"releases/{installed[0]}", installed[0], installed)


def test_refusal_details(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.28", start=False)
    with pytest.raises(PatchError) as caught:
        apply_patch(apply_params(fp, version="7.0.27"), host, False)
    assert caught.value.details == {"installed": "7.0.28"}


def test_nothing_installed(fpdemo_host, host):
    params = apply_params(fpdemo_host)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == f"fpdemo is not installed: {fpdemo_host.install_dir}/current does not exist"
    assert read_state(params) is None
    assert not fpdemo_host.install_dir.exists()


def test_installed_release_with_a_bad_name(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", start=False)
    os.symlink("7.0.26", fp.install_dir / "releases" / "latest")
    os.unlink(fp.install_dir / "current")
    os.symlink("releases/latest", fp.install_dir / "current")
    with pytest.raises(PatchError) as caught:
        apply_patch(apply_params(fp), host, False)
    assert str(caught.value) == (f"installed release in {fp.install_dir}/current: 'latest' is not a version "
                                 "(expected dotted numbers such as 7.0.28, optionally -rc1)")


def test_wrong_sha256_is_refused(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    bad = "0" * 64
    params = apply_params(fp, artifact_sha256=bad)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    built = fp.built["7.0.28"]
    assert str(caught.value) == f"artifact {built.path} has sha256 {built.sha256}, expected {bad}: refusing it"
    assert caught.value.details == {"expected": bad, "actual": built.sha256}
    assert (linked(fp), answers(fp), releases(fp), leftovers(fp)) == ("releases/7.0.26", "7.0.26", ["7.0.26"], [])


@pytest.mark.parametrize("existing", [None, b'{"format": 1, "applied": []}'], ids=["no-state-file", "state-file"])
@pytest.mark.parametrize("artifact", ["wrong-sha256", "truncated-own-sha256"])
def test_a_refused_artifact_leaves_the_state_file_as_it_was(fpdemo_host, host, tmp_path, existing, artifact):
    fp = prepare(fpdemo_host, "7.0.26", start=False)
    params = apply_params(fp, artifact_sha256="0" * 64)
    if artifact == "truncated-own-sha256":  # only the unpack, after the journal was written, finds it out
        good = fp.built["7.0.28"].path.read_bytes()
        truncated = tmp_path / "truncated.tar.gz"
        truncated.write_bytes(good[: len(good) // 2])
        params = apply_params(fp, artifact_path=str(truncated), artifact_sha256=hashlib.sha256(truncated.read_bytes()).hexdigest())
    if existing is not None:
        os.makedirs(os.path.dirname(params["state_file"]))
        with open(params["state_file"], "wb") as handle:
            handle.write(existing)
    with pytest.raises(PatchError):
        apply_patch(params, host, False)
    assert state_bytes(params) == existing
    if existing is None:
        assert not os.path.exists(os.path.dirname(params["state_file"]))  # not even the directory made for it
    else:
        assert os.listdir(os.path.dirname(params["state_file"])) == ["state.json"]
    assert (linked(fp), releases(fp), leftovers(fp)) == ("releases/7.0.26", ["7.0.26"], [])


def test_restart_class_patch(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.27")
    pid = fp.pid()
    params = apply_params(fp, version="8.0.17", patch_class="restart")
    assert apply_patch(params, host, False) == apply_result(previous="7.0.27", version="8.0.17")
    assert_state(params, applied_state(to="8.0.17", previous="7.0.27"))
    assert (linked(fp), answers(fp), releases(fp)) == ("releases/8.0.17", "8.0.17", ["7.0.27", "8.0.17"])
    assert fp.pid() != pid


def test_hot_patch_across_abi_is_reverted(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.27")
    pid = fp.pid()
    params = apply_params(fp, version="8.0.17", confirm_timeout=2)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    cause = (f"reload_command {params['reload_command']!r} exited 2: fpdemo 7.0.27 still running (pid {pid}): "
             "reload refused: release 8.0.17 needs a restart (abi 2 != 1)")
    assert str(caught.value) == (f"fpdemo answered '7.0.27' instead of 8.0.17 after the hot activation ({cause}); "
                                 "the host was returned to 7.0.27")
    reverted = caught.value.details["reverted"]
    assert TIMESTAMP.match(reverted.pop("started"))
    assert caught.value.details == {
        "running": "7.0.27",
        "reverted": {"op": "apply", "patch": PATCH, "component": "fpdemo", "class": "hot", "from": "7.0.27", "to": "8.0.17",
                     "step": "activated", "owner": None},
    }
    assert read_state(params) is None  # reverted: the host had no state file, and has none
    assert (linked(fp), answers(fp), fp.pid()) == ("releases/7.0.27", "7.0.27", pid)
    assert releases(fp) == ["7.0.27", "8.0.17"]  # the unpacked release stays: a later restart-class run reuses it
    assert leftovers(fp) == []


def test_linked_but_not_running_is_activated(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28")
    fp.switch("7.0.28")  # linked, never reloaded
    params = apply_params(fp, with_artifact=False)

    assert apply_patch(params, host, True) == apply_result(previous="7.0.28", diff=diff("7.0.28", "7.0.28"), judged=None)
    assert answers(fp) == "7.0.26"

    assert apply_patch(params, host, False) == apply_result(previous="7.0.28", diff=diff("7.0.28", "7.0.28"), judged=None)
    assert (linked(fp), answers(fp)) == ("releases/7.0.28", "7.0.28")
    assert read_state(params) is None  # no journal and no record: this branch only activates what is linked
    assert apply_patch(params, host, False)["changed"] is False


def test_linked_but_the_service_cannot_be_activated(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28", current="7.0.28", start=False)
    params = apply_params(fp, with_artifact=False, confirm_timeout=1)  # hot: a reload cannot start a stopped service
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == "fpdemo 7.0.28 is installed but the service does not answer 7.0.28"
    assert caught.value.details == {"running": None}
    assert answers(fp) is None


class ArtifactServer:
    """The artifacts directory over HTTP on 127.0.0.1, for artifact_url."""

    def __init__(self, directory):
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, name):
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def artifact_server(fpdemo_artifacts):
    served = ArtifactServer(fpdemo_artifacts["7.0.28"].path.parent)
    served.thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_artifact_url_is_downloaded_by_the_host(fpdemo_host, host, artifact_server):
    fp = prepare(fpdemo_host, "7.0.26")
    params = apply_params(fp, with_artifact=False, artifact_url=artifact_server.url("fpdemo-7.0.28.tar.gz"))
    assert apply_patch(params, host, False) == apply_result()
    assert_state(params, applied_state())
    assert (linked(fp), answers(fp), releases(fp), leftovers(fp)) == ("releases/7.0.28", "7.0.28", ["7.0.26", "7.0.28"], [])


def test_artifact_url_that_fails(fpdemo_host, host, artifact_server):
    fp = prepare(fpdemo_host, "7.0.26")
    url = artifact_server.url("fpdemo-9.9.9.tar.gz")
    params = apply_params(fp, with_artifact=False, artifact_url=url)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == f"GET {url} failed: File not found"
    assert read_state(params) is None
    assert (linked(fp), answers(fp), releases(fp)) == ("releases/7.0.26", "7.0.26", ["7.0.26"])


# --- recovery of an interrupted apply ------------------------------------------------------------------------------


def interrupted_host(fp, step):
    """The host as an apply 7.0.26 -> 7.0.28 (hot) leaves it when it is killed right after ``step``."""
    prepare(fp, "7.0.26")
    if step == "journaled":
        (fp.install_dir / "releases" / ".staging-7.0.28-4242" / "fpdemo").mkdir(parents=True)  # killed while unpacking
        return
    fp.install("7.0.28", activate=False)
    if step == "unpacked":
        os.symlink("releases/7.0.28", fp.install_dir / ".current-4242")  # killed while switching
        return
    fp.switch("7.0.28")
    if step in ("activated", "confirmed"):
        fp.ctl("reload")


STEP_LEFTOVERS = {"journaled": ["releases/.staging-7.0.28-4242"], "unpacked": [".current-4242"]}


@pytest.mark.parametrize("step", STEPS)
def test_recovery_then_apply(fpdemo_host, host, step):
    fp = fpdemo_host
    interrupted_host(fp, step)
    params = apply_params(fp)
    write_journal(params, journal(step))

    assert apply_patch(params, host, False) == apply_result(recovered=journal(step))
    assert_state(params, applied_state())
    assert (linked(fp), answers(fp), releases(fp), leftovers(fp)) == ("releases/7.0.28", "7.0.28", ["7.0.26", "7.0.28"], [])


@pytest.mark.parametrize("step", STEPS)
def test_recovery_in_check_mode_reports_and_changes_nothing(fpdemo_host, host, step):
    fp = fpdemo_host
    interrupted_host(fp, step)
    params = apply_params(fp)
    write_journal(params, journal(step))
    before = (state_bytes(params), linked(fp), answers(fp), releases(fp), leftovers(fp))

    result = apply_patch(params, host, True)
    assert result["changed"] is True
    assert result["interrupted"] == journal(step)
    assert "recovered" not in result
    assert (state_bytes(params), linked(fp), answers(fp), releases(fp), leftovers(fp)) == before
    assert leftovers(fp) == STEP_LEFTOVERS.get(step, [])


def test_recovery_restarts_a_service_that_died(fpdemo_host, host):
    fp = fpdemo_host
    interrupted_host(fp, "switched")
    fp.ctl("stop")
    params = apply_params(fp, confirm_timeout=1)
    write_journal(params, journal("switched"))
    assert apply_patch(params, host, False) == apply_result(recovered=journal("switched"))
    assert (linked(fp), answers(fp)) == ("releases/7.0.28", "7.0.28")


def test_recovery_that_cannot_bring_the_service_back(fpdemo_host, host):
    fp = fpdemo_host
    interrupted_host(fp, "switched")
    fp.ctl("stop")
    params = apply_params(fp, confirm_timeout=1, restart_command=FAILING)
    write_journal(params, journal("switched"))
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == "an interrupted apply was reverted to 7.0.26, but the service does not answer 7.0.26"
    assert caught.value.details == {"interrupted": journal("switched")}
    assert linked(fp) == "releases/7.0.26"
    assert read_state(params)["journal"] == journal("switched")  # still there: the next run tries again


def test_recovery_without_the_starting_release(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.28")
    params = apply_params(fp)
    entry = journal("switched", source="7.0.25")
    write_journal(params, entry)
    before = state_bytes(params)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert str(caught.value) == f"an interrupted apply of {PATCH} cannot be reverted: its starting release '7.0.25' is not installed"
    assert caught.value.details == {"interrupted": entry}
    assert state_bytes(params) == before
    assert (linked(fp), answers(fp)) == ("releases/7.0.28", "7.0.28")


def test_a_journal_without_its_starting_release_is_damage_and_kept(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.28", start=False)
    params = rollback_params(fp)
    entry = {"op": "rollback", "patch": None, "component": "fpdemo", "class": "hot", "to": "7.0.26", "step": "journaled", "started": STARTED}
    write_journal(params, entry)
    before = state_bytes(params)
    with pytest.raises(PatchError) as caught:
        rollback_patch(params, host, False)
    assert str(caught.value) == (f"state file {params['state_file']}: journal.from is missing; "
                                 "the file is left as it is (damaged_state=move_aside moves it aside and starts afresh)")
    assert state_bytes(params) == before


# --- rollback ------------------------------------------------------------------------------------------------------


def rollback_result(previous, version, changed=True, **extra):
    result = {"changed": changed, "component": "fpdemo", "version": version, "previous": previous, "diff": diff(previous, version), "carries": True}
    result.update(extra)
    return result


def rolled_back_state(source, target, base):
    state = base
    state["components"] = {"fpdemo": {"version": target, "previous": None, "rolled_back_from": source}}
    state["rollbacks"] = [{"patch": PATCH, "component": "fpdemo", "from": source, "to": target}]
    return state


def test_rollback_to_previous_after_an_apply(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    pid = fp.pid()
    apply_patch(apply_params(fp), host, False)
    params = rollback_params(fp)

    before = state_bytes(params)
    assert rollback_patch(params, host, True) == rollback_result("7.0.28", "7.0.26")
    assert (state_bytes(params), linked(fp), answers(fp)) == (before, "releases/7.0.28", "7.0.28")

    assert rollback_patch(params, host, False) == rollback_result("7.0.28", "7.0.26")
    assert_state(params, rolled_back_state("7.0.28", "7.0.26", applied_state()))
    assert (linked(fp), answers(fp), fp.pid(), leftovers(fp)) == ("releases/7.0.26", "7.0.26", pid, [])

    # Already rolled back: a second run undoes nothing more (it does not go "back" to 7.0.28).
    before = state_bytes(params)
    assert rollback_patch(params, host, False) == rollback_result("7.0.28", "7.0.26", changed=False, diff=diff("7.0.26", "7.0.26"))
    assert (state_bytes(params), linked(fp), answers(fp)) == (before, "releases/7.0.26", "7.0.26")


def test_rollback_from_version_touches_only_hosts_that_carry_the_patch(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = rollback_params(fp, from_version="7.0.28")
    before = state_bytes(params)
    for check_mode in (True, False):  # still on 7.0.26: it does not carry 7.0.28, nothing to do
        assert rollback_patch(params, host, check_mode) == rollback_result(
            "7.0.26", "7.0.26", changed=False, carries=False, msg="fpdemo runs 7.0.26, not 7.0.28: nothing to roll back")
    assert (state_bytes(params), linked(fp)) == (before, "releases/7.0.26")
    apply_patch(apply_params(fp), host, False)
    assert rollback_patch(params, host, False) == rollback_result("7.0.28", "7.0.26")
    assert (linked(fp), answers(fp)) == ("releases/7.0.26", "7.0.26")
    assert rollback_patch(params, host, False)["carries"] is False  # rolled back: it no longer carries it


def test_rollback_to_a_named_release(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.27", "7.0.28", current="7.0.28")
    params = rollback_params(fp, to="7.0.27")
    assert rollback_patch(params, host, False) == rollback_result("7.0.28", "7.0.27")
    assert_state(params, rolled_back_state("7.0.28", "7.0.27", empty_state()))
    assert (linked(fp), answers(fp)) == ("releases/7.0.27", "7.0.27")
    assert rollback_patch(params, host, False) == rollback_result("7.0.28", "7.0.27", changed=False, diff=diff("7.0.27", "7.0.27"))


def test_rollback_without_a_recorded_previous(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.28", start=False)
    params = rollback_params(fp)
    with pytest.raises(PatchError) as caught:
        rollback_patch(params, host, False)
    assert str(caught.value) == "no previous release of fpdemo is recorded on this host; name the release with the option to"
    assert read_state(params) is None


def test_rollback_to_a_release_that_is_not_installed(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28", current="7.0.28")
    params = rollback_params(fp, to="7.0.25")
    for check_mode in (True, False):
        with pytest.raises(PatchError) as caught:
            rollback_patch(params, host, check_mode)
        assert str(caught.value) == f"rollback target fpdemo 7.0.25 is not installed completely in {fp.install_dir}/releases"
        assert caught.value.details == {"target": "7.0.25"}
    assert read_state(params) is None
    assert (linked(fp), answers(fp), releases(fp)) == ("releases/7.0.28", "7.0.28", ["7.0.26", "7.0.28"])


def test_hot_rollback_across_abi_falls_back_to_a_restart(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.27", "8.0.17", current="8.0.17")
    pid = fp.pid()
    params = rollback_params(fp, to="7.0.27", confirm_timeout=1)
    assert rollback_patch(params, host, False) == rollback_result("8.0.17", "7.0.27")
    assert_state(params, rolled_back_state("8.0.17", "7.0.27", empty_state()))
    assert (linked(fp), answers(fp)) == ("releases/7.0.27", "7.0.27")
    assert fp.pid() != pid


def test_rollback_that_fails_is_reverted(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.27", "8.0.17", current="8.0.17")
    pid = fp.pid()
    params = rollback_params(fp, to="7.0.27", patch_class="restart", restart_command=FAILING, confirm_timeout=1)
    with pytest.raises(PatchError) as caught:
        rollback_patch(params, host, False)
    assert str(caught.value) == (f"rollback of fpdemo to 7.0.27 failed: the service does not answer 7.0.27 "
                                 f"(restart_command {FAILING!r} exited 1: no luck); the host was returned to 8.0.17")
    assert caught.value.details["reverted"]["step"] == "switched"
    assert read_state(params) is None  # reverted: the host had no state file, and has none
    assert (linked(fp), answers(fp), fp.pid()) == ("releases/8.0.17", "8.0.17", pid)


def test_interrupted_rollback_is_recovered_and_redone(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28", current="7.0.28")
    params = rollback_params(fp)
    entry = journal("switched", op="rollback", source="7.0.28", target="7.0.26")
    base = applied_state()
    base["applied"][0]["at"] = STARTED
    write_journal(params, entry, base=base)
    fp.switch("7.0.26")  # killed after the switch, before the reload

    result = rollback_patch(params, host, False)
    assert result == rollback_result("7.0.28", "7.0.26", recovered=entry)
    assert_state(params, rolled_back_state("7.0.28", "7.0.26", applied_state()))
    assert (linked(fp), answers(fp)) == ("releases/7.0.26", "7.0.26")


def rolled_back_then_died(fp, host):
    """A host rolled back 7.0.28 -> 7.0.26 whose service has died since; the rollback params."""
    prepare(fp, "7.0.26")
    apply_patch(apply_params(fp), host, False)
    params = rollback_params(fp, confirm_timeout=1)
    rollback_patch(params, host, False)
    fp.ctl("stop")
    return params


def test_rollback_rerun_restarts_a_service_that_died(fpdemo_host, host):
    params = rolled_back_then_died(fpdemo_host, host)
    result = rollback_patch(params, host, False)
    assert (result["changed"], result["version"]) == (True, "7.0.26")
    assert (linked(fpdemo_host), answers(fpdemo_host)) == ("releases/7.0.26", "7.0.26")


def test_rollback_rerun_keeps_what_was_rolled_back(fpdemo_host, host):
    params = rolled_back_then_died(fpdemo_host, host)
    result = rollback_patch(params, host, False)
    assert read_state(params)["components"]["fpdemo"]["rolled_back_from"] == "7.0.28"
    assert [(entry["from"], entry["to"]) for entry in read_state(params)["rollbacks"]] == [("7.0.28", "7.0.26")]
    assert result["previous"] == "7.0.28"


# --- a damaged state file ------------------------------------------------------------------------------------------

DAMAGED = b'{"format": 1, "components": {"fpdemo": {"version": 5, "previous": null}}}'


def damage(params):
    os.makedirs(os.path.dirname(params["state_file"]), exist_ok=True)
    with open(params["state_file"], "wb") as handle:
        handle.write(DAMAGED)


@pytest.mark.parametrize("check_mode", [True, False])
@pytest.mark.parametrize("operation", ["apply", "rollback"])
def test_a_damaged_state_file_is_refused_and_kept(fpdemo_host, host, operation, check_mode):
    fp = prepare(fpdemo_host, "7.0.26", "7.0.28", current="7.0.28" if operation == "rollback" else None)
    params = apply_params(fp) if operation == "apply" else rollback_params(fp, to="7.0.26")
    damage(params)
    run = apply_patch if operation == "apply" else rollback_patch
    with pytest.raises(PatchError) as caught:
        run(params, host, check_mode)
    assert str(caught.value) == (f"state file {params['state_file']}: components.fpdemo.version is 5, expected a string; the file is "
                                 "left as it is (damaged_state=move_aside moves it aside and starts afresh)")
    assert state_bytes(params) == DAMAGED
    assert os.listdir(os.path.dirname(params["state_file"])) == ["state.json"]
    current = "7.0.28" if operation == "rollback" else "7.0.26"
    assert (linked(fp), answers(fp)) == (f"releases/{current}", current)


def test_move_aside_asks_for_the_artifact_first_then_moves_and_applies(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.26")
    params = apply_params(fp, with_artifact=False, damaged_state="move_aside")
    damage(params)
    error = f"state file {params['state_file']}: components.fpdemo.version is 5, expected a string"
    # check mode and the artifact request write nothing, so they move nothing
    assert apply_patch(params, host, True) == apply_result(state_error=error)
    assert apply_patch(params, host, False) == apply_result(needs_artifact=True, state_error=error)
    assert state_bytes(params) == DAMAGED

    result = apply_patch(apply_params(fp, damaged_state="move_aside"), host, False)
    moved = result.pop("state_moved_to")
    assert result == apply_result(state_error=error)
    assert re.fullmatch(re.escape(params["state_file"]) + r"\.damaged-\d{8}T\d{6}Z", moved)
    with open(moved, "rb") as handle:
        assert handle.read() == DAMAGED
    assert_state(params, applied_state())
    assert (linked(fp), answers(fp)) == ("releases/7.0.28", "7.0.28")
    # the next run reads the new file
    assert apply_patch(apply_params(fp, damaged_state="move_aside"), host, False) == apply_result(changed=False, diff=diff("7.0.28", "7.0.28"))


def test_move_aside_moves_nothing_when_the_apply_is_refused(fpdemo_host, host):
    fp = prepare(fpdemo_host, "7.0.28", start=False)
    params = apply_params(fp, version="7.0.27", damaged_state="move_aside")
    damage(params)
    with pytest.raises(PatchError) as caught:
        apply_patch(params, host, False)
    assert caught.value.details == {"installed": "7.0.28",
                                    "state_error": f"state file {params['state_file']}: components.fpdemo.version is 5, expected a string"}
    assert os.listdir(os.path.dirname(params["state_file"])) == ["state.json"]
    assert state_bytes(params) == DAMAGED
