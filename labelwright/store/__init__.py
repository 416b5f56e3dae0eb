"""The store: the only layer that talks to the database.

:class:`Store` owns a SQLAlchemy engine for SQLite (WAL mode, one writer at a time) or PostgreSQL
(psycopg 3). Every write goes through :meth:`Store.write`, a transaction that on SQLite starts with
``BEGIN IMMEDIATE`` under a process-wide lock, so writers queue instead of failing with "database is
locked"; reads go through :meth:`Store.read`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from labelwright.store import migrate as _migrate


def dumps(value) -> str:
    return orjson.dumps(value).decode()


loads = orjson.loads


class Store:
    def __init__(self, db_url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 20,
                 pg_schema: str | None = None):
        self.url = db_url
        if db_url.startswith("sqlite"):
            self.dialect = "sqlite"
            self._write_lock = threading.Lock()
            self.engine = self._sqlite_engine(db_url, "DEFERRED", sqlite_synchronous, pool_size)
            self.write_engine = self._sqlite_engine(db_url, "IMMEDIATE", sqlite_synchronous, pool_size)
        elif db_url.startswith("postgresql"):
            self.dialect = "postgresql"
            self._write_lock = None
            connect_args = {}
            if pg_schema:
                connect_args["options"] = f"-c search_path={pg_schema}"
            self.engine = create_engine(db_url, pool_size=pool_size, max_overflow=pool_size,
                                        pool_pre_ping=False, connect_args=connect_args)
            self.write_engine = self.engine
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
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def write(self):
        """One write transaction; commits on success (durably: the commit returns after fsync)."""
        if self._write_lock is not None:
            with self._write_lock:
                with self.write_engine.connect() as conn:
                    with conn.begin():
                        yield conn
        else:
            with self.write_engine.connect() as conn:
                with conn.begin():
                    yield conn

    # ---- schema ---------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        return _migrate.upgrade(self)

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

    def close(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))
