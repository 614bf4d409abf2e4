"""fpdemoctl: start, stop, restart, reload and query fpdemo (stands in for its systemd unit).

Version-independent: installed once at ``<install_dir>/bin/fpdemoctl.py``, outside the releases, it runs whichever
release ``<install_dir>/current`` points to. Standard library only, Python 3.9 or later::

    /usr/bin/python3 /srv/fpdemo/bin/fpdemoctl.py [--config PATH] {start|stop|restart|reload|status|check-leak}

``check-leak`` is the vendor's checker for the declared-length leak (the CVE-2025-14847 analogue): it sends a
request carrying a random marker, then one that declares more bytes than it sends, and looks for the marker in
the answer. fleetpatch's health check runs it as the probe that the fixed vulnerability is really gone.

Exit status: 0 success (``check-leak``: no leak); 1 failure; 2 reload refused or failed, the previous code still
serving (``status`` tells whether a restart is required); 3 ``status`` of a service that is not running (LSB);
4 ``check-leak`` found the leak.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib

DEFAULT_CONFIG = {
    "port": 8080,
    "bind": "0.0.0.0",
    "install_dir": "/srv/fpdemo",
    "flags_file": "/etc/fpdemo/flags.json",
    "pid_file": "/run/fpdemo/fpdemo.pid",
    "log_file": "/var/log/fpdemo/fpdemo.log",
    "data_dir": "/var/lib/fpdemo/data",
}
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
RELOAD_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 2.0
POLL_S = 0.05
EXIT_FAILED = 1
EXIT_RELOAD_REFUSED = 2
EXIT_NOT_RUNNING = 3
EXIT_LEAKING = 4
WILDCARD_CLIENT = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class CtlError(Exception):
    """A command failed; the message says why."""


def load_config(path: str) -> dict:
    """Read the service's JSON configuration; keys it does not set keep their defaults."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise CtlError(f"{path}: expected a JSON object")
    return dict(DEFAULT_CONFIG, **data)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) fpdemo server process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return state != "Z" and b"server.py" in cmdline


def running_pid(config: dict) -> int | None:
    """The PID of the running server according to its PID file, or None."""
    try:
        with open(config["pid_file"], encoding="utf-8") as handle:
            pid = int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def fetch(config: dict, path: str) -> dict | None:
    """GET ``path`` from the service and return its JSON body (also for error statuses), or None if no answer."""
    host = WILDCARD_CLIENT.get(config["bind"], config["bind"])
    url = f"http://{'[' + host + ']' if ':' in host else host}:{config['port']}{path}"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return json.load(exc)
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def wait_until(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def start(config: dict, config_path: str) -> int:
    """Start the server detached unless it runs already; wait until ``/health`` answers from it."""
    pid = running_pid(config)
    if pid is not None:
        print(f"fpdemo already running (pid {pid})")
        return 0
    server = os.path.join(config["install_dir"], "current", "fpdemo", "server.py")
    os.makedirs(os.path.dirname(config["log_file"]), exist_ok=True)
    with open(config["log_file"], "ab") as log:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, server, "--config", config_path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/", start_new_session=True,
        )
    answer = {}

    def answered() -> bool:
        if process.poll() is not None:
            return True
        answer.update(fetch(config, "/health") or {})
        return answer.get("pid") == process.pid

    wait_until(answered, START_TIMEOUT_S)
    if process.poll() is not None:
        raise CtlError(f"fpdemo exited with status {process.returncode} while starting; see {config['log_file']}")
    if answer.get("pid") != process.pid:
        stop_pid(process.pid)
        raise CtlError(f"fpdemo did not answer on port {config['port']} within {START_TIMEOUT_S:.0f} s; stopped it")
    print(f"fpdemo {answer.get('version')} started (pid {process.pid}, health {answer.get('status')})")
    return 0


def stop_pid(pid: int) -> None:
    """SIGTERM ``pid``, SIGKILL it if it is still alive after ``STOP_TIMEOUT_S``."""
    for signum, timeout in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        if wait_until(lambda: not process_alive(pid), timeout):
            return
    raise CtlError(f"pid {pid} survived SIGKILL")


def stop(config: dict) -> int:
    """Stop the server if it runs; succeed when it does not run (any more)."""
    pid = running_pid(config)
    if pid is None:
        print("fpdemo is not running")
    else:
        stop_pid(pid)
        print(f"fpdemo stopped (pid {pid})")
    try:
        os.unlink(config["pid_file"])
    except FileNotFoundError:
        pass
    return 0


def reload(config: dict) -> int:
    """SIGHUP the server and wait until it answers with its reload counter incremented."""
    pid = running_pid(config)
    before = fetch(config, "/health") if pid else None
    if not before or before.get("pid") != pid:
        raise CtlError("fpdemo is not running" if pid is None else f"fpdemo (pid {pid}) does not answer")
    os.kill(pid, signal.SIGHUP)
    after = {}

    def reloaded() -> bool:
        after.update(fetch(config, "/health") or {})
        return after.get("pid") == pid and after.get("reloads", -1) > before["reloads"]

    if not wait_until(reloaded, RELOAD_TIMEOUT_S):
        raise CtlError(f"fpdemo (pid {pid}) did not finish reloading within {RELOAD_TIMEOUT_S:.0f} s")
    if after.get("reload_error"):
        print(f"fpdemo {after.get('version')} still running (pid {pid}): {after['reload_error']}", file=sys.stderr)
        return EXIT_RELOAD_REFUSED
    print(f"fpdemo {after.get('version')} running (pid {pid}, reloads {after['reloads']})")
    return 0


def status(config: dict) -> int:
    """Print ``{"running", "pid", "version", "restart_required"}`` as JSON; exit 3 when not running."""
    pid = running_pid(config)
    health = (fetch(config, "/health") or {}) if pid else {}
    print(json.dumps({
        "running": pid is not None,
        "pid": pid,
        "version": health.get("version"),
        "restart_required": health.get("restart_required", False),
    }, sort_keys=True))
    return 0 if pid is not None else EXIT_NOT_RUNNING


def post_echo(config: dict, payload: bytes, declared: int) -> tuple:
    """``POST /v1/echo`` of ``payload`` (compressed) declaring ``declared`` bytes: ``(status, body)``."""
    host = WILDCARD_CLIENT.get(config["bind"], config["bind"])
    connection = http.client.HTTPConnection(host, config["port"], timeout=HTTP_TIMEOUT_S)
    try:
        connection.request("POST", "/v1/echo", body=struct.pack(">I", declared) + zlib.compress(payload))
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def check_leak(config: dict) -> int:
    """Exit 0 when the service does not answer bytes of an earlier request, 4 when it does."""
    marker = ("fpdemo-check-" + uuid.uuid4().hex).encode()
    status, _body = post_echo(config, marker, len(marker))
    if status != 200:
        raise CtlError(f"a well-formed echo request got HTTP {status}")
    status, body = post_echo(config, b"?", len(marker))
    if status == 200 and marker[1:] in body:
        print(f"LEAK: a request declaring {len(marker)} bytes but sending 1 got back the earlier request's bytes")
        return EXIT_LEAKING
    print(f"no leak: the over-long request got HTTP {status} and no earlier request's bytes")
    return 0


def main(argv: list | None = None) -> int:
    """Run one command."""
    parser = argparse.ArgumentParser(prog="fpdemoctl", description="manage the fpdemo service")
    parser.add_argument("--config", default="/etc/fpdemo/fpdemo.json", help="the service's JSON configuration")
    parser.add_argument("command", choices=("start", "stop", "restart", "reload", "status", "check-leak"))
    args = parser.parse_args(argv)
    config_path = os.path.abspath(args.config)
    try:
        config = load_config(config_path)
        if args.command == "start":
            return start(config, config_path)
        if args.command == "stop":
            return stop(config)
        if args.command == "restart":
            stop(config)
            return start(config, config_path)
        if args.command == "reload":
            return reload(config)
        if args.command == "check-leak":
            return check_leak(config)
        return status(config)
    except (CtlError, OSError, ValueError, http.client.HTTPException) as exc:
        print(f"fpdemoctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
