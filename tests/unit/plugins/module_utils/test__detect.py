"""Version detection strategies and the detect result, on real files, commands and a real HTTP server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from fleetpatch_dev import loopback
from ansible_collections.fleetpatch.rollout.plugins.module_utils._detect import detect, find_version
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError


DEFAULTS = {
    "component": "fpdemo",
    "strategy": "current_link",
    "install_dir": None,
    "version_file": None,
    "command": None,
    "version_regex": None,
    "package": None,
    "url": None,
    "version_key": "version",
    "timeout": 5,
    "affected": None,
    "fixed_version": None,
    "state_file": None,
}


@pytest.fixture
def install(tmp_path):
    """An install dir with releases 7.0.26 and 7.0.28, current -> 7.0.26."""
    for version in ("7.0.26", "7.0.28"):
        release = tmp_path / "srv" / "releases" / version
        release.mkdir(parents=True)
        (release / "VERSION").write_text(f"{version}\n", encoding="utf-8")
    (tmp_path / "srv" / "current").symlink_to("releases/7.0.26")
    return tmp_path / "srv"


def params(**overrides):
    return {**DEFAULTS, **overrides}


@pytest.fixture
def http_server():
    """A real HTTP server on loopback answering /version, /text and /broken."""
    bodies = {"/version": json.dumps({"version": "7.0.27"}), "/text": "fpdemo release 7.0.27 (abi 1)", "/broken": "{not json"}
    with loopback.http_server({path: (200, body) for path, body in bodies.items()}, default=(404, b"")) as (url, _port):
        yield url


def test_current_link(host, install):
    assert find_version(params(install_dir=str(install)), host) == "7.0.26"


def test_version_file_defaults_to_the_current_release(host, install):
    assert find_version(params(strategy="version_file", install_dir=str(install)), host) == "7.0.26"
    assert find_version(params(strategy="version_file", version_file=str(install / "releases/7.0.28/VERSION")), host) == "7.0.28"


def test_command_with_regex_group(host):
    argv = [sys.executable, "-c", "print('OpenSSL 3.0.15 3 Sep 2024')"]
    assert find_version(params(strategy="command", command=argv, version_regex=r"OpenSSL (\d+\.\d+\.\d+)"), host) == "3.0.15"


def test_package_reads_the_dpkg_database(host):
    expected = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True, check=True).stdout
    assert find_version(params(strategy="package", package="dpkg"), host) == expected


def test_http_json_and_regex(host, http_server):
    assert find_version(params(strategy="http", url=f"{http_server}/version"), host) == "7.0.27"
    assert find_version(params(strategy="http", url=f"{http_server}/text", version_regex=r"release (\S+)"), host) == "7.0.27"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"install_dir": "/nonexistent/fp"}, "/nonexistent/fp/current is not a symbolic link: is fpdemo installed in /nonexistent/fp?"),
        ({"strategy": "version_file", "version_file": "/nonexistent/VERSION"}, "cannot read version file /nonexistent/VERSION: No such file or directory"),
        ({"strategy": "command", "command": []}, "strategy 'command' needs the option command"),
        ({"strategy": "command", "command": ["false"]}, "command ['false'] exited 1"),
        ({"strategy": "command", "command": ["echo", "none"]},
         "version_regex '(\\\\d+(?:\\\\.\\\\d+)+(?:-[0-9A-Za-z.]+)?)' does not match the output of ['echo', 'none']"),
        ({"strategy": "command", "command": ["echo", "1.0"], "version_regex": "("},
         "version_regex '(' is not a valid regular expression: missing ), unterminated subpattern at position 0"),
        ({"strategy": "command", "command": ["fleetpatch-no-such-tool"]},
         "command ['fleetpatch-no-such-tool'] cannot run: fleetpatch-no-such-tool not found on the host"),
        ({"strategy": "package", "package": "fleetpatch-no-such-package"},
         "package fleetpatch-no-such-package is not installed (dpkg-query says: dpkg-query: no packages found matching fleetpatch-no-such-package)"),
        ({"strategy": "http", "url": None}, "strategy 'http' needs the option url"),
    ],
)
def test_strategies_fail_with_a_clear_message(host, overrides, message):
    with pytest.raises(PatchError) as error:
        find_version(params(**overrides), host)
    assert str(error.value) == message


def test_dangling_current_link(host, tmp_path):
    (tmp_path / "current").symlink_to("releases/9.9.9")
    with pytest.raises(PatchError, match="current points to releases/9.9.9, which does not exist"):
        find_version(params(install_dir=str(tmp_path)), host)


def test_http_errors(host, http_server):
    with pytest.raises(PatchError, match="did not answer a JSON object with the key 'version'"):
        find_version(params(strategy="http", url=f"{http_server}/broken"), host)
    with pytest.raises(PatchError, match=r"GET http://127\.0\.0\.1:\d+/missing failed: Not Found"):
        find_version(params(strategy="http", url=f"{http_server}/missing"), host)


@pytest.mark.parametrize(
    ("affected", "fixed", "expect_affected", "expect_fixed"),
    [
        (None, None, None, None),
        (">=7.0.0,<7.0.28", "7.0.28", True, False),
        (">=8.0.0,<8.0.17", "7.0.20", False, True),
    ],
)
def test_detect_reports_affected_and_fixed(host, install, tmp_path, affected, fixed, expect_affected, expect_fixed):
    result = detect(params(install_dir=str(install), affected=affected, fixed_version=fixed, state_file=str(tmp_path / "none.json")), host)
    assert result == {
        "component": "fpdemo",
        "strategy": "current_link",
        "version": "7.0.26",
        "affected": expect_affected,
        "fixed": expect_fixed,
        "applied": [],
        "deferred": [],
        "rollbacks": [],
        "interrupted": None,
        "state_error": None,
    }


def test_a_version_outside_the_grammar_is_reported_unless_compared(host):
    argv = ["echo", "release 1:9.2p1-2+deb12u10"]
    found = detect(params(strategy="command", command=argv, version_regex=r"release (\S+)", state_file="/nonexistent"), host)
    assert found["version"] == "1:9.2p1-2+deb12u10"
    with pytest.raises(PatchError) as error:
        detect(params(strategy="command", command=argv, version_regex=r"release (\S+)", affected="<10", state_file="/nonexistent"), host)
    assert str(error.value) == (
        "fpdemo: strategy command found '1:9.2p1-2+deb12u10', which cannot be compared with a range: "
        "'1:9.2p1-2+deb12u10' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"
    )


def test_detect_reads_the_state_file(host, install, tmp_path):
    journal = {"op": "apply", "patch": "FP-2", "component": "fpdemo", "class": "hot", "from": "7.0.26", "to": "7.0.28",
               "step": "switched", "started": "2026-11-22T03:10:00Z"}
    state = {
        "format": 1,
        "components": {"fpdemo": {"version": "7.0.26", "previous": None}},
        "applied": [{"patch": "FP-1", "component": "fpdemo", "version": "7.0.26", "at": "2026-11-20T03:10:00Z"},
                    {"patch": "FP-X", "component": "other", "version": "1.0", "from": "0.9", "at": "2026-11-21T03:10:00Z"}],
        "deferred": [{"patch": "FP-2", "reason": "outside maintenance window", "until": "2026-11-28T01:00:00Z", "at": "2026-11-21T03:10:00Z"}],
        "rollbacks": [{"patch": "FP-0", "component": "fpdemo", "from": "7.0.27", "to": "7.0.26", "at": "2026-11-19T03:10:00Z"},
                      {"patch": None, "component": "other", "from": "1.1", "to": "1.0", "at": "2026-11-19T04:10:00Z"}],
        "journal": journal,
    }
    (tmp_path / "state.json").write_text(json.dumps(state), encoding="utf-8")
    result = detect(params(install_dir=str(install), state_file=str(tmp_path / "state.json")), host)
    assert result["applied"] == [state["applied"][0]]
    assert result["deferred"] == state["deferred"]
    assert result["rollbacks"] == [state["rollbacks"][0]]
    assert result["interrupted"] == journal
    assert result["state_error"] is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{broken", "state file {path} is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[]", "state file {path} is not a JSON object: it holds an array"),
        ('{"format": 2}', "state file {path} has format 2; this fleetpatch reads format 1"),
        ('{"format": 1, "components": {"fpdemo": {"version": 5, "previous": null}}}',
         "state file {path}: components.fpdemo.version is 5, expected a string"),
        ("directory", "state file {path} cannot be read: Is a directory"),
    ],
)
def test_a_damaged_state_file_does_not_hide_the_version(host, install, tmp_path, content, error):
    path = tmp_path / "state.json"
    if content == "directory":
        path.mkdir()
    else:
        path.write_text(content, encoding="utf-8")
    result = detect(params(install_dir=str(install), affected=">=7.0.0,<7.0.28", state_file=str(path)), host)
    assert result == {
        "component": "fpdemo", "strategy": "current_link", "version": "7.0.26", "affected": True, "fixed": None,
        "applied": None, "deferred": None, "rollbacks": None, "interrupted": None, "state_error": error.format(path=path),
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"affected": ">>7"}, "version range '>>7': '>>7' is not a comparator such as >=7.0.0"),
        ({"fixed_version": "latest"}, "'latest' is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)"),
    ],
)
def test_detect_rejects_bad_ranges_before_looking(host, overrides, message):
    with pytest.raises(PatchError) as error:
        detect(params(install_dir="/nonexistent", **overrides), host)
    assert str(error.value) == message


class PackageHost:
    """A host with one package database (``dpkg`` or ``rpm``) that answers ``answer`` and records what ran."""

    def __init__(self, database, answer):
        self.database = database
        self.answer = answer
        self.ran = []

    def which(self, name):
        return f"/usr/bin/{name}" if name == {"dpkg": "dpkg-query", "rpm": "rpm"}[self.database] else None

    def run(self, argv):
        self.ran.append(argv)
        return 0, self.answer, ""


@pytest.mark.parametrize(
    ("database", "installed", "affected", "fixed", "expect_affected", "expect_fixed"),
    [
        ("dpkg", "1:9.2p1-2+deb12u10", "<1:9.2p1-2+deb12u11", "1:9.2p1-2+deb12u11", True, False),
        ("dpkg", "1:9.2p1-2+deb12u11", "<1:9.2p1-2+deb12u11", "1:9.2p1-2+deb12u11", False, True),
        ("dpkg", "1:9.2p1-2+deb12u10", "<9.3", "9.3", False, True),  # the epoch puts it above any version without one
        ("dpkg", "7.0.28-1", ">=7.0.0,<7.0.28", "7.0.28", False, True),  # revision 1 of the fixed upstream version
        ("dpkg", "7.0.28~rc1-1", ">=7.0.0,<7.0.28", "7.0.28", True, False),  # a release candidate before it
        ("rpm", "7.0.28-1.el9", ">=7.0.0,<7.0.28", "7.0.28", False, True),
        ("rpm", "7.0.27-12.el9", ">=7.0.0,<7.0.28", "7.0.28", True, False),
        ("rpm", "3.0.7-27.el9", "<3.0.7-28.el9", "3.0.7-28.el9", True, False),  # a fix that is only a new release
        ("rpm", "1:3.0.7-27.el9", "<3.0.7-28.el9", "3.0.7-28.el9", False, True),
    ],
)
def test_package_versions_are_compared_in_their_database_order(database, installed, affected, fixed, expect_affected, expect_fixed):
    host = PackageHost(database, f"install ok installed|{installed}")
    result = detect(params(strategy="package", package="fpdemo", affected=affected, fixed_version=fixed, state_file="/nonexistent"), host)
    assert (result["version"], result["affected"], result["fixed"]) == (installed, expect_affected, expect_fixed)


@pytest.mark.parametrize(
    ("database", "argv"),
    [
        ("dpkg", ["dpkg-query", "-W", "-f", "${Status}|${Version}", "fpdemo"]),
        ("rpm", ["rpm", "-q", "--qf", "install ok installed|%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}", "fpdemo"]),
    ],
)
def test_the_package_query_asks_for_the_whole_version(database, argv):
    host = PackageHost(database, "install ok installed|1.0-1")
    assert find_version(params(strategy="package", package="fpdemo"), host) == "1.0-1"
    assert host.ran == [argv]


def test_package_ranges_are_read_in_the_database_order_before_looking():
    host = PackageHost("dpkg", "install ok installed|1.0-1")
    with pytest.raises(PatchError) as error:
        detect(params(strategy="package", affected="<1.0_1", state_file="/nonexistent"), host)
    assert str(error.value) == (
        "version range '<1.0_1': '1.0_1' is not a version (expected a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5)"
    )
    assert host.ran == []


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs a dpkg database")
def test_package_with_a_range_on_the_real_dpkg_database(host):
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True, check=True).stdout
    result = detect(params(strategy="package", package="dpkg", affected=f"<={installed}", fixed_version=f"{installed}+fix1",
                           state_file="/nonexistent"), host)
    assert (result["version"], result["affected"], result["fixed"]) == (installed, True, False)
    result = detect(params(strategy="package", package="dpkg", affected=f"<{installed}~", fixed_version=f"{installed}~",
                           state_file="/nonexistent"), host)
    assert (result["affected"], result["fixed"]) == (False, True)
