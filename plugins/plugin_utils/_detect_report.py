# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Detection reports: what the detect role found on every host, read back to plan without contacting any host.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The detect role writes the report (``fleetpatch_detect_report``) as JSON that ``detect_report.schema.json`` next to
this file describes: the component and the patch it was made for, when, and per host the detection result as the
planner reads it (``detected``). The rollout role's ``plan`` entry point reads it back (the
``fleetpatch.rollout.detect_report`` lookup), so a change board can review the plan before anything runs.

A report made for another component or install directory than the manifest's is refused: its versions are of
something else. The patch may differ (a new manifest for the same component): the planner judges the versions
against the manifest it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import (
    NO_JSONSCHEMA, load_schema, path_text, schema_problems, short_repr, validator,
)

__all__ = ["DETECT_REPORT_SCHEMA", "DetectReportError", "DETECTED_KEYS", "detected_of", "read_detect_report", "validate_detect_report"]

DETECT_REPORT_SCHEMA = load_schema("detect_report.schema.json")
_VALIDATOR = validator(DETECT_REPORT_SCHEMA)
# What the planner reads of a host's detection result, kept in the report.
DETECTED_KEYS = ("version", "affected", "fixed", "applied", "deferred", "interrupted", "state_error", "rollbacks")


class DetectReportError(ValueError):
    """A detection report fleetpatch cannot plan from; one line per problem, each naming the source and field."""

    def __init__(self, source, errors):
        self.source = source
        self.errors = list(errors)
        super().__init__("\n".join(f"{source}: {path}: {message}" if path else f"{source}: {message}" for path, message in self.errors))


def detected_of(result):
    """A host's detection result (a detect task's registered result, or None) as the report keeps it."""
    if not isinstance(result, Mapping) or not result:
        return {"msg": "not reached"}
    if result.get("unreachable"):
        return {"unreachable": True, "msg": str(result.get("msg") or "unreachable")}
    if result.get("failed"):
        return {"failed": True, "msg": str(result.get("msg") or "detection failed")}
    if result.get("skipped"):
        return {"skipped": True}
    return {key: result[key] for key in DETECTED_KEYS if key in result}  # the values are plain JSON, as the module returned them


def validate_detect_report(data, source, manifest=None):
    """``{host: detected}`` of a report once checked; DetectReportError naming every problem otherwise.

    With ``manifest`` (a checked manifest record), the report must be of its component and install directory.
    """
    if _VALIDATOR is None:
        raise DetectReportError(source, [("", f"cannot check it: {NO_JSONSCHEMA}")])
    errors = [(path_text(path), message) for path, message in schema_problems(_VALIDATOR, data)]
    if errors:
        raise DetectReportError(source, errors)
    if manifest is not None:
        for field, wanted in (("component", manifest.get("component")), ("install_dir", manifest.get("install_dir"))):
            if field in data and data[field] is not None and wanted is not None and data[field] != wanted:
                errors.append((field, f"the report is of {field} {short_repr(data[field])}, the manifest {manifest.get('id')} of "
                                      f"{short_repr(wanted)}: detect again with this manifest"))
    hosts = {}
    for index, row in enumerate(data["hosts"]):
        if row["host"] in hosts:
            errors.append((f"hosts[{index}].host", f"{short_repr(row['host'])} is listed twice"))
        hosts[row["host"]] = row["detected"]
    if errors:
        raise DetectReportError(source, errors)
    return hosts


def read_detect_report(path, manifest=None):
    """The report in the JSON file at ``path``: ``{"detected_at", "component", "patch", "hosts": {host: detected}}``."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise DetectReportError(path, [("", f"cannot read it: {exc.strerror or exc}")]) from None
    except ValueError as exc:
        raise DetectReportError(path, [("", f"not JSON: {exc}")]) from None
    if isinstance(data, list):
        raise DetectReportError(path, [("", "a list of rows, as the detect role wrote before reports had a format: detect again")])
    hosts = validate_detect_report(data, path, manifest)
    return {"detected_at": data["detected_at"], "component": data["component"], "patch": data.get("patch"), "hosts": hosts}
