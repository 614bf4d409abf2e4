"""Versions and version ranges: the one rule used on hosts and on the controller."""

from __future__ import annotations

import random
import shutil
import subprocess

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


# dpkg and rpm versions: the package databases' own order, for the detect strategy that reads them.

DPKG_ORDER = [
    ("7.0.28~rc1", "7.0.28"),  # a tilde sorts before the end
    ("7.0.28~~", "7.0.28~"),
    ("7.0.28", "7.0.28-1"),  # a Debian revision comes after the bare upstream version
    ("7.0.28-1", "7.0.28-1+deb12u1"),
    ("7.0.28-1+deb12u1", "7.0.28-1+deb12u10"),  # numbers compare as numbers
    ("7.0.28-1~bpo12+1", "7.0.28-1"),
    ("9.9", "1:9.2p1-2"),  # the epoch first
    ("1:9.2p1-2+deb12u5", "1:9.2p1-2+deb12u10"),
    ("1:9.2p1-2+deb12u10", "1:9.3"),
    ("1.0a", "1.0."),  # letters before other characters
    ("1.0", "1.0a"),
    ("2.36-9+deb12u9", "2.36-9+deb12u14"),
]


@pytest.mark.parametrize(("low", "high"), DPKG_ORDER)
def test_dpkg_version_order(low, high):
    assert Version(low, "dpkg") < Version(high, "dpkg")
    assert Version(high, "dpkg") > Version(low, "dpkg")
    assert Version(low, "dpkg") != Version(high, "dpkg")


@pytest.mark.parametrize(("left", "right"), [("0:1.0", "1.0"), ("1.0-0", "1.0"), ("1.00", "1.0"), ("1.0a0", "1.0a")])
def test_dpkg_equal_versions(left, right):
    assert Version(left, "dpkg") == Version(right, "dpkg")
    assert hash(Version(left, "dpkg")) == hash(Version(right, "dpkg"))


RPM_ORDER = [  # rpm's own rpmvercmp cases (tests/rpmvercmp.at), then epoch and release
    ("1.0", "2.0"), ("2.0", "2.0.1"), ("2.0.1", "2.0.1a"), ("5.5p1", "5.5p2"), ("5.5p1", "5.5p10"),
    ("10xyz", "10.1xyz"), ("xyz10", "xyz10.1"), ("xyz.4", "8"), ("5.5p2", "5.6p1"), ("6.0", "6.0.rc1"),
    ("10a2", "10b2"), ("1.0a", "1.0aa"), ("10.0001", "10.0039"), ("4.999.9", "5.0"),
    ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"), ("1.0~rc1~git123", "1.0~rc1"),
    ("1.0", "1.0^"), ("1.0^git1", "1.0^git2"), ("1.0^git1", "1.01"), ("1.0^20160101", "1.0.1"),
    ("1.0^git1~pre", "1.0^git1"), ("1.0~rc1", "1.0~rc1^git1"),
    ("3.0.7-26.el9", "3.0.7-27.el9"), ("3.0.7", "3.0.7-1.el9"), ("9.9-1", "1:1.0-1"),
]


@pytest.mark.parametrize(("low", "high"), RPM_ORDER)
def test_rpm_version_order(low, high):
    assert Version(low, "rpm") < Version(high, "rpm")
    assert Version(high, "rpm") > Version(low, "rpm")


@pytest.mark.parametrize(("left", "right"), [("10.0001", "10.1"), ("2_0", "2.0"), ("a+", "a_"), ("+_", "_+"), ("0:1.0-1", "1.0-1")])
def test_rpm_equal_versions(left, right):
    assert Version(left, "rpm") == Version(right, "rpm")
    assert hash(Version(left, "rpm")) == hash(Version(right, "rpm"))


@pytest.mark.parametrize(
    ("scheme", "text", "inside"),
    [
        # what a Debian host reports for a package whose fix is revision 1+deb12u1 of 7.0.28
        ("dpkg", "7.0.28-1", False),
        ("dpkg", "7.0.28~rc1-1", True),
        ("dpkg", "7.0.27-3+deb12u2", True),
        ("dpkg", "1:7.0.1-1", False),  # a later epoch lies above every bound without one
        ("rpm", "7.0.28-1.el9", False),
        ("rpm", "7.0.28~rc1-1.el9", True),
        ("rpm", "7.0.27-5.el9", True),
    ],
)
def test_package_versions_in_an_affected_range(scheme, text, inside):
    assert (text in VersionRange(">=7.0.0,<7.0.28", scheme)) is inside
    assert (Version(text, scheme) in VersionRange(">=7.0.0,<7.0.28", scheme)) is inside


@pytest.mark.parametrize(("text", "bounds", "inside"), [
    # rpm's dependency ranges: a bound without a release stands for every release of its version
    ("3.0.7-27.el9", "<=3.0.7", True),
    ("3.0.7-27.el9", "==3.0.7", True),
    ("3.0.7-27.el9", "<3.0.7", False),
    ("3.0.7-27.el9", ">3.0.7", False),
    ("3.0.7-27.el9", ">=3.0.7", True),
    ("3.0.7-27.el9", "<3.0.7-28.el9", True),  # with a release, the release counts
    ("3.0.7-27.el9", "==3.0.7-26.el9", False),
    ("1:3.0.7-27.el9", "<=3.0.7", False),  # the epoch always counts
    ("3.0.8-1.el9", "<=3.0.7", False),
])
def test_rpm_bounds_without_a_release_cover_every_release(text, bounds, inside):
    assert (text in VersionRange(bounds, "rpm")) is inside


def test_the_release_scheme_reads_a_debian_revision_as_a_pre_release():
    """Why package versions need their own scheme: in release order 7.0.28-1 is a pre-release of 7.0.28."""
    assert "7.0.28-1" in VersionRange("<7.0.28")
    assert "7.0.28-1" not in VersionRange("<7.0.28", "dpkg")


@pytest.mark.parametrize(
    ("scheme", "value", "message"),
    [
        ("dpkg", "", "'' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("dpkg", "a1.0", "'a1.0' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("dpkg", "x:1.0", "'x:1.0' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("dpkg", "1.0-", "'1.0-' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("dpkg", "1.0-2:3", "'1.0-2:3' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("dpkg", "1.0_1", "'1.0_1' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"),
        ("rpm", "1.0-1-1", "'1.0-1-1' is not a version (expected an rpm version [epoch:]version[-release] such as 3.0.7-27.el9)"),
        ("rpm", "1.0-", "'1.0-' is not a version (expected an rpm version [epoch:]version[-release] such as 3.0.7-27.el9)"),
        ("rpm", "e:1.0", "'e:1.0' is not a version (expected an rpm version [epoch:]version[-release] such as 3.0.7-27.el9)"),
        ("semver", "1.0", "unknown version scheme 'semver'; one of release, dpkg, rpm"),
    ],
)
def test_package_version_rejects(scheme, value, message):
    with pytest.raises(VersionError) as error:
        Version(value, scheme)
    assert str(error.value) == message


def test_versions_of_different_schemes_never_compare():
    assert Version("7.0.28", "dpkg") != Version("7.0.28")
    with pytest.raises(VersionError, match="^cannot compare dpkg version '7.0.28' with release version '7.0.28'$"):
        Version("7.0.28", "dpkg") < Version("7.0.28")  # noqa: B015 (the comparison is the test)
    with pytest.raises(VersionError, match=r"^cannot test rpm version '7.0.28' against dpkg range '<8'$"):
        Version("7.0.28", "rpm") in VersionRange("<8", "dpkg")  # noqa: B015
    with pytest.raises(VersionError, match=r"^version range '<1:x': '1:x' is not a version \(expected a dpkg version "):
        VersionRange("<1:x", "dpkg")
    assert repr(VersionRange("<8", "rpm")) == "VersionRange('<8', 'rpm')"
    assert repr(Version("1:2", "dpkg")) == "Version('1:2', 'dpkg')"


def _random_dpkg_versions(count, seed):
    rng = random.Random(seed)
    runs = ["0", "1", "2", "10", "01", "a", "b", "z", "~", "~~", "+", ".", "~rc", "p", "+deb", "."]
    versions = set()
    while len(versions) < count:
        upstream = str(rng.randint(0, 12)) + "".join(rng.choice(runs) for _run in range(rng.randint(0, 4)))
        version = f"{rng.choice(['', '', '1:', '0:'])}{upstream}{rng.choice(['', '', '-1', '-0', '-1~bpo1', '-2+deb12u10'])}"
        versions.add(version)
    return sorted(versions)


@pytest.mark.skipif(not shutil.which("dpkg"), reason="needs dpkg to compare with")
def test_dpkg_order_is_the_order_dpkg_itself_gives():
    """Random versions sorted by fleetpatch, every neighbouring pair checked by dpkg --compare-versions."""
    versions = sorted(_random_dpkg_versions(120, 14847), key=lambda text: Version(text, "dpkg"))
    for low, high in zip(versions, versions[1:]):
        operator_ = "eq" if Version(low, "dpkg") == Version(high, "dpkg") else "lt"
        assert subprocess.run(["dpkg", "--compare-versions", low, operator_, high], check=False).returncode == 0, (low, operator_, high)
