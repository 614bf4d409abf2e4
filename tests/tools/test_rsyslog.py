"""fleetpatch_dev.rsyslog: the test syslog server receives on a loopback UDP port, writes its file, and ends."""

from __future__ import annotations

import os
import socket

from fleetpatch_dev.rsyslog import SyslogServer


def test_rsyslog_receives_on_a_loopback_port_and_ends():
    with SyslogServer.start() as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"<38>fleetpatch-test: hello witness", ("127.0.0.1", server.port))
        assert "fleetpatch-test: hello witness" in server.wait_for("hello witness")
        pid = server.process.pid
    assert not os.path.exists(f"/proc/{pid}")
    assert not server.base.exists()
