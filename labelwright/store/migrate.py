"""Numbered migrations: ``migrations/NNNN_name.sql``, applied in order, each in one transaction.

Each file is plain SQL with three placeholders filled in per dialect, so one file serves SQLite and
PostgreSQL. Applied versions are recorded in ``schema_migrations``.
"""

from __future__ import annotations

import re
import time
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import text

from labelwright.store import locks

if TYPE_CHECKING:  # the Store imports this module
    from labelwright.store import Store

DIALECT_TYPES = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL", "bigint": "INTEGER", "blob": "BLOB"},
    "postgresql": {"pk": "BIGSERIAL PRIMARY KEY", "float": "DOUBLE PRECISION", "bigint": "BIGINT",
                   "blob": "BYTEA"},
}
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file shipped in the package, in order."""
    out = []
    for entry in resources.files("labelwright.store.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return out


def render(sql: str, dialect: str) -> list[str]:
    for key, value in DIALECT_TYPES[dialect].items():
        sql = sql.replace("{" + key + "}", value)
    sql = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in sql.split(";") if s.strip()]


def applied_versions(conn) -> list[int]:
    conn.execute(text(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    ))
    return [r[0] for r in conn.execute(text("SELECT version FROM schema_migrations ORDER BY version"))]


def upgrade(store: Store, target: int | None = None) -> list[int]:
    """Apply every pending migration up to ``target``; return the versions applied."""
    done = []
    for version, name, sql in available():
        if target is not None and version > target:
            break
        with store.write() as conn:
            if store.dialect == "postgresql":
                # Two server processes starting at once must not both migrate.
                conn.execute(text(f"SELECT pg_advisory_xact_lock({locks.MIGRATE}, 0)"))
            if version in applied_versions(conn):
                continue
            for statement in render(sql, store.dialect):
                conn.exec_driver_sql(statement)
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": version, "n": name, "t": time.time()})
            done.append(version)
    return done
