"""Schema problems worded one per field, naming its path and its value; YAML files read or refused with the reason."""

from __future__ import annotations

import re

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _schema
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import (
    NO_JSONSCHEMA, ReadError, load_schema, path_key, path_text, read_yaml, schema_problems, short_repr, validator,
)

LONG = "x" * 100
SHORTENED = "'" + "x" * 75 + "...'"

# A small schema with every keyword the collection's schemas use, and x-error wording on some of them.
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "pattern": "^FP-[0-9]+$"},
        "class": {"type": "string", "enum": ["hot", "restart"]},
        "when": {"type": "string", "pattern": "^[0-9]{4}-", "x-error": {"pattern": "{value} is not a date such as 2025-12-18"}},
        "name": {"type": "string", "minLength": 1},
        "code": {"type": "string", "minLength": 3},
        "tags": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "owner": {
            "type": "object",
            "additionalProperties": False,
            "required": ["email"],
            "x-error": {"required": "who to call: give an email"},
            "properties": {"email": {"type": "string"}, "phone": {"type": "string"}},
        },
        "reload": {
            "type": "object",
            "dependentRequired": {"signal": ["pid_file"]},
            "properties": {"signal": {"type": "string"}, "pid_file": {"type": "string"}},
        },
        "source": {
            "type": "object",
            "oneOf": [{"required": ["path"]}, {"required": ["url"]}],
            "x-error": {"oneOf": "give path or url, not {value}"},
        },
        "probes": {
            "type": "array",
            "items": {"type": "object", "properties": {"url": {"type": "string", "pattern": "^https?://"}}},
        },
    },
}
GOOD = {"id": "FP-1"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"id": 7}, [("id", "7 is not of type 'string'")]),  # the type only, not also the pattern
        ({"id": "CVE-1"}, [("id", "'CVE-1' does not match '^FP-[0-9]+$'")]),
        ({"id": LONG}, [("id", f"{SHORTENED} does not match '^FP-[0-9]+$'")]),
        ({"class": "reboot"}, [("class", "'reboot' is not one of 'hot', 'restart'")]),
        ({"when": "yesterday"}, [("when", "'yesterday' is not a date such as 2025-12-18")]),
        ({"name": ""}, [("name", "must not be empty, got ''")]),
        ({"code": "ab"}, [("code", "'ab' is too short")]),
        ({"tags": []}, [("tags", "must not be empty, got []")]),
        ({"tags": ["a", "a"]}, [("tags", "['a', 'a'] lists an item more than once")]),
        ({"tags": ["a", 2]}, [("tags[1]", "2 is not of type 'string'")]),
        ({"count": 0}, [("count", "0 is less than 1")]),
        ({"count": 11}, [("count", "11 is more than 10")]),
        ({"count": True}, [("count", "True is not of type 'integer'")]),
        ({"owner": {}}, [("owner.email", "who to call: give an email")]),
        ({"owner": {"email": "a@b", "fax": 1}}, [("owner.fax", "unknown field (value 1)")]),
        ({"reload": {"signal": "HUP"}}, [("reload.pid_file", "required with signal")]),
        ({"source": {"path": "/a", "url": "http://b"}}, [("source", "give path or url, not path and url")]),
        ({"source": {}}, [("source", "give path or url, not neither")]),
        ({"colour": LONG}, [("colour", f"unknown field (value {SHORTENED})")]),
        ({"probes": [{"url": f"ftp://{n}"} for n in range(11)]},
         [(f"probes[{n}].url", f"'ftp://{n}' does not match '^https?://'") for n in range(11)]),  # 2 before 10
        ({"id": 7, "class": "reboot", "count": 0},
         [("class", "'reboot' is not one of 'hot', 'restart'"), ("count", "0 is less than 1"), ("id", "7 is not of type 'string'")]),
    ],
)
def test_schema_problems_name_the_field_and_the_value(changes, expected):
    data = {**GOOD, **changes}
    problems = schema_problems(validator(SCHEMA), data)
    assert [(path_text(path), message) for path, message in problems] == expected


def test_missing_required_field_and_prefix():
    problems = schema_problems(validator(SCHEMA), {}, prefix=("policy",))
    assert problems == [(("policy", "id"), "required field missing")]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("id",), "id"),
        (("monitoring", "probes", 0, "url"), "monitoring.probes[0].url"),
        (("notifications", 12), "notifications[12]"),
    ],
)
def test_path_text(path, text):
    assert path_text(path) == text


def test_path_key_orders_indices_by_number():
    paths = [("a", 10), ("a", 2), ("a", 2, "b"), ("a",), ("b",)]
    assert sorted(paths, key=path_key) == [("a",), ("a", 2), ("a", 2, "b"), ("a", 10), ("b",)]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "'abc'"),
        ("x" * 78, "'" + "x" * 78 + "'"),  # 80 characters: kept whole
        (LONG, SHORTENED),
        (list(range(40)), repr(list(range(40)))[:76] + "..."),
        (None, "None"),
    ],
)
def test_short_repr(value, text):
    assert short_repr(value) == text
    assert len(short_repr(value)) <= 80


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb: [x, y]\n", {"a": 1, "b": ["x", "y"]}),
        ('{"a": 1}', {"a": 1}),
        ("at: 2025-12-18T09:30:00Z\n", {"at": "2025-12-18T09:30:00Z"}),  # timestamps stay text
    ],
)
def test_read_yaml(tmp_path, text, expected):
    path = tmp_path / "data.yml"
    path.write_text(text, encoding="utf-8")
    assert read_yaml(path) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a: [\n", "not valid YAML: line 2, column 1: expected the node content, but found '<stream end>'"),
        (b"a: 1\na: 2\n", "not valid YAML: line 2, column 1: duplicate key 'a'"),
        (b"a: \xff\n", "not UTF-8 text: invalid start byte at byte 3"),
        (None, "cannot read {path}: No such file or directory"),
    ],
)
def test_read_yaml_refuses(tmp_path, content, message):
    path = tmp_path / "data.yml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReadError, match=r"\A" + re.escape(message.format(path=path)) + r"\Z"):
        read_yaml(path)


def test_load_schema_reads_the_schemas_next_to_it():
    assert load_schema("plan.schema.json")["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_without_jsonschema_there_is_no_validator(monkeypatch):
    monkeypatch.setattr(_schema, "Draft202012Validator", None)
    assert validator(SCHEMA) is None
    assert NO_JSONSCHEMA == "the Python library jsonschema is missing on the controller (pip install 'jsonschema>=4.18')"
