"""Maintenance windows: reading them, DST gaps and repeats in three zones, midnight and week boundaries, rules."""

from __future__ import annotations

import datetime
import itertools

import pytest
from jsonschema import Draft202012Validator

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import (
    PLAN_SCHEMA, UTC, Window, WindowError, format_utc, may_start, next_window, parse_utc, parse_window, window_at, window_key, window_state,
)


def utc(text):
    """An aware UTC datetime from ``2026-03-29T01:30``."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def weekly(days, start, duration, zone):
    return parse_window({"days": days, "start": start, "duration": duration, "timezone": zone})


def texts(pair):
    return None if pair is None else (format_utc(pair[0]), format_utc(pair[1]))


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(PLAN_SCHEMA)


# A window whose local start falls in a spring-forward gap opens the length of the gap later (the UTC offset
# from before the gap, RFC 5545 3.3.5); one in a fall-back repeat opens at the first of the two. Its duration
# is real elapsed time. Berlin and New York (northern), Sydney (southern: spring is October).
@pytest.mark.parametrize(
    ("zone", "day", "start", "now", "expected"),
    [
        # Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST. 02:30 does not exist: opens 03:30 CEST = 01:30Z.
        ("Europe/Berlin", "sun", "02:30", "2026-03-29T01:30", ("2026-03-29T01:30:00Z", "2026-03-29T05:30:00Z")),
        # at the gap's start itself: 02:00 does not exist either, so 03:00 CEST = 01:00Z
        ("Europe/Berlin", "sun", "02:00", "2026-03-29T01:00", ("2026-03-29T01:00:00Z", "2026-03-29T05:00:00Z")),
        # before the gap: 01:00 CET = 00:00Z; 4 h of real time end at 04:00Z = 06:00 CEST on the wall clock
        ("Europe/Berlin", "sun", "01:00", "2026-03-29T00:00", ("2026-03-29T00:00:00Z", "2026-03-29T04:00:00Z")),
        # Europe/Berlin: 2026-10-25 03:00 CEST -> 02:00 CET. 02:30 shows twice: the first, CEST, is 00:30Z.
        ("Europe/Berlin", "sun", "02:30", "2026-10-25T00:30", ("2026-10-25T00:30:00Z", "2026-10-25T04:30:00Z")),
        # 01:00 CEST = 23:00Z the day before; 4 h of real time end at 03:00Z = 04:00 CET on the wall clock
        ("Europe/Berlin", "sun", "01:00", "2026-10-24T23:00", ("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z")),
        # America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT. 02:30 opens 03:30 EDT = 07:30Z.
        ("America/New_York", "sun", "02:30", "2026-03-08T07:30", ("2026-03-08T07:30:00Z", "2026-03-08T11:30:00Z")),
        # America/New_York: 2026-11-01 02:00 EDT -> 01:00 EST. 01:30 shows twice: the first, EDT, is 05:30Z.
        ("America/New_York", "sun", "01:30", "2026-11-01T05:30", ("2026-11-01T05:30:00Z", "2026-11-01T09:30:00Z")),
        # Australia/Sydney: 2026-10-04 02:00 AEST -> 03:00 AEDT. 02:30 opens 03:30 AEDT = 16:30Z the day before.
        ("Australia/Sydney", "sun", "02:30", "2026-10-03T16:30", ("2026-10-03T16:30:00Z", "2026-10-03T20:30:00Z")),
        # Australia/Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST. 02:30 shows twice: the first, AEDT, is 15:30Z.
        ("Australia/Sydney", "sun", "02:30", "2026-04-04T15:30", ("2026-04-04T15:30:00Z", "2026-04-04T19:30:00Z")),
    ],
)
def test_dst_transitions(zone, day, start, now, expected):
    window = weekly([day], start, "4h", zone)
    assert texts(window_at(window, utc(now))) == expected
    # The minute before it opens, it is the next window.
    before = utc(now) - datetime.timedelta(minutes=1)
    assert window_at(window, before) is None
    assert texts(next_window(window, before)) == expected


@pytest.mark.parametrize(
    ("zone", "now", "expected_next"),
    [
        # The repeated hour's second 02:30 (CET, 01:30Z) is not a second opening: the window opened at the first.
        ("Europe/Berlin", "2026-10-25T01:30", ("2026-11-01T01:30:00Z", "2026-11-01T05:30:00Z")),
        ("America/New_York", "2026-11-01T06:30", ("2026-11-08T06:30:00Z", "2026-11-08T10:30:00Z")),
    ],
)
def test_repeated_hour_opens_once(zone, now, expected_next):
    start = "02:30" if zone == "Europe/Berlin" else "01:30"
    window = weekly(["sun"], start, "4h", zone)
    assert texts(next_window(window, utc(now))) == expected_next


@pytest.mark.parametrize(
    ("days", "start", "duration", "now", "current", "upcoming"),
    [
        # Saturday 22:00 Berlin (CET, 21:00Z) for 4h: Sunday 00:30 local is inside it, across midnight.
        (["sat"], "22:00", "4h", "2026-01-10T23:30", ("2026-01-10T21:00:00Z", "2026-01-11T01:00:00Z"), ("2026-01-17T21:00:00Z", "2026-01-18T01:00:00Z")),
        # Sunday 22:00 for 4h: Monday 01:00 local is inside it, across the week's end; the next is next Sunday.
        (["sun"], "22:00", "4h", "2026-01-12T00:00", ("2026-01-11T21:00:00Z", "2026-01-12T01:00:00Z"), ("2026-01-18T21:00:00Z", "2026-01-19T01:00:00Z")),
        # At its start it is open; at its end it is closed (the end is exclusive).
        (["tue", "thu"], "02:00", "4h", "2026-01-13T01:00", ("2026-01-13T01:00:00Z", "2026-01-13T05:00:00Z"), ("2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z")),
        (["tue", "thu"], "02:00", "4h", "2026-01-13T05:00", None, ("2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z")),
        (["tue", "thu"], "02:00", "4h", "2026-01-13T04:59:59",
         ("2026-01-13T01:00:00Z", "2026-01-13T05:00:00Z"), ("2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z")),
        # Thursday after the window: the next one is Tuesday of the next week.
        (["tue", "thu"], "02:00", "4h", "2026-01-15T12:00", None, ("2026-01-20T01:00:00Z", "2026-01-20T05:00:00Z")),
        # Every day for 30h: windows overlap; the open one is the one that closes last.
        (["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "30h", "2026-01-13T03:00",
         ("2026-01-12T23:00:00Z", "2026-01-14T05:00:00Z"), ("2026-01-13T23:00:00Z", "2026-01-15T05:00:00Z")),
    ],
)
def test_midnight_and_week_boundaries(days, start, duration, now, current, upcoming):
    window = weekly(days, start, duration, "Europe/Berlin")
    state = window_state(window, utc(now))
    assert (texts(state[0]), texts(state[1])) == (current, upcoming)


@pytest.mark.parametrize(
    ("data", "now", "current", "upcoming"),
    [
        # First Sunday of the month, 02:00 Berlin: 2026-03-01 (CET) and then 2026-04-05 (CEST).
        ({"rrule": "FREQ=MONTHLY;BYDAY=1SU", "dtstart": "2025-01-05T02:00", "duration": "3h", "timezone": "Europe/Berlin"},
         "2026-03-01T02:00", ("2026-03-01T01:00:00Z", "2026-03-01T04:00:00Z"), ("2026-04-05T00:00:00Z", "2026-04-05T03:00:00Z")),
        # The RRULE: prefix is allowed; every other Saturday counts from dtstart (2026-01-03).
        ({"rrule": "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", "dtstart": "2026-01-03T22:00", "duration": "4h", "timezone": "America/New_York"},
         "2026-01-10T12:00", None, ("2026-01-18T03:00:00Z", "2026-01-18T07:00:00Z")),
        # A rule that has ended has no next window.
        ({"rrule": "FREQ=DAILY;COUNT=3", "dtstart": "2026-01-01T02:00", "duration": "1h", "timezone": "UTC"},
         "2026-01-03T02:30", ("2026-01-03T02:00:00Z", "2026-01-03T03:00:00Z"), None),
        # UNTIL in UTC (as RFC 5545 wants beside a zoned DTSTART): 2026-01-06T01:00Z is 02:00 Berlin, included.
        ({"rrule": "FREQ=DAILY;UNTIL=20260106T010000Z", "dtstart": "2026-01-01T02:00", "duration": "1h", "timezone": "Europe/Berlin"},
         "2026-01-05T12:00", None, ("2026-01-06T01:00:00Z", "2026-01-06T02:00:00Z")),
        ({"rrule": "FREQ=DAILY;UNTIL=20260106T005959Z", "dtstart": "2026-01-01T02:00", "duration": "1h", "timezone": "Europe/Berlin"},
         "2026-01-05T12:00", None, None),
        # Last Sunday of March at 02:30 in Berlin: in the gap, shifted forward like the weekly form.
        ({"rrule": "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "dtstart": "2025-03-30T02:30", "duration": "2h", "timezone": "Europe/Berlin"},
         "2026-03-29T01:00", None, ("2026-03-29T01:30:00Z", "2026-03-29T03:30:00Z")),
    ],
)
def test_rrule_windows(data, now, current, upcoming):
    window = parse_window(data)
    state = window_state(window, utc(now))
    assert (texts(state[0]), texts(state[1])) == (current, upcoming)


W = "maintenance_window"


@pytest.mark.parametrize(
    ("data", "field", "lines"),
    [
        ({"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Mars/Base"}, W,
         [f"{W}.timezone: 'Mars/Base' is not an IANA time zone such as 'Europe/Berlin'"]),
        ({"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "/etc/passwd"}, W,
         [f"{W}.timezone: '/etc/passwd' is not an IANA time zone such as 'Europe/Berlin'"]),
        ({"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Europe"}, W,
         [f"{W}.timezone: 'Europe' is not an IANA time zone such as 'Europe/Berlin'"]),
        ({"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": ""}, W, [f"{W}.timezone: must not be empty, got ''"]),
        ({"days": ["tuesday", "tue"], "start": "24:00", "duration": "4 hours", "timezone": "UTC"}, "policy.customer_windows.acme", [
            "policy.customer_windows.acme.days[0]: 'tuesday' is not a day (mon, tue, wed, thu, fri, sat, sun)",
            "policy.customer_windows.acme.duration: '4 hours' is not a duration such as 30s, 5m, 15h or 1h30m "
            "(whole numbers with the units d, h, m, s, in that order)",
            "policy.customer_windows.acme.start: '24:00' is not a time of day such as '02:00' (HH:MM, 24-hour clock)",
        ]),
        # YAML 1.1 reads an unquoted 12:00 as 720 (sexagesimal)
        ({"days": ["tue"], "start": 720, "duration": "4h", "timezone": "UTC"}, W,
         [f"{W}.start: 720 is not a time of day such as '02:00' (a string HH:MM: quote it, YAML reads an unquoted 12:00 as the number 720)"]),
        ({"days": [], "start": "02:00", "duration": "0h", "timezone": "UTC"}, W,
         [f"{W}.days: must not be empty, got []", f"{W}.duration: '0h' is not longer than 0s"]),
        ({"days": ["tue", "tue"], "start": "02:00", "duration": "4h", "timezone": "UTC", "until": "never"}, W,
         [f"{W}.days: ['tue', 'tue'] lists an item more than once", f"{W}.until: unknown field (value 'never')"]),
        ({"start": "02:00"}, W, [f"{W}.days: required field missing", f"{W}.duration: required field missing", f"{W}.timezone: required field missing"]),
        ("tue 02:00", W, [f"{W}: expected a mapping with days, start, duration and timezone (or rrule, dtstart, duration and timezone), got str 'tue 02:00'"]),
        ({"rrule": "FREQ=FOO", "dtstart": "2026-01-01T02:00", "duration": "4h", "timezone": "UTC"}, W,
         [f"{W}.rrule: 'FREQ=FOO' is not an RFC 5545 RRULE such as 'FREQ=WEEKLY;BYDAY=TU,TH' (invalid 'FREQ': FOO)"]),
        ({"rrule": "FREQ=HOURLY", "dtstart": "2026-13-01T02:00", "duration": "4h", "timezone": "UTC"}, W, [
            f"{W}.dtstart: '2026-13-01T02:00' is not a local date and time (month must be in 1..12)",
            f"{W}.rrule: 'FREQ=HOURLY' recurs more often than daily: a maintenance window recurs at most daily",
        ]),
        ({"rrule": "FREQ=DAILY;BYHOUR=3", "dtstart": "2026-01-01T02:00", "duration": "4h", "timezone": "UTC"}, W,
         [f"{W}.rrule: 'FREQ=DAILY;BYHOUR=3' sets BYHOUR: the time of day comes from dtstart"]),
        ({"rrule": "DTSTART:20260101T020000\nRRULE:FREQ=DAILY", "dtstart": "2026-01-01T02:00", "duration": "4h", "timezone": "UTC"}, W,
         [f"{W}.rrule: 'DTSTART:20260101T020000\\nRRULE:FREQ=DAILY' is not the value of one RRULE "
          "(no DTSTART, EXDATE or other lines: dtstart is a field of its own)"]),
        ({"rrule": "FREQ=DAILY", "dtstart": "2026-01-01T02:00+01:00", "duration": "4h", "timezone": "UTC", "days": ["mon"]}, W, [
            f"{W}.days: unknown field (value ['mon'])",
            f"{W}.dtstart: '2026-01-01T02:00+01:00' is not a local date and time such as '2025-01-07T02:00' (no offset: it is read in timezone)",
        ]),
    ],
)
def test_bad_windows(data, field, lines):
    with pytest.raises(WindowError) as error:
        parse_window(data, field)
    assert str(error.value).splitlines() == lines


def test_window_key_shares_equal_windows():
    one = {"days": ["tue", "thu"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
    other = {"timezone": "Europe/Berlin", "duration": "4h", "start": "02:00", "days": ["tue", "thu"]}
    assert window_key(one) == window_key(other)
    assert window_key(one) != window_key(dict(one, days=["thu", "tue"]))
    assert window_key({"days": None}) != window_key({})
    assert window_key({"days": [["x"]]}) == window_key({"days": [["x"]]})  # unhashable values still get a key
    assert window_key(dict(one, extra=1)) != window_key(dict(one, extra=2))


@pytest.mark.parametrize(
    ("window_end", "now", "expected"),
    [
        (None, "2026-01-13T05:00", True),
        ("2026-01-13T05:00", "2026-01-13T04:59:59", True),
        ("2026-01-13T05:00", "2026-01-13T05:00", False),
        ("2026-01-13T05:00", "2026-01-13T05:00:01", False),
    ],
)
def test_may_start_until_the_cutoff(window_end, now, expected):
    assert may_start(None if window_end is None else utc(window_end), utc(now)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-13T05:00:00Z", "2026-01-13T05:00:00Z"),
        ("2026-01-13T06:00:00+01:00", "2026-01-13T05:00:00Z"),
        (datetime.datetime(2026, 1, 13, 5, 0, tzinfo=UTC), "2026-01-13T05:00:00Z"),
    ],
)
def test_parse_utc(value, expected):
    assert format_utc(parse_utc(value)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-13T05:00:00", "now: '2026-01-13T05:00:00' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
        ("tomorrow", "now: 'tomorrow' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
        (1768280400, "now: 1768280400 is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
        (datetime.datetime(2026, 1, 13, 5, 0), "now: '2026-01-13T05:00:00' has no time zone (give an RFC 3339 time such as 2025-12-18T09:30:00Z)"),
    ],
)
def test_parse_utc_refuses(value, message):
    with pytest.raises(ValueError) as error:
        parse_utc(value)
    assert str(error.value) == message


def test_naive_now_is_refused():
    window = weekly(["tue"], "02:00", "4h", "UTC")
    with pytest.raises(ValueError, match="now must be a time-zone-aware datetime"):
        window_at(window, datetime.datetime(2026, 1, 13, 2, 0))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rrule", "maintenance_window: cannot read the maintenance window: the Python library python-dateutil is missing on the controller "
                  "(pip install 'python-dateutil>=2.8')"),
        ("Draft202012Validator", "maintenance_window: cannot read the maintenance window: the Python library jsonschema is missing on the controller "
                                 "(pip install 'jsonschema>=4.18')"),
    ],
)
def test_missing_libraries_are_named(monkeypatch, name, message):
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _windows  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(_windows, name, None)
    with pytest.raises(WindowError) as error:
        parse_window({"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "UTC"})
    assert str(error.value) == message


# Window.to_utc: a local wall time in the window's zone to a UTC instant (RFC 5545 3.3.5: fold=0).
@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        ("UTC", datetime.datetime(2026, 1, 13, 2, 0), "2026-01-13T02:00:00Z"),
        ("Europe/Berlin", datetime.datetime(2026, 1, 13, 2, 0), "2026-01-13T01:00:00Z"),  # CET
        ("Europe/Berlin", datetime.datetime(2026, 7, 14, 2, 0), "2026-07-14T00:00:00Z"),  # CEST
        ("Europe/Berlin", datetime.datetime(2026, 3, 29, 2, 30), "2026-03-29T01:30:00Z"),  # gap: forward by the gap
        ("Europe/Berlin", datetime.datetime(2026, 10, 25, 2, 30), "2026-10-25T00:30:00Z"),  # repeat: the first
        ("Europe/Berlin", datetime.datetime(2026, 10, 25, 2, 30, fold=1), "2026-10-25T00:30:00Z"),  # even when asked for the second
        ("America/New_York", datetime.datetime(2026, 3, 8, 2, 30), "2026-03-08T07:30:00Z"),
        ("America/New_York", datetime.datetime(2026, 11, 1, 1, 30), "2026-11-01T05:30:00Z"),
        ("Australia/Sydney", datetime.datetime(2026, 10, 4, 2, 30), "2026-10-03T16:30:00Z"),
        ("Australia/Sydney", datetime.datetime(2026, 4, 5, 2, 30), "2026-04-04T15:30:00Z"),
    ],
)
def test_window_to_utc(zone, local, expected):
    instant = weekly(["sun"], "02:00", "1h", zone).to_utc(local)
    assert instant.utcoffset() == datetime.timedelta(0)
    assert format_utc(instant) == expected


WEEKDAYS_BERLIN = {"days": ["tue", "thu"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}


# Window.occurrences: every (start, end) whose local start is at or after the given instant's, in order.
@pytest.mark.parametrize(
    ("data", "after", "count", "expected"),
    [
        # at an occurrence's start it is included; given in any offset
        (WEEKDAYS_BERLIN, "2026-01-13T01:00:00+00:00", 3,
         [("2026-01-13T01:00:00Z", "2026-01-13T05:00:00Z"), ("2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z"),
          ("2026-01-20T01:00:00Z", "2026-01-20T05:00:00Z")]),
        (WEEKDAYS_BERLIN, "2026-01-13T02:00:00+01:00", 1, [("2026-01-13T01:00:00Z", "2026-01-13T05:00:00Z")]),
        # a second later it is not, even though it is still open
        (WEEKDAYS_BERLIN, "2026-01-13T01:00:01+00:00", 1, [("2026-01-15T01:00:00Z", "2026-01-15T05:00:00Z")]),
        # across the spring gap: CET, the gap (opens an hour later), CEST
        ({"days": ["sun"], "start": "02:30", "duration": "1h", "timezone": "Europe/Berlin"}, "2026-03-21T00:00:00+00:00", 3,
         [("2026-03-22T01:30:00Z", "2026-03-22T02:30:00Z"), ("2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"),
          ("2026-04-05T00:30:00Z", "2026-04-05T01:30:00Z")]),
        # across the autumn repeat: the repeated 02:30 opens once, at the first (CEST)
        ({"days": ["sun"], "start": "02:30", "duration": "1h", "timezone": "Europe/Berlin"}, "2026-10-18T00:00:00+00:00", 3,
         [("2026-10-18T00:30:00Z", "2026-10-18T01:30:00Z"), ("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"),
          ("2026-11-01T01:30:00Z", "2026-11-01T02:30:00Z")]),
        # an RRULE that ends: only what is left of it
        ({"rrule": "FREQ=DAILY;COUNT=3", "dtstart": "2026-01-01T02:00", "duration": "1h", "timezone": "UTC"}, "2025-12-01T00:00:00+00:00", 5,
         [("2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"), ("2026-01-02T02:00:00Z", "2026-01-02T03:00:00Z"),
          ("2026-01-03T02:00:00Z", "2026-01-03T03:00:00Z")]),
        ({"rrule": "FREQ=DAILY;COUNT=3", "dtstart": "2026-01-01T02:00", "duration": "1h", "timezone": "UTC"}, "2026-01-03T02:00:01+00:00", 5, []),
        # first Sunday of the month in New York, EST then EDT
        ({"rrule": "FREQ=MONTHLY;BYDAY=1SU", "dtstart": "2026-01-04T03:00", "duration": "2h", "timezone": "America/New_York"},
         "2026-01-31T00:00:00+00:00", 2, [("2026-02-01T08:00:00Z", "2026-02-01T10:00:00Z"), ("2026-03-01T08:00:00Z", "2026-03-01T10:00:00Z")]),
        ({"rrule": "FREQ=MONTHLY;BYDAY=1SU", "dtstart": "2026-01-04T03:00", "duration": "2h", "timezone": "America/New_York"},
         "2026-03-02T00:00:00+00:00", 1, [("2026-04-05T07:00:00Z", "2026-04-05T09:00:00Z")]),
    ],
)
def test_window_occurrences(data, after, count, expected):
    found = list(itertools.islice(parse_window(data).occurrences(datetime.datetime.fromisoformat(after)), count))
    assert [texts(pair) for pair in found] == expected
    assert all(start.utcoffset() == end.utcoffset() == datetime.timedelta(0) for start, end in found)


def test_window_repr_shows_its_data():
    assert repr(parse_window(WEEKDAYS_BERLIN)) == f"Window({WEEKDAYS_BERLIN!r})"
    assert isinstance(parse_window(WEEKDAYS_BERLIN), Window)
