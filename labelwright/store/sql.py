"""Small SQLAlchemy Core helpers shared by the services (one way to write SQL that differs by dialect).

Services build their statements with Core (``select``, ``insert``, ``update``, ``delete`` over
:mod:`labelwright.store.tables`); the few constructs whose spelling differs between SQLite and
PostgreSQL are made here.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from labelwright.store import Store


def dialect_of(db: Store | Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``, from a store or one of its connections."""
    return db.dialect if isinstance(db, Store) else db.dialect.name


def upsert(db: Store | Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` into ``table`` that takes ``.on_conflict_do_nothing(...)`` and
    ``.on_conflict_do_update(...)`` (with ``.excluded``), in the dialect of ``db`` (a store or a connection)."""
    if dialect_of(db) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def window_wait(conn: Connection, table: Table, condition: Any, limit: int, window: float, now: float) -> int:
    """Seconds until fewer than ``limit`` rows of ``table`` matching ``condition`` have a ``created_at``
    within the last ``window`` seconds (0: already so): a sliding-window rate limit kept in a table, which
    every server process shares (sign-in failures, code runs). The ``limit``-th newest row is the one
    whose leaving the window lets the next attempt through."""
    created = table.c.created_at
    oldest = conn.execute(select(created).where(condition, created > now - window)
                          .order_by(created.desc()).limit(1).offset(limit - 1)).scalar()
    return 0 if oldest is None else max(1, math.ceil(oldest + window - now))
