# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version strings and version ranges: the one rule fleetpatch uses, on the hosts and on the controller.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A version is dotted numbers with an optional pre-release (``-rc1``, ``~beta``) and build metadata (``+b2``,
ignored in comparisons): ``7.0`` equals ``7.0.0``, ``7.0.28-rc1`` sorts before ``7.0.28``.

A range is one or more alternatives joined by ``||``; an alternative is comparators joined by ``,`` or spaces,
all of which must hold: ``>=7.0.0,<7.0.28 || >=8.0.0,<8.0.17``. Operators: ``==`` (or ``=``), ``!=``, ``<``,
``<=``, ``>``, ``>=``.
"""

from __future__ import annotations

import operator
import re

__all__ = ["VersionError", "Version", "VersionRange"]

_VERSION_RE = re.compile(r"^v?(?P<release>\d+(?:\.\d+)*)(?:[-~](?P<pre>[0-9A-Za-z.]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$")
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


class Version:
    """A comparable version; ``Version("7.0.26") < Version("7.0.28")``."""

    __slots__ = ("text", "_key")

    def __init__(self, text):
        if not isinstance(text, str):
            raise VersionError(f"a version must be a string, got {type(text).__name__} {text!r}")
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise VersionError(f"{text!r} is not a version (expected dotted numbers such as 7.0.28, optionally -rc1)")
        release = [int(part) for part in match.group("release").split(".")]
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        pre = match.group("pre")
        pre_key = (1,) if pre is None else (0,) + tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        self.text = text.strip()
        self._key = (tuple(release), pre_key)

    def __eq__(self, other):
        return isinstance(other, Version) and self._key == other._key

    def __lt__(self, other):
        return self._key < other._key

    def __le__(self, other):
        return self._key <= other._key

    def __gt__(self, other):
        return self._key > other._key

    def __ge__(self, other):
        return self._key >= other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"Version({self.text!r})"

    def __str__(self):
        return self.text


class VersionRange:
    """A set of versions written as comparators; ``"7.0.27" in VersionRange(">=7.0.0,<7.0.28")``."""

    __slots__ = ("text", "_alternatives")

    def __init__(self, text):
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
                bound = Version(match.group("version"))
            except VersionError as exc:
                raise VersionError(f"version range {self.text!r}: {exc}") from None
            comparators.append((_OPERATORS[match.group("op") or "=="], bound))
            position = match.end()
        return comparators

    def __contains__(self, version):
        if not isinstance(version, Version):
            version = Version(version)
        return any(all(test(version, bound) for test, bound in alternative) for alternative in self._alternatives)

    def __repr__(self):
        return f"VersionRange({self.text!r})"

    def __str__(self):
        return self.text
