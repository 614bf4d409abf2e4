"""scripts/demo, the README's first command: the rollout on the 12-host demo fleet, every host listed, nothing left."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fleetpatch_dev import demo
from fleetpatch_dev.fleet import demo_layout

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_rolls_the_patch_out_lists_every_host_and_leaves_nothing_behind(machine_state, tmp_path):
    before = machine_state()
    # What scripts/demo runs once bootstrap is done; a 1 s soak keeps it short. At a fixed time, a Tuesday at noon UTC,
    # every demo host is outside its maintenance window, so which hosts the urgent patch may touch does not depend
    # on when the test runs.
    reports = tmp_path / "out"
    demo = subprocess.run([sys.executable, "-m", "fleetpatch_dev.demo", "--soak", "1", "--now", "2026-03-03T12:00:00Z", "--out", str(reports)],
                          cwd=REPO,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "tools"), "PATH": "/usr/bin:/bin"}, timeout=600, check=False)
    assert demo.returncode == 0, demo.stdout[-6000:] + demo.stderr[-3000:]
    assert machine_state() == before
    out = demo.stdout
    # The rollout role's tasks print under the role's name.
    assert "TASK [fleetpatch.rollout.rollout : Print the plan]" in out
    assert "TASK [fleetpatch.rollout.rollout : Print the summary per region and per host]" in out

    table = out[out.index("every demo host and the version it runs now"):]
    rows = {match[0]: match[1:] for match in re.findall(r"^(\S+-\d\d) +\S+ +\S+ .*? (\S+) +(7\.\d\.\d+) +(7\.\d\.\d+) +(.+)$", table, re.M)}
    layout = demo_layout(12)
    assert set(rows) == {spec.name for spec in layout}
    for spec in layout:
        customer, before_version, now, state = rows[spec.name]
        assert (customer, before_version) == (spec.customer, spec.version)
        if spec.version == "7.0.28":
            assert (now, state) == ("7.0.28", "already fixed")
        elif spec.customer == "stark":  # told only 2 h before: the urgent patch may not override its window
            assert (now, state) == (spec.version, "still affected")
        else:
            assert (now, state) == ("7.0.28", "patched")
    assert re.search(r"deferred +next window \d{4}-\d\d-\d\dT", out)
    assert re.search(r"^OK .*audit\.jsonl: \d+ records", out, re.M)
    assert "fleet torn down" in out

    # It ends with the fleet status report's path and the retrospective of the advisory it published.
    patch = "FP-2025-14847"
    assert f"the fleet status report: {reports / (patch + '-status.html')}" in out
    assert {path.name for path in reports.iterdir()} >= {f"{patch}-status.html", f"{patch}.osv.json", f"{patch}.retrospective.md"}
    retrospective = out[out.index("the retrospective, "):]
    assert f"# Retrospective: {patch}" in retrospective and "| detection | 2025-12-18T09:30:00Z | 0s |" in retrospective
    assert re.search(r"^\| canary start \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| ", retrospective, re.M)
    assert re.search(r"^\| [-0-9T:Z]+ \| deferred \| \S+ \(customer stark\) \| urgent patch: customer stark notified at ", retrospective, re.M)


@pytest.mark.parametrize("value", ["tomorrow", "2026-03-03T12:00:00"])
def test_a_bad_now_is_named_before_anything_starts(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--now", value])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"scripts/demo: error: argument --now: expected an RFC 3339 time with an offset such as 2026-03-03T12:00:00Z, got {value!r}")
