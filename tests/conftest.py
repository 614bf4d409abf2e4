"""Fixtures shared by every test: the test fleet and real ansible-playbook runs against it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest

from fleetpatch_dev import ansible_env
from fleetpatch_dev.fleet import Fleet

# Unit tests import the collection as ansible_collections.fleetpatch.rollout, from this checkout.
sys.path.insert(0, str(ansible_env.collections_dir()))

VENV_BIN = Path(sys.executable).parent
PLAYBOOKS = Path(__file__).parent / "integration" / "playbooks"


@dataclass
class PlaybookRun:
    """One finished ansible-playbook run, as ansible-runner (what AWX runs) reports it."""

    returncode: int
    stats: dict
    events: list
    stdout: str

    def results(self, task_name: str) -> dict:
        """Per host, the result (``res``) of the task with this name; unreachable and failed ones included."""
        found = {}
        for event in self.events:
            data = event.get("event_data", {})
            if event["event"] in RESULT_EVENTS and data.get("task") == task_name:
                found[data["host"]] = data["res"]
        if not found:
            raise KeyError(f"no result of a task named {task_name!r} in this run")
        return found


RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")
STAT_KEYS = {"ok": "ok", "changed": "changed", "failures": "failures", "dark": "unreachable", "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


@pytest.fixture(scope="session", autouse=True)
def _collect_dead_fleets():
    """Remove fleets that earlier, killed test runs left behind (their owner PID is gone)."""
    if os.geteuid() == 0:
        Fleet.gc()


@pytest.fixture
def fleet(tmp_path_factory):
    """An empty fleet that is destroyed, with all its hosts, when the test ends."""
    made = Fleet.create(tmp_path_factory.mktemp("fleet"), owner_pid=os.getpid())
    yield made
    made.destroy()


@pytest.fixture
def ansible(tmp_path_factory):
    """Run a real ansible-playbook through ansible-runner; ends its SSH masters when the test ends."""
    env = ansible_env.prepare(tmp_path_factory.mktemp("ansible"))
    keys = ("ANSIBLE_CONFIG", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_NOCOLOR", "PATH")
    envvars = {key: env[key] for key in keys if key in env}
    envvars["PATH"] = f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"

    def play(playbook: str | Path, inventory: Path, *, extravars: dict | None = None, limit: str | None = None, check: bool = False,
             diff: bool = False) -> PlaybookRun:
        path = Path(playbook)
        if not path.is_absolute() and "." not in path.stem:
            path = PLAYBOOKS / path
        runner = ansible_runner.run(
            private_data_dir=str(tmp_path_factory.mktemp("runner")),
            playbook=str(path),
            inventory=str(inventory),
            envvars=envvars,
            extravars=extravars or {},
            limit=limit,
            cmdline=" ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted) or None,
            quiet=True,
        )
        stats = {}
        for key, name in STAT_KEYS.items():
            for host, count in ((runner.stats or {}).get(key) or {}).items():
                stats.setdefault(host, dict.fromkeys(STAT_KEYS.values(), 0))[name] = count
        return PlaybookRun(runner.rc, stats, list(runner.events), runner.stdout.read())

    play.env = env
    yield play
    ansible_env.close_connections(env)
