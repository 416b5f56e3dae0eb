"""Importing items: formats, atomicity, clear errors, no duplicates on re-import."""

import json
import threading
import time

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, text

from labelwright.errors import ValidationError
from labelwright.io.readers import open_records, read_dataframe
from labelwright.services import queue, users
from labelwright.services.access import set_member
from labelwright.services.items import add_items, chat_fields, import_items
from labelwright.services.projects import create_project, get_project
from labelwright.store import Store
from labelwright.store import tables as t
from tests.conftest import bearer

SCHEMA = {
    "name": "Chat", "slug": "chat", "id_field": "id",
    "fields": [{"name": "text", "type": "text"}, {"name": "turns", "type": "chat", "required": False}],
    "questions": [{"name": "ok", "type": "single_choice", "options": ["yes", "no"]}],
}


def count(store, project):
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(t.items)
                            .where(t.items.c.project_id == project.id)).scalar_one()


def run_import(store, project, path, fmt=None):
    records, _ = open_records(path, fmt, json_columns=chat_fields(project))
    return import_items(store, project, records, file=str(path))


@pytest.fixture
def project(store):
    return create_project(store, SCHEMA)


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_import_and_reimport_does_not_duplicate(store, project, tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"id": i, "text": f"t{i}"} for i in range(50)])
    assert run_import(store, project, f) == {"received": 50, "inserted": 50, "duplicates": 0, "gold": 0}
    assert run_import(store, project, f) == {"received": 50, "inserted": 0, "duplicates": 50, "gold": 0}
    assert count(store, project) == 50


def test_a_repeated_id_within_one_file_names_both_lines(store, project, tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "a"}, {"id": 1, "text": "a"}, {"id": 2, "text": "b"}])
    with pytest.raises(ValidationError, match="line 2, field 'id': the id '1' is also on line 1"):
        run_import(store, project, f)
    assert count(store, project) == 0  # nothing of it lands


@pytest.mark.parametrize("bad_line, field, words", [
    ('{"id": 3, "text": 5}', "text", "expected a string"),
    ('{"id": 3}', "text", "missing required field"),
    ('{"id": 3, "text": "x"', None, "not valid JSON"),
    ('{"text": "x"}', "id", "missing item id"),
    ('{"id": 3, "text": "x", "turns": "hello"}', "turns", "list of {role, content}"),
    ('[1, 2]', None, "an item must be an object"),
    # NaN and Infinity: Python's json writes and reads them, JSON has neither; never stored as null
    ('{"id": 3, "text": "x", "score": NaN}', "score", "NaN and Infinity are not JSON numbers"),
    ('{"id": 3, "text": "x", "m": {"s": [1, -Infinity]}}', "m.s[1]", "NaN and Infinity"),
    ('{"id": 3, "text": "x", "big": 1e999}', "big", "NaN and Infinity"),
])
def test_bad_line_stops_the_import_and_nothing_lands(store, project, tmp_path, bad_line, field, words):
    rows = [json.dumps({"id": i, "text": "ok"}) for i in range(6000)]  # more than one insert batch
    rows.insert(5500, bad_line)
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValidationError) as e:
        run_import(store, project, f)
    assert e.value.file == str(f) and e.value.line == 5501
    assert e.value.field == field and words in e.value.message
    assert count(store, project) == 0


def test_csv_import_with_json_chat_column(store, project, tmp_path):
    f = tmp_path / "a.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["x, with comma", "line\nbreak"],
                  "turns": [json.dumps([{"role": "user", "content": "hi"}]), ""]}).to_csv(f, index=False)
    assert run_import(store, project, f)["inserted"] == 2
    with store.read() as conn:
        data = [json.loads(d) for d in conn.execute(select(t.items.c.data).order_by(t.items.c.id)).scalars()]
    assert data[0]["turns"] == [{"role": "user", "content": "hi"}]
    assert data[1]["text"] == "line\nbreak"


def test_csv_errors(store, project, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("id,text,turns\n1,ok,\n2,ok,not json\n")
    with pytest.raises(ValidationError) as e:
        run_import(store, project, f)
    assert (e.value.line, e.value.field) == (3, "turns")
    f.write_text("id,text\n1,ok\n2,ok,extra\n")
    with pytest.raises(ValidationError, match="expected 2 columns, found 3") as e:
        run_import(store, project, f)
    assert e.value.line == 3
    assert count(store, project) == 0


def test_parquet_import_and_error_row(store, project, tmp_path):
    f = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["a", None, "c"]}), f)
    with pytest.raises(ValidationError) as e:
        run_import(store, project, f)
    assert (e.value.line, e.value.field) == (2, "text")
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"]}), f)
    assert run_import(store, project, f)["inserted"] == 3


def test_parquet_nan_and_infinity_are_refused_nulls_are_missing(store, project, tmp_path):
    f = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"], "score": [0.5, None, 1.0]}), f)
    assert run_import(store, project, f)["inserted"] == 3  # a Parquet null is a missing value
    with store.read() as conn:
        assert json.loads(conn.execute(select(t.items.c.data).order_by(t.items.c.id)).scalars().all()[1]) == {
            "id": 2, "text": "b"}
    for column, field in ((pa.array([0.5, None, float("nan")]), "score"),
                          (pa.array([[1.0], [float("inf")], []]), "score[0]"),
                          (pa.array([{"x": 1.0}, {"x": 1.0}, {"x": float("-inf")}]), "score.x")):
        pq.write_table(pa.table({"id": [4, 5, 6], "text": ["d", "e", "f"], "score": column}), f)
        with pytest.raises(ValidationError) as e:
            run_import(store, project, f)
        assert (e.value.file, e.value.line, e.value.field) == (str(f), 3 if field != "score[0]" else 2, field)
        assert "NaN and Infinity" in e.value.message
    assert count(store, project) == 3


def test_dataframe_import(store, project):
    df = pd.DataFrame({"id": [1, 2], "text": ["a", "b"], "score": [0.5, float("nan")]})
    assert import_items(store, project, read_dataframe(df), file="DataFrame")["inserted"] == 2
    with store.read() as conn:  # a NaN cell is pandas' missing value: left out, as an empty CSV cell is
        assert "score" not in json.loads(conn.execute(select(t.items.c.data).order_by(t.items.c.id.desc())).scalar())
    cases = ((pd.DataFrame({"id": [3, 4], "text": ["c", "d"], "score": [1.0, float("inf")]}), 2, "score"),
             (pd.DataFrame({"id": [3], "text": ["c"], "scores": [[0.5, float("nan")]]}), 1, "scores[1]"))
    for df, line, field in cases:
        with pytest.raises(ValidationError) as e:
            import_items(store, project, read_dataframe(df), file="DataFrame")
        assert (e.value.file, e.value.line, e.value.field) == ("DataFrame", line, field)
    assert count(store, project) == 2


def test_api_import_refuses_nan(http, store, project, owner):
    body = '{"items": [{"id": "a", "text": "ok"}, {"id": "b", "text": "ok", "meta": {"score": NaN}}]}'
    r = http.post("/api/v1/projects/chat/items", content=body, headers={**bearer(owner[1]),
                                                                         "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "items[1].meta.score" and "NaN and Infinity" in r.json()["error"]
    assert count(store, project) == 0
    r = http.post("/api/v1/projects/chat/items", content=body.replace("NaN", "null"),
                  headers={**bearer(owner[1]), "Content-Type": "application/json"})
    assert r.status_code == 200 and count(store, project) == 2


def test_unknown_format_and_missing_file(store, project, tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        open_records(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValidationError, match="cannot tell the format"):
        open_records(tmp_path / "x.txt")


def test_items_without_ids_are_keyed_by_content(store):
    p = create_project(store, {**SCHEMA, "slug": "noid", "id_field": None})
    rows = [{"text": "same"}, {"text": "same"}, {"text": "other"}]
    assert import_items(store, p, enumerate(rows, 1))["inserted"] == 2


def test_item_ids_follow_the_file_order(store, owner):
    """The queue serves items in import order, on both databases (PostgreSQL imports through COPY)."""
    p = create_project(store, {"name": "Order", "slug": "order", "id_field": "id", "fields": [{"name": "t"}],
                               "questions": [{"name": "q", "type": "single_choice", "options": ["a", "b"]}]})
    names = ["zeta", "alpha", "mid", "beta"]
    add_items(store, p, [{"id": n, "t": str(i)} for i, n in enumerate(names)])
    with store.read() as conn:
        rows = conn.execute(text("SELECT external_id, data FROM items ORDER BY id")).all()
    assert [r[0] for r in rows] == ["zeta", "alpha", "mid", "beta"]
    assert '"t":"1"' in rows[1][1]


def test_a_large_sqlite_import_holds_the_database_only_to_insert(tmp_path):
    """A 200,000-item import (as `labelwright import` runs it, on connections of its own: another process)
    while an annotator claims and submits in another project: nothing fails, labelling goes on while
    the file is read, checked and staged (the import held the database from its first line before), and
    no submission waits longer than the one INSERT ... SELECT that publishes the staged rows."""
    url = f"sqlite:///{tmp_path / 'lw.db'}"
    server, importer = Store(url, pool_size=2), Store(url, pool_size=2)
    try:
        server.migrate()
        big = create_project(server, {**SCHEMA, "slug": "big"})
        work = create_project(server, {**SCHEMA, "slug": "work", "overlap": 1})
        add_items(server, work, [{"id": f"w{i}", "text": "x"} for i in range(5000)])
        ann = users.create_user(server, "ann")
        set_member(server, work, "ann", "annotator")
        n = 200_000
        f = tmp_path / "big.jsonl"
        f.write_bytes(b"".join(orjson.dumps({"id": f"b{i:06d}", "text": f"item number {i} " * 8}) + b"\n"
                               for i in range(n)))
        done, result, marks = threading.Event(), {}, {}

        def progress(seen):
            if seen == n and "checked" not in marks:  # the first call with every record read and checked
                marks["checked"] = time.perf_counter()

        def run():
            marks["start"] = time.perf_counter()
            try:
                records, _ = open_records(f)
                result.update(import_items(importer, get_project(importer, "big"), records, file=str(f),
                                           on_progress=progress))
            finally:
                marks["end"] = time.perf_counter()
                done.set()

        thread = threading.Thread(target=run)
        thread.start()
        submits = []  # (started, finished)
        while not done.is_set():
            t = time.perf_counter()
            item = queue.claim_next(server, work, ann)
            queue.submit(server, item["id"], ann, {"ok": "yes"})
            submits.append((t, time.perf_counter()))
        thread.join()
        assert result["inserted"] == n and count(server, big) == n
        halfway = (marks["start"] + marks["checked"]) / 2
        assert sum(halfway < end < marks["checked"] for _, end in submits) >= 10, marks  # while checking
        longest = max(end - start for start, end in submits)
        # the staging after the check takes no lock: submissions wait only for the one INSERT ... SELECT
        # (about a quarter of the time from the end of the check to the end of the import, here)
        assert longest < 0.6 * (marks["end"] - marks["checked"]) + 0.1, (longest, marks)
    finally:
        importer.close()
        server.close()
