"""fpdemo: the demo service that fleetpatch patches.

A small HTTP/1.1 service with a deliberate, probe-able defect modelled on CVE-2025-14847 ("MongoBleed").
``POST /v1/echo`` takes a zlib-compressed payload preceded by its declared uncompressed length, decompresses it
into one process-wide buffer that is reused and never zeroed, and answers with the declared number of bytes of
that buffer. Affected releases do not compare the declared length with the real one, so a request that declares
more than it sends reads back bytes that earlier requests left in the buffer.

One source tree serves every version: what differs between releases comes only from the ``release.json`` next
to this package. Standard library only, Python 3.9 or later, run by path::

    python3 <install_dir>/current/fpdemo/server.py --config /etc/fpdemo/fpdemo.json

SIGHUP reloads in place: the process stops accepting, lets requests in flight finish, rereads the flags file,
then, if ``<install_dir>/current`` holds a release of the same ABI, executes that release's code in the same
process (same PID) on the same listening socket, so no connection is refused. A release of another ABI is
refused until a restart. SIGTERM and SIGINT stop gracefully.

The service keeps data, as the database it stands in for would: ``POST /v1/records`` appends a record to the
journal ``records.jsonl`` in its data directory (``data_dir``, outside the releases, kept across every release),
synced before the answer. Nothing else writes there: starting, reloading and stopping only read it.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import json
import logging
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from urllib.parse import urlsplit

DEFAULT_CONFIG = {
    "port": 8080,
    "bind": "0.0.0.0",
    "install_dir": "/srv/fpdemo",
    "flags_file": "/etc/fpdemo/flags.json",
    "pid_file": "/run/fpdemo/fpdemo.pid",
    "log_file": "/var/log/fpdemo/fpdemo.log",
    "data_dir": "/var/lib/fpdemo/data",
}
MAX_LENGTH = 16 * 1024 * 1024
LENGTH_PREFIX = struct.Struct(">I")
STRICT_LENGTH_FLAG = "strict_length_check"
HANDLED_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM}
DRAIN_TIMEOUT_S = 5.0
KEEPALIVE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.1
LISTEN_BACKLOG = 128
RECORDS_FILE = "records.jsonl"
MAX_RECORD = 64 * 1024
LOG_FORMAT = "%(asctime)s fpdemo[%(process)d] %(levelname)s %(message)s"
LOG = logging.getLogger("fpdemo")


class RequestError(Exception):
    """A bad request: answered with status 400 and ``{"error": message}``."""


def load_config(path: str) -> dict:
    """Read the service's JSON configuration; keys it does not set keep their defaults."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    return dict(DEFAULT_CONFIG, **data)


def read_release(release_dir: str) -> dict:
    """Read ``release.json`` of the release unpacked at ``release_dir``."""
    with open(os.path.join(release_dir, "release.json"), encoding="utf-8") as handle:
        release = json.load(handle)
    if not isinstance(release, dict) or release.get("component") != "fpdemo" or not isinstance(release.get("abi"), int):
        raise ValueError(f"{release_dir}/release.json is not an fpdemo release")
    return release


def read_flags(path: str) -> dict:
    """Read the feature flags file ``{"flags": {name: bool}}``; a missing file means no flags."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    flags = data.get("flags") if isinstance(data, dict) else None
    if not isinstance(flags, dict) or not all(isinstance(value, bool) for value in flags.values()):
        raise ValueError(f'{path}: expected {{"flags": {{"name": true|false}}}}')
    return flags


def inflate(compressed: bytes) -> bytes:
    """Decompress a zlib stream of at most ``MAX_LENGTH`` bytes."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, MAX_LENGTH + 1)
    except zlib.error as exc:
        raise RequestError(f"payload is not valid zlib data: {exc}") from None
    if len(data) > MAX_LENGTH:
        raise RequestError(f"decompressed payload exceeds {MAX_LENGTH} bytes")
    if not inflater.eof:
        raise RequestError("payload is a truncated zlib stream")
    return data


def parse_echo_body(body: bytes) -> tuple:
    """Split an echo request body into its declared length and its compressed payload."""
    if len(body) < LENGTH_PREFIX.size:
        raise RequestError("body must start with a 4-byte big-endian declared length")
    (declared,) = LENGTH_PREFIX.unpack_from(body)
    if declared > MAX_LENGTH:
        raise RequestError(f"declared length {declared} exceeds {MAX_LENGTH} bytes")
    return declared, body[LENGTH_PREFIX.size:]


class EchoPool:
    """The process-wide decompression buffer: shared by every request, grown when needed, never zeroed."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lock = threading.Lock()

    def echo(self, declared: int, data: bytes, validate: bool) -> bytes:
        """Copy ``data`` into the buffer and return its first ``declared`` bytes (THE DEFECT unless validated)."""
        with self._lock:
            if validate and declared != len(data):
                raise RequestError(f"declared length {declared} does not match decompressed length {len(data)}")
            self._grow(max(declared, len(data)))
            self._buffer[:len(data)] = data
            return bytes(self._buffer[:declared])

    def _grow(self, size: int) -> None:
        """Extend the buffer to ``size`` bytes, keeping what it holds."""
        if len(self._buffer) < size:
            self._buffer.extend(bytes(size - len(self._buffer)))


class Records:
    """The service's data: an append-only journal of records, one JSON line each, in the data directory.

    Opening it creates the directory when it is missing and counts the records; only :meth:`append` writes.
    """

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, mode=0o750, exist_ok=True)
        self.path = os.path.join(data_dir, RECORDS_FILE)
        self._lock = threading.Lock()
        try:
            with open(self.path, "rb") as handle:
                self.count = sum(1 for _line in handle)
        except FileNotFoundError:
            self.count = 0

    def append(self, body: bytes) -> dict:
        """Append ``body`` as the next record, synced to disk; return its sequence number, size and sha256."""
        if not body:
            raise RequestError("a record must not be empty")
        if len(body) > MAX_RECORD:
            raise RequestError(f"a record holds at most {MAX_RECORD} bytes, got {len(body)}")
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            record = {"seq": self.count + 1, "size": len(body), "sha256": digest}
            line = json.dumps({**record, "data": base64.b64encode(body).decode("ascii")}, sort_keys=True) + "\n"
            with open(self.path, "ab") as handle:
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            self.count += 1
        return record


class Service:
    """What the HTTP endpoints answer: the running release, its flags and its reload state."""

    def __init__(self, config_path: str, config: dict, release: dict, reloads: int, flags: dict) -> None:
        self.config_path = config_path
        self.config = config
        self.release = release
        self.reloads = reloads
        self.flags = flags
        self.restart_required = False
        self.reload_error = None
        self.started = time.monotonic()
        self.pool = EchoPool()
        self.records = Records(config["data_dir"])

    def reload_flags(self) -> None:
        """Reread the flags file; keep the flags loaded so far when it is invalid."""
        try:
            self.flags = read_flags(self.config["flags_file"])
        except (OSError, ValueError) as exc:
            LOG.error("flags not reloaded, keeping %s: %s", json.dumps(self.flags, sort_keys=True), exc)

    def reload_failed(self, message: str, restart_required: bool) -> None:
        """Record a reload that left this code serving."""
        LOG.error("%s", message)
        self.reloads += 1
        self.reload_error = message
        self.restart_required = restart_required

    def handle(self, method: str, path: str, body: bytes) -> tuple:
        """Answer one request as ``(status, content_type, payload)``."""
        if self.release["fault"] == "slow":
            time.sleep(self.release["fault_delay_ms"] / 1000.0)
        route = ROUTES.get(path)
        if route is None:
            return json_reply(404, {"error": f"no such endpoint: {path}"})
        if method not in route:
            return json_reply(405, {"error": f"{path} accepts {' or '.join(sorted(route))} only"})
        try:
            return route[method](self, body)
        except RequestError as exc:
            return json_reply(400, {"error": str(exc)})

    def health(self, _body: bytes) -> tuple:
        """``GET /health``: liveness and state; status 500 when the release carries the health fault."""
        failing = self.release["fault"] == "health"
        return json_reply(500 if failing else 200, {
            "status": "error" if failing else "ok",
            "version": self.release["version"],
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "reloads": self.reloads,
            "flags": self.flags,
            "restart_required": self.restart_required,
            "reload_error": self.reload_error,
        })

    def version(self, _body: bytes) -> tuple:
        """``GET /version``: what is running."""
        return json_reply(200, {key: self.release[key] for key in ("component", "version", "abi")})

    def get_flags(self, _body: bytes) -> tuple:
        """``GET /flags``: the flags currently loaded."""
        return json_reply(200, {"flags": self.flags})

    def echo(self, body: bytes) -> tuple:
        """``POST /v1/echo``: decompress the payload and answer the declared number of bytes."""
        declared, compressed = parse_echo_body(body)
        validate = self.release["validates_declared_length"] or self.flags.get(STRICT_LENGTH_FLAG, False)
        return 200, "application/octet-stream", self.pool.echo(declared, inflate(compressed), validate)

    def add_record(self, body: bytes) -> tuple:
        """``POST /v1/records``: append the body to the service's data as one record."""
        return json_reply(201, self.records.append(body))

    def count_records(self, _body: bytes) -> tuple:
        """``GET /v1/records``: how many records the service's data holds."""
        return json_reply(200, {"records": self.records.count})


ROUTES = {
    "/health": {"GET": Service.health},
    "/version": {"GET": Service.version},
    "/flags": {"GET": Service.get_flags},
    "/v1/echo": {"POST": Service.echo},
    "/v1/records": {"GET": Service.count_records, "POST": Service.add_record},
}


def json_reply(status: int, document: dict) -> tuple:
    """Build a ``(status, content_type, payload)`` JSON answer."""
    return status, "application/json", (json.dumps(document, sort_keys=True) + "\n").encode("utf-8")


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 front end of :class:`Service`; idle keep-alive connections close after a short timeout."""

    protocol_version = "HTTP/1.1"
    server_version = "fpdemo"
    timeout = KEEPALIVE_TIMEOUT_S

    def do_GET(self) -> None:
        """Answer a GET request."""
        self._answer(b"")

    def do_POST(self) -> None:
        """Answer a POST request; its body must come with a Content-Length."""
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not length.isdigit() or int(length) > MAX_LENGTH + LENGTH_PREFIX.size:
            self.close_connection = True
            self._send(*json_reply(400, {"error": f"a Content-Length of at most {MAX_LENGTH + LENGTH_PREFIX.size} is required"}))
            return
        self._answer(self.rfile.read(int(length)))

    def _answer(self, body: bytes) -> None:
        """Let the service answer the request."""
        self._send(*self.server.service.handle(self.command, urlsplit(self.path).path, body))

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        """Write a complete response; close the connection afterwards when the server is draining."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.server.draining:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # pylint: disable=redefined-builtin
        """Send the access log to the service log."""
        LOG.info("%s %s", self.client_address[0], format % args)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP server that counts connections in flight and can adopt an inherited listening socket."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, service: Service, listen_fd: int | None) -> None:
        bind, port = service.config["bind"], service.config["port"]
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.service = service
        self.draining = False
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__((bind, port), Handler, bind_and_activate=listen_fd is None)
        if listen_fd is not None:
            self.socket.close()
            self.socket = socket.socket(fileno=listen_fd)
            self.socket.set_inheritable(False)
            self._name_from_socket()

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup that ``HTTPServer.server_bind`` makes."""
        socketserver.TCPServer.server_bind(self)
        self._name_from_socket()

    def _name_from_socket(self) -> None:
        """Take the server's address from its listening socket."""
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address) -> None:
        """Count the connection in flight before its thread starts."""
        with self._idle:
            self._in_flight += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        """Serve one connection, then count it out."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait (bounded) for the connections in flight; call after ``shutdown()`` stopped accepting."""
        self.draining = True
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                LOG.warning("%d connection(s) still open after %.1f s", self._in_flight, timeout)


def reload_in_place(server: Server, service: Service) -> None:
    """Handle SIGHUP: reload flags, then execute the current release's code if its ABI matches.

    Returns only when the old code keeps serving (other ABI, unreadable release, failed exec).
    """
    service.reload_flags()
    release_dir = os.path.realpath(os.path.join(service.config["install_dir"], "current"))
    try:
        release = read_release(release_dir)
    except (OSError, ValueError) as exc:
        service.reload_failed(f"reload failed: {exc}", restart_required=False)
        return
    running_abi = service.release["abi"]
    if release["abi"] != running_abi:
        message = f"reload refused: release {release['version']} needs a restart (abi {release['abi']} != {running_abi})"
        service.reload_failed(message, restart_required=True)
        return
    listen_fd = server.socket.fileno()
    argv = [
        sys.executable, os.path.join(release_dir, "fpdemo", "server.py"), "--config", service.config_path,
        "--listen-fd", str(listen_fd), "--reloads", str(service.reloads + 1), "--flags", json.dumps(service.flags),
    ]
    LOG.info("reloading: %s -> %s on fd %d", service.release["version"], release["version"], listen_fd)
    for handler in LOG.handlers:
        handler.flush()
    os.set_inheritable(listen_fd, True)
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        os.set_inheritable(listen_fd, False)
        service.reload_failed(f"reload failed: cannot execute {argv[1]}: {exc}", restart_required=False)


def serve(server: Server, service: Service) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads. Signals are blocked and taken with ``sigwait``."""
    while True:
        threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_S,), name="accept", daemon=True).start()
        signum = signal.sigwait(HANDLED_SIGNALS)
        LOG.info("received %s", signal.Signals(signum).name)
        server.shutdown()
        server.drain(DRAIN_TIMEOUT_S)
        if signum != signal.SIGHUP:
            return
        reload_in_place(server, service)
        server.draining = False


def write_pid_file(path: str) -> None:
    """Write this process's PID atomically."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(temporary, path)


def remove_pid_file(path: str) -> None:
    """Remove the PID file if it still names this process."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read().strip() == str(os.getpid()):
                os.unlink(path)
    except FileNotFoundError:
        pass


def setup_logging(log_file: str | None) -> None:
    """Log timestamped lines to ``log_file``, or to stderr until the configuration is known."""
    handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def parse_args(argv: list | None) -> argparse.Namespace:
    """Parse the command line; the last three options are passed by a reload to the next code."""
    parser = argparse.ArgumentParser(prog="fpdemo", description="fpdemo demo service")
    parser.add_argument("--config", default="/etc/fpdemo/fpdemo.json", help="JSON configuration file")
    parser.add_argument("--listen-fd", type=int, help="inherited listening socket (set by a reload)")
    parser.add_argument("--reloads", type=int, default=0, help="reloads so far (set by a reload)")
    parser.add_argument("--flags", default="{}", help="flags in force before the reload, as JSON (set by a reload)")
    return parser.parse_args(argv)


def start(args: argparse.Namespace) -> Server:
    """Load configuration, release and flags, set up logging, the PID file and the listening socket."""
    config_path = os.path.abspath(args.config)
    config = load_config(config_path)
    for path in (config["log_file"], config["pid_file"]):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    setup_logging(config["log_file"])
    release = read_release(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    service = Service(config_path, config, release, args.reloads, json.loads(args.flags))
    service.reload_flags()
    server = Server(service, args.listen_fd)
    write_pid_file(config["pid_file"])
    LOG.info(
        "fpdemo %s (abi %d) serving on %s:%d, reloads %d, flags %s", release["version"], release["abi"],
        server.server_name, server.server_port, service.reloads, json.dumps(service.flags, sort_keys=True),
    )
    return server


def main(argv: list | None = None) -> int:
    """Run the service until it is stopped; exit status 1 when it cannot start."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    setup_logging(None)
    args = parse_args(argv)
    try:
        server = start(args)
    except (OSError, ValueError) as exc:
        LOG.error("cannot start: %s", exc)
        return 1
    serve(server, server.service)
    server.server_close()
    remove_pid_file(server.service.config["pid_file"])
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
