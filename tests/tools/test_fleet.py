"""The test fleet itself: real hosts, each with its own address, files, processes; nothing left behind."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

from fleetpatch_dev.fleet import Fleet, FleetError, HostSpec, _cli_layout, demo_layout

pytestmark = pytest.mark.fleet


def running(pid: int) -> bool:
    """True when the process exists and is not a zombie (a killed host's init is reaped by the machine's PID 1)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_each_host_has_its_own_address_name_processes_and_files(fleet):
    fleet.add([HostSpec(name="one", version=None), HostSpec(name="two", version=None)])
    assert fleet.address("one") != fleet.address("two")
    one = fleet.ssh("one", "hostname; hostname -I; echo only-on-one > /srv/marker; cat /srv/marker; ps -e -o pid= | wc -l")
    assert one.returncode == 0, one.stderr
    name, address, marker, processes = one.stdout.split("\n")[:4]
    assert (name, address.strip(), marker) == ("one", fleet.address("one"), "only-on-one")
    assert int(processes) < 10  # its own PID namespace: init, sshd, the session; not the machine's processes
    two = fleet.ssh("two", "test -e /srv/marker && echo present || echo absent")
    assert two.stdout.strip() == "absent"
    assert not Path("/srv/marker").exists()
    assert (fleet.host_root("one") / "srv/marker").read_text(encoding="utf-8") == "only-on-one\n"


def test_a_stopped_host_keeps_its_disk_but_not_its_tmp(fleet):
    fleet.add([HostSpec(name="disk", version=None)])
    assert fleet.ssh("disk", "echo kept > /var/kept; echo lost > /tmp/lost").returncode == 0
    fleet.stop("disk")
    assert not fleet.is_running("disk")
    assert fleet.netns_pids("disk") == []
    refused = fleet.ssh("disk", "true")
    assert refused.returncode == 255 and "Connection refused" in refused.stderr
    fleet.start("disk")
    after = fleet.ssh("disk", "cat /var/kept; test -e /tmp/lost && echo tmp-kept || echo tmp-gone")
    assert after.stdout.split() == ["kept", "tmp-gone"]


def test_service_runs_at_its_version_and_can_be_killed(fleet):
    fleet.add([HostSpec(name="svc", version="7.0.27")])
    assert fleet.service_version("svc") == "7.0.27"
    fleet.kill_service("svc")
    with pytest.raises(OSError):
        fleet.service_version("svc", timeout=2)
    fleet.exec("svc", ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "start"])
    assert fleet.service_version("svc") == "7.0.27"


def test_a_partitioned_host_times_out_then_heals(fleet):
    fleet.add([HostSpec(name="island", version=None)])
    fleet.partition("island")
    cut = fleet.ssh("island", "true", timeout=30)
    assert cut.returncode == 255 and ("timed out" in cut.stderr or "No route" in cut.stderr), cut.stderr
    fleet.partition("island", cut=False)
    assert fleet.ssh("island", "true").returncode == 0


def test_destroy_leaves_no_process_namespace_link_mount_or_file(tmp_path, machine_state):
    before = machine_state()
    made = Fleet.create(tmp_path / "fleet", owner_pid=os.getpid())
    made.add(demo_layout(4, regions=2))
    pids = [pid for name in made.names for pid in made.netns_pids(name)]
    assert len(pids) >= 4 * 3  # init, sshd and the demo service on each host
    made.destroy()
    assert machine_state() == before
    assert not (tmp_path / "fleet").exists()
    assert not [pid for pid in pids if running(pid)]


def test_gc_removes_the_fleet_of_a_dead_owner(tmp_path, machine_state):
    before = machine_state()
    with subprocess.Popen(["true"]) as owner:
        owner.wait()  # once waited for, its PID is gone
    orphan = Fleet.create(tmp_path / "orphan", owner_pid=owner.pid)
    orphan.add([HostSpec(name="left", version=None)])
    assert str(tmp_path / "orphan") in Fleet.gc()
    assert machine_state() == before


@pytest.mark.parametrize(
    ("count", "regions", "message"),
    [
        (0, 3, "count must be between 1 and 240, got 0"),
        (241, 3, "count must be between 1 and 240, got 241"),
        (12, 0, "regions must be between 1 and 6, got 0"),
        (12, 7, "regions must be between 1 and 6, got 7"),
    ],
)
def test_demo_layout_rejects_impossible_sizes(count, regions, message):
    with pytest.raises(FleetError) as error:
        demo_layout(count, regions)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("clusters", "cluster_size", "message"),
    [
        (-1, 3, "clusters must be between 0 and the regions (2), got -1"),
        (3, 3, "clusters must be between 0 and the regions (2), got 3"),
        (1, 0, "cluster_size must be 1 or more, got 0"),
    ],
)
def test_demo_layout_rejects_impossible_clusters(clusters, cluster_size, message):
    with pytest.raises(FleetError) as error:
        demo_layout(6, 2, clusters=clusters, cluster_size=cluster_size)
    assert str(error.value) == message


def run_fleet_cli(*args: str) -> subprocess.CompletedProcess:
    repo = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "fleetpatch_dev.fleet", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(repo / "tools")})


def test_the_command_line_shapes_the_layout():
    """What Molecule's rollout scenario brings up: six hosts, one 3-member cluster, no windows, the demo's versions."""
    printed = run_fleet_cli("layout", "--hosts", "6", "--regions", "2", "--clusters", "1", "--no-windows")
    assert printed.returncode == 0, printed.stderr
    hosts = yaml.safe_load(printed.stdout)["all"]["hosts"]
    assert list(hosts) == ["euw-01", "use-01", "euw-02", "use-02", "euw-03", "use-03"]
    assert {name: (h.get("cluster"), h.get("cluster_role")) for name, h in hosts.items() if "cluster" in h} == {
        "euw-01": ("eu-west-db", "primary"), "euw-02": ("eu-west-db", "secondary"), "euw-03": ("eu-west-db", "secondary")}
    assert all(h["maintenance_window"] is None for h in hosts.values())
    assert [spec.version for spec in demo_layout(6, 2, clusters=1)] == ["7.0.26", "7.0.26", "7.0.26", "7.0.27", "7.0.26", "7.0.28"]


def test_the_command_line_starts_every_host_on_one_version():
    """``up --version`` seeds every host with that release (Molecule's guarded_apply scenario: all three affected);
    only the catalogue's releases are accepted."""
    options = argparse.Namespace(hosts=3, regions=3, clusters=2, cluster_size=3, version="7.0.27", no_windows=False)
    assert _cli_layout(options) == [dataclasses.replace(spec, version="7.0.27") for spec in demo_layout(3)]
    refused = run_fleet_cli("layout", "--version", "9.9.9")
    assert refused.returncode == 2 and "argument --version: invalid choice: '9.9.9'" in refused.stderr
    impossible = run_fleet_cli("layout", "--clusters", "4")
    assert (impossible.returncode, impossible.stderr) == (1, "fleet: clusters must be between 0 and the regions (3), got 4\n")


def test_demo_layout_spreads_regions_clusters_and_versions():
    specs = demo_layout(12, regions=3)
    assert len({spec.name for spec in specs}) == 12
    assert {spec.region for spec in specs} == {"eu-west", "us-east", "ap-south"}
    clusters = {}
    for spec in specs:
        if spec.cluster:
            clusters.setdefault(spec.cluster, []).append(spec.cluster_role)
    assert clusters == {"eu-west-db": ["primary", "secondary", "secondary"], "us-east-db": ["primary", "secondary", "secondary"]}
    assert {spec.version for spec in specs} == {"7.0.26", "7.0.27", "7.0.28"}
    assert all(spec.maintenance_window["timezone"] for spec in specs)
    # Every customer has one contact, on each of its hosts (the notify role writes to it).
    contacts = {spec.customer: spec.hostvars()["customer_contact"] for spec in specs}
    assert contacts["acme"] == "Acme Ops <ops@acme.example>"
    assert {spec.hostvars()["customer_contact"] for spec in specs} == set(contacts.values()) and len(contacts) == 6


@pytest.mark.parametrize("workdir", ["/root/fleet", "/var/tmp/fleet", "/srv/x/fleet"])
def test_a_fleet_directory_cannot_sit_where_hosts_overlay_the_machine(workdir):
    with pytest.raises(FleetError) as error:
        Fleet.create(workdir)
    assert str(error.value) == f"fleet directory {workdir} is inside /{workdir.split('/')[1]}, which every host overlays; use one under /tmp or /work"
    assert not Path(workdir).exists()


def test_a_host_name_is_unique_in_a_fleet(fleet):
    fleet.add([HostSpec(name="same", version=None)])
    with pytest.raises(FleetError, match="host 'same' already exists in this fleet"):
        fleet.add([HostSpec(name="same", version=None)])


def test_the_shipped_demo_inventory_is_the_demo_layout():
    """inventories/demo/hosts.yml is what `fleet layout` prints, and Ansible reads the same variables from it."""
    repo = Path(__file__).resolve().parents[2]
    shipped = repo / "inventories" / "demo" / "hosts.yml"
    printed = subprocess.run([sys.executable, "-m", "fleetpatch_dev.fleet", "layout"], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(repo / "tools")}).stdout
    assert shipped.read_text(encoding="utf-8") == printed
    listed = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(shipped), "--list"],
                            capture_output=True, text=True, check=True).stdout
    hostvars = json.loads(listed)["_meta"]["hostvars"]
    for spec in demo_layout():
        assert {key: hostvars[spec.name][key] for key in spec.hostvars()} == spec.hostvars()


@pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")  # every fleet host has a fresh key, by design
def test_a_host_seen_through_testinfra(fleet):
    """What an operator's own checks (pytest-testinfra over SSH) see on a fresh host."""
    fleet.add([HostSpec(name="infra", version="7.0.27")])
    host = testinfra.get_host(f"paramiko://root@{fleet.address('infra')}", ssh_identity_file=str(fleet.key_path))
    assert host.check_output("hostname") == "infra"
    assert host.file("/srv/fpdemo/current").is_symlink
    assert host.file("/srv/fpdemo/current").linked_to == "/srv/fpdemo/releases/7.0.27"
    assert host.file("/srv/fpdemo/current/VERSION").content_string == "7.0.27\n"
    assert host.socket("tcp://0.0.0.0:8080").is_listening
    assert host.socket("tcp://0.0.0.0:22").is_listening
    assert len(host.process.filter(comm="sshd")) >= 1
