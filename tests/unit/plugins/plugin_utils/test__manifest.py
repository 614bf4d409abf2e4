"""Patch manifests: the demo change record, every field made invalid, several problems at once, the field docs."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from fleetpatch_dev import ansible_env, artifacts

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import (
    MANIFEST_FILE_KEY, SCHEMA, ManifestError, field_reference, health_args, load_manifest, module_args, parse_duration, task_args, validate_manifest,
)

REPO = Path(__file__).resolve().parents[4]
DEMO = REPO / "manifests" / "FP-2025-14847.yml"
README = REPO / "manifests" / "README.md"
DELETE = object()
AFFECTED = ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17"
NOT_HOT = (
    "is not a hot patch: fleetpatch cannot apply it (it applies class 'hot', a reload, or 'restart', a service restart; "
    "a patch that needs a reboot or a schema or configuration migration is out of its scope)"
)
NOT_DURATION = "is not a duration such as 30s, 5m, 15h or 1h30m (whole numbers with the units d, h, m, s, in that order)"
NOT_VERSION = "is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"
NOT_TIMESTAMP = "is not an RFC 3339 timestamp such as 2025-12-18T09:30:00Z"
SHA = "15cfc8added145376d53f61b7af502d30e332d4d0ab9a6a01b3b33eef164208c"


def demo_data():
    """The demo manifest as YAML data, before checking."""
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def changed(data, changes):
    """A copy of ``data`` with ``{"a.b[0].c": value}`` set (or removed, for DELETE)."""
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        parts = [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", dotted)]
        parent = data
        for part in parts[:-1]:
            parent = parent[part]
        if value is DELETE:
            del parent[parts[-1]]
        else:
            parent[parts[-1]] = value
    return data


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)


def _described(spec, path):
    """Paths of schema properties without a description."""
    missing = []
    for name, child in spec.get("properties", {}).items():
        if not child.get("description"):
            missing.append(f"{path}{name}")
        missing += _described(child, f"{path}{name}.")
    for name, child in spec.get("$defs", {}).items():
        missing += _described(child, f"$defs.{name}.")
    return missing


def test_every_field_is_described():
    assert not _described(SCHEMA, "")


def test_demo_manifest_loads_normalised():
    manifest = load_manifest(DEMO)
    assert manifest["id"] == "FP-2025-14847"
    assert manifest["class"] == "hot"
    assert manifest["urgency"] == "urgent"
    assert manifest["fixed_version"] == "7.0.28"
    assert manifest["artifact"] == {"path": str(REPO / ".build" / "artifacts" / "fpdemo-7.0.28.tar.gz"), "sha256": SHA}
    assert manifest["monitoring"]["soak_seconds"] == 300
    assert manifest["monitoring"]["probes"][0]["timeout_seconds"] == 5
    assert "timeout_seconds" not in manifest["monitoring"]["probes"][1]
    assert manifest["notify"]["lead_time_seconds"] == 15 * 3600
    assert manifest["install_dir"] == "/srv/fpdemo"
    assert manifest["reload"]["command"] == ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "reload"]
    assert manifest["reload"]["restart_command"] == ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "restart"]
    assert manifest["detected_at"] == "2025-12-18T09:30:00Z"


def test_demo_manifest_names_the_freshly_built_artifact(tmp_path):
    built = artifacts.build("7.0.28", tmp_path)
    manifest = load_manifest(DEMO)
    assert built.sha256 == manifest["artifact"]["sha256"]
    assert built.path.name == Path(manifest["artifact"]["path"]).name


def test_validate_does_not_change_its_input():
    data = demo_data()
    before = copy.deepcopy(data)
    validate_manifest(data, base_dir="/srv/patches")
    assert data == before


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # id
        ({"id": 14847}, "id: 14847 is not of type 'string'"),
        ({"id": "FP-14847"}, "id: 'FP-14847' does not match '^FP-[0-9]{4}-[0-9]{4,}$'"),
        ({"id": DELETE}, "id: required field missing"),
        # title
        ({"title": ""}, "title: must not be empty, got ''"),
        ({"title": ["a"]}, "title: ['a'] is not of type 'string'"),
        ({"title": DELETE}, "title: required field missing"),
        # advisories
        ({"advisories": "CVE-2025-14847"}, "advisories: 'CVE-2025-14847' is not of type 'array'"),
        ({"advisories": []}, "advisories: must not be empty, got []"),
        ({"advisories": ["CVE-25-14847"]}, "advisories[0]: 'CVE-25-14847' does not match '^CVE-[0-9]{4}-[0-9]{4,}$'"),
        ({"advisories": ["CVE-2025-14847", 2025]}, "advisories[1]: 2025 is not of type 'string'"),
        (
            {"advisories": ["CVE-2025-14847", "CVE-2025-14847"]},
            "advisories: ['CVE-2025-14847', 'CVE-2025-14847'] lists an item more than once",
        ),
        ({"advisories": DELETE}, "advisories: required field missing"),
        # severity, urgency
        ({"severity": "extreme"}, "severity: 'extreme' is not one of 'low', 'medium', 'high', 'critical'"),
        ({"severity": 9}, "severity: 9 is not of type 'string'"),
        ({"severity": DELETE}, "severity: required field missing"),
        ({"urgency": "asap"}, "urgency: 'asap' is not one of 'routine', 'urgent', 'emergency'"),
        ({"urgency": DELETE}, "urgency: required field missing"),
        # component
        ({"component": "fp demo"}, "component: 'fp demo' does not match '^[A-Za-z0-9][A-Za-z0-9._+-]*$'"),
        ({"component": DELETE}, "component: required field missing"),
        # affected
        ({"affected": ""}, "affected: must not be empty, got ''"),
        ({"affected": 7}, "affected: 7 is not of type 'string'"),
        ({"affected": "7.0.x"}, f"affected: version range '7.0.x': '7.0.x' {NOT_VERSION}"),
        ({"affected": ">=7.0.0 ||"}, "affected: version range '>=7.0.0 ||' has an empty alternative"),
        ({"affected": DELETE}, "affected: required field missing"),
        # fixed_version
        ({"fixed_version": "seven"}, f"fixed_version: 'seven' {NOT_VERSION}"),
        ({"fixed_version": 7.0}, "fixed_version: 7.0 is not of type 'string'"),
        ({"fixed_version": "7.0.27"}, f"fixed_version: '7.0.27' lies inside affected '{AFFECTED}': the fix would itself be affected"),
        ({"fixed_version": "8.0.16"}, f"fixed_version: '8.0.16' lies inside affected '{AFFECTED}': the fix would itself be affected"),
        ({"fixed_version": DELETE}, "fixed_version: required field missing"),
        # class
        ({"class": "reboot"}, f"class: 'reboot' {NOT_HOT}"),
        ({"class": "migration"}, f"class: 'migration' {NOT_HOT}"),
        ({"class": "schema_migration"}, f"class: 'schema_migration' {NOT_HOT}"),
        ({"class": "Hot"}, f"class: 'Hot' {NOT_HOT}"),
        ({"class": True}, "class: True is not of type 'string'"),
        ({"class": DELETE}, "class: required field missing"),
        # artifact
        ({"artifact": "fpdemo-7.0.28.tar.gz"}, "artifact: 'fpdemo-7.0.28.tar.gz' is not of type 'object'"),
        ({"artifact.sha256": "abc"}, "artifact.sha256: 'abc' does not match '^[0-9a-f]{64}$'"),
        ({"artifact.sha256": SHA.upper()}, f"artifact.sha256: '{SHA.upper()}' does not match '^[0-9a-f]{{64}}$'"),
        ({"artifact.sha256": DELETE}, "artifact.sha256: required field missing"),
        ({"artifact.url": "https://example.com/fpdemo-7.0.28.tar.gz"}, "artifact: needs exactly one of path and url, got path and url"),
        ({"artifact.path": DELETE}, "artifact: needs exactly one of path and url, got neither"),
        ({"artifact.path": ""}, "artifact.path: must not be empty, got ''"),
        ({"artifact.path": DELETE, "artifact.url": "ftp://example.com/a.tgz"}, "artifact.url: 'ftp://example.com/a.tgz' is not an http:// or https:// URL"),
        ({"artifact.signature": "a.sig"}, "artifact.signer: required with signature: the identity that must have signed the artifact"),
        ({"artifact.signature": "a.sig", "artifact.signer": ""}, "artifact.signer: must not be empty, got ''"),
        ({"artifact.md5": "x"}, "artifact.md5: unknown field (value 'x')"),
        ({"artifact": DELETE}, "artifact: required field missing"),
        # compatible_with
        ({"compatible_with": ">=7.0.26,<"}, "compatible_with: version range '>=7.0.26,<': '<' is not a comparator such as >=7.0.0"),
        ({"compatible_with": ["7.0.26"]}, "compatible_with: ['7.0.26'] is not of type 'string'"),
        ({"compatible_with": DELETE}, "compatible_with: required field missing"),
        # changelog
        ({"changelog": None}, "changelog: None is not of type 'string'"),
        ({"changelog": DELETE}, "changelog: required field missing"),
        # risk
        ({"risk": "low"}, "risk: 'low' is not of type 'object'"),
        ({"risk.level": "none"}, "risk.level: 'none' is not one of 'low', 'medium', 'high'"),
        ({"risk.text": DELETE}, "risk.text: required field missing"),
        ({"risk.owner": "me"}, "risk.owner: unknown field (value 'me')"),
        ({"risk": DELETE}, "risk: required field missing"),
        # rollback
        ({"rollback.to": "7.0.28"}, "rollback.to: '7.0.28' is fixed_version itself, not a way back"),
        ({"rollback.to": "yesterday"}, f"rollback.to: must be 'previous' or a version: 'yesterday' {NOT_VERSION}"),
        ({"rollback.automatic": "yes"}, "rollback.automatic: 'yes' is not of type 'boolean'"),
        ({"rollback.automatic": DELETE}, "rollback.automatic: required field missing"),
        ({"rollback": DELETE}, "rollback: required field missing"),
        # monitoring
        ({"monitoring.probes": []}, "monitoring.probes: must not be empty, got []"),
        ({"monitoring.probes[0].type": "icmp"}, "monitoring.probes[0].type: 'icmp' is not one of 'http', 'tcp', 'command'"),
        ({"monitoring.probes[0].type": DELETE}, "monitoring.probes[0].type: required field missing"),
        ({"monitoring.probes[0].url": DELETE}, "monitoring.probes[0].url: required field missing"),
        ({"monitoring.probes[0].expect_status": 99}, "monitoring.probes[0].expect_status: 99 is less than 100"),
        ({"monitoring.probes[0].expect_status": "200"}, "monitoring.probes[0].expect_status: '200' is not of type 'integer'"),
        ({"monitoring.probes[0].timeout": "5"}, f"monitoring.probes[0].timeout: '5' {NOT_DURATION}"),
        ({"monitoring.probes[0].retries": 3}, "monitoring.probes[0].retries: unknown field (value 3)"),
        ({"monitoring.probes[1].port": DELETE}, "monitoring.probes[1].port: required field missing"),
        ({"monitoring.probes[1].port": 70000}, "monitoring.probes[1].port: 70000 is more than 65535"),
        ({"monitoring.probes[1]": {"type": "command"}}, "monitoring.probes[1].command: required field missing"),
        ({"monitoring.probes[1]": {"type": "command", "command": "true"}}, "monitoring.probes[1].command: 'true' is not of type 'array'"),
        ({"monitoring.soak": "5 minutes"}, f"monitoring.soak: '5 minutes' {NOT_DURATION}"),
        ({"monitoring.soak": "1m1h"}, f"monitoring.soak: '1m1h' {NOT_DURATION}"),
        ({"monitoring.soak": 300}, "monitoring.soak: 300 is not of type 'string'"),
        ({"monitoring.soak": DELETE}, "monitoring.soak: required field missing"),
        ({"monitoring.consecutive_failures": 0}, "monitoring.consecutive_failures: 0 is less than 1"),
        ({"monitoring.consecutive_failures": 101}, "monitoring.consecutive_failures: 101 is more than 100"),
        ({"monitoring.consecutive_failures": "3"}, "monitoring.consecutive_failures: '3' is not of type 'integer'"),
        ({"monitoring.consecutive_failures": 1.5}, "monitoring.consecutive_failures: 1.5 is not of type 'integer'"),
        ({"monitoring": DELETE}, "monitoring: required field missing"),
        # detected_at
        ({"detected_at": "2025-12-18"}, f"detected_at: '2025-12-18' {NOT_TIMESTAMP}"),
        ({"detected_at": "2025-12-18T09:30:00"}, f"detected_at: '2025-12-18T09:30:00' {NOT_TIMESTAMP}"),
        ({"detected_at": "2025-13-40T25:00:00Z"}, f"detected_at: '2025-13-40T25:00:00Z' {NOT_TIMESTAMP}"),
        ({"detected_at": DELETE}, "detected_at: required field missing"),
        # notify
        (
            {"notify": DELETE},
            "notify: required when urgency is 'urgent', with lead_time: how long before the change the customers are told",
        ),
        (
            {"notify.lead_time": DELETE},
            "notify.lead_time: required when urgency is 'urgent': how long before the change the customers are told, for example 15h",
        ),
        ({"notify.lead_time": "15 hours"}, f"notify.lead_time: '15 hours' {NOT_DURATION}"),
        ({"notify.lead_time": 15}, "notify.lead_time: 15 is not of type 'string'"),
        ({"notify.recipients": "ops@example.com"}, "notify.recipients: 'ops@example.com' is not of type 'array'"),
        ({"notify.channel": "mail"}, "notify.channel: unknown field (value 'mail')"),
        # reload
        ({"reload.signal": "HUP", "reload.pid_file": "/run/fpdemo/fpdemo.pid"}, "reload: give signal or command, not both"),
        ({"reload.command": DELETE, "reload.signal": "hup", "reload.pid_file": "/run/x.pid"}, "reload.signal: 'hup' does not match '^(SIG)?[A-Z][A-Z0-9]*$'"),
        ({"reload.command": DELETE, "reload.signal": "HUP"},
         "reload.pid_file: required with signal: the file holding the process id the signal goes to"),
        ({"reload.command": DELETE, "reload.signal": "HUP", "reload.pid_file": "run/x.pid"}, "reload.pid_file: 'run/x.pid' does not match '^/'"),
        ({"reload.command": []}, "reload.command: must not be empty, got []"),
        ({"reload.command": "fpdemoctl.py reload"}, "reload.command: 'fpdemoctl.py reload' is not of type 'array'"),
        ({"reload.command": DELETE}, "reload: a hot patch needs signal or command to make the service reload"),
        ({"class": "restart", "reload.restart_command": DELETE}, "reload.restart_command: required when class is 'restart'"),
        ({"reload.reload_command": ["x"]}, "reload.reload_command: unknown field (value ['x'])"),
        # install_dir, URLs
        ({"install_dir": "srv/fpdemo"}, "install_dir: 'srv/fpdemo' does not match '^/'"),
        ({"health_url": "127.0.0.1:8080/health"}, "health_url: '127.0.0.1:8080/health' is not an http:// or https:// URL"),
        ({"version_url": 8080}, "version_url: 8080 is not of type 'string'"),
        # advisory
        ({"advisory": "osv"}, "advisory: 'osv' is not of type 'object'"),
        ({"advisory": {"ecosystem": ""}}, "advisory.ecosystem: must not be empty, got ''"),
        ({"advisory": {"purl": "fpdemo"}}, r"advisory.purl: 'fpdemo' does not match '^pkg:[A-Za-z.+-]+/\S+$'"),
        ({"advisory": {"url": "www.example.com/FP-2025-14847"}}, "advisory.url: 'www.example.com/FP-2025-14847' is not an http:// or https:// URL"),
        ({"advisory": {"cvss": "9.8"}}, "advisory.cvss: unknown field (value '9.8')"),
        # unknown top-level fields
        ({"owner": "me"}, "owner: unknown field (value 'me')"),
        ({"fixed_versions": ["7.0.28"]}, "fixed_versions: unknown field (value ['7.0.28'])"),
    ],
)
def test_invalid_field(changes, expected):
    with pytest.raises(ManifestError) as error:
        validate_manifest(changed(demo_data(), changes), source="FP-2025-14847.yml")
    assert str(error.value) == f"FP-2025-14847.yml: {expected}"


@pytest.mark.parametrize(
    "changes",
    [
        {"urgency": "routine", "notify": DELETE},
        {"urgency": "emergency", "notify": DELETE},
        {"reload": DELETE},
        {"reload.command": DELETE, "reload.signal": "SIGHUP", "reload.pid_file": "/run/fpdemo/fpdemo.pid"},
        {"class": "restart"},
        {"rollback.to": "7.0.27"},
        {"artifact.path": DELETE, "artifact.url": "https://example.com/fpdemo-7.0.28.tar.gz"},
        {"artifact.signature": "fpdemo-7.0.28.tar.gz.sig", "artifact.signer": "release@fleetpatch.example"},
        {"monitoring.probes[1]": {"type": "command", "command": ["/bin/true"], "expect_rc": 0}},
        {"detected_at": "2025-12-18T10:30:00.5+01:00"},
        {"fixed_version": "8.0.17"},
        {"advisory": {"ecosystem": "Debian", "package": "fpdemo-server", "purl": "pkg:deb/debian/fpdemo-server",
                      "url": "https://example.com/advisories/FP-2025-14847"}},
    ],
)
def test_valid_variants(changes):
    validate_manifest(changed(demo_data(), changes))


def test_every_problem_is_reported_sorted_by_field():
    data = changed(demo_data(), {
        "owner": "me", "class": "reboot", "artifact.sha256": "abc", "notify": DELETE, "monitoring.soak": "5x",
        "monitoring.probes[0].url": DELETE, "fixed_version": "7.0.27", "id": DELETE, "advisories[0]": "CVE-1",
    })
    with pytest.raises(ManifestError) as error:
        validate_manifest(data, source="FP-2025-14847.yml")
    assert str(error.value).splitlines() == [
        "FP-2025-14847.yml: advisories[0]: 'CVE-1' does not match '^CVE-[0-9]{4}-[0-9]{4,}$'",
        "FP-2025-14847.yml: artifact.sha256: 'abc' does not match '^[0-9a-f]{64}$'",
        f"FP-2025-14847.yml: class: 'reboot' {NOT_HOT}",
        f"FP-2025-14847.yml: fixed_version: '7.0.27' lies inside affected '{AFFECTED}': the fix would itself be affected",
        "FP-2025-14847.yml: id: required field missing",
        "FP-2025-14847.yml: monitoring.probes[0].url: required field missing",
        f"FP-2025-14847.yml: monitoring.soak: '5x' {NOT_DURATION}",
        "FP-2025-14847.yml: notify: required when urgency is 'urgent', with lead_time: how long before the change the customers are told",
        "FP-2025-14847.yml: owner: unknown field (value 'me')",
    ]
    assert error.value.errors[0] == ("advisories[0]", "'CVE-1' does not match '^CVE-[0-9]{4}-[0-9]{4,}$'")
    assert error.value.source == "FP-2025-14847.yml"


def test_list_indices_sort_by_number():
    probes = [{"type": "tcp", "port": 8080, "name": f"port {index}"} for index in range(11)]
    probes[2]["port"] = 0
    probes[10]["port"] = 0
    with pytest.raises(ManifestError) as error:
        validate_manifest(changed(demo_data(), {"monitoring.probes": probes}), source="m.yml")
    assert str(error.value).splitlines() == [
        "m.yml: monitoring.probes[2].port: 0 is less than 1",
        "m.yml: monitoring.probes[10].port: 0 is less than 1",
    ]


def test_long_values_are_cut_in_messages():
    with pytest.raises(ManifestError) as error:
        validate_manifest(changed(demo_data(), {"id": "FP-" + "x" * 200}), source="m.yml")
    assert str(error.value) == "m.yml: id: 'FP-" + "x" * 72 + "...' does not match '^FP-[0-9]{4}-[0-9]{4,}$'"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (["id"], "<manifest>: expected a mapping of fields, got list ['id']"),
        (None, "<manifest>: expected a mapping of fields, got NoneType None"),
        ("FP-2025-14847", "<manifest>: expected a mapping of fields, got str 'FP-2025-14847'"),
    ],
)
def test_not_a_mapping(data, expected):
    with pytest.raises(ManifestError) as error:
        validate_manifest(data)
    assert str(error.value) == expected


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_relative_paths_are_resolved_against_the_manifest_directory(tmp_path):
    data = changed(demo_data(), {"artifact.path": "art/fpdemo.tar.gz", "artifact.signature": "../sigs/fpdemo.sig", "artifact.signer": "r@x"})
    manifest = load_manifest(_write(tmp_path / "records" / "FP-2025-14847.yml", data))
    assert manifest["artifact"]["path"] == str(tmp_path / "records" / "art" / "fpdemo.tar.gz")
    assert manifest["artifact"]["signature"] == str(tmp_path / "sigs" / "fpdemo.sig")


def test_absolute_artifact_path_is_kept(tmp_path):
    data = changed(demo_data(), {"artifact.path": "/srv/patches/fpdemo-7.0.28.tar.gz"})
    assert load_manifest(_write(tmp_path / "m.yml", data))["artifact"]["path"] == "/srv/patches/fpdemo-7.0.28.tar.gz"


def test_in_memory_relative_path_uses_base_dir():
    assert validate_manifest(demo_data(), base_dir="/srv/patches/records")["artifact"]["path"] == "/srv/patches/.build/artifacts/fpdemo-7.0.28.tar.gz"


def test_file_errors_name_the_file(tmp_path):
    data = changed(demo_data(), {"class": "reboot"})
    with pytest.raises(ManifestError) as error:
        load_manifest(_write(tmp_path / "FP-2025-00001.yml", data))
    assert str(error.value) == f"FP-2025-00001.yml: class: 'reboot' {NOT_HOT}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: [FP\n", "m.yml: not valid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("id: FP-2025-14847\nid: FP-2025-14848\n", "m.yml: not valid YAML: line 2, column 1: duplicate key 'id'"),
        ("- id\n", "m.yml: expected a mapping of fields, got list ['id']"),
        ("", "m.yml: expected a mapping of fields, got NoneType None"),
    ],
)
def test_unreadable_files(tmp_path, text, expected):
    path = tmp_path / "m.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert str(error.value) == expected


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError) as error:
        load_manifest(tmp_path / "FP-2025-99999.yml")
    assert str(error.value) == f"FP-2025-99999.yml: cannot read {tmp_path / 'FP-2025-99999.yml'}: No such file or directory"


def test_not_utf8(tmp_path):
    path = tmp_path / "m.yml"
    path.write_bytes(b"id: \xff\n")
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert str(error.value) == "m.yml: not UTF-8 text: invalid start byte at byte 4"


def test_unquoted_timestamp_stays_a_string(tmp_path):
    text = DEMO.read_text(encoding="utf-8").replace('detected_at: "2025-12-18T09:30:00Z"', "detected_at: 2025-12-18T09:30:00Z")
    assert "detected_at: 2025-12-18T09:30:00Z" in text
    path = tmp_path / "FP-2025-14847.yml"
    path.write_text(text, encoding="utf-8")
    assert load_manifest(path)["detected_at"] == "2025-12-18T09:30:00Z"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("30s", 30), ("5m", 300), ("15h", 54000), ("2d", 172800), ("1h30m", 5400), ("1d2h3m4s", 93784), ("90m", 5400)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "shown"),
    [("", "''"), ("5", "'5'"), ("1m1h", "'1m1h'"), ("5 m", "'5 m'"), ("-5m", "'-5m'"), ("1.5h", "'1.5h'"), ("2w", "'2w'"),
     ("h", "'h'"), (300, "300"), (None, "None")],
)
def test_parse_duration_rejects(value, shown):
    with pytest.raises(ValueError) as error:
        parse_duration(value)
    assert str(error.value) == f"{shown} {NOT_DURATION}"


def _readme_fields(text):
    match = re.search(r"<!-- BEGIN fields:[^\n]*-->\n(.*?)<!-- END fields -->", text, re.S)
    assert match, "manifests/README.md has no generated fields section"
    return match


def test_readme_field_table_matches_the_schema():
    text = README.read_text(encoding="utf-8")
    match = _readme_fields(text)
    if os.environ.get("FLEETPATCH_UPDATE_DOCS") == "1":
        README.write_text(text[:match.start(1)] + field_reference() + "\n" + text[match.end(1):], encoding="utf-8")
        text = README.read_text(encoding="utf-8")
        match = _readme_fields(text)
    assert match.group(1).strip() == field_reference().strip(), "run the tests with FLEETPATCH_UPDATE_DOCS=1 to regenerate"


def test_field_reference_lists_every_field():
    listed = re.findall(r"^\| `([^`]+)` \|", field_reference(), re.M)
    assert listed[:3] == ["id", "title", "advisories"]
    assert set(SCHEMA["properties"]) <= set(listed)
    assert {"artifact.sha256", "monitoring.probes[].url", "notify.lead_time", "reload.restart_command"} <= set(listed)


def test_without_jsonschema_the_module_loads_and_says_what_is_missing():
    """ansible-doc and the other plugins must load on a controller without jsonschema; checking a manifest says why not."""
    code = (
        "import sys\n"
        "sys.modules['jsonschema'] = None\n"
        f"sys.path.insert(0, {str(ansible_env.collections_dir())!r})\n"
        "from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, validate_manifest\n"
        "try:\n"
        "    validate_manifest({'id': 'FP-2025-14847'}, source='m.yml')\n"
        "except ManifestError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == (
        "m.yml: cannot check the manifest: the Python library jsonschema is missing on the controller (pip install 'jsonschema>=4.18')\n"
    )


@pytest.mark.parametrize(
    ("changes", "operation", "expected"),
    [
        ({}, "apply", {
            "patch_id": "FP-2025-14847", "component": "fpdemo", "patch_class": "hot",
            "reload_command": ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "reload"],
            "restart_command": ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "restart"],
            "install_dir": "/srv/fpdemo", "version_url": "http://127.0.0.1:8080/version", "version": "7.0.28",
            "artifact_sha256": "15cfc8added145376d53f61b7af502d30e332d4d0ab9a6a01b3b33eef164208c",
            "compatible_with": ">=7.0.26,<7.1",
        }),
        ({"reload.command": DELETE, "reload.signal": "HUP", "reload.pid_file": "/run/fpdemo/fpdemo.pid"}, "rollback", {
            "patch_id": "FP-2025-14847", "component": "fpdemo", "patch_class": "hot", "reload_signal": "HUP",
            "pid_file": "/run/fpdemo/fpdemo.pid", "restart_command": ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "restart"],
            "install_dir": "/srv/fpdemo", "version_url": "http://127.0.0.1:8080/version", "from_version": "7.0.28",
        }),
        ({"monitoring.thresholds": {"max_p95_ms": 100}, "monitoring.interval": DELETE}, "health", {
            "probes": [
                {"name": "health", "type": "http", "url": "http://127.0.0.1:8080/health", "expect_status": 200,
                 "expect_body": '"status": "ok"', "timeout": 5},
                {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": 8080},
                {"name": "leak-gone", "type": "command", "command": ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "check-leak"],
                 "vulnerability": True},
            ],
            "soak": 300, "samples": 10, "consecutive_failures": 3, "thresholds": {"max_p95_ms": 100},
        }),
        ({"artifact.path": DELETE, "artifact.url": "https://example.com/a.tar.gz"}, "apply", {"artifact_url": "https://example.com/a.tar.gz"}),
    ],
)
def test_module_args_from_a_manifest(changes, operation, expected):
    args = module_args(validate_manifest(changed(demo_data(), changes)), operation)
    if "artifact_url" in expected:
        assert args["artifact_url"] == expected["artifact_url"] and "artifact" not in args
    else:
        args.pop("artifact", None)
        assert args == expected


def test_task_args_fill_in_under_the_task():
    assert task_args({"component": "x"}, "apply") == {"component": "x"}
    filled = task_args({"manifest": str(DEMO), "confirm_timeout": 5, "component": "other"}, "rollback")
    assert filled["component"] == "other" and filled["confirm_timeout"] == 5 and filled["patch_id"] == "FP-2025-14847"
    assert "manifest" not in filled


@pytest.mark.parametrize(("judge", "monitoring"), [(True, True), ("yes", True), (False, False), (None, False)])
def test_an_apply_that_judges_takes_the_monitoring_section_too(judge, monitoring):
    args = {"manifest": str(DEMO), "soak": 0, **({} if judge is None else {"judge": judge})}
    filled = task_args(args, "apply")
    assert filled["version"] == "7.0.28" and filled["soak"] == 0  # the task's soak wins over the manifest's 300
    expected = {key: value for key, value in health_args(load_manifest(DEMO)).items() if key != "soak"} if monitoring else {}
    assert {key: filled[key] for key in ("probes", "interval", "samples", "consecutive_failures", "thresholds") if key in filled} == expected
    assert "probes" not in task_args({"manifest": str(DEMO), "judge": True}, "rollback")  # only an apply judges


HTTP_PROBE = {"name": "health", "type": "http", "url": "http://127.0.0.1:8080/health"}


@pytest.mark.parametrize(("monitoring", "expected"), [
    # only what is given: no soak, interval, samples or thresholds key when the manifest has none
    ({"probes": [HTTP_PROBE]}, {"probes": [HTTP_PROBE]}),
    # durations go as seconds; the text forms (soak, interval, timeout) never reach the module
    ({"probes": [dict(HTTP_PROBE, timeout="5s", timeout_seconds=5)], "soak": "5m", "soak_seconds": 300, "interval": "2s",
      "interval_seconds": 2, "samples": 3, "thresholds": {"max_p95_ms": 250}},
     {"probes": [dict(HTTP_PROBE, timeout=5)], "soak": 300, "interval": 2, "samples": 3, "thresholds": {"max_p95_ms": 250}}),
    # a probe without a timeout gets none (the module's default applies); the others keep every field
    ({"probes": [{"type": "tcp", "port": 8080, "timeout": "1m30s", "timeout_seconds": 90},
                 {"type": "command", "command": ["true"], "expect_rc": 0, "samples": 1, "vulnerability": True}], "soak_seconds": 0},
     {"probes": [{"type": "tcp", "port": 8080, "timeout": 90},
                 {"type": "command", "command": ["true"], "expect_rc": 0, "samples": 1, "vulnerability": True}], "soak": 0}),
    # an empty thresholds mapping is passed on (not None), a zero samples too
    ({"probes": [HTTP_PROBE], "thresholds": {}, "samples": 0}, {"probes": [HTTP_PROBE], "samples": 0, "thresholds": {}}),
    # consecutive_failures goes as it is
    ({"probes": [HTTP_PROBE], "consecutive_failures": 1}, {"probes": [HTTP_PROBE], "consecutive_failures": 1}),
])
def test_health_args(monitoring, expected):
    manifest = {"id": "FP-2025-14847", "monitoring": monitoring}
    before = copy.deepcopy(manifest)
    assert health_args(manifest) == expected
    assert manifest == before  # the manifest itself is left as it was


def test_health_args_of_the_demo_manifest():
    assert health_args(load_manifest(DEMO)) == {
        "probes": [
            {"name": "health", "type": "http", "url": "http://127.0.0.1:8080/health", "expect_status": 200, "expect_body": '"status": "ok"', "timeout": 5},
            {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": 8080},
            {"name": "leak-gone", "type": "command", "command": ["/usr/bin/python3", "/srv/fpdemo/bin/fpdemoctl.py", "check-leak"], "vulnerability": True},
        ],
        "soak": 300, "interval": 5, "samples": 10, "consecutive_failures": 3,
        "thresholds": {"max_error_rate": 0, "max_p95_ms": 250, "baseline_p95_factor": 5, "peers_p95_factor": 5, "latency_floor_ms": 20},
    }


def _property_names(schema):
    """Every property name a JSON Schema declares, at any depth."""
    names = set()
    if isinstance(schema, dict):
        names.update(schema.get("properties", {}))
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


def test_the_lookup_key_of_the_file_clashes_with_nothing_the_record_meets():
    """The manifest lookup adds manifest_file to the record: no manifest field, nothing the planner's, the
    pre-notification's or an audit record's formats name, and no key the audit callback keeps of a task result."""
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._schema import load_schema

    assert MANIFEST_FILE_KEY == "manifest_file"
    schemas = [SCHEMA] + [load_schema(name) for name in ("plan.schema.json", "notifications.schema.json")]
    assert all(MANIFEST_FILE_KEY not in _property_names(schema) for schema in schemas)
    record = _audit.make_record("task", "run", {"actors": {}}, host="h")
    assert MANIFEST_FILE_KEY not in set(record) | set(_audit.ACTOR_VARS) | set(_audit.CONTEXT_VARS)
    with pytest.raises(ManifestError) as error:  # so no manifest file can carry it
        validate_manifest({**demo_data(), MANIFEST_FILE_KEY: "/elsewhere.yml"}, source="m.yml")
    assert MANIFEST_FILE_KEY in str(error.value)


def test_a_record_with_its_file_still_plans_and_checks_its_artifact(tmp_path):
    """What the manifest lookup returns goes where the filter's output goes: the planner and the artifact check."""
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import manifest_artifact
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import plan_waves

    built = artifacts.build("7.0.28", tmp_path)
    record = validate_manifest(changed(demo_data(), {"artifact.path": str(built.path), "artifact.sha256": built.sha256}))
    record[MANIFEST_FILE_KEY] = str(DEMO)
    plan = plan_waves({"a": {"region": "r", "version": "7.0.26"}}, record, policy={"canary": {"count": 0}}, now="2026-03-03T01:30:00Z")
    assert [[entry["host"] for entry in wave["hosts"]] for wave in plan["waves"]] == [["a"]]
    assert manifest_artifact(record) == {"checked": True, "sha256": built.sha256, "size": built.path.stat().st_size, "signed_by": None}
