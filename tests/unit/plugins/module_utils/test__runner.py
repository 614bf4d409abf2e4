"""run_operation: the one path from a module's parameters to exit_json or fail_json."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import ModuleHost
from ansible_collections.fleetpatch.rollout.plugins.module_utils._runner import run_operation


class Ended(Exception):
    """How the fake module ends, as AnsibleModule ends the process."""


class FakeModule:
    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.ended = None

    def exit_json(self, **result):
        self.ended = ("exit", result)
        raise Ended

    def fail_json(self, **result):
        self.ended = ("fail", result)
        raise Ended


def finish(module, operation, required=()):
    with pytest.raises(Ended):
        run_operation(module, operation, list(required))
    return module.ended


def succeed(params, host, check_mode):
    assert isinstance(host, ModuleHost)
    return {"changed": not check_mode, "seen": params["component"], "diff": {"before": 1, "after": 2}}


def refuse(params, host, check_mode):
    raise PatchError("refusing to downgrade", installed="7.0.28")


@pytest.mark.parametrize(
    ("module", "operation", "required", "expected"),
    [
        (FakeModule({"component": "fpdemo"}), succeed, ["component"], ("exit", {"changed": True, "seen": "fpdemo"})),
        (FakeModule({"component": "fpdemo"}, check_mode=True), succeed, [], ("exit", {"changed": False, "seen": "fpdemo"})),
        (FakeModule({"component": "fpdemo"}, diff=True), succeed, [],
         ("exit", {"changed": True, "seen": "fpdemo", "diff": {"before": 1, "after": 2}})),
        (FakeModule({"component": "fpdemo"}), refuse, [], ("fail", {"msg": "refusing to downgrade", "installed": "7.0.28"})),
        (FakeModule({"component": None}), succeed, ["component"],
         ("fail", {"msg": "missing required option(s): component (give them, or a manifest that holds them)"})),
    ],
)
def test_run_operation(module, operation, required, expected):
    assert finish(module, operation, required) == expected


def test_other_exceptions_are_not_swallowed():
    def broken(params, host, check_mode):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_operation(FakeModule({}), broken, [])
