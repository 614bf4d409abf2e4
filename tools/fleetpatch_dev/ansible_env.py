"""How the demo, the tests and Molecule run Ansible against a test fleet.

:func:`prepare` makes the collection importable from this checkout as ``fleetpatch.rollout`` (a link under
``.build/collections``) and writes an ``ansible.cfg`` tuned for a fleet on a small controller: pipelining and
SSH ControlPersist, each run with its own control-socket directory so :func:`close_connections` can end exactly
the SSH masters that run started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ANSIBLE_CFG = """\
[defaults]
forks = {forks}
host_key_checking = False
retry_files_enabled = False
interpreter_python = /usr/bin/python3
timeout = 10
collections_path = {collections}

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=5 -o ServerAliveCountMax=3
control_path_dir = {control_dir}
"""


def collections_dir() -> Path:
    """A collections path in which ``ansible_collections/fleetpatch/rollout`` is this checkout."""
    root = REPO / ".build" / "collections"
    link = root / "ansible_collections" / "fleetpatch" / "rollout"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".rollout-{os.getpid()}")
        tmp.symlink_to(REPO, target_is_directory=True)
        os.replace(tmp, link)
    return root


def prepare(workdir: Path | str, *, forks: int = 20) -> dict:
    """Write ``workdir/ansible.cfg`` and return the environment that makes Ansible use it."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # A unix socket path must stay short (108 bytes): the control sockets get a short directory of their own.
    control_dir = Path(tempfile.mkdtemp(prefix="fpcp-", dir="/tmp"))
    cfg = workdir / "ansible.cfg"
    cfg.write_text(ANSIBLE_CFG.format(forks=forks, collections=collections_dir(), control_dir=control_dir), encoding="utf-8")
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "FLEETPATCH_CONTROL_DIR": str(control_dir),
    })
    return env


def close_connections(env: dict) -> None:
    """End the SSH ControlPersist masters of the runs that used ``env`` and remove their socket directory."""
    control_dir = Path(env["FLEETPATCH_CONTROL_DIR"])
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "fleetpatch-control"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False,
        )
    shutil.rmtree(control_dir, ignore_errors=True)
