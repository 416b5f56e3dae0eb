"""The server's large exports, made by ``labelwright export -o -`` in a child process.

In the server process an export runs on one core (a server must not fork, see
:mod:`labelwright.io.forked`) and holds every answer of the project for truth inference. From
:attr:`Settings.export_process_items <labelwright.settings.Settings>` items up (200,000 by default) the
server starts the command-line export instead (:mod:`labelwright.io.spawned`): a fresh interpreter that
forks its own workers, makes the chunks on several cores and writes the file to its standard output, which
the server relays. The bytes are the same either way; the child costs its start (about 2 s), which is why
small projects stay in the server process. Each child holds the project's answers (hundreds of MB at a
million) and forks up to four workers, so a server process runs at most :data:`AT_ONCE` of them; one
more is refused with 503 until one has finished.
"""

from __future__ import annotations

import os
import sys
import threading

from sqlalchemy import func, select

from labelwright.errors import Busy
from labelwright.io.spawned import ChildOutput, stream_output
from labelwright.services.projects import Project
from labelwright.settings import ENV_PREFIX, LEGACY_DB_ENV, Settings
from labelwright.store import Store
from labelwright.store import tables as t

AT_ONCE = 2  # child exports a server process runs at once: each holds a project's answers and forks workers


def item_count(store: Store, project: Project) -> int:
    """How many items the project has (gold included)."""
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.items)
                                .where(t.items.c.project_id == project.id)).scalar_one())


def in_child(store: Store, project: Project, settings: Settings) -> bool:
    """Whether the server should export ``project`` in a child process (its size, against the setting)."""
    return item_count(store, project) >= settings.export_process_items


def child_slots() -> threading.BoundedSemaphore:
    """How many child exports one server process runs at once (the app factory makes one per app)."""
    return threading.BoundedSemaphore(AT_ONCE)


def child_export(settings: Settings, project: Project, fmt: str, slots: threading.BoundedSemaphore) -> ChildOutput:
    """``project`` as ``fmt`` (jsonl, csv or parquet), made by ``labelwright export`` in a child process,
    as blocks of bytes; :class:`~labelwright.errors.Busy` (503) if ``slots`` has none free. The child gets
    this server's environment with the database and the statement timeout the server runs with (a
    ``--set`` on the server's command line does not reach the environment)."""
    if not slots.acquire(blocking=False):
        raise Busy(f"{AT_ONCE} large exports are being made by this server already: try again when one has "
                   "finished (or export with the command line, `labelwright export`)")
    env = dict(os.environ)
    env[LEGACY_DB_ENV] = settings.db_url  # read before LABELWRIGHT_DB_URL and a config file
    env[ENV_PREFIX + "STATEMENT_TIMEOUT_MS"] = str(settings.statement_timeout_ms)
    argv = [sys.executable, "-m", "labelwright", "export", str(project.id), "--format", fmt, "-o", "-"]
    return stream_output(argv, env, on_end=slots.release)
