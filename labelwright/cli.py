"""The ``labelwright`` command line (click + rich)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from labelwright.cli_db import Ctx, accept_global_options_anywhere, console, display_url, explain, out
from labelwright.errors import LabelwrightError
from labelwright.services.access import ORG_ROLES, PROJECT_ROLES
from labelwright.settings import CONFIG_ENV, Settings
from labelwright.timefmt import utc_time


def _fail(e: Exception | str) -> NoReturn:
    # escaped: a file name or a message may hold brackets ("items[2].id", "data[raw].jsonl")
    console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
    sys.exit(2)


class Group(click.Group):
    """Turns labelwright's own errors (a setting that does not fit among them), and a database that cannot
    be used, into one clear line and exit code 2."""

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


SET_HELP = ("Any setting, NAME=VALUE (the list: docs/operations.md, Settings), e.g. --set max_body_bytes=2097152; "
            "repeatable; beats the environment and the config file.")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
def init(obj: Ctx):
    """Create the database (a new SQLite file, or the tables in an existing PostgreSQL database)."""
    store = obj.store(create=True)
    console.print(f"database ready: {obj.display_db} (schema version {store.schema_version()})", highlight=False)


@main.command()
@click.pass_obj
def migrate(obj: Ctx):
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


# ---- server ---------------------------------------------------------------------------------


def app_from_env():
    """uvicorn factory for `serve` with several worker processes (settings come from the environment,
    where `serve` put every one of them: see labelwright.settings.to_env)."""
    from labelwright.app import create_app

    return create_app(Settings.load())


def _serve(obj: Ctx, workers: int, log_level: str = "warning", **overrides):
    import uvicorn

    from labelwright.settings import to_env

    obj.options.update({k: v for k, v in overrides.items() if v is not None})
    settings = obj.settings
    host, port = settings.host, settings.port
    _check_bind(host, port)  # before anything is created or printed
    os.environ.update(to_env(settings))  # the worker processes build the same settings from it
    obj.store(create=True)  # migrate before any worker starts
    console.print(f"labelwright serving on [bold]http://{host}:{port}/[/] (database {obj.display_db})",
                  highlight=False)
    if settings.base_url:
        console.print(f"links use {settings.public_url}/", highlight=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print("[yellow]warning:[/] listening beyond this machine; put it behind HTTPS", highlight=False)
    uvicorn.run("labelwright.cli:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False)


def _check_bind(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be listened on (the port in use, a host that is not this
    machine's), by binding it as uvicorn will (its Config.bind_socket: IPv6 for a host with a colon, else
    IPv4, SO_REUSEADDR) and letting it go again."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except socket.gaierror as e:
            raise LabelwrightError(f"cannot listen on {host}:{port}: unknown host ({e.strerror}); "
                                   "check --host") from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise LabelwrightError(f"port {port} on {host} is already in use (another labelwright or another "
                                       "program): stop it, or choose another with --port") from None
            if e.errno == errno.EACCES:
                raise LabelwrightError(f"not allowed to listen on port {port}: ports below 1024 need privileges; "
                                       "choose another with --port") from None
            raise LabelwrightError(f"cannot listen on {host}:{port}: {e.strerror}; check --host and --port") from None


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; env LABELWRIGHT_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000; env LABELWRIGHT_PORT).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes. SQLite: keep 1 (its writer thread commits many requests at once); "
                   "PostgreSQL: about 1.5 per CPU core (3 on 2 cores), see docs/benchmarks.md.")
@click.option("--media-root", type=click.Path(file_okay=False), default=None,
              help="Directory that image fields given as relative file paths are served from "
                   "(env LABELWRIGHT_MEDIA_ROOT).")
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="Mark session cookies Secure (serve over HTTPS; env LABELWRIGHT_SECURE_COOKIES).")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="Server log level.")
@click.pass_obj
def serve(obj: Ctx, host: str | None, port: int | None, workers: int, media_root: str | None,
          secure_cookies: bool | None, assignments: tuple[str, ...], log_level: str) -> None:
    """Start the web server (UI and API)."""
    obj.sets += assignments  # after the group's --set: the later one wins
    obj.options.update({k: v for k, v in {"host": host, "port": port, "secure_cookies": secure_cookies,
                                          "media_root": media_root}.items() if v is not None})
    _serve(obj, workers, log_level)


DEMO_DB = "labelwright-demo.db"


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; env LABELWRIGHT_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000; env LABELWRIGHT_PORT).")
@click.option("--no-serve", is_flag=True, help="Create the demo data and print the sign-in URL, then exit.")
@click.pass_obj
def demo(obj: Ctx, host: str | None, port: int | None, no_serve: bool) -> None:
    """Create a demo database with two real-data projects and start the server.

    The database is the one given (--db, LABELWRIGHT_DB, the config file), else labelwright-demo.db in this
    folder."""
    from labelwright.demo import build_demo

    obj.options.update({k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    if not obj.db_given:
        obj.options["db_url"] = DEMO_DB
    settings = obj.settings
    if not no_serve:
        _check_bind(settings.host, settings.port)
    info = build_demo(obj.store(create=True), settings)
    for p in info["projects"]:
        console.print(f"  project [bold]{p['slug']}[/]: {p['items']} items, overlap {p['overlap']}", highlight=False)
    console.print(f"\nOwner sign-in (one-time link): [bold green]{info['signin_url']}[/]\n", highlight=False)
    if not no_serve:
        _serve(obj, 1)


# ---- projects -------------------------------------------------------------------------------


@main.group()
def projects():
    """Create and list projects."""


@projects.command("create")
@click.option("--schema", "schema_file", required=True, type=click.Path(dir_okay=False),
              help="YAML or JSON project schema file.")
@click.pass_obj
def projects_create(obj: Ctx, schema_file):
    """Create a project from a schema file."""
    from labelwright.schema import parse_schema
    from labelwright.services.projects import create_project

    schema = parse_schema(Path(schema_file))
    p = create_project(obj.store(create=True), schema)
    out.print(f"created project [bold]{p.slug}[/] (id {p.id}, overlap {p.overlap})", highlight=False)


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def projects_list(obj: Ctx, as_json):
    """List projects with their progress."""
    from labelwright.services.projects import list_projects, progress

    store = obj.store()
    rows = [(p, progress(store, p)) for p in list_projects(store)]
    if as_json:
        out.print_json(json.dumps([{**p.to_dict(), "status": s} for p, s in rows]))
        return
    table = Table("slug", "name", "overlap", "items", "done", "in progress", "waiting", "annotations")
    for p, s in rows:
        i = s["items"]
        table.add_row(p.slug, p.name, str(p.overlap), str(i["total"]), str(i["done"]), str(i["in_progress"]),
                      str(i["waiting"]), str(s["annotations"]))
    out.print(table)


# ---- import / export ------------------------------------------------------------------------


@main.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default=None,
              help="File format (default: from the file's extension).")
@click.option("--encoding", default=None, metavar="NAME",
              help="Text encoding of a JSONL or CSV file (default UTF-8), e.g. latin-1 or cp1252.")
@click.pass_obj
def import_cmd(obj: Ctx, project, file, fmt, encoding):
    """Import items into PROJECT from a JSONL, CSV or Parquet FILE (all or nothing)."""
    from labelwright.io.readers import open_records
    from labelwright.services.items import chat_fields, import_items
    from labelwright.services.projects import get_project

    store = obj.store()
    p = get_project(store, project)
    records, _size = open_records(file, fmt, json_columns=chat_fields(p), encoding=encoding)
    with Progress(TextColumn("importing"), BarColumn(), TextColumn("{task.completed:,} items"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("import", total=None)
        result = import_items(store, p, records, file=file, on_progress=lambda n: bar.update(task, completed=n))
    if result["received"] == 0:
        console.print(f"[yellow]warning:[/] {escape(file)} holds no items (it is empty, or only a header): nothing was "
                      "imported", highlight=False)
        return
    gold = f", {result['gold']:,} with gold answers" if result["gold"] else ""
    repeated = (f", {result['repeated']:,} repeated within the file (same content, kept once)"
                if result.get("repeated") else "")
    out.print(f"imported {result['inserted']:,} new items into {p.slug} "
              f"({result['duplicates']:,} already present{repeated}{gold})", highlight=False)


@main.command("export")
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default=None,
              help="Output format (default: from the output file's extension, .jsonl/.json, .csv or .parquet; "
                   "a format that contradicts the extension is refused).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.pass_obj
def export_cmd(obj: Ctx, project, fmt, output, force):
    """Export PROJECT's items, annotations and majority votes (to a new file; --force replaces one)."""
    from labelwright.services.export import csv_chunks, format_for, jsonl_lines, write_parquet
    from labelwright.services.projects import get_project

    target = Path(output)
    fmt = format_for(target, fmt)
    _check_output(target, force)
    store = obj.store()
    p = get_project(store, project)

    def write(f):
        if fmt == "parquet":
            write_parquet(store, p, f)
        else:
            for chunk in (jsonl_lines if fmt == "jsonl" else csv_chunks)(store, p):
                f.write(chunk)

    with console.status(f"exporting {p.slug} as {fmt}"):
        _write_new_file(target, force, write)
    out.print(f"wrote {output} ({target.stat().st_size:,} bytes)", highlight=False, markup=False)


def _check_output(target: Path, force: bool) -> None:
    folder = target.parent
    if not folder.is_dir():
        raise LabelwrightError(f"no folder {str(folder)!r} to write {target.name!r} in: create it first",
                               file=str(target))
    if os.path.lexists(target) and not force:
        raise LabelwrightError("the file exists: pass --force to replace it, or choose another name",
                               file=str(target))


def _write_new_file(target: Path, force: bool, write) -> None:
    """``write(binary_file)`` into a temporary file created afresh in ``target``'s folder (mkstemp: an
    exclusive create, so never an existing file or a link planted there), then rename it onto ``target``.
    Without ``force`` an existing ``target`` is never replaced. If anything fails the temporary file is
    removed and ``target`` is left as it was."""
    import tempfile

    _check_output(target, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the mode a plain new file gets (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile: no overwrite without --force
            except FileExistsError:
                raise LabelwrightError("the file exists: pass --force to replace it, or choose another name",
                                       file=str(target)) from None
            except OSError:  # a file system without hard links
                _check_output(target, force)
                os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def status(obj: Ctx, project, as_json):
    """Show PROJECT's progress: items done / in progress / waiting, per annotator, last hour."""
    from labelwright.services.projects import get_project, progress

    store = obj.store()
    s = progress(store, get_project(store, project))
    if as_json:
        out.print_json(json.dumps(s))
        return
    i = s["items"]
    out.print(f"[bold]{s['project']}[/]  overlap {s['overlap']}  items {i['total']:,}: done {i['done']:,}, "
              f"in progress {i['in_progress']:,}, waiting {i['waiting']:,}", highlight=False)
    out.print(f"annotations {s['annotations']:,} of {s['annotations_needed']:,} needed; "
              f"last hour {s['last_hour']['annotations']:,}", highlight=False)
    table = Table("annotator", "annotations", "active time (s)")
    for a in s["annotators"]:
        table.add_row(a["name"], str(a["annotations"]), f"{a['active_seconds']:.0f}")
    out.print(table)


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--doubt", default=10, show_default=True, type=click.IntRange(0, 500),
              help="How many of the items in most doubt to list.")
@click.pass_obj
def quality(obj: Ctx, project, as_json, doubt):
    """Show PROJECT's quality: agreement per question, annotators (likely spammers first), items in doubt."""
    from labelwright.services.projects import get_project
    from labelwright.services.quality import project_quality

    store = obj.store()
    q = project_quality(store, get_project(store, project), doubt_limit=doubt)
    if as_json:
        out.print_json(json.dumps(q))
        return
    out.print(f"[bold]{q['project']}[/]: {q['annotations']:,} annotations", highlight=False)
    table = Table("question", "method", "agreement", "Fleiss kappa", "Krippendorff alpha", "mean confidence")
    for entry in q["questions"]:
        if not entry["summarised"]:
            table.add_row(entry["name"], "-", entry.get("reason", ""), "", "", "")
            continue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(entry["name"], entry["method"], fmt(entry.get("percent_agreement")),
                      fmt(entry.get("fleiss_kappa")),
                      f"{fmt(entry.get('krippendorff_alpha'))} ({entry.get('alpha_level', '')})",
                      fmt(entry["mean_confidence"]))
    out.print(table)
    table = Table("annotator", "annotations", "gold accuracy", "skill", "agreement with consensus",
                  "median s/item", "flag")
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    for a in q["annotators"]:
        gold = f"{pct(a['gold_accuracy'])} of {a['gold_checked']}" if a["gold_checked"] else "-"
        flags = (["paused"] if a["paused"] else []) + (a["reasons"] if a["likely_spammer"] else [])
        table.add_row(a["annotator"], str(a["annotations"]), gold, pct(a["skill"]),
                      pct(a["agreement_with_consensus"]), f"{a['median_seconds']:.1f}", "; ".join(flags))
    out.print(table)
    if q["items_in_doubt"]:
        table = Table("item", "question", "consensus", "confidence", "answers")
        for d in q["items_in_doubt"]:
            answers = ", ".join(f"{x['annotator']}: {x['answer']}" for x in d["answers"])
            table.add_row(str(d["external_id"]), d["question"], str(d["label"]), f"{d['confidence']:.2f}", answers)
        out.print(table)


@main.command()
@click.argument("project")
@click.argument("name")
@click.option("--reason", default=None, help="Why (kept for the owners' records).")
@click.pass_obj
def pause(obj: Ctx, project, name, reason):
    """Pause annotator NAME in PROJECT: no new items, no submissions; their leases are released."""
    from labelwright.services import pauses
    from labelwright.services.projects import get_project
    from labelwright.services.users import get_user

    store = obj.store()
    released = pauses.pause(store, get_project(store, project), get_user(store, name), reason=reason)
    out.print(f"paused {name} in {project} ({released} lease{'s' if released != 1 else ''} released)",
              highlight=False)


@main.command()
@click.argument("project")
@click.argument("name")
@click.pass_obj
def resume(obj: Ctx, project, name):
    """Let annotator NAME work in PROJECT again."""
    from labelwright.services import pauses
    from labelwright.services.projects import get_project
    from labelwright.services.users import get_user

    store = obj.store()
    was = pauses.resume(store, get_project(store, project), get_user(store, name))
    out.print(f"resumed {name} in {project}" if was else f"{name} was not paused in {project}", highlight=False)


# ---- users ----------------------------------------------------------------------------------


@main.group()
def users():
    """Create users, set their roles, hand out API tokens, sign-in and password-reset links."""


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ORG_ROLES), default="annotator", show_default=True,
              help="Organisation role: owner (everything), manager (creates and runs projects), reviewer, annotator.")
@click.option("--project", "projects", multiple=True, help="A project (slug) they join; repeat for several.")
@click.option("--project-role", type=click.Choice(PROJECT_ROLES), default="annotator", show_default=True,
              help="Their role in the --project projects.")
@click.option("--password", is_flag=True, help="Prompt for a password now (otherwise they set one after signing in).")
@click.pass_obj
def users_create(obj: Ctx, name, role, projects, project_role, password):
    """Create a user and print an API token and a one-time sign-in link."""
    from labelwright.services import access
    from labelwright.services import users as svc
    from labelwright.services.projects import get_project

    pw = click.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    store = obj.store(create=True)
    found = [get_project(store, ref) for ref in projects]
    user = svc.create_user(store, name, role, pw)
    for p in found:
        access.set_member(store, p, name, project_role)
        out.print(f"joined {p.slug} as {project_role}", highlight=False)
    token = svc.create_api_token(store, user, label="created by CLI")
    link = svc.create_signin_link_token(store, user, obj.settings.signin_link_hours)
    out.print(f"created {role} [bold]{name}[/]", highlight=False)
    out.print(f"API token (shown once): {token}", highlight=False, soft_wrap=True)
    out.print(f"sign-in link (one use, {obj.settings.signin_link_hours} h): "
              f"{obj.settings.public_url}/signin/{link}", highlight=False, soft_wrap=True)


@users.command("list")
@click.pass_obj
def users_list(obj: Ctx):
    """List users."""
    from labelwright.services import users as svc

    table = Table("id", "name", "role", "password set", "disabled")
    for u in svc.list_users(obj.store()):
        table.add_row(str(u["id"]), u["name"], u["role"], "yes" if u["has_password"] else "no",
                      "yes" if u["disabled"] else "no")
    out.print(table)


@users.command("link")
@click.argument("name")
@click.pass_obj
def users_link(obj: Ctx, name):
    """Print a new one-time sign-in link for NAME."""
    from labelwright.services import users as svc

    store = obj.store()
    link = svc.create_signin_link_token(store, svc.get_user(store, name), obj.settings.signin_link_hours)
    out.print(f"{obj.settings.public_url}/signin/{link}", highlight=False, soft_wrap=True)


@users.command("token")
@click.argument("name")
@click.pass_obj
def users_token(obj: Ctx, name):
    """Print a new API token for NAME."""
    from labelwright.services import users as svc

    store = obj.store()
    out.print(svc.create_api_token(store, svc.get_user(store, name), label="created by CLI"),
              highlight=False, soft_wrap=True)


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ORG_ROLES))
@click.pass_obj
def users_role(obj: Ctx, name, role):
    """Change NAME's organisation role (lowering it lowers their project roles to match)."""
    from labelwright.services import users as svc

    svc.update_user(obj.store(), name, role=role)
    out.print(f"{name} is now {role}", highlight=False)


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@click.pass_obj
def users_disable(obj: Ctx, name, enable):
    """Disable NAME: no sign-in, sessions and API tokens refused from the next request."""
    from labelwright.services import users as svc

    svc.update_user(obj.store(), name, disabled=not enable)
    out.print(f"{name} is {'enabled' if enable else 'disabled'}", highlight=False)


@users.command("reset-link")
@click.argument("name")
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 30), help="How long it works.")
@click.pass_obj
def users_reset_link(obj: Ctx, name, hours):
    """Print a one-use password-reset link for NAME (using it signs them out everywhere else)."""
    from labelwright.services import users as svc

    store = obj.store()
    link = svc.create_reset_link_token(store, svc.get_user(store, name), hours)
    out.print(f"{obj.settings.public_url}/reset/{link}", highlight=False, soft_wrap=True)


@users.command("tokens")
@click.argument("name")
@click.pass_obj
def users_tokens(obj: Ctx, name):
    """List NAME's API tokens (never their secrets)."""
    from labelwright.services import users as svc

    store = obj.store()
    table = Table("id", "label", "created", "state")
    for tk in svc.list_tokens(store, svc.get_user(store, name)):
        table.add_row(str(tk["id"]), tk["label"] or "", _when(tk["created_at"]), "active" if tk["active"] else "revoked")
    out.print(table)


@users.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def users_revoke(obj: Ctx, token_id):
    """Revoke the API token TOKEN_ID (see `users tokens`)."""
    from labelwright.services import users as svc
    from labelwright.services.users import User

    svc.revoke_token(obj.store(), token_id, User(0, "(command line)", "owner"))
    out.print(f"revoked token {token_id}", highlight=False)



from labelwright.cli_webhooks import webhooks  # noqa: E402 - the webhooks command group lives in its own module

main.add_command(webhooks)

# the LLM annotators' command group lives in its own module
from labelwright.cli_llm import llm

main.add_command(llm)

from labelwright.cli_assist import assist  # noqa: E402 - the assistant's command group lives in its own module

main.add_command(assist)

# ---- project members and the audit log ------------------------------------------------------


@main.group()
def members():
    """A project's members: add, change role, remove, block."""


@members.command("list")
@click.argument("project")
@click.pass_obj
def members_list(obj: Ctx, project):
    """List PROJECT's members."""
    from labelwright.services import access
    from labelwright.services.projects import get_project

    store = obj.store()
    table = Table("user", "organisation role", "project role", "status")
    for m in access.members(store, get_project(store, project)):
        table.add_row(m["user"], m["org_role"], m["role"], m["status"])
    out.print(table)


@members.command("add")
@click.argument("project")
@click.argument("names", nargs=-1, required=True)
@click.option("--role", type=click.Choice(PROJECT_ROLES), default="annotator", show_default=True,
              help="Their role in the project.")
@click.pass_obj
def members_add(obj: Ctx, project, names, role):
    """Add NAMES to PROJECT (or change their role there)."""
    from labelwright.services import access
    from labelwright.services.projects import get_project

    store = obj.store()
    p = get_project(store, project)
    for name in names:
        access.set_member(store, p, name, role)
        out.print(f"{name}: {role} in {p.slug}", highlight=False)


@members.command("remove")
@click.argument("project")
@click.argument("name")
@click.pass_obj
def members_remove(obj: Ctx, project, name):
    """Remove NAME from PROJECT (their answers stay; their leases are released)."""
    from labelwright.services import access
    from labelwright.services.projects import get_project

    store = obj.store()
    gone = access.remove_member(store, get_project(store, project), name)
    out.print(f"removed {name} from {project}" if gone else f"{name} was not a member of {project}", highlight=False)


@members.command("block")
@click.argument("project")
@click.argument("name")
@click.option("--unblock", is_flag=True, help="Lift the block instead.")
@click.pass_obj
def members_block(obj: Ctx, project, name, unblock):
    """Block NAME from PROJECT: they see nothing of it; their leases are released."""
    from labelwright.services import access
    from labelwright.services.projects import get_project

    store = obj.store()
    p = get_project(store, project)
    if unblock:
        out.print(f"unblocked {name}" if access.unblock(store, p, name) else f"{name} was not blocked",
                  highlight=False)
    else:
        released = access.block(store, p, name)
        out.print(f"blocked {name} from {p.slug} ({released} lease{'s' if released != 1 else ''} released)",
                  highlight=False)


@main.command()
@click.option("--project", default=None, help="Only this project's entries.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def audit(obj: Ctx, project, limit, as_json):
    """Who changed what: roles, members, blocks, pauses, gold, tokens, invites (newest first)."""
    from labelwright.services import audit as svc
    from labelwright.services.projects import get_project

    store = obj.store()
    rows = svc.entries(store, get_project(store, project).id if project else None, limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("when", "who", "action", "project", "target", "details")
    for e in rows:
        table.add_row(_when(e["at"]), e["actor"], e["action"], e["project"] or "", e["target"] or "",
                      json.dumps(e["details"]) if e["details"] else "")
    out.print(table)



@main.command()
@click.argument("project")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the ledger as CSV to this file.")
@click.option("--start", default=None, help="Ledger from this day (YYYY-MM-DD, UTC).")
@click.option("--end", default=None, help="Ledger up to this day, exclusive (YYYY-MM-DD, UTC).")
@click.option("--annotator", default=None, help="Ledger of this annotator only.")
@click.pass_obj
def pay(obj: Ctx, project, ledger_file, start, end, annotator):
    """Settle PROJECT's ledger and show, per annotator: items, active hours, earnings, effective hourly rate."""
    from datetime import datetime, timezone

    from labelwright.services import pay as svc
    from labelwright.services.projects import get_project

    store = obj.store()
    p = get_project(store, project)
    written = svc.settle(store, p)
    out.print(f"ledger settled: {sum(written.values())} new entr{'y' if sum(written.values()) == 1 else 'ies'}",
              highlight=False)
    table = Table("annotator", "items", "active hours", "earnings", "effective hourly", "")
    for r in svc.summary(store, p):
        table.add_row(r["annotator"], str(r["items"]), f"{r['active_hours']:.2f}", f"{r['earnings']} {r['currency']}",
                      r["effective_hourly"] or "-", "[red]below the fair rate[/]" if r["below_fair_rate"] else "")
    out.print(table)
    if ledger_file:
        def day(v):
            return None if v is None else datetime.strptime(v, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
        rows = svc.ledger_rows(store, p, start=day(start), end=day(end), annotator=annotator)
        with open(ledger_file, "w", encoding="utf-8", newline="") as f:
            f.write(svc.ledger_csv(rows))
        out.print(f"wrote {len(rows)} ledger entries to {ledger_file}", highlight=False, markup=False)


@main.command()
@click.argument("project")
@click.argument("text")
@click.option("--to", default=None, help="One member's name (default: every member).")
@click.pass_obj
def message(obj: Ctx, project, text, to):
    """Send TEXT to PROJECT's annotators (they see it on their home page)."""
    from labelwright.services import messages
    from labelwright.services.projects import get_project

    store = obj.store()
    messages.send(store, get_project(store, project), None, text, to)
    out.print(f"sent to {to or 'every member of ' + project}", highlight=False)


@main.command("more-answers")
@click.argument("project")
@click.argument("items", nargs=-1, required=True)
@click.option("--answers", default=1, show_default=True, type=click.IntRange(1, 20), help="How many more each.")
@click.pass_obj
def more_answers(obj: Ctx, project, items, answers):
    """Ask for more answers on ITEMS (external ids) of PROJECT; they reopen in the queue."""
    from labelwright.services import queue_controls
    from labelwright.services.projects import get_project

    store = obj.store()
    res = queue_controls.more_answers(store, get_project(store, project), list(items), answers)
    out.print(f"{res['items']} item(s) reopened for {answers} more answer(s) each", highlight=False)


@main.command()
@click.argument("project")
@click.pass_obj
def expire(obj: Ctx, project):
    """Expire PROJECT: no new work is handed out (answers already given stay)."""
    from labelwright.services.projects import expire, get_project

    store = obj.store()
    expire(store, get_project(store, project))
    out.print(f"{project} has expired: no new work", highlight=False)

def _when(ts) -> str:
    return utc_time(ts, seconds=True, missing="")


accept_global_options_anywhere(main)


if __name__ == "__main__":  # pragma: no cover
    main()
