# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rule for a release archive: what a host unpacks is exactly what the controller lets through.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A release artifact is a gzip-compressed tar archive that

- holds one top directory, and every other member below it;
- holds only regular files and directories: no symbolic or hard links, no devices, no FIFOs;
- has no absolute member names and no ``..``, no name twice, and nothing below a file;
- has a ``VERSION`` file directly in its top directory that names the release's version;
- is complete: the gzip stream is read to its end, where its CRC and length are checked, and every member's
  data is read, so a truncated or corrupted file is caught even when its first members are intact.

:func:`release_entries` reads the archive once, in order, and yields each file and directory below the top
directory as it comes; it raises :class:`ArchiveError` at the first thing the rule refuses, at the latest when
the archive ends. The host (``_release.unpack_artifact``) writes what it yields into a staging directory that
becomes the release only once the iteration has finished; the controller (``plugin_utils/_artifact.py``) calls
:func:`check_release_archive`, which reads everything and writes nothing. Both refuse the same archives with
the same message, which names the member; a broken gzip stream is reported before any member's problem.
"""

from __future__ import annotations

import collections
import gzip
import io
import tarfile
import zlib

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = ["ArchiveError", "Entry", "check_release_archive", "release_entries"]

CHUNK = 1024 * 1024
MAX_VERSION_FILE = 4096  # bytes; a VERSION file holds one version and a newline
_UNREADABLE = (tarfile.TarError, EOFError, OSError, zlib.error)
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}

Entry = collections.namedtuple("Entry", "path data executable")
Entry.__doc__ = """One file or directory of a release: ``path`` below the top directory; ``data`` a readable for a
file, None for a directory; ``executable`` whether any execute bit is set."""


class ArchiveError(PatchError):
    """An archive the rule refuses; the message says what is wrong and names the member, not the file."""


def _unreadable(exc):
    return ArchiveError(f"not a readable gzip tar archive (truncated or corrupt): {exc}")


class _Data(io.RawIOBase):
    """A member's data; a read that finds the archive cut off or corrupt raises ArchiveError."""

    def __init__(self, stream):
        super().__init__()
        self._stream = stream

    def readable(self):
        return True

    def readinto(self, buffer):
        try:
            data = self._stream.read(len(buffer))
        except _UNREADABLE as exc:
            raise _unreadable(exc) from None
        buffer[:len(data)] = data
        return len(data)


class _Rule:
    """The members seen so far, and the first problem with the next one."""

    def __init__(self, version):
        self.version = version
        self.top = None
        self.kinds = {}  # path below the top -> "file" or "dir", parents of members included
        self.listed = set()  # paths that were members themselves
        self.version_seen = False
        self.members = 0

    def refuse(self, member):
        """Why ``member`` breaks the rule, or None; a member that passes is recorded."""
        name = member.name
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            return f"member {name!r} would land outside the release directory"
        if not (member.isfile() or member.isdir()):
            kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
            link = f" to {member.linkname!r}" if member.issym() or member.islnk() else ""
            return f"member {name!r} is {kind}{link}: a release holds only regular files and directories"
        if not parts:
            return None if member.isdir() else f"member {name!r} has no name"
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            return f"member {name!r} is outside the top directory {self.top!r}: a release holds one top directory"
        path = "/".join(parts[1:])
        if not path:
            return None if member.isdir() else f"member {name!r} is a file where the release's top directory must be"
        kind = "file" if member.isfile() else "dir"
        for depth in range(1, len(parts) - 1):
            parent = "/".join(parts[1:depth + 1])
            if self.kinds.get(parent) == "file":
                return f"member {name!r} lies below {self.top + '/' + parent!r}, which is a file"
            self.kinds[parent] = "dir"
        if path in self.listed:
            return f"member {name!r} appears twice"
        if kind == "file" and self.kinds.get(path) == "dir":
            return f"member {name!r} is a file, but other members lie below it"
        self.kinds[path] = kind
        self.listed.add(path)
        self.members += 1
        return None

    def check_version(self, member, data):
        """Why the VERSION file's ``data`` does not name the version, or None."""
        if len(data) > MAX_VERSION_FILE:
            return f"member {member.name!r} is more than {MAX_VERSION_FILE} bytes: not a VERSION file"
        found = data.decode("utf-8", "replace").strip()
        if found != self.version:
            return f"member {member.name!r} names version {found!r}, not {self.version!r}"
        self.version_seen = True
        return None

    def final(self):
        """Why the whole archive, read to its end, breaks the rule, or None."""
        if not self.members and self.top is None:
            return "the archive holds no files"
        if not self.version_seen:
            return f"no VERSION file in the top directory {self.top!r}: not a fleetpatch release of {self.version}"
        return None


def release_entries(path, version):
    """Yield the :class:`Entry` of every file and directory below the top directory of the archive at ``path``.

    Raises :class:`ArchiveError` when the archive breaks the rule (see the module's docstring), at the latest
    once it has been read to its end; what was yielded before then must be discarded. Read each entry's data
    before asking for the next one (the archive is read as a stream).
    """
    if not isinstance(version, str) or not version.strip():
        raise ArchiveError(f"the version its VERSION file must name is required, got {version!r}")
    rule = _Rule(version)
    problem = None
    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    problem = rule.refuse(member)
                    if problem:
                        break
                    parts = [part for part in member.name.split("/") if part not in ("", ".")]
                    relative = "/".join(parts[1:])
                    if not relative:
                        continue
                    if member.isdir():
                        yield Entry(relative, None, False)
                        continue
                    data = _Data(tar.extractfile(member))
                    if relative == "VERSION":
                        content = data.read(MAX_VERSION_FILE + 1)
                        problem = rule.check_version(member, content)
                        if problem:
                            break
                        data = io.BytesIO(content + data.read())
                    yield Entry(relative, data, bool(member.mode & 0o111))
                    while data.read(CHUNK):  # whatever the reader left: every member is read to its end
                        pass
            # The gzip stream to its end, past the tar's end-of-archive blocks: only there are its CRC and length checked.
            while stream.read(CHUNK):
                pass
    except _UNREADABLE as exc:
        raise _unreadable(exc) from None
    problem = problem or rule.final()
    if problem:
        raise ArchiveError(problem)


def check_release_archive(path, version):
    """Read the archive at ``path`` to its end; raise :class:`ArchiveError` unless it is a sound release of ``version``.

    Returns the number of files and directories it holds below its top directory.
    """
    count = 0
    for _entry in release_entries(path, version):
        count += 1
    return count
