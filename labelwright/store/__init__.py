"""The store: the only layer that talks to the database.

:class:`Store` owns a SQLAlchemy engine for SQLite (WAL mode, one writer at a time) or PostgreSQL
(psycopg 3). Every write goes through :meth:`Store.write`, a transaction that on SQLite starts with
``BEGIN IMMEDIATE`` under a process-wide lock, so writers queue instead of failing with "database is
locked"; reads go through :meth:`Store.read`.

The server's two hot routes (claim the next item, submit an answer) run their service call through
:meth:`Store.run`, which keeps the event loop free:

* SQLite: the call runs in the store's writer thread. The writer takes every call that is waiting,
  runs them one after another inside one ``BEGIN IMMEDIATE`` transaction, each call's
  :meth:`Store.write` being a savepoint of it (so a call that fails undoes only its own work), and
  commits once for all of them before any caller gets its answer (group commit: one fsync for many
  submissions, and nothing is acknowledged before it is on disk).
* PostgreSQL: the call runs in the store's batcher thread (:mod:`labelwright.store.pg_batch`), which
  likewise runs every waiting call in one transaction and one commit, sending their statements together
  (pipeline mode) so that a batch costs a few round trips, not a few per call.

Hot-path SQL is written with ``:name`` parameters and run on the driver's own cursor
(:meth:`Store.cursor`, :meth:`Store.sql`), which costs a tenth of a SQLAlchemy ``text()`` execution.
"""

from __future__ import annotations

import asyncio
import queue as _queue
import re
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.pool import NullPool

from labelwright.store import migrate as _migrate
from labelwright.store.caches import Caches
from labelwright.store.futures import deliver, take_batch
from labelwright.store.pg_batch import PgBatcher, PgPipeline
from labelwright.store.pg_wire import Wire


def dumps(value) -> str:
    return orjson.dumps(value).decode()


loads = orjson.loads

def timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL cancelling a statement that ran past ``statement_timeout``."""
    orig = getattr(exc, "orig", exc)
    return type(orig).__name__ == "QueryCanceled"


TIMED_OUT = "the database took too long to answer; please try again"


def deadlocked(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL aborting this transaction to break a deadlock (it is safe to run again)."""
    orig = getattr(exc, "orig", exc)
    return type(orig).__name__ == "DeadlockDetected"


def retry_deadlocks(work, tries: int = 4):
    """``work()``, run again (up to ``tries`` times in all) when PostgreSQL aborts it to break a deadlock.

    For the short lease-releasing transactions (skip, release) that run beside the hot path's batches: a
    batch runs many annotators' calls in one transaction, so the order in which it locks item and lease rows
    cannot match every other transaction's, and PostgreSQL breaks such a cycle by aborting one side.
    ``work`` must be one whole transaction (nothing of an aborted try is left behind)."""
    for attempt in range(tries):
        try:
            return work()
        except Exception as e:
            if not deadlocked(e) or attempt == tries - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")

# A connection the network lost silently (no FIN, no RST) is found within about a minute instead of the
# kernel's 15: TCP keepalives probe an idle one (then the pools' checks see it dead), and a statement whose
# data goes unacknowledged for 30 s fails. libpq ignores them on a Unix socket.
PG_TCP = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
          "tcp_user_timeout": 30_000}
ENGINE_APP = "labelwright"  # application_name of the SQLAlchemy engine's connections (pg_stat_activity)
HOT_SUFFIX = "-hot"         # ... and after it, of the hot pool's

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
MAX_BATCH = 256  # most calls the SQLite writer runs in one transaction


class Store:
    def __init__(self, db_url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 20,
                 pg_schema: str | None = None, statement_timeout_ms: int = 0,
                 application_name: str = ENGINE_APP, pg_batches: int = 2):
        self.url = db_url
        self._options: dict[str, Any] = {"sqlite_synchronous": sqlite_synchronous, "pg_schema": pg_schema,
                         "statement_timeout_ms": statement_timeout_ms, "application_name": application_name,
                         "pg_batches": pg_batches}
        self._tls = threading.local()
        self._sql_cache: dict[str, str] = {}
        self.caches = Caches.for_url(db_url)  # what this process remembers between requests
        self._writer: _Writer | None = None
        self._writer_start = threading.Lock()
        self._batchers: list[PgBatcher] = []
        self._pg_jobs: _queue.SimpleQueue = _queue.SimpleQueue()
        self._pg_batches = pg_batches
        if db_url.startswith("sqlite"):
            self.dialect = "sqlite"
            self._write_lock: threading.Lock | None = threading.Lock()
            self.engine = self._sqlite_engine(db_url, "DEFERRED", sqlite_synchronous, pool_size)
            self.write_engine = self._sqlite_engine(db_url, "IMMEDIATE", sqlite_synchronous, pool_size)
            self._pg_hot = None
        elif db_url.startswith("postgresql"):
            self.dialect = "postgresql"
            self._write_lock = None
            # application_name: how this process's connections show in pg_stat_activity (the hot pool's
            # with "-hot" after it).
            connect_args: dict[str, Any] = {"application_name": application_name, **PG_TCP}
            if pg_schema:
                connect_args["options"] = f"-c search_path={pg_schema}"
            # At most 2 x pool_size connections. No pool_pre_ping (a round trip per checkout): the checkout
            # hook below checks a connection without one.
            self.engine = create_engine(db_url, pool_size=pool_size, max_overflow=pool_size,
                                        pool_pre_ping=False, connect_args=connect_args)
            self.write_engine = self.engine
            timeout = int(statement_timeout_ms)

            @event.listens_for(self.engine, "connect")
            def _on_pg_connect(dbapi_conn, _record):
                if timeout:
                    # No statement runs longer than this (a runaway query cannot hold a worker); set per
                    # connection, once, when it opens.
                    with dbapi_conn.cursor() as cur:
                        cur.execute(f"SET statement_timeout = {timeout}")
                    dbapi_conn.commit()

            @event.listens_for(self.engine, "checkout")
            def _on_pg_checkout(dbapi_conn, _record, _proxy):
                if not _alive(dbapi_conn):  # the pool drops it and hands out another
                    raise exc.DisconnectionError("the database closed this connection")

            # Lookups and the pipelined hot transactions (and the batcher's) run on autocommit
            # connections of a pool of their own, at most pool_size of them.
            self._pg_hot = _hot_pool(db_url, {**connect_args, "application_name": application_name + HOT_SUFFIX},
                                     pool_size, timeout)
        else:
            raise ValueError(f"unsupported database URL: {db_url}")

    @staticmethod
    def _sqlite_engine(url: str, begin: str, synchronous: str, pool_size: int):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if memory else None,
            **({} if memory else {"pool_size": pool_size, "max_overflow": pool_size}),
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql(f"BEGIN {begin}")

        return engine

    # ---- transactions -------------------------------------------------------------------------

    @contextmanager
    def read(self):
        batch = getattr(self._tls, "batch", None)
        if batch is not None:  # inside the writer's transaction: read what it has written so far
            yield batch
            return
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def write(self, conn=None):
        """One write transaction; commits on success (durably: the commit returns after fsync).

        In the SQLite writer thread this is a savepoint of the shared transaction, which the writer
        commits before the caller of :meth:`run` gets its answer. ``conn``: a connection from
        :meth:`staging` to run the transaction on (under the same write lock).
        """
        if conn is not None and getattr(self._tls, "batch", None) is None:
            if self._write_lock is None:
                with conn.begin():
                    yield conn
                return
            with self._write_lock:
                with conn.begin():
                    yield conn
            return
        batch = getattr(self._tls, "batch", None)
        if batch is not None:
            raw = batch.connection.dbapi_connection
            raw.execute("SAVEPOINT lw_write")
            try:
                yield batch
            except BaseException:
                if raw.in_transaction:  # False when SQLite itself rolled everything back
                    raw.execute("ROLLBACK TO lw_write")
                    raw.execute("RELEASE lw_write")
                raise
            raw.execute("RELEASE lw_write")
            return
        if self._write_lock is not None:
            with self._write_lock:
                with self.write_engine.connect() as conn:
                    with conn.begin():
                        yield conn
        else:
            with self.write_engine.connect() as conn:
                with conn.begin():
                    yield conn

    @contextmanager
    def staging(self):
        """A write connection held outside any transaction, for work that prepares a large write.

        On SQLite, TEMP tables filled through its DB-API connection (``conn.connection.dbapi_connection``,
        which runs each statement on its own) are private to the connection and take no lock on the
        database, so other writers go on meanwhile; ``with store.write(conn):`` then runs the one write
        transaction on the same connection, which sees them (see :func:`labelwright.services.items.import_items`).
        """
        with self.write_engine.connect() as conn:
            yield conn

    async def run(self, fn, *args, items: tuple = (), **kwargs):
        """``fn(*args, **kwargs)``, a service call doing one unit of writing, without holding up the event loop.

        See the module docstring: on SQLite it runs in the writer thread (group commit), on
        PostgreSQL in a batcher thread. Returns what ``fn`` returns, or raises what it raised; a result
        is only handed back once it is committed. ``items``: the ids of the item rows the call will update
        (a submission's item); on PostgreSQL its batch locks them first, in order (see
        :data:`labelwright.store.pg_batch.LOCK_ITEMS`).
        """
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.dialect == "sqlite":
            writer = self._writer or self._start_writer()
            writer.queue.put((fn, args, kwargs, loop, fut))
        else:
            if not self._batchers:
                self._start_batchers()
            self._pg_jobs.put((fn, args, kwargs, loop, fut, items))
        return await fut

    def _start_writer(self) -> _Writer:
        with self._writer_start:
            if self._writer is None:
                self._writer = _Writer(self)
                self._writer.start()
            return self._writer

    def _start_batchers(self) -> None:
        with self._writer_start:
            if not self._batchers:
                batchers = [PgBatcher(self, self._pg_jobs, n) for n in range(self._pg_batches)]
                for batcher in batchers:
                    batcher.start()
                self._batchers = batchers

    def in_batcher(self, batcher: PgBatcher) -> None:
        """Called by a batcher thread as it starts: the calls this thread runs belong to ``batcher``."""
        self._tls.batcher = batcher

    @contextmanager
    def hot_connection(self) -> Iterator[psycopg.Connection]:
        """PostgreSQL: an autocommit connection of the hot pool (health-checked when handed out) for the
        length of the block; one left in a transaction is rolled back when it goes back."""
        pool = self._pg_hot
        assert pool is not None
        conn = pool.getconn()
        try:
            yield conn
        finally:
            if conn.closed:
                pass
            elif conn.pgconn.pipeline_status:  # still in pipeline mode: not fit for anyone else
                conn.close()
            elif conn.info.transaction_status != 0:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()
            pool.putconn(conn)

    def _batch_call(self):
        """The batched call running in this greenlet of a batcher thread, and its batcher (see pg_batch)."""
        batcher = getattr(self._tls, "batcher", None)
        if batcher is None:
            return None, None
        return batcher.current(), batcher

    # ---- the driver's own cursor, for hot paths ---------------------------------------------------

    def sql(self, statement: str) -> str:
        """``statement`` with its ``:name`` parameters in the driver's style (``%(name)s`` for psycopg)."""
        out = self._sql_cache.get(statement)
        if out is None:
            out = statement if self.dialect == "sqlite" else _PARAM.sub(r"%(\1)s", statement)
            self._sql_cache[statement] = out
        return out

    @staticmethod
    def cursor(conn):
        """A DB-API cursor on the connection of ``conn`` (a connection from :meth:`read` or :meth:`write`)."""
        return conn.connection.dbapi_connection.cursor()

    def lookup(self, statement: str, params: dict):
        """The first row of one read-only statement, run outside any transaction: the cheap way to do
        the lookups every request makes (the caller's token, the project)."""
        batch = getattr(self._tls, "batch", None)
        if batch is not None:
            cur = self.cursor(batch)
            cur.execute(self.sql(statement), params)
            return cur.fetchone()
        call, batcher = self._batch_call()
        if call is not None:
            return batcher.send(call, statement, params).fetchone()
        if self._pg_hot is None:  # SQLite: a pooled read connection, in autocommit
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(statement, params)
                row = cur.fetchone()
                cur.close()
                return row
            finally:
                raw.close()
        with self.hot_connection() as conn:
            return Wire(conn).execute(statement, params).fetchone()

    @contextmanager
    def pipeline(self):
        """PostgreSQL: one write transaction whose statements go out in batches (psycopg pipeline mode).

        Yields a :class:`PgPipeline`. ``BEGIN`` travels with the first statements, and the caller
        sends ``COMMIT`` together with its last statement (:meth:`PgPipeline.commit_with`), so the
        transaction costs one round trip per result the caller waits for. If the block raises before
        that, the transaction is rolled back; if it ends without committing, it is committed.

        In a call that :meth:`run` batches (PostgreSQL), the block's statements join the batch's
        transaction instead (a :class:`labelwright.store.pg_batch.BatchTx`, which has the same methods).
        """
        call, batcher = self._batch_call()
        if call is not None:
            with batcher.transaction(call) as btx:
                yield btx
            return
        with self.hot_connection() as conn:  # an autocommit connection: we say BEGIN ourselves
            tx = PgPipeline(self, conn)
            try:
                tx.execute("BEGIN")
                yield tx
                if not tx.committed:
                    tx.commit()
            finally:
                tx.leave()

    # ---- schema ---------------------------------------------------------------------------------

    def migrate(self, target: int | None = None) -> list[int]:
        return _migrate.upgrade(self, target)

    def schema_version(self) -> int:
        with self.read() as conn:
            versions = _migrate.applied_versions(conn)
        return max(versions, default=0)

    def check_ready(self) -> None:
        latest = _migrate.available()[-1][0]
        have = self.schema_version()
        if have != latest:
            raise RuntimeError(f"database is at schema version {have}, this labelwright needs {latest}: "
                               "run `labelwright migrate`")

    def reopened(self, pool_size: int = 2) -> Store:
        """A new store on the same database with the same options and connections of its own: what a
        forked process uses (:mod:`labelwright.io.forked`), never the connections it inherited."""
        return Store(self.url, pool_size=pool_size, **self._options)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._batchers:
            for _ in self._batchers:
                self._pg_jobs.put(None)
            for batcher in self._batchers:
                batcher.join(timeout=30)
            self._batchers = []
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
        if self._pg_hot is not None:
            self._pg_hot.close()
            self._pg_hot = None

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))




def _alive(conn) -> bool:
    """Whether an idle connection may still be used, without a round trip: an idle connection's socket
    has nothing to read unless the server said something unasked, which is nearly always that it ended
    the session (``pg_terminate_backend``, a restart, ``idle_session_timeout``). Then a real check
    decides."""
    if conn.closed:
        return False
    try:
        said = _readable(conn.fileno())
    except (OSError, ValueError, psycopg.Error):
        return False
    if not said:
        return True
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return False
    return True


def _readable(fd: int) -> bool:
    """Whether socket ``fd`` has something to read, without waiting (poll: select fails past fd 1024)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def _check_hot(conn: psycopg.Connection) -> None:
    if not _alive(conn):
        raise psycopg.OperationalError("the database closed this connection")


def _hot_pool(db_url: str, connect_args: dict, cap: int, timeout_ms: int) -> ConnectionPool:
    """The hot pool: autocommit psycopg connections, opened on demand, at most ``cap`` (callers wait for
    one beyond that), each checked as it is handed out (:func:`_alive`) and replaced if the server ended it.
    (A SQLAlchemy pool costs more per checkout than the hot statements do.)"""

    def configure(conn: psycopg.Connection) -> None:
        # Statements on these connections are prepared by labelwright.store.pg_wire; psycopg's own preparing
        # would answer a ROLLBACK with DEALLOCATE ALL, dropping them.
        conn.prepare_threshold = None
        if timeout_ms:
            conn.execute(f"SET statement_timeout = {timeout_ms}")

    return ConnectionPool(
        db_url.replace("postgresql+psycopg://", "postgresql://", 1),
        kwargs={**connect_args, "autocommit": True},
        min_size=0, max_size=cap, open=True, configure=configure, check=_check_hot,
        name="labelwright-hot")


class _Writer(threading.Thread):
    """The SQLite writer: runs queued calls in shared transactions, one commit per batch."""

    def __init__(self, store: Store):
        super().__init__(name="labelwright-writer", daemon=True)
        self.store = store
        self.queue: _queue.SimpleQueue = _queue.SimpleQueue()

    def stop(self) -> None:
        self.queue.put(None)
        self.join(timeout=30)

    def run(self) -> None:
        while (batch := take_batch(self.queue, MAX_BATCH)) is not None:
            self._run_batch(batch)

    def _run_batch(self, batch: list) -> None:
        store = self.store
        results = []
        assert store._write_lock is not None  # SQLite
        try:
            with store._write_lock, store.write_engine.connect() as conn:
                with conn.begin():
                    store._tls.batch = conn
                    try:
                        raw = conn.connection.dbapi_connection
                        for fn, args, kwargs, loop, fut in batch:
                            try:
                                results.append((loop, fut, True, fn(*args, **kwargs)))
                            except Exception as e:  # noqa: BLE001 - handed to the caller
                                if not raw.in_transaction:
                                    raise  # SQLite rolled back the whole transaction
                                results.append((loop, fut, False, e))
                    finally:
                        store._tls.batch = None
        except Exception as e:  # noqa: BLE001 - the transaction failed: nobody's work was kept
            results = [(loop, fut, False, e) for _fn, _args, _kw, loop, fut in batch]
        deliver(results)
