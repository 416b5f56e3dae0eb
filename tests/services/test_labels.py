"""Aggregated labels per item and question (the export's aggregate columns) and the owner's quality pages."""

import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from labelwright.quality import aggregate
from labelwright.services import labels as labels_svc
from labelwright.services import users
from labelwright.services.export import write_export
from labelwright.services.items import add_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import create_project
from tests.conftest import SHARED, bearer, join, seed_answer
from tests.web.test_web import hidden, sign_in

SCHEMA = {
    "name": "Mixed", "slug": "mixed", "overlap": 3, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "a"}, {"name": "b"}],
    "questions": [
        {"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
        {"name": "tags", "type": "multiple_choice", "options": ["x", "y", "z"], "required": False},
        {"name": "order", "type": "ranking", "candidates": ["a", "b"]},
        {"name": "pref", "type": "pairwise", "a": "a", "b": "b"},
        {"name": "note", "type": "text", "required": False},
    ],
}


@pytest.fixture
def mixed(store, owner, make_annotator):
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"i{n}", "a": "left", "b": "right"} for n in range(3)]
              + [{"id": "g", "a": "l", "b": "r", "gold": {"spam": "ham", "pref": {"choice": "B"}}}])
    votes = {  # item -> three annotators' answers
        "i0": [("spam", ["x"], ["a", "b"], "A"), ("spam", ["x", "y"], ["a", "b"], "A"),
               ("spam", ["x"], ["b", "a"], "A")],
        "i1": [("ham", [], ["b", "a"], "B"), ("ham", ["z"], ["b", "a"], "B"), ("spam", [], ["b", "a"], "tie")],
        "i2": [("spam", ["y"], ["a", "b"], "A"), ("ham", ["y"], ["b", "a"], "B"), ("ham", ["y"], ["a", "b"], "A")],
        "g": [("ham", [], ["a", "b"], "B"), ("spam", [], ["a", "b"], "A"), ("ham", [], ["a", "b"], "B")],
    }
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items")).all())
    users = [make_annotator(n)[0] for n in ("ann", "bob", "cy")]
    for ext, answers in votes.items():
        for u, (spam, tags, order, pref) in zip(users, answers):
            seed_answer(store, ids[ext], u, {"spam": spam, "tags": tags, "order": order,
                                             "pref": {"choice": pref}, "note": "free text"})
    return p, ids


def test_labels_for_every_item_and_question(store, mixed):
    p, ids = mixed
    labels = project_labels(store, p)
    assert set(labels) == {"spam", "tags", "order", "pref"}  # free text has no aggregate
    assert labels["spam"].get(ids["i0"])["label"] == "spam"
    assert labels["spam"].get(ids["i1"])["label"] == "ham"
    assert 0.5 < labels["spam"].get(ids["i0"])["confidence"] <= 1
    assert labels["spam"].get(ids["g"]) == {"label": "ham", "confidence": 1.0, "method": "gold", "source": "people"}
    assert labels["pref"].get(ids["g"])["label"] == "B"
    assert labels["tags"].get(ids["i0"])["label"] == ["x"]
    assert labels["tags"].get(ids["i2"])["label"] == ["y"]
    assert labels["tags"].get(ids["i0"])["method"].startswith("per option: ")
    assert labels["order"].get(ids["i1"]) == {"label": ["b", "a"], "confidence": 1.0,
                                             "method": labels["order"].method, "source": "people"}
    assert labels["order"].method.startswith("Borda")


def test_export_carries_label_confidence_and_method(http, store, owner, mixed, tmp_path):
    p, ids = mixed
    h = bearer(owner[1])
    recs = {r["external_id"]: r for r in map(json.loads, http.get("/api/v1/projects/mixed/export?format=jsonl",
                                                                   headers=h).text.splitlines())}
    assert recs["g"]["gold"] is True and recs["i0"]["gold"] is False
    assert recs["g"]["aggregate"]["spam"] == {"label": "ham", "confidence": 1.0, "method": "gold", "source": "people"}
    agg = recs["i0"]["aggregate"]
    assert set(agg) == {"spam", "tags", "order", "pref"}
    assert agg["spam"]["label"] == "spam" and agg["spam"]["method"]
    assert agg["pref"]["label"] == "A"
    df = pd.read_csv(io.StringIO(http.get("/api/v1/projects/mixed/export?format=csv", headers=h).text))
    for part in ("label", "confidence", "method", "source"):
        assert f"{part}.spam" in df.columns and f"{part}.note" in df.columns
    assert (df[df["external_id"] == "i0"]["source.spam"] == "people").all()
    first = df[df["external_id"] == "i0"].iloc[0]
    assert first["label.spam"] == "spam" and 0.5 < first["confidence.spam"] <= 1
    assert json.loads(first["label.tags"]) == ["x"] and pd.isna(first["label.note"])
    assert df[df["external_id"] == "g"]["gold"].all()
    path = tmp_path / "out.parquet"
    write_export(store, p, "parquet", path)
    table = pq.read_table(path).to_pandas()
    row = table[table["external_id"] == "i1"].iloc[0]
    assert row["label.spam"] == "ham" and row["method.spam"] == first["method.spam"]
    assert table["gold"].dtype == bool


def test_quality_summary_has_gold_accuracy_and_skill(http, store, owner, mixed):
    q = http.get("/api/v1/projects/mixed/quality", headers=bearer(owner[1])).json()
    assert q["gold_items"] == 1
    table = {a["annotator"]: a for a in q["annotators"]}
    # gold: spam=ham, pref=B. ann: ham, B (2/2); bob: spam, A (0/2); cy: ham, B (2/2)
    assert (table["ann"]["gold_checked"], table["ann"]["gold_accuracy"]) == (2, 1.0)
    assert (table["bob"]["gold_checked"], table["bob"]["gold_accuracy"]) == (2, 0.0)
    assert all(0 < a["skill"] <= 1 for a in table.values())
    assert table["bob"]["skill"] < table["ann"]["skill"]
    assert all(d["external_id"] != "g" for d in q["items_in_doubt"])  # gold items are not in doubt


def test_owner_item_page_marks_gold_and_pauses(http, store, owner, mixed, make_annotator):
    p, ids = mixed
    sign_in(http, "olive", "owner-password")
    page = http.get(f"/projects/mixed/items/{ids['i2']}")
    assert page.status_code == 200 and "Mark as gold" in page.text and "bob" in page.text
    r = http.post(f"/projects/mixed/items/{ids['i2']}/gold", data={
        "csrf": hidden(page.text, "csrf"), "spam": "ham", "order.rank.a": "1", "order.rank.b": "2",
        "pref": "A"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert {"item_id": ids["i2"], "gold": {"spam": "ham", "tags": [], "order": ["a", "b"], "pref": {"choice": "A"}}} \
        in http.get("/api/v1/projects/mixed/gold", headers=bearer(owner[1])).json()
    page = http.get(f"/projects/mixed/items/{ids['i2']}")
    assert "Save gold answers" in page.text and "gold" in page.text
    bad = http.post(f"/projects/mixed/items/{ids['i2']}/gold", data={"csrf": hidden(page.text, "csrf"),
                                                                      "spam": "ham"})
    assert bad.status_code == 422 and "required" in bad.text  # the page asks for a whole answer
    assert http.post(f"/projects/mixed/items/{ids['i2']}/gold", data={"csrf": "wrong", "spam": "ham"}
                     ).status_code == 403
    r = http.post(f"/projects/mixed/items/{ids['i2']}/gold/remove", data={"csrf": hidden(page.text, "csrf")},
                  follow_redirects=False)
    assert r.status_code == 303 and len(http.get("/api/v1/projects/mixed/gold", headers=bearer(owner[1])).json()) == 1
    quality = http.get("/projects/mixed/quality")
    assert quality.status_code == 200 and "Gold accuracy" in quality.text and ">Skill</th>" in quality.text
    r = http.post("/projects/mixed/annotators/bob/pause", data={"csrf": hidden(quality.text, "csrf")},
                  follow_redirects=False)
    assert r.status_code == 303
    assert "bob" in http.get("/api/v1/projects/mixed/paused", headers=bearer(owner[1])).json()
    quality = http.get("/projects/mixed/quality")
    assert "Resume" in quality.text
    http.post("/projects/mixed/annotators/bob/resume", data={"csrf": hidden(quality.text, "csrf")})
    assert http.get("/api/v1/projects/mixed/paused", headers=bearer(owner[1])).json() == {}
    # annotators may not open owner pages
    make_annotator("eve", password="eve-password-1")
    sign_in(http, "eve", "eve-password-1")
    assert http.get(f"/projects/mixed/items/{ids['i2']}").status_code == 403
    assert http.post("/projects/mixed/annotators/bob/pause", data={"csrf": "x"}).status_code == 403


def test_real_answers_give_the_library_result(store, owner):
    """On a slice of the real D_Product answers (Zheng et al.), the export's labels are exactly aggregate()'s."""
    rte = SHARED / "zheng_d_product" / "labels.csv"
    if not rte.exists():
        pytest.skip("shared datasets missing")

    answers = pd.read_csv(rte, dtype=str)
    items = sorted(answers["item"].unique())[:40]
    answers = answers[answers["item"].isin(items)]
    p = create_project(store, {"name": "Products", "slug": "products", "overlap": 9, "id_field": "id",
                               "gold": {"rate": 0},
                               "fields": [{"name": "text"}],
                               "questions": [{"name": "y", "type": "single_choice", "options": ["0", "1"]}]})
    add_items(store, p, [{"id": i, "text": i} for i in items])
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items")).all())
    workers = {}
    for _, row in answers.iterrows():
        u = workers.get(row["worker"])
        if u is None:
            u = workers[row["worker"]] = users.create_user(store, f"w{len(workers)}", "annotator")
            join(store, u.name, [p])
        seed_answer(store, ids[row["item"]], u, {"y": row["label"]})
    got = project_labels(store, p)["y"]
    want = aggregate(answers.rename(columns={"item": "task"})[["task", "worker", "label"]])
    for ext, row in want.iterrows():
        mine = got.get(ids[ext])
        assert mine["label"] == row["label"] and mine["confidence"] == round(row["confidence"], 4)
        assert mine["method"] == want.attrs["method"]


def test_one_answer_per_item_the_consensus_is_the_answer(store, owner):
    """An overlap-1 project (the most common kind): real word-sense answers, one per sentence, by the workers
    who gave them (Snow et al.). The export's consensus was the class balance's, not the answer, on 28% of
    the items (EM fitted the workers on their lone answers and drifted); it must be each item's answer."""
    wsd = SHARED / "snow2008_wsd" / "labels.csv"
    if not wsd.exists():
        pytest.skip("shared datasets missing")
    answers = pd.read_csv(wsd, dtype=str).sample(frac=1, random_state=0).drop_duplicates("item")
    p = create_project(store, {"name": "Senses", "slug": "senses", "overlap": 1, "id_field": "id",
                               "gold": {"rate": 0}, "fields": [{"name": "text"}],
                               "questions": [{"name": "y", "type": "single_choice", "options": ["1", "2", "3"]}]})
    add_items(store, p, [{"id": i, "text": i} for i in answers["item"]])
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items")).all())
    workers = {}
    for row in answers.itertuples():
        u = workers.get(row.worker)
        if u is None:
            u = workers[row.worker] = users.create_user(store, f"w{len(workers)}", "annotator")
            join(store, u.name, [p])
        seed_answer(store, ids[row.item], u, {"y": row.label})
    got = project_labels(store, p)["y"]
    assert len(workers) > 20 and len(answers) == 177
    assert {ext: got.get(ids[ext])["label"] for ext in answers["item"]} == dict(zip(answers["item"], answers["label"]))


def test_ratings_are_coded_by_the_database(store, owner, make_annotator):
    """Ratings come back from SQLite as numbers and from PostgreSQL as text; both code the same."""
    p = create_project(store, {"name": "Rated", "slug": "rated", "overlap": 3, "gold": {"rate": 0},
                               "fields": [{"name": "t"}],
                               "questions": [{"name": "stars", "type": "rating", "min": 1, "max": 5}]})
    add_items(store, p, [{"id": "a", "t": "x"}, {"id": "b", "t": "y"}])
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items")).all())
    for name, stars in (("u1", (4, 1)), ("u2", (4, 2)), ("u3", (5, 2))):
        u = make_annotator(name)[0]
        for ext, s in zip("ab", stars):
            seed_answer(store, ids[ext], u, {"stars": s})
    got = project_labels(store, p)["stars"]
    assert got.get(ids["a"])["label"] == 4 and got.get(ids["b"])["label"] == 2
    assert len(got.tasks) == 2


def test_labels_read_the_same_answers_whichever_way_sqlite_reads_them(store, owner, mixed):
    """On SQLite the project's answers are read by scanning the table when the project holds at least half
    of them, through the project index otherwise (``labels._scan_hint``). Both ways give the same labels;
    the hint follows the project's share, and PostgreSQL is left to its planner."""
    p, ids = mixed
    def read():  # NaN (a gold item's confidence) as None, so that equal labels compare equal
        return {q: (ql.tasks.tolist(), ql.values, [None if c != c else c for c in ql.confidence.tolist()])
                for q, ql in project_labels(store, p).items()}

    before = read()
    other = create_project(store, {**SCHEMA, "slug": "bigger"}, created_by=owner[0].id)
    add_items(store, other, [{"id": f"o{n}", "a": "x", "b": "y"} for n in range(5)])
    with store.read() as conn:
        other_ids = conn.execute(text("SELECT id FROM items WHERE project_id = :p"), {"p": other.id}).scalars().all()
    crowd = [users.create_user(store, name) for name in ("x1", "x2", "x3")]
    for u in crowd:
        join(store, u.name, [other])
    for item_id in other_ids:  # 15 answers in the other project against 12 in this one
        for u in crowd:
            seed_answer(store, item_id, u, {"spam": "ham", "tags": [], "order": ["a", "b"], "pref": {"choice": "A"}})
    with store.read() as conn:
        cur = store.cursor(conn)
        hints = (labels_svc._scan_hint(store, cur, p.id), labels_svc._scan_hint(store, cur, other.id))
    assert hints == (("", "+") if store.dialect == "sqlite" else ("", ""))
    assert read() == before
