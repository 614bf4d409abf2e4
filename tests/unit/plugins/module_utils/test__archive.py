"""The one archive rule, and that the host's unpack and the controller's check both apply it, word for word.

Every hostile or odd archive below is refused by the rule with the exact message; the host's unpack_artifact
refuses it with ``artifact <path>: <that message>`` and leaves nothing under ``releases/``; the controller's
verify_artifact refuses it with the very same text, before anything would be shipped.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tarfile
import zlib

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._archive import ArchiveError, check_release_archive, release_entries
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import unpack_artifact
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, verify_artifact

TOP = "app-7.0.28"


def entry(name, kind="file", data=b"", target="", mode=None):
    """A tar member: (TarInfo, data or None)."""
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                 "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = target
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    if kind == "file":
        info.size = len(data)
        return info, data
    return info, None


def tar_bytes(members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


GOOD = [entry(TOP, "dir"), entry(f"{TOP}/VERSION", data=b"7.0.28\n"), entry(f"{TOP}/bin", "dir"),
        entry(f"{TOP}/bin/run.sh", data=b"echo hi\n", mode=0o755)]
SOUND = gzip.compress(tar_bytes(GOOD), mtime=0)


def gz(members):
    return gzip.compress(tar_bytes(members), mtime=0)


def with_crc_flipped(data):
    """The sound archive with its gzip trailer's CRC changed: every member reads fine, the stream's end does not."""
    return data[:-8] + struct.pack("<I", zlib.crc32(gzip.decompress(data)) ^ 1) + data[-4:]


def crc_message():
    crc = zlib.crc32(gzip.decompress(SOUND))
    return f"not a readable gzip tar archive (truncated or corrupt): CRC check failed {hex(crc ^ 1)} != {hex(crc)}"


UNREADABLE = "not a readable gzip tar archive (truncated or corrupt): "
ONLY = ": a release holds only regular files and directories"

HOSTILE = [  # (id, archive bytes, version, the rule's message)
    ("symlink", gz(GOOD + [entry(f"{TOP}/link", "symlink", target="/etc/passwd")]), "7.0.28",
     f"member '{TOP}/link' is a symbolic link to '/etc/passwd'{ONLY}"),
    ("symlink-inside", gz(GOOD + [entry(f"{TOP}/current", "symlink", target="bin")]), "7.0.28",
     f"member '{TOP}/current' is a symbolic link to 'bin'{ONLY}"),
    ("hardlink", gz(GOOD + [entry(f"{TOP}/again", "hardlink", target=f"{TOP}/VERSION")]), "7.0.28",
     f"member '{TOP}/again' is a hard link to '{TOP}/VERSION'{ONLY}"),
    ("char-device", gz(GOOD + [entry(f"{TOP}/null", "chr")]), "7.0.28", f"member '{TOP}/null' is a character device{ONLY}"),
    ("block-device", gz(GOOD + [entry(f"{TOP}/sda", "blk")]), "7.0.28", f"member '{TOP}/sda' is a block device{ONLY}"),
    ("fifo", gz(GOOD + [entry(f"{TOP}/pipe", "fifo")]), "7.0.28", f"member '{TOP}/pipe' is a FIFO{ONLY}"),
    ("two-top-dirs", gz(GOOD + [entry("other", "dir"), entry("other/x", data=b"x")]), "7.0.28",
     f"member 'other' is outside the top directory '{TOP}': a release holds one top directory"),
    ("files-at-the-root", gz([entry("VERSION", data=b"7.0.28\n"), entry("run.sh", data=b"x")]), "7.0.28",
     "member 'VERSION' is a file where the release's top directory must be"),
    ("dot-dot", gz(GOOD + [entry(f"{TOP}/../../etc/cron.d/evil", data=b"x")]), "7.0.28",
     f"member '{TOP}/../../etc/cron.d/evil' would land outside the release directory"),
    ("dot-dot-first", gz([entry("../etc/cron.d/evil", data=b"x")] + GOOD), "7.0.28",
     "member '../etc/cron.d/evil' would land outside the release directory"),
    ("absolute", gz(GOOD + [entry("/etc/passwd", data=b"x")]), "7.0.28", "member '/etc/passwd' would land outside the release directory"),
    ("no-version", gz([GOOD[0]] + GOOD[2:]), "7.0.28", f"no VERSION file in the top directory '{TOP}': not a fleetpatch release of 7.0.28"),
    ("version-is-a-directory", gz([GOOD[0], entry(f"{TOP}/VERSION", "dir")] + GOOD[2:]), "7.0.28",
     f"no VERSION file in the top directory '{TOP}': not a fleetpatch release of 7.0.28"),
    ("version-deeper", gz([GOOD[0], entry(f"{TOP}/bin", "dir"), entry(f"{TOP}/bin/VERSION", data=b"7.0.28\n")]), "7.0.28",
     f"no VERSION file in the top directory '{TOP}': not a fleetpatch release of 7.0.28"),
    ("other-version", SOUND, "7.0.29", f"member '{TOP}/VERSION' names version '7.0.28', not '7.0.29'"),
    ("version-not-a-version", gz([GOOD[0], entry(f"{TOP}/VERSION", data=b"\xff7.0.28")]), "7.0.28",
     f"member '{TOP}/VERSION' names version '\ufffd7.0.28', not '7.0.28'"),
    ("huge-version", gz([GOOD[0], entry(f"{TOP}/VERSION", data=b"7" * 5000)]), "7.0.28",
     f"member '{TOP}/VERSION' is more than 4096 bytes: not a VERSION file"),
    ("twice", gz(GOOD + [entry(f"{TOP}/bin/run.sh", data=b"rm -rf /\n")]), "7.0.28", f"member '{TOP}/bin/run.sh' appears twice"),
    ("below-a-file", gz(GOOD + [entry(f"{TOP}/bin/run.sh/x", data=b"x")]), "7.0.28",
     f"member '{TOP}/bin/run.sh/x' lies below '{TOP}/bin/run.sh', which is a file"),
    ("file-over-a-directory", gz(GOOD + [entry(f"{TOP}/lib/x.py", data=b"x"), entry(f"{TOP}/lib", data=b"x")]), "7.0.28",
     f"member '{TOP}/lib' is a file, but other members lie below it"),
    ("top-is-a-file", gz([entry(TOP, data=b"x")] + GOOD[1:]), "7.0.28",
     f"member '{TOP}' is a file where the release's top directory must be"),
    ("empty-archive", gz([]), "7.0.28", "the archive holds no files"),
    ("truncated-gzip", SOUND[: len(SOUND) // 2], "7.0.28",
     UNREADABLE + "Compressed file ended before the end-of-stream marker was reached"),
    ("gzip-without-its-trailer", SOUND[:-8], "7.0.28", UNREADABLE + "Compressed file ended before the end-of-stream marker was reached"),
    ("gzip-crc-wrong", with_crc_flipped(SOUND), "7.0.28", crc_message()),
    ("tar-cut-inside-a-whole-gzip", gzip.compress(tar_bytes(GOOD)[:1100], mtime=0), "7.0.28", UNREADABLE + "unexpected end of data"),
    ("not-gzip", b"<html>404 Not Found</html>\n", "7.0.28", UNREADABLE + "Not a gzipped file (b'<h')"),
    ("plain-tar", tar_bytes(GOOD), "7.0.28", UNREADABLE + "Not a gzipped file (b'ap')"),
    ("broken-and-hostile", gz(GOOD + [entry(f"{TOP}/link", "symlink", target="/")])[:-8], "7.0.28",
     UNREADABLE + "Compressed file ended before the end-of-stream marker was reached"),  # the stream is judged first
    ("no-version-given", SOUND, None, "the version its VERSION file must name is required, got None"),
]


def write(tmp_path, data):
    path = tmp_path / "artifact.tar.gz"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("data", "version", "message"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE])
def test_the_rule_refuses(tmp_path, data, version, message):
    path, _digest = write(tmp_path, data)
    with pytest.raises(ArchiveError) as error:
        check_release_archive(str(path), version)
    assert str(error.value) == message


@pytest.mark.parametrize(("data", "version", "message"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE])
def test_the_host_refuses_with_the_rule_and_unpacks_nothing(tmp_path, data, version, message):
    path, digest = write(tmp_path, data)
    (tmp_path / "srv/releases").mkdir(parents=True)
    with pytest.raises(PatchError) as error:
        unpack_artifact(str(path), digest, str(tmp_path / "srv"), version)
    assert str(error.value) == f"artifact {path}: {message}"
    assert os.listdir(tmp_path / "srv/releases") == []


@pytest.mark.parametrize(("data", "version", "message"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE])
def test_the_controller_refuses_with_the_same_message(tmp_path, data, version, message):
    path, digest = write(tmp_path, data)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(str(path), digest, version=version)
    assert str(error.value) == f"artifact {path}: {message}"


ODD_BUT_SOUND = [  # (id, members, what the rule yields: path, file data or None, executable)
    ("the-builder's-order", GOOD, [("VERSION", b"7.0.28\n", False), ("bin", None, False), ("bin/run.sh", b"echo hi\n", True)]),
    ("no-directory-members", [entry(f"{TOP}/VERSION", data=b" 7.0.28 \n"), entry(f"{TOP}/a/b/c.txt", data=b"c")],
     [("VERSION", b" 7.0.28 \n", False), ("a/b/c.txt", b"c", False)]),
    ("dot-slash-names", [entry("./", "dir"), entry(f"./{TOP}", "dir"), entry(f"./{TOP}/VERSION", data=b"7.0.28")],
     [("VERSION", b"7.0.28", False)]),
    ("a-directory-after-its-files", [entry(f"{TOP}/lib/x.py", data=b"x"), entry(f"{TOP}/lib", "dir"), entry(f"{TOP}/VERSION", data=b"7.0.28")],
     [("lib/x.py", b"x", False), ("lib", None, False), ("VERSION", b"7.0.28", False)]),
    ("any-execute-bit", [entry(f"{TOP}/VERSION", data=b"7.0.28"), entry(f"{TOP}/tool", data=b"t", mode=0o701)],
     [("VERSION", b"7.0.28", False), ("tool", b"t", True)]),
]


@pytest.mark.parametrize(("members", "expected"), [row[1:] for row in ODD_BUT_SOUND], ids=[row[0] for row in ODD_BUT_SOUND])
def test_the_rule_accepts(tmp_path, members, expected):
    path, digest = write(tmp_path, gz(members))
    found = [(item.path, item.data.read() if item.data else None, item.executable) for item in release_entries(str(path), "7.0.28")]
    assert found == expected
    assert check_release_archive(str(path), "7.0.28") == len(expected)
    assert verify_artifact(str(path), digest, version="7.0.28") == {"sha256": digest, "size": path.stat().st_size, "signed_by": None}
    unpack_artifact(str(path), digest, str(tmp_path / "srv"), "7.0.28")
    release = tmp_path / "srv/releases/7.0.28"
    for relative, data, executable in expected:
        if data is None:
            assert (release / relative).is_dir()
        else:
            assert (release / relative).read_bytes() == data
            assert (release / relative).stat().st_mode & 0o777 == (0o755 if executable else 0o644)
