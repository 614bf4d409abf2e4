"""A private PostgreSQL server for fleetpatch's tests: Debian's PostgreSQL, run by an unprivileged user.

:meth:`PostgresServer.start` runs ``initdb`` into a new temporary directory (owned by the ``postgres`` user when
we are root: initdb refuses to run as root) and ``pg_ctl start`` on a unix socket in that directory and on a free
port of 127.0.0.1. The superuser ``postgres`` connects over the unix socket without a password (``trust``); every
connection over TCP needs a password (``scram-sha-256``), so the tests reach the server the way a controller
reaches a real one. :meth:`stop` stops the server and removes the directory, leaving no process behind.

Every server is recorded in a registry with its owner's PID, so :func:`gc` stops the servers of test runs that were
killed before they could clean up. ``python -m fleetpatch_dev.postgres gc`` does that from a shell.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from fleetpatch_dev.fleet import pid_alive
from fleetpatch_dev.loopback import free_port

# Debian's server binaries, the newest major version installed (15 on Debian 12).
BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
          default=Path("/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
SUPERUSER = "postgres"
REGISTRY = Path("/run/fleetpatch-dev/postgres") if os.geteuid() == 0 else Path(tempfile.gettempdir()) / f"fleetpatch-dev-postgres-{os.geteuid()}"
START_TIMEOUT = 60


class PostgresError(Exception):
    """The test server could not be started, reached or stopped."""


class PostgresServer:
    """One private PostgreSQL server in a temporary directory (see the module's docstring)."""

    def __init__(self, base: Path, port: int, owner_pid: int | None = None) -> None:
        self.base = base
        self.data = base / "data"
        self.socket_dir = base / "run"
        self.logfile = base / "server.log"
        self.port = port
        self.owner_pid = owner_pid
        self.pid: int | None = None

    # --- life -----------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, parent: Path | str | None = None, *, owner_pid: int | None = None) -> PostgresServer:
        """A new server, running; ``parent`` is where its temporary directory goes (the system's temp dir by default)."""
        base = Path(tempfile.mkdtemp(prefix="fleetpatch-pg-", dir=parent))
        base.chmod(0o755)
        server = cls(base, free_port(), owner_pid=owner_pid)
        try:
            server._chown(base)
            server._run("initdb", "-D", str(server.data), "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
                        "--auth-local=trust", "--auth-host=scram-sha-256")
            server.socket_dir.mkdir()
            server._chown(server.socket_dir)
            server._register()
            server.resume()
        except BaseException:
            server.stop()
            raise
        return server

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`) on its port; wait until it accepts connections.

        A server that runs already (someone else started it again with :meth:`start_command`) is left as it is.
        """
        if self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0:
            self.pid = int((self.data / "postmaster.pid").read_text(encoding="utf-8").split()[0])
            return
        for _attempt in range(3):
            options = f"-k {self.socket_dir} -p {self.port} -c listen_addresses=127.0.0.1"
            done = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.logfile), "-t", str(START_TIMEOUT), "-w", "start",
                             check=False)
            if done.returncode == 0:
                self.pid = int((self.data / "postmaster.pid").read_text(encoding="utf-8").split()[0])
                return
            log = self.logfile.read_text(encoding="utf-8", errors="replace") if self.logfile.exists() else ""
            if "could not bind" not in log and "Address already in use" not in log:
                break
            self.port = free_port()  # taken by someone else between choosing it and binding: choose again
            self._register()
        raise PostgresError(f"pg_ctl start failed in {self.data}: {done.stdout}{done.stderr}\n{self._log_tail()}")

    def start_command(self) -> str:
        """A shell command (for a playbook's command task, run as root) that starts the halted server as :meth:`resume` does."""
        options = f"-k {self.socket_dir} -p {self.port} -c listen_addresses=127.0.0.1"
        return f"runuser -u {SERVER_USER} -- {BIN / 'pg_ctl'} -D {self.data} -o '{options}' -l {self.logfile} -w start"

    def stop_command(self) -> str:
        """A shell command (for a playbook's command task, run as root) that stops the server at once, as a crash would."""
        return f"runuser -u {SERVER_USER} -- {BIN / 'pg_ctl'} -D {self.data} -m immediate -w stop"

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (``mode``: smart, fast or immediate, as ``pg_ctl stop -m``)."""
        if (self.data / "postmaster.pid").exists():
            done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-t", str(START_TIMEOUT), "-w", "stop", check=False)
            if done.returncode != 0 and self.pid and pid_alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)  # our own postmaster; its children end with it
        self._wait_gone()

    def stop(self) -> None:
        """Stop the server and remove its directory and registry entry: nothing of it is left."""
        self.halt("fast" if self.data.exists() else "immediate")
        shutil.rmtree(self.base, ignore_errors=True)
        (REGISTRY / f"{self.base.name}.json").unlink(missing_ok=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_gone(self) -> None:
        """Wait until the postmaster and every backend of this server have ended."""
        deadline = time.monotonic() + 30
        while self.processes():
            if time.monotonic() > deadline:
                for pid in self.processes():
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
            time.sleep(0.05)

    def processes(self) -> list[int]:
        """The PIDs of the processes of this server (the postmaster and its children), found through /proc."""
        found = []
        data = str(self.data)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"postgres") and data.encode() in cmdline:
                found.append(int(entry.name))
            elif self.pid and entry.name != str(self.pid):
                try:
                    stat = (entry / "stat").read_text(encoding="utf-8")
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    found.append(int(entry.name))
        return found

    # --- use ------------------------------------------------------------------------------------------------

    def dsn(self, user: str = SUPERUSER, dbname: str = "postgres", *, tcp: bool = True) -> str:
        """A connection string: over TCP to 127.0.0.1 (password from the environment or a pgpass file), or the socket."""
        host = "127.0.0.1" if tcp else str(self.socket_dir)
        if tcp:
            return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"
        return f"host={host} port={self.port} user={user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        """A superuser connection over the unix socket, in autocommit mode."""
        return psycopg.connect(self.dsn(SUPERUSER, dbname, tcp=False), autocommit=True, **kwargs)

    def execute(self, statement: str | sql.Composable, params=None, dbname: str = "postgres") -> list[tuple]:
        """Run one statement as the superuser; its rows (empty when it returns none)."""
        with self.connect(dbname) as connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def create_role(self, name: str, password: str | None = None, *, login: bool = True, superuser: bool = False) -> None:
        """Create a role (a login role with a password, by default)."""
        options = sql.SQL(" ").join(sql.SQL(word) for word in ("LOGIN" if login else "NOLOGIN", "SUPERUSER" if superuser else "NOSUPERUSER"))
        statement = sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), options)
        if password is not None:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        self.execute(statement)

    def create_database(self, name: str, owner: str = SUPERUSER) -> None:
        """Create a database owned by ``owner``."""
        self.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))

    # --- internals ------------------------------------------------------------------------------------------------

    def _as_server_user(self) -> list[str]:
        return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self._as_server_user(), str(BIN / program), *args], capture_output=True, text=True, timeout=120,
                              check=False, cwd=self.base, start_new_session=True)
        if check and done.returncode != 0:
            raise PostgresError(f"{program} exited {done.returncode}: {done.stdout}{done.stderr}")
        return done

    def _log_tail(self) -> str:
        if not self.logfile.exists():
            return ""
        return "\n".join(self.logfile.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])

    def _register(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        record = {"base": str(self.base), "port": self.port, "owner_pid": self.owner_pid}
        (REGISTRY / f"{self.base.name}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")


def gc() -> list[str]:
    """Stop and remove the servers whose owner process is gone; the directories removed."""
    removed = []
    if not REGISTRY.is_dir():
        return removed
    for entry in sorted(REGISTRY.glob("*.json")):
        try:
            record = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not record.get("owner_pid") or pid_alive(record["owner_pid"]):
            continue
        base = Path(record["base"])
        server = PostgresServer(base, record["port"])
        pidfile = server.data / "postmaster.pid"
        if pidfile.exists():
            server.pid = int(pidfile.read_text(encoding="utf-8").split()[0])
        server.stop()
        entry.unlink(missing_ok=True)
        removed.append(str(base))
    return removed


def main(argv: list[str] | None = None) -> int:
    """``python -m fleetpatch_dev.postgres gc``: stop the servers of test runs that were killed."""
    parser = argparse.ArgumentParser(prog="fleetpatch_dev.postgres", description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["gc"])
    parser.parse_args(argv)
    for base in gc():
        print(f"removed {base}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
