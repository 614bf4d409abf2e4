"""The state_file and damaged_state options: one spec each, and their written copies in the service doc fragment agree."""

from __future__ import annotations

import yaml

from ansible_collections.fleetpatch.rollout.plugins.doc_fragments.service import ModuleDocFragment
from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import SERVICE_ARGSPEC, STATE_FILE_ARGSPEC, STATE_WRITER_ARGSPEC


def test_state_file_fragment_is_the_service_fragments_option():
    service = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    alone = yaml.safe_load(ModuleDocFragment.STATE_FILE)["options"]
    assert alone == {"state_file": service["state_file"]}


def test_state_file_documentation_matches_the_argspec():
    documented = yaml.safe_load(ModuleDocFragment.STATE_FILE)["options"]["state_file"]
    assert {key: documented[key] for key in ("type", "default")} == STATE_FILE_ARGSPEC["state_file"]
    assert SERVICE_ARGSPEC["state_file"] is STATE_FILE_ARGSPEC["state_file"]


def test_state_writer_fragment_is_the_service_fragments_options():
    service = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    writer = yaml.safe_load(ModuleDocFragment.STATE_WRITER)["options"]
    assert writer == {"state_file": service["state_file"], "damaged_state": service["damaged_state"]}


def test_damaged_state_documentation_matches_the_argspec():
    documented = yaml.safe_load(ModuleDocFragment.STATE_WRITER)["options"]["damaged_state"]
    assert {key: documented[key] for key in ("type", "choices", "default")} == STATE_WRITER_ARGSPEC["damaged_state"]
    assert SERVICE_ARGSPEC["damaged_state"] is STATE_WRITER_ARGSPEC["damaged_state"]
    assert STATE_WRITER_ARGSPEC["state_file"] is STATE_FILE_ARGSPEC["state_file"]
