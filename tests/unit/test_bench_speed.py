"""bench/speed.py's pure part: the medians, the ratios to the floor and to the builtin baseline, the table, the JSON.

The benchmark itself is never a timed test; these run its table code on made-up runs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parents[2] / "bench" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("bench_speed", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runs(*walls, trips=None):
    return [{"wall": wall, "cpu": wall / 2, "trips": trips} for wall in walls]


def test_rows_are_medians_with_ratios_to_the_same_fleet_size(speed):
    rows = speed.with_ratios([
        speed.summarise("ping", 20, runs(9.0, 10.0, 30.0, trips=1.0)),
        speed.summarise("builtin", 20, runs(100.0, 90.0, 95.0, trips=10.0)),
        speed.summarise("rollout (soak 0)", 20, runs(30.0, 20.0, 25.0, trips=7.0)),
        speed.summarise("ping", 50, runs(20.0)),
        speed.summarise("rollout (soak 0)", 50, runs(60.0)),
        speed.summarise("plan direct", 1000, runs(0.1)),
    ])
    by_name = {(row["run"], row["hosts"]): row for row in rows}
    assert by_name[("ping", 20)]["wall"] == 10.0
    assert by_name[("ping", 20)]["x_floor"] == 1.0
    assert by_name[("rollout (soak 0)", 20)]["x_floor"] == 2.5
    assert by_name[("rollout (soak 0)", 20)]["x_baseline"] == pytest.approx(25.0 / 95.0)
    assert by_name[("rollout (soak 0)", 20)]["trips"] == 7.0
    assert by_name[("rollout (soak 0)", 50)]["x_floor"] == 3.0
    assert by_name[("rollout (soak 0)", 50)]["x_baseline"] is None  # no baseline of that size
    assert by_name[("plan direct", 1000)]["x_floor"] is None
    assert by_name[("plan direct", 1000)]["trips"] is None


def test_the_table_and_the_json_hold_the_same_rows(speed, tmp_path):
    rows = speed.with_ratios([speed.summarise("ping", 5, runs(2.0, trips=1.0)), speed.summarise("builtin", 5, runs(8.0, trips=10.0))])
    lines = speed.table(rows)
    assert lines[0].split() == ["run", "hosts", "wall", "s", "cpu", "s", "trips/host", "x", "floor", "x", "builtin"]
    assert lines[1].split() == ["ping", "5", "2.00", "1.00", "1.0", "1.00", "0.25"]
    assert lines[2].split() == ["builtin", "5", "8.00", "4.00", "10.0", "4.00", "1.00"]
    data = json.loads(json.dumps(speed.report(rows, {"cpus": 2})))
    assert data["machine"] == {"cpus": 2}
    assert [row["run"] for row in data["rows"]] == ["ping", "builtin"]
    assert data["rows"][1]["each"] == runs(8.0, trips=10.0)
