"""Witnessed heads in syslog: sent through a real rsyslog on a loopback port, read back from its file, and checked."""

from __future__ import annotations

import os

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg, _audit_witness
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditError, AuditLog, verify

KEY = b"fleetpatch-test-key"


def _file_log(path, count):
    log = AuditLog(path, key=KEY)
    return [log.append({"event": "task", "host": f"h{number}"}) for number in range(count)]


def _witness(source, record, trail, key=KEY, run_id="run-1"):
    head = {"trail": trail, "seq": record["seq"], "hash": record["hash"], "run_id": run_id,
            "hmac": _audit_pg.head_hmac(record["seq"], record["hash"], key) if key else None}
    return _audit_pg.publish_witness(source, head)


@pytest.mark.parametrize(
    ("witness", "address"),
    [("syslog", "/dev/log"), ("syslog:///run/systemd/journal/syslog", "/run/systemd/journal/syslog"), ("syslog://127.0.0.1:514", ("127.0.0.1", 514)),
     ("syslog://[::1]:5514", ("::1", 5514))],
)
def test_syslog_addresses(witness, address):
    assert _audit_witness.syslog_address(witness) == address


def test_syslog_witness_through_a_real_rsyslog(syslog_server, tmp_path):
    trail = f"t_{os.getpid()}_{tmp_path.name[-6:].lower().replace('-', '_')}"
    path = tmp_path / "audit.jsonl"
    records = _file_log(path, 4)
    assert _witness(syslog_server.address, records[-1], trail) == f"syslog at 127.0.0.1:{syslog_server.port}"
    syslog_server.wait_for(f'"trail":"{trail}"')
    witnessed = _audit_pg.read_witness(str(syslog_server.messages), trail)
    assert [(seen["seq"], seen["hash"]) for seen in witnessed] == [(4, records[-1]["hash"])]
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:2]))
    result = verify(path, key=KEY, head=None, witness=witnessed)
    assert [problem["kind"] for problem in result["problems"]] == ["witness"]
    assert f"but the syslog file {syslog_server.messages} line " in result["problems"][0]["message"]


@pytest.mark.parametrize(
    ("witness", "message"),
    [
        ("syslog://127.0.0.1", "the audit witness 'syslog://127.0.0.1' names no port: write syslog://HOST:PORT (UDP)"),
        ("https://witness.example.com", "the audit witness 'https://witness.example.com' is neither a postgresql:// URI nor syslog, "
                                        "syslog:///PATH or syslog://HOST:PORT"),
        ("syslog:///nonexistent/log", "cannot send the witnessed head to syslog at /nonexistent/log: No such file or directory"),
    ],
)
def test_bad_witnesses_are_named(witness, message):
    with pytest.raises(AuditError) as caught:
        _audit_pg.publish_witness(witness, {"trail": "main", "seq": 1, "hash": "x"})
    assert str(caught.value) == message
