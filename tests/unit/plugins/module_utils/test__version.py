"""Versions and version ranges: the one rule used on hosts and on the controller."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("7.0.26", "7.0.28"),
        ("7.0.9", "7.0.10"),
        ("7.0.28-rc1", "7.0.28"),
        ("7.0.28-rc1", "7.0.28-rc2"),
        ("7.0.28-alpha", "7.0.28-beta"),
        ("7.0.28-2", "7.0.28-alpha"),
        ("7.0", "7.0.1"),
        ("v7.0.27", "7.0.28"),
        ("7.9.99", "8.0"),
    ],
)
def test_version_order(low, high):
    assert Version(low) < Version(high)
    assert Version(high) > Version(low)
    assert Version(low) != Version(high)


@pytest.mark.parametrize(("left", "right"), [("7.0", "7.0.0"), ("7.0.28+build5", "7.0.28"), (" 7.0.28 ", "7.0.28"), ("v1.2", "1.2.0")])
def test_version_equality_ignores_trailing_zeros_build_and_space(left, right):
    assert Version(left) == Version(right)
    assert hash(Version(left)) == hash(Version(right))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
        ("seven", "'seven' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
        ("7..0", "'7..0' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
        ("7.0.28-", "'7.0.28-' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
        (7.0, "a version must be a string, got float 7.0"),
        (None, "a version must be a string, got NoneType None"),
    ],
)
def test_version_rejects(value, message):
    with pytest.raises(VersionError) as error:
        Version(value)
    assert str(error.value) == message


RANGE = ">=7.0.0,<7.0.28 || >=8.0.0, <8.0.17"


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("6.9.9", False),
        ("7.0.0", True),
        ("7.0.26", True),
        ("7.0.27", True),
        ("7.0.28-rc1", True),
        ("7.0.28", False),
        ("7.1.0", False),
        ("8.0.16", True),
        ("8.0.17", False),
        ("9.0", False),
    ],
)
def test_range_membership(version, inside):
    assert (version in VersionRange(RANGE)) is inside
    assert (Version(version) in VersionRange(RANGE)) is inside


@pytest.mark.parametrize(
    ("text", "version", "inside"),
    [
        ("==7.0.26", "7.0.26", True),
        ("=7.0.26", "7.0.26", True),
        ("7.0.26", "7.0.26", True),
        ("7.0.26", "7.0.27", False),
        ("!=7.0.26", "7.0.26", False),
        (">7.0.26", "7.0.26", False),
        ("<=7.0.26", "7.0.26", True),
        (">= 7.0.0 < 7.1", "7.0.99", True),
        (["<7.0.1", ">8"], "8.1", True),
        (["<7.0.1", ">8"], "7.5", False),
    ],
)
def test_range_operators(text, version, inside):
    assert (version in VersionRange(text)) is inside


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a version range must be a non-empty string, got ''"),
        (None, "a version range must be a non-empty string, got None"),
        (">>7", "version range '>>7': '>>7' is not a comparator such as >=7.0.0"),
        (">=7.0.0,<x", "version range '>=7.0.0,<x': 'x' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
        ("7.0 ||", "version range '7.0 ||' has an empty alternative"),
        ("|| 7.0", "version range '|| 7.0' has an empty alternative"),
    ],
)
def test_range_rejects(text, message):
    with pytest.raises(VersionError) as error:
        VersionRange(text)
    assert str(error.value) == message


def test_range_text_round_trips():
    assert str(VersionRange(RANGE)) == RANGE
    assert repr(Version("7.0.28")) == "Version('7.0.28')"
