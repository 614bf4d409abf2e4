"""Real ansible-playbook runs against real SSH hosts of the test fleet."""

from __future__ import annotations

import pytest

from fleetpatch_dev.fleet import HostSpec

pytestmark = pytest.mark.fleet

VERSIONS = {"alpha": "7.0.26", "bravo": "7.0.27", "charlie": "7.0.28"}


def test_playbook_reaches_hosts_then_reports_a_stopped_one_unreachable(fleet, ansible):
    fleet.add([HostSpec(name=name, version=version) for name, version in VERSIONS.items()])
    inventory = fleet.write_inventory()

    first = ansible("ping_version.yml", inventory)
    assert first.returncode == 0, first.stdout
    versions = {host: result["json"]["version"] for host, result in first.results("Read the demo service's version").items()}
    assert versions == VERSIONS
    assert all(first.stats[host]["unreachable"] == 0 and first.stats[host]["failures"] == 0 for host in VERSIONS)

    fleet.stop("bravo")
    second = ansible("ping_version.yml", inventory)
    assert second.returncode == 4  # ansible-playbook's exit code for unreachable hosts
    assert second.stats["bravo"]["unreachable"] == 1
    assert second.stats["bravo"]["ok"] == 0
    for host in ("alpha", "charlie"):
        assert second.stats[host] == first.stats[host]
    assert second.results("Ping")["bravo"]["unreachable"] is True


def test_hosts_read_their_own_region_and_cluster_from_the_inventory(fleet, ansible):
    fleet.add([
        HostSpec(name="db1", region="eu-west", cluster="eu-west-db", cluster_role="primary", customer="acme"),
        HostSpec(name="db2", region="us-east", customer="globex", version=None),
    ])
    run = ansible("hostvars.yml", fleet.write_inventory())
    assert run.returncode == 0, run.stdout
    facts = {host: result["msg"] for host, result in run.results("Report placement").items()}
    assert facts == {
        "db1": {"hostname": "db1", "region": "eu-west", "cluster": "eu-west-db", "cluster_role": "primary", "customer": "acme", "fpdemo": True},
        "db2": {"hostname": "db2", "region": "us-east", "cluster": None, "cluster_role": None, "customer": "globex", "fpdemo": False},
    }
