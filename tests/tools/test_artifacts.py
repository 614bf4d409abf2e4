"""The fpdemo release catalogue, the reproducible artifact builder and the installer."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fleetpatch_dev import artifacts

REPO = Path(__file__).resolve().parents[2]
VALID_ENTRY = {
    "version": "7.0.26", "abi": 1, "validates_declared_length": False, "fault": None, "fault_delay_ms": 0,
    "description": "Affected.",
}
DROP = object()


def catalogue_with(**changes) -> dict:
    """A one-release catalogue document with some fields of the entry changed (DROP removes one)."""
    entry = {key: value for key, value in {**VALID_ENTRY, **changes}.items() if value is not DROP}
    return {"component": "fpdemo", "releases": [entry]}


def craft_tarball(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """Write a tar.gz whose members are (name, file content) or (name, symlink target as str)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
    return path


def release_members(version: str = "7.0.26", top: str = "fpdemo-7.0.26") -> list[tuple[str, bytes | str]]:
    """The members of a well-formed release tarball."""
    release = json.dumps({"component": "fpdemo", "version": version, "abi": 1}).encode()
    return [(f"{top}/VERSION", f"{version}\n".encode()), (f"{top}/release.json", release), (f"{top}/fpdemo/server.py", b"")]


@pytest.mark.parametrize(("version", "abi", "validates", "fault", "delay"), [
    ("7.0.26", 1, False, None, 0),
    ("7.0.27", 1, False, None, 0),
    ("7.0.28", 1, True, None, 0),
    ("7.0.29", 1, True, "health", 0),
    ("7.0.30", 1, True, "slow", 300),
    ("8.0.16", 2, False, None, 0),
    ("8.0.17", 2, True, None, 0),
])
def test_catalogue(version, abi, validates, fault, delay):
    release = artifacts.load_catalogue()[version]
    assert (release.abi, release.validates_declared_length, release.fault, release.fault_delay_ms) == (abi, validates, fault, delay)
    assert release.release_json() == {
        "component": "fpdemo", "version": version, "abi": abi, "validates_declared_length": validates, "fault": fault,
        "fault_delay_ms": delay,
    }


def test_catalogue_lists_exactly_the_demo_releases():
    assert list(artifacts.load_catalogue()) == ["7.0.26", "7.0.27", "7.0.28", "7.0.29", "7.0.30", "8.0.16", "8.0.17"]


@pytest.mark.parametrize(("document", "error"), [
    (catalogue_with(colour="red"), "release 7.0.26: unknown key 'colour'"),
    (catalogue_with(abi=DROP), "release 7.0.26: missing key 'abi'"),
    (catalogue_with(version="7.0"), "releases[0]: version must be a string MAJOR.MINOR.PATCH, got '7.0'"),
    (catalogue_with(version="v7.0.26"), "releases[0]: version must be a string MAJOR.MINOR.PATCH, got 'v7.0.26'"),
    (catalogue_with(version=7.1), "releases[0]: version must be a string MAJOR.MINOR.PATCH, got 7.1"),
    (catalogue_with(fault="crash"), "release 7.0.26: fault must be one of null, 'health', 'slow', got 'crash'"),
    (catalogue_with(abi=0), "release 7.0.26: abi must be a positive integer, got 0"),
    (catalogue_with(abi=True), "release 7.0.26: abi must be a positive integer, got True"),
    (catalogue_with(validates_declared_length="yes"), "release 7.0.26: validates_declared_length must be true or false, got 'yes'"),
    (catalogue_with(fault_delay_ms=-1), "release 7.0.26: fault_delay_ms must be a non-negative integer, got -1"),
    (catalogue_with(fault="slow"), "release 7.0.26: fault_delay_ms must be > 0 exactly when fault is 'slow', got 0"),
    (catalogue_with(fault_delay_ms=300), "release 7.0.26: fault_delay_ms must be > 0 exactly when fault is 'slow', got 300"),
    (catalogue_with(description=" "), "release 7.0.26: description must be a non-empty string, got ' '"),
    ({"component": "mongod", "releases": [VALID_ENTRY]}, "catalogue: component must be 'fpdemo', got 'mongod'"),
    ({"component": "fpdemo", "releases": []}, "catalogue: releases must be a non-empty list, got []"),
    ({"component": "fpdemo", "releases": ["7.0.26"]}, "releases[0]: expected a mapping, got '7.0.26'"),
    ({"component": "fpdemo", "releases": [VALID_ENTRY, VALID_ENTRY]}, "release 7.0.26: listed twice"),
    ({"releases": [VALID_ENTRY]}, "catalogue: expected a mapping with exactly the keys 'component' and 'releases'"),
])
def test_catalogue_validation(document, error):
    with pytest.raises(ValueError) as raised:
        artifacts.parse_catalogue(document)
    assert str(raised.value) == error


def test_build_is_reproducible(tmp_path):
    first = artifacts.build("7.0.26", tmp_path / "a")
    second = artifacts.build("7.0.26", tmp_path / "b")
    assert first.sha256 == second.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path == tmp_path / "a" / "fpdemo-7.0.26.tar.gz"
    sidecar = tmp_path / "a" / "fpdemo-7.0.26.tar.gz.sha256"
    assert sidecar.read_text(encoding="utf-8") == f"{first.sha256}  fpdemo-7.0.26.tar.gz\n"


def test_tarball_layout_and_metadata(fpdemo_artifacts):
    data = fpdemo_artifacts["7.0.30"].path.read_bytes()
    assert data[3] == 0 and data[4:8] == bytes(4), "gzip header must carry no file name and mtime 0"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        files = {member.name: tar.extractfile(member).read() for member in members if member.isfile()}
    assert [member.name for member in members] == [
        "fpdemo-7.0.30", "fpdemo-7.0.30/VERSION", "fpdemo-7.0.30/fpdemo", "fpdemo-7.0.30/fpdemo/__init__.py",
        "fpdemo-7.0.30/fpdemo/server.py", "fpdemo-7.0.30/release.json",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members if m.isdir()} == {"fpdemo-7.0.30": 0o755, "fpdemo-7.0.30/fpdemo": 0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert files["fpdemo-7.0.30/VERSION"] == b"7.0.30\n"
    assert json.loads(files["fpdemo-7.0.30/release.json"]) == artifacts.load_catalogue()["7.0.30"].release_json()
    assert files["fpdemo-7.0.30/fpdemo/server.py"] == (REPO / "demo" / "fpdemo" / "server.py").read_bytes()


def test_build_all_writes_sha256sums(fpdemo_artifacts):
    out = next(iter(fpdemo_artifacts.values())).path.parent
    lines = (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert lines == [f"{a.sha256}  fpdemo-{v}.tar.gz" for v, a in fpdemo_artifacts.items()]
    for artifact in fpdemo_artifacts.values():
        assert hashlib.sha256(artifact.path.read_bytes()).hexdigest() == artifact.sha256


def test_build_unknown_release(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown release '9\.9\.9'; the catalogue has 7\.0\.26, 7\.0\.27, "):
        artifacts.build("9.9.9", tmp_path)


def test_install_layout(tmp_path, fpdemo_artifacts):
    root = tmp_path / "host"
    release_dir = artifacts.install(root, fpdemo_artifacts["7.0.26"].path, port=9090)
    base = root / "srv" / "fpdemo"
    assert release_dir == base / "releases" / "7.0.26"
    assert sorted(str(p.relative_to(release_dir)) for p in release_dir.rglob("*")) == [
        "VERSION", "fpdemo", "fpdemo/__init__.py", "fpdemo/server.py", "release.json",
    ]
    assert os.readlink(base / "current") == "releases/7.0.26"
    ctl = base / "bin" / "fpdemoctl.py"
    assert ctl.read_bytes() == (REPO / "demo" / "fpdemo" / "fpdemoctl.py").read_bytes()
    assert ctl.stat().st_mode & 0o777 == 0o644
    assert json.loads((root / "etc" / "fpdemo" / "fpdemo.json").read_text(encoding="utf-8")) == {
        "port": 9090, "bind": "0.0.0.0", "install_dir": "/srv/fpdemo", "flags_file": "/etc/fpdemo/flags.json",
        "pid_file": "/run/fpdemo/fpdemo.pid", "log_file": "/var/log/fpdemo/fpdemo.log", "data_dir": "/var/lib/fpdemo/data",
    }


def test_install_without_activation_and_reinstall(tmp_path, fpdemo_artifacts):
    root = tmp_path / "host"
    artifacts.install(root, fpdemo_artifacts["7.0.26"].path)
    artifacts.install(root, fpdemo_artifacts["7.0.28"].path, activate=False)
    base = root / "srv" / "fpdemo"
    assert os.readlink(base / "current") == "releases/7.0.26"
    (base / "releases" / "7.0.28" / "VERSION").write_text("tampered\n", encoding="utf-8")
    artifacts.install(root, fpdemo_artifacts["7.0.28"].path)
    assert os.readlink(base / "current") == "releases/7.0.28"
    assert (base / "releases" / "7.0.28" / "VERSION").read_text(encoding="utf-8") == "7.0.28\n"
    assert sorted(p.name for p in (base / "releases").iterdir()) == ["7.0.26", "7.0.28"]
    assert sorted(p.name for p in base.iterdir()) == ["bin", "current", "releases"]


@pytest.mark.parametrize(("members", "error"), [
    (release_members() + [("fpdemo-7.0.26/../../etc/cron.d/x", b"")], "member 'fpdemo-7.0.26/../../etc/cron.d/x' escapes the archive's top directory"),
    (release_members() + [("/etc/cron.d/x", b"")], "member '/etc/cron.d/x' escapes the archive's top directory"),
    (release_members() + [("fpdemo-7.0.26/fpdemo/x", "/etc/shadow")], "member 'fpdemo-7.0.26/fpdemo/x' is not a regular file or directory"),
    (release_members() + [("elsewhere/x", b"")], "member 'elsewhere/x' is outside the top directory 'fpdemo-7.0.26'"),
    ([("x", b"")], "member 'x' is a file outside any top directory"),
    (release_members(top="fpdemo-7.0.28"), "top directory 'fpdemo-7.0.28', VERSION and release.json disagree"),
    (release_members()[1:], "missing or invalid release.json or VERSION: 'VERSION'"),
    (release_members()[:2], "fpdemo/server.py is missing"),
])
def test_install_rejects_bad_archives(tmp_path, members, error):
    artifact = craft_tarball(tmp_path / "fpdemo-7.0.26.tar.gz", members)
    root = tmp_path / "host"
    with pytest.raises(ValueError) as raised:
        artifacts.install(root, artifact)
    assert str(raised.value) == f"rejected {artifact}: {error}"
    assert not root.exists()


def test_install_rejects_truncated_and_corrupt_artifacts(tmp_path, fpdemo_artifacts):
    built = fpdemo_artifacts["7.0.26"]
    artifact = tmp_path / built.path.name
    shutil.copy(built.path, artifact)
    shutil.copy(built.path.with_name(f"{built.path.name}.sha256"), tmp_path)
    artifact.write_bytes(built.path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"^rejected .*: sha256 [0-9a-f]{64} does not match fpdemo-7\.0\.26\.tar\.gz\.sha256$"):
        artifacts.install(tmp_path / "host", artifact)
    artifact.with_name(f"{artifact.name}.sha256").unlink()
    with pytest.raises(ValueError, match=r"^rejected .*: not a readable tar\.gz archive: "):
        artifacts.install(tmp_path / "host", artifact)
    assert not (tmp_path / "host").exists()


def test_install_rejects_unknown_settings(tmp_path, fpdemo_artifacts):
    with pytest.raises(ValueError) as raised:
        artifacts.install(tmp_path, fpdemo_artifacts["7.0.26"].path, settings={"port": 1})
    assert str(raised.value) == "unknown setting(s) port; allowed: bind, flags_file, pid_file, log_file, data_dir"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m fleetpatch_dev.artifacts`` as a user would."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "tools")}
    return subprocess.run(
        [sys.executable, "-m", "fleetpatch_dev.artifacts", *args], capture_output=True, text=True, env=env, check=False, timeout=60,
    )


def test_cli_build_and_list(tmp_path, fpdemo_artifacts):
    result = run_cli("build", "--out", str(tmp_path), "--version", "7.0.26", "--version", "8.0.17")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{v} {fpdemo_artifacts[v].sha256} {tmp_path / f'fpdemo-{v}.tar.gz'}" for v in ("7.0.26", "8.0.17")
    ]
    listing = run_cli("list").stdout.splitlines()
    assert [line.split()[0] for line in listing] == list(fpdemo_artifacts)
    assert listing[3].split()[:6] == ["7.0.29", "abi", "1", "fixed", "fault", "health"]
    failed = run_cli("build", "--out", str(tmp_path), "--version", "6.0.0")
    assert (failed.returncode, failed.stderr.split(";")[0]) == (1, "error: unknown release '6.0.0'")
