"""Real ansible-playbook runs with the fleetpatch.rollout.audit callback enabled, and what they wrote."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import ansible_env

VENV_BIN = Path(sys.executable).parent
PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


@dataclass
class AuditedRun:
    """One finished ansible-playbook run and its output."""

    returncode: int
    stdout: str

    def recap(self) -> dict[str, dict[str, int]]:
        """The PLAY RECAP, per host: ok, changed, unreachable, failed, skipped, rescued, ignored."""
        keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        return {match[0]: dict(zip(keys, map(int, match[1:]))) for match in RECAP.findall(self.stdout)}

    def task_results(self) -> int:
        """How many task results the run reported (each is one callback event): ok (changed included), failed,
        skipped and unreachable, summed over the hosts of the recap."""
        return sum(host["ok"] + host["failed"] + host["skipped"] + host["unreachable"] for host in self.recap().values())


class Audited:
    """Runs playbooks with the audit callback writing to ``log``, signed with the key in ``key_file``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = ansible_env.prepare(workdir / "ansible", forks=20)
        self.log = workdir / "audit" / "audit.jsonl"
        self.key_file = workdir / "audit.key"
        self.key_file.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        self.env.update({
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit",
            "FLEETPATCH_AUDIT_LOG": str(self.log),
            "FLEETPATCH_AUDIT_HMAC_KEY_FILE": str(self.key_file),
        })

    def inventory(self, group: str, names: list[str], **hostvars) -> Path:
        """An inventory of hosts reached with the local connection (the controller stands in for each)."""
        path = self.workdir / f"{group}.yml"
        hosts = {name: {"ansible_connection": "local", **hostvars.get(name, {})} for name in names}
        path.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": hosts}}}}), encoding="utf-8")
        return path

    def start(self, playbook: str, inventory: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
        """Start ansible-playbook; ``args`` go to its command line, ``env`` over the prepared environment (None removes)."""
        return subprocess.Popen(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / playbook), *args],
            env={key: value for key, value in {**self.env, **(env or {})}.items() if value is not None}, cwd=self.workdir,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def run(self, playbook: str, inventory: Path, *args: str, env: dict | None = None, timeout: float = 600) -> AuditedRun:
        """Run ansible-playbook to its end."""
        process = self.start(playbook, inventory, *args, env=env)
        stdout = process.communicate(timeout=timeout)[0]
        return AuditedRun(process.returncode, stdout)

    @staticmethod
    def parse(stdout: str) -> AuditedRun:
        """The output of a run started with :meth:`start`."""
        return AuditedRun(0, stdout)

    def records(self) -> list[dict]:
        """The records in the log, in order."""
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def audited(tmp_path):
    """Run playbooks with the audit callback on; ends the runs' SSH masters afterwards."""
    made = Audited(tmp_path)
    yield made
    ansible_env.close_connections(made.env)
