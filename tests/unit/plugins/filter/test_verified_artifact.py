"""fleetpatch.rollout.verified_artifact: the rollout's preflight check of a manifest's artifact, by the host's own archive rule."""

from __future__ import annotations

import shutil

import pytest
from ansible.errors import AnsibleFilterError

from fleetpatch_dev import artifacts

from ansible_collections.fleetpatch.rollout.plugins.filter import verified_artifact
from ansible_collections.fleetpatch.rollout.plugins.module_utils._release import sha256_file

FILTER = "fleetpatch.rollout.verified_artifact"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return artifacts.build("7.0.28", tmp_path_factory.mktemp("artifacts"))


def record(path, fixed_version="7.0.28"):
    return {"fixed_version": fixed_version, "artifact": {"path": str(path), "sha256": sha256_file(str(path))}}


def test_filter_is_registered():
    assert verified_artifact.FilterModule().filters() == {"verified_artifact": verified_artifact.verified_artifact}


def test_a_sound_artifact_of_the_fixed_version(built):
    assert verified_artifact.verified_artifact(record(built.path)) == {
        "checked": True, "sha256": built.sha256, "size": built.path.stat().st_size, "signed_by": None}


def test_the_manifest_fixed_version_is_the_one_the_archive_must_hold(built):
    with pytest.raises(AnsibleFilterError) as error:
        verified_artifact.verified_artifact(record(built.path, "7.0.29"))
    assert str(error.value) == f"{FILTER}: artifact {built.path}: member 'fpdemo-7.0.28/VERSION' names version '7.0.28', not '7.0.29'"


def test_a_hostile_archive_is_named_by_its_member(built, tmp_path):
    """The builder's own artifact with a symbolic link added (re-packed by the system tar): refused at preflight."""
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.unpack_archive(built.path, tree, filter="data")
    (tree / "fpdemo-7.0.28" / "shadow").symlink_to("/etc/shadow")
    hostile = tmp_path / "fpdemo-7.0.28.tar.gz"
    shutil.make_archive(str(hostile).removesuffix(".tar.gz"), "gztar", root_dir=tree, base_dir="fpdemo-7.0.28")
    with pytest.raises(AnsibleFilterError) as error:
        verified_artifact.verified_artifact(record(hostile))
    assert str(error.value) == (f"{FILTER}: artifact {hostile}: member 'fpdemo-7.0.28/shadow' is a symbolic link to '/etc/shadow': "
                                "a release holds only regular files and directories")


def test_a_url_only_artifact_is_left_to_the_hosts():
    manifest = {"fixed_version": "7.0.28", "artifact": {"url": "https://example.invalid/a.tar.gz", "sha256": "0" * 64}}
    assert verified_artifact.verified_artifact(manifest) == {"checked": False, "sha256": "0" * 64, "size": None, "signed_by": None}


@pytest.mark.parametrize("value", [None, [], {"artifact": {"path": "x"}}])
def test_not_a_manifest(value):
    with pytest.raises(AnsibleFilterError) as error:
        verified_artifact.verified_artifact(value)
    assert str(error.value) == f"{FILTER}: the input must be a checked manifest (fleetpatch.rollout.manifest), with artifact.sha256"
