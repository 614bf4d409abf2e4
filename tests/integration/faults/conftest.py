"""The fault x phase suite's report: one row per case run, printed as a table at the end and written as JSON.

The JSON goes to ``$FLEETPATCH_FAULTS_JSON``, by default ``tests/output/fault-matrix.json`` (kept out of git).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ROWS: list[dict] = []
COLUMNS = ("fault", "phase", "outcome", "hosts affected", "converged in s", "result")


@pytest.fixture
def report_row():
    """The row of the running case: the test fills it in; it is reported whether the case passes or fails."""
    row = {"fault": "", "phase": "", "outcome": "", "hosts affected": "", "converged in s": None, "result": "failed"}
    ROWS.append(row)
    return row


def table(rows: list[dict]) -> list[str]:
    """The rows as aligned text lines under a header."""
    cells = [[str(row[column]) if row[column] is not None else "-" for column in COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in [list(COLUMNS), *cells]) for index in range(len(COLUMNS))]
    return ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in [list(COLUMNS), *cells]]


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    path = Path(os.environ.get("FLEETPATCH_FAULTS_JSON", REPO / "tests" / "output" / "fault-matrix.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ROWS, indent=2) + "\n", encoding="utf-8")
    terminalreporter.section("fault x phase")
    for line in table(ROWS):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {path})")
