"""The flat exports (CSV, Parquet) against the JSONL export, cell for cell, on real crowd answers.

The flat formats are built a chunk at a time as columns (``labelwright.services.export.flat_chunks``);
the JSONL export is built item by item. Here the JSONL is flattened by hand, following docs/export.md, and
the CSV must be that text byte for byte and the Parquet those values, with chunks small enough that an
item's annotations and the label arrays cross chunk boundaries.
"""

import csv
import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from labelwright.services import export, review
from labelwright.services.gold import set_gold
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from tests.conftest import SHARED, seed_answer

SCHEMA = {
    "name": "Relevance", "slug": "rel", "overlap": 9, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "doc"}],
    "questions": [
        {"name": "relevance", "type": "rating", "min": 0, "max": 3},
        {"name": "tags", "type": "multiple_choice", "options": ["relevant", "on topic"], "required": False},
        {"name": "note", "type": "text", "required": False},
    ],
}
N_ITEMS = 24


def _json(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _cell(v):
    return v if v is None or isinstance(v, (str, int, float)) else _json(v)


@pytest.fixture
def relevance(store, owner, make_annotator):
    """A slice of Zheng et al.'s TREC relevance judgements (S_Rel): the first items with up to six of
    their real workers' grades 0-3, plus tags and notes derived from them, gold on two items, a
    rejection, a fix, an amended answer, a rule's vote and items nobody answered; item metadata of several
    JSON types."""
    answers = pd.read_csv(SHARED / "zheng_s_relevance" / "labels.csv")
    items = sorted(answers["item"].unique())[:N_ITEMS]
    answers = answers[answers["item"].isin(items)].sort_values(["item", "worker"]).groupby("item").head(6)
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    records = [{"id": item, "doc": item.split("_", 1)[1], "topic": int(item.split("_")[0]),
                **({"extra": {"k": [1, "é"]}, "flag": True} if n % 5 == 0 else {})}
               for n, item in enumerate(items)]
    records += [{"id": f"unseen{n}", "doc": f"doc, \"quoted\"\nline {n}"} for n in range(3)]
    add_items(store, p, records)
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items WHERE project_id = :p"), {"p": p.id}).all())
    workers = {w: make_annotator(w)[0] for w in sorted(answers["worker"].unique())}
    subs = []
    for k, (item, worker, label) in enumerate(answers[["item", "worker", "label"]].itertuples(index=False)):
        tags = ["relevant"] if label >= 2 else (["on topic"] if label == 1 else [])
        ans = {"relevance": int(label), "tags": tags, **({"note": f"grade {label}, \"sure\""} if k % 7 == 0 else {})}
        subs.append(seed_answer(store, ids[item], workers[worker], ans)[0])
    reviewer = make_annotator("rex", role="reviewer")[0]
    review.decide(store, p, reviewer, subs[3]["id"], "rejected", feedback="not a grade")
    review.decide(store, p, reviewer, subs[8]["id"], "fixed", fixed_answers={"relevance": 3, "tags": ["relevant"]})
    review.decide(store, p, reviewer, subs[9]["id"], "accepted")
    with store.write() as conn:
        conn.execute(text("UPDATE annotations SET updated_at = created_at + 1.5 WHERE id = :a"), {"a": subs[5]["id"]})
        # a rule's vote is stored as an annotation with review status 'rule' (services/rules.py): the
        # plain majority leaves it out
        conn.execute(text("UPDATE annotations SET review_status = 'rule' WHERE id = :a"), {"a": subs[13]["id"]})
    set_gold(store, p, ids[items[1]], {"relevance": 2, "tags": ["relevant"]})
    set_gold(store, p, ids["unseen0"], {"relevance": 0, "tags": []})
    return p


def flatten(jsonl: str, project) -> tuple[list[str], list[list]]:
    """The columns and rows docs/export.md describes, from the JSONL export."""
    recs = [json.loads(line) for line in jsonl.splitlines()]
    fields = [f.name for f in project.schema.fields]
    qs = [q.name for q in project.schema.questions]
    meta = sorted({k for r in recs for k in r["data"]} - set(fields))
    cols = ["item_id", "external_id"] + [f"data.{f}" for f in fields] + [f"meta.{k}" for k in meta] + ["gold"]
    cols += ["annotator", "active_ms", "created_at", "updated_at", "revision", "review"]
    cols += [f"{part}.{q}" for part in ("answer", "majority", "agreement", "label", "confidence", "method",
                                        "source") for q in qs]
    rows = []
    for r in recs:
        d = r["data"]
        base = [r["item_id"], r["external_id"]] + [_cell(d.get(f)) for f in fields]
        base += [d.get(k) if d.get(k) is None or isinstance(d.get(k), str) else _json(d.get(k)) for k in meta]
        base.append(r["gold"])
        maj, agg = r["majority"], r["aggregate"]
        tail = [_cell(maj[q]["label"]) if q in maj else None for q in qs]
        tail += [maj[q]["agreement"] if q in maj else None for q in qs]
        tail += [(_cell(agg[q][part]) if part == "label" else agg[q][part]) if q in agg else None
                 for part in ("label", "confidence", "method", "source") for q in qs]
        for a in r["annotations"] or [None]:
            ann = [None] * (6 + len(qs)) if a is None else (
                [a["annotator"], a["active_ms"], a["created_at"], a["updated_at"], a["revision"], a["review"]]
                + [_cell(a["answers"].get(q)) for q in qs])
            rows.append(base + ann + tail)
    return cols, rows


def test_flat_exports_match_the_jsonl_cell_for_cell(store, relevance, tmp_path, monkeypatch):
    p = relevance
    monkeypatch.setattr(export, "CHUNK", 7)  # an item's rows and the label arrays cross chunks
    jsonl = b"".join(export.jsonl_lines(store, p)).decode()
    cols, rows = flatten(jsonl, p)
    reviews = {r[cols.index("review")] for r in rows}
    assert len(rows) > 100 and reviews >= {"rejected", "fixed", "accepted", "rule", None}
    methods = {r[cols.index("method.relevance")] for r in rows}
    assert "gold" in methods and len(methods) >= 2, methods  # gold items and the inferred label's method
    assert {"meta.extra", "meta.flag", "meta.topic"} <= set(cols)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows(rows)
    got = b"".join(export.csv_chunks(store, p)).decode()
    assert got == buf.getvalue()

    path = tmp_path / "out.parquet"
    assert export.write_parquet(store, p, path, rows_per_group=40) == len(rows)
    f = pq.ParquetFile(path)
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == \
        [40] * (len(rows) // 40) + ([len(rows) % 40] if len(rows) % 40 else [])
    table = f.read()
    assert table.column_names == cols
    as_text = {i for i, c in enumerate(cols) if c.startswith(("answer.", "majority.", "label."))}
    expected = [[v if i not in as_text or v is None or isinstance(v, str) else str(v) for i, v in enumerate(r)]
                for r in rows]
    assert [list(r.values()) for r in table.to_pylist()] == expected


def test_flat_exports_of_a_project_without_answers(store, owner, tmp_path):
    p = create_project(store, {**SCHEMA, "slug": "empty"}, created_by=owner[0].id)
    assert b"".join(export.csv_chunks(store, p)).decode().count("\n") == 1  # the header alone
    add_items(store, p, [{"id": "a", "doc": "x"}, {"id": "b", "doc": "y", "n": 2}])
    lines = b"".join(export.csv_chunks(store, p)).decode().splitlines()
    assert len(lines) == 3 and lines[2].split(",")[2:6] == ["y", "b", "2", "False"]
    assert export.write_parquet(store, p, tmp_path / "e.parquet") == 2
    assert pq.read_table(tmp_path / "e.parquet").column("annotator").null_count == 2


@pytest.mark.parametrize("workers", [2, 3])
def test_exports_made_by_several_processes_are_the_same_files(store, relevance, tmp_path, monkeypatch, workers):
    """The CLI's exports fork ``workers`` processes that make the chunks side by side (labelwright.io.forked),
    each reading on connections of its own: the three formats must be the very bytes one process writes,
    on both databases, with chunks small enough that there are several per worker."""
    p = relevance
    monkeypatch.setattr(export, "CHUNK", 7)  # 27 items: 4 chunks
    assert len(export._chunk_ranges(store, p, 7)) == 4
    one = b"".join(export.jsonl_lines(store, p))
    assert b"".join(export.jsonl_lines(store, p, workers=workers)) == one
    assert b"".join(export.csv_chunks(store, p, workers=workers)) == b"".join(export.csv_chunks(store, p))
    export.write_parquet(store, p, tmp_path / "one.parquet", rows_per_group=40)
    export.write_parquet(store, p, tmp_path / "many.parquet", rows_per_group=40, workers=workers)
    assert (tmp_path / "many.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()
    assert one.count(b"\n") == 27
