"""Sign demo artifacts the way a release team would, with OpenSSH (``ssh-keygen -Y sign``).

:func:`make_signer` creates an ed25519 signing key and the allowed-signers file an operator would keep, and
:func:`sign` writes ``<artifact>.sig`` next to an artifact. ``fleetpatch.rollout``'s controller checks such a
signature with ``ssh-keygen -Y verify`` (``plugins/plugin_utils/_artifact.py``).

Command line (``PYTHONPATH=tools``)::

    python -m fleetpatch_dev.signing make-signer DIR [--identity ID]
    python -m fleetpatch_dev.signing sign --key KEY [--namespace NS] ARTIFACT...
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["DEFAULT_IDENTITY", "NAMESPACE", "main", "make_signer", "sign"]

DEFAULT_IDENTITY = "release@fleetpatch.example"
NAMESPACE = "fleetpatch"


def _ssh_keygen(*args: str, stdin=None) -> None:
    """Run ssh-keygen; raise ValueError with its message when it fails."""
    result = subprocess.run(["ssh-keygen", *args], stdin=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"ssh-keygen {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")


def make_signer(directory: str | os.PathLike, identity: str = DEFAULT_IDENTITY, *, namespace: str = NAMESPACE) -> tuple[Path, Path, str]:
    """Create ``signing_key`` (ed25519, no passphrase) and ``allowed_signers`` in ``directory``.

    The allowed-signers line restricts the key to ``namespace``. Returns (private key, allowed-signers file,
    identity). An existing key in ``directory`` is kept, and the allowed-signers file rewritten from it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "signing_key"
    if not key.exists():
        _ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", identity, "-f", str(key))
    public = key.with_name(f"{key.name}.pub").read_text(encoding="utf-8").split()
    allowed = directory / "allowed_signers"
    allowed.write_text(f'{identity} namespaces="{namespace}" {public[0]} {public[1]}\n', encoding="utf-8")
    return key, allowed, identity


def sign(artifact: str | os.PathLike, private_key: str | os.PathLike, namespace: str = NAMESPACE) -> Path:
    """Sign ``artifact`` with ``private_key``; return the signature file ``<artifact>.sig`` (replaced if present)."""
    artifact = Path(artifact)
    signature = artifact.with_name(f"{artifact.name}.sig")
    signature.unlink(missing_ok=True)
    _ssh_keygen("-Y", "sign", "-q", "-f", str(private_key), "-n", namespace, str(artifact))
    if not signature.exists():
        raise ValueError(f"ssh-keygen -Y sign did not write {signature}")
    return signature


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m fleetpatch_dev.signing", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    signer_cmd = commands.add_parser("make-signer", help="create a signing key and its allowed_signers file")
    signer_cmd.add_argument("directory", type=Path)
    signer_cmd.add_argument("--identity", default=DEFAULT_IDENTITY)
    sign_cmd = commands.add_parser("sign", help="write <artifact>.sig next to each artifact")
    sign_cmd.add_argument("--key", required=True, type=Path, help="private signing key")
    sign_cmd.add_argument("--namespace", default=NAMESPACE)
    sign_cmd.add_argument("artifacts", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "make-signer":
            key, allowed, identity = make_signer(args.directory, args.identity)
            print(f"{identity} {key} {allowed}")
        else:
            for artifact in args.artifacts:
                print(sign(artifact, args.key, args.namespace))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
