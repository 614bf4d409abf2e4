"""ModuleHost: commands and tools through the module, GET, request and download against a real loopback server."""

from __future__ import annotations

import socket

import pytest

from fleetpatch_dev.loopback import http_server
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import MAX_BODY, ModuleHost


class RecordingModule:
    """What ModuleHost asks of an AnsibleModule: run_command and get_bin_path."""

    def __init__(self):
        self.calls = []

    def run_command(self, argv, check_rc):
        self.calls.append(("run_command", argv, check_rc))
        return 3, "out", "err"

    def get_bin_path(self, name):
        self.calls.append(("get_bin_path", name))
        return "/usr/bin/" + name if name == "true" else None


def test_run_and_which_go_through_the_module():
    module = RecordingModule()
    host = ModuleHost(module)
    assert host.run(["false", "x"]) == (3, "out", "err")
    assert host.which("true") == "/usr/bin/true"
    assert host.which("fleetpatch-no-such-tool") is None
    assert module.calls == [("run_command", ["false", "x"], False), ("get_bin_path", "true"), ("get_bin_path", "fleetpatch-no-such-tool")]


BODIES = {"/ok": (200, b'{"version": "7.0.28"}'), "/teapot": (418, b"short and stout"), "/big": (200, b"x" * (MAX_BODY + 10))}


@pytest.fixture(scope="module")
def server():
    with http_server(BODIES) as (url, _port):
        yield url


@pytest.fixture(scope="module")
def closed_port():
    """A loopback URL nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ok"


def test_get(server):
    host = ModuleHost(None)
    assert host.get(f"{server}/ok", 5) == '{"version": "7.0.28"}'
    assert len(host.get(f"{server}/big", 5)) == MAX_BODY  # at most MAX_BODY bytes are read


@pytest.mark.parametrize(("path", "message"), [("/teapot", "failed: I'm a Teapot"), ("/missing", "failed: Not Found")])
def test_get_fails_on_an_error_status(server, path, message):
    with pytest.raises(PatchError) as error:
        ModuleHost(None).get(f"{server}{path}", 5)
    assert str(error.value) == f"GET {server}{path} {message}"
    assert error.value.details == {"url": f"{server}{path}"}


@pytest.mark.parametrize(("path", "expected"), [("/ok", (200, '{"version": "7.0.28"}')), ("/teapot", (418, "short and stout")), ("/missing", (404, "no"))])
def test_request_returns_any_status(server, path, expected):
    assert ModuleHost(None).request(f"{server}{path}", 5) == expected


@pytest.mark.parametrize("method", ["get", "request"])
def test_no_answer_at_all(closed_port, method):
    with pytest.raises(PatchError, match=r"^GET http://127\.0\.0\.1:\d+/ok failed: .*refused"):
        getattr(ModuleHost(None), method)(closed_port, 5)


def test_download(server, tmp_path):
    target = tmp_path / "artifact"
    ModuleHost(None).download(f"{server}/big", str(target), 5)
    assert target.read_bytes() == b"x" * (MAX_BODY + 10)  # a download is not cut at MAX_BODY


@pytest.mark.parametrize("path", ["/missing", "/teapot"])
def test_a_failed_download_leaves_no_file(server, tmp_path, path):
    target = tmp_path / "artifact"
    target.write_bytes(b"old partial")
    with pytest.raises(PatchError, match=rf"^GET {server}{path} failed: "):
        ModuleHost(None).download(f"{server}{path}", str(target), 5)
    assert not target.exists()
