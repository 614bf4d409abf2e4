"""A real SMTP server on loopback for the tests of customer notices: aiosmtpd, reading what it received.

:class:`MailServer` runs aiosmtpd's SMTP server in a thread of the test on 127.0.0.1 and keeps every message it
accepted (:attr:`MailServer.messages`, parsed). It can refuse chosen recipients with a 550 at RCPT TO, and speak
STARTTLS with a login (a certificate made for 127.0.0.1 by :func:`make_certificate`), refusing mail without both,
and take its time to accept each message (``delay``), as a busy relay does.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from fleetpatch_dev.loopback import free_port


@dataclass
class Received:
    """One message the server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``directory``: ``(cert, key)``."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        del server, session, rcpt_options
        if address.lower() in self.server.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        del server, session
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted for delivery"


class MailServer:
    """aiosmtpd on 127.0.0.1 at a free port; a context manager that stops it at the end."""

    def __init__(self, refuse=(), tls_files: tuple[Path, Path] | None = None, login: tuple[str, str] | None = None, delay: float = 0.0) -> None:
        self.refuse = {address.lower() for address in refuse}
        self.delay = delay
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        options = {}
        if tls_files is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
            options.update(tls_context=context, require_starttls=True)
        if login is not None:
            options.update(auth_required=True, auth_require_tls=tls_files is not None, authenticator=self._authenticator(login))
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticator(self, login):
        def check(server, session, envelope, mechanism, auth_data):
            del server, session, envelope, mechanism
            user = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
            password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
            self.logins.append(user)
            return AuthResult(success=(user, password) == login, handled=False, auth_data=user)
        return check

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def by_recipient(self) -> dict[str, list[Received]]:
        """The accepted messages by each envelope recipient."""
        found: dict[str, list[Received]] = {}
        for received in self.messages:
            for address in received.rcpt_tos:
                found.setdefault(address.lower(), []).append(received)
        return found
