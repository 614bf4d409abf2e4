# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a patch artifact on the controller before anything on a host changes.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

:func:`verify_artifact` rejects an artifact that is missing or empty, whose sha256 is not the one the manifest
names, that the host would refuse to unpack, or whose signature does not verify. What a host unpacks is decided
by one rule, ``module_utils/_archive.py``, which this check runs too: a complete gzip tar archive (read to its
end, where the gzip CRC and length are checked), one top directory, only regular files and directories, no
absolute names or ``..``, and a VERSION file naming the release's version. So an archive a host would refuse is
refused here, with the same message naming the member, before it is shipped or anything changes.

Signatures are OpenSSH signatures (``ssh-keygen -Y sign``, verified with ``ssh-keygen -Y verify``):

- no extra Python dependency: ``ssh-keygen`` ships with the OpenSSH client that every Ansible controller and
  every managed host already has (OpenSSH 8.1 or later signs files), and it is called without a shell;
- modern keys: ed25519 (or any key type OpenSSH takes, including security keys), and the signature is bound to a
  namespace (``fleetpatch``), so a signature made for something else (git commits, ``file``) does not count;
- simple key management: who may sign is one text file, ``allowed_signers``, one line per identity and key
  (``release@fleetpatch.example namespaces="fleetpatch" ssh-ed25519 AAAA...``), reviewed like any other
  configuration; no keyring, no web of trust, no certificate authority needed.

The allowed-signers file is the operator's trust root: it never comes from the manifest, since whoever can edit
a manifest could then name their own key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping

from ansible_collections.fleetpatch.rollout.plugins.module_utils._archive import ArchiveError, check_release_archive
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import sha256_file

__all__ = ["ArtifactError", "manifest_artifact", "verify_artifact"]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SSH_KEYGEN_TIMEOUT = 60


class ArtifactError(ValueError):
    """An artifact fleetpatch must not install; the message names the file and what is wrong with it."""


def _check_file(what, path):
    """Raise ArtifactError unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise ArtifactError(f"{what} {path} does not exist")
    if not os.path.isfile(path):
        raise ArtifactError(f"{what} {path} is not a regular file")


def _verify_signature(path, signature, allowed_signers, identity, namespace):
    """Run ``ssh-keygen -Y verify``; raise ArtifactError unless the signature is ``identity``'s over ``path``."""
    _check_file("signature", signature)
    _check_file("allowed_signers file", allowed_signers)
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise ArtifactError("ssh-keygen not found on the controller: install the OpenSSH client to verify artifact signatures")
    argv = [ssh_keygen, "-Y", "verify", "-f", allowed_signers, "-I", identity, "-n", namespace, "-s", signature]
    try:
        with open(path, "rb") as artifact:
            result = subprocess.run(argv, stdin=artifact, capture_output=True, text=True, timeout=_SSH_KEYGEN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"artifact {path}: ssh-keygen -Y verify took more than {_SSH_KEYGEN_TIMEOUT} s") from None
    if result.returncode != 0:
        said = " ".join((result.stderr or result.stdout).split()) or f"exit code {result.returncode}"
        raise ArtifactError(
            f"artifact {path}: signature {signature} is not a valid signature by {identity!r} in {allowed_signers} "
            f"(namespace {namespace!r}): ssh-keygen says: {said}"
        )


def verify_artifact(path, sha256, *, version, signature=None, allowed_signers=None, identity=None, namespace="fleetpatch"):
    """Check the artifact at ``path``; return ``{"sha256", "size", "signed_by"}`` or raise ArtifactError.

    ``sha256`` is the expected digest (64 hex digits), ``version`` the release the archive must hold (its VERSION
    file names it); the archive must pass the host's archive rule (``module_utils/_archive.py``). With ``signature`` (an OpenSSH signature file),
    ``allowed_signers`` and ``identity`` are required: the signature must verify, in ``namespace``, as made by a key
    that ``allowed_signers`` lists for ``identity``. ``signed_by`` is that identity, or None without a signature.
    When both the digest and the archive are wrong, the message says both, one per line.
    """
    path = os.fspath(path)
    expected = sha256.strip().lower() if isinstance(sha256, str) else sha256
    if not isinstance(expected, str) or not _SHA256_RE.match(expected):
        raise ArtifactError(f"artifact {path}: expected sha256 must be 64 hex digits, got {sha256!r}")
    if signature is not None:
        signature = os.fspath(signature)
        if not allowed_signers:
            raise ArtifactError(f"artifact {path}: signature {signature} given without allowed_signers: nothing to verify it against")
        if not identity:
            raise ArtifactError(f"artifact {path}: signature {signature} given without the identity (signer) that must have made it")
    _check_file("artifact", path)
    size = os.path.getsize(path)
    if size == 0:
        raise ArtifactError(f"artifact {path} is empty")
    problems = []
    actual = sha256_file(path)
    if actual != expected:
        problems.append(f"artifact {path}: sha256 mismatch: expected {expected}, actual {actual}")
    try:
        check_release_archive(path, version)
    except ArchiveError as exc:
        problems.append(f"artifact {path}: {exc}")  # the message the host would give
    if problems:
        raise ArtifactError("\n".join(problems))
    if signature is not None:
        _verify_signature(path, signature, os.fspath(allowed_signers), identity, namespace)
    return {"sha256": actual, "size": size, "signed_by": identity if signature is not None else None}


def manifest_artifact(manifest, allowed_signers=None):
    """What :func:`verify_artifact` finds for a checked manifest's artifact, with ``checked``; ArtifactError otherwise.

    ``manifest`` is a checked manifest (``_manifest.load_manifest``: its artifact paths are absolute). An artifact
    given by URL only is fetched and checked by the hosts themselves: ``checked`` is then false, ``size`` and
    ``signed_by`` None.
    """
    artifact = manifest.get("artifact") if isinstance(manifest, Mapping) else None
    if not isinstance(artifact, Mapping) or "sha256" not in artifact:
        raise ArtifactError("the input must be a checked manifest (fleetpatch.rollout.manifest), with artifact.sha256")
    if not artifact.get("path"):
        return {"checked": False, "sha256": artifact["sha256"], "size": None, "signed_by": None}
    found = verify_artifact(artifact["path"], artifact["sha256"], version=manifest.get("fixed_version"), signature=artifact.get("signature"),
                            allowed_signers=allowed_signers, identity=artifact.get("signer"))
    return {"checked": True, **found}
