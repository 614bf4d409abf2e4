"""Fixtures shared by every test: the test fleet, real ansible-playbook runs against it, and local fpdemo hosts.

The fpdemo fixtures (``fpdemo_artifacts``, ``fpdemo_host``) build the demo service's artifacts and install and start
it in a temporary directory on 127.0.0.1: the tools tests and the module_utils unit tests both use them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest

from fleetpatch_dev import ansible_env, artifacts
from fleetpatch_dev.fleet import Fleet
from fleetpatch_dev.postgres import PostgresServer
from fleetpatch_dev.postgres import gc as postgres_gc
from fleetpatch_dev.rsyslog import SyslogServer

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
        """Per host, the result (``res``) of the task with this name, its last run's; unreachable and failed ones included."""
        return {host: each[-1] for host, each in self.results_each(task_name).items()}

    def results_each(self, task_name: str) -> dict:
        """Per host, the results of every run of the task with this name, in order (a role included twice runs its
        tasks twice); unreachable, failed and skipped ones included."""
        found: dict[str, list] = {}
        for event in self.events:
            data = event.get("event_data", {})
            if event["event"] in RESULT_EVENTS and data.get("task") == task_name:
                # ansible-runner's skipped events carry no result of their own
                found.setdefault(data["host"], []).append(data.get("res", {"skipped": True} if event["event"] == "runner_on_skipped" else None))
        if not found:
            raise KeyError(f"no result of a task named {task_name!r} in this run")
        return found


RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")
STAT_KEYS = {"ok": "ok", "changed": "changed", "failures": "failures", "dark": "unreachable", "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


@pytest.fixture(scope="session", autouse=True)
def _collect_dead_fleets():
    """Remove fleets and PostgreSQL servers that earlier, killed test runs left behind (their owner PID is gone)."""
    if os.geteuid() == 0:
        Fleet.gc()
    postgres_gc()


@pytest.fixture(scope="session")
def postgres():
    """One private PostgreSQL server for the whole session (started when a test first asks for it), stopped and removed at
    the end; tests that stop it (halt) start it again (resume). Its directory is in the system's temp directory, which
    the server's user can reach (pytest's own is private to root)."""
    server = PostgresServer.start(owner_pid=os.getpid())
    yield server
    server.stop()


@dataclass
class AuditDatabase:
    """A database of the session's server with the audit schema (trail ``main``), a writer and a reader login role.

    Both roles have the password ``password``, which the fixture puts in PGPASSWORD; ``admin`` is the superuser's
    DSN over the unix socket (no password).
    """

    server: PostgresServer
    name: str
    writer: str
    reader: str
    password: str

    @property
    def writer_dsn(self) -> str:
        return self.server.dsn(self.writer, self.name)

    @property
    def reader_dsn(self) -> str:
        return self.server.dsn(self.reader, self.name)

    @property
    def admin(self) -> str:
        return self.server.dsn(dbname=self.name, tcp=False)

    def execute(self, statement: str, params=None) -> list[tuple]:
        """One statement as the superuser in this database."""
        return self.server.execute(statement, params, dbname=self.name)


@pytest.fixture
def audit_db(postgres, monkeypatch):
    """A fresh audit database (see :class:`AuditDatabase`), dropped afterwards."""
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg  # pylint: disable=import-outside-toplevel

    name = f"audit_{secrets.token_hex(4)}"
    made = AuditDatabase(postgres, name, f"{name}_w", f"{name}_r", secrets.token_hex(12))
    postgres.create_database(name)
    _audit_pg.init_db(made.admin, ["main"])
    for role, group in ((made.writer, _audit_pg.DEFAULT_WRITER), (made.reader, _audit_pg.DEFAULT_READER)):
        postgres.create_role(role, made.password)
        postgres.execute(f'GRANT {group} TO "{role}"')
    monkeypatch.setenv("PGPASSWORD", made.password)
    yield made
    if not postgres.processes():
        postgres.resume()  # a test stopped the server
    postgres.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    for role in (made.writer, made.reader):
        postgres.execute(f'DROP ROLE "{role}"')


@pytest.fixture(scope="session")
def syslog_server():
    """One rsyslogd on a loopback UDP port for the session, writing what it receives to ``messages``."""
    server = SyslogServer.start()
    yield server
    server.stop()


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
             diff: bool = False, env: dict | None = None) -> PlaybookRun:
        path = Path(playbook)
        if not path.is_absolute() and "." not in path.stem:
            path = PLAYBOOKS / path
        runner = ansible_runner.run(
            private_data_dir=str(tmp_path_factory.mktemp("runner")),
            playbook=str(path),
            inventory=str(inventory),
            envvars={**envvars, **(env or {})},
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


# The managed hosts run the service with the system Python (3.11 on Debian); use it too when there is one.
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FpdemoHost:
    """One fpdemo installation under a temporary directory (the host's paths, not a chroot), on 127.0.0.1."""

    def __init__(self, base: Path, built: dict[str, artifacts.Artifact]) -> None:
        self.base = base
        self.built = built
        self.port = free_port()
        self.install_dir = base / "srv" / "fpdemo"
        self.config_path = base / "etc" / "fpdemo" / "fpdemo.json"
        self.flags_file = base / "etc" / "fpdemo" / "flags.json"
        self.pid_file = base / "run" / "fpdemo" / "fpdemo.pid"
        self.log_file = base / "log" / "fpdemo" / "fpdemo.log"
        self.data_dir = base / "data" / "fpdemo"

    def install(self, version: str, activate: bool = True) -> None:
        """Install a built release, as the test fleet seeds a host."""
        settings = {"bind": "127.0.0.1", "pid_file": str(self.pid_file), "log_file": str(self.log_file), "data_dir": str(self.data_dir)}
        artifacts.install(
            "/", self.built[version].path, install_dir=str(self.install_dir), port=self.port,
            config_path=str(self.config_path), activate=activate, settings=settings,
        )

    def switch(self, version: str) -> None:
        """Point ``current`` at another installed release, atomically."""
        artifacts.set_current("/", version, install_dir=str(self.install_dir))

    def ctl(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``fpdemoctl.py --config ... command`` with the host's Python."""
        result = subprocess.run(
            [HOST_PYTHON, str(self.install_dir / "bin" / "fpdemoctl.py"), "--config", str(self.config_path), command],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"fpdemoctl {command} exited {result.returncode}: {result.stdout}{result.stderr}")
        return result

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One request on a fresh TCP connection; return status and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, dict]:
        """GET a JSON endpoint."""
        status, body = self.request("GET", path)
        return status, json.loads(body)

    def echo(self, declared: int, payload: bytes) -> tuple[int, bytes]:
        """POST ``payload`` to ``/v1/echo`` claiming it decompresses to ``declared`` bytes."""
        return self.request("POST", "/v1/echo", struct.pack(">I", declared) + zlib.compress(payload))

    def write_flags(self, text: str) -> None:
        """Replace the flags file."""
        self.flags_file.write_text(text, encoding="utf-8")

    def pid(self) -> int:
        """The PID in the PID file."""
        return int(self.pid_file.read_text(encoding="utf-8"))

    def log(self) -> str:
        """The service log so far."""
        return self.log_file.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def fpdemo_artifacts(tmp_path_factory) -> dict[str, artifacts.Artifact]:
    """Every catalogue release, built once per session."""
    return {artifact.version: artifact for artifact in artifacts.build_all(tmp_path_factory.mktemp("fpdemo-artifacts"))}


@pytest.fixture
def fpdemo_host(tmp_path, fpdemo_artifacts):
    """An empty fpdemo host; whatever it runs is stopped afterwards."""
    host = FpdemoHost(tmp_path, fpdemo_artifacts)
    yield host
    if (host.install_dir / "bin" / "fpdemoctl.py").exists():
        host.ctl("stop", check=False)
