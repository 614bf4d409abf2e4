"""Releases on disk: unpacking only sound artifacts, complete releases, the atomic current link."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import (
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


@pytest.mark.parametrize(
    ("members", "version", "message"),
    [
        (GOOD + [("other/x", "file", b"")], "7.0.28", "must hold one top directory, found ['app-7.0.28', 'other']"),
        (GOOD + [("app-7.0.28/../../evil", "file", b"")], "7.0.28", "member 'app-7.0.28/../../evil' leaves the release directory"),
        (GOOD + [("app-7.0.28/link", "symlink", "/etc/passwd")], "7.0.28", "member 'app-7.0.28/link' is not a regular file or directory"),
        (GOOD[:1] + GOOD[2:], "7.0.28", "has no VERSION file; it is not a fleetpatch release of 7.0.28"),
        (GOOD, "7.0.29", "holds version '7.0.28', not '7.0.29'"),
    ],
)
def test_unsound_artifacts_leave_releases_untouched(tmp_path, members, version, message):
    artifact, digest = make_tarball(tmp_path / "a.tar.gz", members)
    (tmp_path / "srv/releases").mkdir(parents=True)
    with pytest.raises(PatchError) as error:
        unpack_artifact(str(artifact), digest, str(tmp_path / "srv"), version)
    assert message in str(error.value)
    assert os.listdir(tmp_path / "srv/releases") == []


def test_wrong_checksum_and_truncation(tmp_path):
    artifact, digest = make_tarball(tmp_path / "a.tar.gz", GOOD)
    with pytest.raises(PatchError) as error:
        unpack_artifact(str(artifact), "0" * 64, str(tmp_path / "srv"), "7.0.28")
    assert str(error.value) == f"artifact {artifact} has sha256 {digest}, expected {'0' * 64}: refusing it"
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])
    with pytest.raises(PatchError, match="cannot be unpacked"):
        unpack_artifact(str(artifact), sha256_file(str(artifact)), str(tmp_path / "srv"), "7.0.28")
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
