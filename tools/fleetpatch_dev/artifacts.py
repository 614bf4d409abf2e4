"""Build and install the release artifacts of the demo service fpdemo.

The catalogue ``demo/releases.yml`` lists the releases; :func:`build` turns one into a reproducible
``fpdemo-<version>.tar.gz`` (same bytes, same sha256, every time on the same machine) holding the service's
single source tree plus the ``release.json`` that makes that version behave as it does. :func:`install` lays an
artifact out on a host's filesystem seen from ``root``, the way the test fleet seeds a host before it boots::

    <install_dir>/releases/<version>/{fpdemo/, release.json, VERSION}
    <install_dir>/current -> releases/<version>        (relative symlink)
    <install_dir>/bin/fpdemoctl.py                      (the version-independent service manager)
    <config_path>                                       (the service's JSON configuration)

Command line (``PYTHONPATH=tools``)::

    python -m fleetpatch_dev.artifacts build --out DIR [--version V ...]
    python -m fleetpatch_dev.artifacts list
    python -m fleetpatch_dev.artifacts install --root DIR [--install-dir D] [--port P] [--config-path C]
                                              [--no-activate] ARTIFACT
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Mapping

import yaml

__all__ = [
    "CATALOGUE_PATH", "Artifact", "Release", "build", "build_all", "install", "load_catalogue", "main", "parse_catalogue",
    "set_current",
]

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
CATALOGUE_PATH = DEMO_DIR / "releases.yml"
COMPONENT = "fpdemo"
PACKAGE_FILES = ("fpdemo/__init__.py", "fpdemo/server.py")
CTL_SOURCE = DEMO_DIR / "fpdemo" / "fpdemoctl.py"
VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
FAULTS = (None, "health", "slow")
RELEASE_KEYS = ("version", "abi", "validates_declared_length", "fault", "fault_delay_ms", "description")
DEFAULT_INSTALL_DIR = "/srv/fpdemo"
DEFAULT_CONFIG_PATH = "/etc/fpdemo/fpdemo.json"
SETTINGS_KEYS = ("bind", "flags_file", "pid_file", "log_file", "data_dir")


@dataclasses.dataclass(frozen=True)
class Release:
    """One catalogue entry."""

    version: str
    abi: int
    validates_declared_length: bool
    fault: str | None
    fault_delay_ms: int
    description: str

    def release_json(self) -> dict:
        """The ``release.json`` the service reads at start."""
        document = dataclasses.asdict(self)
        del document["description"]
        return {"component": COMPONENT, **document}


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A built release tarball and its sha256 (hex)."""

    version: str
    path: Path
    sha256: str


def _is_int(value: object) -> bool:
    """Whether ``value`` is an integer and not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_release(index: int, entry: object) -> Release:
    """Validate one catalogue entry; raise ValueError naming the field and the value."""
    if not isinstance(entry, dict):
        raise ValueError(f"releases[{index}]: expected a mapping, got {entry!r}")
    version = entry.get("version")
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ValueError(f"releases[{index}]: version must be a string MAJOR.MINOR.PATCH, got {version!r}")
    where = f"release {version}"
    unknown = sorted(set(entry) - set(RELEASE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    missing = [key for key in RELEASE_KEYS if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}")
    checks = (
        ("abi", lambda v: _is_int(v) and v > 0, "a positive integer"),
        ("validates_declared_length", lambda v: isinstance(v, bool), "true or false"),
        ("fault", lambda v: v in FAULTS, "one of null, 'health', 'slow'"),
        ("fault_delay_ms", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
        ("description", lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    )
    for key, valid, expected in checks:
        if not valid(entry[key]):
            raise ValueError(f"{where}: {key} must be {expected}, got {entry[key]!r}")
    if (entry["fault"] == "slow") != (entry["fault_delay_ms"] > 0):
        raise ValueError(f"{where}: fault_delay_ms must be > 0 exactly when fault is 'slow', got {entry['fault_delay_ms']!r}")
    return Release(**entry)


def parse_catalogue(data: object) -> dict[str, Release]:
    """Validate a loaded catalogue document and return its releases by version, in catalogue order."""
    if not isinstance(data, dict) or sorted(data) != ["component", "releases"]:
        raise ValueError("catalogue: expected a mapping with exactly the keys 'component' and 'releases'")
    if data["component"] != COMPONENT:
        raise ValueError(f"catalogue: component must be {COMPONENT!r}, got {data['component']!r}")
    if not isinstance(data["releases"], list) or not data["releases"]:
        raise ValueError(f"catalogue: releases must be a non-empty list, got {data['releases']!r}")
    releases = {}
    for index, entry in enumerate(data["releases"]):
        release = _check_release(index, entry)
        if release.version in releases:
            raise ValueError(f"release {release.version}: listed twice")
        releases[release.version] = release
    return releases


def load_catalogue(path: str | os.PathLike = CATALOGUE_PATH) -> dict[str, Release]:
    """Read and validate the release catalogue."""
    with open(path, encoding="utf-8") as handle:
        return parse_catalogue(yaml.safe_load(handle))


def _release_files(release: Release) -> dict[str, bytes]:
    """The files of a release, by path relative to its top directory."""
    files = {name: (DEMO_DIR / name).read_bytes() for name in PACKAGE_FILES}
    files["release.json"] = (json.dumps(release.release_json(), indent=2, sort_keys=True) + "\n").encode()
    files["VERSION"] = f"{release.version}\n".encode()
    return files


def _tar_entry(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    """A tar header with every field that could vary between builds pinned."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _tarball(top: str, files: Mapping[str, bytes]) -> bytes:
    """A reproducible gzipped ustar archive of ``files`` under the directory ``top``."""
    entries = {f"{top}/{name}": data for name, data in files.items()}
    for name in files:
        for parent in PurePosixPath(top, name).parents[:-1]:
            entries.setdefault(str(parent), None)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(entries):
                data = entries[name]
                if data is None:
                    tar.addfile(_tar_entry(name, directory=True))
                else:
                    tar.addfile(_tar_entry(name, size=len(data)), io.BytesIO(data))
    return raw.getvalue()


def _build(release: Release, out_dir: str | os.PathLike) -> Artifact:
    """Write the tarball of ``release`` and its ``.sha256`` file into ``out_dir``."""
    name = f"{COMPONENT}-{release.version}"
    data = _tarball(name, _release_files(release))
    digest = hashlib.sha256(data).hexdigest()
    path = Path(out_dir) / f"{name}.tar.gz"
    _write_atomically(path, data)
    _write_atomically(path.with_name(f"{path.name}.sha256"), f"{digest}  {path.name}\n".encode())
    return Artifact(version=release.version, path=path, sha256=digest)


def build(version: str, out_dir: str | os.PathLike) -> Artifact:
    """Build ``fpdemo-<version>.tar.gz`` and its ``.sha256`` file (sha256sum format) in ``out_dir``."""
    catalogue = load_catalogue()
    if version not in catalogue:
        raise ValueError(f"unknown release {version!r}; the catalogue has {', '.join(catalogue)}")
    return _build(catalogue[version], out_dir)


def build_all(out_dir: str | os.PathLike) -> list[Artifact]:
    """Build every catalogue release into ``out_dir`` and write ``SHA256SUMS``."""
    artifacts = [_build(release, out_dir) for release in load_catalogue().values()]
    sums = "".join(f"{artifact.sha256}  {artifact.path.name}\n" for artifact in artifacts)
    _write_atomically(Path(out_dir) / "SHA256SUMS", sums.encode())
    return artifacts


def _host_path(root: str | os.PathLike, path: str) -> Path:
    """Where the host's absolute ``path`` lies under ``root``."""
    if not posixpath.isabs(path):
        raise ValueError(f"expected an absolute path on the host, got {path!r}")
    return Path(root) / posixpath.normpath(path).lstrip("/")


def _verify_checksum(artifact_path: Path) -> None:
    """Check the artifact against its ``.sha256`` file when there is one."""
    sidecar = artifact_path.with_name(f"{artifact_path.name}.sha256")
    if not sidecar.exists():
        return
    expected = sidecar.read_text(encoding="utf-8").split()[:1]
    actual = hashlib.sha256(artifact_path.read_bytes()).hexdigest()
    if expected != [actual]:
        raise ValueError(f"sha256 {actual} does not match {sidecar.name}")


def _member_path(top: str | None, member: tarfile.TarInfo) -> tuple[str, PurePosixPath]:
    """Check one tar member and split its name into the top directory and the path below it."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"member {member.name!r} escapes the archive's top directory")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"member {member.name!r} is not a regular file or directory")
    if member.isfile() and len(path.parts) < 2:
        raise ValueError(f"member {member.name!r} is a file outside any top directory")
    if top is not None and path.parts[0] != top:
        raise ValueError(f"member {member.name!r} is outside the top directory {top!r}")
    return path.parts[0], PurePosixPath(*path.parts[1:])


def _read_artifact(artifact_path: Path) -> tuple[str, dict[str, bytes]]:
    """Read and validate a release tarball; return its version and files (by path below the top directory)."""
    files, top = {}, None
    try:
        with tarfile.open(artifact_path, mode="r:gz") as tar:
            for member in tar:
                top, below = _member_path(top, member)
                if member.isfile():
                    files[str(below)] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"not a readable tar.gz archive: {exc}") from None
    try:
        release = json.loads(files["release.json"])
        version = files["VERSION"].decode().strip()
    except (KeyError, ValueError) as exc:
        raise ValueError(f"missing or invalid release.json or VERSION: {exc}") from None
    consistent = isinstance(release, dict) and release.get("component") == COMPONENT and release.get("version") == version
    if not consistent or top != f"{COMPONENT}-{version}":
        raise ValueError(f"top directory {top!r}, VERSION and release.json disagree")
    if "fpdemo/server.py" not in files:
        raise ValueError("fpdemo/server.py is missing")
    return version, files


def _unpack(releases_dir: Path, version: str, files: Mapping[str, bytes]) -> Path:
    """Write a release into ``releases_dir/<version>``, replacing an earlier copy in one rename."""
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.new.", dir=releases_dir))
    for name, data in files.items():
        (staging / name).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
        os.chmod(staging / name, 0o644)
    os.chmod(staging, 0o755)
    target = releases_dir / version
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{version}.old.", dir=releases_dir))
        os.replace(target, retired / version)
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)
    return target


def set_current(root: str | os.PathLike, version: str, *, install_dir: str = DEFAULT_INSTALL_DIR) -> None:
    """Point ``<install_dir>/current`` at ``releases/<version>`` atomically (temporary symlink + rename)."""
    base = _host_path(root, install_dir)
    if not (base / "releases" / version).is_dir():
        raise ValueError(f"release {version} is not installed in {base / 'releases'}")
    temporary = base / f".current.{os.getpid()}.tmp"
    if temporary.is_symlink():
        temporary.unlink()
    os.symlink(f"releases/{version}", temporary)
    os.replace(temporary, base / "current")


def install(
    root: str | os.PathLike, artifact_path: str | os.PathLike, *, install_dir: str = DEFAULT_INSTALL_DIR, port: int = 8080,
    config_path: str = DEFAULT_CONFIG_PATH, activate: bool = True, settings: Mapping[str, str] | None = None,
) -> Path:
    """Install an artifact on the host filesystem under ``root``; return the release directory.

    ``install_dir`` and ``config_path`` are paths as the host sees them; so are the paths written into the
    configuration (``/srv/fpdemo``, never prefixed by ``root``). ``settings`` overrides the configuration's
    ``bind``, ``flags_file`` (default: ``flags.json`` next to the configuration), ``pid_file``, ``log_file``
    and ``data_dir`` (the service's data, outside the releases; default ``/var/lib/fpdemo/data``). The
    configuration and ``bin/fpdemoctl.py`` are rewritten on every install. The artifact is checked before
    anything is written: against its ``.sha256`` file when there is one, every member must be a regular file or
    directory under one top directory ``fpdemo-<version>`` (no links, no ``..``), and that name, ``VERSION`` and
    ``release.json`` must agree.
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(SETTINGS_KEYS)}")
    artifact_path = Path(artifact_path)
    try:
        _verify_checksum(artifact_path)
        version, files = _read_artifact(artifact_path)
    except ValueError as exc:
        raise ValueError(f"rejected {artifact_path}: {exc}") from None
    base = _host_path(root, install_dir)
    config_file = _host_path(root, config_path)
    release_dir = _unpack(base / "releases", version, files)
    _write_atomically(base / "bin" / "fpdemoctl.py", CTL_SOURCE.read_bytes())
    config = {
        "port": port, "bind": "0.0.0.0", "install_dir": install_dir,
        "flags_file": posixpath.join(posixpath.dirname(config_path), "flags.json"),
        "pid_file": "/run/fpdemo/fpdemo.pid", "log_file": "/var/log/fpdemo/fpdemo.log", "data_dir": "/var/lib/fpdemo/data",
        **settings,
    }
    _write_atomically(config_file, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    if activate:
        set_current(root, version, install_dir=install_dir)
    return release_dir


def _print_catalogue() -> None:
    """Print one line per catalogue release."""
    for release in load_catalogue().values():
        state = "fixed" if release.validates_declared_length else "affected"
        print(f"{release.version:<8} abi {release.abi}  {state:<8}  fault {release.fault or '-':<6}  {release.description}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m fleetpatch_dev.artifacts", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build release tarballs (all of them, with SHA256SUMS, by default)")
    build_cmd.add_argument("--out", required=True, type=Path, help="output directory")
    build_cmd.add_argument("--version", action="append", dest="versions", metavar="V", help="release to build (repeatable)")
    commands.add_parser("list", help="list the catalogue's releases")
    install_cmd = commands.add_parser("install", help="install an artifact under a host root directory")
    install_cmd.add_argument("--root", required=True, type=Path, help="the host's filesystem root")
    install_cmd.add_argument("--install-dir", default=DEFAULT_INSTALL_DIR, help="install directory on the host")
    install_cmd.add_argument("--port", type=int, default=8080, help="the service's port")
    install_cmd.add_argument("--config-path", default=DEFAULT_CONFIG_PATH, help="the service's configuration on the host")
    install_cmd.add_argument("--no-activate", dest="activate", action="store_false", help="leave the current link alone")
    install_cmd.add_argument("artifact", type=Path, help="fpdemo-<version>.tar.gz")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _print_catalogue()
        elif args.command == "install":
            release_dir = install(
                args.root, args.artifact, install_dir=args.install_dir, port=args.port, config_path=args.config_path,
                activate=args.activate,
            )
            print(release_dir)
        else:
            built = [build(version, args.out) for version in args.versions] if args.versions else build_all(args.out)
            for artifact in built:
                print(f"{artifact.version} {artifact.sha256} {artifact.path}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
