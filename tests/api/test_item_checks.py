"""Answers are checked against the item they answer, on every way in: a span past the end of its text (or
whose ``text`` is not the text at its offsets) and a box outside the image's size (when the item gives it)
are refused with 422 naming the field, by the hot path and the FastAPI pipeline alike, by amending, by a
reviewer's fix, by gold set on an item and by gold in an import. Both databases."""

from __future__ import annotations

from sqlalchemy import text as sql

from labelwright.services import access
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from tests.api import test_hot_parity
from tests.api.test_hot_parity import Side, _items, _seen, nxt, sub
from tests.conftest import bearer

TEXT = "Ada Lovelace met Babbage"
SCHEMA = {
    "name": "Checked", "slug": "checked", "overlap": 2, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text"}, {"name": "photo", "type": "image"}],
    "questions": [
        {"name": "ents", "type": "spans", "field": "text", "labels": [{"value": "PER"}, {"value": "LOC"}],
         "required": False},
        {"name": "objs", "type": "boxes", "field": "photo", "labels": ["car"], "width_field": "w",
         "height_field": "h", "required": False},
    ],
}
twin_urls = test_hot_parity.twin_urls  # the fixture: two fresh databases of each kind

ITEMS = [{"id": f"c{i}", "text": TEXT, "photo": f"p{i}.png", "w": 100, "h": 50} for i in range(4)]
GOOD = {"ents": [{"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"}],
        "objs": [{"x": 10, "y": 10, "w": 90, "h": 40, "label": "car"}]}

# (answers, the field the 422 names, words in its message)
BAD = [
    ({"ents": [GOOD["ents"][0], {"start": 17, "end": 30, "label": "PER"}]}, "ents.1.end", "has 24 characters"),
    ({"ents": [{"start": 17, "end": 24, "label": "PER", "text": "Babage"}]}, "ents.0.text", "'Babbage'"),
    ({"objs": [{"x": 10, "y": 10, "w": 91, "h": 40, "label": "car"}]}, "objs.0.w", "width of 100"),
    ({"objs": [{"x": 1, "y": 50, "w": 5, "h": 5, "label": "car"}]}, "objs.0.y", "50 pixels in height"),
    ({"ents": [{"start": 0, "end": 3, "label": "PER", "text": "<script>alert(1)</script>"}]}, "ents.0.text", "Ada"),
]


class CheckedSide(Side):
    """A :class:`Side` of the parity test whose scenario project asks spans and boxes."""

    def begin(self, n: int, changes: dict, n_items: int):
        project = create_project(self.store, {**SCHEMA, "slug": f"c{n}"}, created_by=1)
        add_items(self.store, project, ITEMS[:n_items])
        for name in ("ann", "bob"):
            access.set_member(self.store, project, name, "annotator")
        self.project = get_project(self.store, project.id)
        self.items = _items(self.store, self.project)
        self.last_item = None


STEPS = [nxt(), *[sub({"answers": bad}, expect=422) for bad, _, _ in BAD], sub({"answers": GOOD}),
         nxt(), sub({"answers": {"ents": [], "objs": [{"x": 0, "y": 0, "w": 100, "h": 50, "label": "car"}]}}),
         nxt("bob"), sub({"answers": BAD[0][0]}, who="bob", expect=422), sub({"answers": {"ents": []}}, who="bob")]


def test_a_bad_span_or_box_gets_the_same_answer_on_both_paths(twin_urls):
    hot, pipeline = CheckedSide(twin_urls[0], hot=True), CheckedSide(twin_urls[1], hot=False)
    try:
        hot.begin(1, {}, 3)
        pipeline.begin(1, {}, 3)
        bad = iter(BAD)
        for step in STEPS:
            a, b = hot.send(step), pipeline.send(step)
            assert _seen(a) == _seen(b), f"{step.path} {step.json}"
            assert a.status_code == step.expect, a.text
            if a.status_code == 422 and step.who == "ann":
                _, field, words = next(bad)
                assert a.json()["field"] == field and words in a.json()["error"], a.json()
    finally:
        for side in (hot, pipeline):
            side.client.close()
            side.store.close()


def _project(http, owner) -> None:
    r = http.post("/api/v1/projects", headers=bearer(owner[1]), json=SCHEMA)
    assert r.status_code == 201, r.text


def test_amending_a_fix_and_gold_are_checked_against_the_item(http, store, owner, make_annotator):
    _project(http, owner)
    h = bearer(owner[1])
    r = http.post("/api/v1/projects/checked/items", headers=h, json={"items": ITEMS[:2]})
    assert r.status_code in (200, 201), r.text
    ann = bearer(make_annotator("ann")[1])
    item = http.post("/api/v1/projects/checked/next", headers=ann).json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=ann, json={"answers": GOOD})
    assert r.status_code == 201, r.text
    ann_id = r.json()["id"]

    for bad, field, words in BAD:
        r = http.put(f"/api/v1/annotations/{ann_id}", headers=ann, json={"answers": bad})
        assert r.status_code == 422 and r.json()["field"] == field and words in r.json()["error"], r.text
        r = http.post(f"/api/v1/projects/checked/review/{ann_id}", headers=h,
                      json={"decision": "fixed", "answers": bad})
        assert r.status_code == 422 and r.json()["field"] == field, r.text
        r = http.put(f"/api/v1/projects/checked/items/{item['id']}/gold", headers=h, json={"answers": bad})
        assert r.status_code == 422 and r.json()["field"] == f"gold.{field}", r.text
    assert http.put(f"/api/v1/annotations/{ann_id}", headers=ann, json={"answers": {"ents": []}}).status_code == 200
    r = http.put(f"/api/v1/projects/checked/items/{item['id']}/gold", headers=h, json={"answers": GOOD})
    assert r.status_code == 200, r.text
    assert r.json()["gold"]["ents"] == [{"start": 0, "end": 12, "label": "PER"}]  # the text checked, not kept

    # gold in an import: the whole batch is refused, naming the record and the field
    record = {**ITEMS[3], "gold": {"objs": [{"x": 95, "y": 0, "w": 10, "h": 10, "label": "car"}]}}
    r = http.post("/api/v1/projects/checked/items", headers=h, json={"items": [ITEMS[2], record]})
    assert r.status_code == 422 and r.json()["field"] == "items[1].gold.objs.0.w", r.text
    with store.read() as conn:
        assert conn.execute(sql("SELECT count(*) FROM items")).scalar_one() == 2


def test_without_a_size_a_box_is_not_bounded_and_other_types_are_not_read_against_items(http, owner,
                                                                                        make_annotator):
    schema = {**SCHEMA, "slug": "free", "questions": [{**SCHEMA["questions"][1], "width_field": None}]}
    assert http.post("/api/v1/projects", headers=bearer(owner[1]), json=schema).status_code == 201
    http.post("/api/v1/projects/free/items", headers=bearer(owner[1]), json={"items": ITEMS[:1]})
    ann = bearer(make_annotator("ann")[1])
    item = http.post("/api/v1/projects/free/next", headers=ann).json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=ann,
                  json={"answers": {"objs": [{"x": 500, "y": 500, "w": 10, "h": 10, "label": "car"}]}})
    assert r.status_code == 201, r.text
