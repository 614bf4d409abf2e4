# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Releases on a host: unpack an artifact, switch the ``current`` link, reload or restart, confirm.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Layout: ``<install_dir>/releases/<version>/`` (complete releases only: they are unpacked under a dot-name and
renamed into place once every file is written and synced) and ``<install_dir>/current``, a relative link
``releases/<version>`` replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tarfile
import time

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import fsync_dir

__all__ = [
    "current_version",
    "release_dir",
    "release_complete",
    "sha256_file",
    "verify_sha256",
    "unpack_artifact",
    "switch_current",
    "Service",
]

CHUNK = 1024 * 1024


def current_version(install_dir):
    """The version ``current`` points to, or None when there is no link (nothing installed)."""
    link = os.path.join(install_dir, "current")
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link).rstrip("/"))


def release_dir(install_dir, version):
    """Where a release lives."""
    return os.path.join(install_dir, "releases", version)


def release_complete(install_dir, version):
    """True when ``releases/<version>`` exists and its VERSION file names that version."""
    try:
        with open(os.path.join(release_dir(install_dir, version), "VERSION"), encoding="utf-8") as handle:
            return handle.read().strip() == version
    except OSError:
        return False


def sha256_file(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_members(archive, version, artifact):
    """The archive's members below its single top directory, as (member, relative path); refuses anything else."""
    members = archive.getmembers()
    tops = {member.name.split("/", 1)[0] for member in members}
    if len(tops) != 1:
        raise PatchError(f"artifact {artifact} must hold one top directory, found {sorted(tops)}")
    top = tops.pop()
    selected = []
    for member in members:
        relative = member.name[len(top):].lstrip("/")
        parts = relative.split("/")
        if member.name.startswith("/") or ".." in parts:
            raise PatchError(f"artifact {artifact}: member {member.name!r} leaves the release directory")
        if not (member.isfile() or member.isdir()):
            raise PatchError(f"artifact {artifact}: member {member.name!r} is not a regular file or directory")
        if relative:
            selected.append((member, relative))
    names = {relative for _member, relative in selected}
    if "VERSION" not in names:
        raise PatchError(f"artifact {artifact} has no VERSION file; it is not a fleetpatch release of {version}")
    return selected


def verify_sha256(artifact, sha256):
    """Refuse ``artifact`` unless its sha256 is ``sha256``."""
    actual = sha256_file(artifact)
    if actual != sha256:
        raise PatchError(f"artifact {artifact} has sha256 {actual}, expected {sha256}: refusing it", expected=sha256, actual=actual)


def unpack_artifact(artifact, sha256, install_dir, version):
    """Verify ``artifact`` against ``sha256`` and unpack it as the complete release ``version``.

    Nothing under ``releases/`` changes unless the whole archive is sound: a truncated or corrupt archive, a
    wrong checksum or a VERSION that names another version are refused.
    """
    verify_sha256(artifact, sha256)
    releases = os.path.join(install_dir, "releases")
    os.makedirs(releases, mode=0o755, exist_ok=True)
    staging = os.path.join(releases, f".staging-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.mkdir(staging, 0o755)
    try:
        try:
            with tarfile.open(artifact, "r:gz") as archive:
                for member, relative in _safe_members(archive, version, artifact):
                    target = os.path.join(staging, relative)
                    if member.isdir():
                        os.makedirs(target, mode=0o755, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                    source = archive.extractfile(member)
                    with open(target, "wb") as handle:
                        shutil.copyfileobj(source, handle, CHUNK)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise PatchError(f"artifact {artifact} cannot be unpacked: {exc}") from None
        with open(os.path.join(staging, "VERSION"), encoding="utf-8") as handle:
            found = handle.read().strip()
        if found != version:
            raise PatchError(f"artifact {artifact} holds version {found!r}, not {version!r}")
        for directory, _dirs, _files in os.walk(staging):
            fsync_dir(directory)
        final = release_dir(install_dir, version)
        if os.path.isdir(final):
            shutil.rmtree(final)  # an incomplete leftover: complete releases are never unpacked again
        os.rename(staging, final)
        fsync_dir(releases)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def switch_current(install_dir, version):
    """Point ``current`` at ``releases/<version>`` atomically and durably."""
    if not release_complete(install_dir, version):
        raise PatchError(f"release {version} is not installed completely in {os.path.join(install_dir, 'releases')}")
    link = os.path.join(install_dir, "current")
    tmp = os.path.join(install_dir, f".current-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join("releases", version), tmp)
    os.replace(tmp, link)
    fsync_dir(install_dir)


class Service:
    """The patched service: reload it, restart it, ask which version it runs."""

    def __init__(self, host, params):
        self._host = host
        self._params = params
        self.last_error = None

    def _run(self, what, argv):
        if not argv:
            raise PatchError(f"no {what} given: set the option {what}")
        rc, stdout, stderr = self._host.run(argv)
        if rc != 0:
            raise PatchError(f"{what} {argv!r} exited {rc}: {(stderr or stdout).strip()}", rc=rc, stdout=stdout, stderr=stderr)

    def activate(self, patch_class):
        """Make the service run what ``current`` points to: a reload for a hot patch, a restart otherwise."""
        if patch_class != "hot":
            self._run("restart_command", self._params["restart_command"])
        elif self._params.get("reload_signal"):
            self._signal(self._params["reload_signal"], self._params["pid_file"])
        else:
            self._run("reload_command", self._params["reload_command"])

    @staticmethod
    def _signal(name, pid_file):
        """Send the signal ``name`` (HUP or SIGHUP) to the process whose id ``pid_file`` holds."""
        number = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
        if not isinstance(number, signal.Signals):
            raise PatchError(f"reload_signal {name!r} is not a signal name such as HUP")
        try:
            with open(pid_file, encoding="utf-8") as handle:
                pid = int(handle.read().strip())
            os.kill(pid, number)
        except (OSError, ValueError) as exc:
            raise PatchError(f"cannot send {number.name} to the process in {pid_file}: {exc}") from None

    def running_version(self):
        """The version the service answers on its version URL, or None when it does not answer."""
        try:
            body = self._host.get(self._params["version_url"], 5)
            return str(json.loads(body)[self._params["version_key"]])
        except (PatchError, ValueError, KeyError, TypeError):
            return None

    def confirm(self, version):
        """Wait until the service answers ``version``; returns the last version it answered (or None)."""
        deadline = time.monotonic() + self._params["confirm_timeout"]
        seen = self.running_version()
        while seen != version and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.running_version()
        return seen
