"""fleetpatch.rollout.detect on real SSH hosts: every strategy reads the truth, changes nothing, fails clearly."""

from __future__ import annotations

import pytest

from fleetpatch_dev.fleet import HostSpec, demo_layout

pytestmark = pytest.mark.fleet

AFFECTED = ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
# What the detect playbook (the fleetpatch.rollout.detect role) is told to look for, without a manifest.
DEMO = {"fleetpatch_component": "fpdemo", "fleetpatch_install_dir": "/srv/fpdemo"}


def test_each_strategy_on_a_real_host_in_check_and_real_mode(fleet, ansible):
    fleet.add([HostSpec(name="probe", version="7.0.27")])
    inventory = fleet.write_inventory()
    for check in (False, True):
        run = ansible("detect_strategies.yml", inventory, extravars={"fp_affected": AFFECTED}, check=check)
        assert run.returncode == 0, run.stdout
        for task in ("current_link", "version_file", "http", "command", "package"):
            result = run.results(f"Detect by {task}")["probe"]
            assert result["changed"] is False
            assert result["strategy"] == task
        assert run.results("Detect by current_link")["probe"]["version"] == "7.0.27"
        assert run.results("Detect by current_link")["probe"]["affected"] is True
        assert run.results("Detect by version_file")["probe"]["version"] == "7.0.27"
        assert run.results("Detect by http")["probe"]["version"] == "7.0.27"
        assert run.results("Detect by command")["probe"]["version"] == "7.0.27"
        package = run.results("Detect by package")["probe"]
        assert package["component"] == "openssh-server"
        assert package["version"].startswith("1:9.2p1-2"), package  # the whole dpkg version, epoch and revision
        assert (package["affected"], package["fixed"]) == (True, False), package
        assert run.stats["probe"]["changed"] == 0


def test_a_broken_install_fails_with_the_reason_and_changes_nothing(fleet, ansible):
    fleet.add([HostSpec(name="broken", version="7.0.26")])
    assert fleet.ssh("broken", "ln -sfn releases/9.9.9 /srv/fpdemo/current").returncode == 0
    before = fleet.ssh("broken", "find /srv/fpdemo /var/lib -printf '%p %s %T@\\n' | sort").stdout
    run = ansible("fleetpatch.rollout.detect", fleet.write_inventory(), extravars=DEMO)
    assert run.returncode == 2
    failure = run.results("Detect the installed version")["broken"]
    assert failure["msg"] == "/srv/fpdemo/current points to releases/9.9.9, which does not exist"
    assert fleet.ssh("broken", "find /srv/fpdemo /var/lib -printf '%p %s %T@\\n' | sort").stdout == before


@pytest.mark.extended  # a bigger fleet on the same code path: CI detects 12 hosts in tests/tools/test_demo.py (scripts/test-extended runs it)
def test_fifty_hosts(fleet, ansible):
    fleet.add(demo_layout(50, regions=5))
    run = ansible("fleetpatch.rollout.detect", fleet.write_inventory(), extravars={**DEMO, "fleetpatch_affected": AFFECTED})
    assert run.returncode == 0, run.stdout
    versions = {host: result["version"] for host, result in run.results("Detect the installed version").items()}
    assert len(versions) == 50
    assert versions == {spec.name: spec.version for spec in demo_layout(50, regions=5)}
