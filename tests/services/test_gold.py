"""Gold items: imported or marked by the owner, mixed into queues, never shown to annotators."""

import io
import json

import pytest
from sqlalchemy import text

from labelwright.errors import ValidationError
from labelwright.io.readers import read_csv
from labelwright.services import gold as gold_svc
from labelwright.services import queue
from labelwright.services.items import add_items, import_items
from labelwright.services.projects import create_project, progress
from tests.conftest import bearer, post_login

SECRET = "GOLD-SECRET-7731"  # a gold answer that appears nowhere else, so a leak is easy to spot

SCHEMA = {
    "name": "Gold test", "slug": "goldtest", "overlap": 1, "id_field": "id",
    "gold": {"rate": 1.0},
    "fields": [{"name": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
                  {"name": "why", "type": "text", "required": False}],
}


@pytest.fixture
def project(store, owner):
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"r{i}", "text": f"real {i}"} for i in range(4)]
              + [{"id": f"g{i}", "text": f"gold {i}", "gold": {"spam": "spam", "why": SECRET}} for i in range(2)])
    return p


def _rows(store, sql, **params):
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def test_import_strips_gold_from_item_data_and_marks_the_items(store, project):
    items = dict(_rows(store, "SELECT external_id, data FROM items"))
    assert all("gold" not in json.loads(d) and SECRET not in d for d in items.values())
    gold = gold_svc.gold_answers(store, project)
    ext = dict(_rows(store, "SELECT id, external_id FROM items"))
    assert {ext[i]: g for i, g in gold.items()} == {"g0": {"spam": "spam", "why": SECRET},
                                                    "g1": {"spam": "spam", "why": SECRET}}
    assert sorted(_rows(store, "SELECT external_id, is_gold FROM items WHERE is_gold = 1")) == [("g0", 1), ("g1", 1)]
    assert progress(store, project)["items"]["total"] == 4  # progress counts the real work
    assert progress(store, project)["items"]["gold"] == 2


def test_bad_gold_names_file_line_and_field_and_imports_nothing(store, owner):
    p = create_project(store, {**SCHEMA, "slug": "bad"})
    records = [(1, {"id": "a", "text": "x", "gold": {"spam": "spam"}}),
               (2, {"id": "b", "text": "y", "gold": {"spam": "maybe"}})]
    with pytest.raises(ValidationError) as e:
        import_items(store, p, records, file="items.jsonl")
    assert (e.value.file, e.value.line, e.value.field) == ("items.jsonl", 2, "gold.spam")
    assert "not an option" in e.value.message
    assert _rows(store, "SELECT count(*) FROM items") == [(0,)]
    assert _rows(store, "SELECT count(*) FROM gold") == [(0,)]
    with pytest.raises(ValidationError, match="unknown question 'colour'"):
        import_items(store, p, [(1, {"id": "a", "text": "x", "gold": {"colour": "red"}})], file="f")


def test_csv_gold_columns(store, owner):
    one = create_project(store, {**SCHEMA, "slug": "one", "questions": [SCHEMA["questions"][0]]})
    csv = "id,text,gold\na,x,spam\nb,y,\nc,z,\"{\"\"spam\"\": \"\"ham\"\"}\"\n"
    res = import_items(store, one, read_csv(io.StringIO(csv), "f.csv"), file="f.csv")
    assert res["gold"] == 2
    two = create_project(store, {**SCHEMA, "slug": "two"})
    csv = "id,text,gold.spam,gold.why\na,x,ham,because\nb,y,,\n"
    res = import_items(store, two, read_csv(io.StringIO(csv), "g.csv"), file="g.csv")
    assert res["gold"] == 1
    assert list(gold_svc.gold_answers(store, two).values()) == [{"spam": "ham", "why": "because"}]
    three = create_project(store, {**SCHEMA, "slug": "three"})
    with pytest.raises(ValidationError) as e:  # a misspelt question is an error, never item data
        import_items(store, three, read_csv(io.StringIO("id,text,gold.spma\na,x,ham\n"), "h.csv"), file="h.csv")
    assert (e.value.line, e.value.field) == (2, "gold.spma")


def test_gold_rate_one_serves_gold_first_and_every_annotator_answers_it(store, project, make_annotator):
    ann = [make_annotator(f"a{i}")[0] for i in range(3)]
    for u in ann:
        first = queue.claim_next(store, project, u)
        assert first["external_id"] == "g0"  # overlap is 1, yet every annotator gets the gold item
        queue.submit(store, first["id"], u, {"spam": "ham"})
    got = queue.claim_next(store, project, ann[0])
    assert got["external_id"] == "g1"


def test_a_gold_draw_with_no_gold_left_takes_an_ordinary_item_in_the_same_transaction(store, project,
                                                                                    make_annotator, monkeypatch):
    u = make_annotator("done-gold")[0]
    for _ in range(2):  # both gold items answered: every later gold draw (rate 1) finds none
        got = queue.claim_next(store, project, u)
        assert got["external_id"].startswith("g")
        queue.submit(store, got["id"], u, {"spam": "spam"})
    if store.dialect == "postgresql":  # SQLite's claim is one write transaction whatever it tries
        opened = []
        real = store.pipeline
        monkeypatch.setattr(store, "pipeline", lambda: opened.append(1) or real())
    got = queue.claim_next(store, project, u)
    assert got["external_id"] == "r0"
    if store.dialect == "postgresql":
        assert len(opened) == 1, "the ordinary take was a second transaction"
    again = queue.claim_next(store, project, u)  # a held lease is renewed, never a second item
    assert again["id"] == got["id"]
    assert _rows(store, "SELECT count(*) FROM leases WHERE user_id = :u", u=u.id) == [(1,)]


def test_gold_rate_zero_never_serves_gold(store, owner, make_annotator):
    p = create_project(store, {**SCHEMA, "slug": "nogold", "gold": {"rate": 0}})
    add_items(store, p, [{"id": "g", "text": "t", "gold": {"spam": "ham"}}, {"id": "r", "text": "u"}])
    u = make_annotator("ann")[0]
    seen = []
    while (item := queue.claim_next(store, p, u)) is not None:
        seen.append(item["external_id"])
        queue.submit(store, item["id"], u, {"spam": "spam"})
    assert seen == ["r"]


def test_gold_is_not_served_once_real_work_is_done(store, project, make_annotator):
    u = make_annotator("ann")[0]
    seen = []
    while (item := queue.claim_next(store, project, u)) is not None:
        seen.append(item["external_id"])
        queue.submit(store, item["id"], u, {"spam": "spam"})
    # rate 1: gold first while real work remains; the real items are then all served
    assert seen == ["g0", "g1", "r0", "r1", "r2", "r3"]
    v = make_annotator("late")[0]  # the real items are full (overlap 1): nothing left, gold included
    assert queue.claim_next(store, project, v) is None


def test_gold_mixing_rate_is_roughly_the_configured_share(store, owner, make_annotator):
    p = create_project(store, {**SCHEMA, "slug": "mix", "gold": {"rate": 0.3}})
    add_items(store, p, [{"id": f"g{i}", "text": "t", "gold": {"spam": "ham"}} for i in range(300)]
                     + [{"id": f"r{i}", "text": "u"} for i in range(300)])
    u = make_annotator("ann")[0]
    gold = 0
    for _ in range(200):
        item = queue.claim_next(store, p, u)
        gold += item["external_id"].startswith("g")
        queue.submit(store, item["id"], u, {"spam": "spam"})
    assert 30 <= gold <= 90  # 60 expected; a binomial(200, 0.3) leaves this range with p < 1e-5


def test_mark_and_unmark_gold_through_the_api(http, store, project, owner, make_annotator):
    tok = owner[1]
    item_id = _rows(store, "SELECT id FROM items WHERE external_id = 'r2'")[0][0]
    r = http.put(f"/api/v1/projects/goldtest/items/{item_id}/gold", json={"answers": {"spam": "ham"}},
                 headers=bearer(tok))
    assert r.status_code == 200, r.text
    assert r.json() == {"item_id": item_id, "gold": {"spam": "ham"}}
    listed = http.get("/api/v1/projects/goldtest/gold", headers=bearer(tok)).json()
    assert {"item_id": item_id, "gold": {"spam": "ham"}} in listed and len(listed) == 3
    bad = http.put(f"/api/v1/projects/goldtest/items/{item_id}/gold", json={"answers": {"spam": "eggs"}},
                   headers=bearer(tok))
    assert bad.status_code == 422 and bad.json()["field"] == "gold.spam"
    assert http.put("/api/v1/projects/goldtest/items/99999/gold", json={"answers": {"spam": "ham"}},
                    headers=bearer(tok)).status_code == 404
    _, ann_tok = make_annotator("ann")
    assert http.put(f"/api/v1/projects/goldtest/items/{item_id}/gold", json={"answers": {"spam": "ham"}},
                    headers=bearer(ann_tok)).status_code == 403
    assert http.get("/api/v1/projects/goldtest/gold", headers=bearer(ann_tok)).status_code == 403
    assert http.delete(f"/api/v1/projects/goldtest/items/{item_id}/gold", headers=bearer(tok)).status_code == 204
    assert _rows(store, "SELECT is_gold, target FROM items WHERE id = :i", i=item_id) == [(0, None)]
    assert len(http.get("/api/v1/projects/goldtest/gold", headers=bearer(tok)).json()) == 2


def test_gold_answers_never_reach_an_annotator(http, store, project, make_annotator):
    """Walk everything an annotator can reach, by token and in the browser, and look for the gold."""
    user, tok = make_annotator("ann", "ann-password-1")
    h = bearer(tok)
    bodies = []
    while True:
        r = http.post("/api/v1/projects/goldtest/next", headers=h)
        if r.status_code == 204:
            break
        bodies.append(r.text)
        item = r.json()
        assert set(item) == {"id", "external_id", "project", "data", "lease_expires_at"}
        s = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "ham"}}, headers=h)
        assert s.status_code == 201
        bodies.append(s.text)
    assert len(bodies) == 12  # 2 gold + 4 real, each claimed and answered
    for path in ("/api/v1/projects/goldtest/history", "/api/v1/projects/goldtest/mine", "/api/v1/projects/goldtest",
                 "/api/v1/projects", "/api/v1/me"):
        r = http.get(path, headers=h)
        assert r.status_code == 200
        bodies.append(r.text)
    for path in ("/api/v1/projects/goldtest/gold", "/api/v1/projects/goldtest/export",
                 "/api/v1/projects/goldtest/quality", "/api/v1/projects/goldtest/status"):
        r = http.get(path, headers=h)
        assert r.status_code == 403
        bodies.append(r.text)
    ann_ids = [a["id"] for a in http.get("/api/v1/projects/goldtest/history", headers=h).json()]
    for a in ann_ids:
        bodies.append(http.put(f"/api/v1/annotations/{a}", json={"answers": {"spam": "spam"}}, headers=h).text)
    # the browser: sign in, open the labelling page and the amend pages of every answer
    r = post_login(http, "ann", "ann-password-1", follow_redirects=True)
    assert r.status_code == 200
    bodies.append(http.get("/projects/goldtest/label").text)
    for a in ann_ids:
        page = http.get(f"/projects/goldtest/history/{a}")
        assert page.status_code == 200
        bodies.append(page.text)
    bodies.append(http.get("/").text)
    everything = "\n".join(bodies)
    assert SECRET not in everything
    assert "is_gold" not in everything and '"gold"' not in everything
