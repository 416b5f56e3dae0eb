"""The docs' schema examples are real schemas: every ```yaml block in docs/*.md goes through the real parser.

A block holding a whole schema (it has ``questions``) is parsed as it is; a fragment (``review:``,
``gold:``, ``assist:``...) is parsed as part of a small schema whose one question, ``spam``, is the one the
docs' fragments refer to. A reader who copies an example gets a schema that loads.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from labelwright.cli import main
from labelwright.schema import parse_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
BASE = {"name": "docs example", "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}


def _blocks():
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            yield pytest.param(path.name, line, m.group(1), id=f"{path.name}:{line}")


BLOCKS = list(_blocks())


def test_the_docs_have_yaml_examples():
    assert any(name == "schema.md" for name, _, _ in (b.values for b in BLOCKS))


@pytest.mark.parametrize("name,line,block", BLOCKS)
def test_every_yaml_example_in_the_docs_is_a_valid_schema(name, line, block):
    data = yaml.safe_load(block)  # a YAML error here names the docs file and line in the test id
    assert isinstance(data, dict), f"{name}:{line}: the example is not a mapping"
    schema = parse_schema(data if "questions" in data else {**BASE, **data}, file=f"{name}:{line}")
    assert schema.name


def test_the_first_schema_example_is_a_whole_schema():
    """docs/schema.md opens with a complete schema; it parses as written (its prompt has a '?', quoted)."""
    block = next(b.values[2] for b in BLOCKS if b.values[0] == "schema.md")
    schema = parse_schema(block)
    assert schema.slug == "llm-preference" and [q.name for q in schema.questions] == ["preference", "quality"]
    assert schema.questions[0].prompt == "Which response is better?"


def _commands(group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the lazily loaded commands too
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_is_in_docs_cli_md_and_every_option_has_help():
    """docs/cli.md names every command (``users create``, or ``users list`` / ``link`` in one row), and
    every option of every command says what it does."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    undocumented, helpless = [], []
    for path, cmd in _commands(main):
        if len(path) == 1:
            found = f"`{path[0]}" in text
        else:
            found = re.search(rf"`{re.escape(path[0])} [^`]*(?<![\w-]){re.escape(path[-1])}(?![\w-])", text)
        if not found:
            undocumented.append(" ".join(path))
        helpless += [f"{' '.join(path)} {p.opts[0]}" for p in cmd.params
                     if getattr(p, "param_type_name", "") == "option" and not p.help]
    assert undocumented == [] and helpless == []
