"""Releases on disk: unpacking only sound artifacts, complete releases, the atomic current link."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import (
    Service,
    current_version,
    release_complete,
    release_dir,
    sha256_file,
    switch_current,
    unpack_artifact,
)


def make_tarball(path, members):
    """A tar.gz with these (name, kind, data) members; kind is 'file', 'dir' or 'symlink'."""
    with tarfile.open(path, "w:gz") as archive:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                archive.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o755 if name.endswith(".sh") else 0o644
                archive.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


GOOD = [("app-7.0.28", "dir", b""), ("app-7.0.28/VERSION", "file", b"7.0.28\n"), ("app-7.0.28/bin/run.sh", "file", b"echo hi\n")]


def test_unpack_a_sound_artifact(tmp_path):
    artifact, digest = make_tarball(tmp_path / "a.tar.gz", GOOD)
    unpack_artifact(str(artifact), digest, str(tmp_path / "srv"), "7.0.28")
    assert release_complete(str(tmp_path / "srv"), "7.0.28")
    assert (tmp_path / "srv/releases/7.0.28/bin/run.sh").stat().st_mode & 0o777 == 0o755
    assert sorted(os.listdir(tmp_path / "srv/releases")) == ["7.0.28"]  # no staging left behind


def test_wrong_checksum_and_truncation(tmp_path):
    artifact, digest = make_tarball(tmp_path / "a.tar.gz", GOOD)
    with pytest.raises(PatchError) as error:
        unpack_artifact(str(artifact), "0" * 64, str(tmp_path / "srv"), "7.0.28")
    assert str(error.value) == f"artifact {artifact} has sha256 {digest}, expected {'0' * 64}: refusing it"
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])
    with pytest.raises(PatchError) as error:
        unpack_artifact(str(artifact), sha256_file(str(artifact)), str(tmp_path / "srv"), "7.0.28")
    assert str(error.value) == (f"artifact {artifact}: not a readable gzip tar archive (truncated or corrupt): "
                                "Compressed file ended before the end-of-stream marker was reached")
    assert os.listdir(tmp_path / "srv/releases") == []


def test_switch_current_is_relative_and_refuses_incomplete_releases(tmp_path):
    install = tmp_path / "srv"
    assert current_version(str(install)) is None
    for version in ("7.0.26", "7.0.28"):
        os.makedirs(release_dir(str(install), version))
        (install / "releases" / version / "VERSION").write_text(f"{version}\n", encoding="utf-8")
    os.makedirs(release_dir(str(install), "7.0.30"))  # no VERSION: incomplete
    switch_current(str(install), "7.0.26")
    assert os.readlink(install / "current") == "releases/7.0.26"
    switch_current(str(install), "7.0.28")
    assert current_version(str(install)) == "7.0.28"
    with pytest.raises(PatchError, match=r"release 7\.0\.30 is not installed completely"):
        switch_current(str(install), "7.0.30")
    assert current_version(str(install)) == "7.0.28"
    assert sorted(os.listdir(install)) == ["current", "releases"]
    assert release_complete(str(install), "7.0.28") and not release_complete(str(install), "7.0.30")
    assert not release_complete(str(install), "9.9.9")


class ServiceHost:
    """Commands that answer ``rc``, and a version URL that answers each of ``answers`` in turn (then the last; None: no answer)."""

    def __init__(self, rc=0, answers=('{"version": "7.0.28"}',)):
        self.rc = rc
        self.answers = list(answers)
        self.ran = []

    def run(self, argv):
        self.ran.append(argv)
        return self.rc, "", "boom" if self.rc else ""

    def get(self, url, timeout):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is None:
            raise PatchError(f"GET {url} failed: Connection refused")
        return answer


SERVICE = {"reload_command": ["reload"], "restart_command": ["restart"], "reload_signal": None, "pid_file": None,
           "version_url": "http://127.0.0.1:1/version", "version_key": "version", "confirm_timeout": 1}


@pytest.mark.parametrize(("patch_class", "ran"), [("hot", [["reload"]]), ("restart", [["restart"]])])
def test_service_activate_reloads_a_hot_patch_and_restarts_the_rest(patch_class, ran):
    host = ServiceHost()
    Service(host, SERVICE).activate(patch_class)
    assert host.ran == ran


@pytest.mark.parametrize(
    ("params", "patch_class", "message"),
    [
        ({"rc": 1}, "hot", "reload_command ['reload'] exited 1: boom"),
        ({"rc": 1}, "restart", "restart_command ['restart'] exited 1: boom"),
        ({"reload_command": None}, "hot", "no reload_command given: set the option reload_command"),
        ({"reload_signal": "NOPE", "pid_file": "/x"}, "hot", "reload_signal 'NOPE' is not a signal name such as HUP"),
        ({"reload_signal": "HUP", "pid_file": "/nonexistent/fp.pid"}, "hot",
         "cannot send SIGHUP to the process in /nonexistent/fp.pid: [Errno 2] No such file or directory: '/nonexistent/fp.pid'"),
    ],
)
def test_service_activation_failures(params, patch_class, message):
    host = ServiceHost(rc=params.pop("rc", 0))
    with pytest.raises(PatchError) as error:
        Service(host, {**SERVICE, **params}).activate(patch_class)
    assert str(error.value) == message


def test_service_reload_by_signal_reaches_the_process_in_the_pid_file(tmp_path):
    code = "import signal, sys, time; signal.signal(signal.SIGHUP, lambda *a: sys.exit(7)); print('ready', flush=True); time.sleep(30)"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout.readline() == "ready\n"
        (tmp_path / "svc.pid").write_text(f"{child.pid}\n", encoding="utf-8")
        Service(ServiceHost(), {**SERVICE, "reload_signal": "SIGHUP", "pid_file": str(tmp_path / "svc.pid")}).activate("hot")
        assert child.wait(10) == 7
    (tmp_path / "svc.pid").write_text("not a pid\n", encoding="utf-8")
    with pytest.raises(PatchError, match="^cannot send SIGHUP to the process in .*invalid literal for int"):
        Service(ServiceHost(), {**SERVICE, "reload_signal": "HUP", "pid_file": str(tmp_path / "svc.pid")}).activate("hot")


@pytest.mark.parametrize(
    ("answer", "version"),
    [
        ('{"version": "7.0.28"}', "7.0.28"),
        ('{"version": 7}', "7"),
        ('{"other": "7.0.28"}', None),
        ("[]", None),
        ("not json", None),
        (None, None),
    ],
)
def test_service_running_version(answer, version):
    assert Service(ServiceHost(answers=[answer]), SERVICE).running_version() == version


@pytest.mark.parametrize(
    ("answers", "wanted", "seen"),
    [
        (['{"version": "7.0.26"}', '{"version": "7.0.28"}'], "7.0.28", "7.0.28"),  # answers the new version after a while
        (['{"version": "7.0.26"}'], "7.0.28", "7.0.26"),  # never does: the last answer, after confirm_timeout
        ([None], "7.0.28", None),
    ],
)
def test_service_confirm(answers, wanted, seen):
    assert Service(ServiceHost(answers=answers), SERVICE).confirm(wanted) == seen
