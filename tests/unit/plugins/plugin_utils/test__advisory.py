"""The advisory: OSV JSON tested field by field against the OSV specification's requirements (no well-kept package
ships its schema), CSAF 2.0 JSON against the official OASIS schema the PyPI package csaf ships, and the notice."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._advisory import (
    OSV_SCHEMA_VERSION, AdvisoryError, affected_lines, csaf_document, csaf_problems, document, osv_problems, osv_record, upgrade_notice,
)

REPO = Path(__file__).resolve().parents[4]
NOW = "2026-12-02T10:00:00Z"
PUBLISHER = {"name": "Example Corp", "namespace": "https://example.com"}


@pytest.fixture
def manifest():
    return yaml.safe_load((REPO / "manifests" / "FP-2025-14847.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("affected", "fixed", "lines"), [
    (">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17", "7.0.28",
     [(">=7.0.0,<7.0.28", "7.0.28", "vers:generic/>=7.0.0|<7.0.28"), (">=8.0.0,<8.0.17", "8.0.17", "vers:generic/>=8.0.0|<8.0.17")]),
    ("<7.0.28", "7.0.28", [("<7.0.28", "7.0.28", "vers:generic/<7.0.28")]),
    (">=7.0.0,<=7.0.27", "7.0.28", [(">=7.0.0,<=7.0.27", "7.0.28", "vers:generic/>=7.0.0|<=7.0.27")]),
    ("==7.0.26 || 7.0.27", "7.0.28", [("==7.0.26", "7.0.28", "vers:generic/7.0.26"), ("7.0.27", "7.0.28", "vers:generic/7.0.27")]),
    (">=9.0.0", "7.0.28", [(">=9.0.0", None, "vers:generic/>=9.0.0")]),
    ("<7.0.28,>=7.0.0", "7.0.28", [("<7.0.28,>=7.0.0", "7.0.28", "vers:generic/>=7.0.0|<7.0.28")]),
])
def test_affected_lines_and_the_versions_to_upgrade_to(manifest, affected, fixed, lines):
    manifest.update(affected=affected, fixed_version=fixed)
    assert [(line["range"], line["upgrade_to"], line["vers"]) for line in affected_lines(manifest)] == lines


def test_osv_record_of_the_demo_manifest(manifest):
    record = osv_record(manifest, NOW)
    assert osv_problems(record) == []
    assert (record["schema_version"], record["id"], record["modified"], record["published"], record["aliases"]) == (
        OSV_SCHEMA_VERSION, "FP-2025-14847", NOW, NOW, ["CVE-2025-14847"])
    assert record["summary"] == manifest["title"]
    (affected,) = record["affected"]
    assert "package" not in affected  # no OSV ecosystem named: the package is left out, not made up
    assert affected["ranges"] == [{"type": "SEMVER", "events": [{"introduced": "7.0.0"}, {"fixed": "7.0.28"}]},
                                  {"type": "SEMVER", "events": [{"introduced": "8.0.0"}, {"fixed": "8.0.17"}]}]
    assert affected["database_specific"] == {"component": "fpdemo", "affected": manifest["affected"], "fixed_version": "7.0.28"}
    assert record["references"] == [{"type": "ADVISORY", "url": "https://www.cve.org/CVERecord?id=CVE-2025-14847"}]
    assert "7.0.28" in record["details"] and "8.0.17" in record["details"]
    json.dumps(record)


def test_osv_record_with_the_package_named(manifest):
    manifest["advisory"] = {"ecosystem": "Debian", "package": "fpdemo-server", "purl": "pkg:deb/debian/fpdemo-server",
                            "url": "https://example.com/advisories/FP-2025-14847"}
    manifest.update(affected="<=7.0.27 || ==8.0.16", fixed_version="7.0.28")
    record = osv_record(manifest, NOW)
    assert record["affected"][0]["package"] == {"ecosystem": "Debian", "name": "fpdemo-server", "purl": "pkg:deb/debian/fpdemo-server"}
    assert record["affected"][0]["ranges"] == [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "7.0.27"}]}]
    assert record["affected"][0]["versions"] == ["8.0.16"]
    assert record["references"][0] == {"type": "ADVISORY", "url": "https://example.com/advisories/FP-2025-14847"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"affected": ">7.0.0,<7.0.28"}, "affected: '>7.0.0,<7.0.28': >7.0.0 has no OSV form"),
    ({"affected": ">=7.0.0,!=7.0.5,<7.0.28"}, "affected: '>=7.0.0,!=7.0.5,<7.0.28': !=7.0.5 has no OSV form"),
    ({"affected": ">=7.0,<7.0.28"}, "affected: '>=7.0,<7.0.28': 7.0, 7.0.28 are not all SemVer versions; an OSV range of other versions needs"),
])
def test_a_range_osv_cannot_say_is_refused_naming_it(manifest, changes, message):
    manifest.update(changes)
    with pytest.raises(AdvisoryError) as caught:
        osv_record(manifest, NOW)
    assert str(caught.value).startswith(message)


def test_a_range_of_other_versions_is_an_ecosystem_range_when_the_ecosystem_is_named(manifest):
    manifest.update(affected=">=7.0,<7.0.28", advisory={"ecosystem": "Debian"})
    assert osv_record(manifest, NOW)["affected"][0]["ranges"] == [{"type": "ECOSYSTEM", "events": [{"introduced": "7.0"}, {"fixed": "7.0.28"}]}]


VALID = {"schema_version": "1.6.0", "id": "FP-2025-14847", "modified": NOW, "published": NOW, "aliases": ["CVE-2025-14847"], "summary": "s",
         "details": "d", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                                       "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]}],
         "references": [{"type": "WEB", "url": "https://example.com/a"}], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}]}


def changed(path, value):
    record = copy.deepcopy(VALID)
    *parents, leaf = path
    target = record
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return record


@pytest.mark.parametrize(("path", "value", "problem"), [
    (["id"], KeyError, "id: required"),
    (["modified"], KeyError, "modified: required"),
    (["id"], "FP 2025", "id: expected <DB>-<ENTRYID> of letters, digits, '.', '_', ':' and '-', got 'FP 2025'"),
    (["id"], "FP2025", "id: expected <DB>-<ENTRYID> of letters, digits, '.', '_', ':' and '-', got 'FP2025'"),
    (["modified"], "2026-12-02T10:00:00+01:00", "modified: expected an RFC 3339 time in UTC ending in Z, got '2026-12-02T10:00:00+01:00'"),
    (["published"], "2026-12-02", "published: expected an RFC 3339 time in UTC ending in Z, got '2026-12-02'"),
    (["schema_version"], "1.6", "schema_version: expected a SemVer version such as 1.6.0, got '1.6'"),
    (["aliases"], "CVE-2025-14847", "aliases: expected a list of identifiers, got 'CVE-2025-14847'"),
    (["summary"], "one\ntwo", "summary: expected one line"),
    (["details"], 3, "details: expected a string, got 3"),
    (["affected", 0, "package"], {"name": "x"}, "affected[0].package: expected an object with ecosystem and name, got {'name': 'x'}"),
    (["affected", 0, "ranges"], [], "affected[0]: needs ranges or versions"),
    (["affected", 0, "ranges", 0, "type"], "SEMVERSION", "affected[0].ranges[0].type: expected one of GIT, SEMVER, ECOSYSTEM, got 'SEMVERSION'"),
    (["affected", 0, "ranges", 0, "type"], "GIT", "affected[0].ranges[0].repo: required with type GIT"),
    (["affected", 0, "ranges", 0, "events"], [], "affected[0].ranges[0].events: expected a non-empty list of events, got []"),
    (["affected", 0, "ranges", 0, "events"], [{"fixed": "1.0.0"}], "affected[0].ranges[0].events: needs an introduced event"),
    (["affected", 0, "ranges", 0, "events"], [{"introduced": "0"}, {"fixed": "1.0.0", "limit": "2.0.0"}],
     "affected[0].ranges[0].events[1]: expected one of introduced, fixed, last_affected, limit, got {'fixed': '1.0.0', 'limit': '2.0.0'}"),
    (["affected", 0, "ranges", 0, "events"], [{"introduced": "0"}, {"fixed": "1.0.0"}, {"last_affected": "0.9.0"}],
     "affected[0].ranges[0].events: fixed and last_affected must not be in one range"),
    (["affected", 0, "ranges", 0, "events"], [{"introduced": "v1.0.0"}], "affected[0].ranges[0].events: 'v1.0.0' is not a SemVer 2.0.0 version (no leading v)"),
    (["affected", 0, "ranges", 0, "events"], [{"introduced": ""}], "affected[0].ranges[0].events[0]: expected a version string, got {'introduced': ''}"),
    (["affected", 0, "versions"], [1], "affected[0].versions: expected a list of version strings, got [1]"),
    (["references", 0, "type"], "LINK", "references[0].type: expected one of ADVISORY, ARTICLE, DETECTION, DISCUSSION, REPORT, FIX, INTRODUCED, "
                                        "GIT, PACKAGE, EVIDENCE, WEB, got {'type': 'LINK', 'url': 'https://example.com/a'}"),
    (["references", 0, "url"], "example.com", "references[0].url: expected an http(s) URL, got 'example.com'"),
    (["severity", 0, "score"], "", "severity[0]: expected type and score, got {'type': 'CVSS_V3', 'score': ''}"),
])
def test_osv_problems_name_each_requirement_of_the_specification(path, value, problem):
    assert osv_problems(VALID) == []
    assert osv_problems(changed(path, value)) == [problem]


def test_osv_ecosystem_ranges_need_a_package():
    record = changed(["affected", 0, "ranges", 0, "type"], "ECOSYSTEM")
    del record["affected"][0]["package"]
    assert osv_problems(record) == ["affected[0].ranges[0].type: ECOSYSTEM versions need affected[].package with its ecosystem"]


def test_csaf_document_of_the_demo_manifest_is_valid_by_the_official_schema(manifest):
    made = csaf_document(manifest, PUBLISHER, NOW)
    assert csaf_problems(made) == []
    tracking = made["document"]["tracking"]
    assert (made["document"]["category"], made["document"]["csaf_version"], tracking["id"], tracking["status"]) == (
        "csaf_security_advisory", "2.0", "FP-2025-14847", "final")
    assert made["document"]["publisher"] == {**PUBLISHER, "category": "vendor"}
    (vulnerability,) = made["vulnerabilities"]
    assert vulnerability["cve"] == "CVE-2025-14847" and vulnerability["discovery_date"] == "2025-12-18T09:30:00Z"
    assert vulnerability["product_status"] == {"known_affected": ["CSAFPID-fpdemo-affected-1", "CSAFPID-fpdemo-affected-2"],
                                               "fixed": ["CSAFPID-fpdemo-7.0.28", "CSAFPID-fpdemo-8.0.17"]}
    product = made["product_tree"]["branches"][0]["branches"][0]
    assert [(branch["category"], branch["name"]) for branch in product["branches"]] == [
        ("product_version_range", "vers:generic/>=7.0.0|<7.0.28"), ("product_version_range", "vers:generic/>=8.0.0|<8.0.17"),
        ("product_version", "7.0.28"), ("product_version", "8.0.17")]
    assert vulnerability["remediations"][0]["details"] == ">=7.0.0,<7.0.28: upgrade to 7.0.28 or later; >=8.0.0,<8.0.17: upgrade to 8.0.17 or later"


def test_csaf_problems_come_from_the_official_schema(manifest):
    made = csaf_document(manifest, PUBLISHER, NOW)
    made["document"]["tracking"]["status"] = "published"
    del made["document"]["title"]
    made["vulnerabilities"][0]["cve"] = "CVE-25-1"
    made["vulnerabilities"][0]["product_status"]["known_affected"] = []
    assert csaf_problems(made) == [
        "document/tracking/status: 'published' is not one of ['draft', 'final', 'interim']",
        "document: 'title' is a required property",
        "vulnerabilities/0/cve: 'CVE-25-1' does not match '^CVE-[0-9]{4}-[0-9]{4,}$'",
        "vulnerabilities/0/product_status/known_affected: [] should be non-empty",
    ]


@pytest.mark.parametrize(("publisher", "message"), [
    ("Example", "publisher: expected a mapping with name and namespace, got 'Example'"),
    ({"name": "", "namespace": "https://example.com"}, "publisher.name: expected the publisher's name, got ''"),
    ({"name": "E", "namespace": "example.com"}, "publisher.namespace: expected the publisher's http(s) URL, such as https://example.com, got 'example.com'"),
    ({"name": "E", "namespace": "https://e.com", "category": "seller"},
     "publisher.category: expected one of coordinator, discoverer, other, translator, user, vendor, got 'seller'"),
])
def test_a_bad_publisher_is_named(manifest, publisher, message):
    with pytest.raises(AdvisoryError) as caught:
        csaf_document(manifest, publisher, NOW)
    assert str(caught.value) == message


def test_notice_says_which_versions_to_upgrade_to(manifest):
    notice = upgrade_notice(manifest, NOW)
    assert notice.startswith("# FP-2025-14847: fpdemo: POST /v1/echo")
    assert "| `>=7.0.0,<7.0.28` | **7.0.28** or later |\n| `>=8.0.0,<8.0.17` | **8.0.17** or later |" in notice
    assert "[CVE-2025-14847](https://www.cve.org/CVERecord?id=CVE-2025-14847)" in notice and f"Published {NOW}" in notice
    assert "## Risk of the upgrade (low)" in notice


def test_document_formats(manifest):
    assert document(manifest, "osv", now=NOW) == osv_record(manifest, NOW)
    assert document(manifest, "csaf", PUBLISHER, NOW) == csaf_document(manifest, PUBLISHER, NOW)
    assert document(manifest, "notice", now=NOW) == upgrade_notice(manifest, NOW)
    with pytest.raises(AdvisoryError, match=r"^format: expected osv, csaf or notice, got 'cvrf'$"):
        document(manifest, "cvrf")
    with pytest.raises(AdvisoryError, match=r"^manifest: expected the change record of fleetpatch.rollout.manifest, it lacks title$"):
        document({**manifest, "title": ""}, "osv")
