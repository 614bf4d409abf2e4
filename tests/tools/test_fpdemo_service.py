"""The demo service fpdemo and its manager, run as real processes on 127.0.0.1 from built artifacts."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import zlib

import pytest

SECRET = b"session=4f9c2d7e-SECRET-TOKEN;"
AFFECTED = ["7.0.26", "7.0.27", "8.0.16"]
FIXED = ["7.0.28", "8.0.17"]


def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def probe_leak(host) -> tuple[int, bytes]:
    """Send a secret, then a 2-byte payload that declares 64 bytes; return the second answer."""
    assert host.echo(len(SECRET), SECRET) == (200, SECRET)
    return host.echo(64, b"hi")


def started(host, version: str):
    """Install ``version``, start it and return the host."""
    host.install(version)
    host.ctl("start")
    return host


def test_ctl_lifecycle(fpdemo_host):
    host = fpdemo_host
    host.install("7.0.26")
    assert host.ctl("status", check=False).returncode == 3
    assert "7.0.26 started" in host.ctl("start").stdout
    pid = host.pid()
    assert host.ctl("start").stdout == f"fpdemo already running (pid {pid})\n"
    status = host.ctl("status")
    assert json.loads(status.stdout) == {"running": True, "pid": pid, "version": "7.0.26", "restart_required": False}
    assert host.ctl("stop").stdout == f"fpdemo stopped (pid {pid})\n"
    assert not host.pid_file.exists()
    assert host.ctl("stop").stdout == "fpdemo is not running\n"
    status = host.ctl("status", check=False)
    assert (status.returncode, json.loads(status.stdout)["running"]) == (3, False)
    assert "received SIGTERM" in host.log() and "stopped" in host.log()


def test_start_fails_clearly_when_the_server_dies(fpdemo_host):
    host = fpdemo_host
    host.install("7.0.26")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", host.port))
        squatter.listen()
        result = host.ctl("start", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("fpdemoctl start: fpdemo exited with status 1 while starting; see ")
    assert "cannot start: [Errno 98] Address already in use" in host.log()


def test_endpoints(fpdemo_host):
    host = started(fpdemo_host, "7.0.27")
    status, health = host.get("/health")
    assert status == 200
    assert set(health) == {"status", "version", "pid", "uptime_s", "reloads", "flags", "restart_required", "reload_error"}
    assert (health["status"], health["version"], health["pid"], health["reloads"]) == ("ok", "7.0.27", host.pid(), 0)
    assert host.get("/version") == (200, {"component": "fpdemo", "version": "7.0.27", "abi": 1})
    assert host.get("/flags") == (200, {"flags": {}})
    assert host.get("/nope") == (404, {"error": "no such endpoint: /nope"})
    assert host.get("/v1/echo") == (405, {"error": "/v1/echo accepts POST only"})


@pytest.mark.parametrize(("body", "error"), [
    (b"\x00\x00", "body must start with a 4-byte big-endian declared length"),
    (struct.pack(">I", 4) + b"not zlib", "payload is not valid zlib data: Error -3 while decompressing data: incorrect header check"),
    (struct.pack(">I", 5) + zlib.compress(b"hello")[:-3], "payload is a truncated zlib stream"),
    (struct.pack(">I", 16 * 1024 * 1024 + 1) + zlib.compress(b"x"), "declared length 16777217 exceeds 16777216 bytes"),
    (struct.pack(">I", 1) + zlib.compress(bytes(16 * 1024 * 1024 + 1)), "decompressed payload exceeds 16777216 bytes"),
])
def test_echo_rejects_bad_input(fpdemo_host, body, error):
    host = started(fpdemo_host, "7.0.26")
    status, answer = host.request("POST", "/v1/echo", body)
    assert (status, json.loads(answer)) == (400, {"error": error})


@pytest.mark.parametrize("version", AFFECTED)
def test_affected_release_leaks_previous_request(fpdemo_host, version):
    status, answer = probe_leak(started(fpdemo_host, version))
    assert status == 200 and len(answer) == 64
    assert answer.startswith(b"hi") and SECRET[2:] in answer


@pytest.mark.parametrize("version", FIXED)
def test_fixed_release_rejects_declared_length_mismatch(fpdemo_host, version):
    status, answer = probe_leak(started(fpdemo_host, version))
    assert (status, json.loads(answer)) == (400, {"error": "declared length 64 does not match decompressed length 2"})
    assert fpdemo_host.echo(2, b"hi") == (200, b"hi")


def test_strict_length_check_flag_mitigates_after_reload(fpdemo_host):
    host = started(fpdemo_host, "7.0.26")
    assert SECRET[2:] in probe_leak(host)[1]
    host.write_flags('{"flags": {"strict_length_check": true}}')
    assert host.ctl("reload").stdout == f"fpdemo 7.0.26 running (pid {host.pid()}, reloads 1)\n"
    assert host.get("/flags") == (200, {"flags": {"strict_length_check": True}})
    assert probe_leak(host)[0] == 400
    host.write_flags("{not json")
    host.ctl("reload")
    assert host.get("/flags") == (200, {"flags": {"strict_length_check": True}})
    assert "flags not reloaded, keeping {\"strict_length_check\": true}" in host.log()
    assert probe_leak(host)[0] == 400


def test_hot_patch_under_load_refuses_no_connection(fpdemo_host):
    host = started(fpdemo_host, "7.0.26")
    host.install("7.0.28", activate=False)
    pid = host.pid()
    seen, stop = [], threading.Event()

    def client() -> None:
        """Back-to-back requests, each on a fresh TCP connection."""
        while not stop.is_set():
            try:
                status, document = host.get("/version")
                seen.append(document["version"] if status == 200 else f"HTTP {status}")
            except (OSError, ValueError) as exc:
                seen.append(repr(exc))

    worker = threading.Thread(target=client)
    worker.start()
    try:
        wait_for(lambda: len(seen) >= 100)
        host.switch("7.0.28")
        assert host.ctl("reload").stdout == f"fpdemo 7.0.28 running (pid {pid}, reloads 1)\n"
        wait_for(lambda: len(seen) >= 350 and seen[-1] == "7.0.28")
    finally:
        stop.set()
        worker.join(timeout=15)
    switch = seen.index("7.0.28")
    assert set(seen[:switch]) == {"7.0.26"} and set(seen[switch:]) == {"7.0.28"}, sorted(set(seen))
    assert host.pid() == pid and host.get("/health")[1]["pid"] == pid
    assert probe_leak(host)[0] == 400


def test_restart_class_patch_needs_a_restart(fpdemo_host):
    host = started(fpdemo_host, "7.0.26")
    host.install("8.0.17", activate=False)
    pid = host.pid()
    host.switch("8.0.17")
    result = host.ctl("reload", check=False)
    refusal = "reload refused: release 8.0.17 needs a restart (abi 2 != 1)"
    assert (result.returncode, result.stderr) == (2, f"fpdemo 7.0.26 still running (pid {pid}): {refusal}\n")
    assert refusal in host.log()
    health = host.get("/health")[1]
    assert (health["version"], health["pid"], health["restart_required"], health["reloads"]) == ("7.0.26", pid, True, 1)
    assert json.loads(host.ctl("status").stdout)["restart_required"] is True
    host.ctl("restart")
    assert host.get("/version") == (200, {"component": "fpdemo", "version": "8.0.17", "abi": 2})
    assert host.pid() != pid and host.get("/health")[1]["restart_required"] is False


def test_reload_onto_a_missing_release_keeps_serving(fpdemo_host):
    host = started(fpdemo_host, "7.0.26")
    (host.install_dir / "current").unlink()
    (host.install_dir / "current").symlink_to("releases/9.9.9")
    result = host.ctl("reload", check=False)
    assert result.returncode == 2 and "reload failed: [Errno 2] No such file or directory" in result.stderr
    assert host.get("/health")[1]["restart_required"] is False and host.get("/version")[1]["version"] == "7.0.26"


def test_bad_release_with_failing_health(fpdemo_host):
    host = started(fpdemo_host, "7.0.29")
    status, health = host.get("/health")
    assert (status, health["status"], health["version"]) == (500, "error", "7.0.29")
    assert host.get("/version")[0] == 200


def test_bad_release_that_is_slow(fpdemo_host):
    host = started(fpdemo_host, "7.0.30")
    began = time.monotonic()
    assert host.get("/version") == (200, {"component": "fpdemo", "version": "7.0.30", "abi": 1})
    assert time.monotonic() - began >= 0.3


def records(host) -> list[dict]:
    """The journal in the host's data directory, one parsed line per record."""
    lines = (host.data_dir / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def add_record(host, body: bytes) -> tuple[int, dict]:
    status, answer = host.request("POST", "/v1/records", body)
    return status, json.loads(answer)


def test_records_are_kept_in_the_data_directory_across_reloads_restarts_and_releases(fpdemo_host):
    host = started(fpdemo_host, "7.0.26")
    assert host.get("/v1/records") == (200, {"records": 0})
    assert sorted(p.name for p in host.data_dir.iterdir()) == []  # created at start, written only by a record
    assert add_record(host, b"alpha") == (201, {"seq": 1, "size": 5, "sha256": hashlib.sha256(b"alpha").hexdigest()})
    assert add_record(host, b"\x00\xffbeta") == (201, {"seq": 2, "size": 6, "sha256": hashlib.sha256(b"\x00\xffbeta").hexdigest()})
    assert [(r["seq"], base64.b64decode(r["data"])) for r in records(host)] == [(1, b"alpha"), (2, b"\x00\xffbeta")]

    host.install("7.0.28")
    host.ctl("reload")
    assert host.get("/version")[1]["version"] == "7.0.28"
    assert host.get("/v1/records") == (200, {"records": 2})
    assert add_record(host, b"gamma")[1]["seq"] == 3
    host.install("8.0.17")
    host.ctl("restart")
    assert host.get("/v1/records") == (200, {"records": 3})
    assert [r["seq"] for r in records(host)] == [1, 2, 3]


@pytest.mark.parametrize(("body", "error"), [
    (b"", "a record must not be empty"),
    (b"x" * (64 * 1024 + 1), "a record holds at most 65536 bytes, got 65537"),
])
def test_bad_records_are_refused_and_nothing_is_written(fpdemo_host, body, error):
    host = started(fpdemo_host, "7.0.27")
    assert add_record(host, body) == (400, {"error": error})
    assert host.get("/v1/records") == (200, {"records": 0})
    assert not (host.data_dir / "records.jsonl").exists()
