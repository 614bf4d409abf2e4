"""The options shared by apply and rollback, and the message for the ones a task and its manifest left out."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import PATCH_CLASSES, SERVICE_ARGSPEC, missing_options


@pytest.mark.parametrize(
    ("params", "names", "expected"),
    [
        ({"component": "fpdemo", "version": "7.0.28"}, ["component", "version"], None),
        ({}, [], None),
        ({"component": "fpdemo"}, ["component", "version"],
         "missing required option(s): version (give them, or a manifest that holds them)"),
        ({"component": "", "version": None}, ["component", "version"],
         "missing required option(s): component, version (give them, or a manifest that holds them)"),
        ({"confirm_timeout": 0, "flag": False}, ["confirm_timeout", "flag"], None),  # falsy values are given values
    ],
)
def test_missing_options(params, names, expected):
    assert missing_options(params, names) == expected


def test_patch_class_choices_are_the_two_classes_fleetpatch_applies():
    assert PATCH_CLASSES == ("hot", "restart")
    assert SERVICE_ARGSPEC["patch_class"]["choices"] == ["hot", "restart"]
