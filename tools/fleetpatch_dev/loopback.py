"""A real HTTP server on 127.0.0.1 for tests: fixed answers per path, optionally late.

    with http_server({"/ok": (200, b"ok"), "/slow": (200, b"late", 1.0)}, default=(404, b"no")) as (url, port):
        ...

Each route is ``path -> (status, body)`` or ``(status, body, delay_seconds)``; a ``str`` body is sent as UTF-8.
The server answers GET on a thread of its own and is shut down when the block ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that no one listens on now (a test server binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def http_server(routes: dict, default: tuple = (404, b"no")) -> Iterator[tuple[str, int]]:
    """Serve ``routes`` on 127.0.0.1; yield ``(base URL, port)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status, body, *delay = routes.get(self.path, default)
            if delay:
                time.sleep(delay[0])
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # pylint: disable=arguments-differ
            """Quiet: the tests assert on answers, not on the server's log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
