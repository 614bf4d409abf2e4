"""The fleet status report: each host's state by its rule, the counts per region and cluster, the chart's points,
the CSV and HTML renderings, and the gate of the advisory."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._status import (
    BLOCKING, STATES, StatusError, fleet_report, history, host_state, publish_gate, read_trail, render, render_csv, render_html, write_files,
)

PATCH = "FP-2025-14847"
MANIFEST = {"id": PATCH, "title": "leak <b>", "component": "fpdemo", "affected": ">=7.0.0,<7.0.28 || >=8.0.0,<8.0.17",
            "fixed_version": "7.0.28", "severity": "high", "urgency": "urgent", "advisories": ["CVE-2025-14847"]}
APPLIED = {"patch": PATCH, "component": "fpdemo", "version": "7.0.28", "from": "7.0.26", "at": "2026-12-01T10:00:00Z",
           "judged": "2026-12-01T10:01:00Z"}
DEFERRED = {"patch": PATCH, "reason": "outside its maintenance window", "until": "2026-12-05T01:00:00Z", "at": "2026-12-01T09:00:00Z"}
ROLLBACK = {"patch": PATCH, "component": "fpdemo", "from": "7.0.28", "to": "7.0.26", "at": "2026-12-01T11:00:00Z"}
JOURNAL = {"op": "apply", "patch": PATCH, "component": "fpdemo", "class": "hot", "from": "7.0.26", "to": "7.0.28", "step": "switched",
           "started": "2026-12-01T10:00:00Z"}
NONE = {"next_window": None, "applied_at": None, "judged_at": None}


def found(version="7.0.26", affected=True, fixed=False, **state):
    return {"version": version, "affected": affected, "fixed": fixed, "applied": [], "deferred": [], "rollbacks": [], "interrupted": None,
            "state_error": None, **state}


@pytest.mark.parametrize(("result", "answered", "last_apply", "state", "detail", "extra"), [
    # 1. unknown
    (None, True, None, "unknown", "not detected: not reached by this run", NONE),
    ({"unreachable": True, "msg": "ssh: timed out"}, True, None, "unknown", "not detected: ssh: timed out", NONE),
    ({"failed": True, "msg": "current is not a link"}, True, None, "unknown", "not detected: current is not a link", NONE),
    (found(), False, None, "unknown", "not detected: not reached by this run", NONE),
    (found(state_error="state file /s: bad", applied=None), True, None, "unknown", "runs 7.0.26; its state file cannot be trusted: state file /s: bad",
     NONE),
    # 2. failed: a cut-off operation comes before everything else the state file says
    (found("7.0.28", False, True, interrupted=JOURNAL, applied=[APPLIED]), True, None, "failed",
     "a apply from 7.0.26 to 7.0.28 was cut off (last step switched); run it again to complete or revert it", NONE),
    (found(deferred=[DEFERRED]), True, {"status": "failed", "at": "2026-12-01T12:00:00Z", "msg": "no space"}, "failed",
     f"runs 7.0.26; its last apply of {PATCH} failed at 2026-12-01T12:00:00Z: no space", NONE),
    # 3. patched: outside the range, at or above the fix; applied by fleetpatch or not, judged or not
    (found("7.0.28", False, True, applied=[APPLIED]), True, None, "patched",
     f"runs 7.0.28; {PATCH} applied 2026-12-01T10:00:00Z from 7.0.26, judged healthy 2026-12-01T10:01:00Z",
     {**NONE, "applied_at": "2026-12-01T10:00:00Z", "judged_at": "2026-12-01T10:01:00Z"}),
    (found("7.0.28", False, True, applied=[{**APPLIED, "judged": None}]), True, None, "patched",
     f"runs 7.0.28; {PATCH} applied 2026-12-01T10:00:00Z from 7.0.26, not yet judged healthy (the rollout soaks and gates it again)",
     {**NONE, "applied_at": "2026-12-01T10:00:00Z"}),
    (found("7.0.28", False, True), True, {"status": "failed", "at": "x", "msg": "y"}, "patched",
     f"runs 7.0.28; {PATCH} was not applied here by fleetpatch", NONE),
    # 4. not affected
    (found("6.9.0", False, False), True, None, "not affected", "runs 6.9.0, outside the affected range and below the fixed version", NONE),
    # 8.0.16 is above the fixed version of the 7.0 line but still affected
    (found("8.0.16", True, True), True, None, "affected", "runs 8.0.16, in the affected range", NONE),
    # 5. deferred, with its reason and next window; a deferral without a reason explains nothing
    (found(deferred=[DEFERRED]), True, None, "deferred",
     "runs 7.0.26; outside its maintenance window; next window 2026-12-05T01:00:00Z", {**NONE, "next_window": "2026-12-05T01:00:00Z"}),
    (found(deferred=[{**DEFERRED, "until": None}]), True, None, "deferred", "runs 7.0.26; outside its maintenance window; next window none", NONE),
    (found(deferred=[{**DEFERRED, "reason": " "}]), True, None, "affected", "runs 7.0.26, in the affected range", NONE),
    (found(deferred=[{**DEFERRED, "patch": "FP-2025-1"}]), True, None, "affected", "runs 7.0.26, in the affected range", NONE),
    # 6. rolled back; the later of a deferral and a rollback decides
    (found(rollbacks=[ROLLBACK]), True, None, "rolled back", "runs 7.0.26; rolled back from 7.0.28 to 7.0.26 at 2026-12-01T11:00:00Z", NONE),
    (found(rollbacks=[{**ROLLBACK, "patch": None}]), True, None, "rolled back",
     "runs 7.0.26; rolled back from 7.0.28 to 7.0.26 at 2026-12-01T11:00:00Z", NONE),
    (found(rollbacks=[{**ROLLBACK, "patch": None, "from": "7.0.27"}]), True, None, "affected", "runs 7.0.26, in the affected range", NONE),
    (found(rollbacks=[ROLLBACK], deferred=[DEFERRED]), True, None, "rolled back",
     "runs 7.0.26; rolled back from 7.0.28 to 7.0.26 at 2026-12-01T11:00:00Z", NONE),
    (found(rollbacks=[ROLLBACK], deferred=[{**DEFERRED, "at": "2026-12-01T12:00:00Z"}]), True, None, "deferred",
     "runs 7.0.26; outside its maintenance window; next window 2026-12-05T01:00:00Z", {**NONE, "next_window": "2026-12-05T01:00:00Z"}),
    # 7. affected; a successful last apply does not make a host that runs an affected version anything else
    (found(), True, {"status": "ok", "at": "x", "msg": None}, "affected", "runs 7.0.26, in the affected range", NONE),
    (found(affected=None), True, None, "unknown", "runs 7.0.26; the detection was not given the affected range", NONE),
])
def test_host_state(result, answered, last_apply, state, detail, extra):
    assert host_state(result, PATCH, "7.0.28", answered, last_apply) == (state, detail, extra)


def record(ts, host, action, status, patch=PATCH, event="task", msg=None):
    return {"event": event, "ts": ts, "host": host, "patch_id": patch, "data": {"action": action, "status": status, "msg": msg}}


TRAIL = [
    {"event": "approval", "ts": "2026-12-01T09:59:00Z", "host": None, "patch_id": PATCH, "data": {}},
    record("2026-12-01T10:00:00Z", "a", "fleetpatch.rollout.apply", "changed"),
    record("2026-12-01T10:00:01Z", "a", "fleetpatch.rollout.health", "ok"),
    record("2026-12-01T10:01:00Z", "b", "fleetpatch.rollout.apply", "changed"),
    record("2026-12-01T10:02:00Z", "b", "fleetpatch.rollout.rollback", "changed"),
    record("2026-12-01T10:03:00Z", "d", "fleetpatch.rollout.apply", "failed", msg="no space"),
    record("2026-12-01T10:04:00Z", "x", "fleetpatch.rollout.apply", "changed"),  # not in scope
    record("2026-12-01T10:05:00Z", "d", "fleetpatch.rollout.apply", "changed", patch="FP-2025-1"),  # another patch
    record("2026-12-01T10:06:00Z", "a", "fleetpatch.rollout.apply", "ok"),  # a re-run: still patched, no new point
    record("2026-12-01T10:07:00Z", "d", "fleetpatch.rollout.apply", "unreachable"),
]


def test_history_counts_applies_and_rollbacks_of_the_patch_on_hosts_in_scope():
    rows = [{"host": "a", "state": "patched"}, {"host": "b", "state": "rolled back"}, {"host": "d", "state": "failed"},
            {"host": "c", "state": "patched"}, {"host": "e", "state": "not affected"}]
    # c is patched now but the trail never saw it patched: it counts from the start. e is not concerned: 4 hosts are.
    assert history(TRAIL, PATCH, rows, "2026-12-01T11:00:00Z") == [
        {"at": "2026-12-01T09:59:00Z", "patched": 1, "share": 25.0},
        {"at": "2026-12-01T10:00:00Z", "patched": 2, "share": 50.0},
        {"at": "2026-12-01T10:01:00Z", "patched": 3, "share": 75.0},
        {"at": "2026-12-01T10:02:00Z", "patched": 2, "share": 50.0},
        {"at": "2026-12-01T11:00:00Z", "patched": 2, "share": 50.0},
    ]


def test_history_without_a_record_of_the_patch_is_the_report_count_alone():
    assert history([], PATCH, [{"host": "a", "state": "patched"}], "2026-12-01T11:00:00Z") == [
        {"at": "2026-12-01T11:00:00Z", "patched": 1, "share": 100.0}]
    assert history([], PATCH, [{"host": "a", "state": "not affected"}], "2026-12-01T11:00:00Z") == [
        {"at": "2026-12-01T11:00:00Z", "patched": 0, "share": None}]


HOSTVARS = {
    "a": {"region": "eu", "cluster": "db", "r": found("7.0.28", False, True, applied=[APPLIED])},
    "b": {"region": "eu", "cluster": "db", "r": found(rollbacks=[ROLLBACK])},
    "c": {"region": "us", "r": found(deferred=[DEFERRED])},
    "d": {"region": "us", "r": found()},
    "e": {"r": {"unreachable": True, "msg": "timed out"}},
    "f": {"region": "us", "r": found("6.0.0", False, False)},
    "g": {"region": "us"},
}


def report(**overrides):
    arguments = {"result": "r", "reachable": list(HOSTVARS), "excluded": ["g"], "generated": "2026-12-01T12:00:00Z",
                 "trail": {"path": "/a.jsonl", "records": TRAIL, "skipped": 1}}
    return fleet_report(HOSTVARS, list(HOSTVARS), MANIFEST, **{**arguments, **overrides})


def test_fleet_report():
    made = report()
    assert [(row["host"], row["region"], row["cluster"], row["version"], row["state"]) for row in made["hosts"]] == [
        ("a", "eu", "db", "7.0.28", "patched"), ("b", "eu", "db", "7.0.26", "rolled back"), ("c", "us", "-", "7.0.26", "deferred"),
        ("d", "us", "-", "7.0.26", "failed"), ("e", "-", "-", "unknown", "unknown"), ("f", "us", "-", "6.0.0", "not affected"),
        ("g", "us", "-", "unknown", "unknown"),
    ]
    assert made["hosts"][6]["detail"] == "left out by name (fleetpatch_exclude_hosts): not contacted"
    assert made["counts"] == {"patched": 1, "affected": 0, "deferred": 1, "failed": 1, "rolled back": 1, "unknown": 2, "not affected": 1}
    assert (made["total"], made["concerned"], made["patched_share"], made["states"]) == (7, 6, 16.7, list(STATES))
    assert made["regions"] == [
        {"region": "-", "hosts": 1, **dict.fromkeys(STATES, 0), "unknown": 1},
        {"region": "eu", "hosts": 2, **dict.fromkeys(STATES, 0), "patched": 1, "rolled back": 1},
        {"region": "us", "hosts": 4, **dict.fromkeys(STATES, 0), "deferred": 1, "failed": 1, "not affected": 1, "unknown": 1},
    ]
    assert made["clusters"] == [{"cluster": "db", "hosts": 2, "regions": ["eu"], **dict.fromkeys(STATES, 0), "patched": 1, "rolled back": 1}]
    assert made["history"]["source"] == "/a.jsonl" and (made["history"]["records"], made["history"]["skipped"]) == (len(TRAIL), 1)
    assert made["history"]["points"][-1] == {"at": "2026-12-01T12:00:00Z", "patched": 1, "share": 16.7}
    keys = ("id", "title", "component", "affected", "fixed_version", "severity", "urgency", "advisories")
    assert made["patch"] == {key: MANIFEST[key] for key in keys}
    json.dumps(made)  # plain data


def test_a_failed_apply_counts_unless_a_deferral_or_rollback_came_after_it():
    assert report()["hosts"][3]["detail"] == f"runs 7.0.26; its last apply of {PATCH} failed at 2026-12-01T10:03:00Z: no space"
    later = {"d": {"r": found(deferred=[{**DEFERRED, "at": "2026-12-01T10:30:00Z"}])}}
    made = fleet_report(later, ["d"], MANIFEST, result="r", trail={"path": "t", "records": TRAIL})
    assert made["hosts"][0]["state"] == "deferred"


def test_hosts_not_reached_this_run_are_unknown_whatever_an_earlier_result_said():
    made = report(reachable=["a"])
    assert {row["host"]: row["state"] for row in made["hosts"]}["b"] == "unknown"


@pytest.mark.parametrize(("arguments", "message"), [
    ({"manifest": "FP.yml"}, "manifest: expected the change record of fleetpatch.rollout.manifest, got str"),
    ({"manifest": {"id": PATCH}}, "manifest: expected the change record of fleetpatch.rollout.manifest, it lacks component, affected, fixed_version"),
    ({"hosts": "a"}, "hosts: expected a list of host names, got str 'a'"),
    ({"hosts": ["a", 3]}, "hosts[1]: expected a host name, got 3"),
    ({"reachable": [None]}, "reachable[0]: expected a host name, got None"),
    ({"hostvars": []}, "hostvars: expected a mapping of host names to their variables, got list"),
])
def test_bad_input_is_named(arguments, message):
    base = {"hostvars": HOSTVARS, "hosts": ["a"], "manifest": MANIFEST, "result": "r"}
    with pytest.raises(StatusError) as caught:
        fleet_report(**{**base, **arguments})
    assert str(caught.value) == message


def test_read_trail_skips_a_torn_tail(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(TRAIL[0]) + "\n\n[1]\n" + json.dumps(TRAIL[1]) + '\n{"torn', encoding="utf-8")
    assert read_trail(str(path)) == ([TRAIL[0], TRAIL[1]], 2)
    with pytest.raises(StatusError, match=r"^audit log .*missing\.jsonl: cannot be read: No such file or directory$"):
        read_trail(str(tmp_path / "missing.jsonl"))


def test_csv_has_one_line_per_host():
    made = report()
    rows = list(csv.DictReader(io.StringIO(render_csv(made))))
    assert [row["host"] for row in rows] == [row["host"] for row in made["hosts"]]
    assert rows[2] == {"host": "c", "region": "us", "cluster": "-", "version": "7.0.26", "state": "deferred",
                       "next_window": "2026-12-05T01:00:00Z", "applied_at": "", "judged_at": "", "detail": made["hosts"][2]["detail"]}


def test_html_is_self_contained_and_says_the_reports_numbers():
    page = render_html(report())
    assert page.startswith("<!DOCTYPE html>") and "<svg id=\"history\"" in page
    for forbidden in ("<script", "<link", "src=", "@import", "url(", "https://", "http://www"):
        assert forbidden not in page
    assert "leak &lt;b&gt;" in page  # escaped
    assert '<div class="tile" data-state="unknown" style="background:#546e7a"><span class="count">2</span>unknown</div>' in page
    assert '<b id="patched-share">16.7%</b>' in page
    assert '<tr data-host="c" data-state="deferred">' in page
    assert page.count('class="dot"') == len(report()["history"]["points"])


def test_html_without_a_host_the_patch_concerns_draws_no_chart():
    made = fleet_report({"f": HOSTVARS["f"]}, ["f"], MANIFEST, result="r")
    assert 'id="history-empty"' in render_html(made) and '<b id="patched-share">-</b>' in render_html(made)


def test_render_formats():
    made = report()
    assert json.loads(render(made, "json")) == made
    assert render(made, "csv") == render_csv(made) and render(made, "html") == render_html(made)
    with pytest.raises(StatusError, match=r"^format: expected json, csv or html, got 'pdf'$"):
        render(made, "pdf")
    with pytest.raises(StatusError, match=r"^report: expected the report of fleetpatch.rollout.status_report"):
        render({"hosts": []}, "csv")


def test_publish_gate_refuses_naming_each_host_that_blocks_it():
    gate = publish_gate(report())
    assert gate["ready"] is False
    assert [(entry["host"], entry["state"]) for entry in gate["blocking"]] == [
        ("b", "rolled back"), ("d", "failed"), ("e", "unknown"), ("g", "unknown")]
    assert gate["msg"].startswith(f"{PATCH}: not published: 4 host(s) in scope are neither patched nor deferred with a reason "
                                  "(1 patched, 0 affected, 1 deferred, 1 failed, 1 rolled back, 2 unknown, 1 not affected): "
                                  "b (rolled back: runs 7.0.26; rolled back from 7.0.28")
    assert set(BLOCKING) == {"affected", "failed", "rolled back", "unknown"}


def test_publish_gate_passes_when_every_host_is_patched_deferred_with_a_reason_or_not_affected():
    safe = {name: HOSTVARS[name] for name in ("a", "c", "f")}
    gate = publish_gate(fleet_report(safe, list(safe), MANIFEST, result="r"))
    assert (gate["ready"], gate["blocking"]) == (True, [])
    assert gate["counts"] == {**dict.fromkeys(STATES, 0), "patched": 1, "deferred": 1, "not affected": 1}
    assert gate["msg"] == (f"{PATCH}: every host in scope is patched or deferred with a reason "
                           "(1 patched, 0 affected, 1 deferred, 0 failed, 0 rolled back, 0 unknown, 1 not affected)")


def test_publish_gate_refuses_an_empty_scope():
    gate = publish_gate(fleet_report({}, [], MANIFEST))
    assert gate["ready"] is False and "no host in scope" in gate["msg"]


def test_write_files_writes_each_file_atomically_and_leaves_unchanged_ones_alone(tmp_path):
    directory = tmp_path / "reports" / "new"
    files = {"a.json": "{}\n", "a.html": "<p>é</p>\n"}
    assert write_files(str(directory), files, check_mode=True) == [str(directory / "a.json"), str(directory / "a.html")]
    assert not directory.exists()
    assert write_files(str(directory), files) == [str(directory / "a.json"), str(directory / "a.html")]
    assert (directory / "a.html").read_text(encoding="utf-8") == "<p>é</p>\n" and (directory / "a.json").stat().st_mode & 0o777 == 0o644
    assert write_files(str(directory), files) == []
    assert write_files(str(directory), {**files, "a.json": "[]\n"}) == [str(directory / "a.json")]
    assert sorted(path.name for path in directory.iterdir()) == ["a.html", "a.json"]  # no temporary file left


@pytest.mark.parametrize(("dest", "files", "message"), [
    ("", {"a": ""}, "dest: expected a directory path, got ''"),
    ("/tmp", {}, "files: expected a mapping of file names to their text, got {}"),
    ("/tmp", {"../a": "x"}, "files: '../a' is not a plain file name (no directory part)"),
    ("/tmp", {"..": "x"}, "files: '..' is not a plain file name (no directory part)"),
    ("/tmp", {"a": 3}, "files.a: expected the file's text, got int"),
])
def test_write_files_names_bad_input(dest, files, message):
    with pytest.raises(StatusError) as caught:
        write_files(dest, files)
    assert str(caught.value) == message


def test_write_files_names_a_directory_it_cannot_write(tmp_path):
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(StatusError, match=r"file/a: cannot be written: File exists$"):  # makedirs meets the file
        write_files(str(tmp_path / "file"), {"a": "x"})
