"""The audit log on a real file: appends, the chain, the head file, concurrent writers, and every kind of tampering."""

from __future__ import annotations

import copy
import datetime
import fcntl
import getpass
import hashlib
import json
import multiprocessing
import os
import re
import socket

import pytest

from fleetpatch_dev import mounts

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditError, AuditLog, verify

KEY = b"fleetpatch-test-key"
RECORDS = 6


def _write(path, count=RECORDS, key=KEY):
    log = AuditLog(path, key=key)
    return [log.append({"event": "task", "host": f"web-{number:02d}", "data": {"status": "ok"}}) for number in range(1, count + 1)]


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.jsonl"
    _write(path)
    return path


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def _rehash(line, key=None, **changes):
    """A line with fields changed and its hash recomputed, as someone who knows the format (not the key) would."""
    record = json.loads(line)
    record.update(changes)
    record.pop("hmac", None)
    record["hash"] = _audit.record_hash(record)
    if key is not None:
        record["hmac"] = _audit.record_hmac(record, key)
    return _audit.canonical(record) + b"\n"


def _edit(line, **changes):
    """A line with fields changed and nothing else."""
    record = json.loads(line)
    record.update(changes)
    return _audit.canonical(record) + b"\n"


def _rechain(lines, start):
    """Lines from ``start`` (0-based) re-hashed one after another, so the chain holds again (without the key)."""
    out = list(lines[:start])
    prev = json.loads(out[-1])["hash"] if out else _audit.GENESIS
    for line in lines[start:]:
        line = _rehash(line, prev=prev)
        prev = json.loads(line)["hash"]
        out.append(line)
    return out


def _forged_append(lines):
    """A record added at the end with a correct chain but no valid HMAC: written without the key."""
    last = json.loads(lines[-1])
    record = {"event": "approval", "ts": "2026-11-22T08:00:00.000000Z", "data": {"approved_by": "mallory"}, "seq": last["seq"] + 1,
              "prev": last["hash"]}
    record["hash"] = _audit.record_hash(record)
    return lines + [_audit.canonical(record) + b"\n"]


def _rewrite_head(path, seq, key=None):
    """The head file rewritten to point at record ``seq``."""
    record = json.loads(_lines(path)[seq - 1])
    head = {"seq": seq, "hash": record["hash"]}
    if key is not None:
        head["hmac"] = _audit._head_hmac(seq, record["hash"], key)  # pylint: disable=protected-access
    path.with_name(path.name + ".head").write_bytes(_audit.canonical(head) + b"\n")


TAMPERING = [
    # (id, change to the lines, key given to verify, expected problems as (kind, line, seq), message of the first)
    ("untouched", lambda lines: lines, KEY, [], None),
    ("untouched-without-key", lambda lines: lines, None, [], None),
    ("edited-field", lambda lines: lines[:2] + [_edit(lines[2], host="web-99")] + lines[3:], KEY,
     [("edited", 3, 3)], "line 3 (seq 3) was edited: its content does not match its hash"),
    ("edited-field-rehashed-no-key", lambda lines: lines[:2] + [_rehash(lines[2], host="web-99")] + lines[3:], None,
     [("edited", 4, 4)], "line 4 (seq 4) does not chain onto seq 3 on line 3: one of them was edited and its hash recomputed"),
    ("edited-field-rehashed-with-key", lambda lines: lines[:2] + [_rehash(lines[2], host="web-99")] + lines[3:], KEY,
     [("forged", 3, 3), ("edited", 4, 4)], "line 3 (seq 3) has no valid HMAC: it was written or re-hashed without the key"),
    ("edited-whole-chain-rehashed-no-key", lambda lines: _rechain(lines[:2] + [_edit(lines[2], host="web-99")] + lines[3:], 2), None,
     [("head", 6, 6)], "seq 6 in the log differs from the head file: the log was rewritten from there on"),
    ("edited-whole-chain-rehashed-with-key", lambda lines: _rechain(lines[:2] + [_edit(lines[2], host="web-99")] + lines[3:], 2), KEY,
     [("forged", 3, 3), ("head", 6, 6)], "line 3 (seq 3) has no valid HMAC: it was written or re-hashed without the key"),
    ("deleted-one", lambda lines: lines[:2] + lines[3:], KEY, [("deleted", 3, 4)], "seq 3 deleted before line 3 (seq 4)"),
    ("deleted-two", lambda lines: lines[:2] + lines[4:], KEY, [("deleted", 3, 5)], "seq 3 to 4 deleted before line 3 (seq 5)"),
    ("deleted-first", lambda lines: lines[1:], KEY, [("deleted", 1, 2)], "seq 1 deleted before line 1 (seq 2)"),
    ("reordered-swap", lambda lines: lines[:2] + [lines[3], lines[2]] + lines[4:], KEY,
     [("reordered", 3, 4)], "line 3 holds seq 4 where seq 3 belongs"),
    ("reordered-moved-to-end", lambda lines: [lines[0]] + lines[2:] + [lines[1]], KEY,
     [("reordered", 2, 3)], "line 2 holds seq 3 where seq 2 belongs"),
    ("duplicated", lambda lines: lines[:4] + [lines[1]] + lines[4:], KEY, [("reordered", 5, 2)], "line 5 holds seq 2 where seq 5 belongs"),
    ("truncated-tail", lambda lines: lines[:4], KEY,
     [("truncated", 5, 5)], "the log ends at seq 4 (line 4) but the head file says seq 6: 2 record(s) cut off the end"),
    ("truncated-to-empty", lambda lines: [], None,
     [("truncated", 1, 1)], "the log ends at seq 0 (line 0) but the head file says seq 6: 6 record(s) cut off the end"),
    ("forged-appended-with-key", _forged_append, KEY,
     [("forged", 7, 7)], "line 7 (seq 7) has no valid HMAC: it was written or re-hashed without the key"),
    ("unparseable", lambda lines: lines[:1] + [b"not json\n"] + lines[2:], KEY,
     [("unparseable", 2, None)], "line 2 is not an audit record: not JSON: Expecting value: line 1 column 1 (char 0)"),
    ("unparseable-not-a-record", lambda lines: lines[:1] + [b'{"seq": "2"}\n'] + lines[2:], KEY,
     [("unparseable", 2, None)], "line 2 is not an audit record: no valid 'seq'"),
    ("torn-last-line", lambda lines: lines + [b'{"event":"task","se'], KEY,
     [("unparseable", 7, None)], "line 7 is incomplete (no newline at the end of the log, 19 bytes)"),
    ("edited-and-deleted-and-truncated", lambda lines: [lines[0], _edit(lines[1], host="x")] + lines[3:5], KEY,
     [("edited", 2, 2), ("deleted", 3, 4), ("truncated", 5, 6)], "line 2 (seq 2) was edited: its content does not match its hash"),
]


@pytest.mark.parametrize(("change", "key", "expected", "message"), [case[1:] for case in TAMPERING], ids=[case[0] for case in TAMPERING])
def test_tampering_is_detected_and_located(log, change, key, expected, message):
    head = str(log) + ".head"
    log.write_bytes(b"".join(change(_lines(log))))
    result = verify(log, key=key, head=head)
    assert [(problem["kind"], problem["line"], problem["seq"]) for problem in result["problems"]] == expected
    assert result["ok"] is (not expected)
    if message is not None:
        assert result["problems"][0]["message"] == message


def test_untouched_log_passes_with_everything_checked(log):
    written = [json.loads(line) for line in _lines(log)]
    result = verify(log, key=KEY, head=str(log) + ".head")
    assert result == {
        "ok": True, "path": str(log), "records": RECORDS, "last_seq": RECORDS, "last_hash": written[-1]["hash"],
        "hmac_checked": True, "head_checked": True, "problems": [], "notes": [], "repairs": [],
    }
    assert [record["seq"] for record in written] == list(range(1, RECORDS + 1))
    assert written[0]["prev"] == _audit.GENESIS
    assert all(later["prev"] == earlier["hash"] for earlier, later in zip(written, written[1:]))
    assert [record["ts"] for record in written] == sorted(record["ts"] for record in written)
    assert json.loads((log.parent / "audit.jsonl.head").read_bytes()) == {
        "seq": RECORDS, "hash": written[-1]["hash"], "hmac": _audit._head_hmac(RECORDS, written[-1]["hash"], KEY),  # pylint: disable=protected-access
    }


def test_a_forged_record_without_the_key_passes_only_when_no_key_is_checked(log):
    log.write_bytes(b"".join(_forged_append(_lines(log))))
    # Without the key a well-formed forgery is indistinguishable: that is what the HMAC key is for.
    result = verify(log, head=str(log) + ".head")
    assert result["ok"] is True
    assert result["notes"] == ["the head file is 1 record(s) behind the log (a writer stopped between the two writes)",
                               "HMACs not checked: no key given"]


@pytest.mark.parametrize(
    ("key_for_head", "key", "expected"),
    [
        (None, KEY, [("head", None, 4)]),  # rewritten without the key: its HMAC gives it away
        (KEY, KEY, []),  # rewritten with the key: whoever holds the key can cut the log unnoticed
        (None, None, []),  # no key anywhere: a cut made with the head file rewritten goes unnoticed
    ],
)
def test_truncation_with_the_head_file_rewritten(log, key_for_head, key, expected):
    log.write_bytes(b"".join(_lines(log)[:4]))
    _rewrite_head(log, 4, key_for_head)
    result = verify(log, key=key, head=str(log) + ".head")
    assert [(problem["kind"], problem["line"], problem["seq"]) for problem in result["problems"]] == expected
    if expected:
        assert result["problems"][0]["message"] == f"head file {log}.head has no valid HMAC: it was written without the key"


def test_missing_head_file(log):
    os.unlink(str(log) + ".head")
    result = verify(log, key=KEY, head=str(log) + ".head")
    assert result["problems"] == [{"kind": "head", "line": None, "seq": None, "message": f"head file {log}.head is missing"}]


TORN = b'{"event":"task","se'


def test_a_torn_last_line_after_the_head_is_cut_off_on_record_and_the_chain_goes_on(log):
    with open(log, "ab") as handle:
        handle.write(TORN)
    written = AuditLog(log, key=KEY).append({"event": "run_end"})
    records = [json.loads(line) for line in _lines(log)]
    assert [record["event"] for record in records[-2:]] == ["torn_tail", "run_end"]
    sha = hashlib.sha256(TORN).hexdigest()
    assert records[-2]["data"] == {"bytes": len(TORN), "sha256": sha, "line": RECORDS + 1, "head_seq": RECORDS}
    assert written == records[-1]  # what append returns is the caller's record, not the cut's
    result = verify(log, key=KEY, head=str(log) + ".head")
    assert (result["ok"], result["problems"]) == (True, [])
    note = f"line 7 (seq 7): a writer cut off 19 bytes (sha256 {sha}) of torn line 7 left by a write a crash cut short; the head file said seq 6"
    assert result["notes"] == [note]
    assert result["repairs"] == [{"event": "torn_tail", "line": 7, "seq": 7, "ts": records[-2]["ts"], "data": records[-2]["data"]}]
    assert _audit.format_report(result).splitlines() == [
        f"OK {log}: 8 records, last seq 8; checked: hash chain, HMACs, head file; REPAIRED: 1 cut(s) on record, listed below", f"note: {note}",
    ]


def _set_head(log, seq=None, content=None):
    """The head file pointing at ``seq`` (signed), or holding ``content``, or removed (both None)."""
    head = log.with_name(log.name + ".head")
    if seq is not None:
        _rewrite_head(log, seq, KEY)
    elif content is not None:
        head.write_bytes(content)
    else:
        head.unlink()


TORN_CASES = [
    # (id, lines kept, head: seq / content / None for missing, refusal (None: cut as a crash's))
    ("after-the-head", RECORDS, {"seq": RECORDS}, None),
    ("head-one-behind", RECORDS, {"seq": RECORDS - 1}, None),
    ("at-the-head", RECORDS - 1, {"seq": RECORDS},
     "its head file {head} says seq 6 was committed, and the last complete record is seq 5: a committed record was damaged"),
    ("before-the-head", RECORDS - 2, {"seq": RECORDS},
     "its head file {head} says seq 6 was committed, and the last complete record is seq 4: a committed record was damaged"),
    ("head-missing", RECORDS, {}, "its head file {head} is missing, so whether that record had been committed cannot be told"),
    ("head-unsigned", RECORDS, {"content": b'{"hash":"00","seq":6}\n'},
     "its head file cannot be trusted to tell whether that record had been committed (head file {head} has no valid HMAC: it was written "
     "without the key)"),
    ("head-garbled", RECORDS, {"content": b"{"},
     "its head file cannot be trusted to tell whether that record had been committed (head file {head} is not a fleetpatch audit head: "
     "Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
]


@pytest.mark.parametrize(("kept", "head", "refusal"), [case[1:] for case in TORN_CASES], ids=[case[0] for case in TORN_CASES])
def test_a_torn_line_at_or_before_the_head_is_refused(log, kept, head, refusal):
    _set_head(log, **head)
    log.write_bytes(b"".join(_lines(log)[:kept]) + TORN)
    before = (log.read_bytes(), os.path.exists(f"{log}.head") and (log.parent / "audit.jsonl.head").read_bytes())
    if refusal is None:
        AuditLog(log, key=KEY).append({"event": "note"})
        assert [json.loads(line)["event"] for line in _lines(log)[-2:]] == ["torn_tail", "note"]
        return
    with pytest.raises(AuditError) as raised:
        AuditLog(log, key=KEY).append({"event": "note"})
    assert str(raised.value) == (
        f"the audit log {log} ends with a torn line {kept + 1} (19 bytes without a newline) and {refusal.format(head=f'{log}.head')}. "
        f"Refusing to append: an operator can cut it off on record with `fleetpatch-audit repair {log} --key <the HMAC key file>`"
    )
    assert (log.read_bytes(), os.path.exists(f"{log}.head") and (log.parent / "audit.jsonl.head").read_bytes()) == before


def test_a_first_write_cut_short_is_cut_off_without_a_head_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(TORN)  # the very first write stopped inside its line: no head file was ever written
    AuditLog(path, head=tmp_path / "elsewhere.head").append({"event": "run_start"})
    records = [json.loads(line) for line in _lines(path)]
    assert [(record["event"], record["seq"]) for record in records] == [("torn_tail", 1), ("run_start", 2)]
    assert records[0]["data"] == {"bytes": 19, "sha256": hashlib.sha256(TORN).hexdigest(), "line": 1, "head_seq": None}


def test_repair_cuts_the_torn_committed_line_on_record_and_appends_go_on(log, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    lines = _lines(log)
    log.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # record 6 was committed (the head says so), then damaged
    with pytest.raises(AuditError):
        AuditLog(log, key=KEY).append({"event": "note"})
    repaired = _audit.repair(log, key=KEY)
    sha = hashlib.sha256(lines[-1][:40]).hexdigest()
    assert repaired["event"] == "repair" and repaired["seq"] == 6
    assert repaired["data"] == {"line": 6, "bytes": 40, "sha256": sha, "head_seq": 6, "user": getpass.getuser(), "uid": os.getuid(),
                                "host": socket.gethostname(), "sudo_user": "alice"}
    assert json.loads(_lines(log)[-1]) == repaired
    assert json.loads((log.parent / "audit.jsonl.head").read_bytes())["seq"] == 6  # the head moved on to the repair record
    AuditLog(log, key=KEY).append({"event": "note"})
    result = verify(log, key=KEY, head=str(log) + ".head")
    assert (result["ok"], result["problems"], result["records"]) == (True, [], 7)
    assert [(item["event"], item["line"], item["seq"]) for item in result["repairs"]] == [("repair", 6, 6)]
    assert result["notes"] == [f"line 6 (seq 6): repaired by {getpass.getuser()} (sudo from alice) on {socket.gethostname()} at {repaired['ts']}: "
                               f"cut 40 bytes (sha256 {sha}) of torn line 6; the head file said seq 6"]
    assert _audit.repair(log, key=KEY) is None  # nothing left to repair: nothing changes
    assert verify(log, key=KEY, head=str(log) + ".head")["records"] == 7


def test_repair_without_a_head_file_says_so(log):
    os.unlink(f"{log}.head")
    log.write_bytes(log.read_bytes() + TORN)
    repaired = _audit.repair(log, key=KEY)
    assert (repaired["data"]["head_seq"], repaired["data"]["head_problem"]) == (None, f"head file {log}.head is missing")
    assert verify(log, key=KEY, head=f"{log}.head")["ok"] is True


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "no HMAC key was given"), (b"another key", "the key given does not sign its last record")],
)
def test_repair_refuses_to_write_a_record_that_would_read_as_forged(log, key, message):
    log.write_bytes(log.read_bytes() + TORN)
    with pytest.raises(AuditError) as raised:
        _audit.repair(log, key=key)
    assert str(raised.value) == (f"the records of the audit log {log} are signed, and {message}: give the key that signs it, or the repair "
                                 "record would read as forged")
    assert log.read_bytes().endswith(TORN)


def test_repair_of_a_missing_log(tmp_path):
    with pytest.raises(AuditError) as raised:
        _audit.repair(tmp_path / "none.jsonl")
    assert str(raised.value) == f"cannot read the audit log {tmp_path / 'none.jsonl'}: No such file or directory"
    assert not (tmp_path / "none.jsonl").exists()


def test_append_many_writes_a_group_at_once(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key=KEY)
    assert log.append_many([]) == []
    first = log.append({"event": "run_start"})
    group = log.append_many([{"event": "task", "host": f"h{number}", "ts": f"2026-11-22T08:00:0{number}.000000Z"} for number in range(3)])
    records = [json.loads(line) for line in _lines(path)]
    assert records == [first, *group]
    assert [(record["seq"], record.get("batch")) for record in records] == [(1, None), (2, 3), (3, None), (4, None)]
    assert [record["ts"] for record in group] == [f"2026-11-22T08:00:0{number}.000000Z" for number in range(3)]  # the caller's, kept
    assert json.loads((tmp_path / "audit.jsonl.head").read_bytes())["seq"] == 4
    with pytest.raises(AuditError):
        log.append_many([{"event": "ok"}, {"event": {1}}])
    assert len(_lines(path)) == 4  # one bad record: none of the group is written
    assert verify(path, key=KEY, head=f"{path}.head")["ok"] is True


BEHIND = [
    # (id, records in groups as written, the head's seq, expected problems, the note or message)
    ("one-behind", [1] * 6, 5, [], "the head file is 1 record(s) behind the log (a writer stopped between the two writes)"),
    ("a-group-behind", [1, 1, 4], 2, [], "the head file is 4 record(s) behind the log (a writer stopped between the two writes)"),
    ("two-behind", [1] * 6, 4, [("head", 4, 4)],
     "the head file says seq 4 but the log goes on to seq 6: 2 records past it, more than the 1 a writer that stopped between its two "
     "writes can leave; an old head was put back, or records were added without moving the head on"),
    ("a-group-and-one-behind", [1, 3, 1], 1, [("head", 1, 1)],
     "the head file says seq 1 but the log goes on to seq 5: 4 records past it, more than the 3 a writer that stopped between its two "
     "writes can leave; an old head was put back, or records were added without moving the head on"),
    ("far-behind", [1] * 6, 1, [("head", 1, 1)],
     "the head file says seq 1 but the log goes on to seq 6: 5 records past it, more than the 1 a writer that stopped between its two "
     "writes can leave; an old head was put back, or records were added without moving the head on"),
]


@pytest.mark.parametrize(("groups", "head_seq", "expected", "text"), [case[1:] for case in BEHIND], ids=[case[0] for case in BEHIND])
def test_a_head_behind_the_log(tmp_path, groups, head_seq, expected, text):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key=KEY)
    for size in groups:
        log.append_many([{"event": "task"}] * size)
    _rewrite_head(path, head_seq, KEY)  # a signed head kept from earlier, put back
    result = verify(path, key=KEY, head=f"{path}.head")
    assert [(problem["kind"], problem["line"], problem["seq"]) for problem in result["problems"]] == expected
    assert (result["problems"][0]["message"] if expected else result["notes"][0]) == text


@pytest.fixture
def tmpfs(tmp_path):
    """A directory on a tmpfs of its own (``read_only()`` remounts it read-only), unmounted at the end."""
    with mounts.tmpfs(tmp_path / "tmpfs") as mounted:
        yield mounted


def test_a_log_on_a_read_only_filesystem_names_the_cause(tmpfs):
    path = tmpfs.directory / "audit.jsonl"
    AuditLog(path, key=KEY).append({"event": "run_start"})
    tmpfs.read_only()
    with pytest.raises(AuditError) as raised:
        AuditLog(path, key=KEY).append({"event": "task"})
    assert str(raised.value) == f"cannot open the audit log {path}: {tmpfs.directory} is on a read-only filesystem"
    with pytest.raises(AuditError) as raised:
        AuditLog(tmpfs.directory / "new.jsonl").append({"event": "task"})
    assert str(raised.value) == f"cannot open the audit log {tmpfs.directory / 'new.jsonl'}: {tmpfs.directory} is on a read-only filesystem"


def test_a_head_file_that_cannot_be_updated_loses_no_record(tmp_path, tmpfs):
    path = tmp_path / "audit.jsonl"
    head = tmpfs.directory / "audit.head"
    log = AuditLog(path, key=KEY, head=head)
    log.append({"event": "run_start"})
    tmpfs.read_only()
    with pytest.raises(_audit.HeadError) as raised:
        log.append_many([{"event": "task"}, {"event": "task"}])
    assert str(raised.value) == (f"the head file {head} could not be updated: {tmpfs.directory} is on a read-only filesystem "
                                 f"(records seq 2 to 3 were written to the audit log {path})")
    assert [record["seq"] for record in raised.value.records] == [2, 3]
    assert [json.loads(line) for line in _lines(path)][1:] == raised.value.records
    result = verify(path, key=KEY, head=head)  # the head stayed at seq 1, one group behind: what a crash there leaves
    assert (result["ok"], result["notes"]) == (True, ["the head file is 2 record(s) behind the log (a writer stopped between the two writes)"])


def test_the_last_record_is_read_from_the_end_even_when_long(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"event": "note", "data": {"text": "x" * 50000}})  # longer than the block read from the end
    log.append({"event": "note", "data": {"text": "y" * 20000}})
    log.append({"event": "note"})
    assert verify(path, head=str(path) + ".head")["ok"] is True


def _writer(path, writer, count):
    log = AuditLog(path, key=KEY)
    number = 0
    while number < count:  # odd writers append one record at a time, even ones in groups of 1 to 5
        size = 1 if writer % 2 else min(count - number, 1 + number % 5)
        log.append_many([{"event": "task", "host": f"w{writer}", "data": {"n": n}} for n in range(number, number + size)])
        number += size


def test_concurrent_writers_lose_and_interleave_nothing(tmp_path):
    path = tmp_path / "audit.jsonl"
    workers = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, writer, 40)) for writer in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * 6
    result = verify(path, key=KEY, head=str(path) + ".head")
    assert (result["ok"], result["records"], result["last_seq"]) == (True, 240, 240)
    records = [json.loads(line) for line in _lines(path)]
    assert sorted((record["host"], record["data"]["n"]) for record in records) == sorted((f"w{w}", n) for w in range(6) for n in range(40))


def test_append_errors(tmp_path):
    directory = tmp_path / "log-is-a-directory"
    directory.mkdir()
    cases = [
        (AuditLog(directory), {"event": "x"}, f"cannot open the audit log {directory}: Is a directory"),
        (AuditLog(tmp_path / "missing" / "audit.jsonl"), {"event": "x"},
         f"cannot open the audit log {tmp_path / 'missing' / 'audit.jsonl'}: No such file or directory"),
        (AuditLog(tmp_path / "a.jsonl"), {"event": {1, 2}}, "an audit record must hold JSON values only: Object of type set is not JSON serializable"),
        (AuditLog(tmp_path / "b.jsonl", head=tmp_path / "missing" / "b.head"), {"event": "x"},
         f"the head file {tmp_path / 'missing' / 'b.head'} could not be updated: No such file or directory (record seq 1 was written to the "
         f"audit log {tmp_path / 'b.jsonl'})"),
    ]
    for log, record, message in cases:
        with pytest.raises(AuditError) as raised:
            log.append(record)
        assert str(raised.value) == message
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"hello\n")
    with pytest.raises(AuditError) as raised:
        AuditLog(garbage).append({"event": "x"})
    assert str(raised.value) == (f"the last record of the audit log {garbage} is not a fleetpatch audit record "
                                 "(not JSON: Expecting value: line 1 column 1 (char 0)): refusing to chain onto it; run fleetpatch-audit verify")
    assert garbage.read_bytes() == b"hello\n"


def test_a_writer_that_holds_the_lock_too_long(tmp_path):
    path = tmp_path / "audit.jsonl"
    with open(path, "ab") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(AuditError) as raised:
            AuditLog(path, lock_timeout=0.2).append({"event": "x"})
    assert str(raised.value) == f"cannot lock the audit log {path}: another writer held it for 0.2 s"
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the audit HMAC key file {path}: No such file or directory"), (b" \n", "the audit HMAC key file {path} is empty")],
)
def test_read_key_errors(tmp_path, content, message):
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AuditError) as raised:
        _audit.read_key(path)
    assert str(raised.value) == message.format(path=path)


def test_read_key_strips_the_trailing_newline(tmp_path):
    (tmp_path / "key").write_bytes(b"s3cret key\n")
    assert _audit.read_key(tmp_path / "key") == b"s3cret key"


class AnsibleVaultEncryptedUnicode(str):
    """Stands in for Ansible's vaulted string type, recognised by its name (this module may not import Ansible)."""


class EncryptedString:
    """Stands in for ansible-core 2.19's vaulted value type."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1, "b": [True, None, 1.5]}, {"a": 1, "b": [True, None, 1.5]}),
        ({"token": AnsibleVaultEncryptedUnicode("hunter2")}, {"token": "<redacted>"}),
        ({"token": EncryptedString()}, {"token": "<redacted>"}),
        ({"token": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162"}}, {"token": "<redacted>"}),
        ({"item": {"_ansible_no_log": True, "password": "hunter2"}}, {"item": {"censored": "result hidden: no_log"}}),
        ({"_ansible_verbose_always": True, "_ansible_item_label": "hunter2", "x": (1, 2)}, {"x": [1, 2]}),
        ({"when": object()}, {"when": "<object>"}),
        ({"nan": float("nan")}, {"nan": "nan"}),
    ],
)
def test_scrub(value, expected):
    assert _audit.scrub(value) == expected


INCLUDE = ("msg", "rc", "version")


@pytest.mark.parametrize(
    ("result", "status", "no_log", "expected"),
    [
        ({"changed": True, "rc": 0, "stdout": "secret", "version": "7.0.28", "invocation": {"module_args": {"password": "x"}}}, "changed", False,
         {"status": "changed", "changed": True, "rc": 0, "version": "7.0.28"}),
        ({"failed": True, "msg": "hunter2 rejected", "rc": 1}, "failed", True, {"status": "failed", "changed": False, "no_log": True}),
        ({"censored": "hidden", "changed": False}, "ok", True, {"status": "ok", "changed": False, "no_log": True}),
        ({"msg": "hunter2", "_ansible_no_log": True}, "failed", False, {"status": "failed", "changed": False, "no_log": True}),
        ({"msg": "All items completed", "changed": True, "results": [
            {"item": "hunter2", "changed": True}, {"item": "hunter3", "failed": True}, {"item": "x", "skipped": True}]}, "failed", False,
         {"status": "failed", "changed": True, "msg": "All items completed", "loop": {"items": 3, "changed": 1, "failed": 1, "skipped": 1}}),
        ({"results": [{"_ansible_no_log": True, "changed": True}]}, "changed", True,
         {"status": "changed", "changed": False, "loop": {"items": 1, "changed": 1}, "no_log": True}),
        ({"msg": "x" * 2000}, "failed", False, {"status": "failed", "changed": False, "msg": "x" * 1000 + "..."}),
    ],
)
def test_task_data(result, status, no_log, expected):
    assert _audit.task_data(result, status, no_log, INCLUDE) == expected


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, {"actors": {}}),
        ({"fleetpatch_approved_by": " alice ", "fleetpatch_implemented_by": "bob", "fleetpatch_verified_by": "carol",
          "awx_user_name": "admin", "awx_job_id": 42, "fleetpatch_patch_id": "FP-2025-14847", "fleetpatch_artifact_sha256": "ab" * 32,
          "fleetpatch_wave": "canary"},
         {"actors": {"approved_by": "alice", "implemented_by": "bob", "verified_by": "carol", "controller_user": "admin", "controller_job_id": 42},
          "patch_id": "FP-2025-14847", "artifact_sha256": "ab" * 32, "wave": "canary"}),
        ({"tower_user_name": "admin", "tower_job_id": 7}, {"actors": {"controller_user": "admin", "controller_job_id": 7}}),
        # unrendered templates, vaulted values, empty strings, booleans and mappings name nobody
        ({"fleetpatch_approved_by": "{{ approver }}", "fleetpatch_implemented_by": AnsibleVaultEncryptedUnicode("x"),
          "fleetpatch_verified_by": " ", "fleetpatch_wave": True, "fleetpatch_patch_id": {"id": 1}}, {"actors": {}}),
    ],
)
def test_context_from_vars(variables, expected):
    assert _audit.context_from_vars(variables) == expected


def test_format_report(log):
    assert _audit.format_report(verify(log, key=KEY, head=str(log) + ".head")) == (
        f"OK {log}: 6 records, last seq 6; checked: hash chain, HMACs, head file"
    )
    log.write_bytes(b"".join(_lines(log)[:2] + _lines(log)[3:5]))
    assert _audit.format_report(verify(log, head=str(log) + ".head")) == "\n".join([
        f"TAMPERED {log}: 2 kind(s) of damage",
        "deleted: line 3 seq 4: seq 3 deleted before line 3 (seq 4)",
        "truncated: line 5 seq 6: the log ends at seq 5 (line 4) but the head file says seq 6: 1 record(s) cut off the end",
        "note: HMACs not checked: no key given",
    ])


def test_utc_now_is_utc_with_microseconds():
    before = datetime.datetime.now(datetime.timezone.utc)
    text = _audit.utc_now()
    after = datetime.datetime.now(datetime.timezone.utc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert before <= datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc) <= after


@pytest.mark.parametrize(
    ("base", "update", "expected"),
    [
        ({}, {}, {"actors": {}}),
        ({"actors": {"approved_by": "alice"}, "patch_id": "FP-1"}, {}, {"actors": {"approved_by": "alice"}, "patch_id": "FP-1"}),
        ({}, {"actors": {"approved_by": "alice"}, "wave": "canary"}, {"actors": {"approved_by": "alice"}, "wave": "canary"}),
        # the update wins field by field, actor by actor; what it does not name stays
        ({"actors": {"approved_by": "alice", "implemented_by": "bob"}, "patch_id": "FP-1", "wave": "canary"},
         {"actors": {"implemented_by": "carol", "verified_by": "dave"}, "wave": "wave-2"},
         {"actors": {"approved_by": "alice", "implemented_by": "carol", "verified_by": "dave"}, "patch_id": "FP-1", "wave": "wave-2"}),
        # an update without actors keeps the base's
        ({"actors": {"approved_by": "alice"}}, {"patch_id": "FP-2"}, {"actors": {"approved_by": "alice"}, "patch_id": "FP-2"}),
    ],
)
def test_merge_context(base, update, expected):
    before = (copy.deepcopy(base), copy.deepcopy(update))
    assert _audit.merge_context(base, update) == expected
    assert (base, update) == before  # a new mapping: neither input is changed


NOBODY = {"approved_by": None, "implemented_by": None, "verified_by": None, "controller_user": None, "controller_job_id": None}


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("run_start", "r1", {}), {},
         {"v": 1, "event": "run_start", "run_id": "r1", "host": None, "actors": NOBODY, "patch_id": None, "artifact_sha256": None,
          "wave": None, "data": {}}),
        (("task", "r2", {"actors": {"approved_by": "alice", "stranger": "x"}, "patch_id": "FP-2025-14847", "artifact_sha256": "ab" * 32,
                         "wave": "canary", "other": "dropped"}),
         {"host": "web-01", "data": {"status": "ok", "token": AnsibleVaultEncryptedUnicode("hunter2")}},
         {"v": 1, "event": "task", "run_id": "r2", "host": "web-01", "actors": dict(NOBODY, approved_by="alice"), "patch_id": "FP-2025-14847",
          "artifact_sha256": "ab" * 32, "wave": "canary", "data": {"status": "ok", "token": "<redacted>"}}),
        # the data is scrubbed with the caller's secret test and the plaintexts in play
        (("task", "r3", {}), {"data": {"msg": "login with s3cret failed", "key": "tagged"}, "secret": lambda value: value == "tagged",
                              "plaintexts": ("s3cret",)},
         {"v": 1, "event": "task", "run_id": "r3", "host": None, "actors": NOBODY, "patch_id": None, "artifact_sha256": None,
          "wave": None, "data": {"msg": "login with <redacted> failed", "key": "<redacted>"}}),
    ],
)
def test_make_record(args, kwargs, expected):
    assert _audit.make_record(*args, **kwargs) == expected


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ({"log": "/var/log/fp/audit.jsonl", "run_id": "r1"}, {"log": "/var/log/fp/audit.jsonl", "run_id": "r1"}),
        ({"log": "/a.jsonl", "head": "/a.head", "key_file": "/k", "run_id": "r1", "dropped": 0, "error": None},
         {"log": "/a.jsonl", "head": "/a.head", "key_file": "/k", "run_id": "r1", "dropped": 0, "error": None}),
        # a sink without its log or its run id is no sink
        ({"log": "/a.jsonl"}, None),
        ({"run_id": "r1"}, None),
        ({"log": "", "run_id": "r1"}, None),
        (None, None),  # withdrawn at the end of the run
    ],
)
def test_publish_sink_and_current_sink(monkeypatch, sink, expected):
    monkeypatch.setenv(_audit.SINK_ENV, json.dumps({"log": "/old.jsonl", "run_id": "r0"}))
    _audit.publish_sink(sink)
    assert _audit.current_sink() == expected
    assert (_audit.SINK_ENV in os.environ) is (sink is not None)
    if sink is not None:
        assert json.loads(os.environ[_audit.SINK_ENV]) == sink


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),  # not set: the audit callback is not enabled
        ("", None),
        ("{not json", None),
        ('["/a.jsonl", "r1"]', None),
        ('{"log": "/a.jsonl", "run_id": "r1"}', {"log": "/a.jsonl", "run_id": "r1"}),
    ],
)
def test_current_sink_reads_the_environment(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv(_audit.SINK_ENV, raising=False)
    else:
        monkeypatch.setenv(_audit.SINK_ENV, text)
    assert _audit.current_sink() == expected


@pytest.mark.parametrize(
    ("key", "keys", "expected"),
    [
        ("password", _audit.REDACT_KEYS, True),
        ("db_password", _audit.REDACT_KEYS, True),
        ("PASSWORD", _audit.REDACT_KEYS, True),
        ("userPassword", _audit.REDACT_KEYS, True),
        ("passwords", _audit.REDACT_KEYS, True),
        ("passwd", _audit.REDACT_KEYS, True),
        ("X-Api-Key", _audit.REDACT_KEYS, True),
        ("apiKey", _audit.REDACT_KEYS, True),
        ("api key", _audit.REDACT_KEYS, True),
        ("ssh_private_key_file", _audit.REDACT_KEYS, True),
        ("refresh-token", _audit.REDACT_KEYS, True),
        ("client_secret", _audit.REDACT_KEYS, True),
        ("secretary", _audit.REDACT_KEYS, True),  # errs on the side of hiding
        ("user", _audit.REDACT_KEYS, False),
        ("key", _audit.REDACT_KEYS, False),
        ("private", _audit.REDACT_KEYS, False),
        ("api", _audit.REDACT_KEYS, False),
        ("pass", _audit.REDACT_KEYS, False),
        ("msg", _audit.REDACT_KEYS, False),
        ("pin", ("PIN", "password"), True),
        ("db_password", ("pin",), False),  # the list is replaced, not extended
        ("password", (), False),
        ("password", ("", " - "), False),  # names with nothing to match on match nothing
        (7, ("7",), True),  # keys that are not strings are matched by their text
    ],
)
def test_redacted_key(key, keys, expected):
    assert _audit.redacted_key(key, keys) is expected


@pytest.mark.parametrize(
    ("value", "redact", "expected"),
    [
        ({"user": "bob", "password": "hunter2"}, _audit.REDACT_KEYS, {"user": "bob", "password": "<redacted>"}),
        ({"db": {"X-Api-Key": "k", "hosts": [{"token": "t", "name": "a"}]}}, _audit.REDACT_KEYS,
         {"db": {"X-Api-Key": "<redacted>", "hosts": [{"token": "<redacted>", "name": "a"}]}}),
        # the whole value under such a key, whatever it is
        ({"secrets": {"a": 1}, "tokens": [1, 2], "passwd": None, "api_key": 0}, _audit.REDACT_KEYS,
         {"secrets": "<redacted>", "tokens": "<redacted>", "passwd": "<redacted>", "api_key": "<redacted>"}),
        ({"password": "hunter2", "pin": "1234"}, ("pin",), {"password": "hunter2", "pin": "<redacted>"}),
        ({"password": "hunter2"}, (), {"password": "hunter2"}),
        ("password", _audit.REDACT_KEYS, "password"),  # values are never matched, only keys
    ],
)
def test_scrub_redacts_by_key(value, redact, expected):
    assert _audit.scrub(value, redact=redact) == expected


def test_scrub_redacts_by_key_by_default():
    assert _audit.scrub({"Token": "abc"}) == {"Token": "<redacted>"}


@pytest.mark.parametrize(
    ("result", "include", "redact", "expected"),
    [
        ({"msg": {"user": "u", "db_password": "p"}, "rc": 0}, ("msg", "rc"), _audit.REDACT_KEYS,
         {"status": "ok", "changed": False, "msg": {"user": "u", "db_password": "<redacted>"}, "rc": 0}),
        ({"token": "abc", "auth": {"items": [{"apiKey": "k"}]}}, ("token", "auth"), _audit.REDACT_KEYS,
         {"status": "ok", "changed": False, "token": "<redacted>", "auth": {"items": [{"apiKey": "<redacted>"}]}}),
        ({"token": "abc"}, ("token",), (), {"status": "ok", "changed": False, "token": "abc"}),
    ],
)
def test_task_data_redacts_by_key(result, include, redact, expected):
    assert _audit.task_data(result, "ok", False, include, redact=redact) == expected


def test_make_record_redacts_by_key():
    record = _audit.make_record("note", "r1", {}, data={"ticket": "CHG-1", "vault_token": "s.abc"}, redact=("token",))
    assert record["data"] == {"ticket": "CHG-1", "vault_token": "<redacted>"}
