"""Faults for the fault x phase suite (tests/integration/faults): injected into a real fleet and a real controller.

:mod:`fleetpatch_dev.faults` gives a host's *service* a short fault; this module breaks everything else a rollout
depends on, at a moment a test chooses, and watches what the fleet goes through:

* :class:`Controller` runs ``ansible-playbook`` in its own session, so that it can be killed with SIGKILL like a
  controller that loses power (every worker and SSH client with it); :func:`wait_for_modules_to_end` then waits
  until the modules it left running on the hosts are gone.
* :func:`kill_module` kills the fleetpatch module running on a host from outside (SIGKILL), at the moment given by
  a predicate on what the controller sees of the host: :func:`journal` (the state file's journal, read from the
  host's overlay without a round trip) or :func:`staging` (a release being unpacked).
* :func:`ballast_artifact` writes a release whose unpack takes long enough to be interrupted and fills a small
  disk; :func:`truncated_artifact` and :func:`corrupt_artifact` break one in the ways a download breaks it.
* :func:`small_disk` gives a host's releases directory a filesystem of its own with only ``spare`` bytes free.
* :class:`HealthWatch` polls every host's ``/health`` from a thread while a run goes on and keeps the most hosts
  seen unhealthy at once.
* :func:`wait_until` polls a predicate and names what it waited for when it gives up.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

__all__ = [
    "Controller", "HealthWatch", "ballast_artifact", "corrupt_artifact", "journal", "kill_module", "small_disk", "staging",
    "truncated_artifact", "wait_for_modules_to_end", "wait_until", "write_sha256",
]

STATE = "var/lib/fleetpatch/state.json"
RELEASES = "/srv/fpdemo/releases"
# A module that Ansible runs with pipelining is a bare interpreter reading its code from stdin.
MODULE_PROCESS = "/usr/bin/python3"


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.02, alive=None):
    """Poll ``predicate`` until it returns something true and return that; raise TimeoutError naming ``what``.

    ``alive`` (optional) is polled too: when it returns false the wait stops at once (the run it waits on ended).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and not alive():
            raise TimeoutError(f"the run ended before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:g} s")
        time.sleep(interval)


# -- the controller ---------------------------------------------------------------------------------------------


class Controller:
    """One ``ansible-playbook`` run in its own process group, its output in ``log``; killable like a lost machine."""

    def __init__(self, argv: list[str], env: dict, log: Path):
        self.argv, self.log = argv, Path(log)
        self.started = time.monotonic()
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float = 900) -> int:
        """Wait for the run to end; kill it (and fail) when it outlives ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL to the whole run: ansible-playbook, its forks and its SSH clients, at once."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def wait_for_modules_to_end(fleet, names, timeout: float = 60.0) -> None:
    """Wait until no module a killed controller started still runs on the hosts."""
    for name in names:
        wait_until(lambda name=name: fleet.exec(name, ["pgrep", "-fx", MODULE_PROCESS], check=False).returncode != 0,
                   timeout=timeout, what=f"end of the modules still running on {name}", interval=0.1)


# -- what the controller sees of a host, without a round trip ---------------------------------------------------


def journal(fleet, name: str) -> dict | None:
    """The journal in the host's state file (None when there is none, or no state file yet, or it is mid-replace)."""
    path = Path(fleet.host_root(name)) / STATE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("journal")
    except (OSError, ValueError):
        return None


def staging(fleet, name: str) -> list[str]:
    """The releases being unpacked on the host right now (``releases/.staging-*``)."""
    path = Path(fleet.host_root(name)) / RELEASES.lstrip("/")
    try:
        return sorted(entry.name for entry in path.iterdir() if entry.name.startswith(".staging-"))
    except OSError:
        return []


def kill_module(fleet, name: str) -> list[int]:
    """SIGKILL every fleetpatch module running on the host right now; return their PIDs (as the host sees them)."""
    found = fleet.exec(name, ["pgrep", "-fx", MODULE_PROCESS], check=False).stdout.split()
    if found:
        fleet.exec(name, ["kill", "-KILL", *found], check=False)
    return [int(pid) for pid in found]


# -- disks ------------------------------------------------------------------------------------------------------


def small_disk(fleet, name: str, spare: int, *, directory: str = RELEASES) -> None:
    """Put the host's ``directory`` on a filesystem of its own (tmpfs) that holds what it holds now and ``spare`` bytes more.

    What was there stays as it was (the running release keeps running); ``fleet.exec(name, ["umount", directory])``
    undoes it and shows the directory as it was before, whatever was written meanwhile.
    """
    script = (f"set -e; copy=$(mktemp -d); cp -a {directory}/. $copy/; "
              f"mount -t tmpfs -o size=1g,mode=755 fleetpatch-small-disk {directory}; cp -a $copy/. {directory}/; rm -rf $copy; "
              f"used=$(df -B1 --output=used {directory} | tail -n 1); mount -o remount,size=$((used + {int(spare)})) {directory}")
    fleet.exec(name, ["sh", "-c", script])


# -- artifacts --------------------------------------------------------------------------------------------------


def write_sha256(path: Path) -> Path:
    """Write ``<path>.sha256`` as the artifact builder does; return the artifact's path."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(f"{path.name}.sha256").write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return path


def ballast_artifact(source: Path | str, out_dir: Path | str, megabytes: int) -> Path:
    """A copy of the release ``source`` with ``megabytes`` MiB of incompressible data in it (``<top>/fpdemo/ballast.bin``).

    It is a sound release by the hosts' archive rule, named as ``source`` is, in ``out_dir`` with its ``.sha256``:
    applying it takes long enough to be cut off in the middle of the unpack, and needs that much room on the host.
    """
    source = Path(source)
    out = Path(out_dir) / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as original:
        members = [(member, original.extractfile(member).read() if member.isfile() else None) for member in original]
    top = members[0][0].name.split("/")[0]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=1, mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        ballast = tarfile.TarInfo(f"{top}/fpdemo/ballast.bin")
        ballast.size, ballast.mode, ballast.mtime = megabytes * 1024 * 1024, 0o644, members[0][0].mtime
        tar.addfile(ballast, io.BytesIO(os.urandom(ballast.size)))
    out.write_bytes(buffer.getvalue())
    return write_sha256(out)


def truncated_artifact(source: Path | str, out_dir: Path | str, keep: float = 0.5) -> Path:
    """The first ``keep`` of ``source``'s bytes, as a download cut off; its ``.sha256`` is of the truncated file.

    The checksum matches, so that it is the archive check that must catch it, not the checksum.
    """
    source = Path(source)
    out = Path(out_dir) / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return write_sha256(out)


def corrupt_artifact(source: Path | str, out_dir: Path | str) -> Path:
    """``source`` with one byte in its middle flipped, and the ``.sha256`` of the original: a corrupt download."""
    source = Path(source)
    out = Path(out_dir) / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    out.with_name(f"{out.name}.sha256").write_text(f"{hashlib.sha256(source.read_bytes()).hexdigest()}  {out.name}\n", encoding="utf-8")
    return out


# -- health -----------------------------------------------------------------------------------------------------


class HealthWatch:
    """Poll every host's ``/health`` while a run goes on; keep the most hosts unhealthy at once, and which.

    A host is unhealthy when its service does not answer ``200`` within ``timeout`` (down, stopped, partitioned,
    answering errors). The hosts are polled in parallel, one thread each, and a sample is one pass over all.
    """

    def __init__(self, fleet, names, *, timeout: float = 2.0):
        self.fleet, self.names, self.timeout = fleet, list(names), timeout
        self.worst, self.worst_hosts, self.samples = 0, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _healthy(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(self.fleet.service_url(name, "/health"), timeout=self.timeout) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def sample(self) -> list[str]:
        """One pass: the hosts unhealthy now."""
        verdicts = {}
        threads = [threading.Thread(target=lambda n=name: verdicts.__setitem__(n, self._healthy(n))) for name in self.names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(name for name, healthy in verdicts.items() if not healthy)

    def _run(self) -> None:
        while not self._stop.is_set():
            down = self.sample()
            if len(down) > self.worst:
                self.worst, self.worst_hosts = len(down), down
            self.samples += 1
            self._stop.wait(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
