"""Short faults of a fleet host's demo service, injected by a test at a moment it reads from the service's log.

A health verdict must not flip on a noisy moment, and must still fail on a real fault. These make both happen on
a real host, for a known stretch of the probes:

* :func:`stall` freezes the service (SIGSTOP, then SIGCONT): requests wait in the listen backlog and are answered
  late, as when a busy machine or a pause starves it. Probe samples run one after another, so however long it
  lasts, one stall delays one sample: it touches one round of a health check.
* :func:`outage` takes the service down and puts a stand-in on its port that answers ``503`` to a given number of
  ``GET`` requests (one health round is ``samples`` of them), then starts the service again.
* :func:`crash` kills it and leaves it down (``fleet.kill_service``).

When to inject is read from the service's own log (:class:`ServiceLog`), which every request writes a line to:
``fpdemo 7.0.28 (abi 1) serving on ...`` after a reload into 7.0.28, ``"GET /version HTTP/1.1" 200`` when the
apply or rollback module confirms the running version, ``"GET /health HTTP/1.1"`` for each probe sample. The host
writes the log into its overlay's upper layer, so the controller reads it directly, without a round trip.
"""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path

__all__ = ["ServiceLog", "crash", "outage", "stall"]

HOST_PYTHON = "/usr/bin/python3"
CTL = "/srv/fpdemo/bin/fpdemoctl.py"
LOG = "var/log/fpdemo/fpdemo.log"

# The stand-in of :func:`outage`, run inside the host: answers 503 to argv[2] GET requests on port argv[1], then exits.
STAND_IN = r"""
import http.server, sys, time
port, left = int(sys.argv[1]), [int(sys.argv[2])]
class Down(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    def do_GET(self):
        body = b'{"status": "down"}\n'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        left[0] -= 1
    def log_message(self, *args):
        pass
http.server.HTTPServer.allow_reuse_address = True
for attempt in range(200):  # the killed service may hold the port for a moment
    try:
        server = http.server.HTTPServer(("0.0.0.0", port), Down)
        break
    except OSError:
        time.sleep(0.01)
else:
    sys.exit("port %d stayed in use" % port)
while left[0] > 0:
    server.handle_request()
"""


class ServiceLog:
    """Follow a host's fpdemo log from the controller: each :meth:`wait_for` reads on from where the last stopped."""

    def __init__(self, fleet, name: str):
        self.name = name
        self.path = Path(fleet.host_root(name)) / LOG
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 120.0) -> str:
        """Wait for ``count`` more lines matching the regular expression ``pattern``; return the last of them."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            text = self.path.read_bytes()[self.offset:] if self.path.exists() else b""
            for line in text.splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break  # a line still being written: read it whole next time
                self.offset += len(line)
                if regex.search(line.decode("utf-8", "replace")):
                    seen += 1
                    if seen == count:
                        return line.decode("utf-8", "replace").rstrip("\n")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {seen} of {count} lines matching {pattern!r} in {self.path} within {timeout:g} s")
            time.sleep(0.02)


def stall(fleet, name: str, seconds: float) -> None:
    """Freeze the host's demo service for ``seconds``; it answers what waited as soon as it runs again."""
    fleet.kill_service(name, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        fleet.kill_service(name, signal.SIGCONT)


def crash(fleet, name: str) -> None:
    """Kill the host's demo service (SIGKILL) and leave it down."""
    fleet.kill_service(name, signal.SIGKILL)


def outage(fleet, name: str, requests: int, *, port: int = 8080) -> None:
    """Kill the demo service, answer ``503`` to the next ``requests`` GETs on its port, then start it again."""
    fleet.kill_service(name, signal.SIGKILL)
    fleet.exec(name, [HOST_PYTHON, "-c", STAND_IN, str(port), str(requests)])
    fleet.exec(name, [HOST_PYTHON, CTL, "start"])
