"""The demo service's defect, probed from outside: does a host leak other requests' bytes?

``leak(host, port)`` sends a request carrying a secret, then one that declares 64 bytes but sends 2; an affected
release answers the 64 bytes of its reused buffer, which still hold the rest of the secret. A fixed release
answers 400.
"""

from __future__ import annotations

import http.client
import secrets
import struct
import zlib


def echo(host: str, port: int, declared: int, payload: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """POST ``payload`` to ``/v1/echo`` declaring that it decompresses to ``declared`` bytes."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", "/v1/echo", struct.pack(">I", declared) + zlib.compress(payload))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def leak(host: str, port: int = 8080) -> bool:
    """True when the service at ``host:port`` returns bytes of an earlier request (the defect is present)."""
    secret = b"FPSECRET-" + secrets.token_hex(16).encode()
    status, body = echo(host, port, len(secret) + 32, secret + b"x" * 32)
    if status != 200:
        raise AssertionError(f"{host}:{port} refused a well-formed echo: {status} {body[:200]!r}")
    status, body = echo(host, port, 64, b"hi")
    return status == 200 and secret[len(b"hi"):] in body  # "hi" overwrote the buffer's first two bytes
