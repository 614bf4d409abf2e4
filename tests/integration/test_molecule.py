"""`molecule test` of the default scenario, and what it leaves behind on the machine: nothing.

The scenario (molecule/default/) brings up three fleet hosts, runs the collection's detect playbook twice
(converge, idempotence), verifies its answers against each host's demo service and destroys the fleet. This
test runs it as an operator would and then looks for the scenario's namespaces, host processes and SSH
masters. Other fleets may come and go on the same machine meanwhile (other test runs): they are told apart
by the fleet registry under /run, never counted as leftovers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import REGISTRY

pytestmark = [
    pytest.mark.fleet,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the test fleet needs root"),
]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def netns_names() -> set[str]:
    """The names `ip netns list` shows."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def registry() -> list[dict]:
    """The records of the fleets that exist on this machine (any test run's, any user's)."""
    records = []
    for entry in REGISTRY.glob("*.json") if REGISTRY.is_dir() else ():
        try:
            records.append(json.loads(entry.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # removed or being rewritten by its owner right now
    return records


def registered_workdirs() -> set[Path]:
    """The directories of the registered fleets."""
    return {Path(record.get("workdir", "")) for record in registry()}


def registered_netns(except_workdir: Path) -> set[str]:
    """The namespaces of every registered fleet except the one in ``except_workdir``."""
    names = set()
    for record in registry():
        if Path(record.get("workdir", "")) != except_workdir:
            names.update(host["netns"] for host in record.get("hosts", {}).values())
    return names


def processes() -> dict[int, tuple[str, str]]:
    """Every process: PID -> (command line, network namespace)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            netns = os.readlink(proc / "ns" / "net")
        except OSError:
            continue  # ended meanwhile, or a kernel thread
        found[int(proc.name)] = (cmdline, netns)
    return found


def named_netns_inodes() -> set[str]:
    """The namespace identities (``net:[inode]``) of every namespace `ip netns` names."""
    inodes = set()
    for path in Path("/run/netns").glob("*") if Path("/run/netns").is_dir() else ():
        try:
            inodes.add(f"net:[{path.stat().st_ino}]")
        except OSError:
            continue
    return inodes


@pytest.fixture
def ephemeral():
    """Molecule's ephemeral directory for this run: short, for the SSH control sockets in it (108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fpmol-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_molecule_default_scenario_passes_and_leaves_nothing_behind(ephemeral):
    ansible_env.collections_dir()
    # As molecule/default/create.yml and destroy.yml name the fleet's directory.
    fleet_dir = Path(f"/tmp/fleetpatch-molecule-{hashlib.sha1(str(ephemeral).encode()).hexdigest()[:12]}")  # noqa: S324
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(REPO / "tools"),
        # The scenario's own state, apart from any manual run in this checkout.
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
    }
    netns_before = netns_names()
    pids_before = set(processes())

    started = time.monotonic()
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test", "-s", "default"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600, check=False,
    )
    elapsed = time.monotonic() - started
    print(f"molecule test -s default: exit {result.returncode} in {elapsed:.1f} s")
    assert result.returncode == 0, result.stdout[-8000:]
    for step in ("converge", "idempotence", "verify", "destroy"):
        assert f"{step}: Executed: Successful" in result.stdout, result.stdout[-8000:]

    # The fleet is gone: its directory, its registry record, its namespaces.
    assert not fleet_dir.exists()
    assert fleet_dir not in registered_workdirs()
    new_netns = netns_names() - netns_before - registered_netns(except_workdir=fleet_dir)
    assert not new_netns, f"namespaces left behind: {sorted(new_netns)}"

    # No process of it survives: no host init (its command line names the fleet directory), no SSH master
    # (its command line names the scenario's control directory), nothing in a namespace no longer named.
    own_netns = os.readlink("/proc/self/ns/net")
    named = named_netns_inodes()
    leftovers = {
        pid: cmdline
        for pid, (cmdline, netns) in processes().items()
        if pid not in pids_before
        and (str(fleet_dir) in cmdline or str(ephemeral) in cmdline or (netns != own_netns and netns not in named))
    }
    assert not leftovers, f"processes left behind: {leftovers}"
