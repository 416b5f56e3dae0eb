"""What a server process remembers between requests: one typed object, owned by the :class:`~labelwright.store.Store`.

Several server processes (on one host or many) serve one database, so nothing here may be the truth:
each field is either checked against the database on every use, or only saves work that is safe to
repeat. Why each is safe with two servers:

``schemas``
    The parsed schema of each project, keyed by project id and holding the schema's JSON text. A
    project row (which every request reads anyway) is parsed again only when its text differs from the
    cached one, so a schema written by another process is used from that process's commit on: the cache
    can make parsing cheaper, never a schema older.
``listeners``
    Per project, the active webhooks that may want its events, with the project's ``updated_at`` they were
    read at. Every webhook change moves ``updated_at`` of the projects it concerns in its own transaction
    (:func:`labelwright.services.events.touch`), and the submission path reads the project row in its
    transaction, so a server that reads a newer ``updated_at`` reads the webhooks again: a webhook made
    through another server gets the events of the next submission.
``settled_at``
    When this process last settled each project's earnings. Only a throttle: settling is idempotent and
    serialised in the database (:func:`labelwright.services.pay.settle`), so two processes settling at
    once write each entry once.
``skill_fits``
    Adaptive redundancy's fitted annotator skills per project, with the id of the newest answer each fit
    saw. Whether a fit is stale is decided from the database (how many answers came after that id), so
    answers taken by any server count towards the next refit; each process refits on its own and they
    converge on the same data.
``machine_runs``
    SQLite: which machine annotators are running (PostgreSQL uses advisory locks, which hold across
    processes). Not a cache but a lock that must hold across processes too: a thread lock per annotator
    for this process and, for a database file, a POSIX record lock on byte ``user id`` of the file
    ``<database>-locks`` beside it for the other processes (a SQLite database lives on one host).

Caches must never be module globals or attributes stuck onto the store: a test or a second app in the
same process builds its own Store and so starts with empty caches.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO


class RunLocks:
    """Non-blocking locks by integer key, held across threads and, with ``path``, across processes
    (POSIX record locks on byte ``key`` of the file ``path``; one descriptor per process is kept open,
    since closing any descriptor of a file drops all of the process's record locks on it)."""

    def __init__(self, path: str | None = None):
        self.path = path
        self._threads: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._file_obj: BinaryIO | None = None  # closed with it when the Store is dropped

    @contextmanager
    def hold(self, key: int) -> Iterator[bool]:
        """Yields whether the lock on ``key`` was free (and is now held until the block ends)."""
        with self._guard:
            lock = self._threads.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, key)
                except OSError:  # another process holds it
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, key)
                return
            yield True
        finally:
            lock.release()

    def _file(self) -> int | None:
        if self.path is None:
            return None
        with self._guard:
            if self._file_obj is None:
                self._file_obj = open(self.path, "ab")  # noqa: SIM115 - held open for the locks' sake
            return self._file_obj.fileno()


@dataclass
class Caches:
    """The caches of one Store (see the module docstring for why each is safe with several servers)."""

    #: project id -> (schema JSON text, parsed ProjectSchema)
    schemas: dict[int, tuple[str, Any]] = field(default_factory=dict)
    #: project id -> (the project's updated_at when read, [(webhook project id or None, kinds)])
    listeners: dict[int, tuple[float, list[tuple[int | None, str]]]] = field(default_factory=dict)
    #: project id -> time.time() of this process's last settle
    settled_at: dict[int, float] = field(default_factory=dict)
    #: project id -> labelwright.services.redundancy.SkillFit, under skill_fits_lock
    skill_fits: dict[int, Any] = field(default_factory=dict)
    skill_fits_lock: threading.Lock = field(default_factory=threading.Lock)
    #: machine annotators' run locks by user id (SQLite)
    machine_runs: RunLocks = field(default_factory=RunLocks)

    @classmethod
    def for_url(cls, db_url: str) -> Caches:
        """Empty caches for a Store on ``db_url`` (a SQLite file gets cross-process run locks)."""
        path = None
        if db_url.startswith("sqlite:///") and db_url not in ("sqlite:///:memory:",):
            path = db_url[len("sqlite:///"):].split("?", 1)[0] + "-locks"
        return cls(machine_runs=RunLocks(path))

    def clear(self) -> None:
        """Forget everything (the next use of each reads the database again)."""
        self.schemas.clear()
        self.listeners.clear()
        self.settled_at.clear()
        with self.skill_fits_lock:
            self.skill_fits.clear()
