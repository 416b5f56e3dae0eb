"""The polygons question type: answers validated (the failing polygon, point and part named), mask IoU measured
against exact areas, polygons matched and fused into the weighted medoid, agreement and gold scored by matched
IoU; then end to end through the API and the labelling form on SQLite and PostgreSQL (refusals, the fused
aggregate in the export, gold accuracy, the amend page)."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from labelwright.errors import ValidationError
from labelwright.io.yolo import yolo_segment_line
from labelwright.quality.polygons import (
    WeightedPolygonFusion,
    area,
    fuse,
    iou,
    iou_matrix,
    match,
    match_f1,
    mean_iou,
    polygon_agreement,
    rasterise,
)
from labelwright.schema import parse_schema
from tests.conftest import bearer, post_login

SCHEMA = {
    "name": "Cells", "slug": "cells", "overlap": 3, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "shapes", "type": "polygons", "prompt": "Outline every pet", "field": "photo",
                   "labels": ["cat", "dog"]}],
}


def rect(x, y, w, h, label="cat"):
    return {"label": label, "points": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]}


def circle(cx, cy, r, label="cat", n=64):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return {"label": label, "points": np.round(np.c_[cx + r * np.cos(t), cy + r * np.sin(t)], 2).tolist()}


# ---- the schema and answers ------------------------------------------------------------------------


def test_answers_are_validated_naming_the_polygon_point_and_part():
    schema = parse_schema(SCHEMA)
    tri = {"label": "dog", "points": [[1, 2.345], [30, 2], [15, 40]]}
    assert schema.validate_answers({"shapes": [tri]}) == {
        "shapes": [{"label": "dog", "points": [[1.0, 2.35], [30.0, 2.0], [15.0, 40.0]]}]}
    assert schema.validate_answers({"shapes": []}) == {"shapes": []}  # nothing in the picture is an answer
    ok = [[0, 0], [10, 0], [10, 10]]
    cases = [
        ({"label": "cat"}, "shapes", "expected a list of polygons"),
        ([[1, 2, 3]], "shapes.0", "polygon 0: expected an object"),
        ([rect(0, 0, 5, 5), {"label": "cow", "points": ok}], "shapes.1.label", "'cow' is not a label"),
        ([{"label": "cat", "points": ok, "score": 1}], "shapes.0.score", "unknown key 'score'"),
        ([{"label": "cat", "points": "0,0 1,1"}], "shapes.0.points", "points must be a list of [x, y] pairs"),
        ([{"label": "cat", "points": ok[:2]}], "shapes.0.points", "needs 3 to 500 points, got 2"),
        ([{"label": "cat", "points": [[0, 0], [1, 1, 1], [2, 0]]}], "shapes.0.points.1", "expected [x, y]"),
        ([{"label": "cat", "points": [[0, 0], [1, "1"], [2, 0]]}], "shapes.0.points.1", "got a string"),
        ([{"label": "cat", "points": [[0, 0], [1, True], [2, 0]]}], "shapes.0.points.1", "got a boolean"),
        ([{"label": "cat", "points": [[0, 0], [1, float("inf")], [2, 0]]}], "shapes.0.points.1", "must be numbers"),
        ([{"label": "cat", "points": [[0, 0], [10**400, 1], [2, 0]]}], "shapes.0.points.1", "got an integer"),
        ([{"label": "cat", "points": [[0, 0], [-1, 5], [2, 0]]}], "shapes.0.points.1", "at least 0, got -1"),
        ([{"label": "cat", "points": [[0, 0], [5, 5], [10, 10]]}], "shapes.0.points", "encloses no area"),
        ([{"label": "cat", "points": [[0, 0], [10, 10], [10, 0], [0, 10]]}], "shapes.0.points",
         "crosses itself (edges 0 and 2)"),  # a bow tie
        ([{"label": "cat", "points": [[0, 0], [10, 0], [10, 10], [0, 10], [15, 5]]}], "shapes.0.points",
         "crosses itself (edges 1 and 3)"),  # the last point pulled out through the right-hand side
    ]
    for value, field, message in cases:
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"shapes": value})
        assert e.value.field == field and message in e.value.message, (value, e.value.field, e.value.message)
    # a concave outline (an L) and a star drawn without crossing are fine
    ell = {"label": "cat", "points": [[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]]}
    assert schema.validate_answers({"shapes": [ell]})["shapes"][0]["points"][3] == [4.0, 4.0]


def test_settings_are_checked():
    with pytest.raises(ValidationError, match="refers to field 'picture'"):
        parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "field": "picture"}]})
    with pytest.raises(ValidationError, match="'cat' appears twice"):
        parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "labels": ["cat", "cat"]}]})
    strict = parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "allow_empty": False}]})
    with pytest.raises(ValidationError, match="an answer is required"):
        strict.validate_answers({"shapes": []})
    assert parse_schema(parse_schema(SCHEMA).to_json()) == parse_schema(SCHEMA)
    assert parse_schema(SCHEMA).validate_gold({"shapes": json.dumps([rect(1, 1, 2, 2)])}) == {
        "shapes": [{"label": "cat", "points": [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]]}]}  # a CSV cell


# ---- area, IoU, matching, agreement --------------------------------------------------------------------


def test_the_raster_iou_is_close_to_the_exact_one():
    assert area(rect(0, 0, 10, 5)["points"]) == 50 and area([[0, 0], [10, 0], [0, 10]]) == 50
    assert iou(rect(0, 0, 10, 10), rect(0, 0, 10, 10)) == 1.0
    assert iou(rect(0, 0, 10, 10), rect(0, 0, 10, 10, "dog")) == 0.0  # another label never overlaps
    assert iou(rect(0, 0, 10, 10), rect(10, 0, 10, 10)) == 0.0  # touching
    assert iou(rect(0, 0, 10, 10), rect(5, 0, 10, 10)) == pytest.approx(50 / 150, abs=0.01)
    tri = {"label": "cat", "points": [[0, 0], [100, 0], [0, 100]]}
    assert iou(tri, rect(0, 0, 100, 100)) == pytest.approx(0.5, abs=0.01)  # half the square
    # two circles of radius 100, centres 28.28 apart: the lens formula gives 0.6957
    r, d = 100.0, math.hypot(20, 20)
    lens = 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)
    exact = lens / (2 * math.pi * r * r - lens)
    assert iou(circle(200, 200, 100, n=360), circle(220, 220, 100, n=360)) == pytest.approx(exact, abs=0.005)
    # a concave L and the square it is cut from: 64 of 100
    ell = {"label": "cat", "points": [[0, 0], [10, 0], [10, 2], [2, 2], [2, 10], [0, 10]]}
    assert iou(ell, rect(0, 0, 10, 10)) == pytest.approx(36 / 100, abs=0.01)
    mask = rasterise([[0, 0], [4, 0], [4, 2], [0, 2]], 0, 0, 1, 6, 3)  # cell centres inside the 4x2 rectangle
    assert mask.astype(int).tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    m = iou_matrix([rect(0, 0, 10, 10), rect(20, 20, 10, 10)], [rect(21, 20, 10, 10), rect(0, 0, 10, 10)])
    assert m.shape == (2, 2) and m[0, 1] == 1.0 and m[1, 0] == pytest.approx(90 / 110, abs=0.01) and m[0, 0] == 0
    assert iou_matrix([], [rect(0, 0, 1, 1)]).shape == (0, 1)


def test_matching_agreement_and_f1():
    a = [rect(5.5, 0, 10, 10), rect(7, 0, 10, 10)]
    b = [rect(5, 0, 10, 10), rect(2.5, 0, 10, 10)]  # the one-to-one pairing beats the greedy best pair
    assert [(i, j) for i, j, _ in match(a, b)] == [(0, 1), (1, 0)]
    assert polygon_agreement(a, b) == pytest.approx((7 / 13 + 8 / 12) / 2, abs=0.01)
    assert match([rect(0, 0, 10, 10)], [rect(0, 0, 10, 10, "dog")]) == []
    two = [rect(0, 0, 10, 10), rect(50, 50, 10, 10, "dog")]
    assert polygon_agreement(two, two) == 1.0 and polygon_agreement([], []) == 1.0
    assert polygon_agreement(two, []) == 0.0 and polygon_agreement(two, two[:1]) == 0.5
    assert mean_iou([(two, two), (two, [])]) == 0.5 and np.isnan(mean_iou([]))
    assert match_f1(two, two[:1]) == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3)}
    assert match_f1([], []) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


# ---- fusion ----------------------------------------------------------------------------------------------


def test_fusion_keeps_the_weighted_medoid_of_the_majoritys_polygons():
    ann = [circle(100, 100, 50), rect(300, 300, 40, 40, "dog")]
    bob = [circle(104, 100, 50)]
    cy = [circle(102, 100, 50, n=12), rect(500, 0, 5, 5, "dog")]  # a coarser outline; a dog only cy drew
    polygons, confidence = fuse([ann, bob, cy])
    # ann's, bob's and cy's circles are one cluster; cy's (in the middle) overlaps the other two most
    assert polygons == [{**cy[0], "score": 1.0}] and confidence == 1.0
    # two annotators: the heavier one's polygon; with equal weights the first one's
    assert fuse([ann[:1], bob])[0][0]["points"] == ann[0]["points"]
    assert fuse([ann[:1], bob], weights=[0.4, 0.6])[0][0]["points"] == bob[0]["points"]
    # weights decide the quorum: cy alone outweighs ann and bob together
    polygons, confidence = fuse([ann, bob, cy], weights=[0.1, 0.1, 1.0])
    assert [(p["label"], p["score"]) for p in polygons] == [("dog", 0.8333), ("cat", 1.0)]
    assert polygons[1]["points"] == cy[0]["points"] and confidence == pytest.approx((0.8333 + 1) / 2)
    assert fuse([[], []]) == ([], 1.0)  # nobody drew anything: no polygon, confident
    # one annotator's two overlapping polygons are two objects, never fused together
    two = [rect(0, 0, 10, 10), rect(1, 0, 10, 10)]
    assert len(fuse([two, two])[0]) == 2


def test_weighted_polygon_fusion_learns_who_is_careful_and_uses_gold():
    truth = {t: [circle(60 + 10 * t, 60, 40), rect(200, 100 + t, 30, 30, "dog")] for t in range(1, 7)}
    tasks, workers, values = [], [], []
    for t, polys in truth.items():
        shifted = [{**p, "points": [[x + 1, y] for x, y in p["points"]]} for p in polys]
        for w, answer in (("good1", polys), ("good2", shifted), ("sloppy", [rect(0, 0, 20, 20, "dog")])):
            tasks.append(t)
            workers.append(w)
            values.append(answer)
    wpf = WeightedPolygonFusion().fit(tasks, workers, values, gold={1: truth[1]})
    assert wpf.weights_["good1"] > 0.9 and wpf.weights_["good2"] > 0.9 and wpf.weights_["sloppy"] == 0.05
    assert wpf.labels_[1] == truth[1] and wpf.confidence_[1] == 1.0  # gold is the label
    for t in range(2, 7):
        assert [p["label"] for p in wpf.labels_[t]] == ["cat", "dog"]  # top to bottom
        assert polygon_agreement(wpf.labels_[t], truth[t]) > 0.95
    assert len(WeightedPolygonFusion(n_iter=0).fit_predict(tasks, workers, values)[2]) == 2


def test_the_type_votes_aggregates_and_scores_gold():
    q = parse_schema(SCHEMA).question("shapes")
    a, b = [rect(10, 10, 100, 50)], [rect(12, 10, 100, 50)]
    vote = q.vote([a, b, []])
    assert vote["label"] == a and vote["n"] == 3 and 0.6 < vote["agreement"] < 0.67
    agg = q.aggregate(np.array([1, 1, 2]), np.array([7, 8, 7]), [a, b, []], {})
    assert agg.tasks.tolist() == [1, 2] and agg.values[1] == [] and "weighted medoid polygon fusion" in agg.method
    assert agg.values[0] == a and "score" not in agg.values[0][0]
    assert q.gold_score(a, a) == 1.0 and q.gold_score([], a) == 0.0 and q.gold_score(b, a) == 1.0
    assert q.gold_score(a + [rect(400, 0, 5, 5)], a) == pytest.approx(2 / 3, abs=1e-4)  # one too many
    assert q.gold_score([rect(60, 10, 100, 50)], a) == 0.0  # IoU 0.43: not found
    assert q.matches_label(b, a) is True and q.matches_label([], a) is False
    text = q.answer_text(a, {})
    assert text["text"] == "1 polygon" and text["parts"] == ["cat: 4 points from (10, 10), area 5000"]
    assert q.export_cell(a) == json.dumps(a, separators=(",", ":"))


# ---- end to end, on both databases -------------------------------------------------------------------

ANSWERS = {  # item -> annotator -> polygons
    "p0": {"ann": [rect(10, 10, 100, 80), rect(200, 50, 60, 60, "dog")],
           "bob": [rect(12, 12, 100, 80), rect(202, 50, 60, 60, "dog")],
           "cy": [{"label": "cat", "points": [[11, 11], [111, 11], [111, 91], [61, 93], [11, 91]]}]},
    "p1": {"ann": [], "bob": [], "cy": [rect(5, 5, 10, 10)]},
    "g": {"ann": [rect(50, 50, 40, 40)], "bob": [rect(300, 300, 40, 40)], "cy": [rect(51, 50, 40, 40)]},
}
GOLD = [rect(50, 50, 40, 40)]


def sign_in(http, name: str, password: str) -> None:
    http.cookies.clear()
    assert post_login(http, name, password, follow_redirects=False).status_code == 303


def test_polygons_through_the_api_the_form_aggregation_gold_and_export(http, owner, make_annotator):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json={**SCHEMA, "gold": {"rate": 1}})
    assert r.status_code == 201, r.text
    rows = [{"id": "p0", "photo": "p0.png"}, {"id": "p1", "photo": "p1.png"},
            {"id": "g", "photo": "g.png", "gold": {"shapes": GOLD}}]
    assert http.post("/api/v1/projects/cells/items", headers=h, json={"items": rows}).status_code in (200, 201)

    for name in ("ann", "bob"):
        _, tok = make_annotator(name, password=f"{name}-password")
        for _ in range(3):
            item = http.post("/api/v1/projects/cells/next", headers=bearer(tok)).json()
            assert "gold" not in item["data"] and "[50,50]" not in json.dumps(item, separators=(",", ":"))
            ext = item["data"]["photo"].removesuffix(".png")
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"shapes": [{"label": "cat", "points": [[0, 0], [1, "x"], [2, 0]]}]}})
            assert r.status_code == 422 and r.json()["field"] == "shapes.0.points.1", r.text
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"shapes": ANSWERS[ext][name]}})
            assert r.status_code == 201, r.text

    # cy answers through the labelling page: the JSON the editor keeps in its textarea
    make_annotator("cy", password="cy-password")
    sign_in(http, "cy", "cy-password")
    for _ in range(3):
        page = http.get("/projects/cells/label").text
        start = page.index('id="q-shapes"')
        fieldset = page[start:page.index("</fieldset>", start)]
        assert 'data-polygons="shapes"' in fieldset and 'data-field="photo"' in fieldset
        assert 'name="shapes.label" value="cat"' in fieldset and 'data-polygon-key="2"' in fieldset
        assert "/polygons.js" in fieldset and "/polygons.css" in fieldset
        ext = re.search(r'<code>(\w+)\.png</code>', page).group(1)  # no media root: the path is shown
        csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
        key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
        action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
        form = {"csrf": csrf, "idempotency_key": key}
        r = http.post(action, data={**form, "shapes": "[{oops"}, follow_redirects=False)
        assert r.status_code == 422 and "could not be read" in r.text
        bad = json.dumps([{**rect(0, 0, 5, 5), "label": "<b>x</b>"}])
        r = http.post(action, data={**form, "shapes": bad}, follow_redirects=False)
        assert r.status_code == 422 and "is not a label" in r.text and "<b>x</b>" not in r.text  # escaped
        r = http.post(action, data={**form, "shapes": json.dumps(ANSWERS[ext]["cy"])}, follow_redirects=False)
        assert r.status_code == 303, r.text

    r = http.get("/api/v1/projects/cells/export?format=jsonl", headers=h)
    recs = {rec["external_id"]: rec for rec in map(json.loads, r.text.splitlines())}
    p0 = recs["p0"]["aggregate"]["shapes"]
    # the plain vote (equal weights): cy's five-point cat lies between ann's and bob's, so it is the medoid; two
    # of three drew the dog (ann's and bob's tie: the first one's)
    majority = recs["p0"]["majority"]["shapes"]
    assert majority["label"] == [ANSWERS["p0"]["cy"][0], ANSWERS["p0"]["ann"][1]] and majority["n"] == 3
    # the learnt weights put ann first (cy missed the dog here and drew a lone polygon on p1): ann's cat
    assert p0["label"] == ANSWERS["p0"]["ann"], p0
    assert "weighted medoid polygon fusion" in p0["method"]
    assert recs["p1"]["aggregate"]["shapes"]["label"] == []  # cy's lone polygon is outvoted
    assert recs["g"]["aggregate"]["shapes"]["label"] == GOLD and recs["g"]["aggregate"]["shapes"]["method"] == "gold"

    quality = http.get("/api/v1/projects/cells/quality", headers=h).json()
    accuracy = {a["annotator"]: a.get("gold_accuracy") for a in quality["annotators"]}
    assert accuracy == {"ann": 1, "bob": 0, "cy": 1}  # bob's polygon on the gold item is elsewhere

    # cy amends an answer: the saved polygons come back as the editor's JSON
    history = http.get("/projects/cells/history").text
    amend = re.search(r'href="(/projects/cells/history/\d+)"', history).group(1)
    page = http.get(amend).text
    saved = re.search(r'<textarea class="polygons-json" name="shapes"[^>]*>([^<]*)</textarea>', page).group(1)
    assert json.loads(html.unescape(saved)) in [ANSWERS[ext]["cy"] for ext in ANSWERS]

    sign_in(http, "olive", "owner-password")
    r = http.get(f"/projects/cells/items/{recs['p0']['item_id']}")
    assert r.status_code == 200 and "weighted medoid polygon fusion" in r.text
    assert http.get("/projects/cells/quality").status_code == 200


# ---- the docs page -----------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "task-types" / "polygons.md"


def test_the_docs_schema_parses_and_the_worked_example_holds():
    text = DOC.read_text()
    q = parse_schema(yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))).question("pets")
    assert q.type == "polygons" and q.labels == ["cat", "dog"] and q.threshold == 0.5
    scope: dict = {}
    exec(re.search(r"```python\n(.*?)```", text, re.S).group(1), scope)  # the page's example, as written
    wpf, ann, bob, cy = scope["wpf"], scope["ann"], scope["bob"], scope["cy"]
    assert [round(iou(ann[0], bob[0]), 3), round(iou(ann[0], cy[0]), 3), round(iou(bob[0], cy[0]), 3),
            round(iou(ann[1], bob[1]), 3)] == [0.928, 0.845, 0.801, 0.945]
    polygons, _ = fuse([ann, bob, cy])
    assert [(p["points"], p["score"]) for p in polygons] == [(ann[0]["points"], 1.0), (ann[1]["points"], 0.6667)]
    assert [round(polygon_agreement(a, polygons), 3) for a in (ann, bob, cy)] == [1.0, 0.936, 0.422]
    assert wpf.labels_[1] == [{**ann[0], "score": 1.0}, {**ann[1], "score": 0.8209}]
    assert {k: round(v, 3) for k, v in wpf.weights_.items()} == {"ann": 1.0, "bob": 0.936, "cy": 0.422}
    assert round(wpf.confidence_[1], 3) == 0.91 and q.gold_score(cy, ann) == 0.5
    assert area(ann[0]["points"]) == 25000 and '"bbox": [40, 60, 200, 150], "area": 25000.0' in text
    lines = [yolo_segment_line(p, i, 640, 480) for i, p in enumerate(wpf.labels_[1])]
    assert "\n  ".join(lines) in text
    # the page's table of refusals shows what the server says
    for points, field in (([[0, 0], [1, "1"], [2, 0]], "pets.0.points.1"),
                          ([[0, 0], [10, 10], [10, 0], [0, 10]], "pets.0.points")):
        with pytest.raises(ValidationError) as e:
            q.validate_answer([{"label": "cat", "points": points}])
        assert e.value.field == field and f"| `{field}` | {e.value.message} |" in text
