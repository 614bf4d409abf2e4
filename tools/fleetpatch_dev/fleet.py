"""A fleet of real SSH hosts on one machine, for fleetpatch's demo and tests.

Each host is an OpenSSH ``sshd`` in its own network namespace (its own address on a private bridge, its own
loopback), with its own mount, UTS and PID namespaces: overlayfs gives it its own ``/etc``, ``/var``, ``/srv``,
``/opt``, ``/root`` and ``/home`` (copy-on-write over the machine's, kept on disk across a stop and a start)
and private ``/tmp`` and ``/run``. The demo service runs on it at a chosen version.

Used three ways, all through :class:`Fleet`: pytest fixtures (``tests/conftest.py``), Molecule's create and
destroy playbooks, and the command line ``python -m fleetpatch_dev.fleet`` (``--help``).

Needs root, iproute2, util-linux and openssh-server. Every fleet is recorded in a registry under ``/run`` with
its owner's PID, so ``gc`` removes the fleets of test runs that were killed before they could clean up.
Traffic goes only to the fleet's own addresses, on a bridge this module creates and deletes.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from fleetpatch_dev import artifacts

HOSTINIT = Path(__file__).with_name("hostinit.py")
REGISTRY = Path("/run/fleetpatch-dev/fleets")
SUBNET_BASE = ipaddress.ip_network("10.213.0.0/16")
OVERLAYS = ("/etc", "/var", "/srv", "/opt", "/root", "/home")
HOST_PYTHON = "/usr/bin/python3"
SERVICE_PORT = 8080
FIRST_HOST_OCTET = 10
MAX_HOSTS = 240
SSH_OPTIONS = (
    "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes "
    "-o ConnectTimeout=5 -o LogLevel=ERROR"
)
REGIONS = {"eu-west": "euw", "us-east": "use", "ap-south": "aps", "sa-east": "sae", "af-south": "afs", "me-central": "mec"}
CUSTOMERS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
WINDOW_ZONES = {
    "eu-west": "Europe/Berlin",
    "us-east": "America/New_York",
    "ap-south": "Asia/Kolkata",
    "sa-east": "America/Sao_Paulo",
    "af-south": "Africa/Johannesburg",
    "me-central": "Asia/Dubai",
}


def customer_contact(customer: str) -> str:
    """The address a customer's notices go to in the test fleet (its hosts' ``customer_contact``)."""
    return f"{customer.title()} Ops <ops@{customer}.example>"


class FleetError(Exception):
    """A fleet operation failed; the message says which host and what."""


@dataclasses.dataclass
class HostSpec:
    """What one host is: its inventory facts and the demo-service version it starts with."""

    name: str
    version: str | None = "7.0.26"
    region: str = "eu-west"
    zone: str = "eu-west-a"
    cluster: str | None = None
    cluster_role: str | None = None
    customer: str = "acme"
    maintenance_window: dict | None = None
    customer_contact: str | None = None

    def __post_init__(self) -> None:
        if self.customer_contact is None:
            self.customer_contact = customer_contact(self.customer)

    def hostvars(self) -> dict:
        """The host variables the inventory carries for this host."""
        data = {
            "region": self.region,
            "zone": self.zone,
            "customer": self.customer,
            "customer_contact": self.customer_contact,
            "maintenance_window": self.maintenance_window,
        }
        if self.cluster:
            data["cluster"] = self.cluster
            data["cluster_role"] = self.cluster_role
        return data


def demo_layout(count: int = 12, regions: int = 3, clusters: int = 2, cluster_size: int = 3) -> list[HostSpec]:
    """A deterministic fleet: hosts spread over regions, a few clusters, customers and windows, mixed versions.

    Most hosts run 7.0.26, every fourth one 7.0.27 (both affected), and the last host already runs the fixed
    7.0.28. The first ``clusters`` regions each hold one cluster of ``cluster_size`` members (one primary).
    """
    if not 1 <= count <= MAX_HOSTS:
        raise FleetError(f"count must be between 1 and {MAX_HOSTS}, got {count}")
    if not 1 <= regions <= len(REGIONS):
        raise FleetError(f"regions must be between 1 and {len(REGIONS)}, got {regions}")
    if not 0 <= clusters <= regions:
        raise FleetError(f"clusters must be between 0 and the regions ({regions}), got {clusters}")
    if cluster_size < 1:
        raise FleetError(f"cluster_size must be 1 or more, got {cluster_size}")
    names = list(REGIONS)[:regions]
    members: dict[str, int] = {}
    specs = []
    for index in range(count):
        region = names[index % regions]
        number = index // regions + 1
        spec = HostSpec(
            name=f"{REGIONS[region]}-{number:02d}",
            region=region,
            zone=f"{region}-{'abc'[number % 3]}",
            customer=CUSTOMERS[index % len(CUSTOMERS)],
            version="7.0.27" if index % 4 == 3 else "7.0.26",
            maintenance_window={
                "days": ["sat", "sun"] if index % 2 else ["tue", "thu"],
                "start": "02:00",
                "duration": "4h",
                "timezone": WINDOW_ZONES[region],
            },
        )
        cluster_index = names.index(region)
        if cluster_index < clusters and members.get(region, 0) < cluster_size:
            spec.cluster = f"{region}-db"
            spec.cluster_role = "primary" if members.get(region, 0) == 0 else "secondary"
            members[region] = members.get(region, 0) + 1
        specs.append(spec)
    specs[-1].version = "7.0.28"
    return specs


def layout_inventory(specs: list[HostSpec]) -> dict:
    """The fleet-independent part of an inventory for these hosts: their variables, grouped by region.

    :meth:`Fleet.inventory` adds the connection variables of a running fleet to the same structure.
    """
    regions: dict[str, dict] = {}
    for spec in specs:
        group = "region_" + spec.region.replace("-", "_")
        regions.setdefault(group, {"hosts": {}})["hosts"][spec.name] = None
    return {
        "all": {
            "vars": {"fpdemo_port": SERVICE_PORT, "fpdemo_install_dir": "/srv/fpdemo"},
            "hosts": {spec.name: spec.hostvars() for spec in specs},
            "children": {"fleet": {"children": dict(sorted(regions.items()))}},
        }
    }


def run(argv: list[str], *, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    """Run a command, raising :class:`FleetError` with its output when it fails and ``check`` is set."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if check and result.returncode != 0:
        raise FleetError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    if not quiet and result.returncode != 0:
        sys.stderr.write(result.stderr)
    return result


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_port(address: str, port: int, timeout: float) -> bool:
    """Wait until ``address:port`` accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Fleet:
    """A set of hosts on one bridge, with their files under ``workdir``.

    A fleet is created empty with :meth:`create`, gets hosts with :meth:`add`, and is removed whole with
    :meth:`destroy`. Its state lives in ``workdir/fleet.json``, so a second process (the command line, a
    Molecule playbook) can :meth:`load` it and act on the same hosts.
    """

    def __init__(self, workdir: Path, state: dict):
        self.workdir = Path(workdir)
        self.state = state

    # -- life cycle -------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, workdir: Path | str, *, owner_pid: int | None = None) -> Fleet:
        """Make an empty fleet: its bridge, SSH key, artifacts and state file.

        ``owner_pid`` is the process whose end makes the fleet garbage for :meth:`gc`; without one the fleet
        stays until :meth:`destroy` (the command line's ``down``).
        """
        workdir = Path(workdir).resolve()
        for directory in OVERLAYS:
            if workdir.is_relative_to(directory):
                raise FleetError(f"fleet directory {workdir} is inside {directory}, which every host overlays; use one under /tmp or /work")
        if (workdir / "fleet.json").exists():
            raise FleetError(f"{workdir} already holds a fleet; destroy it first")
        workdir.mkdir(parents=True, exist_ok=True)
        fleet_id = secrets.token_hex(3)
        slot = cls._free_slot()
        subnet = list(SUBNET_BASE.subnets(new_prefix=24))[slot]
        state = {
            "id": fleet_id,
            "slot": slot,
            "subnet": str(subnet),
            "bridge": f"fpbr{fleet_id}",
            "owner_pid": owner_pid,
            "hosts": {},
        }
        fleet = cls(workdir, state)
        fleet._register()
        try:
            run(["ip", "link", "add", state["bridge"], "type", "bridge"])
            run(["ip", "addr", "add", f"{subnet[1]}/{subnet.prefixlen}", "dev", state["bridge"]])
            run(["ip", "link", "set", state["bridge"], "up"])
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fleetpatch-fleet-{fleet_id}", "-f", str(fleet.key_path)])
            artifacts.build_all(fleet.artifact_dir)
            fleet._save()
        except BaseException:
            fleet.destroy()
            raise
        return fleet

    @classmethod
    def load(cls, workdir: Path | str) -> Fleet:
        """The fleet whose state is in ``workdir``."""
        path = Path(workdir).resolve() / "fleet.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FleetError(f"no fleet in {path.parent} (no fleet.json)") from None
        return cls(path.parent, state)

    def destroy(self) -> None:
        """Stop every host and remove the fleet's namespaces, links, bridge, files and registry entry."""
        for name in list(self.state["hosts"]):
            self.remove(name)
        run(["ip", "link", "del", self.state["bridge"]], check=False, quiet=True)
        self._unregister()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @classmethod
    def gc(cls) -> list[str]:
        """Destroy the fleets whose owner process is gone; returns their directories."""
        removed = []
        if not REGISTRY.is_dir():
            return removed
        for entry in sorted(REGISTRY.glob("*.json")):
            record = json.loads(entry.read_text(encoding="utf-8"))
            if not record.get("owner_pid") or pid_alive(record["owner_pid"]):
                continue
            workdir = Path(record["workdir"])
            try:
                fleet = cls.load(workdir)
            except FleetError:
                fleet = cls(workdir, {**record, "hosts": record.get("hosts", {})})
            fleet.destroy()
            entry.unlink(missing_ok=True)
            removed.append(str(workdir))
        return removed

    # -- hosts ------------------------------------------------------------------------------------------------

    def add(self, specs: list[HostSpec], *, timeout: float = 60.0) -> None:
        """Create, seed and boot hosts, then wait until each answers SSH (and its service, when it has one)."""
        taken = {host["index"] for host in self.state["hosts"].values()}
        free = (i for i in range(MAX_HOSTS) if i not in taken)
        for spec in specs:
            if spec.name in self.state["hosts"]:
                raise FleetError(f"host {spec.name!r} already exists in this fleet")
            index = next(free, None)
            if index is None:
                raise FleetError(f"a fleet holds at most {MAX_HOSTS} hosts")
            self._create_host(spec, index)
        for spec in specs:
            self._boot(spec.name)
        for spec in specs:
            self._wait_ready(spec.name, timeout)

    def remove(self, name: str) -> None:
        """Stop a host and delete its namespace, link and files."""
        host = self._host(name)
        self.stop(name)
        run(["ip", "link", "del", host["veth"]], check=False, quiet=True)
        run(["ip", "netns", "del", host["netns"]], check=False, quiet=True)
        shutil.rmtree(self.host_dir(name), ignore_errors=True)
        del self.state["hosts"][name]
        self._save()

    def stop(self, name: str) -> None:
        """Power the host off: every process in it dies at once; its files stay. SSH then finds no one."""
        host = self._host(name)
        pid = host.get("pid")
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)  # unshare --kill-child passes the SIGKILL on to the host's PID 1
            self._reap(pid)
        for leftover in self.netns_pids(name):
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended on its own between the listing and the kill
        deadline = time.monotonic() + 10
        while self.netns_pids(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.netns_pids(name):
            raise FleetError(f"host {name}: processes {self.netns_pids(name)} survived the power-off")
        # The kernel closes a dead process's sockets a little later (deferred fput). Until it has, a new
        # connection is accepted by the orphaned listener and then reset, where a powered-off host refuses.
        while self._listening(name) and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._listening(name):
            raise FleetError(f"host {name}: sockets {self._listening(name)} still listen after the power-off")
        host["pid"] = None
        self._save()

    def start(self, name: str, *, timeout: float = 60.0) -> None:
        """Power a stopped host on again, with the files it had."""
        if self.is_running(name):
            return
        self._boot(name)
        self._wait_ready(name, timeout)

    def partition(self, name: str, *, cut: bool = True) -> None:
        """Cut (or heal) the host's link: it stays up but nothing reaches it (SSH times out)."""
        run(["ip", "link", "set", self._host(name)["veth"], "down" if cut else "up"])

    def is_running(self, name: str) -> bool:
        """True while the host's init process lives."""
        pid = self._host(name).get("pid")
        return bool(pid) and pid_alive(pid)

    def netns_pids(self, name: str) -> list[int]:
        """The PIDs (as the machine sees them) of every process in the host's network namespace."""
        result = run(["ip", "netns", "pids", self._host(name)["netns"]], check=False, quiet=True)
        return [int(pid) for pid in result.stdout.split()]

    def _listening(self, name: str) -> list[str]:
        """The TCP sockets that listen in the host's network namespace."""
        result = run(["ip", "netns", "exec", self._host(name)["netns"], "ss", "-Hltn"], check=False, quiet=True)
        return [line.split()[3] for line in result.stdout.splitlines() if line.strip()]

    def exec(self, name: str, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command inside the host (its namespaces), as the host's root would."""
        init = self._init_pid(name)
        return run(["nsenter", "-t", str(init), "-m", "-u", "-n", "-p", "--", *argv], check=check)

    def ssh(self, name: str, command: str, *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a shell command on the host over real SSH, as root; never raises on the command's exit code."""
        argv = ["ssh", "-i", str(self.key_path), *SSH_OPTIONS.split(), f"root@{self.address(name)}", command]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the host's demo service (SIGKILL by default: the service crashes)."""
        script = f'kill -{int(sig)} "$(cat /run/fpdemo/fpdemo.pid)"'
        self.exec(name, ["sh", "-c", script])

    def install_version(self, name: str, version: str, *, activate: bool = True) -> None:
        """Unpack a demo-service release into a host's files (only while it is stopped, like a disk image)."""
        if self.is_running(name):
            raise FleetError(f"host {name} is running; stop it before writing into its files")
        artifacts.install(self.host_root(name), self.artifact(version), install_dir="/srv/fpdemo", port=SERVICE_PORT, activate=activate)

    # -- views ------------------------------------------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        """The private key that logs in as root on every host."""
        return self.workdir / "id_ed25519"

    @property
    def artifact_dir(self) -> Path:
        """Where the demo-service artifacts of this fleet are built."""
        return self.workdir / "artifacts"

    def artifact(self, version: str) -> Path:
        """The artifact of one demo-service version."""
        path = self.artifact_dir / f"fpdemo-{version}.tar.gz"
        if not path.is_file():
            raise FleetError(f"no artifact for fpdemo version {version!r} in {self.artifact_dir}")
        return path

    def host_dir(self, name: str) -> Path:
        """A host's own directory on disk (overlay upper and work dirs, console log)."""
        return self.workdir / "hosts" / name

    def host_root(self, name: str) -> Path:
        """The upper layer of a host's files: ``host_root(name) / "srv/fpdemo"`` is its ``/srv/fpdemo``."""
        return self.host_dir(name) / "upper"

    @property
    def gateway(self) -> str:
        """The controller's own address on the fleet's bridge: what the hosts reach the controller at."""
        return str(ipaddress.ip_network(self.state["subnet"])[1])

    def address(self, name: str) -> str:
        """The host's IP address."""
        return self._host(name)["address"]

    @property
    def names(self) -> list[str]:
        """The hosts' names, in the order they were added."""
        return sorted(self.state["hosts"], key=lambda n: self.state["hosts"][n]["index"])

    def service_url(self, name: str, path: str = "/") -> str:
        """A URL of the host's demo service, as the controller reaches it."""
        return f"http://{self.address(name)}:{SERVICE_PORT}{path}"

    def service_version(self, name: str, timeout: float = 5.0) -> str:
        """The version the host's demo service answers on ``/version``."""
        with urllib.request.urlopen(self.service_url(name, "/version"), timeout=timeout) as response:  # noqa: S310 (fleet address)
            return json.load(response)["version"]

    def inventory(self, *, extra_vars: dict | None = None) -> dict:
        """An Ansible YAML inventory: every host with its connection and fleet variables, grouped by region."""
        specs = [HostSpec(name=name, **self.state["hosts"][name]["spec"]["hostvars"]) for name in self.names]
        inventory = layout_inventory(specs)
        inventory["all"]["vars"].update(extra_vars or {})
        for name, hostvars in inventory["all"]["hosts"].items():
            inventory["all"]["hosts"][name] = {
                "ansible_host": self.address(name),
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key_path),
                "ansible_ssh_common_args": SSH_OPTIONS,
                "ansible_python_interpreter": HOST_PYTHON,
                **hostvars,
            }
        return inventory

    def write_inventory(self, path: Path | str | None = None) -> Path:
        """Write :meth:`inventory` as YAML; returns its path (default ``workdir/inventory.yml``)."""
        path = Path(path) if path else self.workdir / "inventory.yml"
        path.write_text(yaml.safe_dump(self.inventory(), sort_keys=False), encoding="utf-8")
        return path

    # -- internals --------------------------------------------------------------------------------------------

    def _host(self, name: str) -> dict:
        try:
            return self.state["hosts"][name]
        except KeyError:
            raise FleetError(f"no host {name!r} in this fleet (hosts: {', '.join(self.names) or 'none'})") from None

    def _create_host(self, spec: HostSpec, index: int) -> None:
        subnet = ipaddress.ip_network(self.state["subnet"])
        netns = f"fp{self.state['id']}-{index}"
        veth = f"fv{self.state['id']}{index}"
        address = str(subnet[FIRST_HOST_OCTET + index])
        self.state["hosts"][spec.name] = {
            "index": index,
            "netns": netns,
            "veth": veth,
            "address": address,
            "pid": None,
            "spec": {"version": spec.version, "hostvars": spec.hostvars()},
        }
        self._save()
        run(["ip", "netns", "add", netns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        run(["ip", "link", "set", veth, "master", self.state["bridge"], "up"])
        run(["ip", "-n", netns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"])
        run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        self._seed(spec)

    def _seed(self, spec: HostSpec) -> None:
        """Write the host's first files into its upper layer: identity, sshd, root's key, the demo service."""
        root = self.host_root(spec.name)
        (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
        (root / "etc/hostname").write_text(f"{spec.name}\n", encoding="utf-8")
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {spec.name}\n", encoding="utf-8")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name, "-f", str(root / "etc/ssh/ssh_host_ed25519_key")])
        (root / "etc/ssh/sshd_config").write_text(SSHD_CONFIG, encoding="utf-8")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        (ssh_dir / "authorized_keys").write_text(self.key_path.with_suffix(".pub").read_text(encoding="utf-8"), encoding="utf-8")
        boot_file = root / "etc/fleetpatch-dev/boot.json"
        boot_file.parent.mkdir(parents=True, exist_ok=True)
        commands = []
        if spec.version:
            artifacts.install(root, self.artifact(spec.version), install_dir="/srv/fpdemo", port=SERVICE_PORT)
            commands.append([HOST_PYTHON, "/srv/fpdemo/bin/fpdemoctl.py", "start"])
        boot_file.write_text(json.dumps({"commands": commands}, indent=2) + "\n", encoding="utf-8")

    def _boot(self, name: str) -> None:
        host = self._host(name)
        state_dir = self.host_dir(name)
        argv = [
            "ip", "netns", "exec", host["netns"],
            "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--kill-child",
            HOST_PYTHON, "-I", str(HOSTINIT), "--name", name, "--state-dir", str(state_dir),
        ]
        for directory in OVERLAYS:
            argv += ["--overlay", directory]
        with open(state_dir / "console.log", "ab") as console:
            # The host outlives this call: it is stopped by stop(), which reaps this process.
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            )
        host["pid"] = process.pid
        self._save()

    def _wait_ready(self, name: str, timeout: float) -> None:
        host = self._host(name)
        if not wait_port(host["address"], 22, timeout):
            raise FleetError(f"host {name} ({host['address']}): sshd did not answer within {timeout:.0f} s; see {self.host_dir(name) / 'console.log'}")
        if host["spec"]["version"] and not wait_port(host["address"], SERVICE_PORT, timeout):
            raise FleetError(f"host {name}: the demo service did not answer on port {SERVICE_PORT}; see {self.host_dir(name) / 'console.log'}")

    def _init_pid(self, name: str) -> int:
        """The host's PID 1 as the machine sees it: the only child of its unshare process."""
        pid = self._host(name).get("pid")
        if not pid or not pid_alive(pid):
            raise FleetError(f"host {name} is not running")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8").split()
        if not children:
            raise FleetError(f"host {name}: its init has not started")
        return int(children[0])

    @staticmethod
    def _reap(pid: int) -> None:
        """Wait for our own child (avoids a zombie); tolerate a process another run started."""
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    @staticmethod
    def _free_slot() -> int:
        """The first /24 of the fleet range that no existing interface or route uses."""
        used = run(["ip", "-o", "-4", "addr", "show"]).stdout + run(["ip", "-4", "route", "show"]).stdout
        for slot, subnet in enumerate(SUBNET_BASE.subnets(new_prefix=24)):
            if str(subnet.network_address)[:-1] not in used:
                return slot
        raise FleetError(f"every /24 of {SUBNET_BASE} is in use")

    def _save(self) -> None:
        path = self.workdir / "fleet.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        if (REGISTRY / f"{self.state['id']}.json").exists():
            self._register()

    def _register(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        record = {**self.state, "workdir": str(self.workdir)}
        (REGISTRY / f"{self.state['id']}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")

    def _unregister(self) -> None:
        (REGISTRY / f"{self.state['id']}.json").unlink(missing_ok=True)


LAYOUT_HEADER = """\
# The demo fleet's layout: 12 hosts in 3 regions, two 3-member database clusters, customers and maintenance
# windows. Written by `python -m fleetpatch_dev.fleet layout` (tests/tools/test_fleet.py keeps it in step);
# the demo adds each host's address and SSH settings when it brings the fleet up.
---
"""

SSHD_CONFIG = """\
# sshd of one fleetpatch test host (written by fleetpatch_dev.fleet)
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PidFile /run/sshd.pid
MaxStartups 200:30:400
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _layout_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``up`` and ``layout`` that shape the demo layout."""
    parser.add_argument("--hosts", type=int, default=12)
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=2, help="regions that hold a database cluster, the first ones (default 2)")
    parser.add_argument("--cluster-size", type=int, default=3, help="members of each cluster, one of them the primary (default 3)")
    parser.add_argument("--version", choices=sorted(artifacts.load_catalogue()), help="the fpdemo release every host starts on (default: the demo's mix)")
    parser.add_argument("--no-windows", action="store_true", help="no maintenance windows: every host may be patched at any time")


def _cli_layout(args: argparse.Namespace) -> list[HostSpec]:
    """The hosts ``up`` brings up and ``layout`` prints: the demo layout, shaped by the command line's options."""
    specs = demo_layout(args.hosts, args.regions, clusters=args.clusters, cluster_size=args.cluster_size)
    for spec in specs:
        if args.version:
            spec.version = args.version
        if args.no_windows:
            spec.maintenance_window = None
    return specs


def _default_layout(args: argparse.Namespace) -> bool:
    """Whether the options give the demo's own layout (inventories/demo/hosts.yml)."""
    return (args.hosts, args.regions, args.clusters, args.cluster_size, args.version, args.no_windows) == (12, 3, 2, 3, None, False)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetpatch_dev.fleet", description="Real SSH test hosts on this machine.")
    parser.add_argument("--dir", default=os.environ.get("FLEETPATCH_FLEET_DIR", "/tmp/fleetpatch-fleet"), help="the fleet's directory")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="create a fleet of demo hosts and write its inventory")
    _layout_arguments(up)
    up.add_argument("--inventory", help="where to write the inventory (default DIR/inventory.yml)")
    up.add_argument("--owner-pid", type=int, help="gc may remove the fleet once this process is gone")
    layout = sub.add_parser("layout", help="print the demo layout's inventory (host variables, no connection)")
    _layout_arguments(layout)
    sub.add_parser("down", help="destroy the fleet")
    sub.add_parser("status", help="one line per host: name, address, running, service version")
    for verb in ("stop", "start", "kill-service", "partition", "heal"):
        sub.add_parser(verb, help=f"{verb} one host").add_argument("name")
    sub.add_parser("gc", help="destroy fleets whose owner process is gone")
    args = parser.parse_args(argv)

    if args.command == "layout":
        header = LAYOUT_HEADER if _default_layout(args) else "---\n"
        print(header + yaml.safe_dump(layout_inventory(_cli_layout(args)), sort_keys=False), end="")
        return 0
    if args.command == "gc":
        for workdir in Fleet.gc():
            print(f"removed {workdir}")
        return 0
    if args.command == "up":
        specs = _cli_layout(args)
        fleet = Fleet.create(args.dir, owner_pid=args.owner_pid)
        try:
            fleet.add(specs)
        except BaseException:
            fleet.destroy()
            raise
        print(fleet.write_inventory(args.inventory))
        return 0
    fleet = Fleet.load(args.dir)
    if args.command == "down":
        fleet.destroy()
    elif args.command == "status":
        for name in fleet.names:
            running = fleet.is_running(name)
            version = "-"
            if running:
                try:
                    version = fleet.service_version(name)
                except OSError as exc:
                    version = f"unreachable ({exc})"
            print(f"{name:10} {fleet.address(name):15} {'up' if running else 'down':5} {version}")
    else:
        action = {
            "stop": fleet.stop,
            "start": fleet.start,
            "kill-service": fleet.kill_service,
            "partition": fleet.partition,
            "heal": lambda name: fleet.partition(name, cut=False),
        }[args.command]
        action(args.name)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_cli())
    except FleetError as error:
        sys.stderr.write(f"fleet: {error}\n")
        sys.exit(1)
