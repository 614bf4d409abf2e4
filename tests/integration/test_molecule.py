"""`molecule test --all`: every Molecule scenario passes, and leaves nothing behind on the machine.

The scenarios (molecule/detect, molecule/guarded_apply, molecule/rollout; shared settings in
.config/molecule/config.yml, the fleet's create, prepare and destroy playbooks in molecule/resources) each bring
up their own fleet hosts, converge twice (converge, idempotence), verify and destroy the fleet. This test runs
them as an operator would, with an ANSIBLE_HOME of its own (Molecule keeps each scenario's ephemeral directory,
SSH control sockets included, under it), prints each scenario's time, and then looks for the scenarios' fleets,
namespaces, host processes and SSH masters. Other fleets may come and go on the same machine meanwhile (other
test runs): they are told apart by the fleet registry under /run, never counted as leftovers.

It is marked ``molecule``: the default pytest run deselects it (pytest.ini) and scripts/test runs it as a stage
of its own (``pytest -m molecule tests/integration/test_molecule.py``), so the scenarios run once per CI run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
    pytest.mark.molecule,
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


def registered_netns(except_workdirs: list[Path]) -> set[str]:
    """The namespaces of every registered fleet except those in ``except_workdirs``."""
    names = set()
    for record in registry():
        if Path(record.get("workdir", "")) not in except_workdirs:
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


SCENARIOS = sorted(path.parent.name for path in (REPO / "molecule").glob("*/molecule.yml"))
STEPS = ("dependency", "destroy", "syntax", "create", "converge", "idempotence", "verify")
EXECUTED = re.compile(r"\[(?P<scenario>[\w-]+) > (?P<step>\w+)\] Executed: (?P<outcome>.*)$")


@pytest.fixture
def ansible_home():
    """ANSIBLE_HOME for this run, where Molecule puts every scenario's ephemeral directory: short, for the SSH
    control sockets in it (108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fpmol-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fleet_dir(ephemeral: Path) -> Path:
    """The fleet directory of a scenario, named as molecule/resources/vars/fleet.yml names it."""
    return Path(f"/tmp/fleetpatch-molecule-{hashlib.sha1(str(ephemeral).encode()).hexdigest()[:12]}")  # noqa: S324


def run_molecule(env: dict) -> tuple[int, str, dict]:
    """Run `molecule test --all`; return its exit code, its output and, per scenario, when each step ended
    (seconds from the start)."""
    started = time.monotonic()
    ended: dict[str, dict[str, float]] = {}
    lines = []
    with subprocess.Popen(
        [str(VENV_BIN / "molecule"), "test", "--all"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as molecule:
        for line in molecule.stdout:
            lines.append(line)
            found = EXECUTED.search(line.rstrip())
            if found:
                ended.setdefault(found["scenario"], {})[found["step"]] = time.monotonic() - started
        code = molecule.wait(timeout=60)
    return code, "".join(lines), ended


def test_molecule_test_all_passes_and_leaves_nothing_behind(ansible_home):
    assert SCENARIOS == ["detect", "guarded_apply", "rollout"]
    ansible_env.collections_dir()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(REPO / "tools"),
        # Every scenario's own state (its ephemeral directory), apart from any manual run in this checkout.
        "ANSIBLE_HOME": str(ansible_home),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
    }
    env.pop("MOLECULE_EPHEMERAL_DIRECTORY", None)
    netns_before = netns_names()
    pids_before = set(processes())

    code, output, ended = run_molecule(env)
    begun = 0.0
    for scenario in sorted(ended, key=lambda name: max(ended[name].values())):
        steps = ended[scenario]
        finished = max(steps.values())
        print(f"molecule scenario {scenario}: {finished - begun:.1f} s "
              f"(converge {steps.get('converge', 0) - steps.get('create', 0):.1f} s, "
              f"idempotence {steps.get('idempotence', 0) - steps.get('converge', 0):.1f} s, "
              f"verify {steps.get('verify', 0) - steps.get('idempotence', 0):.1f} s)")
        begun = finished
    assert code == 0, output[-8000:]
    for scenario in SCENARIOS:
        for step in STEPS:
            assert f"{scenario} > {step}: Executed: Successful" in output, (scenario, step, output[-8000:])

    # Each scenario's fleet is gone: its directory, its registry record. Found by the scenarios' ephemeral
    # directories, which Molecule made under this run's ANSIBLE_HOME.
    ephemerals = sorted(ansible_home.glob("tmp/molecule.*.*"))
    assert sorted(path.name.rsplit(".", 1)[1] for path in ephemerals) == SCENARIOS
    fleets = [fleet_dir(path) for path in ephemerals]
    for workdir in fleets:
        assert not workdir.exists(), f"fleet directory left behind: {workdir}"
        assert workdir not in registered_workdirs(), f"fleet still registered: {workdir}"
    new_netns = netns_names() - netns_before - registered_netns(except_workdirs=fleets)
    assert not new_netns, f"namespaces left behind: {sorted(new_netns)}"

    # No process of them survives: no host init (its command line names its fleet directory), no SSH master
    # (its command line names a scenario's control directory, under ANSIBLE_HOME), nothing in a namespace no
    # longer named.
    own_netns = os.readlink("/proc/self/ns/net")
    named = named_netns_inodes()
    leftovers = {
        pid: cmdline
        for pid, (cmdline, netns) in processes().items()
        if pid not in pids_before
        and (any(str(workdir) in cmdline for workdir in fleets) or str(ansible_home) in cmdline
             or (netns != own_netns and netns not in named))
    }
    assert not leftovers, f"processes left behind: {leftovers}"
