# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Documents checked against the collection's JSON Schemas: reading them, checking them, wording the problems.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The manifest (``_manifest.py``), maintenance windows (``_windows.py``), the planner's policy (``_waves.py``) and
pre-notification records (``_notifications.py``) word their problems the same way, one per field::

    notifications[0].notified_at: 'yesterday' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z

the field's path (:func:`path_text`), then a message that shows the offending value (:func:`short_repr`):
fleetpatch's own wording where the schema gives one in ``x-error`` next to the keyword, a plain version of
jsonschema's otherwise. jsonschema is imported here only; without it the module still loads (so that
ansible-doc and the other plugins do), :func:`validator` gives None and the caller says :data:`NO_JSONSCHEMA`.
"""

from __future__ import annotations

import json
import os

import yaml

try:
    from jsonschema import Draft202012Validator
except ImportError:  # reported when a document is checked, so that ansible-doc and the other plugins still load
    Draft202012Validator = None

__all__ = [
    "NO_JSONSCHEMA", "SCHEMA_DIR", "ReadError", "load_schema", "path_key", "path_text", "read_yaml", "schema_problems",
    "short_repr", "validator",
]

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
NO_JSONSCHEMA = "the Python library jsonschema is missing on the controller (pip install 'jsonschema>=4.18')"
_SHORT = 80


class ReadError(ValueError):
    """A file that cannot be read as YAML; the text says why in one line, without the file's name."""


def load_schema(name):
    """The JSON Schema in file ``name`` (relative to this directory, or absolute)."""
    with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)


def validator(schema):
    """A Draft 2020-12 validator of ``schema``, or None when jsonschema is missing."""
    if Draft202012Validator is None:
        return None
    return Draft202012Validator(schema)


def short_repr(value):
    """``repr`` of a value, cut to a readable length."""
    text = repr(value)
    if len(text) <= _SHORT:
        return text
    return text[:_SHORT - 4] + ("...'" if text.startswith("'") else "...")


def path_text(path):
    """``monitoring.probes[0].url`` from ``("monitoring", "probes", 0, "url")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def path_key(path):
    """Sort key of a path: names in order, list indices by number."""
    return tuple(f"{part:09d}" if isinstance(part, int) else str(part) for part in path)


def _custom(error, **values):
    """fleetpatch's wording of a schema error (``x-error`` next to the keyword), or None."""
    template = error.schema.get("x-error", {}).get(error.validator) if isinstance(error.schema, dict) else None
    if template is None:
        return None
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _schema_errors(error):
    """``(path tuple, keyword, message)`` for one jsonschema error (a missing or unknown field is reported as itself)."""
    path = tuple(error.absolute_path)
    instance, keyword, expected = error.instance, error.validator, error.validator_value
    if keyword == "required":
        message = _custom(error) or "required field missing"
        return [(path + (name,), keyword, message) for name in expected if name not in instance]
    if keyword == "dependentRequired":
        missing = {name for key, names in expected.items() if key in instance for name in names if name not in instance}
        return [(path + (name,), keyword, _custom(error) or f"required with {', '.join(expected)}") for name in sorted(missing)]
    if keyword == "additionalProperties":
        known = error.schema.get("properties", {})
        return [(path + (name,), keyword, f"unknown field (value {short_repr(instance[name])})") for name in instance if name not in known]
    if keyword == "oneOf":
        # Each branch requires one field: say which of them were given.
        given = [name for branch in expected for name in branch.get("required", ()) if name in instance]
        return [(path, keyword, _custom(error, value=" and ".join(given) or "neither") or error.message)]
    message = _custom(error, value=short_repr(instance))
    if message is None:
        message = _standard_message(error)
    return [(path, keyword, message)]


def _standard_message(error):
    """jsonschema's message for the keywords the schemas use, with values cut short and patterns unescaped."""
    instance, keyword, expected = short_repr(error.instance), error.validator, error.validator_value
    messages = {
        "type": lambda: f"{instance} is not of type {expected!r}",
        "enum": lambda: f"{instance} is not one of {', '.join(repr(item) for item in expected)}",
        "pattern": lambda: f"{instance} does not match '{expected}'",
        "minLength": lambda: f"must not be empty, got {instance}" if expected == 1 else error.message,
        "minItems": lambda: f"must not be empty, got {instance}" if expected == 1 else error.message,
        "uniqueItems": lambda: f"{instance} lists an item more than once",
        "minimum": lambda: f"{instance} is less than {expected}",
        "maximum": lambda: f"{instance} is more than {expected}",
    }
    return messages[keyword]() if keyword in messages else error.message


def schema_problems(checker, data, prefix=()):
    """``[(path tuple, message)]`` of every schema problem in ``data``, one per field, sorted by field path.

    ``checker`` is a :func:`validator`; ``prefix`` goes before every path. A value of the wrong type gets that
    one message, not also the enum or pattern it then cannot match.
    """
    found = {item for error in checker.iter_errors(data) for item in _schema_errors(error)}
    typed = {path for path, keyword, _message in found if keyword == "type"}
    problems = {(prefix + path, message) for path, keyword, message in found if path not in typed or keyword == "type"}
    return sorted(problems, key=lambda item: (path_key(item[0]), item[1]))


class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as a change record needs it: timestamps stay strings, a key given twice is an error."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path):
    """The data in the YAML (or JSON) file at ``path``, timestamps kept as text; ReadError saying why not."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)  # nosec B506 - _Loader is a SafeLoader
    except OSError as exc:
        raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ReadError(f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}") from None
