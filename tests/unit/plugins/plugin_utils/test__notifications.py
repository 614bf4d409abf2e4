"""Pre-notification records: the example file, every field made invalid, the lead-time rule to the second."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._notifications import (
    NOTIFICATIONS_SCHEMA, NotificationError, Notifications, load_notifications, read_notifications, validate_notifications,
)

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "docs" / "notifications.example.yml"
UTC = datetime.timezone.utc
LEAD = datetime.timedelta(hours=15)
RECORD = {"customer": "acme", "patch_id": "FP-2025-14847", "notified_at": "2025-12-18T10:00:00Z", "channel": "email", "by": "jane"}


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(NOTIFICATIONS_SCHEMA)


def test_example_file():
    records = load_notifications(EXAMPLE)
    assert [(record["customer"], record["notified_at"]) for record in records.records] == [
        ("acme", datetime.datetime(2025, 12, 18, 10, 0, tzinfo=UTC)),
        ("globex", datetime.datetime(2025, 12, 18, 21, 0, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-12-19T01:00:00+00:00", True),   # exactly notified_at + 15h
        ("2025-12-19T00:59:59+00:00", False),  # one second short
        ("2025-12-19T02:00:00+01:00", True),   # the same instant as the first, written in another offset
    ],
)
def test_lead_time_to_the_second(now, expected):
    records = validate_notifications({"notifications": [RECORD]})
    ok, record = records.notified_since("acme", "FP-2025-14847", LEAD, datetime.datetime.fromisoformat(now))
    assert (ok, record["by"]) == (expected, "jane")


def test_earliest_record_counts_and_patch_must_match():
    later = dict(RECORD, notified_at="2025-12-18T20:00:00Z", by="bob")
    records = validate_notifications({"notifications": [later, RECORD, dict(RECORD, patch_id="FP-2025-00001", notified_at="2025-01-01T00:00:00Z")]})
    now = datetime.datetime(2025, 12, 19, 1, 0, tzinfo=UTC)
    assert records.notified_since("acme", "FP-2025-14847", LEAD, now)[0] is True
    assert records.notified_since("acme", "FP-2025-14847", LEAD, now)[1]["by"] == "jane"
    assert records.notified_since("acme", "FP-2025-99999", LEAD, now) == (False, None)
    assert records.notified_since("globex", "FP-2025-14847", LEAD, now) == (False, None)


N = "notifications.yml"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        ([RECORD], [f"{N}: expected a mapping with a notifications list, "
                    "got list [{'customer': 'acme', 'patch_id': 'FP-2025-14847', 'notified_at': '2025-12-1..."]),
        ({}, [f"{N}: notifications: required field missing"]),
        ({"notifications": [dict(RECORD, notified_at="2025-12-18 10:00")]},
         [f"{N}: notifications[0].notified_at: '2025-12-18 10:00' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"]),
        ({"notifications": [dict(RECORD, notified_at="2025-02-30T10:00:00Z")]},
         [f"{N}: notifications[0].notified_at: '2025-02-30T10:00:00Z' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"]),
        ({"notifications": [{"customer": "", "patch_id": "CVE-2025-14847", "channel": "email", "by": "jane", "when": "now"}]}, [
            f"{N}: notifications[0].customer: must not be empty, got ''",
            f"{N}: notifications[0].notified_at: required field missing",
            f"{N}: notifications[0].patch_id: 'CVE-2025-14847' does not match '^FP-[0-9]{{4}}-[0-9]{{4,}}$'",
            f"{N}: notifications[0].when: unknown field (value 'now')",
        ]),
    ],
)
def test_bad_records(data, lines):
    with pytest.raises(NotificationError) as error:
        validate_notifications(data, N)
    assert str(error.value).splitlines() == lines


def test_unquoted_timestamp_stays_text(tmp_path):
    path = tmp_path / N
    record = "{customer: acme, patch_id: FP-2025-14847, notified_at: 2025-12-18T10:00:00Z, channel: email, by: jane}"
    path.write_text(f"notifications:\n  - {record}\n", encoding="utf-8")
    assert load_notifications(path).records[0]["notified_at"] == datetime.datetime(2025, 12, 18, 10, 0, tzinfo=UTC)
    assert read_notifications(path) == {"notifications": [{**RECORD, "by": "jane"}]}


def test_read_gives_the_data_as_written_which_checks_again_to_the_same_records():
    """What the fleetpatch.rollout.notifications lookup returns, and wave_plan takes as its notifications."""
    data = read_notifications(EXAMPLE)
    assert [(record["customer"], record["notified_at"]) for record in data["notifications"]] == [
        ("acme", "2025-12-18T10:00:00Z"), ("globex", "2025-12-18T21:00:00Z")]
    assert validate_notifications(data).records == load_notifications(EXAMPLE).records


def test_read_checks_the_data(tmp_path):
    path = tmp_path / N
    path.write_text("notifications:\n  - {customer: acme}\n", encoding="utf-8")
    with pytest.raises(NotificationError) as error:
        read_notifications(path)
    assert str(error.value).splitlines() == [f"{N}: notifications[0].{field}: required field missing"
                                             for field in ("by", "channel", "notified_at", "patch_id")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notifications: [\n", f"{N}: not valid YAML: line 2, column 1: expected the node content, but found '<stream end>'"),
        ("notifications: []\nnotifications: []\n", f"{N}: not valid YAML: line 2, column 1: duplicate key 'notifications'"),
    ],
)
@pytest.mark.parametrize("read", [load_notifications, read_notifications])
def test_bad_files(tmp_path, text, message, read):
    path = tmp_path / N
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NotificationError) as error:
        read(path)
    assert str(error.value) == message


@pytest.mark.parametrize("read", [load_notifications, read_notifications])
def test_missing_file(tmp_path, read):
    with pytest.raises(NotificationError) as error:
        read(tmp_path / N)
    assert str(error.value) == f"{N}: cannot read {tmp_path / N}: No such file or directory"


def told(customer, patch_id, moment, by):
    """A checked record, as validate_notifications hands it to Notifications (notified_at already a datetime)."""
    return {"customer": customer, "patch_id": patch_id, "notified_at": datetime.datetime.fromisoformat(moment), "channel": "email", "by": by}


@pytest.mark.parametrize(
    ("records", "earliest"),
    [
        ([], {}),
        ([told("acme", "FP-1", "2025-12-18T10:00:00+00:00", "jane")], {("acme", "FP-1"): "jane"}),
        # per customer and patch, the earliest record; the order of the records does not matter
        ([told("acme", "FP-1", "2025-12-18T20:00:00+00:00", "bob"), told("acme", "FP-1", "2025-12-18T10:00:00+00:00", "jane"),
          told("acme", "FP-2", "2025-12-01T00:00:00+00:00", "kim"), told("globex", "FP-1", "2025-12-17T00:00:00+00:00", "lee")],
         {("acme", "FP-1"): "jane", ("acme", "FP-2"): "kim", ("globex", "FP-1"): "lee"}),
        # instants compare across offsets: 10:00+02:00 is before 09:00Z
        ([told("acme", "FP-1", "2025-12-18T09:00:00+00:00", "utc"), told("acme", "FP-1", "2025-12-18T10:00:00+02:00", "cest")],
         {("acme", "FP-1"): "cest"}),
        # two records at the same instant: the first one listed counts
        ([told("acme", "FP-1", "2025-12-18T10:00:00+00:00", "first"), told("acme", "FP-1", "2025-12-18T10:00:00+00:00", "second")],
         {("acme", "FP-1"): "first"}),
    ],
)
def test_notifications_keep_the_earliest_record(records, earliest):
    found = Notifications(records)
    assert found.records is records
    assert {key: record["by"] for key, record in found.earliest.items()} == earliest


RECORDS = Notifications([told("acme", "FP-1", "2025-12-18T10:00:00+00:00", "jane"), told("acme", "FP-1", "2025-12-18T20:00:00+00:00", "bob")])


@pytest.mark.parametrize(
    ("customer", "patch_id", "lead", "now", "expected"),
    [
        ("acme", "FP-1", LEAD, "2025-12-19T01:00:00+00:00", (True, "jane")),  # exactly at the lead time: enough
        ("acme", "FP-1", LEAD, "2025-12-19T00:59:59+00:00", (False, "jane")),  # counted from the earliest, not bob's
        ("acme", "FP-1", datetime.timedelta(0), "2025-12-18T10:00:00+00:00", (True, "jane")),
        ("acme", "FP-1", datetime.timedelta(0), "2025-12-18T09:59:59+00:00", (False, "jane")),
        ("acme", "FP-2", LEAD, "2026-01-01T00:00:00+00:00", (False, None)),  # another patch
        ("globex", "FP-1", LEAD, "2026-01-01T00:00:00+00:00", (False, None)),  # another customer
        ("ACME", "FP-1", LEAD, "2026-01-01T00:00:00+00:00", (False, None)),  # names are exact
    ],
)
def test_notified_since(customer, patch_id, lead, now, expected):
    ok, record = RECORDS.notified_since(customer, patch_id, lead, datetime.datetime.fromisoformat(now))
    assert (ok, None if record is None else record["by"]) == expected


def test_checked_notifications_pass_through_unchanged():
    assert validate_notifications(RECORDS) is RECORDS
