"""No program in Jinja: the playbooks' and roles' templates are expressions, and what builds a structure is a
tested filter over plugins/plugin_utils."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FILES = sorted([*REPO.glob("playbooks/**/*.yml"), *REPO.glob("roles/**/*.yml")])
# Statements that make a template a program: loops, assignments, and mutating a structure from inside an expression.
PROGRAM = re.compile(r"\{%-?\s*(for|set|macro|call)\b|\.(update|append|extend|pop|insert)\(")


def test_there_are_templates_to_check():
    assert len(FILES) > 15


@pytest.mark.parametrize("path", FILES, ids=[str(path.relative_to(REPO)) for path in FILES])
def test_no_template_is_a_program(path):
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if PROGRAM.search(line)]
    assert found == []


@pytest.mark.parametrize("line", ["{%- for host in hosts -%}", "{% set x = 1 %}", "{%- set _ = known.update({a: b}) -%}",
                                  "{{ rows.append(x) }}"])
def test_the_check_finds_a_program(line):
    assert PROGRAM.search(line)
