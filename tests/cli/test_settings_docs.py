"""Every setting is in docs/operations.md's table (name, variable, default), every option of every command is
in docs/cli.md, and the docs' config file examples load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from labelwright.cli import main
from labelwright.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOML_BLOCK = re.compile(r"^```toml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def documented_default(name: str) -> str:
    """A field's default as the table writes it: the TOML literal, or `unset`."""
    default = Settings.model_fields[name].default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{json.dumps(default)}`"


def settings_rows() -> dict[str, list[str]]:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("### Settings\n"):]
    section = section[:section.index("\n### ", 1)]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            rows[m.group(1)] = [cell.strip() for cell in line.strip("|").split(" | ")]
    return rows


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_in_the_table(name):
    row = settings_rows().get(name)
    assert row is not None, f"docs/operations.md, Settings: no row for {name}"
    assert f"`LABELWRIGHT_{name.upper()}`" in row[1], row
    assert row[2] == documented_default(name), row
    assert len(row[3]) > 20, row


def test_the_table_holds_nothing_else():
    assert set(settings_rows()) == set(Settings.model_fields)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the lazily loaded commands too
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


LATE = {"--db", "--base-url"}  # every command's copies of the group's options: documented once, for the group


def test_every_option_is_in_docs_cli_md():
    """The group's options are in the page; each command's options are in a table row naming the command."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    missing = [opt for p in main.params if isinstance(p, click.Option)
               for opt in p.opts if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text)]
    for path, cmd in _commands(main):
        named = (rf"`{re.escape(path[0])}(?![\w-])" if len(path) == 1 else
                 rf"`{re.escape(path[0])} [^`]*(?<![\w-]){re.escape(path[-1])}(?![\w-])")
        own = [line for line in rows if re.search(named, line)]
        assert own, f"docs/cli.md: no row for {' '.join(path)}"
        for p in cmd.params:
            if not isinstance(p, click.Option) or (p.opts[0] in LATE and p.expose_value is False):
                continue
            if not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", line) for o in p.opts for line in own):
                missing.append(f"{' '.join(path)} {p.opts[-1]}")
    assert missing == []


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md") if "```toml" in p.read_text("utf-8")))
def test_config_file_examples_load(page, tmp_path):
    for block in TOML_BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
        config = tmp_path / "lw.toml"
        config.write_text(block)
        settings = Settings.load(env={}, config_file=config)
        assert settings != Settings()
