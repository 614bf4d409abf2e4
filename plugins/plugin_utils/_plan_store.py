# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stored plans: a rollout planned once and run wave by wave as separate jobs (AWX job templates, job slicing).

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The plan file is JSON (sorted keys, indented, one newline at the end)::

    {"format": 1, "patch": "FP-2025-14847", "manifest": "/srv/patches/FP-2025-14847.yml",
     "manifest_sha256": "<sha256 of the manifest file's bytes>", "component": ..., "install_dir": ...,
     "now": "<the planning time>", "policy": {...}, "detected": {"<host>": "<version>" | null, ...},
     "plan": {<the plan, as fleetpatch.rollout.wave_plan returns it>}}

Its sha256 is the sha256 of the file's bytes, recorded in the audit trail with the plan (a ``plan`` record whose
``data.plan_sha256`` names it). A job that runs a wave of it (the rollout role's ``wave`` entry point) refuses a plan
whose sha256 no plan record of the trail holds, and one made from a manifest whose bytes have changed since. Every
record a wave job writes carries ``data.plan_sha256`` and the hosts of its slice (``data.slice``), so that the gate
after a wave (:func:`trail_gate`) counts the outcome of every slice, and of every job that ran the wave.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._gate import error_budget, plan_failures

__all__ = ["FORMAT", "PlanStoreError", "plan_document", "write_plan", "read_plan", "file_sha256", "trail_records", "recorded_plan",
           "find_wave", "slice_wave", "trail_gate"]

FORMAT = 1
NO_OUTCOME = "no job reported its outcome in the audit trail"


class PlanStoreError(ValueError):
    """A stored plan that cannot be written, read or trusted; the message names the file, the field and the value."""


def file_sha256(path, what="file"):
    """The sha256 of the bytes of the file at ``path``."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        raise PlanStoreError(f"{what} {path}: cannot be read: {exc.strerror or exc}") from None


def _host_versions(plan):
    """``{host: version or None}`` of every host the plan names (planned, excluded, deferred)."""
    versions = {}
    for wave in plan.get("waves", ()):
        for entry in wave.get("hosts", ()):
            versions[entry["host"]] = entry.get("version")
    for section in ("excluded", "deferred"):
        for entry in plan.get(section, ()):
            versions.setdefault(entry["host"], entry.get("version"))
    for entry in plan.get("failures", ()):
        versions.setdefault(entry["host"], None)
    return dict(sorted(versions.items()))


def plan_document(plan, manifest):
    """The stored form of ``plan`` (what fleetpatch.rollout.wave_plan returned) made from ``manifest`` (a checked record)."""
    if not isinstance(plan, Mapping) or not isinstance(plan.get("waves"), list):
        raise PlanStoreError(f"plan: expected the plan of fleetpatch.rollout.wave_plan, got {type(plan).__name__}")
    path = manifest.get("manifest_file") if isinstance(manifest, Mapping) else None
    if not path:
        raise PlanStoreError("manifest: expected a checked manifest record (fleetpatch.rollout.manifest) with its manifest_file")
    return {
        "format": FORMAT, "patch": plan.get("patch"), "manifest": path, "manifest_sha256": file_sha256(path, "manifest"),
        "component": manifest.get("component"), "install_dir": manifest.get("install_dir"), "now": plan.get("now"),
        "policy": plan.get("summary", {}).get("policy"), "detected": _host_versions(plan), "plan": plan,
    }


def _text(document):
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_plan(path, document, check_mode=False):
    """Write ``document`` to ``path`` atomically; ``(sha256, changed)``. An identical file is left alone."""
    data = _text(document).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.abspath(os.path.expanduser(path))
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return digest, False
    except OSError:
        pass
    if check_mode:
        return digest, True
    directory = os.path.dirname(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".plan-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise PlanStoreError(f"fleetpatch_plan_file: {path} cannot be written: {exc.strerror or exc}") from None
    return digest, True


def read_plan(path, manifest):
    """``(document, sha256)`` of the plan file at ``path``, checked against ``manifest`` (a checked record).

    Refused, naming the field and value: a file that is not a stored plan, a plan of another patch, and a manifest
    whose bytes changed since the plan was made.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise PlanStoreError(f"fleetpatch_plan_file: {path} cannot be read: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise PlanStoreError(f"fleetpatch_plan_file: {path} is not JSON: {exc}") from None
    if not isinstance(document, Mapping) or document.get("format") != FORMAT or not isinstance(document.get("plan"), Mapping) \
            or not isinstance(document["plan"].get("waves"), list):
        found = document.get("format") if isinstance(document, Mapping) else type(document).__name__
        raise PlanStoreError(f"fleetpatch_plan_file: {path} is not a stored plan of format {FORMAT} (format: {found!r})")
    if document.get("patch") != manifest.get("id"):
        raise PlanStoreError(f"fleetpatch_plan_file: {path} is the plan of patch {document.get('patch')!r}, not of the manifest's {manifest.get('id')!r}")
    now_sha = file_sha256(manifest["manifest_file"], "manifest")
    if now_sha != document.get("manifest_sha256"):
        raise PlanStoreError(
            f"fleetpatch_manifest: {manifest['manifest_file']} changed since the plan {path} was made from it "
            f"(manifest_sha256 {document.get('manifest_sha256')!r} in the plan, {now_sha!r} now): plan again")
    return document, digest


def trail_records(sink):
    """The records of the run's audit trail (``sink`` as the audit callback published it), once the trail verifies.

    A trail that does not verify (an edited, forged, deleted or reordered record) cannot vouch for a plan or an
    outcome: :class:`PlanStoreError` names its first problem.
    """
    key = _audit.read_key(sink["key_file"]) if sink.get("key_file") else None
    if sink.get("dsn"):
        from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg  # psycopg only where PostgreSQL is used

        rows, head = _audit_pg.read_trail(sink["dsn"], sink.get("trail") or _audit_pg.DEFAULT_TRAIL)
        lines = [line.encode("utf-8") for *_columns, line in rows]
        state = {"source": "head row", "seq": head[0], "hash": head[1]} if head else None
        where = _audit_pg.describe(sink["dsn"], sink.get("trail"))
        result = _audit.verify_lines(lines, key=key, head=state, path=where)
        torn = b""
    else:
        where = sink["log"]
        try:
            with open(where, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise PlanStoreError(f"the audit log {where} cannot be read: {exc.strerror or exc}") from None
        lines = data.split(b"\n")
        torn = lines.pop()
        # The head file is not checked here: another job may be between its two writes. verify does that.
        result = _audit.verify_lines(lines, key=key, head=None, path=where)
    problems = [problem for problem in result["problems"] if not (torn and problem["kind"] == "unparseable" and problem["line"] == len(lines) + 1)]
    if problems:
        raise PlanStoreError(f"the audit trail {where} does not verify, so it cannot vouch for a plan or an outcome: {problems[0]['message']}")
    records = []
    for line in lines:
        record, _reason = _audit._parse(line)  # pylint: disable=protected-access  # the one parser of a line
        records.append(record)
    return records


def recorded_plan(records, sha256):
    """The plan record of the trail that names the plan ``sha256`` (the last one), or None."""
    found = None
    for record in records:
        if record.get("event") == "plan" and (record.get("data") or {}).get("plan_sha256") == sha256 and not (record.get("data") or {}).get("check_mode"):
            found = record
    return found


def find_wave(plan, name):
    """The wave of ``plan`` named ``name``; PlanStoreError naming the waves the plan has otherwise."""
    for wave in plan["waves"]:
        if wave.get("name") == name:
            return wave
    names = ", ".join(repr(wave.get("name")) for wave in plan["waves"]) or "none"
    raise PlanStoreError(f"fleetpatch_wave: the plan has no wave {name!r} (its waves: {names})")


def slice_wave(wave, hosts):
    """``wave`` with only its hosts in ``hosts`` (a job's inventory): the job's slice of it."""
    mine = set(hosts)
    return dict(wave, hosts=[entry for entry in wave["hosts"] if entry["host"] in mine])


def trail_gate(plan, sha256, wave_name, records, budget):
    """The gate after the wave ``wave_name`` of a stored plan, from the outcomes the trail holds of every job.

    Each slice of a wave job records its gate (``gate`` record of that wave with ``data.plan_sha256``, its hosts in
    ``data.slice``, its failures in ``data.failures``); a later record of a host replaces an earlier one (a wave run
    again). The failures counted are the plan's (hosts unreachable at detection) and those of this wave and every
    wave before it; a planned host of these waves that no record covers is a failure (``unknown``). Returns the
    mapping :func:`_gate.gate` returns, plus ``missing`` (hosts no job reported) and ``jobs`` (the run ids counted).
    """
    wave = find_wave(plan, wave_name)
    through = [candidate for candidate in plan["waves"] if candidate["index"] <= wave["index"]]
    names = {candidate["name"] for candidate in through}
    reported = {name: {} for name in names}  # wave -> host -> failure record or None
    jobs = []
    for record in records:
        data = record.get("data") or {}
        if record.get("event") != "gate" or data.get("plan_sha256") != sha256 or record.get("wave") not in names or data.get("check_mode"):
            continue
        if not isinstance(data.get("slice"), list):
            continue  # the gate job's own record: a decision, not an outcome
        failed = {failure.get("host"): failure for failure in data.get("failures") or () if isinstance(failure, Mapping)}
        for host in data["slice"]:
            reported[record["wave"]][host] = failed.get(host)
        if record.get("run_id") not in jobs:
            jobs.append(record.get("run_id"))
    failures = plan_failures(plan)
    missing = []
    new = []
    for candidate in through:
        for entry in candidate["hosts"]:
            host = entry["host"]
            if host not in reported[candidate["name"]]:
                missing.append(host)
                failure = {"host": host, "wave": candidate["name"], "status": "unknown", "why": NO_OUTCOME}
            else:
                failure = reported[candidate["name"]][host]
            if failure is not None:
                failures.append(failure)
                if candidate["name"] == wave_name:
                    new.append(failure)
    limit = error_budget(budget, plan["summary"]["planned"])
    return {"failures": failures, "wave_failures": new, "budget": limit, "halted": len(failures) > limit, "missing": missing, "jobs": jobs}
