"""The server commands: ``serve`` (the web UI and API) and ``demo`` (demo projects, then ``serve``).

Registered on ``labelwright`` by :mod:`labelwright.cli` (loaded when one of its commands runs, so the
other commands do not import the web app).
"""

from __future__ import annotations

import errno
import socket

import click

from labelwright import serving
from labelwright.cli_db import SET_HELP, Ctx, console
from labelwright.demo import build_demo
from labelwright.errors import LabelwrightError


def _serve(obj: Ctx, workers: int, log_level: str = "warning", **overrides):
    obj.options.update({k: v for k, v in overrides.items() if v is not None})
    settings = obj.settings
    host, port = settings.host, settings.port
    _check_bind(host, port)  # before anything is created or printed
    obj.store(create=True)  # migrate before any worker starts
    console.print(f"labelwright serving on [bold]http://{host}:{port}/[/] (database {obj.display_db})",
                  highlight=False)
    if settings.base_url:
        console.print(f"links use {settings.public_url}/", highlight=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print("[yellow]warning:[/] listening beyond this machine; put it behind HTTPS", highlight=False)
    serving.serve(settings, workers, log_level)  # the settings object itself goes to every worker


def _check_bind(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be listened on (the port in use, a host that is not this
    machine's), by binding it as uvicorn will (its Config.bind_socket: IPv6 for a host with a colon, else
    IPv4, SO_REUSEADDR) and letting it go again."""
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


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; env LABELWRIGHT_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000; env LABELWRIGHT_PORT).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes, each with its own socket on the port (SO_REUSEPORT). 1 suits SQLite and "
                   "usually PostgreSQL (both commit many requests at once); see docs/benchmarks.md.")
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


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; env LABELWRIGHT_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000; env LABELWRIGHT_PORT).")
@click.option("--no-serve", is_flag=True, help="Create the demo data and print the sign-in URL, then exit.")
@click.pass_obj
def demo(obj: Ctx, host: str | None, port: int | None, no_serve: bool) -> None:
    """Create a demo database with two real-data projects and start the server.

    The database is the one given (--db, LABELWRIGHT_DB, the config file), else labelwright-demo.db in this
    folder."""
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
