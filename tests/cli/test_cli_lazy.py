"""The command line loads a command's module only when that command runs: `labelwright users list` does not
import the web app, the quality library or scipy; `--help` still lists every command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from labelwright.cli import LAZY_COMMANDS, main

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from labelwright.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(sorted(m for m in ("labelwright.app", "labelwright.services.quality", "labelwright.cli_projects",
                             "labelwright.cli_server", "labelwright.cli_users", "scipy", "fastapi")
                 if m in sys.modules), file=sys.stderr)
"""


def loaded_by(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stderr.strip().splitlines()[-1])


def test_a_command_loads_only_its_own_module(tmp_path):
    db = str(tmp_path / "lw.db")
    assert loaded_by("--db", db, "init") == []
    assert loaded_by("--db", db, "users", "list") == ["labelwright.cli_users"]
    assert loaded_by("--db", db, "settings", "--json") == []


def test_every_lazy_command_is_the_command_of_that_name():
    ctx = click.Context(main)
    for name, target in LAZY_COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name, (name, target)
        # the options every command takes after its name reach it too
        params = command.commands if isinstance(command, click.Group) else {name: command}
        for sub in params.values():
            if not isinstance(sub, click.Group):
                assert "--db" in {o for p in sub.params for o in getattr(p, "opts", ())}, (name, sub.name)


def test_help_lists_every_command():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    listed = {line.split()[0] for line in res.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(LAZY_COMMANDS) | {"init", "migrate", "settings"}
