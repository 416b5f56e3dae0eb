"""Adding items to a project: validate every record, then insert all of them in one transaction.

An import is atomic: the first bad record raises a :class:`ValidationError` naming the file, line and
field, the transaction rolls back, and nothing is imported. Items are keyed by an external id (the
schema's ``id_field``, else an ``id`` field, else a hash of the item's content), so importing the same
items again adds nothing.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Iterable

import orjson

from labelwright.errors import ValidationError
from labelwright.services.projects import Project

BATCH = 5_000


def external_id(project: Project, data: dict) -> str:
    key = project.schema.id_field or "id"
    value = data.get(key)
    if value is not None and value != "":
        return str(value)
    return "sha1:" + hashlib.sha1(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def chat_fields(project: Project) -> frozenset[str]:
    """Fields that a CSV cell carries as JSON text."""
    return frozenset(f.name for f in project.schema.fields if f.type == "chat")


def import_items(store, project: Project, records: Iterable[tuple[int, dict]], *, file: str | None = None,
                 on_progress: Callable[[int], None] | None = None) -> dict:
    """Import ``(line, record)`` pairs; return counts of inserted and already-present items."""
    schema = project.schema
    validate = schema.validate_item
    now = time.time()
    inserted = seen = 0
    with store.write() as conn:
        writer = _writer(store, conn, project.id)
        batch: list[tuple[str, str]] = []
        for line, record in records:
            validate(record, file=file, line=line)
            try:
                blob = orjson.dumps(record).decode()
            except TypeError as e:
                raise ValidationError(f"cannot store value: {e}", file=file, line=line) from None
            batch.append((external_id(project, record), blob))
            seen += 1
            if len(batch) >= BATCH:
                inserted += writer(batch, now)
                batch = []
                if on_progress:
                    on_progress(seen)
        if batch:
            inserted += writer(batch, now)
        if on_progress:
            on_progress(seen)
    return {"received": seen, "inserted": inserted, "duplicates": seen - inserted}


def _writer(store, conn, project_id: int):
    if store.dialect == "sqlite":
        sql = ("INSERT INTO items (project_id, external_id, data, n_assigned, n_done, is_open, created_at) "
               "VALUES (?, ?, ?, 0, 0, 1, ?) ON CONFLICT (project_id, external_id) DO NOTHING")
        raw = conn.connection.dbapi_connection

        def write(batch, now):
            before = raw.total_changes
            raw.executemany(sql, [(project_id, ext, data, now) for ext, data in batch])
            return raw.total_changes - before
        return write

    # PostgreSQL: COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING.
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS lw_import (external_id TEXT, data TEXT) ON COMMIT DROP")

    def write(batch, now):
        with raw.cursor() as cur:
            cur.execute("TRUNCATE lw_import")
            with cur.copy("COPY lw_import (external_id, data) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            cur.execute(
                "INSERT INTO items (project_id, external_id, data, n_assigned, n_done, is_open, created_at) "
                "SELECT DISTINCT ON (external_id) %s, external_id, data, 0, 0, 1, %s FROM lw_import "
                "ON CONFLICT (project_id, external_id) DO NOTHING",
                (project_id, now))
            return cur.rowcount
    return write


def add_items(store, project: Project, records: list, source: str = "request") -> dict:
    """Add a batch of item dicts (the API's path); line numbers count from 1 within the batch."""
    if not isinstance(records, list):
        raise ValidationError("expected a list of items", field="items")
    return import_items(store, project, enumerate(records, start=1), file=source)
