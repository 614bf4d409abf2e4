"""fleetpatch.rollout.flag on a real host: four runs each way, seen by the running service without a restart."""

from __future__ import annotations

import json
import urllib.request

import pytest

from fleetpatch_dev import probe
from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet


def test_flag_on_then_off_four_runs_each_without_a_restart(fleet, ansible):
    fleet.add([HostSpec(name="flagged", version="7.0.26")])
    inventory = fleet.write_inventory()
    address = fleet.address("flagged")
    pid = fleet.ssh("flagged", "cat /run/fpdemo/fpdemo.pid").stdout.strip()
    assert probe.leak(address)
    for enabled, leaks in ((True, False), (False, True)):
        run = ansible("flag_four_times.yml", inventory, extravars={"fp_enabled": enabled})  # check, real, check, real
        assert run.returncode == 0, run.stdout
        results = run.results("Set the flag")["flagged"]["results"]
        assert [(result["fp_check"], result["changed"]) for result in results] == [(True, True), (False, True), (True, False), (False, False)], enabled
        for result in results:
            assert result["diff"]["after"]["flags"] == {"strict_length_check": enabled}
        assert probe.leak(address) is leaks  # the mitigation flag on an affected release closes the leak
        with urllib.request.urlopen(fleet.service_url("flagged", "/flags"), timeout=5) as response:
            assert json.load(response) == {"flags": {"strict_length_check": enabled}}
    assert fleet.ssh("flagged", "cat /run/fpdemo/fpdemo.pid").stdout.strip() == pid


def test_a_flag_the_service_does_not_take_is_put_back(fleet, ansible):
    fleet.add([HostSpec(name="stubborn", version="7.0.26")])
    assert fleet.ssh("stubborn", "test -e /etc/fpdemo/flags.json").returncode == 1  # no flags file yet
    run = ansible("flag.yml", fleet.write_inventory(), extravars={"fp_enabled": True, "fp_confirm_url": "http://127.0.0.1:8080/version"})
    assert run.returncode == 2
    assert run.results("Set the flag")["stubborn"]["msg"] == (
        "the service did not take flag strict_length_check=true; /etc/fpdemo/flags.json was restored"
    )
    assert json.loads(fleet.ssh("stubborn", "cat /etc/fpdemo/flags.json").stdout) == {"flags": {}}  # no flag set
    assert probe.leak(fleet.address("stubborn"))


def test_a_damaged_flags_file_is_refused_unchanged(fleet, ansible):
    fleet.add([HostSpec(name="damaged", version="7.0.26")])
    fleet.ssh("damaged", "mkdir -p /etc/fpdemo && echo '{\"flags\": {\"x\": 1}}' > /etc/fpdemo/flags.json")
    run = ansible("flag.yml", fleet.write_inventory(), extravars={"fp_enabled": True})
    assert run.results("Set the flag")["damaged"]["msg"] == 'flags file /etc/fpdemo/flags.json is not {"flags": {"<name>": true|false}}'
    assert fleet.ssh("damaged", "cat /etc/fpdemo/flags.json").stdout == '{"flags": {"x": 1}}\n'
