# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pre-notification records: which customers were told of which patch, and when.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The record is a YAML or JSON file that ``notifications.schema.json`` next to this file describes (an example:
``docs/notifications.example.yml``)::

    notifications:
      - customer: acme
        patch_id: FP-2025-14847
        notified_at: "2025-12-17T08:00:00Z"   # RFC 3339 with an offset; kept as text (quote it or not)
        channel: email
        by: jane.doe@fleetpatch.example
        note: CHG-4711                       # optional

An urgent patch may override a host's maintenance window only when the host's customer has a record for the
patch with ``notified_at + notify.lead_time <= now`` (:func:`notified_since`). A customer told several times
counts from the earliest record. The ``fleetpatch.rollout.notify`` role keeps this file (``_notify.py``); a
record written by hand counts the same.
"""

from __future__ import annotations

import os

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import (
    NO_JSONSCHEMA, ReadError, load_schema, path_text, read_yaml, schema_problems, short_repr, validator,
)
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._windows import parse_utc

__all__ = ["NotificationError", "NOTIFICATIONS_SCHEMA", "Notifications", "load_notifications", "read_notifications", "validate_notifications"]

NOTIFICATIONS_SCHEMA = load_schema("notifications.schema.json")
_VALIDATOR = validator(NOTIFICATIONS_SCHEMA)


class NotificationError(ValueError):
    """A pre-notification record fleetpatch cannot use; one line per problem, each naming source and field."""

    def __init__(self, source, errors):
        self.source = source
        self.errors = list(errors)
        super().__init__("\n".join(f"{source}: {path}: {message}" if path else f"{source}: {message}" for path, message in self.errors))


class Notifications:
    """Checked records, looked up by customer and patch: ``earliest[(customer, patch_id)]`` is the first record."""

    __slots__ = ("records", "earliest")

    def __init__(self, records):
        self.records = records
        self.earliest = {}
        for record in records:
            key = (record["customer"], record["patch_id"])
            if key not in self.earliest or record["notified_at"] < self.earliest[key]["notified_at"]:
                self.earliest[key] = record

    def notified_since(self, customer, patch_id, lead_time, now):
        """``(ok, record)``: the customer's earliest record of the patch (or None), and whether it is old enough.

        ``ok`` is true when ``notified_at + lead_time <= now``: exactly at the lead time is enough.
        """
        record = self.earliest.get((customer, patch_id))
        if record is None:
            return False, None
        return record["notified_at"] + lead_time <= now, record


def validate_notifications(data, source="<notifications>"):
    """Check pre-notification data (already loaded) and return :class:`Notifications`; NotificationError otherwise."""
    if isinstance(data, Notifications):
        return data
    if not isinstance(data, dict):
        raise NotificationError(source, [("", f"expected a mapping with a notifications list, got {type(data).__name__} {short_repr(data)}")])
    if _VALIDATOR is None:
        raise NotificationError(source, [("", f"cannot check the pre-notification record: {NO_JSONSCHEMA}")])
    problems = schema_problems(_VALIDATOR, data)
    failed = {path for path, _message in problems}
    records = []
    for index, record in enumerate(data.get("notifications") or []):
        path = ("notifications", index, "notified_at")
        if not isinstance(record, dict) or path in failed or "notified_at" not in record:
            continue
        try:
            moment = parse_utc(record["notified_at"], "notified_at")
        except ValueError:
            problems.append((path, f"{short_repr(record['notified_at'])} is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"))
            continue
        records.append({**record, "notified_at": moment})
    if problems:
        raise NotificationError(source, [(path_text(path), message) for path, message in problems])
    return Notifications(records)


def _read(path):
    """``(data, source)`` of the pre-notification file at ``path``; NotificationError names the file."""
    path = os.fspath(path)
    source = os.path.basename(path) or path
    try:
        return read_yaml(path), source
    except ReadError as exc:
        raise NotificationError(source, [("", str(exc))]) from None


def load_notifications(path):
    """Read and check the pre-notification file at ``path`` (YAML or JSON); NotificationError names the file."""
    data, source = _read(path)
    return validate_notifications(data, source)


def read_notifications(path):
    """The data of the pre-notification file at ``path`` as written, once checked; NotificationError names the file.

    Plain data (``notified_at`` kept as the file's text), which :func:`validate_notifications` takes again.
    """
    data, source = _read(path)
    validate_notifications(data, source)
    return data
