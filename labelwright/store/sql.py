"""Small SQLAlchemy Core helpers shared by the services (one way to write SQL that differs by dialect).

Services build their statements with Core (``select``, ``insert``, ``update``, ``delete`` over
:mod:`labelwright.store.tables`); the few constructs whose spelling differs between SQLite and
PostgreSQL are made here.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
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
