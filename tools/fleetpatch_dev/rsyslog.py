"""A private syslog server for fleetpatch's tests: Debian's rsyslogd, on a loopback UDP port, writing one file.

:meth:`SyslogServer.start` runs ``rsyslogd -n`` with a configuration of its own in a new temporary directory: it
listens on a free UDP port of 127.0.0.1 only (not on ``/dev/log``), and writes every message it receives to
``messages.log`` there, in rsyslog's traditional file format. It returns once a probe message came through.
:meth:`stop` ends it and removes the directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RSYSLOGD = "/usr/sbin/rsyslogd"
PROBE = "fleetpatch-dev rsyslog probe"


class SyslogError(Exception):
    """The syslog server did not start."""


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SyslogServer:
    """One rsyslogd (see the module's docstring); ``address`` is what a client sends to, ``messages`` the file."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.messages = base / "messages.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """The witness address the audit callback takes: ``syslog://127.0.0.1:PORT``."""
        return f"syslog://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, parent: Path | str | None = None) -> SyslogServer:
        """A new server, running and receiving."""
        server = cls(Path(tempfile.mkdtemp(prefix="fleetpatch-rsyslog-", dir=parent)), free_udp_port())
        (server.base / "work").mkdir()
        config = server.base / "rsyslog.conf"
        config.write_text(
            f'global(workDirectory="{server.base / "work"}")\n'
            'module(load="imudp")\n'
            f'input(type="imudp" address="127.0.0.1" port="{server.port}")\n'
            f'*.* action(type="omfile" file="{server.messages}" template="RSYSLOG_TraditionalFileFormat")\n',
            encoding="utf-8",
        )
        server.process = subprocess.Popen(  # pylint: disable=consider-using-with  # ended by stop()
            [RSYSLOGD, "-n", "-f", str(config), "-i", str(server.base / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL, stderr=(server.base / "rsyslogd.err").open("wb"), start_new_session=True,
        )
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SyslogError(f"rsyslogd exited {self.process.returncode}: {(self.base / 'rsyslogd.err').read_text(errors='replace')}")
                client.sendto(f"<14>{PROBE}".encode(), ("127.0.0.1", self.port))
                if self.messages.exists() and PROBE in self.messages.read_text(encoding="utf-8", errors="replace"):
                    return
                time.sleep(0.1)
        raise SyslogError(f"rsyslogd did not write a message to {self.messages} within 20 s")

    def wait_for(self, text: str, count: int = 1, timeout: float = 10) -> str:
        """The messages file once it holds ``text`` ``count`` times (rsyslog writes asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            content = self.messages.read_text(encoding="utf-8", errors="replace") if self.messages.exists() else ""
            if content.count(text) >= count or time.monotonic() > deadline:
                return content
            time.sleep(0.05)

    def stop(self) -> None:
        """End rsyslogd and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> SyslogServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
