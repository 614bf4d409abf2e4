"""Feature flags: reading the flags file, idempotence, check mode, and the put-back when the service refuses."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._flag import read_flags, set_flag


def params(tmp_path, **overrides):
    return {
        "name": "strict_length_check", "enabled": True, "flags_file": str(tmp_path / "flags.json"),
        "reload_command": ["true"], "reload_signal": None, "pid_file": None, "confirm_url": None, "confirm_timeout": 1,
        **overrides,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "cannot be read: Expecting property name enclosed in double quotes"),
        ("[]", 'is not {"flags": {"<name>": true|false}}'),
        ('{"flags": {"x": 1}}', 'is not {"flags": {"<name>": true|false}}'),
        ('{"flags": []}', 'is not {"flags": {"<name>": true|false}}'),
    ],
)
def test_read_flags_rejects_damaged_files(tmp_path, content, message):
    (tmp_path / "flags.json").write_text(content, encoding="utf-8")
    with pytest.raises(PatchError, match=message.replace("{", r"\{").replace("|", r"\|")):
        read_flags(str(tmp_path / "flags.json"))


def test_absent_file_has_no_flags(tmp_path):
    assert read_flags(str(tmp_path / "none.json")) == {}


def test_set_flag_is_idempotent_and_check_mode_writes_nothing(host, tmp_path):
    path = tmp_path / "flags.json"
    path.write_text('{"flags": {"other": true}}', encoding="utf-8")
    checked = set_flag(params(tmp_path), host, True)
    assert checked["changed"] is True and json.loads(path.read_text(encoding="utf-8")) == {"flags": {"other": True}}
    assert checked["diff"] == {"before": {"flags": {"other": True}}, "after": {"flags": {"other": True, "strict_length_check": True}}}
    done = set_flag(params(tmp_path), host, False)
    assert done["changed"] is True
    assert json.loads(path.read_text(encoding="utf-8")) == {"flags": {"other": True, "strict_length_check": True}}
    again = set_flag(params(tmp_path), host, False)
    assert again["changed"] is False and again["flags"] == {"other": True, "strict_length_check": True}
    off = set_flag(params(tmp_path, enabled=False), host, False)
    assert off["changed"] is True and off["flags"] == {"other": True, "strict_length_check": False}


def test_a_failing_reload_puts_the_file_back(host, tmp_path):
    path = tmp_path / "flags.json"
    path.write_text('{"flags": {"other": true}}', encoding="utf-8")
    with pytest.raises(PatchError) as error:
        set_flag(params(tmp_path, reload_command=["false"]), host, False)
    assert str(error.value) == (
        f"the service did not take flag strict_length_check=true (reload_command ['false'] exited 1: ); {path} was restored"
    )
    assert json.loads(path.read_text(encoding="utf-8")) == {"flags": {"other": True}}
