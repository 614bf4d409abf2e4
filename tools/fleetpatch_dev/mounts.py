"""Filesystems of its own for a test: a small tmpfs that the test can turn read-only, as a real read-only mount is.

Needs root (mount(8)); the test suite runs as root, as the fleet does.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


class Tmpfs:
    """A tmpfs mounted at ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read_only(self) -> None:
        """Remount it read-only: every write into it then fails with EROFS."""
        subprocess.run(["mount", "-o", "remount,ro", str(self.directory)], check=True)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "1m") -> Iterator[Tmpfs]:
    """Mount a tmpfs of ``size`` at ``directory`` (created when missing) for the block; unmounted after it, whatever happened."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "fleetpatch-test", str(directory)], check=True)
    try:
        yield Tmpfs(directory)
    finally:
        subprocess.run(["umount", str(directory)], check=True)
