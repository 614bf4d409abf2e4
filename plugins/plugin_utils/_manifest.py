# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Patch manifests: read a change record, check it, and hand it on normalised.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A manifest is a YAML file (``manifests/FP-2025-14847.yml``) that the JSON Schema ``manifest.schema.json`` next to
this file describes field by field. :func:`load_manifest` checks it in two passes and reports every problem at
once, one per line, sorted by field path, each naming the file, the field and the offending value::

    FP-2025-14847.yml: artifact.sha256: 'abc' does not match '^[0-9a-f]{64}$'
    FP-2025-14847.yml: class: 'reboot' is not a hot patch: fleetpatch cannot apply it (...)

1. the schema (types, patterns, required fields, unknown fields, the patch class, notify.lead_time when urgent);
2. what a schema cannot say: ``affected`` and ``compatible_with`` are version ranges and ``fixed_version`` a
   version by the one rule of ``module_utils/_version.py``, the fixed version lies outside the affected range,
   durations and timestamps are real ones, and the reload settings fit the patch class.

A field that fails the schema is not checked again by the second pass, so each problem is reported once.
"""

from __future__ import annotations

import copy
import datetime
import os
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import (
    NO_JSONSCHEMA, SCHEMA_DIR, ReadError, load_schema, path_key, path_text, read_yaml, schema_problems, short_repr, validator,
)

__all__ = [
    "MANIFEST_FILE_KEY", "ManifestError", "SCHEMA", "SCHEMA_PATH", "field_reference", "health_args", "load_manifest", "module_args", "parse_duration",
    "task_args", "validate_manifest",
]

SCHEMA_PATH = os.path.join(SCHEMA_DIR, "manifest.schema.json")
SCHEMA = load_schema(SCHEMA_PATH)
_VALIDATOR = validator(SCHEMA)

_DURATION_SCHEMA = SCHEMA["$defs"]["duration"]
_DURATION_RE = re.compile(_DURATION_SCHEMA["pattern"])
_DURATION_UNITS = (86400, 3600, 60, 1)
_TIMESTAMP_MESSAGE = SCHEMA["$defs"]["timestamp"]["x-error"]["pattern"]

# The key under which the fleetpatch.rollout.manifest lookup adds the absolute path of the file it read to the
# record: no field of the schema, which allows no others, so a record can never carry it from its file.
MANIFEST_FILE_KEY = "manifest_file"


class ManifestError(ValueError):
    """A manifest fleetpatch cannot use. ``errors`` lists ``(field path, message)``; the text has one line each."""

    def __init__(self, source, errors):
        self.source = source
        self.errors = list(errors)
        super().__init__("\n".join(f"{source}: {path}: {message}" if path else f"{source}: {message}" for path, message in self.errors))


def parse_duration(text):
    """Seconds in a duration such as ``30s``, ``5m``, ``15h``, ``2d`` or ``1h30m``; raise ValueError otherwise."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(_DURATION_SCHEMA["x-error"]["pattern"].replace("{value}", short_repr(text)))
    return sum(int(amount) * unit for amount, unit in zip(match.groups(), _DURATION_UNITS) if amount)


def _get(data, path):
    """The value at ``path`` in ``data``, or None where any step is missing or of the wrong kind."""
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data


def _semantic_errors(data):
    """``(path tuple, message)`` pairs for what the schema cannot check; values of the wrong type are skipped."""
    errors = []
    ranges = {}
    for field in ("affected", "compatible_with"):
        if isinstance(data.get(field), str):
            try:
                ranges[field] = VersionRange(data[field])
            except VersionError as exc:
                errors.append(((field,), str(exc)))
    fixed = None
    if isinstance(data.get("fixed_version"), str):
        try:
            fixed = Version(data["fixed_version"])
        except VersionError as exc:
            errors.append((("fixed_version",), str(exc)))
    if fixed is not None and "affected" in ranges and fixed in ranges["affected"]:
        inside = f"{short_repr(fixed.text)} lies inside affected {short_repr(ranges['affected'].text)}"
        errors.append((("fixed_version",), f"{inside}: the fix would itself be affected"))
    target = _get(data, ("rollback", "to"))
    if isinstance(target, str) and target != "previous":
        try:
            if fixed is not None and Version(target) == fixed:
                errors.append((("rollback", "to"), f"{short_repr(target)} is fixed_version itself, not a way back"))
        except VersionError as exc:
            errors.append((("rollback", "to"), f"must be 'previous' or a version: {exc}"))
    stamp = data.get("detected_at")
    if isinstance(stamp, str):
        try:
            datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            errors.append((("detected_at",), _TIMESTAMP_MESSAGE.replace("{value}", short_repr(stamp))))
    reload = data.get("reload")
    if isinstance(reload, dict):
        if data.get("class") == "hot" and "signal" not in reload and "command" not in reload:
            errors.append((("reload",), "a hot patch needs signal or command to make the service reload"))
        if data.get("class") == "restart" and "restart_command" not in reload:
            errors.append((("reload", "restart_command"), "required when class is 'restart'"))
    return errors


def _duration_fields(data):
    """Paths of the durations in ``data`` and the ``*_seconds`` key that goes next to each."""
    fields = [
        (("monitoring", "soak"), "soak_seconds"),
        (("monitoring", "interval"), "interval_seconds"),
        (("notify", "lead_time"), "lead_time_seconds"),
    ]
    probes = _get(data, ("monitoring", "probes"))
    for index in range(len(probes) if isinstance(probes, list) else 0):
        fields.append((("monitoring", "probes", index, "timeout"), "timeout_seconds"))
    return fields


def _resolve(path, base_dir):
    """``path`` made absolute against ``base_dir``."""
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def _normalise(data, base_dir):
    """A copy of a valid manifest with paths absolute, durations also in seconds and defaults filled in."""
    result = copy.deepcopy(data)
    for key, spec in SCHEMA["properties"].items():
        if "default" in spec:
            result.setdefault(key, spec["default"])
    artifact = result["artifact"]
    for key in ("path", "signature"):
        if key in artifact:
            artifact[key] = _resolve(artifact[key], base_dir)
    for path, seconds_key in _duration_fields(result):
        value = _get(result, path)
        if value is not None:
            _get(result, path[:-1])[seconds_key] = parse_duration(value)
    return result


def validate_manifest(data, source="<manifest>", base_dir=None):
    """Check manifest ``data`` (already loaded) and return it normalised; raise ManifestError with every problem.

    ``source`` names the manifest in messages. Relative artifact paths are resolved against ``base_dir``
    (default: the current directory); the result holds them absolute, and adds ``monitoring.soak_seconds``,
    ``notify.lead_time_seconds`` and each probe's ``timeout_seconds`` next to the durations they come from.
    """
    if not isinstance(data, dict):
        raise ManifestError(source, [((), f"expected a mapping of fields, got {type(data).__name__} {short_repr(data)}")])
    if _VALIDATOR is None:
        raise ManifestError(source, [((), f"cannot check the manifest: {NO_JSONSCHEMA}")])
    found = set(schema_problems(_VALIDATOR, data))
    failed = {path for path, _message in found}
    for path, message in _semantic_errors(data):
        if not any(path[:length] in failed for length in range(1, len(path) + 1)):
            found.add((path, message))
    if found:
        ordered = sorted(found, key=lambda item: (path_key(item[0]), item[1]))
        raise ManifestError(source, [(path_text(path), message) for path, message in ordered])
    return _normalise(data, os.getcwd() if base_dir is None else base_dir)


def load_manifest(path):
    """Read the manifest file at ``path``, check it and return it normalised (see :func:`validate_manifest`).

    Relative artifact paths are resolved against the manifest file's directory. Raise ManifestError, whose
    message starts with the file's name, when the file cannot be read or the manifest is not valid.
    """
    path = os.fspath(path)
    source = os.path.basename(path) or path
    try:
        data = read_yaml(path)
    except ReadError as exc:
        raise ManifestError(source, [((), str(exc))]) from None
    return validate_manifest(data, source=source, base_dir=os.path.dirname(os.path.abspath(path)))


def _type_text(spec):
    """The type column of the field reference."""
    spec = _deref(spec)
    if "enum" in spec:
        return " / ".join(f"`{value}`" for value in spec["enum"])
    kind = spec.get("type", "")
    if kind == "array":
        items = _deref(spec.get("items", {}))
        return "list of mappings" if items.get("type") == "object" else f"list of {items.get('type', '')}s"
    if spec is SCHEMA["$defs"]["duration"]:
        return "duration"
    if spec is SCHEMA["$defs"]["timestamp"]:
        return "timestamp"
    if spec is SCHEMA["$defs"]["http_url"]:
        return "URL"
    return {"string": "string", "boolean": "bool", "integer": "int", "object": "mapping"}.get(kind, kind)


def _deref(spec):
    """The schema a ``$ref`` points to, or ``spec`` itself."""
    ref = spec.get("$ref")
    return SCHEMA["$defs"][ref.rsplit("/", 1)[1]] if ref else spec


def _field_rows(spec, prefix):
    """``(path, type, required, description)`` of every field under ``spec``, depth first in schema order."""
    rows = []
    spec = _deref(spec)
    required = set(spec.get("required", ()))
    for name, child in spec.get("properties", {}).items():
        path = f"{prefix}{name}"
        description = child.get("description", "")
        if "default" in child:
            description += f" Default: {child['default']}."
        rows.append((path, _type_text(child), "yes" if name in required else "no", description))
        target = _deref(child)
        if target.get("type") == "array" and _deref(target.get("items", {})).get("type") == "object":
            rows.extend(_field_rows(target["items"], f"{path}[]."))
        elif target.get("type") == "object":
            rows.extend(_field_rows(target, f"{path}."))
    return rows


def field_reference():
    """The manifest's fields as a Markdown table, made from the schema's descriptions (see manifests/README.md)."""
    lines = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for path, kind, required, description in _field_rows(SCHEMA, ""):
        text = description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
        lines.append(f"| `{path}` | {kind} | {required} | {text} |")
    return "\n".join(lines) + "\n"


def module_args(manifest, operation="apply"):
    """The arguments that fleetpatch.rollout.apply (or rollback) takes from a validated manifest.

    Explicit task arguments win over these: the action plugins merge them on top.
    """
    reload = manifest.get("reload") or {}
    args = {
        "patch_id": manifest["id"],
        "component": manifest["component"],
        "patch_class": manifest["class"],
        "reload_command": reload.get("command"),
        "reload_signal": reload.get("signal"),
        "pid_file": reload.get("pid_file"),
        "restart_command": reload.get("restart_command"),
        "install_dir": manifest.get("install_dir"),
        "version_url": manifest.get("version_url"),
    }
    if operation == "health":
        return health_args(manifest)
    if operation == "rollback":
        args["from_version"] = manifest["fixed_version"]
    if operation == "apply":
        artifact = manifest["artifact"]
        args.update({
            "version": manifest["fixed_version"],
            "artifact": artifact.get("path"),
            "artifact_url": artifact.get("url"),
            "artifact_sha256": artifact["sha256"],
            "signature": artifact.get("signature"),
            "signer": artifact.get("signer"),
            "compatible_with": manifest.get("compatible_with"),
        })
    return {key: value for key, value in args.items() if value is not None}


def health_args(manifest):
    """The arguments fleetpatch.rollout.health takes from a validated manifest's ``monitoring`` section."""
    monitoring = manifest["monitoring"]
    probes = []
    for probe in monitoring["probes"]:
        seconds = probe.get("timeout_seconds")
        probe = {key: value for key, value in probe.items() if key not in ("timeout", "timeout_seconds")}
        if seconds is not None:
            probe["timeout"] = seconds
        probes.append(probe)
    args = {
        "probes": probes,
        "soak": monitoring.get("soak_seconds"),
        "interval": monitoring.get("interval_seconds"),
        "samples": monitoring.get("samples"),
        "consecutive_failures": monitoring.get("consecutive_failures"),
        "thresholds": monitoring.get("thresholds"),
    }
    return {key: value for key, value in args.items() if value is not None}


def task_args(args, operation):
    """A task's arguments with those of its ``manifest`` (a path, validated here) filled in underneath.

    An apply that judges the health in the same call (``judge``) takes the ``monitoring`` section's too.
    """
    args = dict(args)
    path = args.pop("manifest", None)
    if not path:
        return args
    manifest = load_manifest(path)
    base = module_args(manifest, operation)
    if operation == "apply" and boolean(args.get("judge", False), strict=False):
        base.update(health_args(manifest))
    return {**base, **args}
