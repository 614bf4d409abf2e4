# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing a host's fleetpatch state file, and checking its whole shape on every read.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The state file is one JSON object per host::

    {"format": 1,
     "components": {"fpdemo": {"version": "7.0.28", "previous": "7.0.26"}},
     "applied": [{"patch": "FP-2025-14847", "component": "fpdemo", "version": "7.0.28", "from": "7.0.26", "at": "2026-...Z",
                  "judged": "2026-...Z"}],
     "deferred": [{"patch": "FP-2025-14847", "reason": "outside maintenance window", "until": "2026-...Z", "at": "..."}],
     "rollbacks": [{"patch": "FP-2025-14847", "component": "fpdemo", "from": "7.0.28", "to": "7.0.26", "at": "..."}],
     "journal": null}

An ``applied`` record gains ``"judged": "<RFC 3339 UTC time>"`` (a string; absent until then) when
``fleetpatch.rollout.health`` judged the patched host healthy after its soak (its options ``judged_patch`` and
``judged_version``; ``_apply.record_judgment``). A record without it is an apply whose run ended before the
judgment: the planner plans that host again, to soak and gate it (``plugin_utils/_waves.py``).

``journal`` is not null while an apply or rollback is under way (it names the operation, the release it
started from, the release it goes to and the last step done); a later run finds it there and reverts it.
``lease`` (null or the rollout lock a run holds on the host) may be present too. :data:`SHAPE` says every
field, its type and whether it may be absent; :func:`state_problems` checks a parsed file against it.

A file that is not exactly that shape is damaged: every problem is named with the file and the field, and it
is never overwritten. Fields this fleetpatch does not know (a file written by a newer one) are damage too:
refusing is safer than dropping them on the next write. The top-level lists and ``journal`` may be absent
(older files of format 1 lack ``rollbacks``); they read as empty.

Every write is durable and atomic: a temporary file in the same directory, fsync, rename over the old file,
fsync of the directory. A power cut leaves the old file or the new one, never a torn one.
:class:`StateFile` is how a module reads and writes it: a run that ends with the state it read leaves the
file as it found it (byte for byte, or absent).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import os
import re
import stat
import tempfile

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = [
    "DAMAGED_STATE_CHOICES",
    "JOURNAL_STEPS",
    "SHAPE",
    "STATE_FORMAT",
    "StateDamaged",
    "StateFile",
    "durable_write",
    "empty_state",
    "fsync_dir",
    "load_state",
    "parse_state",
    "save_state",
    "state_problems",
    "utc_now",
    "with_state_file",
]

STATE_FORMAT = 1
DAMAGED_STATE_CHOICES = ("refuse", "move_aside")
JOURNAL_STEPS = ("journaled", "unpacked", "switched", "activated", "confirmed")

# Field kinds: what a value must be, and how a problem words it.
_TEXT = ("a string", lambda value: isinstance(value, str))
_TEXT_OR_NULL = ("a string or null", lambda value: value is None or isinstance(value, str))


def _one_of(*choices, null=False):
    wording = ", ".join(json.dumps(choice) for choice in choices) + (" or null" if null else "")
    return (f"one of {wording}", lambda value: (null and value is None) or (isinstance(value, str) and value in choices))


# A record's fields: name -> (kind, required).
_COMPONENT = {"version": (_TEXT, True), "previous": (_TEXT_OR_NULL, True), "rolled_back_from": (_TEXT, False)}
_APPLIED = {"patch": (_TEXT, True), "component": (_TEXT, True), "version": (_TEXT, True), "from": (_TEXT, False), "at": (_TEXT, True),
            "judged": (_TEXT, False)}
_DEFERRED = {"patch": (_TEXT, True), "reason": (_TEXT, True), "until": (_TEXT_OR_NULL, True), "at": (_TEXT, True)}
# A rollback may be run without a patch_id: its records and journal then carry "patch": null.
_ROLLBACK = {"patch": (_TEXT_OR_NULL, True), "component": (_TEXT, True), "from": (_TEXT, True), "to": (_TEXT, True), "at": (_TEXT, True)}
_JOURNAL = {
    "op": (_one_of("apply", "rollback"), True), "patch": (_TEXT_OR_NULL, True), "component": (_TEXT, True),
    "class": (_one_of("hot", "restart"), True), "from": (_TEXT, True), "to": (_TEXT, True),
    "step": (_one_of(*JOURNAL_STEPS, null=True), True), "started": (_TEXT, True), "owner": (_TEXT_OR_NULL, False),
}
_LEASE = {
    "owner": (_TEXT, True), "holder": (_TEXT_OR_NULL, True), "patch": (_TEXT_OR_NULL, True), "since": (_TEXT, True),
    "job": (_TEXT_OR_NULL, False), "controller": (_TEXT_OR_NULL, False),
}

# The top level: name -> (container, record). "map": an object of records by name; "list": a list of records;
# "nullable": null or one record. Every one may be absent (see empty_state for what it then reads as).
SHAPE = {
    "components": ("map", _COMPONENT),
    "applied": ("list", _APPLIED),
    "deferred": ("list", _DEFERRED),
    "rollbacks": ("list", _ROLLBACK),
    "journal": ("nullable", _JOURNAL),
    "lease": ("nullable", _LEASE),
}

_JSON_TYPES = ((bool, "a boolean"), (dict, "an object"), (list, "an array"), (str, "a string"), (int, "a number"), (float, "a number"))
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SHOWN = 60  # characters of a bad value shown in a message


class StateDamaged(PatchError):
    """The state file is there and readable, but it is not a state file this fleetpatch reads."""


class _Duplicated(dict):
    """A JSON object in which a key appeared more than once (json keeps the last one silently)."""

    duplicates = ()


def _object(pairs):
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    marked = _Duplicated(found)
    seen = set()
    marked.duplicates = sorted({key for key, _value in pairs if key in seen or seen.add(key)})
    return marked


def _json_type(value):
    if value is None:
        return "null"
    return next(name for kind, name in _JSON_TYPES if isinstance(value, kind))


def _shown(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _child(path, key):
    name = key if _PLAIN_NAME.match(key) else json.dumps(key)
    if not path:
        return name
    return f"{path}.{name}" if _PLAIN_NAME.match(key) else f"{path}[{name}]"


def _duplicates(path, value):
    where = f"{path} has" if path else "the top level has"
    return [f"{where} the key {json.dumps(key)} more than once" for key in getattr(value, "duplicates", ())]


def _record_problems(path, value, fields):
    if not isinstance(value, dict):
        return [f"{path} is {_shown(value)}, expected an object"]
    problems = _duplicates(path, value)
    for name, ((expected, valid), required) in fields.items():
        where = _child(path, name)
        if name not in value:
            if required:
                problems.append(f"{where} is missing")
        elif not valid(value[name]):
            problems.append(f"{where} is {_shown(value[name])}, expected {expected}")
    problems.extend(f"{_child(path, name)} is not a field this fleetpatch knows" for name in value if name not in fields)
    return problems


def state_problems(data):
    """Every way ``data`` (a parsed state file) differs from :data:`SHAPE`, as ``field is ..., expected ...`` lines.

    The format is checked first and alone: the rest of a file of another format means something else.
    """
    if not isinstance(data, dict):
        return [f"is not a JSON object: it holds {_json_type(data)}"]
    if "format" not in data:
        return ["has no format field"]
    found = data["format"]
    if found.__class__ is not int:
        return [f"has format {_shown(found)}, expected the number {STATE_FORMAT}"]
    if found != STATE_FORMAT:
        return [f"has format {found}; this fleetpatch reads format {STATE_FORMAT}"]
    problems = _duplicates("", data)
    for name, value in data.items():
        if name == "format":
            continue
        if name not in SHAPE:
            problems.append(f"{_child('', name)} is not a field this fleetpatch knows")
            continue
        container, fields = SHAPE[name]
        if container == "nullable":
            if value is not None:
                problems.extend(_record_problems(name, value, fields))
        elif container == "map":
            if not isinstance(value, dict):
                problems.append(f"{name} is {_shown(value)}, expected an object")
                continue
            problems.extend(_duplicates(name, value))
            for key, record in value.items():
                problems.extend(_record_problems(_child(name, key), record, fields))
        elif not isinstance(value, list):
            problems.append(f"{name} is {_shown(value)}, expected an array")
        else:
            for index, record in enumerate(value):
                problems.extend(_record_problems(f"{name}[{index}]", record, fields))
    return problems


def _damage(path, problems):
    """The one message of a damaged file: the whole-file problems read as a sentence, field problems listed."""
    if problems[0].startswith(("is ", "has ")):
        return f"state file {path} {problems[0]}"
    if len(problems) == 1:
        return f"state file {path}: {problems[0]}"
    return f"state file {path}: {len(problems)} problems: " + "; ".join(problems)


def empty_state():
    """The state of a host fleetpatch has never touched."""
    return {"format": STATE_FORMAT, "components": {}, "applied": [], "deferred": [], "rollbacks": [], "journal": None}


def parse_state(path, raw):
    """The state in ``raw`` (the bytes of the file ``path``), checked whole; :class:`StateDamaged` naming every problem."""
    if not raw.strip():
        raise StateDamaged(f"state file {path} is empty, not JSON", state_file=path, state_problems=["is empty, not JSON"])
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_object)
    except UnicodeDecodeError as exc:
        problem = f"is not JSON: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
        raise StateDamaged(f"state file {path} {problem}", state_file=path, state_problems=[problem]) from None
    except ValueError as exc:
        problem = f"is not JSON: {exc}"
        raise StateDamaged(f"state file {path} {problem}", state_file=path, state_problems=[problem]) from None
    problems = state_problems(data)
    if problems:
        raise StateDamaged(_damage(path, problems), state_file=path, state_problems=problems)
    state = empty_state()
    state.update(data)
    return state


def _read(path):
    """The file's bytes, or None when there is none; an unreadable file is a :class:`PatchError`."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PatchError(f"state file {path} cannot be read: {exc.strerror or exc}", state_file=path) from None


def load_state(path):
    """The host's state from ``path``; an absent file is the empty state, a damaged one a :class:`StateDamaged`."""
    raw = _read(path)
    return empty_state() if raw is None else parse_state(path, raw)


def utc_now():
    """The current time in UTC, RFC 3339 with a Z, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fsync_dir(path):
    """Make a directory's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path, data, mode=0o600):
    """Replace ``path`` with ``data`` (bytes) atomically and durably."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def save_state(path, state):
    """Write the host's state durably and atomically."""
    try:
        durable_write(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as exc:
        raise PatchError(f"state file {path} cannot be written: {exc}", state_file=path) from None


def _aside_name(path):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{path}.damaged-{stamp}"


class StateFile:
    """A host's state file as one module run sees it: read and checked once, written only when the state changes.

    ``state`` is the state to work on. A damaged file is a :class:`PatchError` and stays as it is, unless
    ``damaged_state`` is ``move_aside``: then ``error`` says what is wrong, ``state`` starts empty, and the
    first :meth:`save` moves the damaged file to ``<path>.damaged-<UTC time>`` (``moved_to``) before it writes.
    A run that writes nothing moves nothing. An unreadable file (permissions, I/O) is never moved.

    :meth:`save` of the state as it was read puts the file back as it was found: the same bytes, or no file at
    all. A refused or reverted operation therefore leaves no trace in the state file.
    """

    def __init__(self, path, damaged_state="refuse"):
        if damaged_state not in DAMAGED_STATE_CHOICES:
            raise PatchError(f"damaged_state: {damaged_state!r} is not one of {', '.join(DAMAGED_STATE_CHOICES)}")
        self.path = path
        self.error = None
        self.moved_to = None
        self._raw = _read(path)
        self._mode = 0o600 if self._raw is None else stat.S_IMODE(os.stat(path).st_mode)
        self._written = False
        self._made_dir = False
        try:
            self.state = empty_state() if self._raw is None else parse_state(path, self._raw)
        except StateDamaged as exc:
            if damaged_state != "move_aside":
                raise StateDamaged(f"{exc}; the file is left as it is (damaged_state=move_aside moves it aside and starts afresh)",
                                   **exc.details) from None
            self.error = str(exc)
            self.state = empty_state()
        self._found = copy.deepcopy(self.state)

    def save(self):
        """Write ``state`` durably and atomically, or put the file back as it was found when ``state`` is unchanged."""
        if self.state == self._found:
            if self._written:
                self._restore()
            return
        if self.error is not None and self.moved_to is None:
            self._move_aside()
        if not self._written and self._raw is None:
            self._made_dir = not os.path.isdir(os.path.dirname(os.path.abspath(self.path)))
        save_state(self.path, self.state)
        self._written = True

    def discard(self):
        """Remove the file, when ``state`` records nothing (it is the empty state): a host with no state file reads the same."""
        if self.state != empty_state() or self.error is not None:
            raise PatchError(f"state file {self.path} holds a state: it is not discarded", state_file=self.path)
        if os.path.lexists(self.path):
            try:
                os.unlink(self.path)
                fsync_dir(os.path.dirname(os.path.abspath(self.path)))
            except OSError as exc:
                raise PatchError(f"state file {self.path} cannot be removed: {exc}", state_file=self.path) from None
        self._raw = None
        self._found = copy.deepcopy(self.state)
        self._written = False

    def _restore(self):
        try:
            if self._raw is not None:
                durable_write(self.path, self._raw, self._mode)
            elif os.path.lexists(self.path):
                directory = os.path.dirname(os.path.abspath(self.path))
                os.unlink(self.path)
                if self._made_dir:
                    os.rmdir(directory)  # this run made it for the file it takes back
                    directory = os.path.dirname(directory)
                fsync_dir(directory)
        except OSError as exc:
            raise PatchError(f"state file {self.path} cannot be written: {exc}", state_file=self.path) from None
        self._written = False

    def _move_aside(self):
        """Move the damaged file to a name of its own, never over another file; the state then starts with no file."""
        if _read(self.path) != self._raw:
            raise PatchError(f"state file {self.path} changed while this run read it; it is left as it is", state_file=self.path)
        base = _aside_name(self.path)
        for attempt in range(100):
            target = base if attempt == 0 else f"{base}.{attempt}"
            try:
                os.link(self.path, target)  # fails rather than replace an earlier damaged file
            except FileExistsError:
                continue
            except OSError as exc:
                raise PatchError(f"state file {self.path} cannot be moved aside to {target}: {exc}", state_file=self.path) from None
            break
        else:
            raise PatchError(f"state file {self.path} cannot be moved aside: {base} and 99 more names are taken", state_file=self.path)
        os.unlink(self.path)
        fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self.moved_to = target
        self._raw = None

    def outcome(self):
        """What a module reports about a damaged file it went on without: ``state_error``, ``state_moved_to`` once moved."""
        if self.error is None:
            return {}
        if self.moved_to is None:
            return {"state_error": self.error}
        return {"state_error": self.error, "state_moved_to": self.moved_to, "changed": True}


def with_state_file(operation):
    """Decorate ``operation(store, params, host, check_mode)`` into a module operation ``(params, host, check_mode)``.

    ``store`` is the :class:`StateFile` of ``params['state_file']`` (and ``params['damaged_state']``); what it
    has to say about a damaged file (:meth:`StateFile.outcome`) goes into the result, or into a failure's details.
    """

    @functools.wraps(operation)
    def run(params, host, check_mode):
        store = StateFile(params["state_file"], params.get("damaged_state") or "refuse")
        try:
            result = operation(store, params, host, check_mode)
        except PatchError as exc:
            exc.details.update(store.outcome())
            raise
        result.update(store.outcome())
        return result

    return run
