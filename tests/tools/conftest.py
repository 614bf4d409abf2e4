"""Fixtures of the tooling tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetpatch_dev.fleet import REGISTRY


def _machine_state() -> dict:
    """What the machine has that a fleet could leave behind."""
    return {
        "netns": subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout,
        "links": subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout,
        "mounts": Path("/proc/self/mounts").read_text(encoding="utf-8"),
        "registry": sorted(p.name for p in REGISTRY.glob("*.json")) if REGISTRY.is_dir() else [],
    }


@pytest.fixture
def machine_state():
    """A function that returns what the machine has that a fleet could leave behind (compare before and after)."""
    return _machine_state
