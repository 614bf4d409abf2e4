"""Which values the audit trail treats as vaulted: real ansible-core tags, a real vault-encrypted file."""

from __future__ import annotations

import pytest
from ansible._internal._datatag._tags import Origin
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._secrets import vault_plaintexts, vaulted


@pytest.fixture
def files(tmp_path):
    """A vault-encrypted vars file and a plain one."""
    secret_file, plain_file = tmp_path / "vault.yml", tmp_path / "plain.yml"
    secret_file.write_bytes(VaultLib([("default", VaultSecret(b"pass"))]).encrypt(b"token: hunter22\n"))
    plain_file.write_text("name: alice\n", encoding="utf-8")
    return secret_file, plain_file


def test_values_from_a_vaulted_file_are_vaulted(files):
    secret_file, plain_file = files
    token = Origin(path=str(secret_file), line_num=1).tag("hunter22")
    name = Origin(path=str(plain_file), line_num=1).tag("alice")
    assert (vaulted(token), vaulted(name), vaulted("untagged"), vaulted(42)) == (True, False, False, False)
    assert vault_plaintexts({"fp_token": token, "fp_name": name, "fp_nested": {"list": [token, "x"]}}) == {"hunter22"}


def test_every_string_inside_a_vaulted_structure_is_collected(files):
    secret_file, _plain = files
    tagged = Origin(path=str(secret_file)).tag({"user": "svc", "password": "pa55word", "ports": [1, 2]})
    assert vault_plaintexts({"fp_credentials": tagged}) == {"svc", "pa55word"}


def test_variables_of_other_hosts_are_not_walked(files):
    secret_file, _plain = files
    token = Origin(path=str(secret_file)).tag("hunter22")
    assert vault_plaintexts({"hostvars": {"other": {"token": token}}, "vars": {"token": token}}) == set()
