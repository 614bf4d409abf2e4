"""Shared by the module_utils unit tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import ModuleHost


class LocalHost(ModuleHost):
    """This machine as the host: real commands (as AnsibleModule.run_command runs them) and the real GET."""

    def __init__(self):
        super().__init__(module=None)

    def run(self, argv):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return result.returncode, result.stdout, result.stderr

    def which(self, name):
        return shutil.which(name)


@pytest.fixture
def host():
    """This machine, as the host-side logic sees a managed host."""
    return LocalHost()
