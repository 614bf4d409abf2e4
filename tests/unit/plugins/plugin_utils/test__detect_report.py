"""Detection reports: what is kept of each host's detection, and the checks before a plan is made from one."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._detect_report import DetectReportError, detected_of, read_detect_report

MANIFEST = {"id": "FP-2025-14847", "component": "fpdemo", "install_dir": "/srv/fpdemo"}


def _report(**changes):
    report = {"format": 1, "detected_at": "2026-03-03T12:00:00Z", "component": "fpdemo", "install_dir": "/srv/fpdemo",
              "strategy": "current_link", "patch": "FP-2025-14847",
              "hosts": [{"host": "a", "detected": {"version": "7.0.26", "affected": True}}, {"host": "b", "detected": {"unreachable": True, "msg": "gone"}}]}
    report.update(changes)
    return report


def _write(tmp_path, data):
    path = tmp_path / "detect.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("result", "expected"), [
    ({"version": "7.0.26", "affected": True, "changed": False, "invocation": {}, "applied": [{"patch": "FP-1", "judged": "x"}]},
     {"version": "7.0.26", "affected": True, "applied": [{"patch": "FP-1", "judged": "x"}]}),
    ({"unreachable": True, "msg": "Failed to connect"}, {"unreachable": True, "msg": "Failed to connect"}),
    ({"failed": True}, {"failed": True, "msg": "detection failed"}),
    ({"skipped": True, "skip_reason": "Conditional result was False"}, {"skipped": True}),
    ({}, {"msg": "not reached"}),
    (None, {"msg": "not reached"}),
])
def test_what_a_report_keeps_of_a_detection(result, expected):
    assert detected_of(result) == expected


def test_a_report_reads_back_per_host(tmp_path):
    assert read_detect_report(_write(tmp_path, _report()), manifest=MANIFEST) == {
        "detected_at": "2026-03-03T12:00:00Z", "component": "fpdemo", "patch": "FP-2025-14847",
        "hosts": {"a": {"version": "7.0.26", "affected": True}, "b": {"unreachable": True, "msg": "gone"}}}


@pytest.mark.parametrize(("data", "message"), [
    ("{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ([{"host": "a"}], "a list of rows, as the detect role wrote before reports had a format: detect again"),
    (_report(format=2), "format: 2 is not a report format this fleetpatch reads (1)"),
    (_report(detected_at="yesterday"), "detected_at: 'yesterday' is not an RFC 3339 time in UTC such as 2026-03-03T12:00:00Z"),
    (_report(component="other"), "component: the report is of component 'other', the manifest FP-2025-14847 of 'fpdemo': detect again with this manifest"),
    (_report(install_dir="/opt/x"),
     "install_dir: the report is of install_dir '/opt/x', the manifest FP-2025-14847 of '/srv/fpdemo': detect again with this manifest"),
    (_report(hosts=[{"host": "a", "detected": {}}, {"host": "a", "detected": {}}]), "hosts[1].host: 'a' is listed twice"),
    (_report(hosts=[{"host": "a"}]), "hosts[0]"),
])
def test_a_report_fleetpatch_cannot_plan_from_is_named(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(DetectReportError) as raised:
        read_detect_report(path, manifest=MANIFEST)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_missing_report_is_named(tmp_path):
    with pytest.raises(DetectReportError) as raised:
        read_detect_report(str(tmp_path / "none.json"))
    assert str(raised.value) == f"{tmp_path / 'none.json'}: cannot read it: No such file or directory"
