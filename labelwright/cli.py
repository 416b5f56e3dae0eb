"""The ``labelwright`` command line (click + rich).

This module holds the group (its options build the settings: :class:`labelwright.cli_db.Ctx`), the error
handling every command shares, and the commands on the database and the settings. The other commands live
in modules by noun (``cli_projects``, ``cli_items``, ``cli_formats``, ``cli_users``, ``cli_workforce``, ``cli_server``,
``cli_webhooks``, ``cli_llm``, ``cli_assist``), each loaded only when one of its commands runs.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from labelwright.cli_db import SET_HELP, Ctx, add_global_options, console, display_url, explain, out
from labelwright.errors import LabelwrightError
from labelwright.settings import CONFIG_ENV


def _fail(e: Exception | str) -> NoReturn:
    # escaped: a file name or a message may hold brackets ("items[2].id", "data[raw].jsonl")
    console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
    sys.exit(2)


class Group(click.Group):
    """Turns labelwright's own errors (a setting that does not fit among them), and a database that cannot
    be used, into one clear line and exit code 2.

    ``lazy`` maps command names to ``"module:attribute"``: such a command's module (and the services it
    imports) is loaded only when the command runs, or for ``--help``, so that ``labelwright users list``
    does not import the quality and assist libraries (click's documented lazy-loading pattern)."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            add_global_options(command, cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabelwrightError as e:
            _fail(e)
        except DBAPIError as e:
            # the database went away, or was not one, in the middle of a command (opening it is
            # checked in Ctx.store); a constraint or a bug in a statement stays a traceback
            obj = ctx.find_object(Ctx)
            if obj is None or type(e.orig).__name__ not in ("OperationalError", "DatabaseError"):
                raise
            _fail(explain(obj.settings.db_url, e))


# the commands defined in other modules, by noun (loaded when used: see Group)
LAZY_COMMANDS = {
    "projects": "labelwright.cli_projects:projects", "status": "labelwright.cli_projects:status",
    "quality": "labelwright.cli_projects:quality", "pause": "labelwright.cli_projects:pause",
    "resume": "labelwright.cli_projects:resume",
    "import": "labelwright.cli_items:import_cmd", "export": "labelwright.cli_items:export_cmd",
    "import-labelstudio": "labelwright.cli_formats:import_labelstudio_cmd",
    "import-gold": "labelwright.cli_formats:import_gold_cmd",
    "users": "labelwright.cli_users:users", "members": "labelwright.cli_users:members",
    "audit": "labelwright.cli_workforce:audit", "pay": "labelwright.cli_workforce:pay",
    "message": "labelwright.cli_workforce:message", "more-answers": "labelwright.cli_workforce:more_answers",
    "expire": "labelwright.cli_workforce:expire",
    "webhooks": "labelwright.cli_webhooks:webhooks", "llm": "labelwright.cli_llm:llm",
    "assist": "labelwright.cli_assist:assist",
    "serve": "labelwright.cli_server:serve", "demo": "labelwright.cli_server:demo",
}


@click.group(cls=Group, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", default=None, metavar="PATH_OR_URL",
              help="SQLite file path or postgresql://user@host:port/dbname URL (env LABELWRIGHT_DB; default "
                   "labelwright.db); may also follow the command.")
@click.option("--base-url", default=None, metavar="URL",
              help="The server's public address, used in every printed link, e.g. https://label.example.org "
                   "(env LABELWRIGHT_BASE_URL; default http://HOST:PORT from the serve settings).")
@click.option("--config", "config_file", default=None, metavar="FILE",
              help=f"A TOML file of settings (env {CONFIG_ENV}); the environment and the command line beat it.")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.version_option(package_name="labelwright")
@click.pass_context
def main(ctx: click.Context, db: str | None, base_url: str | None, config_file: str | None,
         assignments: tuple[str, ...]) -> None:
    """labelwright: make training data with a team. Projects, annotators, overlap, export."""
    ctx.obj = Ctx(config=config_file, sets=assignments, db_url=db, base_url=base_url)


# ---- database -------------------------------------------------------------------------------


@main.command()
@click.pass_obj
def init(obj: Ctx) -> None:
    """Create the database (a new SQLite file, or the tables in an existing PostgreSQL database)."""
    store = obj.store(create=True)
    console.print(f"database ready: {obj.display_db} (schema version {store.schema_version()})", highlight=False)


@main.command()
@click.pass_obj
def migrate(obj: Ctx) -> None:
    """Create or upgrade the database schema (the other commands upgrade it too)."""
    store = obj.store(migrate=False, create=True)
    done = store.migrate()
    console.print(f"schema at version {store.schema_version()}" + (f" (applied {done})" if done else ""))


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {name: {value, source}}.")
@click.pass_obj
def settings_cmd(obj: Ctx, as_json: bool) -> None:
    """Show every setting, its value and where it came from (option, environment, config file, default)."""
    settings = obj.settings
    shown = {name: (display_url(value) if name == "db_url" else value, obj.origin(name))
             for name, value in settings.model_dump().items()}
    if as_json:
        out.print_json(json.dumps({name: {"value": str(v) if isinstance(v, Path) else v, "source": src}
                                   for name, (v, src) in shown.items()}))
        return
    table = Table("setting", "value", "source")
    for name, (value, source) in shown.items():
        table.add_row(name, "" if value is None else str(value), source)
    out.print(table)


add_global_options(main)


if __name__ == "__main__":  # pragma: no cover
    main()
