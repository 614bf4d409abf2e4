# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Maintenance windows: when a host may be patched, decided on the controller in UTC.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A window is a mapping in one of two forms (``plan.schema.json`` next to this file, ``$defs``):

* weekly: ``{days: [tue, thu], start: "02:00", duration: 4h, timezone: Europe/Berlin}``: it opens on each of
  ``days`` at ``start``, local time in ``timezone``;
* RFC 5545: ``{rrule: "FREQ=MONTHLY;BYDAY=1SU", dtstart: "2025-01-05T02:00", duration: 4h, timezone: Europe/Berlin}``:
  ``rrule`` is the value of one RRULE property, ``dtstart`` the local date and time it recurs from, written as
  RFC 5545's ``DTSTART;TZID=<timezone>:<local time>`` would be (no offset; its time of day is every occurrence's).
  The rule recurs at most daily (no FREQ=HOURLY or finer, no BYHOUR/BYMINUTE/BYSECOND: the time comes from
  ``dtstart``); its UNTIL may be local (``20261231T235959``) or UTC (``20261231T225959Z``, as RFC 5545 requires
  beside a DTSTART with a time zone). dateutil expands it (``dateutil.rrule.rrulestr``): an occurrence is
  whatever dateutil yields, so a DTSTART that does not match the rule is not itself an occurrence.

Both forms yield local wall-clock start times; each becomes a UTC instant by RFC 5545's rule (section 3.3.5),
which is also PEP 495's ``fold=0``:

* a start in a spring-forward gap (02:30 on the last Sunday of March in Europe/Berlin, which never shows on a
  clock) is read with the UTC offset from before the gap, so the window opens the length of the gap later
  (03:30 CEST, 01:30 UTC);
* a start in a fall-back repeat (02:30 on the last Sunday of October in Europe/Berlin, which shows twice) is
  the first of the two (02:30 CEST, 00:30 UTC).

A window then lasts ``duration`` of real elapsed time (``start + 4h`` in UTC), so on those nights it ends at
a different wall-clock time than usual (a 01:00 + 4h window ends at 06:00 CEST in spring, 04:00 CET in autumn).

An occurrence is open from its start (inclusive) to its end (exclusive); its end is the cutoff after which
no new host may start (:func:`may_start`). Every input and output instant is a time-zone-aware ``datetime``;
results are in UTC.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping

try:
    from dateutil.rrule import WEEKLY, rrule, rrulestr
except ImportError:  # reported when a window is read, so that ansible-doc and the other plugins still load
    WEEKLY = rrule = rrulestr = None

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9 runs no controller fleetpatch supports
    ZoneInfo = ZoneInfoNotFoundError = None

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import parse_duration
# Draft202012Validator is None without jsonschema: parse_window names the missing library.
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import (
    NO_JSONSCHEMA, SCHEMA_DIR, Draft202012Validator, load_schema, path_key, path_text, schema_problems, short_repr, validator,
)

__all__ = [
    "NO_DATEUTIL", "UTC", "PLAN_SCHEMA", "PLAN_SCHEMA_PATH", "Window", "WindowError",
    "format_utc", "may_start", "next_window", "parse_utc", "parse_window", "window_at", "window_key", "window_state",
]

UTC = datetime.timezone.utc
PLAN_SCHEMA_PATH = os.path.join(SCHEMA_DIR, "plan.schema.json")
PLAN_SCHEMA = load_schema(PLAN_SCHEMA_PATH)
NO_DATEUTIL = "the Python library python-dateutil is missing on the controller (pip install 'python-dateutil>=2.8')"

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORBIDDEN_FREQ = {"HOURLY", "MINUTELY", "SECONDLY"}
_FORBIDDEN_PARTS = {"BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART"}
_UTC_UNTIL_RE = re.compile(r"^(\d{8}T\d{6})Z$")
# An occurrence that opened more than a window's duration and a day before now cannot hold now, whatever the
# UTC offsets on the way (they differ by less than a day).
_LOOKBACK = datetime.timedelta(days=1)


def _validator(name):
    """A validator of ``$defs/<name>`` of the plan schema (None without jsonschema)."""
    return validator({"$ref": f"#/$defs/{name}", "$defs": PLAN_SCHEMA["$defs"]})


_VALIDATORS = {"days": _validator("window_days"), "rrule": _validator("window_rrule")}


class WindowError(ValueError):
    """A window fleetpatch cannot read. ``errors`` lists ``(field path, message)``; the text has one line each."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(f"{path}: {message}" if path else message for path, message in self.errors))


class Window:
    """A checked maintenance window; build it with :func:`parse_window`."""

    __slots__ = ("data", "zone", "duration", "days", "start", "rule")

    def __init__(self, data, zone, duration, days=None, start=None, rule=None):
        self.data = data
        self.zone = zone
        self.duration = duration
        self.days = days
        self.start = start
        self.rule = rule

    def __repr__(self):
        return f"Window({self.data!r})"

    def _rule_from(self, local):
        """The recurrence whose occurrences from local wall time ``local`` on are the window's starts."""
        if self.rule is not None:
            return self.rule
        dtstart = datetime.datetime.combine(local.date(), self.start)
        return rrule(WEEKLY, byweekday=self.days, dtstart=dtstart, cache=False)

    def to_utc(self, local):
        """The UTC instant of a local wall time: a gap's times move forward by the gap, a repeat's are the first."""
        return local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def occurrences(self, after):
        """``(start, end)`` in UTC of every occurrence whose local start is at or after instant ``after``'s, in order."""
        local = after.astimezone(self.zone).replace(tzinfo=None)
        for start in self._rule_from(local).xafter(local, inc=True):
            opens = self.to_utc(start)
            yield opens, opens + self.duration


def _check_utc(now, name="now"):
    if not isinstance(now, datetime.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a time-zone-aware datetime, got {now!r}")
    return now.astimezone(UTC)


def window_state(window, now):
    """``(open, next)``: the occurrence open at ``now`` (or None) and the first one that starts after it (or None).

    Each is ``(start, end)`` in UTC. When occurrences overlap, the open one is the one that closes last.
    """
    now = _check_utc(now)
    current = None
    for opens, closes in window.occurrences(now - window.duration - _LOOKBACK):
        if opens > now:
            return current, (opens, closes)
        if now < closes and (current is None or closes > current[1]):
            current = (opens, closes)
    return current, None


def window_at(window, now):
    """The occurrence ``(start, end)`` in UTC open at ``now``, or None."""
    return window_state(window, now)[0]


def next_window(window, now):
    """The first occurrence ``(start, end)`` in UTC that starts after ``now``, or None when the rule has ended."""
    return window_state(window, now)[1]


def may_start(window_end, now):
    """Whether a host whose window closes at ``window_end`` (None: no cutoff) may still be started at ``now``."""
    now = _check_utc(now)
    return window_end is None or now < _check_utc(window_end, "window_end")


_WINDOW_FIELDS = frozenset(("days", "start", "duration", "timezone", "rrule", "dtstart"))


def window_key(data):
    """A hashable key equal for equal window mappings (hosts share windows: each is read once)."""
    if (data.__class__ is dict or isinstance(data, Mapping)) and data.keys() <= _WINDOW_FIELDS:
        # The usual case, fast: the known fields' values and how many there are (a missing field and a null one
        # differ in that count).
        days = data.get("days")
        key = (len(data), tuple(days) if days.__class__ is list or isinstance(days, list) else days, data.get("start"), data.get("duration"),
               data.get("timezone"), data.get("rrule"), data.get("dtstart"))
        try:
            hash(key)
            return key
        except TypeError:
            pass
    if isinstance(data, Mapping):
        try:
            key = tuple(sorted((name, tuple(value) if isinstance(value, list) else value) for name, value in data.items()))
            hash(key)
            return key
        except TypeError:
            pass
    return ("!", repr(data))


def _zone(name):
    """The ZoneInfo named ``name``, or None when there is no such IANA time zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _rrule(text, dtstart, zone):
    """``(rule, None)`` for an RRULE value recurring from local ``dtstart``, or ``(None, message)``."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "\n" in body or ":" in body:
        return None, f"{short_repr(text)} is not the value of one RRULE (no DTSTART, EXDATE or other lines: dtstart is a field of its own)"
    parts = []
    for part in body.split(";"):
        name, _sep, value = part.partition("=")
        name = name.strip().upper()
        if name == "FREQ" and value.strip().upper() in _FORBIDDEN_FREQ:
            return None, f"{short_repr(text)} recurs more often than daily: a maintenance window recurs at most daily"
        if name in _FORBIDDEN_PARTS:
            return None, f"{short_repr(text)} sets {name}: the time of day comes from dtstart"
        if name == "UNTIL" and _UTC_UNTIL_RE.match(value.strip()):
            instant = datetime.datetime.strptime(value.strip()[:-1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            value = instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")
        parts.append(f"{name}={value}" if _sep else part)
    try:
        return rrulestr(";".join(parts), dtstart=dtstart, cache=False), None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        return None, f"{short_repr(text)} is not an RFC 5545 RRULE such as 'FREQ=WEEKLY;BYDAY=TU,TH' ({exc})"


def parse_window(data, field="maintenance_window"):
    """Check a window mapping and return a :class:`Window`; raise WindowError naming ``field`` and the value.

    Every problem is reported at once, one per line, such as
    ``maintenance_window.timezone: 'Mars/Base' is not an IANA time zone``.
    """
    prefix = tuple(field.split(".")) if field else ()
    if isinstance(data, Mapping) and not isinstance(data, dict):
        data = dict(data)
    if not isinstance(data, dict):
        expected = "expected a mapping with days, start, duration and timezone (or rrule, dtstart, duration and timezone)"
        raise WindowError([(field, f"{expected}, got {type(data).__name__} {short_repr(data)}")])
    for missing, text in ((Draft202012Validator, NO_JSONSCHEMA), (rrule, NO_DATEUTIL), (ZoneInfo, "zoneinfo is missing (Python 3.9 or later)")):
        if missing is None:
            raise WindowError([(field, f"cannot read the maintenance window: {text}")])
    kind = "rrule" if "rrule" in data else "days"
    problems = schema_problems(_VALIDATORS[kind], data)
    failed = {path[0] for path, _message in problems if path}
    zone = duration = None
    if "timezone" not in failed:
        zone = _zone(data["timezone"])
        if zone is None:
            problems.append((("timezone",), f"{short_repr(data['timezone'])} is not an IANA time zone such as 'Europe/Berlin'"))
    if "duration" not in failed:
        seconds = parse_duration(data["duration"])
        if seconds <= 0:
            problems.append((("duration",), f"{short_repr(data['duration'])} is not longer than 0s"))
        duration = datetime.timedelta(seconds=seconds)
    days = start = rule = dtstart = None
    if kind == "days":
        if "days" not in failed:
            days = tuple(sorted(DAYS.index(day) for day in data["days"]))
        if "start" not in failed:
            hour, minute = data["start"].split(":")
            start = datetime.time(int(hour), int(minute))
    else:
        if "dtstart" not in failed:
            try:
                dtstart = datetime.datetime.fromisoformat(data["dtstart"])
            except ValueError as exc:
                problems.append((("dtstart",), f"{short_repr(data['dtstart'])} is not a local date and time ({exc})"))
        if "rrule" not in failed:
            # Read the rule even when dtstart or timezone is wrong, so that all problems come at once.
            rule, message = _rrule(data["rrule"], dtstart or datetime.datetime(2000, 1, 1), zone or UTC)
            if message:
                problems.append((("rrule",), message))
    if problems:
        ordered = sorted(problems, key=lambda item: (path_key(item[0]), item[1]))
        raise WindowError([(path_text(prefix + path), message) for path, message in ordered])
    return Window(data, zone, duration, days=days, start=start, rule=rule)


def parse_utc(value, field="now"):
    """An aware UTC datetime from an aware datetime or an RFC 3339 string with an offset; ValueError naming ``field``."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{field}: {short_repr(value.isoformat())} has no time zone (give an RFC 3339 time such as 2025-12-18T09:30:00Z)")
        return value.astimezone(UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise ValueError(f"{field}: {short_repr(value)} is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z")


def format_utc(moment):
    """``2025-12-18T09:30:00Z`` for an aware datetime (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
