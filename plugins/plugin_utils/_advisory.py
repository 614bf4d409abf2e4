# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The advisory of a patch, from its change record: OSV JSON, CSAF 2.0 JSON, and a notice for self-hosted users.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Every document is checked before it is handed on, and a problem is an :class:`AdvisoryError` naming each field:

* CSAF 2.0 against the official OASIS JSON Schema (draft 2020-12, with the FIRST CVSS schemas it references) as
  the PyPI package ``csaf`` ships it (found on the path, never imported: importing it configures logging);
* OSV against each requirement the OSV specification states for the fields written here (:func:`osv_problems`):
  no well-kept package ships the OSV schema (PyPI ``osv`` is archived), so the rules are tested one by one.

The versions to upgrade to come from the affected range: each alternative (``>=7.0.0,<7.0.28``) is one affected
line, fixed by its upper bound (``<7.0.28``: 7.0.28), or by the manifest's ``fixed_version`` when the line has no
exclusive upper bound and the fixed version lies above it.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange

__all__ = [
    "AdvisoryError", "OSV_SCHEMA_VERSION", "affected_lines", "csaf_document", "csaf_problems", "document", "osv_problems", "osv_record",
    "upgrade_notice",
]

OSV_SCHEMA_VERSION = "1.6.0"
CVE_URL = "https://www.cve.org/CVERecord?id={}"
_COMPARATOR = re.compile(r"\s*(?P<op>==|!=|<=|>=|<|>|=)?\s*(?P<version>[^\s,<>=!|]+)\s*,?")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$")
_OSV_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*-[A-Za-z0-9._:-]+$")
_OSV_RANGE_TYPES = ("GIT", "SEMVER", "ECOSYSTEM")
_OSV_EVENTS = ("introduced", "fixed", "last_affected", "limit")
_OSV_REFERENCE_TYPES = ("ADVISORY", "ARTICLE", "DETECTION", "DISCUSSION", "REPORT", "FIX", "INTRODUCED", "GIT", "PACKAGE", "EVIDENCE", "WEB")
_PUBLISHER_CATEGORIES = ("coordinator", "discoverer", "other", "translator", "user", "vendor")


class AdvisoryError(ValueError):
    """An advisory cannot be made, or is not valid; the message names each field and value."""


def _now(now):
    return now or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_manifest(manifest):
    if not isinstance(manifest, Mapping):
        raise AdvisoryError(f"manifest: expected the change record of fleetpatch.rollout.manifest, got {type(manifest).__name__}")
    needed = ("id", "title", "advisories", "severity", "component", "affected", "fixed_version", "changelog")
    missing = [key for key in needed if not manifest.get(key)]
    if missing:
        raise AdvisoryError(f"manifest: expected the change record of fleetpatch.rollout.manifest, it lacks {', '.join(missing)}")
    return manifest


def _comparators(alternative, text):
    found, position = [], 0
    alternative = alternative.strip()
    while position < len(alternative):
        match = _COMPARATOR.match(alternative, position)
        if not match or match.end() == position:
            raise AdvisoryError(f"affected: {text!r}: {alternative[position:]!r} is not a comparator such as >=7.0.0")
        found.append((match.group("op") or "==", match.group("version")))
        position = match.end()
    return found


def affected_lines(manifest):
    """One mapping per alternative of the affected range: ``range`` (its text), ``comparators`` ([op, version]),
    ``upgrade_to`` (the first fixed version of that line, or None) and ``vers`` (the range as a ``vers:generic`` URI).
    """
    _check_manifest(manifest)
    text, fixed = manifest["affected"], manifest["fixed_version"]
    try:
        VersionRange(text)
        fixed_version = Version(fixed)
    except VersionError as exc:
        raise AdvisoryError(f"affected: {exc}") from None
    lines = []
    for alternative in text.split("||"):
        comparators = _comparators(alternative, text)
        uppers = [version for op, version in comparators if op == "<"]
        bounded = [Version(version) for op, version in comparators if op in ("<", "<=", "==", "=")]
        if uppers:
            upgrade = min(uppers, key=Version)
        elif bounded and fixed_version > max(bounded):
            upgrade = fixed
        else:
            upgrade = None
        order = {">": 0, ">=": 0, "==": 1, "=": 1, "!=": 1, "<=": 2, "<": 2}
        constraints = sorted(comparators, key=lambda pair: (Version(pair[1]), order[pair[0]]))
        vers = "vers:generic/" + "|".join(("" if op in ("==", "=") else op) + version for op, version in constraints)
        lines.append({"range": alternative.strip(), "comparators": [list(pair) for pair in comparators], "upgrade_to": upgrade, "vers": vers})
    return lines


def _osv_events(line, text):
    events, introduced = [], None
    for op, version in line["comparators"]:
        if op in (">", "!="):
            raise AdvisoryError(f"affected: {text!r}: {op}{version} has no OSV form (an OSV range starts at an included version "
                                "and excludes none inside it); write the range with >= and < bounds")
        if op == ">=":
            introduced = version
    events.append({"introduced": introduced or "0"})
    for op, version in line["comparators"]:
        if op == "<":
            events.append({"fixed": version})
        elif op == "<=":
            events.append({"last_affected": version})
    return events


def osv_record(manifest, now=None):
    """The OSV record of the patch's vulnerability (schema :data:`OSV_SCHEMA_VERSION`), checked by :func:`osv_problems`.

    ``manifest.advisory.ecosystem`` (with ``package`` and ``purl``) names the affected package; without it
    ``affected[].package`` is left out (the component is in ``affected[].database_specific``).
    """
    _check_manifest(manifest)
    now = _now(now)
    text = manifest["affected"]
    extra = manifest.get("advisory") or {}
    ranges, versions = [], []
    for line in affected_lines(manifest):
        if all(op in ("==", "=") for op, _version in line["comparators"]):
            versions.extend(version for _op, version in line["comparators"])
            continue
        events = _osv_events(line, text)
        bounds = [value for event in events for value in event.values() if value != "0"]
        kind = "SEMVER" if all(_SEMVER.match(value) for value in bounds) else "ECOSYSTEM"
        if kind == "ECOSYSTEM" and not extra.get("ecosystem"):
            raise AdvisoryError(f"affected: {text!r}: {', '.join(bounds)} are not all SemVer versions; an OSV range of other "
                                "versions needs the package's ecosystem (advisory.ecosystem in the manifest)")
        ranges.append({"type": kind, "events": events})
    affected = {"ranges": ranges} if ranges else {}
    if versions:
        affected["versions"] = versions
    if extra.get("ecosystem"):
        package = {"ecosystem": extra["ecosystem"], "name": extra.get("package") or manifest["component"]}
        if extra.get("purl"):
            package["purl"] = extra["purl"]
        affected = {"package": package, **affected}
    affected["database_specific"] = {"component": manifest["component"], "affected": text, "fixed_version": manifest["fixed_version"]}
    references = [{"type": "ADVISORY", "url": CVE_URL.format(cve)} for cve in manifest["advisories"]]
    if extra.get("url"):
        references.insert(0, {"type": "ADVISORY", "url": extra["url"]})
    record = {
        "schema_version": OSV_SCHEMA_VERSION, "id": manifest["id"], "modified": now, "published": now,
        "aliases": list(manifest["advisories"]), "summary": manifest["title"], "details": _details(manifest),
        "affected": [affected], "references": references,
        "database_specific": {"severity": manifest["severity"], "urgency": manifest.get("urgency"), "detected_at": manifest.get("detected_at")},
    }
    problems = osv_problems(record)
    if problems:
        raise AdvisoryError("the OSV record is not valid: " + "; ".join(problems))
    return record


def _details(manifest):
    upgrade = "; ".join(f"{line['range']}: upgrade to {line['upgrade_to']} or later" if line["upgrade_to"] else
                        f"{line['range']}: no fixed release named" for line in affected_lines(manifest))
    return f"{manifest['changelog'].strip()}\n\nAffected versions of {manifest['component']}: {manifest['affected']}. {upgrade}."


def _problems_of_events(events, where):
    problems = []
    if not isinstance(events, list) or not events:
        return [f"{where}.events: expected a non-empty list of events, got {events!r}"]
    for index, event in enumerate(events):
        if not isinstance(event, Mapping) or len(event) != 1 or next(iter(event)) not in _OSV_EVENTS:
            problems.append(f"{where}.events[{index}]: expected one of {', '.join(_OSV_EVENTS)}, got {event!r}")
        elif not isinstance(next(iter(event.values())), str) or not next(iter(event.values())):
            problems.append(f"{where}.events[{index}]: expected a version string, got {event!r}")
    kinds = [next(iter(event)) for event in events if isinstance(event, Mapping) and len(event) == 1]
    if "introduced" not in kinds:
        problems.append(f"{where}.events: needs an introduced event")
    if "fixed" in kinds and "last_affected" in kinds:
        problems.append(f"{where}.events: fixed and last_affected must not be in one range")
    return problems


def osv_problems(record):
    """Every way ``record`` breaks a requirement of the OSV specification, one message per field (empty: valid)."""
    problems = []
    if not isinstance(record, Mapping):
        return [f"(record): expected a JSON object, got {type(record).__name__}"]
    for key in ("id", "modified"):
        if key not in record:
            problems.append(f"{key}: required")
    if "id" in record and not (isinstance(record["id"], str) and _OSV_ID.match(record["id"])):
        problems.append(f"id: expected <DB>-<ENTRYID> of letters, digits, '.', '_', ':' and '-', got {record['id']!r}")
    for key in ("modified", "published", "withdrawn"):
        if key in record and not (isinstance(record[key], str) and _RFC3339_UTC.match(record[key])):
            problems.append(f"{key}: expected an RFC 3339 time in UTC ending in Z, got {record[key]!r}")
    if "schema_version" in record and not (isinstance(record["schema_version"], str) and _SEMVER.match(record["schema_version"])):
        problems.append(f"schema_version: expected a SemVer version such as 1.6.0, got {record['schema_version']!r}")
    for key in ("aliases", "related", "upstream"):
        if key in record and not (isinstance(record[key], list) and all(isinstance(item, str) and item for item in record[key])):
            problems.append(f"{key}: expected a list of identifiers, got {record[key]!r}")
    for key in ("summary", "details"):
        if key in record and not isinstance(record[key], str):
            problems.append(f"{key}: expected a string, got {record[key]!r}")
    if isinstance(record.get("summary"), str) and "\n" in record["summary"]:
        problems.append("summary: expected one line")
    for index, affected in enumerate(record.get("affected") or []):
        where = f"affected[{index}]"
        if not isinstance(affected, Mapping):
            problems.append(f"{where}: expected an object, got {affected!r}")
            continue
        package = affected.get("package")
        named = isinstance(package, Mapping) and all(isinstance(package.get(key), str) and package.get(key) for key in ("ecosystem", "name"))
        if package is not None and not named:
            problems.append(f"{where}.package: expected an object with ecosystem and name, got {package!r}")
        if not affected.get("ranges") and not affected.get("versions"):
            problems.append(f"{where}: needs ranges or versions")
        for number, entry in enumerate(affected.get("ranges") or []):
            at = f"{where}.ranges[{number}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{at}: expected an object, got {entry!r}")
                continue
            if entry.get("type") not in _OSV_RANGE_TYPES:
                problems.append(f"{at}.type: expected one of {', '.join(_OSV_RANGE_TYPES)}, got {entry.get('type')!r}")
            if entry.get("type") == "GIT" and not entry.get("repo"):
                problems.append(f"{at}.repo: required with type GIT")
            if entry.get("type") == "ECOSYSTEM" and not isinstance(package, Mapping):
                problems.append(f"{at}.type: ECOSYSTEM versions need affected[].package with its ecosystem")
            problems.extend(_problems_of_events(entry.get("events"), at))
            if entry.get("type") == "SEMVER":
                for event in entry.get("events") or []:
                    value = next(iter(event.values())) if isinstance(event, Mapping) and event else None
                    if isinstance(value, str) and value not in ("0", "") and not _SEMVER.match(value):
                        problems.append(f"{at}.events: {value!r} is not a SemVer 2.0.0 version (no leading v)")
        if "versions" in affected and not (isinstance(affected["versions"], list) and all(isinstance(v, str) for v in affected["versions"])):
            problems.append(f"{where}.versions: expected a list of version strings, got {affected['versions']!r}")
    for index, reference in enumerate(record.get("references") or []):
        if not isinstance(reference, Mapping) or reference.get("type") not in _OSV_REFERENCE_TYPES:
            problems.append(f"references[{index}].type: expected one of {', '.join(_OSV_REFERENCE_TYPES)}, got {reference!r}")
        elif not (isinstance(reference.get("url"), str) and re.match(r"^https?://\S+$", reference["url"])):
            problems.append(f"references[{index}].url: expected an http(s) URL, got {reference.get('url')!r}")
    for index, severity in enumerate(record.get("severity") or []):
        if not isinstance(severity, Mapping) or not severity.get("type") or not severity.get("score"):
            problems.append(f"severity[{index}]: expected type and score, got {severity!r}")
    return sorted(problems)


def _publisher(publisher):
    if not isinstance(publisher, Mapping):
        raise AdvisoryError(f"publisher: expected a mapping with name and namespace, got {publisher!r}")
    problems = []
    if not isinstance(publisher.get("name"), str) or not publisher.get("name", "").strip():
        problems.append(f"publisher.name: expected the publisher's name, got {publisher.get('name')!r}")
    if not (isinstance(publisher.get("namespace"), str) and re.match(r"^https?://\S+$", publisher["namespace"])):
        problems.append(f"publisher.namespace: expected the publisher's http(s) URL, such as https://example.com, got {publisher.get('namespace')!r}")
    category = publisher.get("category", "vendor")
    if category not in _PUBLISHER_CATEGORIES:
        problems.append(f"publisher.category: expected one of {', '.join(_PUBLISHER_CATEGORIES)}, got {category!r}")
    if problems:
        raise AdvisoryError("; ".join(problems))
    found = {"category": category, "name": publisher["name"].strip(), "namespace": publisher["namespace"]}
    if publisher.get("contact_details"):
        found["contact_details"] = str(publisher["contact_details"])
    return found


def csaf_document(manifest, publisher, now=None):
    """The CSAF 2.0 security advisory of the patch, checked against the official schema (:func:`csaf_problems`)."""
    _check_manifest(manifest)
    now = _now(now)
    publisher = _publisher(publisher)
    lines = affected_lines(manifest)
    component = manifest["component"]
    affected_ids = [f"CSAFPID-{component}-affected-{index}" for index in range(1, len(lines) + 1)]
    targets = sorted({line["upgrade_to"] for line in lines if line["upgrade_to"]}, key=Version)
    fixed_ids = {version: f"CSAFPID-{component}-{version}" for version in targets}
    branches = [{"category": "product_version_range", "name": line["vers"],
                 "product": {"name": f"{publisher['name']} {component} {line['range']}", "product_id": product_id}}
                for line, product_id in zip(lines, affected_ids)]
    branches += [{"category": "product_version", "name": version,
                  "product": {"name": f"{publisher['name']} {component} {version}", "product_id": product_id}}
                 for version, product_id in fixed_ids.items()]
    upgrade = "; ".join(f"{line['range']}: upgrade to {line['upgrade_to']} or later" if line["upgrade_to"] else
                        f"{line['range']}: no fixed release is named yet" for line in lines)
    references = [{"category": "external", "summary": cve, "url": CVE_URL.format(cve)} for cve in manifest["advisories"]]
    if (manifest.get("advisory") or {}).get("url"):
        references.insert(0, {"category": "self", "summary": f"{manifest['id']} advisory", "url": manifest["advisory"]["url"]})
    vulnerabilities = []
    for cve in manifest["advisories"]:
        vulnerability = {
            "cve": cve, "title": manifest["title"],
            "notes": [{"category": "description", "title": "What changed", "text": manifest["changelog"].strip()}],
            "product_status": {"known_affected": affected_ids, **({"fixed": list(fixed_ids.values())} if fixed_ids else {})},
            "remediations": [{"category": "vendor_fix", "details": upgrade, "product_ids": affected_ids}],
            "threats": [{"category": "impact", "details": f"severity {manifest['severity']}", "product_ids": affected_ids}],
        }
        if manifest.get("detected_at"):
            vulnerability["discovery_date"] = manifest["detected_at"]
        vulnerabilities.append(vulnerability)
    notes = [{"category": "summary", "title": "Summary", "text": manifest["title"]},
             {"category": "details", "title": "Affected versions and the versions to upgrade to",
              "text": f"{component} {manifest['affected']} is affected. {upgrade}."}]
    if isinstance(manifest.get("risk"), Mapping) and manifest["risk"].get("text"):
        notes.append({"category": "general", "title": f"Risk of the upgrade ({manifest['risk'].get('level', '-')})",
                      "text": manifest["risk"]["text"].strip()})
    document = {
        "document": {
            "category": "csaf_security_advisory", "csaf_version": "2.0", "lang": "en",
            "title": f"{manifest['id']}: {manifest['title']}", "publisher": publisher,
            "aggregate_severity": {"text": manifest["severity"]},
            "distribution": {"tlp": {"label": "WHITE"}},
            "notes": notes, "references": references,
            "tracking": {
                "id": manifest["id"], "status": "final", "version": "1",
                "initial_release_date": now, "current_release_date": now,
                "revision_history": [{"number": "1", "date": now, "summary": "Initial release."}],
                "generator": {"engine": {"name": "fleetpatch.rollout"}, "date": now},
            },
        },
        "product_tree": {"branches": [{"category": "vendor", "name": publisher["name"], "branches": [
            {"category": "product_name", "name": component, "branches": branches}]}]},
        "vulnerabilities": vulnerabilities,
    }
    problems = csaf_problems(document)
    if problems:
        raise AdvisoryError("the CSAF document is not valid: " + "; ".join(problems))
    return document


def _csaf_schema_dir():
    spec = importlib.util.find_spec("csaf")
    if spec is None or not spec.submodule_search_locations:
        raise AdvisoryError("the CSAF 2.0 schema is needed to check the advisory: install the Python package csaf on the controller "
                            "(requirements.txt)")
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, "csaf", "v20", "schema")
        if os.path.isfile(os.path.join(candidate, "csaf.json")):
            return candidate
    raise AdvisoryError(f"the csaf package at {', '.join(spec.submodule_search_locations)} holds no csaf/v20/schema/csaf.json")


def csaf_problems(document):
    """Every way ``document`` breaks the official CSAF 2.0 JSON Schema, one message per place (empty: valid)."""
    import jsonschema  # pylint: disable=import-outside-toplevel  # controller requirement, needed only here
    from referencing import Registry, Resource  # pylint: disable=import-outside-toplevel

    directory = _csaf_schema_dir()
    with open(os.path.join(directory, "csaf.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    resources = []
    for name in ("cvss-v2.0.json", "cvss-v3.0.json", "cvss-v3.1.json"):
        with open(os.path.join(directory, "referenced", name), encoding="utf-8") as handle:
            referenced = json.load(handle)
        resources.append((f"https://www.first.org/cvss/{name}", Resource.from_contents(referenced, default_specification=_draft(referenced))))
    validator = jsonschema.Draft202012Validator(schema, registry=Registry().with_resources(resources),
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return sorted(f"{'/'.join(str(part) for part in error.absolute_path) or '(document)'}: {error.message}"
                  for error in validator.iter_errors(document))


def _draft(contents):
    from referencing.jsonschema import specification_with  # pylint: disable=import-outside-toplevel

    return specification_with(contents.get("$schema", "https://json-schema.org/draft/2020-12/schema"))


def upgrade_notice(manifest, now=None):
    """A notice for self-hosted users, in Markdown: who is affected, which versions to upgrade to, what changed."""
    _check_manifest(manifest)
    now = _now(now)
    lines = affected_lines(manifest)
    rows = "\n".join(f"| `{line['range']}` | " + (f"**{line['upgrade_to']}** or later |" if line["upgrade_to"] else "no fixed release yet |")
                     for line in lines)
    cves = ", ".join(f"[{cve}]({CVE_URL.format(cve)})" for cve in manifest["advisories"])
    risk = manifest.get("risk") if isinstance(manifest.get("risk"), Mapping) else {}
    parts = [
        f"# {manifest['id']}: {manifest['title']}",
        "",
        f"Advisories: {cves}. Severity: {manifest['severity']}. Published {now}.",
        "",
        "## Are you affected?",
        "",
        f"You are if you run {manifest['component']} yourself at a version in `{manifest['affected']}`.",
        "",
        "## What to do: upgrade",
        "",
        "| you run | upgrade to |",
        "| --- | --- |",
        rows,
        "",
        "## What changed",
        "",
        manifest["changelog"].strip(),
    ]
    if risk.get("text"):
        parts += ["", f"## Risk of the upgrade ({risk.get('level', '-')})", "", risk["text"].strip()]
    return "\n".join(parts) + "\n"


def document(manifest, form, publisher=None, now=None):
    """One advisory document: ``osv`` (a mapping), ``csaf`` (a mapping; needs ``publisher``) or ``notice`` (Markdown text)."""
    if form == "osv":
        return osv_record(manifest, now)
    if form == "csaf":
        return csaf_document(manifest, publisher, now)
    if form == "notice":
        return upgrade_notice(manifest, now)
    raise AdvisoryError(f"format: expected osv, csaf or notice, got {form!r}")
