"""PatchError: the one exception of the host-side code, its message and the details for the failure result."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError


@pytest.mark.parametrize(
    ("msg", "details"),
    [
        ("refusing to downgrade fpdemo from 7.0.28 to 7.0.26", {"installed": "7.0.28"}),
        ("state file /x cannot be read", {}),
        ("reverted", {"reverted": {"op": "apply", "step": "switched"}, "running": None}),
    ],
)
def test_patch_error_carries_message_and_details(msg, details):
    error = PatchError(msg, **details)
    assert str(error) == msg
    assert error.details == details
    assert isinstance(error, Exception)
