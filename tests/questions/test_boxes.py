"""The boxes question type: answers validated, boxes matched by IoU and fused with annotator weights, agreement
and gold scored by matched IoU; then end to end through the API on SQLite and PostgreSQL (answers refused
with the failing part named, the labelling form, the fused aggregate in the export, gold accuracy)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from labelwright.errors import ValidationError
from labelwright.io.yolo import yolo_line
from labelwright.quality.boxes import (
    WeightedBoxFusion,
    box_agreement,
    fuse,
    iou,
    iou_matrix,
    match,
    match_f1,
    mean_iou,
)
from labelwright.schema import parse_schema
from tests.conftest import bearer, post_login

SCHEMA = {
    "name": "Pets", "slug": "pets", "overlap": 3, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "pets", "type": "boxes", "prompt": "Box every pet", "field": "photo",
                   "labels": ["cat", "dog"]}],
}


def B(x, y, w, h, label="cat"):
    return {"x": x, "y": y, "w": w, "h": h, "label": label}


# ---- the schema and answers ------------------------------------------------------------------------


def test_answers_are_validated_naming_the_box_and_part():
    schema = parse_schema(SCHEMA)
    assert schema.validate_answers({"pets": [{"x": 1, "y": 2.345, "w": 30, "h": 40, "label": "dog"}]}) == {
        "pets": [{"x": 1.0, "y": 2.35, "w": 30.0, "h": 40.0, "label": "dog"}]}
    assert schema.validate_answers({"pets": []}) == {"pets": []}  # no pet in the picture is an answer
    cases = [
        ({"x": 1}, "pets", "expected a list of boxes"),
        ([[1, 2, 3, 4]], "pets.0", "box 0: expected an object"),
        ([B(0, 0, 10, 10), B(0, 0, 10, 10, "cow")], "pets.1.label", "'cow' is not a label"),
        ([B(0, 0, 0, 10)], "pets.0.w", "w must be above 0"),
        ([B(-1, 0, 5, 10)], "pets.0.x", "x must be at least 0"),
        ([B(0, "3", 5, 10)], "pets.0.y", "y must be a number of pixels, got a string"),
        ([B(0, True, 5, 10)], "pets.0.y", "got a boolean"),
        ([{**B(0, 0, 5, 5), "score": 1}], "pets.0.score", "unknown key 'score'"),
        ([B(0, float("nan"), 5, 10)], "pets.0.y", "must be a number"),
        ([B(10**400, 0, 5, 10)], "pets.0.x", "x must be a number of pixels, got an integer"),  # was OverflowError
    ]
    for value, field, message in cases:
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"pets": value})
        assert e.value.field == field and message in e.value.message, (value, e.value.field, e.value.message)


def test_settings_are_checked():
    with pytest.raises(ValidationError, match="refers to field 'picture'"):
        parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "field": "picture"}]})
    with pytest.raises(ValidationError, match="'cat' appears twice"):
        parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "labels": ["cat", "cat"]}]})
    with pytest.raises(ValidationError):
        parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "shape": "polygon"}]})
    strict = parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "allow_empty": False}]})
    with pytest.raises(ValidationError, match="an answer is required"):
        strict.validate_answers({"pets": []})
    assert parse_schema(parse_schema(SCHEMA).to_json()) == parse_schema(SCHEMA)
    assert parse_schema(SCHEMA).validate_gold({"pets": json.dumps([B(1, 1, 2, 2)])}) == {
        "pets": [{"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0, "label": "cat"}]}  # a CSV cell's JSON


# ---- IoU, matching, agreement ------------------------------------------------------------------------


def test_iou_by_hand():
    assert iou(B(0, 0, 10, 10), B(0, 0, 10, 10)) == 1.0
    assert iou(B(0, 0, 10, 10), B(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(B(0, 0, 10, 10), B(10, 0, 10, 10)) == 0.0  # touching
    assert iou(B(0, 0, 10, 10), B(0, 0, 10, 10, "dog")) == 0.0  # another label never overlaps
    assert iou(B(0, 0, 10, 10), B(2, 2, 5, 5)) == pytest.approx(25 / 100)  # one inside the other
    m = iou_matrix([B(0, 0, 10, 10), B(20, 20, 10, 10)], [B(21, 20, 10, 10), B(0, 0, 10, 10)])
    assert m.shape == (2, 2) and m[0, 1] == 1.0 and m[1, 0] == pytest.approx(90 / 110) and m[0, 0] == 0
    assert iou_matrix([], [B(0, 0, 1, 1)]).shape == (0, 1)


def test_matching_maximises_the_summed_iou_one_to_one():
    # greedy on the best pair would take a0-b0 (0.905) and leave a1 without a match (a1-b1 is 0.38); the
    # assignment pairs a0-b1 (0.54) and a1-b0 (0.67)
    a = [B(5.5, 0, 10, 10), B(7, 0, 10, 10)]
    b = [B(5, 0, 10, 10), B(2.5, 0, 10, 10)]
    assert iou(a[0], b[0]) == pytest.approx(9.5 / 10.5) and iou(a[1], b[1]) < 0.5
    assert [(i, j) for i, j, _ in match(a, b)] == [(0, 1), (1, 0)]
    assert box_agreement(a, b) == pytest.approx((7 / 13 + 8 / 12) / 2)
    assert [(i, j) for i, j, _ in match(a, b, threshold=0.6)] == [(0, 0)]  # a0-b1 is under it now
    assert match([B(0, 0, 10, 10)], [B(0, 0, 10, 10, "dog")]) == []


def test_agreement_counts_unmatched_boxes_as_zero():
    a = [B(0, 0, 10, 10), B(50, 50, 10, 10, "dog")]
    assert box_agreement(a, a) == 1.0
    assert box_agreement([], []) == 1.0
    assert box_agreement(a, []) == 0.0
    assert box_agreement(a, a[:1]) == 0.5  # one of two found exactly
    assert box_agreement([B(0, 0, 10, 10)], [B(5, 0, 10, 10)]) == 0.0  # IoU 1/3 is under the threshold
    assert box_agreement([B(0, 0, 10, 10)], [B(5, 0, 10, 10)], threshold=0.3) == pytest.approx(1 / 3)
    assert mean_iou([(a, a), (a, [])]) == 0.5
    assert np.isnan(mean_iou([]))
    assert match_f1(a, a[:1]) == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3)}
    assert match_f1([], []) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


# ---- fusion ----------------------------------------------------------------------------------------


def test_fusion_averages_matched_boxes_and_keeps_the_majoritys():
    ann = [B(10, 10, 100, 50), B(300, 300, 20, 20, "dog")]
    bob = [B(14, 12, 100, 50)]
    cy = [B(12, 8, 100, 50), B(500, 0, 5, 5, "dog")]  # a box only cy drew: not a majority
    boxes, confidence = fuse([ann, bob, cy])
    assert boxes == [{"x": 12.0, "y": 10.0, "w": 100.0, "h": 50.0, "label": "cat", "score": 1.0}]
    assert confidence == 1.0
    # weights move the average and decide the quorum: cy alone outweighs ann and bob together
    boxes, confidence = fuse([ann, bob, cy], weights=[0.1, 0.1, 1.0])
    assert boxes == [{"x": 500.0, "y": 0.0, "w": 5.0, "h": 5.0, "label": "dog", "score": 0.8333},
                     {"x": 12.0, "y": 8.5, "w": 100.0, "h": 50.0, "label": "cat", "score": 1.0}]
    assert confidence == pytest.approx((0.8333 + 1) / 2)
    # nobody drew anything: no box, confident
    assert fuse([[], []]) == ([], 1.0)
    # one annotator's two overlapping boxes are two objects, never fused together
    boxes, _ = fuse([[B(0, 0, 10, 10), B(1, 0, 10, 10)], [B(0, 0, 10, 10), B(1, 0, 10, 10)]])
    assert len(boxes) == 2


def test_weighted_box_fusion_learns_who_is_careful_and_uses_gold():
    truth = {t: [B(10 * t, 10, 50, 40), B(200, 100 + t, 30, 30, "dog")] for t in range(1, 7)}
    tasks, workers, values = [], [], []
    for t, boxes in truth.items():
        for w, answer in (("good1", boxes), ("good2", [{**b, "x": b["x"] + 1} for b in boxes]),
                          ("sloppy", [B(0, 0, 20, 20, "dog")])):
            tasks.append(t)
            workers.append(w)
            values.append(answer)
    wbf = WeightedBoxFusion().fit(tasks, workers, values, gold={1: truth[1]})
    assert wbf.weights_["good1"] > 0.9 and wbf.weights_["good2"] > 0.9 and wbf.weights_["sloppy"] == 0.05
    assert wbf.labels_[1] == truth[1] and wbf.confidence_[1] == 1.0  # gold is the label
    for t in range(2, 7):
        assert [b["label"] for b in wbf.labels_[t]] == ["cat", "dog"]
        assert box_agreement(wbf.labels_[t], truth[t]) > 0.95
    # the same answers without weights: sloppy's lone box still loses (1 of 3)
    assert len(WeightedBoxFusion(n_iter=0).fit_predict(tasks, workers, values)[2]) == 2


def test_the_type_votes_aggregates_and_scores_gold():
    q = parse_schema(SCHEMA).question("pets")
    a, b = [B(10, 10, 100, 50)], [B(12, 10, 100, 50)]
    vote = q.vote([a, b, []])
    assert vote["label"] == [{"x": 11.0, "y": 10.0, "w": 100.0, "h": 50.0, "label": "cat"}] and vote["n"] == 3
    assert 0.6 < vote["agreement"] < 0.67  # two near-exact answers and an empty one
    agg = q.aggregate(np.array([1, 1, 2]), np.array([7, 8, 7]), [a, b, []], {})
    assert agg.tasks.tolist() == [1, 2] and agg.values[1] == [] and "weighted box fusion" in agg.method
    # gold: the F1 of the boxes matched at IoU >= 0.5: right when all are found and none added
    assert q.gold_score(a, a) == 1.0 and q.gold_score([], a) == 0.0 and q.gold_score(a, b) == 1.0
    assert q.gold_score(a + [B(400, 0, 5, 5)], a) == pytest.approx(2 / 3, abs=1e-4)  # a box too many
    assert q.gold_score([B(60, 10, 100, 50)], a) == 0.0  # IoU 0.43: not found
    assert q.gold_score([], []) == 1.0
    assert q.matches_label(b, a) is True and q.matches_label([], a) is False
    assert q.answer_text(a, {})["text"] == "1 box" and q.answer_text(a, {})["parts"] == ["cat at (10, 10), 100×50"]
    assert q.export_cell(a) == json.dumps(a, separators=(",", ":"))


# ---- end to end, on both databases -------------------------------------------------------------------

ANSWERS = {  # item -> annotator -> boxes
    "p0": {"ann": [B(10, 10, 100, 80), B(200, 50, 60, 60, "dog")],
           "bob": [B(12, 12, 100, 80), B(202, 50, 60, 60, "dog")],
           "cy": [B(11, 9, 98, 80)]},
    "p1": {"ann": [], "bob": [], "cy": [B(5, 5, 10, 10)]},
    "g": {"ann": [B(50, 50, 40, 40)], "bob": [B(300, 300, 40, 40)], "cy": [B(51, 50, 40, 40)]},
}
GOLD = [B(50, 50, 40, 40)]


def sign_in(http, name: str, password: str) -> None:
    http.cookies.clear()
    assert post_login(http, name, password, follow_redirects=False).status_code == 303


def test_boxes_through_the_api_the_form_aggregation_gold_and_export(http, owner, make_annotator):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json={**SCHEMA, "gold": {"rate": 1}})
    assert r.status_code == 201, r.text
    rows = [{"id": "p0", "photo": "p0.png"}, {"id": "p1", "photo": "p1.png"},
            {"id": "g", "photo": "g.png", "gold": {"pets": GOLD}}]
    assert http.post("/api/v1/projects/pets/items", headers=h, json={"items": rows}).status_code in (200, 201)

    for name in ("ann", "bob"):
        _, tok = make_annotator(name, password=f"{name}-password")
        for _ in range(3):
            item = http.post("/api/v1/projects/pets/next", headers=bearer(tok)).json()
            shown = json.dumps(item, separators=(",", ":"))
            assert "gold" not in item["data"] and '"x":50' not in shown  # annotators never see gold
            ext = item["data"]["photo"].removesuffix(".png")
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"pets": [B(1, 1, 5, 5, "horse")]}})
            assert r.status_code == 422 and r.json()["field"] == "pets.0.label", r.text
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"pets": ANSWERS[ext][name]}})
            assert r.status_code == 201, r.text

    # cy answers through the labelling page: the JSON the editor keeps in its textarea
    make_annotator("cy", password="cy-password")
    sign_in(http, "cy", "cy-password")
    for _ in range(3):
        page = http.get("/projects/pets/label").text
        start = page.index('id="q-pets"')
        fieldset = page[start:page.index("</fieldset>", start)]
        assert 'data-boxes="pets"' in fieldset and 'data-field="photo"' in fieldset
        assert 'name="pets.label" value="cat"' in fieldset and 'data-box-key="2"' in fieldset
        assert "/boxes.js" in fieldset
        assert '<section class="field field-image" aria-label="photo" data-field="photo">' in page
        ext = re.search(r'<code>(\w+)\.png</code>', page).group(1)  # no media root: the path is shown
        csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
        key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
        action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "pets": "[{oops"}, follow_redirects=False)
        assert r.status_code == 422 and "could not be read" in r.text
        bad = json.dumps([B(0, 0, 5, 5, "<b>x</b>")])
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "pets": bad}, follow_redirects=False)
        assert r.status_code == 422 and "is not a label" in r.text and "<b>x</b>" not in r.text  # escaped
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "pets": json.dumps(ANSWERS[ext]["cy"])},
                      follow_redirects=False)
        assert r.status_code == 303, r.text

    r = http.get("/api/v1/projects/pets/export?format=jsonl", headers=h)
    recs = {rec["external_id"]: rec for rec in map(json.loads, r.text.splitlines())}
    p0 = recs["p0"]["aggregate"]["pets"]
    assert [b["label"] for b in p0["label"]] == ["cat", "dog"]  # cy missed the dog: two of three drew it
    cat = p0["label"][0]
    assert abs(cat["x"] - 11) < 1 and abs(cat["y"] - 10.3) < 1 and "weighted box fusion" in p0["method"]
    assert recs["p1"]["aggregate"]["pets"]["label"] == []  # cy's lone box is outvoted
    assert recs["g"]["aggregate"]["pets"]["label"] == GOLD and recs["g"]["aggregate"]["pets"]["method"] == "gold"
    assert recs["p0"]["majority"]["pets"]["n"] == 3
    assert sorted(len(a["answers"]["pets"]) for a in recs["p0"]["annotations"]) == [1, 2, 2]

    quality = http.get("/api/v1/projects/pets/quality", headers=h).json()
    accuracy = {a["annotator"]: a.get("gold_accuracy") for a in quality["annotators"]}
    assert accuracy == {"ann": 1, "bob": 0, "cy": 1}  # bob's box on the gold item is elsewhere

    # cy amends an answer: the saved boxes come back as the editor's JSON, escaped
    history = http.get("/projects/pets/history").text
    amend = re.search(r'href="(/projects/pets/history/\d+)"', history).group(1)
    page = http.get(amend).text
    saved = html.unescape(re.search(r'<textarea class="boxes-json" name="pets"[^>]*>([^<]*)</textarea>', page).group(1))
    assert json.loads(saved) in [ANSWERS[ext]["cy"] for ext in ANSWERS]

    # the owner's item page shows the fused consensus and its method; the quality page renders
    sign_in(http, "olive", "owner-password")
    r = http.get(f"/projects/pets/items/{recs['p0']['item_id']}")
    assert r.status_code == 200 and 'title="weighted box fusion (IoU &gt;= 0.5' in r.text
    assert http.get("/projects/pets/quality").status_code == 200


# ---- the docs page -----------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "task-types" / "boxes.md"


def test_the_docs_schema_parses_and_the_worked_example_holds():
    text = DOC.read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    q = parse_schema(yaml.safe_load(block)).question("pets")
    assert q.labels == ["cat", "dog"] and q.threshold == 0.5
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(code, scope)  # the page's example, as written
    wbf = scope["wbf"]
    assert wbf.labels_[1] == [{"x": 41.21, "y": 59.59, "w": 201.21, "h": 149.22, "label": "cat", "score": 1.0},
                              {"x": 398.01, "y": 121.99, "w": 160.0, "h": 198.01, "label": "dog", "score": 0.8049}]
    assert {k: round(v, 3) for k, v in wbf.weights_.items()} == {"ann": 0.969, "bob": 0.955, "cy": 0.466}
    assert round(wbf.confidence_[1], 3) == 0.902
    ann, bob, cy = scope["ann"], scope["bob"], scope["cy"]
    boxes, _ = fuse([ann, bob, cy])
    assert [(b["x"], b["y"], b["w"], b["h"], b["score"]) for b in boxes] == [
        (40.67, 60.0, 200.67, 148.67, 1.0), (398.0, 122.0, 160.0, 198.0, 0.6667)]
    assert [round(box_agreement(a, boxes), 3) for a in (ann, bob, cy)] == [0.973, 0.95, 0.472]
    assert round(box_agreement(cy, ann), 3) == 0.472 and q.gold_score(cy, ann) == 0.5
    assert "0 0.221586 0.279583 0.314391 0.310875\n  1 0.746891 0.460406 0.250000 0.412521" in text
    assert yolo_line(wbf.labels_[1][0], 0, 640, 480) == "0 0.221586 0.279583 0.314391 0.310875"
