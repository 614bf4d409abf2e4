# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the version of a component installed on a host, and whether it is affected.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

``host`` is a :class:`~._host.ModuleHost` (or anything with its ``run``, ``which`` and ``get``).
Every strategy only reads: the ``current`` link of a releases directory, a version file, a command's output
matched by a regular expression, the dpkg or rpm database, or an HTTP endpoint answering JSON.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import load_state
from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange

__all__ = ["DEFAULT_VERSION_REGEX", "STRATEGIES", "detect", "find_version"]

STRATEGIES = ("current_link", "version_file", "command", "package", "http")
DEFAULT_VERSION_REGEX = r"(\d+(?:\.\d+)+(?:-[0-9A-Za-z.]+)?)"


def _from_current_link(params, _host):
    link = os.path.join(params["install_dir"], "current")
    if not os.path.islink(link):
        raise PatchError(f"{link} is not a symbolic link: is {params['component']} installed in {params['install_dir']}?")
    target = os.path.realpath(link)
    if not os.path.isdir(target):
        raise PatchError(f"{link} points to {os.readlink(link)}, which does not exist", current=os.readlink(link))
    return os.path.basename(target)


def _from_version_file(params, _host):
    path = params["version_file"] or os.path.join(params["install_dir"], "current", "VERSION")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise PatchError(f"cannot read version file {path}: {exc.strerror}", version_file=path) from None


def _from_command(params, host):
    argv = params["command"]
    if not argv:
        raise PatchError("strategy 'command' needs the option command")
    if not host.which(argv[0]):
        raise PatchError(f"command {argv!r} cannot run: {argv[0]} not found on the host")
    rc, stdout, stderr = host.run(argv)
    if rc != 0:
        raise PatchError(f"command {argv!r} exited {rc}", rc=rc, stdout=stdout, stderr=stderr)
    return _match(params["version_regex"] or DEFAULT_VERSION_REGEX, stdout + stderr, f"the output of {argv!r}")


def _package_database(host):
    """``"dpkg"`` or ``"rpm"``: the package database the host has (dpkg where it has both); its versions' scheme."""
    if host.which("dpkg-query"):
        return "dpkg"
    if host.which("rpm"):
        return "rpm"
    raise PatchError("strategy 'package' needs dpkg-query or rpm on the host; neither was found")


def _from_package(params, host):
    name = params["package"] or params["component"]
    if _package_database(host) == "dpkg":
        argv = ["dpkg-query", "-W", "-f", "${Status}|${Version}", name]
    else:  # the whole [epoch:]version-release: a fix is often only a new release
        argv = ["rpm", "-q", "--qf", "install ok installed|%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}", name]
    rc, stdout, stderr = host.run(argv)
    status, _sep, version = stdout.partition("|")
    if rc != 0 or not status.endswith("installed"):
        raise PatchError(f"package {name} is not installed ({argv[0]} says: {stderr.strip() or status})")
    return version.strip()


def _from_http(params, host):
    url = params["url"]
    if not url:
        raise PatchError("strategy 'http' needs the option url")
    body = host.get(url, params["timeout"])
    if params["version_regex"]:
        return _match(params["version_regex"], body, f"GET {url}")
    try:
        return str(json.loads(body)[params["version_key"]])
    except (ValueError, KeyError, TypeError):
        raise PatchError(f"GET {url} did not answer a JSON object with the key {params['version_key']!r}", url=url, body=body[:200]) from None


def _match(pattern, text, where):
    try:
        match = re.search(pattern, text, re.MULTILINE)
    except re.error as exc:
        raise PatchError(f"version_regex {pattern!r} is not a valid regular expression: {exc}") from None
    if not match:
        raise PatchError(f"version_regex {pattern!r} does not match {where}", output=text[:500])
    return match.group(1) if match.groups() else match.group(0)


_FINDERS = {
    "current_link": _from_current_link,
    "version_file": _from_version_file,
    "command": _from_command,
    "package": _from_package,
    "http": _from_http,
}


def find_version(params, host):
    """The installed version as the strategy ``params['strategy']`` finds it; :class:`PatchError` when it cannot.

    The text is returned as found (a package database's ``1:9.2p1-2+deb12u10`` included); it must be a
    :class:`Version` (of the database's scheme, for ``package``) only when it is compared with a range, which
    :func:`detect` checks.
    """
    version = _FINDERS[params["strategy"]](params, host).strip()
    if not version:
        raise PatchError(f"{params['component']}: strategy {params['strategy']} found an empty version")
    return version


def _comparable(version, params, scheme):
    try:
        return Version(version, scheme)
    except VersionError as exc:
        raise PatchError(f"{params['component']}: strategy {params['strategy']} found {version!r}, which cannot be compared with a range: {exc}",
                         version=version) from None


def detect(params, host):
    """What runs on this host and what fleetpatch did to it: the result of the ``detect`` module.

    A version from the package database is compared in that database's order (``dpkg`` or ``rpm``), and
    ``affected`` and ``fixed_version`` are then read as versions of that database too. A state file that cannot
    be read or is damaged does not hide the version: ``state_error`` says why, and ``applied``, ``deferred``,
    ``rollbacks`` and ``interrupted`` are None (unknown, not empty).
    """
    scheme = _package_database(host) if params["strategy"] == "package" else "release"
    try:
        affected_range = VersionRange(params["affected"], scheme) if params["affected"] else None
        fixed = Version(params["fixed_version"], scheme) if params["fixed_version"] else None
    except VersionError as exc:
        raise PatchError(str(exc)) from None
    version = find_version(params, host)
    comparable = _comparable(version, params, scheme) if affected_range or fixed else None
    result = {
        "component": params["component"],
        "strategy": params["strategy"],
        "version": version,
        "affected": None if affected_range is None else comparable in affected_range,
        "fixed": None if fixed is None else comparable >= fixed,
        "applied": None,
        "deferred": None,
        "rollbacks": None,
        "interrupted": None,
        "state_error": None,
    }
    try:
        state = load_state(params["state_file"])
    except PatchError as exc:  # the version is still the truth; what fleetpatch recorded is unknown
        result["state_error"] = str(exc)
        return result
    result.update(
        applied=[entry for entry in state["applied"] if entry["component"] == params["component"]],
        deferred=state["deferred"],
        rollbacks=[entry for entry in state["rollbacks"] if entry["component"] == params["component"]],
        interrupted=state["journal"],
    )
    return result
