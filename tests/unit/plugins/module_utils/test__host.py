"""ModuleHost: commands and tools through the module, GET, request and download against a real loopback server."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError

import pytest
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

from fleetpatch_dev.loopback import http_server
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import MAX_BODY, ModuleHost


@pytest.fixture(autouse=True)
def urllib_global_opener():
    """open_url installs its opener as urllib's global one, with the proxies of that moment: every later urlopen of the
    test process (the fleet tooling's) would go through a proxy a test set and its server that is gone. Put it back."""
    yield
    urllib.request.install_opener(None)


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


# --- a plain http:// GET in process (http.client), what needs more through open_url ----------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Answers /moved with a redirect to /ok, /slow after 2 s, anything else with its own request line; records each."""

    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Recorder.seen.append((self.path, self.headers.get("User-Agent")))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(2)
        body = f"you asked {self.path}".encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # /slow: the client gave up first
            pass

    def log_message(self, *args):  # pylint: disable=arguments-differ
        """Quiet."""


@pytest.fixture
def recorder():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("path", ["/ok", "/teapot", "/missing", "/big"])
def test_a_plain_get_answers_what_open_url_answers(server, path):
    try:
        response = open_url(f"{server}{path}", timeout=5, follow_redirects="safe")
        expected = response.getcode(), to_text(response.read(MAX_BODY))
    except HTTPError as exc:
        expected = exc.code, to_text(exc.read(MAX_BODY))
    assert ModuleHost(None).request(f"{server}{path}", 5) == expected


def test_a_plain_get_keeps_the_query_and_says_what_open_url_says_it_is(recorder, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert ModuleHost(None).get(f"{recorder}/health?deep=1", 5) == "you asked /health?deep=1"
    assert ModuleHost(None).request(recorder, 5) == (200, "you asked /")
    assert Recorder.seen == [("/health?deep=1", "ansible-httpget"), ("/", "ansible-httpget")]


def test_a_redirect_is_followed_as_open_url_follows_it(recorder):
    assert ModuleHost(None).request(f"{recorder}/moved", 5) == (200, "you asked /ok")
    assert ModuleHost(None).get(f"{recorder}/moved", 5) == "you asked /ok"
    # the answer that redirects is asked again by open_url, which follows it: one more request, on this rare path only
    assert [path for path, _agent in Recorder.seen] == ["/moved", "/moved", "/ok"] * 2


def test_a_url_with_a_proxy_configured_goes_through_it(recorder, monkeypatch):
    monkeypatch.setenv("http_proxy", recorder)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    target = "http://fleetpatch-service.invalid:8080/health"
    assert ModuleHost(None).get(target, 5) == f"you asked {target}"  # the proxy got the absolute URL
    monkeypatch.setenv("no_proxy", "fleetpatch-service.invalid")
    with pytest.raises(PatchError, match=r"^GET http://fleetpatch-service\.invalid:8080/health failed: "):
        ModuleHost(None).get(target, 5)  # bypassed: asked directly, and that name does not resolve


@pytest.mark.parametrize("method", ["get", "request"])
def test_an_answer_slower_than_the_timeout_is_no_answer(recorder, method):
    with pytest.raises(PatchError, match=r"^GET http://127\.0\.0\.1:\d+/slow failed: timed out$"):
        getattr(ModuleHost(None), method)(f"{recorder}/slow", 0.5)
