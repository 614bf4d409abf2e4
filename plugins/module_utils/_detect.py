# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the version of a component installed on a host, and whether it is affected.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

Every strategy only reads: the ``current`` link of a releases directory, a version file, a command's output
matched by a regular expression, the dpkg or rpm database, or an HTTP endpoint answering JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import load_state
from ansible_collections.fleetpatch.rollout.plugins.module_utils._version import Version, VersionError, VersionRange

__all__ = ["DEFAULT_VERSION_REGEX", "STRATEGIES", "detect", "find_version"]

STRATEGIES = ("current_link", "version_file", "command", "package", "http")
DEFAULT_VERSION_REGEX = r"(\d+(?:\.\d+)+(?:-[0-9A-Za-z.]+)?)"


def _from_current_link(params):
    link = os.path.join(params["install_dir"], "current")
    if not os.path.islink(link):
        raise PatchError(f"{link} is not a symbolic link: is {params['component']} installed in {params['install_dir']}?")
    target = os.path.realpath(link)
    if not os.path.isdir(target):
        raise PatchError(f"{link} points to {os.readlink(link)}, which does not exist", current=os.readlink(link))
    return os.path.basename(target)


def _from_version_file(params):
    path = params["version_file"] or os.path.join(params["install_dir"], "current", "VERSION")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise PatchError(f"cannot read version file {path}: {exc.strerror}", version_file=path) from None


def _from_command(params):
    argv = params["command"]
    if not argv:
        raise PatchError("strategy 'command' needs the option command")
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=params["timeout"], check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PatchError(f"command {argv!r} could not run: {exc}") from None
    output = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0:
        raise PatchError(f"command {argv!r} exited {result.returncode}", rc=result.returncode, stdout=output)
    return _match(params["version_regex"] or DEFAULT_VERSION_REGEX, output, f"the output of {argv!r}")


def _from_package(params):
    name = params["package"] or params["component"]
    if shutil.which("dpkg-query"):
        argv = ["dpkg-query", "-W", "-f", "${Status}|${Version}", name]
    elif shutil.which("rpm"):
        argv = ["rpm", "-q", "--qf", "install ok installed|%{VERSION}", name]
    else:
        raise PatchError("strategy 'package' needs dpkg-query or rpm on the host; neither was found")
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=params["timeout"], check=False)
    status, _sep, version = result.stdout.decode("utf-8", "replace").partition("|")
    if result.returncode != 0 or not status.endswith("installed"):
        raise PatchError(f"package {name} is not installed ({argv[0]} says: {result.stderr.decode('utf-8', 'replace').strip() or status})")
    return version.strip()


def _from_http(params):
    url = params["url"]
    if not url:
        raise PatchError("strategy 'http' needs the option url")
    try:
        with urllib.request.urlopen(url, timeout=params["timeout"]) as response:  # nosec: operator-given URL on the host
            body = response.read(65536).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise PatchError(f"GET {url} failed: {getattr(exc, 'reason', exc)}", url=url) from None
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


def find_version(params):
    """The installed version as the strategy ``params['strategy']`` finds it; :class:`PatchError` when it cannot.

    The text is returned as found (a package database's ``1:9.2p1-2+deb12u10`` included); it must be a
    fleetpatch :class:`Version` only when it is compared with a range, which :func:`detect` checks.
    """
    version = _FINDERS[params["strategy"]](params).strip()
    if not version:
        raise PatchError(f"{params['component']}: strategy {params['strategy']} found an empty version")
    return version


def _comparable(version, params):
    try:
        return Version(version)
    except VersionError as exc:
        raise PatchError(f"{params['component']}: strategy {params['strategy']} found {version!r}, which cannot be compared with a range: {exc}",
                         version=version) from None


def detect(params):
    """What runs on this host and what fleetpatch did to it: the result of the ``detect`` module."""
    try:
        affected_range = VersionRange(params["affected"]) if params["affected"] else None
        fixed = Version(params["fixed_version"]) if params["fixed_version"] else None
    except VersionError as exc:
        raise PatchError(str(exc)) from None
    version = find_version(params)
    comparable = _comparable(version, params) if affected_range or fixed else None
    state = load_state(params["state_file"])
    return {
        "component": params["component"],
        "strategy": params["strategy"],
        "version": version,
        "affected": None if affected_range is None else comparable in affected_range,
        "fixed": None if fixed is None else comparable >= fixed,
        "applied": [entry for entry in state["applied"] if entry.get("component") in (None, params["component"])],
        "deferred": state["deferred"],
        "interrupted": state["journal"],
    }
