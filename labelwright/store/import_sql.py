"""The bulk import's statements (:func:`labelwright.services.items.import_items`), hand-written for each
database because they stage rows in a temporary table through the driver itself: SQLite's ``executemany``
and PostgreSQL's ``COPY``, which SQLAlchemy Core does not express, are most of a large import's time.

Parameters are in the driver's own style (``?`` for sqlite3, ``%s`` for psycopg): these statements run
on the raw DB-API connection, never through :meth:`labelwright.store.Store.sql`.
"""

from __future__ import annotations

# ---- SQLite: a temporary table filled with executemany, then one INSERT ... SELECT -------------------
SQLITE_DROP_STAGE = "DROP TABLE IF EXISTS temp.lw_import"
SQLITE_CREATE_STAGE = ("CREATE TEMP TABLE lw_import (n INTEGER PRIMARY KEY, external_id TEXT NOT NULL, "
                       "data TEXT NOT NULL)")
SQLITE_STAGE_ROW = "INSERT INTO temp.lw_import (external_id, data) VALUES (?, ?)"
# (project_id, now). "WHERE true" lets SQLite tell the upsert's ON CONFLICT from a join's ON.
SQLITE_MOVE_STAGED = ("INSERT INTO items (project_id, external_id, data, n_assigned, n_done, is_open, created_at) "
                      "SELECT ?, external_id, data, 0, 0, 1, ? FROM temp.lw_import WHERE true ORDER BY n "
                      "ON CONFLICT (project_id, external_id) DO NOTHING")

# ---- PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ------------------------------
PG_CREATE_STAGE = "CREATE TEMP TABLE IF NOT EXISTS lw_import (n INTEGER, external_id TEXT, data TEXT) ON COMMIT DROP"
PG_EMPTY_STAGE = "TRUNCATE lw_import"
PG_COPY_STAGE = "COPY lw_import (n, external_id, data) FROM STDIN"
# (project_id, now). Ids follow the file's order (the queue serves items in import order): the first of
# each external id is kept, and rows are inserted in their order in the batch.
PG_MOVE_STAGED = ("INSERT INTO items (project_id, external_id, data, n_assigned, n_done, is_open, created_at) "
                  "SELECT %s, d.external_id, d.data, 0, 0, 1, %s FROM (SELECT DISTINCT ON (external_id) n, "
                  "external_id, data FROM lw_import ORDER BY external_id, n) d ORDER BY d.n "
                  "ON CONFLICT (project_id, external_id) DO NOTHING")
