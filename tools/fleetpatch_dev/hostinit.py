"""PID 1 of one test-fleet host.

The fleet starts this script inside the host's own network namespace, in fresh mount, UTS and PID
namespaces (``unshare --mount --uts --pid --fork --mount-proc --kill-child``). It gives the host its own view
of the files it manages, then runs the host's ``sshd`` and its boot services, and reaps orphans like any init:

- each directory named by ``--overlay`` becomes an overlayfs whose lower layer is the machine's directory and
  whose upper layer is the host's own directory on disk, so writes stay with the host across a stop and start;
- ``/tmp`` and ``/run`` are private tmpfs mounts, lost when the host stops, as on a real machine;
- ``/etc/fleetpatch-dev/boot.json`` (in the host's view) lists the commands to run once sshd is up, the
  stand-in for enabled services.

Standard library only: it runs with the machine's ``/usr/bin/python3``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

BOOT_FILE = "/etc/fleetpatch-dev/boot.json"


def log(message: str) -> None:
    """Write one line to the host's console (the fleet redirects it to a file)."""
    sys.stdout.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} hostinit: {message}\n")
    sys.stdout.flush()


def mount(*args: str) -> None:
    """Run mount(8) and stop the host if it fails: a host without its own files must not boot."""
    subprocess.run(["mount", *args], check=True)


def setup_filesystem(state_dir: str, overlays: list[str]) -> None:
    """Mount the host's overlays and its private /tmp and /run."""
    for directory in overlays:
        key = directory.strip("/").replace("/", "_")
        upper = os.path.join(state_dir, "upper", directory.strip("/"))
        work = os.path.join(state_dir, "work", key)
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        mount("-t", "overlay", "overlay", "-o", f"lowerdir={directory},upperdir={upper},workdir={work}", directory)
    mount("-t", "tmpfs", "-o", "mode=1777,size=256m", "tmpfs", "/tmp")
    mount("-t", "tmpfs", "-o", "mode=0755,size=64m", "tmpfs", "/run")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def boot_commands() -> list[list[str]]:
    """The commands the host runs at boot, from its own boot file."""
    try:
        with open(BOOT_FILE, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return []
    return [list(command) for command in data.get("commands", [])]


def run_boot_commands() -> None:
    """Start the host's services; a failing one is logged, the host stays up (as with a failed unit)."""
    for command in boot_commands():
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        output = result.stdout.decode("utf-8", "replace").strip()
        log(f"boot command {command!r} exited {result.returncode}: {output}")


def reap_forever(sshd: subprocess.Popen) -> None:
    """Reap every child that ends; stop the host when sshd dies (a host nobody can reach is down)."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        if pid == sshd.pid:
            log(f"sshd ended with status {status}; stopping the host")
            return


def terminate(signum: int, _frame) -> None:
    """Stop every process of the host, then the host itself."""
    log(f"signal {signum}: stopping")
    try:
        os.kill(-1, signal.SIGTERM)
    except ProcessLookupError:
        pass
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    """Bring the host up and serve as its init."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="host name (UTS namespace)")
    parser.add_argument("--state-dir", required=True, help="the host's own directory on disk")
    parser.add_argument("--overlay", action="append", default=[], help="directory to give the host its own view of")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    socket.sethostname(args.name)
    setup_filesystem(args.state_dir, args.overlay)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"])  # pylint: disable=consider-using-with
    log(f"{args.name} up, sshd pid {sshd.pid}")
    run_boot_commands()
    reap_forever(sshd)
    return 1


if __name__ == "__main__":
    sys.exit(main())
