"""The command line's database: which commands may create one, and errors a person can act on.

Commands that make something (``init``, ``migrate``, ``projects create``, ``users create``, ``demo``,
``serve``) create a missing SQLite file and say so; every other command refuses a SQLite path that does
not exist (a typo must not quietly become an empty database) with one line and exit status 2. When the
database cannot be opened (nothing listening on the port, no such PostgreSQL database or role, no such
folder, a file that is not a database) :func:`explain` turns the driver's error into one line that names
the database (without any password) and what to check.

:class:`Ctx` is the object every command gets (``@click.pass_obj``): the ``--config``, ``--set`` and named
options the user gave, the settings built from them, the environment and the config file
(:meth:`labelwright.settings.Settings.load`), and the store, opened on first use.
:func:`add_global_options` lets ``--db`` (and, on the commands that print links,
``--base-url``) follow the command as well as precede it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from labelwright.errors import LabelwrightError
from labelwright.settings import DEFAULT, Settings
from labelwright.store import Store

# soft_wrap: a line is never broken at the terminal's width (nor at 80 columns when the output is a pipe
# or a file, which is where error lines are read by scripts and people alike); tables still fit the width.
console = Console(stderr=True, soft_wrap=True)  # messages and errors
out = Console(soft_wrap=True)  # what a command prints as its result

SET_HELP = ("Any setting, NAME=VALUE (the list: docs/operations.md, Settings), e.g. --set max_body_bytes=2097152; "
            "repeatable; beats the environment and the config file.")


class DatabaseUnavailable(LabelwrightError):
    """The database named by ``--db`` is missing or cannot be opened (the message says what to check)."""


def display_url(db_url: str) -> str:
    """How to show a database to a person: a SQLite file's path, or a PostgreSQL URL without its password
    (neither in the user part nor as a ``password=`` query parameter) and without the driver name."""
    path = sqlite_path(db_url)
    if path is not None:
        return str(path)
    if db_url.startswith(("sqlite", "postgresql")):
        try:
            url = make_url(db_url)
        except Exception:  # noqa: BLE001 - an unparsable URL is shown without anything after '@' or '?'
            return re.sub(r"//[^@/]*@", "//", db_url).split("?", 1)[0]
        url = url._replace(drivername=url.drivername.split("+", 1)[0], password=None)
        url = url.difference_update_query([k for k in url.query if k.lower() in ("password", "passfile")])
        return url.render_as_string(hide_password=False)
    return re.sub(r"//[^@/]*@", "//", db_url).split("?", 1)[0]


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL; None for PostgreSQL and for an in-memory database."""
    if not db_url.startswith("sqlite:///"):
        return None
    path = db_url[len("sqlite:///"):].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


def check_exists(db_url: str) -> None:
    """Refuse a SQLite file that does not exist (the commands that create one skip this)."""
    path = sqlite_path(db_url)
    if path is not None and not path.exists():
        raise DatabaseUnavailable(f"no database at {path}: run `labelwright init` first, or check --db "
                                  "(or LABELWRIGHT_DB)")


_WHERE = re.compile(r'connection to server at "([^"]*)"(?:[^,]*)?, port (\d+) failed')


def explain(db_url: str, exc: BaseException) -> str:
    """One line for a person: which database could not be used, why, and what to check."""
    shown = display_url(db_url)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    low = text.lower()
    path = sqlite_path(db_url)
    if path is not None:
        if "not a database" in low:
            return (f"{path} is not a labelwright database (not a SQLite file at all): check --db, or "
                    "give a new file name to create one")
        if "malformed" in low:
            return f"the SQLite database {path} is damaged (\"{text}\"): restore it from a backup"
        if "unable to open" in low or "readonly" in low or "read-only" in low:
            if path.is_dir():
                return f"{path} is a folder, not a database file: give a file name in --db"
            if not path.parent.is_dir():
                return f"no folder {path.parent} for the database {path.name}: create the folder, or check --db"
            return (f"cannot open the database {path}: check that you may read and write it and its folder "
                    f"({text})")
        return f"cannot use the database {path}: {text}"
    server = ""
    m = _WHERE.search(text)
    if m:
        server = f" at {m.group(1)}:{m.group(2)}"
    role = re.search(r'role "([^"]*)" does not exist', text)
    db = re.search(r'database "([^"]*)" does not exist', text)
    if "connection refused" in low:
        why = f"nothing is listening{server}: is PostgreSQL running, and on that host and port?"
    elif db:
        why = (f"PostgreSQL{server} has no database \"{db.group(1)}\": create it (createdb {db.group(1)}) "
               "or fix the name")
    elif role:
        why = f"PostgreSQL{server} has no role \"{role.group(1)}\": create it or fix the user name"
    elif "password authentication failed" in low or "no password supplied" in low:
        why = f"PostgreSQL{server} refused the password: check the user and its password (PGPASSWORD or ~/.pgpass)"
    elif "resolve host" in low or "name or service not known" in low:
        why = "the host name cannot be resolved: check the host in the URL"
    elif "timeout" in low or "timed out" in low:
        why = "no answer in time: check the host, the port and any firewall"
    else:
        return f"cannot use the database {shown}: {text.removeprefix('connection failed: ')}"
    return f"cannot open the database {shown}: {why} (check --db or LABELWRIGHT_DB)"


def open_store(settings: Settings, *, create: bool, migrate: bool = True) -> Store:
    """The store for ``settings.db_url``, its schema brought up to date (unless ``migrate`` is false).

    Without ``create`` a SQLite file that does not exist is refused; with it, a new file is created (the
    caller says so). Any error opening the database is a :class:`DatabaseUnavailable` with one clear line.
    """
    if not create:
        check_exists(settings.db_url)
    store = Store(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous, pool_size=4)
    try:
        if migrate:
            store.migrate()
        else:
            store.ping()
    except DBAPIError as e:
        store.close()
        raise DatabaseUnavailable(explain(settings.db_url, e)) from None
    return store


class Ctx:
    """What every command gets: the settings' sources given on the command line, the settings built from
    them (with the environment and the config file), and the store.

    ``options`` holds the named options by setting name (``--db`` is ``db_url``); a command adds its own
    (``serve --port``) before it first reads :attr:`settings`. ``env`` replaces ``os.environ`` (tests)."""

    def __init__(self, *, config: str | None = None, sets: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 **options: Any) -> None:
        self.config = config
        self.sets = list(sets)
        self.env = env
        self.options: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        self.created = False  # whether this run created the SQLite file
        self._store: Store | None = None
        self._loaded: tuple[tuple[Any, ...], tuple[Settings, dict[str, str]]] | None = None

    def _load(self) -> tuple[Settings, dict[str, str]]:
        key = (self.config, tuple(self.sets), tuple(sorted(self.options.items(), key=lambda kv: kv[0])))
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, Settings.load_traced(self.env, self.config, sets=self.sets, **self.options))
        return self._loaded[1]

    @property
    def settings(self) -> Settings:
        return self._load()[0]

    def origin(self, name: str) -> str:
        """Where setting ``name`` came from (``"default"`` when nobody gave it)."""
        return self._load()[1][name]

    @property
    def db_given(self) -> bool:
        """Whether the database was given anywhere (option, environment, config file) or is the default."""
        return self.origin("db_url") != DEFAULT

    @property
    def display_db(self) -> str:
        return display_url(self.settings.db_url)

    def store(self, migrate: bool = True, create: bool = False) -> Store:
        """The store, opened on first use. ``create``: this command may create the database."""
        if self._store is None:
            s = self.settings
            path = sqlite_path(s.db_url)
            new = path is not None and not path.exists()
            self._store = open_store(s, create=create, migrate=migrate)
            if new and path is not None and path.exists():
                self.created = True
                console.print(f"created a new database at {path}", highlight=False, markup=False)
        return self._store


# ---- --db and --base-url after the command too ------------------------------------------------

LINK_COMMANDS = {"serve", "demo", "users create", "users link", "users reset-link"}  # they print links


def _late_option(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.ensure_object(Ctx).options[name] = value
    return callback


def add_global_options(cmd: click.Command, path: str = "") -> None:
    """Give ``cmd`` (a command, or every command of a group and its subgroups; ``path`` is its name under
    ``labelwright``) a ``--db`` option, and the commands that print links a ``--base-url``, so that
    ``labelwright import --db x.db ...`` means what ``labelwright --db x.db import ...`` does. A command's
    own option of that name (``llm add --base-url``, the LLM's address) is left alone."""
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            add_global_options(sub, f"{path} {name}".strip())
        return
    taken = {opt for param in cmd.params for opt in getattr(param, "opts", ())}
    if "--db" not in taken:
        cmd.params.append(click.Option(
            ["--db"], default=None, expose_value=False, callback=_late_option("db_url"), metavar="PATH_OR_URL",
            help="The database, as for `labelwright --db` (SQLite file or postgresql:// URL; env LABELWRIGHT_DB)."))
    if path in LINK_COMMANDS and "--base-url" not in taken:
        cmd.params.append(click.Option(
            ["--base-url"], default=None, expose_value=False, callback=_late_option("base_url"), metavar="URL",
            help="The server's public address for printed links, as for `labelwright --base-url` "
                 "(env LABELWRIGHT_BASE_URL)."))
