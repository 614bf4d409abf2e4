"""The test manifests' limits, and the service log the fault injection reads its moments from."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fleetpatch_dev import faults, manifests
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import health_args, load_manifest


def test_a_test_manifest_is_valid_and_judges_by_the_test_limits(tmp_path):
    artifact = tmp_path / "fpdemo-7.0.29.tar.gz"
    artifact.write_bytes(b"not really a release")
    path = manifests.write(tmp_path / "m", artifact, version="7.0.29", **{"monitoring.consecutive_failures": 2})
    args = health_args(load_manifest(path))
    assert args["interval"] == 1 and args["consecutive_failures"] == 2 and args["soak"] == 300
    assert args["thresholds"] == manifests.TEST_MONITORING["thresholds"]
    # the bad releases are far from them: 7.0.29 fails every sample, 7.0.30 adds 300 ms to every one
    assert args["thresholds"]["max_error_rate"] == 0 and args["thresholds"]["max_p50_ms"] <= 300 / 2
    assert manifests.shipped()["monitoring"]["thresholds"]["max_p95_ms"] == 250  # the shipped record keeps its own


class FakeFleet:
    """Only what ServiceLog reads: where a host's files are."""

    def __init__(self, root):
        self.root = root

    def host_root(self, _name):
        return self.root


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / faults.LOG
    path.parent.mkdir(parents=True)
    path.write_text('old "GET /version HTTP/1.1" 200\n', encoding="utf-8")
    return path


def test_the_service_log_is_read_on_from_where_it_stood(tmp_path, log_file):
    log = faults.ServiceLog(FakeFleet(tmp_path), "h")  # what was there before is not waited for
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write('fpdemo 7.0.28 (abi 1) serving on 0.0.0.0:8080\n"GET /health HTTP/1.1" 200\n"GET /version HTTP/1.1" 200\n')
        handle.write('"GET /health HTTP/1.1" 200\n"GET /health HTTP/1.1" 500\n"GET /hea')  # the last line is still being written
    assert log.wait_for(r"7\.0\.28 \(abi 1\) serving") == "fpdemo 7.0.28 (abi 1) serving on 0.0.0.0:8080"
    assert log.wait_for(r'"GET /version ') == '"GET /version HTTP/1.1" 200'  # after the serving line only
    assert log.wait_for(r'"GET /health ', count=2) == '"GET /health HTTP/1.1" 500'

    def finish_the_line():
        with log_file.open("a", encoding="utf-8") as handle:
            handle.write('lth HTTP/1.1" 200\n')

    threading.Timer(0.2, finish_the_line).start()
    assert log.wait_for(r'"GET /health ', timeout=5) == '"GET /health HTTP/1.1" 200'  # read whole, once written
    with pytest.raises(TimeoutError) as caught:
        log.wait_for(r'"GET /health ', timeout=0.1)
    assert str(caught.value) == f"""h: 0 of 1 lines matching '"GET /health ' in {log_file} within 0.1 s"""


def run_manifests_cli(*args):
    repo = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "fleetpatch_dev.manifests", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(repo / "tools")})


def test_the_command_line_writes_a_test_manifest(tmp_path):
    """What Molecule's scenarios converge: the demo record for a built artifact, with the test limits and changes."""
    artifact = tmp_path / "fpdemo-7.0.28.tar.gz"
    artifact.write_bytes(b"a release")
    written = run_manifests_cli("write", "--out", str(tmp_path / "m"), "--artifact", str(artifact), "--set", "urgency=emergency",
                                "--set", "monitoring.consecutive_failures=2")
    assert written.returncode == 0, written.stderr
    path = Path(written.stdout.strip())
    assert path == tmp_path / "m" / "FP-2025-14847.yml"
    record = load_manifest(path)
    assert (record["fixed_version"], record["urgency"], record["artifact"]["path"]) == ("7.0.28", "emergency", str(artifact))
    assert record["artifact"]["sha256"] == hashlib.sha256(b"a release").hexdigest()
    assert health_args(record)["consecutive_failures"] == 2 and health_args(record)["thresholds"] == manifests.TEST_MONITORING["thresholds"]

    missing = run_manifests_cli("write", "--out", str(tmp_path / "n"), "--artifact", str(tmp_path / "none.tar.gz"))
    assert missing.returncode == 2 and f"--artifact: no such file: {tmp_path / 'none.tar.gz'}" in missing.stderr
    malformed = run_manifests_cli("write", "--out", str(tmp_path / "n"), "--artifact", str(artifact), "--set", "urgency")
    assert malformed.returncode == 2 and "--set: expected KEY=VALUE, got 'urgency'" in malformed.stderr
    assert not (tmp_path / "n").exists()
