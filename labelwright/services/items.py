"""Adding items to a project: check every record first, then insert them all in one transaction.

An import lands whole or not at all. It runs in two steps:

1. **Read and check**, holding no lock and no transaction: every record is validated and serialised, and
   the rows to insert are spooled (in memory, then in a temporary file past 16 MiB, so memory stays flat).
   The first bad record raises a :class:`ValidationError` naming the file, line and field, and nothing
   has been written.
2. **Insert**: one write transaction that only inserts the prepared rows and marks the gold items. It
   commits everything or, on any error, nothing, and a crash leaves nothing behind. On SQLite the rows
   are first staged in a TEMP table of the import's connection (private to it, no lock on the database),
   and the transaction is one ``INSERT ... SELECT`` that SQLite runs itself: the only time the import
   holds the write lock, about a third of what inserting from Python takes (0.3 s per 200,000 items
   here), so other writers (annotators' submissions) wait for that, never for reading, checking or
   staging. On PostgreSQL (no database-wide write lock) the rows go in by ``COPY``.

A record may carry gold answers in the schema's ``gold.field`` column (see :mod:`labelwright.services.gold`):
they are checked, kept out of the item's data, and the item is marked gold (importing an item again with
gold answers marks it too). Items are keyed by an external id (the schema's ``id_field``, else an ``id``
field, else a hash of the item's content), so importing the same items again adds nothing. Within one
import an id may appear once: a repeated id is an error naming both lines, and nothing is imported (two
records with one id are two different things, or one thing twice: only the person can say which). Items
keyed by their content that repeat exactly are kept once and counted as ``repeated``.
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import orjson
import psycopg
from sqlalchemy import Connection, select

from labelwright.errors import NotFound, ValidationError
from labelwright.services import rules
from labelwright.services.gold import split_gold, store_gold
from labelwright.services.projects import Project
from labelwright.store import Store, import_sql, loads
from labelwright.store import tables as t

BATCH = 5_000
SPOOL_BYTES = 16 * 2**20  # prepared rows kept in memory up to this, then in a temporary file


def stored_json(value: Any, *, file: str | None = None, line: int | None = None, field: str | None = None) -> str:
    """``value`` as the JSON text it is stored as; what JSON cannot hold (an integer past 64 bits, a lone
    surrogate: possible in records given as Python objects) is a :class:`ValidationError` saying where."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as e:
        raise ValidationError(f"cannot store value: {e}", file=file, line=line, field=field) from None


def check_external_id(ext: str, *, file: str | None = None, line: int | None = None, field: str | None = None) -> None:
    """Refuse an item id holding NUL: PostgreSQL's text cannot store it, so both databases refuse it alike."""
    if "\x00" in ext:
        raise ValidationError("an item id cannot contain the NUL character", file=file, line=line, field=field)


def external_id(project: Project, data: dict) -> str:
    key = project.schema.id_field or "id"
    value = data.get(key)
    if value is not None and value != "":
        return str(value)
    return "sha1:" + hashlib.sha1(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def chat_fields(project: Project) -> frozenset[str]:
    """Fields that a CSV cell carries as JSON text."""
    return frozenset(f.name for f in project.schema.fields if f.type == "chat")


def import_items(store: Store, project: Project, records: Iterable[tuple[int, dict]], *, file: str | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 place: Callable[[int], str] = "line {}".format) -> dict:
    """Import ``(line, record)`` pairs; return counts of inserted and already-present items.

    ``on_progress(n)`` is called as records are read and checked (the long part), and once more at the end.
    ``place(line)`` names another record in an error message (``line 12``; the API's ``items[11]``).
    """
    now = time.time()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        seen, batches, gold, keys = _prepare(project, records, spool, file=file, on_progress=on_progress)
        spool.seek(0)
        repeated = _repeats(project, keys, spool, file=file, place=place)
        spool.seek(0)
        if store.dialect == "sqlite":
            inserted = _insert_sqlite(store, project, spool, batches, gold, now)
        else:
            inserted = 0
            with store.write() as conn:  # the import's only write: inserting rows already checked
                writer = _writer(store, conn, project.id)
                for _ in range(batches):
                    inserted += writer(pickle.load(spool), now)
                if gold:
                    _mark_gold(conn, project, gold, now)
    if inserted:
        rules.apply_new_items(store, project)  # the project's rules vote on the new items (services/rules.py)
    if on_progress:
        on_progress(seen)
    out = {"received": seen, "inserted": inserted, "duplicates": seen - inserted - repeated, "gold": len(gold)}
    if repeated:  # items without ids, repeated exactly within this import (kept once)
        out["repeated"] = repeated
    return out


class _Keys:
    """What finding repeated ids needs of each record, at 17 bytes a record (not the ids themselves): the
    hash of its external id, its line, and whether the id was given (else it is the content's hash)."""

    def __init__(self):
        self.hashes = array("q")
        self.lines = array("q")
        self.given = array("b")

    def add(self, ext: str, line: int, given: bool) -> None:
        self.hashes.append(hash(ext))
        self.lines.append(line)
        self.given.append(given)


def _repeats(project: Project, keys: _Keys, spool, *, file: str | None, place: Callable[[int], str]) -> int:
    """Raise a :class:`ValidationError` naming both lines if an id given in the records repeats; return
    how many records repeat an earlier one exactly (items without an id, keyed by their content).

    Records whose id hashes collide are candidates; their ids are read back from ``spool`` (the prepared
    batches, in record order) and compared exactly. Costs a sort of the hashes when nothing repeats."""
    if len(keys.hashes) < 2:
        return 0
    h = np.frombuffer(keys.hashes, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    same = h[order][1:] == h[order][:-1]
    if not same.any():
        return 0
    candidates = set(order[1:][same].tolist()) | set(order[:-1][same].tolist())
    first: dict[str, int] = {}  # external id -> the record where it first appears
    repeated = 0
    clash: tuple[int, int, str] | None = None
    index, last = 0, max(candidates)
    while index <= last:
        batch = pickle.load(spool)
        for offset, (ext, _) in enumerate(batch):
            i = index + offset
            if i not in candidates:
                continue
            earlier = first.setdefault(ext, i)
            if earlier == i:
                continue
            if keys.given[i]:
                if clash is None or i < clash[1]:
                    clash = (earlier, i, ext)
            else:
                repeated += 1
        index += len(batch)
    if clash is not None:
        earlier, i, ext = clash
        key = project.schema.id_field or "id"
        raise ValidationError(f"the id {ext!r} is also on {place(keys.lines[earlier])}: an id may appear only once "
                              "in an import (nothing was imported); remove or renumber one of the two",
                              file=file, line=keys.lines[i], field=key)
    return repeated


def _prepare(project: Project, records: Iterable[tuple[int, dict]], spool, *, file: str | None,
             on_progress: Callable[[int], None] | None) -> tuple[int, int, dict[str, str], _Keys]:
    """Check and serialise every record, writing ``(external_id, data)`` batches to ``spool``; return the
    number of records, of batches, the gold answers by external id, and the records' :class:`_Keys`.
    Touches no database."""
    schema = project.schema
    validate = schema.validate_item
    seen = batches = 0
    # The keys that carry gold answers: a set test per record, and a scan for any other "gold.<name>"
    # (an unknown question, which must be an error, not item data) only when a record's keys change.
    gold_keys = {schema.gold.field} | {f"{schema.gold.field}.{q.name}" for q in schema.questions}
    prefix = schema.gold.field + "."
    seen_keys: set = set()
    gold: dict[str, str] = {}
    keys = _Keys()
    id_key = schema.id_field or "id"
    batch: list[tuple[str, str]] = []
    for line, record in records:
        answers = None
        if isinstance(record, dict):
            if record.keys() != seen_keys:
                seen_keys = set(record)
                has_gold = any(k.startswith(prefix) for k in record) or not gold_keys.isdisjoint(record)
            else:
                has_gold = not gold_keys.isdisjoint(record)
            if has_gold:
                record = dict(record)
                answers = split_gold(schema, record, file=file, line=line)
        validate(record, file=file, line=line)
        blob = stored_json(record, file=file, line=line)
        ext = external_id(project, record)
        check_external_id(ext, file=file, line=line, field=id_key)
        given = record.get(id_key)
        keys.add(ext, line, given is not None and given != "")
        batch.append((ext, blob))
        if answers is not None:
            gold[ext] = orjson.dumps(answers).decode()
        seen += 1
        if len(batch) >= BATCH:
            pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
            batches += 1
            batch = []
            if on_progress:
                on_progress(seen)
    if batch:
        pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
        batches += 1
    return seen, batches, gold, keys


def _mark_gold(conn: Connection, project: Project, gold: dict[str, str], now: float) -> None:
    """Mark the imported items that came with gold answers (looked up by external id)."""
    ids: list[tuple[int, str]] = []
    i = t.items
    exts = list(gold)
    for start in range(0, len(exts), 500):
        for r in conn.execute(select(i.c.id, i.c.external_id)
                              .where(i.c.project_id == project.id, i.c.external_id.in_(exts[start:start + 500]))):
            ids.append((r.id, gold[r.external_id]))
    store_gold(conn, project.id, ids, None, now)


def _insert_sqlite(store: Store, project: Project, spool, batches: int, gold: dict[str, str], now: float) -> int:
    """SQLite: stage the checked rows in a TEMP table of one write connection (private to it: no lock on
    the database, so annotators' submissions go on), then copy them into ``items`` in one write
    transaction, one ``INSERT ... SELECT`` run by SQLite itself (about a third of the time of inserting
    the rows from Python, which is how long other writers wait). Ids follow the file's order and the
    first of a repeated external id is kept, as on PostgreSQL."""
    with store.staging() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute(import_sql.SQLITE_DROP_STAGE)
        raw.execute(import_sql.SQLITE_CREATE_STAGE)
        try:
            for _ in range(batches):
                raw.executemany(import_sql.SQLITE_STAGE_ROW, pickle.load(spool))
            with store.write(conn):
                before = raw.total_changes
                raw.execute(import_sql.SQLITE_MOVE_STAGED, (project.id, now))
                inserted = raw.total_changes - before
                if gold:
                    _mark_gold(conn, project, gold, now)
        finally:
            raw.execute(import_sql.SQLITE_DROP_STAGE)
    return inserted


def _writer(store: Store, conn: Connection, project_id: int):
    # PostgreSQL: COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING.
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"the PostgreSQL import needs a psycopg connection, not {type(raw).__name__}")
    with raw.cursor() as cur:
        cur.execute(import_sql.PG_CREATE_STAGE)

    def write(batch, now):
        with raw.cursor() as cur:
            cur.execute(import_sql.PG_EMPTY_STAGE)
            with cur.copy(import_sql.PG_COPY_STAGE) as copy:
                for n, row in enumerate(batch):
                    copy.write_row((n, *row))
            cur.execute(import_sql.PG_MOVE_STAGED, (project_id, now))  # ids in the file's order
            return cur.rowcount
    return write


def add_items(store: Store, project: Project, records: list, source: str = "request") -> dict:
    """Add a batch of item dicts (the API's path); line numbers count from 1 within the batch."""
    if not isinstance(records, list):
        raise ValidationError("expected a list of items", field="items")
    return import_items(store, project, enumerate(records, start=1), file=source,
                        place=lambda n: f"items[{n - 1}]")


def item_detail(store: Store, project: Project, item_id: int) -> dict:
    """One item for its owner: data, counts, gold answers if any, and every annotation with its annotator."""
    i, g, a, u = t.items, t.gold, t.annotations, t.users
    with store.read() as conn:
        row = conn.execute(select(i.c.id, i.c.external_id, i.c.data, i.c.n_done, i.c.target, i.c.is_gold)
                           .where(i.c.id == item_id, i.c.project_id == project.id)).first()
        if row is None:
            raise NotFound(f"no item {item_id} in project {project.slug!r}")
        gold = conn.execute(select(g.c.answers).where(g.c.item_id == item_id)).scalar()
        anns = conn.execute(select(u.c.name, a.c.answers, a.c.active_ms, a.c.revision, a.c.created_at)
                            .select_from(a.join(u, u.c.id == a.c.user_id))
                            .where(a.c.item_id == item_id).order_by(a.c.id)).all()
    return {"id": row.id, "external_id": row.external_id, "data": loads(row.data), "answers_done": row.n_done,
            "answers_wanted": None if row.is_gold else (row.target or project.overlap),
            "gold": loads(gold) if gold is not None else None,
            "annotations": [{"annotator": r.name, "answers": loads(r.answers), "active_ms": r.active_ms,
                             "revision": r.revision, "created_at": r.created_at} for r in anns]}
