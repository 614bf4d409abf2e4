# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Witnessed heads in syslog: the message a run sends at its end, and reading them back from a syslog file.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Standard library only: ``bin/fleetpatch-audit`` loads this file by its path, without Ansible.

A witnessed head is the head of a trail when a run ended: ``trail`` (its name), ``seq`` and ``hash`` of its last
record, the head's ``hmac`` (with the trail's key) and the ``run_id``. In syslog it is one message, tag
``fleetpatch-audit``, text ``fleetpatch-audit-witness {canonical JSON}``; a syslog server that keeps it where the
log's writers cannot rewrite it (another host, an append-only file) makes it a witness.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import socket

__all__ = ["MARKER", "WitnessError", "message", "publish_syslog", "read_syslog", "syslog_address"]

MARKER = "fleetpatch-audit-witness"
_FOUND = re.compile(re.escape(MARKER) + r" (\{.*\})\s*$")
_FIELDS = ("trail", "seq", "hash", "hmac", "run_id")


class WitnessError(Exception):
    """A witness cannot be written or read."""


def message(head):
    """The syslog text of a witnessed head (ASCII: syslog servers may escape anything else)."""
    return f"{MARKER} " + json.dumps({field: head.get(field) for field in _FIELDS}, sort_keys=True, separators=(",", ":"))


def syslog_address(witness):
    """The address ``SysLogHandler`` takes for ``syslog``, ``syslog:///dev/log`` or ``syslog://HOST:PORT`` (UDP)."""
    if witness == "syslog":
        return "/dev/log"
    if not isinstance(witness, str) or not witness.startswith("syslog://"):
        raise WitnessError(f"the audit witness {witness!r} is neither a postgresql:// URI nor syslog, syslog:///PATH or syslog://HOST:PORT")
    rest = witness[len("syslog://"):]
    if rest.startswith("/"):
        return rest
    host, _sep, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise WitnessError(f"the audit witness {witness!r} names no port: write syslog://HOST:PORT (UDP)")
    return (host.strip("[]"), int(port))


class _RaisingHandler(logging.handlers.SysLogHandler):
    def handleError(self, record):
        raise WitnessError("cannot send to syslog")  # called from emit's except block: the cause is chained


def publish_syslog(witness, head):
    """Send a witnessed head to the syslog ``witness`` names; what it was sent to. WitnessError when it cannot be."""
    address = syslog_address(witness)
    try:
        handler = _RaisingHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH, socktype=socket.SOCK_DGRAM)
    except OSError as exc:
        raise WitnessError(f"cannot reach syslog at {address}: {exc.strerror or exc}") from None
    handler.ident = "fleetpatch-audit: "
    try:
        handler.emit(logging.LogRecord("fleetpatch.audit", logging.INFO, __file__, 0, message(head), None, None))
    except WitnessError as exc:
        cause = exc.__context__
        raise WitnessError(f"cannot send the witnessed head to syslog at {address}: {getattr(cause, 'strerror', None) or cause}") from None
    finally:
        handler.close()
    return f"syslog at {address[0]}:{address[1]}" if isinstance(address, tuple) else f"syslog at {address}"


def read_syslog(path, trail):
    """The heads of ``trail`` witnessed in the syslog file at ``path``, oldest first; WitnessError when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError as exc:
        raise WitnessError(f"cannot read the witness syslog file {path}: {exc.strerror or exc}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        match = _FOUND.search(line)
        if not match:
            continue
        try:
            head = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(head, dict) and head.get("trail") == trail and isinstance(head.get("seq"), int) and isinstance(head.get("hash"), str):
            found.append({"source": f"syslog file {path} line {number}", "seq": head["seq"], "hash": head["hash"],
                          "hmac": head.get("hmac"), "run_id": head.get("run_id")})
    return found
