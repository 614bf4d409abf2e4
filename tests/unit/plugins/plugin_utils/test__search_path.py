"""The one rule by which fleetpatch finds a controller file: Ansible's search path, then the inventory's directories.

Ansible's own DataLoader walks the search path here, as it does in a play; the real ansible-playbook runs are in
tests/integration/plugins/test_search_path.py.
"""

from __future__ import annotations

import os

import pytest
from ansible.parsing.dataloader import DataLoader

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._search_path import SearchPathError, find_file, inventory_dirs

# files made under the test's directory; the search path is [role, role/tasks, playbook dir]; the loader's basedir is play/
FILES = [
    "play/files/both.yml", "play/both.yml",          # files/ wins over the directory itself
    "play/only-play.yml",
    "play/roles/r/files/role.yml", "play/role.yml",  # the role wins over the playbook
    "inv/only-inv.yml", "play/shadow.yml", "inv/shadow.yml",  # the playbook wins over the inventory
    "cwd/only-cwd.yml",
]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "play" / "roles" / "r" / "tasks").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    loader = DataLoader()
    loader.set_basedir(str(tmp_path / "play"))
    search_path = [str(tmp_path / "play" / "roles" / "r"), str(tmp_path / "play" / "roles" / "r" / "tasks"), str(tmp_path / "play")]
    return tmp_path, loader, search_path


@pytest.mark.parametrize(
    ("needle", "found"),
    [
        ("both.yml", "play/files/both.yml"),
        ("only-play.yml", "play/only-play.yml"),
        ("role.yml", "play/roles/r/files/role.yml"),
        ("only-inv.yml", "inv/only-inv.yml"),
        ("shadow.yml", "play/shadow.yml"),
        ("files/both.yml", "play/files/both.yml"),            # files/ is not added twice
        ("../play/only-play.yml", "play/only-play.yml"),      # normalised
    ],
)
def test_found(tree, needle, found):
    root, loader, search_path = tree
    assert find_file(loader, needle, search_path, inventory=[str(root / "inv")]) == str(root / found)


def test_not_found_lists_every_path_searched_in_order_each_once(tree):
    root, loader, search_path = tree
    with pytest.raises(SearchPathError) as error:
        find_file(loader, "only-cwd.yml", search_path, inventory=[str(root / "inv"), str(root / "play")])
    searched = [str(root / path) for path in (
        "play/roles/r/files/only-cwd.yml", "play/roles/r/only-cwd.yml",
        "play/roles/r/tasks/files/only-cwd.yml", "play/roles/r/tasks/only-cwd.yml",
        "play/files/only-cwd.yml", "play/only-cwd.yml",
        "inv/only-cwd.yml",
    )]
    assert error.value.searched == searched
    assert str(error.value) == "\n".join(
        ["cannot find 'only-cwd.yml' relative to the role, the playbook or the inventory; searched:"] + [f"  {path}" for path in searched])


@pytest.mark.parametrize("needle", ["/nowhere/m.yml", "/etc/hostname"])
def test_an_absolute_path_is_used_as_it_is(tree, needle):
    _root, loader, search_path = tree
    assert find_file(loader, needle, search_path) == needle


def test_a_home_path_is_expanded_not_searched(tree, monkeypatch):
    root, loader, search_path = tree
    monkeypatch.setenv("HOME", str(root / "inv"))
    assert find_file(loader, "~/missing.yml", search_path) == str(root / "inv" / "missing.yml")


@pytest.mark.parametrize(
    ("needle", "message"),
    [
        ("", "expected the path of a file on the controller, got str ''"),
        ("  ", "expected the path of a file on the controller, got str '  '"),
        (None, "expected the path of a file on the controller, got NoneType None"),
        (["m.yml"], "expected the path of a file on the controller, got list ['m.yml']"),
        ({"id": "FP-2025-14847", "title": "x" * 200}, "expected the path of a file on the controller, got dict {'id': 'FP-2025-14847', 'title': "
                                                      "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."),  # cut short
    ],
)
def test_not_a_path(tree, needle, message):
    _root, loader, search_path = tree
    with pytest.raises(SearchPathError) as error:
        find_file(loader, needle, search_path)
    assert (str(error.value), error.value.searched) == (message, [])


def test_an_empty_search_path_still_tries_the_playbook_directory(tree):
    root, loader, _search_path = tree
    assert find_file(loader, "only-play.yml", []) == str(root / "play" / "only-play.yml")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, []),
        (None, []),
        ({"ansible_inventory_sources": ["{root}/inv/hosts.yml"]}, ["inv"]),          # a file: its directory
        ({"ansible_inventory_sources": ["{root}/inv"]}, ["inv"]),                    # a directory: itself
        ({"ansible_inventory_sources": "{root}/inv/hosts.yml"}, ["inv"]),            # one source as a string
        ({"ansible_inventory_sources": ["localhost,", "{root}/nowhere.yml", 7, ""]}, []),  # host lists, missing files
        ({"ansible_inventory_sources": ["{root}/inv/hosts.yml", "{root}/play"], "inventory_dir": "{root}/inv"}, ["inv", "play"]),
        ({"inventory_dir": "{root}/play", "ansible_inventory_sources": None}, ["play"]),
        ({"inventory_dir": None}, []),
    ],
)
def test_inventory_dirs(tmp_path, variables, expected):
    (tmp_path / "inv").mkdir()
    (tmp_path / "play").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text("all: {}\n", encoding="utf-8")

    def fill(value):
        if isinstance(value, str):
            return value.replace("{root}", str(tmp_path))
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    variables = {key: fill(value) for key, value in variables.items()} if variables is not None else None
    assert inventory_dirs(variables) == [os.path.join(tmp_path, name) for name in expected]
