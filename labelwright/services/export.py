"""Export a project's items with every annotation and a majority vote, streamed in chunks.

Items are read in id order, ``CHUNK`` at a time, each chunk with its annotations, so memory stays flat
however large the project is. Three formats share one reader:

* ``jsonl``: one line per item::

    {"item_id": 7, "external_id": "01_000", "data": {...},
     "annotations": [{"annotator": "ana", "answers": {...}, "active_ms": 5230,
                      "created_at": "2026-11-25T18:00:00.123+00:00", "updated_at": "...", "revision": 1}],
     "majority": {"spam": {"label": "spam", "agreement": 0.6667, "n": 3}}}

* ``csv`` and ``parquet``: flat, one row per annotation (an item with no annotation has one row with
  empty annotation columns): ``item_id, external_id, data.<field>..., annotator, active_ms, created_at,
  updated_at, revision, answer.<question>..., majority.<question>..., agreement.<question>...``.
  Lists and objects (chat turns, multiple choices, pairwise answers, rankings) are JSON text.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Iterator

import orjson

from labelwright.consensus import majority
from labelwright.services.projects import Project

FORMATS = ("jsonl", "csv", "parquet")
CHUNK = 5_000
_UTC = timezone.utc


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, _UTC).isoformat(timespec="milliseconds")


def _cursor_rows(conn, sql: str, params: tuple, dialect: str):
    if dialect == "postgresql":
        sql = sql.replace("?", "%s")
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def iter_items(store, project: Project, chunk: int = CHUNK) -> Iterator[tuple[int, str, str, list[dict]]]:
    """``(item_id, external_id, data_json, annotations)`` for every item, in id order."""
    last = 0
    with store.read() as conn:
        while True:
            items = _cursor_rows(conn, "SELECT id, external_id, data FROM items WHERE project_id = ? AND id > ? "
                                       "ORDER BY id LIMIT ?", (project.id, last, chunk), store.dialect)
            if not items:
                return
            lo, hi = items[0][0], items[-1][0]
            rows = _cursor_rows(
                conn,
                "SELECT a.item_id, u.name, a.answers, a.active_ms, a.created_at, a.updated_at, a.revision "
                "FROM annotations a JOIN users u ON u.id = a.user_id "
                "WHERE a.project_id = ? AND a.item_id >= ? AND a.item_id <= ? ORDER BY a.item_id, a.id",
                (project.id, lo, hi), store.dialect)
            by_item: dict[int, list[dict]] = {}
            for item_id, name, answers, ms, created, updated, rev in rows:
                by_item.setdefault(item_id, []).append({
                    "annotator": name, "answers": orjson.loads(answers), "active_ms": ms,
                    "created_at": iso(created), "updated_at": iso(updated), "revision": rev})
            for item_id, ext, data in items:
                yield item_id, ext, data, by_item.get(item_id, [])
            last = hi


# ---- JSONL -------------------------------------------------------------------------------------


def jsonl_lines(store, project: Project) -> Iterator[bytes]:
    schema = project.schema
    for item_id, ext, data, anns in iter_items(store, project):
        # The stored item JSON is spliced in as-is: no parse and re-encode per item.
        head = orjson.dumps({"item_id": item_id, "external_id": ext})[:-1]
        tail = orjson.dumps({"annotations": anns, "majority": majority(schema, [a["answers"] for a in anns])})[1:]
        yield head + b',"data":' + data.encode() + b"," + tail + b"\n"


# ---- flat rows (CSV, Parquet) ----------------------------------------------------------------


def flat_columns(project: Project) -> list[str]:
    s = project.schema
    cols = ["item_id", "external_id"] + [f"data.{f.name}" for f in s.fields]
    cols += ["annotator", "active_ms", "created_at", "updated_at", "revision"]
    cols += [f"answer.{q.name}" for q in s.questions]
    cols += [f"majority.{q.name}" for q in s.questions] + [f"agreement.{q.name}" for q in s.questions]
    return cols


def _cell(v):
    if v is None or isinstance(v, (str, int, float)):
        return v
    return orjson.dumps(v).decode()


def flat_rows(store, project: Project) -> Iterator[list]:
    s = project.schema
    fields = [f.name for f in s.fields]
    qs = [q.name for q in s.questions]
    for item_id, ext, data, anns in iter_items(store, project):
        d = orjson.loads(data)
        base = [item_id, ext] + [_cell(d.get(f)) for f in fields]
        maj = majority(s, [a["answers"] for a in anns])
        tail = [_cell(maj[q]["label"]) if q in maj else None for q in qs]
        tail += [maj[q]["agreement"] if q in maj else None for q in qs]
        if not anns:
            yield base + [None] * 5 + [None] * len(qs) + tail
        for a in anns:
            ans = a["answers"]
            yield (base + [a["annotator"], a["active_ms"], a["created_at"], a["updated_at"], a["revision"]]
                   + [_cell(ans.get(q)) for q in qs] + tail)


def csv_chunks(store, project: Project, rows_per_chunk: int = 2_000) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(flat_columns(project))
    n = 0
    for row in flat_rows(store, project):
        w.writerow(row)
        n += 1
        if n % rows_per_chunk == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _arrow_schema(project: Project):
    import pyarrow as pa

    types = {"item_id": pa.int64(), "active_ms": pa.int64(), "revision": pa.int64()}
    fields = []
    for c in flat_columns(project):
        if c.startswith("agreement."):
            fields.append(pa.field(c, pa.float64()))
        else:
            fields.append(pa.field(c, types.get(c, pa.string())))
    return pa.schema(fields)


def write_parquet(store, project: Project, sink, rows_per_group: int = 50_000) -> int:
    """Write the flat rows to ``sink`` (a path or binary file) in row groups; return rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(project)
    names = schema.names
    string_cols = {i for i, f in enumerate(schema) if pa.types.is_string(f.type)}
    total = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        cols: list[list] = [[] for _ in names]

        def flush():
            writer.write_table(pa.table({n: cols[i] for i, n in enumerate(names)}, schema=schema))
            for c in cols:
                c.clear()

        for row in flat_rows(store, project):
            for i, v in enumerate(row):
                if i in string_cols and v is not None and not isinstance(v, str):
                    v = str(v)
                cols[i].append(v)
            total += 1
            if len(cols[0]) >= rows_per_group:
                flush()
        if cols[0] or total == 0:
            flush()
    return total


def write_export(store, project: Project, fmt: str, path) -> None:
    """Write an export file (the CLI's path). Written to ``path + '.part'`` and renamed when complete."""
    import os

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")
    tmp = f"{path}.part"
    try:
        if fmt == "parquet":
            write_parquet(store, project, tmp)
        else:
            chunks = jsonl_lines(store, project) if fmt == "jsonl" else csv_chunks(store, project)
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
