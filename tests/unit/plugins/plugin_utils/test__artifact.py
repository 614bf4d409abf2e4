"""Artifact checks on the controller, with real artifacts from the demo builder and real ssh-keygen signatures."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from fleetpatch_dev import artifacts, signing

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._artifact import ArtifactError, verify_artifact

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """fpdemo 7.0.28 and 7.0.27, built once, and two signers: the release team's and someone else's."""
    out = tmp_path_factory.mktemp("artifacts")
    keys = tmp_path_factory.mktemp("keys")
    return {
        "fixed": artifacts.build("7.0.28", out),
        "other": artifacts.build("7.0.27", out),
        "signer": signing.make_signer(keys / "release"),
        "stranger": signing.make_signer(keys / "stranger", "mallory@example.invalid"),
    }


@pytest.fixture
def artifact(built, tmp_path):
    """A private copy of the 7.0.28 artifact, with its sha256."""
    path = tmp_path / built["fixed"].path.name
    shutil.copyfile(built["fixed"].path, path)
    return path, built["fixed"].sha256


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_good_artifact(artifact):
    path, digest = artifact
    assert verify_artifact(path, digest, version="7.0.28") == {"sha256": digest, "size": path.stat().st_size, "signed_by": None}


def test_sha256_is_compared_without_regard_to_case_and_space(artifact):
    path, digest = artifact
    assert verify_artifact(str(path), f" {digest.upper()}\n", version="7.0.28")["sha256"] == digest


def test_good_signature(artifact, built):
    path, digest = artifact
    key, allowed, identity = built["signer"]
    signature = signing.sign(path, key)
    result = verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity=identity)
    assert result == {"sha256": digest, "size": path.stat().st_size, "signed_by": "release@fleetpatch.example"}


def test_wrong_sha256(artifact, built):
    path, digest = artifact
    wrong = built["other"].sha256
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, wrong, version="7.0.28")
    assert str(error.value) == f"artifact {path}: sha256 mismatch: expected {wrong}, actual {digest}"


def test_truncated(artifact):
    path, digest = artifact
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28")
    assert str(error.value).splitlines() == [
        f"artifact {path}: sha256 mismatch: expected {digest}, actual {sha256(path)}",
        f"artifact {path}: not a readable gzip tar archive (truncated or corrupt): Compressed file ended before the end-of-stream marker was reached",
    ]


def test_truncated_with_matching_sha256(artifact):
    """A manifest made from an already truncated file: the sha256 matches, the archive check still catches it."""
    path, _digest = artifact
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, sha256(path), version="7.0.28")
    assert str(error.value) == (
        f"artifact {path}: not a readable gzip tar archive (truncated or corrupt): "
        "Compressed file ended before the end-of-stream marker was reached"
    )


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_corrupt_with_matching_sha256(artifact, where):
    """One flipped byte inside the compressed data: the gzip CRC, checked at the stream's end, catches it."""
    path, _digest = artifact
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, sha256(path), version="7.0.28")
    message = str(error.value)
    assert message.startswith(f"artifact {path}: not a readable gzip tar archive (truncated or corrupt): ")
    assert any(reason in message for reason in ("CRC check failed", "invalid", "Error -3", "bad checksum", "unexpected end"))


def test_corrupt(artifact):
    path, digest = artifact
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28")
    lines = str(error.value).splitlines()
    assert lines[0] == f"artifact {path}: sha256 mismatch: expected {digest}, actual {sha256(path)}"
    assert lines[1].startswith(f"artifact {path}: not a readable gzip tar archive (truncated or corrupt): ")
    assert len(lines) == 2


def test_not_gzip(tmp_path):
    path = tmp_path / "fpdemo-7.0.28.tar.gz"
    path.write_bytes(b"<html>404 Not Found</html>\n")
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, sha256(path), version="7.0.28")
    assert str(error.value) == f"artifact {path}: not a readable gzip tar archive (truncated or corrupt): Not a gzipped file (b'<h')"


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ArtifactError) as error:
        verify_artifact(tmp_path / "none.tar.gz", "0" * 64, version="7.0.28")
    assert str(error.value) == f"artifact {tmp_path / 'none.tar.gz'} does not exist"
    with pytest.raises(ArtifactError) as error:
        verify_artifact(tmp_path, "0" * 64, version="7.0.28")
    assert str(error.value) == f"artifact {tmp_path} is not a regular file"
    (tmp_path / "empty.tar.gz").write_bytes(b"")
    with pytest.raises(ArtifactError) as error:
        verify_artifact(tmp_path / "empty.tar.gz", hashlib.sha256(b"").hexdigest(), version="7.0.28")
    assert str(error.value) == f"artifact {tmp_path / 'empty.tar.gz'} is empty"


@pytest.mark.parametrize("expected", [None, "", "abc", "g" * 64, 12])
def test_bad_expected_sha256(artifact, expected):
    path, _digest = artifact
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, expected, version="7.0.28")
    assert str(error.value) == f"artifact {path}: expected sha256 must be 64 hex digits, got {expected!r}"


def test_signed_by_another_key(artifact, built):
    path, digest = artifact
    key, _allowed, _identity = built["stranger"]
    _key, allowed, identity = built["signer"]
    signature = signing.sign(path, key)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity=identity)
    assert str(error.value) == (
        f"artifact {path}: signature {signature} is not a valid signature by 'release@fleetpatch.example' in {allowed} "
        "(namespace 'fleetpatch'): ssh-keygen says: Could not verify signature."
    )


def test_signature_of_another_file(artifact, built, tmp_path):
    path, digest = artifact
    key, allowed, identity = built["signer"]
    other = tmp_path / "other" / built["other"].path.name
    other.parent.mkdir()
    shutil.copyfile(built["other"].path, other)
    signature = signing.sign(other, key)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity=identity)
    assert str(error.value) == (
        f"artifact {path}: signature {signature} is not a valid signature by 'release@fleetpatch.example' in {allowed} "
        "(namespace 'fleetpatch'): ssh-keygen says: Signature verification failed: incorrect signature"
    )


def test_signature_in_another_namespace(artifact, built):
    path, digest = artifact
    key, allowed, identity = built["signer"]
    signature = signing.sign(path, key, namespace="file")
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity=identity)
    assert str(error.value).startswith(f"artifact {path}: signature {signature} is not a valid signature by 'release@fleetpatch.example'")


def test_signature_for_another_identity(artifact, built):
    path, digest = artifact
    key, allowed, _identity = built["signer"]
    signature = signing.sign(path, key)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity="mallory@example.invalid")
    assert str(error.value).startswith(f"artifact {path}: signature {signature} is not a valid signature by 'mallory@example.invalid' in {allowed}")


def test_signature_without_allowed_signers(artifact, built):
    path, digest = artifact
    key, _allowed, identity = built["signer"]
    signature = signing.sign(path, key)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, identity=identity)
    assert str(error.value) == f"artifact {path}: signature {signature} given without allowed_signers: nothing to verify it against"


def test_signature_without_identity(artifact, built):
    path, digest = artifact
    key, allowed, _identity = built["signer"]
    signature = signing.sign(path, key)
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed)
    assert str(error.value) == f"artifact {path}: signature {signature} given without the identity (signer) that must have made it"


def test_missing_signature_and_allowed_signers_files(artifact, built, tmp_path):
    path, digest = artifact
    _key, allowed, identity = built["signer"]
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=tmp_path / "none.sig", allowed_signers=allowed, identity=identity)
    assert str(error.value) == f"signature {tmp_path / 'none.sig'} does not exist"
    signature = signing.sign(path, built["signer"][0])
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=tmp_path / "none", identity=identity)
    assert str(error.value) == f"allowed_signers file {tmp_path / 'none'} does not exist"


def test_signature_is_not_checked_for_a_wrong_artifact(artifact, built):
    """Content problems are reported first; ssh-keygen never sees a file whose sha256 is wrong."""
    path, digest = artifact
    key, allowed, identity = built["signer"]
    signature = signing.sign(path, key)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ArtifactError) as error:
        verify_artifact(path, digest, version="7.0.28", signature=signature, allowed_signers=allowed, identity=identity)
    assert str(error.value).startswith(f"artifact {path}: sha256 mismatch: expected {digest}, actual ")


def test_another_release_under_its_own_sha256(built):
    """A sound archive of 7.0.27, named as 7.0.28 with its own sha256: its VERSION file gives it away."""
    other = built["other"]
    with pytest.raises(ArtifactError) as error:
        verify_artifact(other.path, other.sha256, version="7.0.28")
    assert str(error.value) == f"artifact {other.path}: member 'fpdemo-7.0.27/VERSION' names version '7.0.27', not '7.0.28'"
