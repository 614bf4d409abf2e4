# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version strings and version ranges: the one rule fleetpatch uses, on the hosts and on the controller.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A version follows one of three schemes, named when it is read; versions of different schemes never compare.

``release`` (the default: fleetpatch releases, ``releases/<version>``): dotted numbers with an optional
pre-release (``-rc1``, ``~beta``) and build metadata (``+b2``, ignored in comparisons): ``7.0`` equals
``7.0.0``, ``7.0.28-rc1`` sorts before ``7.0.28``.

``dpkg`` (a version from the dpkg database): ``[epoch:]upstream[-revision]`` ordered as ``dpkg
--compare-versions`` orders them: the epoch first (absent is 0), then upstream, then revision (absent equals
``0``), each compared in runs of non-digits (``~`` before the end before letters before other characters)
and numbers: ``1:9.2p1-2+deb12u5`` sorts after ``9.9``, ``7.0.28~rc1`` before ``7.0.28``, ``7.0.28-1`` after it.

``rpm`` (a version from the rpm database): ``[epoch:]version[-release]`` ordered as rpm's ``rpmvercmp`` orders
each part: runs of digits (as numbers) and of letters, separators ignored, a number above letters, ``~`` before
the end and ``^`` after it; a version without a release sorts before every release of it. In a range, though,
a bound without a release stands for every release of its version, as in rpm's own dependency ranges:
``3.0.7-27.el9`` is inside ``<=3.0.7`` and ``==3.0.7``, and not inside ``<3.0.7``.

A range is one or more alternatives joined by ``||``; an alternative is comparators joined by ``,`` or spaces,
all of which must hold: ``>=7.0.0,<7.0.28 || >=8.0.0,<8.0.17``. Operators: ``==`` (or ``=``), ``!=``, ``<``,
``<=``, ``>``, ``>=``.
"""

from __future__ import annotations

import operator
import re

__all__ = ["SCHEMES", "VersionError", "Version", "VersionRange"]

SCHEMES = ("release", "dpkg", "rpm")

_VERSION_RE = re.compile(r"^v?(?P<release>\d+(?:\.\d+)*)(?:[-~](?P<pre>[0-9A-Za-z.]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$")
_DPKG_EPOCH_RE = re.compile(r"[0-9]+")
_DPKG_UPSTREAM_RE = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")
_DPKG_REVISION_RE = re.compile(r"[A-Za-z0-9.+~]+")
_DPKG_RUN_RE = re.compile(r"([^0-9]*)([0-9]*)")
_RPM_RE = re.compile(r"^(?:(?P<epoch>[0-9]+):)?(?P<version>[A-Za-z0-9._+~^]+)(?:-(?P<release>[A-Za-z0-9._+~^]+))?$")
_RPM_TOKEN_RE = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")
_END = (0,)  # closes every key: what a shorter part is compared with where the longer one goes on
_EXPECTED = {
    "release": "dotted numbers such as 7.0.28, optionally -rc1",
    "dpkg": "a dpkg version [epoch:]upstream[-revision] such as 1:9.2p1-2+deb12u5",
    "rpm": "an rpm version [epoch:]version[-release] such as 3.0.7-27.el9",
}
_COMPARATOR_RE = re.compile(r"\s*(?P<op>==|!=|<=|>=|<|>|=)?\s*(?P<version>[^\s,<>=!]+)\s*(?:,|\s|$)")
_OPERATORS = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class VersionError(ValueError):
    """A version or range string that fleetpatch cannot read; the message quotes it."""


def _release_key(text):
    """Sort key of a fleetpatch release version, or None when ``text`` is not one."""
    match = _VERSION_RE.match(text)
    if not match:
        return None
    release = [int(part) for part in match.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre = match.group("pre")
    pre_key = (1,) if pre is None else (0,) + tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (tuple(release), pre_key)


def _dpkg_weight(char):
    """dpkg's order of a non-digit character: ``~`` first, then (after the end of the string) letters, then the rest."""
    if char == "~":
        return -1
    return ord(char) if char.isalpha() else ord(char) + 256


def _dpkg_part(text):
    """Sort key of an upstream version or revision: its (non-digit run, number) pairs, as dpkg's verrevcmp walks them."""
    pairs = []
    position = 0
    while True:
        match = _DPKG_RUN_RE.match(text, position)
        pairs.append((tuple(_dpkg_weight(char) for char in match.group(1)) + _END, int(match.group(2) or 0)))
        position = match.end()
        if position >= len(text):
            return tuple(pairs) + ((_END, 0),)


def _dpkg_key(text):
    """Sort key of a dpkg version, or None when ``text`` is not one (split as dpkg splits it: first colon, last hyphen)."""
    epoch, colon, rest = text.partition(":")
    if not colon:
        epoch, rest = "0", text
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    if not (_DPKG_EPOCH_RE.fullmatch(epoch) and _DPKG_UPSTREAM_RE.fullmatch(upstream) and (not hyphen or _DPKG_REVISION_RE.fullmatch(revision))):
        return None
    return (int(epoch), _dpkg_part(upstream), _dpkg_part(revision))


def _rpm_token(token):
    if token == "~":
        return (-1,)
    if token == "^":
        return (1,)
    return (3, int(token)) if token.isdigit() else (2, token)


def _rpm_part(text):
    """Sort key of an rpm version or release: its tokens as rpmvercmp compares them, separators dropped."""
    return tuple(_rpm_token(token) for token in _RPM_TOKEN_RE.findall(text)) + (_END,)


def _rpm_key(text):
    """Sort key of an rpm version, or None when ``text`` is not one."""
    match = _RPM_RE.match(text)
    if not match:
        return None
    return (int(match.group("epoch") or 0), _rpm_part(match.group("version")), _rpm_part(match.group("release") or ""))


_KEYS = {"release": _release_key, "dpkg": _dpkg_key, "rpm": _rpm_key}


class Version:
    """A comparable version; ``Version("7.0.26") < Version("7.0.28")``, ``Version("1:9.2p1-2", "dpkg") > Version("9.9", "dpkg")``."""

    __slots__ = ("text", "scheme", "_key")

    def __init__(self, text, scheme="release"):
        if scheme not in _KEYS:
            raise VersionError(f"unknown version scheme {scheme!r}; one of {', '.join(SCHEMES)}")
        if not isinstance(text, str):
            raise VersionError(f"a version must be a string, got {type(text).__name__} {text!r}")
        key = _KEYS[scheme](text.strip())
        if key is None:
            raise VersionError(f"{text!r} is not a version (expected {_EXPECTED[scheme]})")
        self.text = text.strip()
        self.scheme = scheme
        self._key = key

    def _other_key(self, other):
        if not isinstance(other, Version):
            raise TypeError(f"cannot compare Version with {type(other).__name__}")
        if other.scheme != self.scheme:
            raise VersionError(f"cannot compare {self.scheme} version {self.text!r} with {other.scheme} version {other.text!r}")
        return other._key

    def __eq__(self, other):
        return isinstance(other, Version) and self.scheme == other.scheme and self._key == other._key

    def __lt__(self, other):
        return self._key < self._other_key(other)

    def __le__(self, other):
        return self._key <= self._other_key(other)

    def __gt__(self, other):
        return self._key > self._other_key(other)

    def __ge__(self, other):
        return self._key >= self._other_key(other)

    def __hash__(self):
        return hash((self.scheme, self._key))

    def __repr__(self):
        return f"Version({self.text!r})" if self.scheme == "release" else f"Version({self.text!r}, {self.scheme!r})"

    def __str__(self):
        return self.text


class VersionRange:
    """A set of versions written as comparators; ``"7.0.27" in VersionRange(">=7.0.0,<7.0.28")``.

    Its bounds, and the strings tested against it, are read in its ``scheme``.
    """

    __slots__ = ("text", "scheme", "_alternatives")

    def __init__(self, text, scheme="release"):
        if scheme not in _KEYS:
            raise VersionError(f"unknown version scheme {scheme!r}; one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        if isinstance(text, (list, tuple)):
            text = " || ".join(text)
        if not isinstance(text, str) or not text.strip():
            raise VersionError(f"a version range must be a non-empty string, got {text!r}")
        self.text = text.strip()
        self._alternatives = [self._parse_alternative(alt) for alt in self.text.split("||")]

    def _parse_alternative(self, alternative):
        text = alternative.strip()
        if not text:
            raise VersionError(f"version range {self.text!r} has an empty alternative")
        comparators = []
        position = 0
        while position < len(text):
            match = _COMPARATOR_RE.match(text, position)
            if not match:
                raise VersionError(f"version range {self.text!r}: {text[position:].strip()!r} is not a comparator such as >=7.0.0")
            try:
                bound = Version(match.group("version"), self.scheme)
            except VersionError as exc:
                raise VersionError(f"version range {self.text!r}: {exc}") from None
            # rpm: a bound without a release compares only epoch and version, whatever release a host runs.
            whole = not (self.scheme == "rpm" and _RPM_RE.match(bound.text).group("release") is None)
            comparators.append((_OPERATORS[match.group("op") or "=="], bound, whole))
            position = match.end()
        return comparators

    def __contains__(self, version):
        if not isinstance(version, Version):
            version = Version(version, self.scheme)
        elif version.scheme != self.scheme:
            raise VersionError(f"cannot test {version.scheme} version {version.text!r} against {self.scheme} range {self.text!r}")
        return any(all(test(version, bound) if whole else test(version._key[:2], bound._key[:2]) for test, bound, whole in alternative)
                   for alternative in self._alternatives)

    def __repr__(self):
        return f"VersionRange({self.text!r})" if self.scheme == "release" else f"VersionRange({self.text!r}, {self.scheme!r})"

    def __str__(self):
        return self.text
