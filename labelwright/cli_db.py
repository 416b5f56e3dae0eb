"""The command line's database: which commands may create one, and errors a person can act on.

Commands that make something (``init``, ``migrate``, ``projects create``, ``users create``, ``demo``,
``serve``) create a missing SQLite file and say so; every other command refuses a SQLite path that does
not exist (a typo must not quietly become an empty database) with one line and exit status 2. When the
database cannot be opened (nothing listening on the port, no such PostgreSQL database or role, no such
folder, a file that is not a database) :func:`explain` turns the driver's error into one line that names
the database (without any password) and what to check.

:class:`Ctx` is the object every command gets (``@click.pass_obj``): the ``--db`` and ``--base-url`` the
user gave, the settings built from them and the environment, and the store, opened on first use.
:func:`accept_global_options_anywhere` lets ``--db`` (and, on the commands that print links,
``--base-url``) follow the command as well as precede it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from labelwright.errors import LabelwrightError
from labelwright.settings import Settings


class DatabaseUnavailable(LabelwrightError):
    """The database named by ``--db`` is missing or cannot be opened (the message says what to check)."""


def display_url(db_url: str) -> str:
    """How to show a database to a person: a SQLite file's path, or a PostgreSQL URL without its password
    (neither in the user part nor as a ``password=`` query parameter) and without the driver name."""
    path = sqlite_path(db_url)
    if path is not None:
        return str(path)
    if db_url.startswith(("sqlite", "postgresql")):
        from sqlalchemy.engine import make_url

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


def open_store(settings: Settings, *, create: bool, migrate: bool = True):
    """The store for ``settings.db_url``, its schema brought up to date (unless ``migrate`` is false).

    Without ``create`` a SQLite file that does not exist is refused; with it, a new file is created (the
    caller says so). Any error opening the database is a :class:`DatabaseUnavailable` with one clear line.
    """
    from sqlalchemy.exc import DBAPIError

    from labelwright.store import Store

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
    """What every command gets: the database and base URL given, the settings, the store."""

    def __init__(self, db: str, base_url: str | None = None, *, db_given: bool = True):
        self.db = db
        self.base_url = base_url
        self.db_given = db_given  # False: --db was neither given nor in LABELWRIGHT_DB (the default)
        self.created = False  # whether this run created the SQLite file
        self._store = None

    @property
    def display_db(self) -> str:
        return display_url(self.settings.db_url)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(db_url=self.db, base_url=self.base_url)

    def store(self, migrate: bool = True, create: bool = False):
        """The store, opened on first use. ``create``: this command may create the database."""
        if self._store is None:
            s = self.settings
            path = sqlite_path(s.db_url)
            new = path is not None and not path.exists()
            self._store = open_store(s, create=create, migrate=migrate)
            if new and path.exists():
                self.created = True
                from labelwright.cli import console

                console.print(f"created a new database at {path}", highlight=False, markup=False)
        return self._store


# ---- --db and --base-url after the command too ------------------------------------------------

LINK_COMMANDS = {"serve", "demo", "users create", "users link", "users reset-link"}  # they print links


def _late_option(name: str):
    def callback(ctx, param, value):
        if value is not None:
            obj = ctx.find_object(Ctx)
            setattr(obj, name, value)
            if name == "db":
                obj.db_given = True
    return callback


def accept_global_options_anywhere(group: click.Group, prefix: str = "") -> None:
    """Give every command of ``group`` (and of its subgroups) a ``--db`` option, and the commands that print
    links a ``--base-url``, so that ``labelwright import --db x.db ...`` means what
    ``labelwright --db x.db import ...`` does. A command's own option of that name (``llm add --base-url``,
    the LLM's address) is left alone."""
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            accept_global_options_anywhere(cmd, path + " ")
            continue
        taken = {opt for param in cmd.params for opt in getattr(param, "opts", ())}
        if "--db" not in taken:
            cmd.params.append(click.Option(
                ["--db"], default=None, expose_value=False, callback=_late_option("db"), metavar="PATH_OR_URL",
                help="The database, as for `labelwright --db` (SQLite file or postgresql:// URL; env LABELWRIGHT_DB)."))
        if path in LINK_COMMANDS and "--base-url" not in taken:
            cmd.params.append(click.Option(
                ["--base-url"], default=None, expose_value=False, callback=_late_option("base_url"), metavar="URL",
                help="The server's public address for printed links, as for `labelwright --base-url` "
                     "(env LABELWRIGHT_BASE_URL)."))
