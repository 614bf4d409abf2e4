"""fleetpatch.rollout.lock on real SSH hosts: four runs each way, and what a lock does to apply and rollback."""

from __future__ import annotations

import json

import pytest

from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet

STATE_FILE = "/var/lib/fleetpatch/state.json"


def lease(fleet, name):
    """The host's lock as its state file holds it (None when it has none or no state file)."""
    result = fleet.ssh(name, f"test ! -e {STATE_FILE} || cat {STATE_FILE}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout or "{}").get("lease")


def read_lease(read):
    """The lock in the state file as the play read it (None when the host has no state file or no lock)."""
    assert read["rc"] == 0, read
    return json.loads(read["stdout"] or "{}").get("lease")


# (state, check mode, changed): four runs each way, in one play (playbooks/lock_four_times.yml)
FOUR_TIMES = [(state, check, changed) for state in ("acquired", "released")
              for check, changed in ((True, True), (False, True), (True, False), (False, False))]


def test_lock_and_release_four_times_each(fleet, ansible):
    fleet.add([HostSpec(name="locked", version="7.0.26")])
    run = ansible("lock_four_times.yml", fleet.write_inventory())
    assert run.returncode == 0, run.stdout[-3000:]
    locks, reads = run.results_each("Lock the host")["locked"], run.results_each("Read the state file")["locked"]
    assert len(locks) == len(reads) == len(FOUR_TIMES)
    for (state, check, changed), result, read in zip(FOUR_TIMES, locks, reads):
        assert result["changed"] is changed, (state, check)
        held = "run-a" if state == "acquired" else None
        expected = held if not check or not changed else ("run-a" if state == "released" else None)
        assert (read_lease(read) or {}).get("owner") == expected, (state, check)
    assert lease(fleet, "locked") is None


def test_a_locked_host_refuses_every_other_run_and_its_holder_works_on(fleet, ansible):
    """Another run, or a call outside any run, is refused with the holder named and the host unchanged; the holder's
    own apply and rollback go through and record it in their journal; a take-over is reported with whose lock it was."""
    fleet.add([HostSpec(name="held", version="7.0.26")])
    inventory = fleet.write_inventory()
    patch = {"fp_version": "7.0.28", "fp_artifact": str(fleet.artifact("7.0.28")),
             "fp_sha256": fleet.artifact("7.0.28").with_name("fpdemo-7.0.28.tar.gz.sha256").read_text(encoding="utf-8").split()[0]}
    assert ansible("lock.yml", inventory, extravars={"fp_owner": "run-a", "fp_holder": "bob"}).returncode == 0

    for extravars in ({}, {"fp_owner": "run-b"}):
        refused = ansible("apply.yml", inventory, extravars={**patch, **extravars})
        assert refused.returncode != 0
        message = refused.results("Apply the patch")["held"]["msg"]
        assert message.startswith("this host is locked by another fleetpatch run: bob for FP-2025-14847 since "), message
        assert message.endswith(", from ctl-elsewhere (run run-a); nothing was changed. Wait for that run to end; if it is gone (killed), "
                                "re-run the rollout with take-over of its lock"), message
        assert fleet.service_version("held") == "7.0.26"
    other = ansible("lock.yml", inventory, extravars={"fp_owner": "run-b"})
    assert other.returncode != 0 and other.results("Lock the host")["held"]["held_by"]["owner"] == "run-a"

    applied = ansible("apply.yml", inventory, extravars={**patch, "fp_owner": "run-a"})
    assert applied.returncode == 0, applied.stdout[-3000:]
    assert fleet.service_version("held") == "7.0.28"
    rolled = ansible("rollback.yml", inventory, extravars={"fp_owner": "run-a"})
    assert rolled.returncode == 0 and fleet.service_version("held") == "7.0.26"

    taken = ansible("lock.yml", inventory, extravars={"fp_owner": "run-c", "fp_take_over": True})
    assert taken.returncode == 0
    assert taken.results("Lock the host")["held"]["taken_over"]["owner"] == "run-a"
    reclaimed = ansible("lock.yml", inventory, extravars={"fp_owner": "run-d", "fp_reclaim": ["run-c"]})
    assert reclaimed.results("Lock the host")["held"].get("reclaimed", {}).get("owner") == "run-c", reclaimed.results("Lock the host")
    assert lease(fleet, "held")["owner"] == "run-d"
