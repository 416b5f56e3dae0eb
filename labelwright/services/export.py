"""Export a project's items with every annotation, a majority vote and the aggregated label, streamed.

First the project's aggregated labels are computed (:mod:`labelwright.services.labels`: truth
inference needs every answer at once). Then items are read in id order, ``CHUNK`` at a time, each chunk
with its annotations, so the export itself adds no memory however large the project is. Three formats
share one reader; JSONL formats item by item (:func:`iter_items`), CSV and Parquet a chunk at a time as
columns (:func:`flat_chunks`: an item's cells are computed once and repeated over its rows with numpy,
and pyarrow takes whole columns). On the command line the chunks are made by several forked processes
(``workers``, :func:`_pieces`, :mod:`labelwright.io.forked`) and written in order: the same bytes, in
about two thirds of the time on two cores:

* ``jsonl``: one line per item::

    {"item_id": 7, "external_id": "01_000", "data": {...},
     "annotations": [{"annotator": "ana", "answers": {...}, "active_ms": 5230,
                      "created_at": "2026-11-25T18:00:00.123+00:00", "updated_at": "...", "revision": 1,
                      "review": "pending"}],
     "majority": {"spam": {"label": "spam", "agreement": 0.6667, "n": 3}},
     "aggregate": {"spam": {"label": "spam", "confidence": 0.9731, "method": "DawidSkene",
                            "source": "people"}},
     "gold": false}

* ``csv`` and ``parquet``: flat, one row per annotation (an item with no annotation has one row with
  empty annotation columns): ``item_id, external_id, data.<field>..., meta.<key>..., gold, annotator,
  active_ms, created_at, updated_at, revision, review, answer.<question>..., majority.<question>...,
  agreement.<question>..., label.<question>..., confidence.<question>..., method.<question>...,
  source.<question>...``. Lists and objects (chat turns, multiple choices, pairwise answers, rankings) are
  JSON text; an ``answer.<question>`` cell is what the question's type writes
  (:meth:`labelwright.questions.QuestionType.export_cell`, JSON text for lists and objects by default).
  ``meta.<key>``: the item's other keys (metadata the schema does not show), one column per key
  found in the project's items (:func:`metadata_keys`), as text: a string as it is, anything else as its
  JSON text, so nothing the JSONL keeps is lost.

``aggregate`` / ``label.*``: see :mod:`labelwright.services.labels` (gold items carry their gold answer
with method ``gold``; ``gold`` says whether the item is one). ``source`` is ``people`` or, for an item the
assistant labelled (auto-labelling), ``machine`` with ``method`` naming the model version. Gold answers
appear only here, in the owner's export.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from operator import methodcaller
from pathlib import Path

import numpy as np
import orjson

from labelwright.consensus import majority
from labelwright.errors import ValidationError
from labelwright.io.csv_block import csv_block
from labelwright.io.forked import aside, in_order
from labelwright.questions.base import QuestionType
from labelwright.services.labels import GOLD_METHOD, PEOPLE, LabelWalker, QuestionLabels, project_labels
from labelwright.services.projects import Project
from labelwright.store import Store

FORMATS = ("jsonl", "csv", "parquet")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
              ".pq": "parquet"}
CHUNK = 5_000
_UTC = timezone.utc


def format_for(path, fmt: str | None = None) -> str:
    """The export format for the file ``path``: from its extension, or ``fmt`` (``--format``) for a name
    without a known one. A ``fmt`` that contradicts the extension is refused (``x.parquet`` never gets
    JSONL in it), and so is a name that says nothing without ``fmt``."""
    suffix = Path(path).suffix.lower()
    named = EXTENSIONS.get(suffix)
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", file=str(path))
    if named and fmt and fmt != named:
        raise ValidationError(f"the name ends in {suffix} but --format is {fmt}: write {fmt} to a file named "
                              f"*.{fmt}, or leave out --format to write {named}", file=str(path))
    if named:
        return named
    if fmt:
        return fmt
    shown = repr(suffix) if suffix else "no extension"
    raise ValidationError(f"cannot tell the format from {shown}: name the file .jsonl, .csv or .parquet, or "
                          "pass --format jsonl|csv|parquet", file=str(path))


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, _UTC).isoformat(timespec="milliseconds")


def iso_many(timestamps: list[float]) -> list[str]:
    """``[iso(t) for t in timestamps]``, character for character, three times faster (numpy)."""
    if not timestamps:
        return []
    # What datetime.fromtimestamp does: split off the fraction, round it to microseconds (half to
    # even), carry a full second; isoformat(timespec="milliseconds") then truncates to milliseconds.
    frac, whole = np.modf(np.asarray(timestamps, dtype=np.float64))
    us = np.round(frac * 1e6)
    carry = us >= 1e6
    whole = whole + carry
    us = np.where(carry, us - 1e6, us)
    seconds = np.datetime_as_string(whole.astype(np.int64).astype("datetime64[s]"), unit="s").tolist()
    millis = (us // 1000).astype(np.int64).tolist()
    return [f"{d}.{m:03d}+00:00" for d, m in zip(seconds, millis)]


def _cursor_rows(conn, sql: str, params: tuple, dialect: str):
    if dialect == "postgresql":
        sql = sql.replace("?", "%s")
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


# Each chunk must cost a chunk: walk the primary key from the last id (and annotations by item id).
# SQLite's planner prefers any index on project_id, which would sort the whole project for every
# chunk (quadratic in the project's size); ``+column`` keeps it off those indexes. PostgreSQL's
# planner gets it right from its statistics, and the ``+`` would only blind it.
_PLUS = {"sqlite": "+", "postgresql": ""}
_ITEMS_SQL = {d: f"SELECT id, external_id, data, is_gold FROM items WHERE id > ? AND {plus}project_id = ? "
                 "ORDER BY id LIMIT ?" for d, plus in _PLUS.items()}


_RANGE_SQL = {d: f"SELECT id, external_id, data, is_gold FROM items WHERE id > ? AND id <= ? AND {plus}project_id = ? "
                 "ORDER BY id" for d, plus in _PLUS.items()}
_ANNOTATIONS_SQL = {d: "SELECT a.item_id, u.name, a.answers, a.active_ms, a.created_at, a.updated_at, a.revision, "
                       "a.review_status, a.reviewed_answers, a.reviewed_revision "
                       "FROM annotations a JOIN users u ON u.id = a.user_id "
                       f"WHERE a.item_id >= ? AND a.item_id <= ? AND {plus}a.project_id = ? "
                       "ORDER BY a.item_id, a.id" for d, plus in _PLUS.items()}


def _annotation_rows(conn, dialect: str, project_id: int, items: list) -> list:
    """The annotation rows of ``items`` (a chunk's item rows, in id order)."""
    return _cursor_rows(conn, _ANNOTATIONS_SQL[dialect], (items[0][0], items[-1][0], project_id), dialect)


def _read_chunks(store: Store, project: Project, chunk: int) -> Iterator[tuple[list, list]]:
    """``(items, annotation rows)`` a chunk at a time, in id order, all from one read transaction."""
    last = 0
    with store.read() as conn:
        while True:
            items = _cursor_rows(conn, _ITEMS_SQL[store.dialect], (last, project.id, chunk), store.dialect)
            if not items:
                return
            yield items, _annotation_rows(conn, store.dialect, project.id, items)
            last = items[-1][0]


def _chunk_ranges(store: Store, project: Project, chunk: int) -> list[tuple[int, int]]:
    """The item id ranges ``(after, up to)`` of the project's chunks of ``chunk`` items (the chunks
    :func:`_read_chunks` reads), from one pass over the project's item ids."""
    with store.read() as conn:
        ids = _cursor_rows(conn, _IDS_SQL[store.dialect], (project.id,), store.dialect)
    ends = [row[0] for row in ids[chunk - 1::chunk]]
    if ids and (not ends or ends[-1] != ids[-1][0]):
        ends.append(ids[-1][0])
    return list(zip([0, *ends[:-1]], ends))


_IDS_SQL = {d: f"SELECT id FROM items WHERE {plus}project_id = ? ORDER BY id" for d, plus in _PLUS.items()}


def _read_range(store: Store, project: Project, bounds: tuple[int, int]) -> tuple[list, list]:
    """One chunk's ``(items, annotation rows)``: the items with ``after < id <= up to``, in one read
    transaction."""
    with store.read() as conn:
        items = _cursor_rows(conn, _RANGE_SQL[store.dialect], (*bounds, project.id), store.dialect)
        return items, (_annotation_rows(conn, store.dialect, project.id, items) if items else [])


def _pieces(store: Store, project: Project, piece, workers: int) -> Iterator[bytes]:
    """``piece(items, annotation rows)`` (bytes) for each chunk of the project, in id order: in this process
    (reading ahead in a thread) when ``workers`` is 1, else by ``workers`` forked processes
    (:func:`labelwright.io.forked.in_order`), each reading its chunks on database connections of its own.
    What ``piece`` holds (the project, its labels) is computed before the fork, once, and shared."""
    chunk = CHUNK
    ranges = _chunk_ranges(store, project, chunk) if workers > 1 else []
    if len(ranges) < 2:  # one chunk: nothing to share out
        for items, rows in _prefetched(_read_chunks(store, project, chunk)):
            yield piece(items, rows)
        return
    own, start, stop = _store_per_process(store)

    def make(j: int) -> bytes:
        return piece(*_read_range(own["store"], project, ranges[j]))

    yield from in_order(len(ranges), make, workers, start, stop)


def _store_per_process(store: Store) -> tuple[dict, Callable[[], None], Callable[[], None]]:
    """``(own, start, stop)`` for :mod:`labelwright.io.forked`: ``start`` opens a forked process's own
    connections as ``own["store"]``, ``stop`` closes them as it leaves (never the parent's)."""
    own: dict = {}

    def start() -> None:
        own["store"] = store.reopened(pool_size=1)

    def stop() -> None:
        if "store" in own:
            own.pop("store").close()

    return own, start, stop


def _prefetched(chunks: Iterator, depth: int = 2) -> Iterator:
    """``chunks``, read ahead in a thread: the next chunk's queries run while this one is formatted
    (the database driver waits without the GIL, so the two overlap on two cores)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)
        finally:
            close = getattr(chunks, "close", None)  # a generator's: its open transaction ends here
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="labelwright-export-reader", daemon=True)
    thread.start()
    try:
        while True:
            c = q.get()
            if c is done:
                return
            if isinstance(c, BaseException):
                raise c
            yield c
    finally:
        stop.set()
        thread.join()


def iter_items(store: Store, project: Project,
               chunk: int = CHUNK) -> Iterator[tuple[int, str, str, Sequence[tuple], tuple, int]]:
    """``(item_id, external_id, data_json, annotations, answers_key, is_gold)`` for every item, in id order.

    Each annotation is a tuple ``(annotator, active_ms, created_at, updated_at, revision, review,
    answers, reviewed_answers_json, reviewed_revision)`` (times as ISO text, answers parsed).
    ``answers_key`` is the tuple of what the vote counts, as stored JSON (a fix instead of the answers,
    None for a rejection): the key under which :class:`_Majority` remembers the vote.
    """
    for items, rows in _prefetched(_read_chunks(store, project, chunk)):
        yield from _grouped(items, rows)


def _grouped(items: list, rows: list) -> Iterator[tuple[int, str, str, Sequence[tuple], tuple, int]]:
    """One chunk's items with their annotations, as :func:`iter_items` gives them."""
    by_item: dict[int, list] = {}
    keys: dict[int, list] = {}
    created_isos = iso_many([r[4] for r in rows])
    for (item_id, name, answers, ms, created, updated, rev, status, fixed, seen), created_iso in zip(
            rows, created_isos):
        by_item.setdefault(item_id, []).append(
            (name, ms, created_iso, created_iso if updated == created else iso(updated), rev, status,
             orjson.loads(answers), fixed, seen))
        keys.setdefault(item_id, []).append(fixed or answers if status not in _NOT_VOTES else None)
    for item_id, ext, data, is_gold in items:
        anns = by_item.get(item_id)
        yield item_id, ext, data, anns or (), tuple(keys[item_id]) if anns else (), is_gold


# what the plain majority leaves out: rejected answers, and rules' votes (labelwright.services.rules)
_NOT_VOTES = ("rejected", "rule")


class _Majority:
    """``majority(schema, answers)`` remembered by the answers' stored JSON: it is a pure function of
    them, and labels repeat (a yes/no question with three annotators has eight possible answer lists),
    so most items of a large export reuse an earlier result. At most ``size`` results are kept."""

    def __init__(self, schema, size: int = 4096):
        self.schema = schema
        self.size = size
        self.memo: dict[tuple, dict] = {}

    def __call__(self, anns, key: tuple) -> dict:
        """The vote over :func:`iter_items`' annotations: a fix counts instead of the answers, a
        rejected annotation not at all."""
        if not anns:
            return {}
        out = self.memo.get(key)
        if out is None:
            out = majority(self.schema, [orjson.loads(fixed) if fixed is not None else ans
                                         for _, _, _, _, _, status, ans, fixed, _ in anns
                                         if status not in _NOT_VOTES])
            if len(self.memo) >= self.size:
                self.memo.clear()
            self.memo[key] = out
        return out


def _annotation(a: tuple) -> dict:
    """One annotation of :func:`iter_items` as the JSONL writes it."""
    name, ms, created, updated, rev, status, answers, fixed, seen = a
    out = {"annotator": name, "answers": answers, "active_ms": ms, "created_at": created, "updated_at": updated,
           "revision": rev, "review": status}
    if seen is not None:  # the revision the reviewer decided on (reviewed work is frozen: the current one)
        out["reviewed_revision"] = seen
    if fixed is not None:
        out["reviewed_answers"] = orjson.loads(fixed)
    return out


# ---- JSONL -------------------------------------------------------------------------------------

_UNTOUCHED = orjson.dumps({"annotations": [], "majority": {}, "aggregate": {}, "gold": False})[1:]


def jsonl_lines(store: Store, project: Project, lines_per_chunk: int = 256, workers: int = 1) -> Iterator[bytes]:
    """The JSONL export, a few hundred lines per chunk (one write, or one streamed message, each); with
    ``workers`` > 1 (the CLI: it forks, see :func:`_pieces`) a chunk of items per piece."""
    lines_of = _JsonlLines(store, project)
    if workers > 1:
        yield from _pieces(store, project, lambda items, rows: b"".join(lines_of(items, rows)), workers)
        return
    lines: list[bytes] = []
    for items, rows in _prefetched(_read_chunks(store, project, CHUNK)):
        lines += lines_of(items, rows)
        while len(lines) >= lines_per_chunk:
            yield b"".join(lines[:lines_per_chunk])
            del lines[:lines_per_chunk]
    if lines:
        yield b"".join(lines)


class _JsonlLines:
    """A chunk's JSONL lines (each ending in a newline), from its item and annotation rows."""

    def __init__(self, store: Store, project: Project):
        self.vote = _Majority(project.schema)
        self.labels_of = LabelWalker(project_labels(store, project))

    def __call__(self, items: list, rows: list) -> list[bytes]:
        out = []
        for item_id, ext, data, anns, key, is_gold in _grouped(items, rows):
            # The stored item JSON is spliced in as-is: no parse and re-encode per item.
            head = orjson.dumps({"item_id": item_id, "external_id": ext})[:-1]
            aggregate = self.labels_of(item_id)
            if anns or aggregate or is_gold:
                tail = orjson.dumps({"annotations": [_annotation(a) for a in anns],
                                     "majority": self.vote(anns, key), "aggregate": aggregate,
                                     "gold": bool(is_gold)})[1:]
            else:
                tail = _UNTOUCHED  # most items of a large project: nothing to encode
            out.append(head + b',"data":' + data.encode() + b"," + tail + b"\n")
        return out


# ---- flat rows (CSV, Parquet) ----------------------------------------------------------------


_META_SQL = {
    "sqlite": "SELECT DISTINCT j.key FROM items i, json_each(i.data) j WHERE i.project_id = ?",
    "postgresql": "SELECT DISTINCT jsonb_object_keys(data::jsonb) FROM items WHERE project_id = ?",
}


def metadata_keys(store: Store, project: Project) -> list[str]:
    """The keys of the project's items that are not display fields (metadata: an ``id``, a source, a
    score...), sorted: the ``meta.<key>`` columns of the flat export. One pass over the items' data, in the
    database."""
    shown = {f.name for f in project.schema.fields}
    with store.read() as conn:
        rows = _cursor_rows(conn, _META_SQL[store.dialect], (project.id,), store.dialect)
    return sorted(k for (k,) in rows if k not in shown)


def _meta_cell(v):
    if v is None or type(v) is str:
        return v
    return orjson.dumps(v).decode()


def flat_columns(project: Project, meta: Sequence[str] = ()) -> list[str]:
    s = project.schema
    cols = ["item_id", "external_id"] + [f"data.{f.name}" for f in s.fields] + [f"meta.{k}" for k in meta]
    cols += ["gold"]
    cols += ["annotator", "active_ms", "created_at", "updated_at", "revision", "review"]
    cols += [f"answer.{q.name}" for q in s.questions]
    cols += [f"majority.{q.name}" for q in s.questions] + [f"agreement.{q.name}" for q in s.questions]
    cols += [f"{part}.{q.name}" for part in ("label", "confidence", "method", "source")
             for q in s.questions]
    return cols


def _cell(v):
    if v is None or isinstance(v, (str, int, float)):
        return v
    return orjson.dumps(v).decode()


def _text_cell(v):
    """An item field's cell: text as it is (the common case, tested first), anything else as :func:`_cell`."""
    return v if v is None or type(v) is str else _cell(v)


# ---- the flat export, a chunk of items at a time as columns -------------------------------------
#
# Each chunk of items becomes one list per column (the order of :func:`flat_columns`): what belongs to an
# item (its fields, its votes and labels) is computed once per item and repeated over its annotations'
# rows with numpy; what belongs to an annotation is computed once per annotation and scattered into the
# rows that have one. The CSV writer and pyarrow take whole columns, so no row is built in Python.


def _objects(values, n: int) -> np.ndarray:
    """``values`` (``n`` Python objects) as a numpy object array, with no guessing of types."""
    return np.fromiter(values, dtype=object, count=n)


_TEXT = {str, type(None)}
_SCALARS = {str, int, float, bool, type(None)}


def _values(dicts: list[dict], key: str) -> list:
    return list(map(methodcaller("get", key), dicts))


def _cells(values: list, cell, kept: set = _TEXT) -> list:
    """``[cell(v) for v in values]`` where ``cell`` keeps the types ``kept`` as they are: the column as it
    is when every value is one of them (nearly always), without a call per value."""
    if set(map(type, values)) <= kept:
        return values
    return [cell(v) for v in values]


def _answer_cells(q, answers: list[dict]) -> list:
    """The ``answer.<question>`` cells of ``answers``: what ``q.export_cell`` writes, taken in one pass
    when ``q`` keeps the base class's rule (scalars as they are)."""
    values = _values(answers, q.name)
    if type(q).export_cell is QuestionType.export_cell:
        return _cells(values, q.export_cell, _SCALARS)
    return [q.export_cell(v) for v in values]


def _label_columns(ql: QuestionLabels | None, ids: np.ndarray) -> tuple[list, list, list, list]:
    """One question's ``label``, ``confidence``, ``method`` and ``source`` cells for the items ``ids`` (sorted):
    the values of :meth:`labelwright.services.labels.QuestionLabels.get`, found with one ``searchsorted``
    over the labels of the chunk's id range instead of a lookup per item."""
    n = len(ids)
    none = [None] * n
    if ql is None or not len(ql.tasks) or not n:
        return none, none, none, none
    lo = int(np.searchsorted(ql.tasks, ids[0], side="left"))
    hi = int(np.searchsorted(ql.tasks, ids[-1], side="right"))
    if lo == hi:
        return none, none, none, none
    tasks = ql.tasks[lo:hi]
    pos = np.minimum(np.searchsorted(tasks, ids), len(tasks) - 1)
    hit = tasks[pos] == ids
    rows = np.flatnonzero(hit)
    idx = (lo + pos[hit]).tolist()
    raw = ql.confidence[lo + pos[hit]].tolist()
    # _entry's rules: a special label (machine, check, audit) keeps its confidence; NaN marks gold.
    conf = [1.0 if c != c else c for c in raw]
    method = [GOLD_METHOD if c != c else ql.method for c in raw]
    source = [PEOPLE] * len(raw)
    if ql.special:
        for j, item_id in enumerate(ids[rows].tolist()):
            got = ql.special.get(item_id)
            if got is not None:
                conf[j], (method[j], source[j]) = raw[j], got
    values = ql.values
    out = []
    for cells in ([_cell(values[i]) for i in idx], conf, method, source):
        col = np.full(n, None, dtype=object)
        col[rows] = _objects(cells, len(cells))
        out.append(col.tolist())
    return out[0], out[1], out[2], out[3]


class _Votes:
    """The ``majority.<question>`` and ``agreement.<question>`` cells of an item, remembered by what the
    vote counts (the stored JSON of each annotation's fix or answers, None for a rejection or a rule's
    vote, see ``_NOT_VOTES``): the vote is a
    pure function of it, and most items of a large export repeat an earlier one. At most ``size`` kept."""

    def __init__(self, schema, size: int = 4096):
        self.schema = schema
        self.names = [q.name for q in schema.questions]
        self.size = size
        self.memo: dict[tuple, tuple] = {}

    def __call__(self, key: tuple) -> tuple:
        out = self.memo.get(key)
        if out is None:
            maj = majority(self.schema, [orjson.loads(k) for k in key if k is not None])
            out = tuple([_cell(maj[q]["label"]) if q in maj else None for q in self.names]
                        + [maj[q]["agreement"] if q in maj else None for q in self.names])
            if len(self.memo) >= self.size:
                self.memo.clear()
            self.memo[key] = out
        return out


def flat_chunks(store: Store, project: Project, meta: Sequence[str] = (), chunk: int = CHUNK) -> Iterator[list[list]]:
    """The flat export a chunk of items at a time, as columns (lists, in the order of :func:`flat_columns`;
    ``meta``: the metadata keys)."""
    columns_of = _FlatColumns(project, meta, project_labels(store, project))
    for items, rows in _prefetched(_read_chunks(store, project, chunk)):
        yield columns_of(items, rows)


class _FlatColumns:
    """A chunk's flat columns (lists, in the order of :func:`flat_columns`) from its item and annotation
    rows; the project's labels are computed once, when it is made."""

    def __init__(self, project: Project, meta: Sequence[str], labels: dict[str, QuestionLabels]):
        self.schema = project.schema
        self.fields = [f.name for f in self.schema.fields]
        self.questions = self.schema.questions
        self.meta = list(meta)
        self.votes = _Votes(self.schema)
        self.labels = labels

    def __call__(self, items: list, rows: list) -> list[list]:
        fields, qs, meta, votes, labels = self.fields, self.questions, self.meta, self.votes, self.labels
        n = len(items)
        item_ids, exts, datas, golds = zip(*items)
        ids = np.fromiter(item_ids, dtype=np.int64, count=n)
        parsed = [orjson.loads(d) for d in datas]
        per_item = [list(item_ids), list(exts)]
        per_item += [_cells(_values(parsed, f), _text_cell) for f in fields]
        per_item += [_cells(_values(parsed, k), _meta_cell) for k in meta]
        per_item.append([bool(g) for g in golds])
        m = len(rows)
        if m:
            (a_item, names, answers, ms, created, updated, rev, status, fixed, _seen) = zip(*rows)
            a_ids = np.fromiter(a_item, dtype=np.int64, count=m)
            counts = np.searchsorted(a_ids, ids, side="right") - np.searchsorted(a_ids, ids, side="left")
            created_iso = iso_many(list(created))
            per_ann = [list(names), list(ms), created_iso,
                       [c_iso if u == c else iso(u) for c_iso, u, c in zip(created_iso, updated, created)],
                       list(rev), list(status)]
            parsed_answers = [orjson.loads(a) for a in answers]
            per_ann += [_answer_cells(q, parsed_answers) for q in qs]
            # What the vote counts, per annotation (see _Votes), then per item.
            counted = [f or a if st not in _NOT_VOTES else None for a, f, st in zip(answers, fixed, status)]
            ends = np.cumsum(counts).tolist()
            tails = [votes(tuple(counted[e - k:e])) if k else None for e, k in zip(ends, counts.tolist())]
        else:
            counts = np.zeros(n, dtype=np.int64)
            per_ann = [[None] * n for _ in range(6 + len(qs))]
            tails = [None] * n
        empty = (None,) * (2 * len(qs))
        per_item += [list(c) for c in zip(*[t if t is not None else empty for t in tails])] if qs else []
        label_cols = [_label_columns(labels.get(q.name), ids) for q in qs]
        per_item += [cols[part] for part in range(4) for cols in label_cols]
        repeat = np.maximum(counts, 1)
        total = int(repeat.sum())
        if total != n:  # an item with several annotations: its cells repeated on each of their rows
            per_item = [np.repeat(_objects(c, n), repeat).tolist() for c in per_item]
        if m and m != total:  # items without annotations: a row with empty annotation cells
            has = np.repeat(counts > 0, repeat)
            spread = []
            for c in per_ann:
                col = np.full(total, None, dtype=object)
                col[has] = _objects(c, m)
                spread.append(col.tolist())
            per_ann = spread
        k = 3 + len(fields) + len(meta)  # item_id, external_id, data.*, meta.*, gold
        return per_item[:k] + per_ann + per_item[k:]


def _meta_and_labels(store: Store, project: Project, workers: int) -> tuple[list[str], dict[str, QuestionLabels]]:
    """The flat formats' metadata keys and the project's labels. With ``workers`` > 1 (the command line,
    which may fork) the keys' pass over the items runs in a forked process while this one computes the
    labels: two seconds saved at a million items."""
    if workers <= 1:
        return metadata_keys(store, project), project_labels(store, project)
    own, start, stop = _store_per_process(store)
    keys = aside(lambda: orjson.dumps(metadata_keys(own["store"], project)), start, stop)
    try:
        labels = project_labels(store, project)
    finally:
        meta = orjson.loads(keys())
    return meta, labels


def csv_chunks(store: Store, project: Project, workers: int = 1) -> Iterator[bytes]:
    """The CSV export: the header, then one block of text per chunk of items (made by ``workers`` forked
    processes when more than 1: see :func:`_pieces`)."""
    buf = io.StringIO()
    meta, labels = _meta_and_labels(store, project, workers)
    csv.writer(buf, lineterminator="\n").writerow(flat_columns(project, meta))
    yield buf.getvalue().encode()
    columns_of = _FlatColumns(project, meta, labels)
    # what csv.writer writes, a column at a time (labelwright.io.csv_block)
    yield from _pieces(store, project, lambda items, rows: csv_block(columns_of(items, rows)), workers)


def _arrow_schema(project: Project, meta: Sequence[str] = ()):
    import pyarrow as pa  # noqa: PLC0415 - pyarrow takes a quarter second to import; only Parquet needs it

    types = {"item_id": pa.int64(), "active_ms": pa.int64(), "revision": pa.int64(), "gold": pa.bool_()}
    fields = []
    for c in flat_columns(project, meta):
        if c.startswith(("agreement.", "confidence.")):
            fields.append(pa.field(c, pa.float64()))
        else:
            fields.append(pa.field(c, types.get(c, pa.string())))
    return pa.schema(fields)


def write_parquet(store: Store, project: Project, sink, rows_per_group: int = 50_000, workers: int = 1) -> int:
    """Write the flat rows to ``sink`` (a path or binary file) in row groups of ``rows_per_group`` rows
    (the last one shorter); return rows written. ``workers`` > 1: the chunks' tables are made by forked
    processes (see :func:`_pieces`) and come back as Arrow IPC streams."""
    import pyarrow as pa  # noqa: PLC0415 - heavy, see _arrow_schema
    import pyarrow.parquet as pq  # noqa: PLC0415 - heavy, see _arrow_schema

    meta, labels = _meta_and_labels(store, project, workers)
    schema = _arrow_schema(project, meta)
    # Answers and majority labels may be numbers (ratings); Parquet gets them as text like the CSV.
    # Every other string column holds strings already (item fields are validated as text).
    to_text = {i for i, name in enumerate(schema.names) if name.startswith(("answer.", "majority.", "label."))}
    columns_of = _FlatColumns(project, meta, labels)

    def table(items: list, rows: list):
        cols = columns_of(items, rows)
        arrays = [pa.array([v if v is None or type(v) is str else str(v) for v in c] if i in to_text else c,
                           type=f.type) for i, (c, f) in enumerate(zip(cols, schema))]
        return pa.Table.from_arrays(arrays, schema=schema)

    if workers > 1:
        def piece(items: list, rows: list) -> bytes:
            out = pa.BufferOutputStream()
            with pa.ipc.new_stream(out, schema) as stream:
                stream.write_table(table(items, rows))
            return out.getvalue().to_pybytes()
        tables = (pa.ipc.open_stream(b).read_all() for b in _pieces(store, project, piece, workers))
    else:
        tables = (table(items, rows) for items, rows in _prefetched(_read_chunks(store, project, CHUNK)))
    total = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending: list = []  # tables not written yet, fewer than rows_per_group rows in all
        held = 0
        for t in tables:
            pending.append(t)
            held += t.num_rows
            if held >= rows_per_group:
                whole_table = pa.concat_tables(pending)
                whole = held - held % rows_per_group
                writer.write_table(whole_table.slice(0, whole), row_group_size=rows_per_group)
                pending, held, total = [whole_table.slice(whole)], held - whole, total + whole
        if held or total == 0:
            writer.write_table(pa.concat_tables(pending) if pending else schema.empty_table(),
                               row_group_size=rows_per_group)
            total += held
    return total


def write_export(store: Store, project: Project, fmt: str, path) -> None:
    """Write an export file (the CLI's path). Written to ``path + '.part'`` and renamed when complete."""
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
