"""playbooks/status.yml and playbooks/publish.yml on a real 4-host fleet, around a real rollout, and the report's HTML
page opened by a real headless Chromium: its screenshot taken, its numbers read from the DOM and checked against the
JSON report."""

from __future__ import annotations

import csv
import html.parser
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import HostSpec

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._advisory import csaf_problems, osv_problems

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PATCH = "FP-2025-14847"
TUESDAY = {"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
SATURDAY = {"days": ["sat"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}
NOW = "2026-03-03T01:30:00Z"  # Tuesday 02:30 in Berlin: the Tuesday windows are open, the Saturday one is not
NEXT_SATURDAY = "2026-03-07T01:00:00Z"
PUBLISHER = {"name": "Example Corp", "namespace": "https://example.com"}
CHROMIUM = shutil.which("chromium") or "chromium"


class Page(html.parser.HTMLParser):
    """What the report page says, read from the DOM Chromium dumps: the tiles, region rows, host rows and chart."""

    def __init__(self):
        super().__init__()
        self.tiles, self.regions, self.hosts, self.dots, self.ids = {}, {}, {}, [], {}
        self._in, self._region = None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "tile":
            self._in = ("tile", attrs["data-state"])
        elif tag == "span" and attrs.get("class") == "count" and self._in and self._in[0] == "tile":
            self._in = ("count", self._in[1])
        elif tag == "tr" and "data-region" in attrs:
            self._region = attrs["data-region"]
            self.regions[self._region] = {}
        elif tag == "td" and self._region and "data-state" in attrs:
            self._in = ("region", attrs["data-state"])
        elif tag == "tr" and "data-host" in attrs:
            self.hosts[attrs["data-host"]] = attrs["data-state"]
        elif tag == "circle" and attrs.get("class") == "dot":
            self.dots.append({"at": attrs["data-at"], "patched": int(attrs["data-patched"]), "share": float(attrs["data-share"])})
        elif tag == "b" and attrs.get("id"):
            self._in = ("id", attrs["id"])

    def handle_endtag(self, tag):
        if tag == "tr":
            self._region = None

    def handle_data(self, data):
        if not self._in or not data.strip():
            return
        kind, key = self._in
        if kind == "count":
            self.tiles[key] = int(data)
        elif kind == "region":
            self.regions[self._region][key] = int(data)
        elif kind == "id":
            self.ids[key] = data.strip()
        self._in = None


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def open_in_chromium(page, tmp_path):
    """Chromium's screenshot of the page (its path) and its DOM after loading."""
    shot = tmp_path / "status.png"
    common = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}"]
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120).stdout
    return shot, dom


def test_status_during_and_after_a_rollout_then_publish_only_once_every_host_is_safe(fleet, ansible, tmp_path):
    # db-1 and db-2 (a 2-member cluster, one down at a time) in open windows, us-1 outside its window (a routine patch
    # defers it), us-2 already on the fix.
    fleet.add([HostSpec(name="db-1", region="eu-west", cluster="eu-db", cluster_role="primary", maintenance_window=TUESDAY),
               HostSpec(name="db-2", region="eu-west", cluster="eu-db", cluster_role="secondary", version="7.0.27", maintenance_window=TUESDAY),
               HostSpec(name="us-1", region="us-east", customer="globex", maintenance_window=SATURDAY),
               HostSpec(name="us-2", region="us-east", version="7.0.28", maintenance_window=SATURDAY)])
    inventory = fleet.write_inventory()
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="routine")
    log = tmp_path / "audit" / "audit.jsonl"
    audit = {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(log)}
    advisories = tmp_path / "advisories"
    publish = {"fleetpatch_manifest": str(manifest), "fleetpatch_advisory_dir": str(advisories), "fleetpatch_advisory_publisher": PUBLISHER}

    # Before the rollout: three hosts are affected, publish refuses naming them, and writes nothing.
    refused = ansible(REPO / "playbooks" / "publish.yml", inventory, extravars=publish)
    assert refused.returncode != 0
    assert (f"{PATCH}: not published: 3 host(s) in scope are neither patched nor deferred with a reason (1 patched, 3 affected, 0 deferred, "
            "0 failed, 0 rolled back, 0 unknown, 0 not affected): db-1 (affected: runs 7.0.26, in the affected range); db-2 (affected: runs "
            "7.0.27, in the affected range); us-1 (affected: runs 7.0.26, in the affected range)") in refused.stdout
    assert not advisories.exists()

    # The rollout writes the report after every wave (opt-in).
    watch = tmp_path / "watch"
    rollout = ansible(REPO / "playbooks" / "rollout.yml", inventory, env=audit, extravars={
        "fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob", "fleetpatch_soak": 0,
        "fleetpatch_now": NOW, "fleetpatch_status_dir": str(watch), "fleetpatch_policy": {"max_unavailable": 1}})
    assert rollout.returncode == 0, rollout.stdout[-6000:]
    waves = len(rollout.results_each("Gate - count the wave's failures against the error budget")["db-1"])
    written = rollout.results_each("Write the report as JSON, CSV and HTML on the controller")
    assert waves >= 2 and len(next(iter(written.values()))) == waves  # once per wave
    watched = json.loads((watch / f"{PATCH}-status.json").read_text(encoding="utf-8"))
    assert {row["host"]: row["state"] for row in watched["hosts"]} == {"db-1": "patched", "db-2": "patched", "us-1": "deferred", "us-2": "patched"}

    # After it, with db-2 powered off: unknown. The chart is drawn from the run's audit trail.
    fleet.stop("db-2")
    reports = tmp_path / "reports"
    status = ansible(REPO / "playbooks" / "status.yml", inventory, env=audit,
                     extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_status_dir": str(reports)})
    assert status.returncode == 0, status.stdout[-6000:]
    report = json.loads((reports / f"{PATCH}-status.json").read_text(encoding="utf-8"))
    rows = {row["host"]: row for row in report["hosts"]}
    assert {host: (row["region"], row["cluster"], row["version"], row["state"]) for host, row in rows.items()} == {
        "db-1": ("eu-west", "eu-db", "7.0.28", "patched"), "db-2": ("eu-west", "eu-db", "unknown", "unknown"),
        "us-1": ("us-east", "-", "7.0.26", "deferred"), "us-2": ("us-east", "-", "7.0.28", "patched")}
    assert rows["us-1"]["next_window"] == NEXT_SATURDAY and "routine patch" in rows["us-1"]["detail"]
    assert rows["db-1"]["applied_at"] and rows["db-1"]["judged_at"] and rows["us-2"]["applied_at"] is None
    assert report["counts"] == {"patched": 2, "affected": 0, "deferred": 1, "failed": 0, "rolled back": 0, "unknown": 1, "not affected": 0}
    assert report["regions"] == [
        {"region": "eu-west", "hosts": 2, "patched": 1, "affected": 0, "deferred": 0, "failed": 0, "rolled back": 0, "unknown": 1, "not affected": 0},
        {"region": "us-east", "hosts": 2, "patched": 1, "affected": 0, "deferred": 1, "failed": 0, "rolled back": 0, "unknown": 0, "not affected": 0}]
    assert report["clusters"] == [{"cluster": "eu-db", "hosts": 2, "regions": ["eu-west"], "patched": 1, "affected": 0, "deferred": 0,
                                   "failed": 0, "rolled back": 0, "unknown": 1, "not affected": 0}]
    history = report["history"]
    assert history["source"] == str(log) and history["skipped"] == 0
    # us-2 came patched (from the start); db-1 and db-2 were patched by the rollout's applies; db-2 is unknown now.
    assert [point["patched"] for point in history["points"]] == [1, 2, 3, 2]
    assert history["points"][-1] == {"at": report["generated"], "patched": 2, "share": 50.0}
    with (reports / f"{PATCH}-status.csv").open(encoding="utf-8") as handle:
        assert {row["host"]: row["state"] for row in csv.DictReader(handle)} == {host: row["state"] for host, row in rows.items()}

    # The page, opened by a real Chromium: the numbers it shows are the JSON report's.
    shot, dom = open_in_chromium(reports / f"{PATCH}-status.html", tmp_path)
    assert png_size(shot) == (1100, 1400) and shot.stat().st_size > 20000
    page = Page()
    page.feed(dom)
    assert page.tiles == report["counts"]
    assert page.regions == {group["region"]: {state: group[state] for state in report["states"]} for group in report["regions"]}
    assert page.hosts == {host: row["state"] for host, row in rows.items()}
    assert page.dots == history["points"]
    assert (page.ids["patched-share"], page.ids["concerned"], page.ids["total"]) == ("50.0%", "4", "4")

    # Publish refuses while db-2's state is unknown, naming it; nothing is written.
    refused = ansible(REPO / "playbooks" / "publish.yml", inventory, env=audit, extravars=publish)
    assert refused.returncode != 0
    assert "1 host(s) in scope are neither patched nor deferred with a reason (2 patched, 0 affected, 1 deferred, 0 failed, 0 rolled back, " \
           "1 unknown, 0 not affected): db-2 (unknown: not detected:" in refused.stdout
    assert not advisories.exists()

    # db-2 back: every host is patched or deferred with its reason, and the advisory is written and valid.
    fleet.start("db-2")
    published = ansible(REPO / "playbooks" / "publish.yml", inventory, env=audit, extravars=publish)
    assert published.returncode == 0, published.stdout[-6000:]
    assert (f"{PATCH}: every host in scope is patched or deferred with a reason (3 patched, 0 affected, 1 deferred, 0 failed, "
            "0 rolled back, 0 unknown, 0 not affected)") in published.stdout
    assert sorted(path.name for path in advisories.iterdir()) == [f"{PATCH}.csaf.json", f"{PATCH}.notice.md", f"{PATCH}.osv.json",
                                                                  f"{PATCH}.retrospective.md"]
    osv = json.loads((advisories / f"{PATCH}.osv.json").read_text(encoding="utf-8"))
    csaf_doc = json.loads((advisories / f"{PATCH}.csaf.json").read_text(encoding="utf-8"))
    assert osv_problems(osv) == [] and csaf_problems(csaf_doc) == []
    assert (osv["id"], osv["aliases"], osv["affected"][0]["ranges"][0]["events"]) == (PATCH, ["CVE-2025-14847"],
                                                                                      [{"introduced": "7.0.0"}, {"fixed": "7.0.28"}])
    assert csaf_doc["document"]["tracking"]["id"] == PATCH and csaf_doc["document"]["publisher"]["name"] == "Example Corp"
    assert osv["published"] == csaf_doc["document"]["tracking"]["initial_release_date"]
    notice = (advisories / f"{PATCH}.notice.md").read_text(encoding="utf-8")
    assert "| `>=7.0.0,<7.0.28` | **7.0.28** or later |" in notice

    # The retrospective's milestones are the audit records of this same run.
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    canary = next(r for r in records if r["event"] == "wave_start" and r["patch_id"] == PATCH and r["wave"].startswith("canary"))
    applies = [r for r in records if r["event"] == "task" and r["data"]["action"] == "fleetpatch.rollout.apply" and r["data"]["status"] == "changed"]
    retro = (advisories / f"{PATCH}.retrospective.md").read_text(encoding="utf-8")

    def second(ts):  # the timeline gives whole seconds; the trail's records keep microseconds
        return ts[:19] + "Z"

    milestones = {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in retro.split("## Timeline")[1].split("## Decisions")[0].splitlines()
        if line.startswith("| ") and not line.startswith("| milestone"))}
    assert milestones["detection"][0] == yaml.load(manifest.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)["detected_at"]
    assert milestones["first notice"][0] == "not reached"  # no ledger, no notice in the trail
    assert milestones["canary start"][:1] + milestones["canary start"][2:] == [second(canary["ts"]), f"wave_start record seq {canary['seq']}"]
    # us-2 ran the fix from the start: the second apply of the rollout made 3 of 4 (more than half); us-1 is deferred.
    assert milestones["majority patched"][0] == second(sorted(r["ts"] for r in applies)[1])
    assert milestones["whole fleet"][0] == "not reached"
    assert milestones["publication"][0] == osv["published"]
    decisions = retro.split("## Decisions")[1]
    assert "| approval | rollout: approved by alice, implemented by bob (routine) |" in decisions
    assert "| deferred | us-1 (customer globex) | routine patch" in decisions


@pytest.mark.extended
def test_a_halted_rollout_writes_the_report_with_its_canary_rolled_back(fleet, ansible, tmp_path):
    # Extended (scripts/test-extended): the halt includes the status role exactly as every wave does, which the test
    # above proves in CI; the rolled back state's rule is in tests/unit/plugins/plugin_utils/test__status.py.
    fleet.add([HostSpec(name=name) for name in ("h-1", "h-2")])
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.29"), version="7.0.29", urgency="emergency", compatible_with=">=7.0.26,<7.1")
    watch = tmp_path / "watch"
    run = ansible(REPO / "playbooks" / "rollout.yml", fleet.write_inventory(),
                  env={"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_LOG": str(tmp_path / "audit.jsonl")},
                  extravars={"fleetpatch_manifest": str(manifest), "fleetpatch_approved_by": "alice", "fleetpatch_implemented_by": "bob",
                             "fleetpatch_soak": 0, "fleetpatch_status_dir": str(watch),
                             "fleetpatch_policy": {"emergency": {"decided_by": "carol", "justification": "exploited in the wild"}}})
    assert run.returncode != 0
    report = json.loads((watch / f"{PATCH}-status.json").read_text(encoding="utf-8"))
    states = {row["host"]: row["state"] for row in report["hosts"]}
    canary = next(host for host, state in states.items() if state == "rolled back")
    assert states == {canary: "rolled back", ({"h-1", "h-2"} - {canary}).pop(): "affected"}
    assert [point["patched"] for point in report["history"]["points"]] == [0, 1, 0, 0]  # applied, rolled back by its guard
