"""The fault injection of the fault x phase suite (fleetpatch_dev.injection): broken artifacts are refused by the
collection's own artifact check for the reason they were broken, a ballast release is sound, a killed controller
takes its children with it, the health watch counts a service that is down, and a wait names what it waited for."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from fleetpatch_dev import injection
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, verify_artifact


def expected_sha256(artifact):
    return artifact.with_name(f"{artifact.name}.sha256").read_text(encoding="utf-8").split()[0]


@pytest.mark.parametrize(("breaker", "message"), [
    (injection.truncated_artifact,
     r"artifact {path}: not a readable gzip tar archive \(truncated or corrupt\): Compressed file ended before the end-of-stream marker was reached"),
    (injection.corrupt_artifact,
     r"artifact {path}: sha256 mismatch: expected {original}, actual [0-9a-f]{{64}}\n"
     r"artifact {path}: not a readable gzip tar archive \(truncated or corrupt\): .+"),
])
def test_a_broken_artifact_is_refused_for_what_broke_it(fpdemo_artifacts, tmp_path, breaker, message):
    source = fpdemo_artifacts["7.0.28"].path
    broken = breaker(source, tmp_path / "broken")
    assert broken.name == source.name and broken.read_bytes() != source.read_bytes()
    with pytest.raises(ArtifactError) as refused:
        verify_artifact(broken, expected_sha256(broken), version="7.0.28")
    assert re.fullmatch(message.format(path=re.escape(str(broken)), original=expected_sha256(source)), str(refused.value)), str(refused.value)


def test_a_ballast_release_is_sound_and_as_large_as_asked(fpdemo_artifacts, tmp_path):
    source = fpdemo_artifacts["7.0.28"].path
    heavy = injection.ballast_artifact(source, tmp_path / "heavy", 3)
    checked = verify_artifact(heavy, expected_sha256(heavy), version="7.0.28")
    assert checked["sha256"] == expected_sha256(heavy)
    assert checked["size"] > 3 * 1024 * 1024 > source.stat().st_size  # random data does not compress


def test_a_killed_controller_takes_its_children_with_it(tmp_path):
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); print('up', flush=True); time.sleep(300)"
    controller = injection.Controller([sys.executable, "-c", script], {"PATH": "/usr/bin:/bin"}, tmp_path / "run.log")
    injection.wait_until(lambda: "up" in controller.output(), timeout=30, what="the controller's start")
    children = subprocess.run(["pgrep", "-s", str(controller.pid)], capture_output=True, text=True, check=False).stdout.split()
    assert len(children) == 2, children  # the controller and its sleep, in its own session
    controller.kill()
    assert not controller.running() and controller.process.returncode == -9
    injection.wait_until(lambda: subprocess.run(["pgrep", "-s", str(controller.pid)], check=False).returncode == 1, timeout=10,
                         what="the end of the controller's session")


class OneHost:
    """What HealthWatch asks of a fleet, for one local fpdemo host."""

    def __init__(self, host):
        self.host = host

    def service_url(self, _name, path):
        return f"http://127.0.0.1:{self.host.port}{path}"


def test_the_health_watch_keeps_the_most_hosts_down_at_once(fpdemo_host):
    fpdemo_host.install("7.0.28")
    fpdemo_host.ctl("start")
    with injection.HealthWatch(OneHost(fpdemo_host), ["local"], timeout=1) as watch:
        injection.wait_until(lambda: watch.samples >= 3, timeout=30, what="three samples")
        assert watch.worst == 0
        fpdemo_host.ctl("stop")
        injection.wait_until(lambda: watch.worst == 1, timeout=30, what="the stopped service seen")
    assert watch.worst_hosts == ["local"]


@pytest.mark.parametrize(("alive", "message"), [
    (None, "no moment within 0.05 s"),
    (lambda: False, "the run ended before moment"),
])
def test_a_wait_that_gives_up_names_what_it_waited_for(alive, message):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"^{message}$"):
        injection.wait_until(lambda: None, timeout=0.05, what="moment", alive=alive)
    assert time.monotonic() - started < 5
