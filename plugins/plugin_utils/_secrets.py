# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which values are secrets that the audit trail must never hold: the vaulted ones.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A value is vaulted when ansible-core says so (an ``!vault`` value, or one templated straight from it, keeps its
ciphertext: :func:`vaulted`), and also when it was read from a file that is vault-encrypted as a whole: such
values carry only the file as their origin, so the file's first bytes are checked (once per file). Since a value
can be pasted into a longer string, :func:`vault_plaintexts` collects the plaintexts of every vaulted variable,
and the audit log replaces them wherever they occur.
"""

from __future__ import annotations

from ansible.parsing.vault import VaultHelper

try:  # ansible-core 2.19 and later tag each value with where it came from
    from ansible._internal._datatag._tags import Origin  # no public accessor exists
except ImportError:  # pragma: no cover - older or changed ansible-core: only ciphertext-carrying values are found
    Origin = None

__all__ = ["vault_plaintexts", "vaulted"]

_VAULT_HEADER = b"$ANSIBLE_VAULT;"
_MAX_DEPTH = 8
# Variables that hold other hosts' variables or Ansible's own data, never a secret of their own.
_SKIP = frozenset({"hostvars", "vars", "groups", "group_names", "omit", "play_hosts", "ansible_play_hosts", "ansible_play_hosts_all",
                   "ansible_play_batch", "ansible_facts", "environment", "role_names", "ansible_role_names", "ansible_dependent_role_names"})
_vault_files = {}


def _from_vault_file(value):
    origin = Origin.get_tag(value) if Origin is not None else None
    path = getattr(origin, "path", None)
    if not path:
        return False
    if path not in _vault_files:
        try:
            with open(path, "rb") as handle:
                _vault_files[path] = handle.read(len(_VAULT_HEADER)) == _VAULT_HEADER
        except OSError:
            _vault_files[path] = False
    return _vault_files[path]


def vaulted(value):
    """Whether ``value`` is a vaulted value, was templated straight from one, or was read from a vaulted file."""
    try:
        return VaultHelper.get_ciphertext(value, with_tags=False) is not None or _from_vault_file(value)
    except Exception:  # pylint: disable=broad-exception-caught  # a value of a type Ansible does not know is not vaulted
        return False


def _collect(value, found, depth, inside):
    if depth > _MAX_DEPTH:
        return
    secret = inside or vaulted(value)
    if isinstance(value, dict):
        for item in value.values():
            _collect(item, found, depth + 1, secret)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, found, depth + 1, secret)
    elif secret and isinstance(value, (str, bytes)) or type(value).__name__ in ("EncryptedString", "AnsibleVaultEncryptedUnicode"):
        try:
            text = str(value) if not isinstance(value, bytes) else value.decode("utf-8", "replace")
        except Exception:  # pylint: disable=broad-exception-caught  # undecryptable: there is no plaintext to hide
            return
        if text.strip():
            found.add(text)


def vault_plaintexts(variables):
    """The plaintexts of every vaulted value in ``variables`` (a mapping of variable names to raw values)."""
    found = set()
    for name, value in (variables or {}).items():
        if name not in _SKIP:
            _collect(value, found, 0, False)
    return found
