"""Each question type shows its answers itself (QuestionType.answer_html / label_html): spans highlighted in
their text with their labels, boxes drawn over the image in its own pixels, a code task's code with Run, the
rest as their words; everything from the item and the answer escaped. The owner's item page and the review
page show answers that way, and the item page's gold check is the type's own gold_score (partial credit
for spans and boxes). Both databases for the pages."""

from __future__ import annotations

import re

import pytest
from markupsafe import Markup

from labelwright.errors import ValidationError
from labelwright.questions import ItemView
from labelwright.schema import parse_schema
from tests.conftest import bearer, post_login

EVIL = "<script>alert(1)</script>"
TEXT = f"Ada Lovelace met {EVIL} Babbage"
SCHEMA = {
    "name": "Shown", "slug": "shown", "overlap": 3, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text"}, {"name": "photo", "type": "image"},
               {"name": "code", "type": "text"}],
    "questions": [
        {"name": "ents", "type": "spans", "field": "text", "required": False,
         "labels": [{"value": "PER"}, {"value": "X", "label": EVIL}]},
        {"name": "objs", "type": "boxes", "field": "photo", "labels": ["car", EVIL], "width_field": "w",
         "height_field": "h", "required": False},
        {"name": "ok", "type": "code", "code": "code", "required": False},
    ],
}
ITEM = {"id": "i1", "text": TEXT, "photo": "https://example.org/a.png", "w": 200, "h": 100,
        "code": f"print('{EVIL}')"}
ADA = {"start": 0, "end": 12, "label": "PER"}
BAB = {"start": TEXT.index("Babbage"), "end": len(TEXT), "label": "PER"}
SCRIPT = {"start": TEXT.index(EVIL), "end": TEXT.index(EVIL) + len(EVIL), "label": "X"}


def _view() -> ItemView:
    return ItemView(data=ITEM, titles={"text": "Text", "photo": "Photo", "code": "Code"},
                    images={"photo": ITEM["photo"]}, item_id=7)


def test_spans_are_highlighted_in_their_text_with_their_labels_and_everything_is_escaped():
    q = parse_schema(SCHEMA).question("ents")
    html = q.answer_html([ADA, SCRIPT], _view())
    assert isinstance(html, Markup) and "<script" not in html
    assert '<mark class="seg is-span span-c0" title="PER">Ada Lovelace</mark><span class="span-tag span-c0">PER' in html
    assert ('<mark class="seg is-span span-c1" title="&lt;script&gt;alert(1)&lt;/script&gt;">'
            "&lt;script&gt;alert(1)&lt;/script&gt;</mark>") in html
    assert html.count("<mark") == 2 and " met " in html and "Babbage</p>" in html
    # overlapping spans: the shared part is marked once, with both labels in its title
    overlap = q.answer_html([{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 16, "label": "X"}], _view())
    assert 'is-overlap" title="PER + &lt;script&gt;' in overlap and "<script" not in overlap
    # no text to show them in (or spans past it): the list of spans, escaped
    listed = q.answer_html([SCRIPT], ItemView(data={"text": "short"}))
    assert '<ol class="answer-ranking"><li>&lt;script&gt;alert(1)&lt;/script&gt;' in listed
    assert q.answer_html([], _view()) == Markup('<strong class="answer-label">no spans</strong>')
    assert q.label_html([ADA], _view()) == q.answer_html([ADA], _view())


def test_boxes_are_drawn_over_the_image_in_its_pixels_and_listed():
    q = parse_schema(SCHEMA).question("objs")
    boxes = [{"x": 10, "y": 20, "w": 50.5, "h": 30, "label": "car"},
             {"x": 100, "y": 0, "w": 20, "h": 20, "label": EVIL}]
    html = q.answer_html(boxes, _view())
    assert "<script" not in html
    assert '<svg class="boxes-overlay" viewBox="0 0 200 100" role="img" aria-label="2 boxes">' in html
    assert '<image href="https://example.org/a.png" x="0" y="0" width="200" height="100"/>' in html
    assert '<rect x="10" y="20" width="50.5" height="30" fill="none" stroke="#e6194b"' in html
    assert 'data-label="&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "<li>car at (10, 20), 50.5×30</li>" in html
    # a size but no image the page can load: a frame; no size: only the list
    framed = q.answer_html(boxes, ItemView(data=ITEM, images={"photo": None}))
    assert '<rect class="boxes-frame"' in framed and "<image" not in framed
    assert "<svg" not in q.answer_html(boxes, ItemView(data={"photo": "a.png"}))


def test_a_code_answer_is_its_code_with_run_and_other_types_keep_their_words():
    schema = parse_schema(SCHEMA)
    q = schema.question("ok")
    html = q.answer_html({"verdict": "fail"}, _view())
    assert html.startswith('<strong class="answer-label">Fails</strong>')
    assert '<div class="code-task code-answer" data-code-task="ok" data-item-id="7">' in html
    assert "<pre class=\"answer-code\"><code>print(&#39;&lt;script&gt;" in html and "<script" not in html
    assert "data-code-run" in html and "Code (unchanged)" in html
    edited = q.answer_html({"verdict": "needs_fix", "code": "x = '</textarea><b>'"}, _view())
    assert "Edited code" in edited and "&lt;/textarea&gt;&lt;b&gt;" in edited and "<b>" not in edited
    rating = parse_schema({**SCHEMA, "questions": [{"name": "r", "type": "text"}]}).question("r")
    assert rating.answer_html(EVIL, _view()) == Markup(
        '<div class="answer-text">&lt;script&gt;alert(1)&lt;/script&gt;</div>')


# ---- the pages ----------------------------------------------------------------------------------------


def _answer(http, token: str, answers: dict) -> int:
    h = bearer(token)
    item = http.post("/api/v1/projects/shown/next", headers=h).json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=h, json={"answers": answers})
    assert r.status_code == 201, r.text
    return item["id"]


def test_the_item_page_shows_answers_through_their_types_and_scores_gold_with_them(http, owner, make_annotator):
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json=SCHEMA).status_code == 201
    assert http.post("/api/v1/projects/shown/items", headers=h, json={"items": [ITEM]}).status_code in (200, 201)
    ann = make_annotator("ann", "ann-password")
    bob = make_annotator("bob", "bob-password")
    item_id = _answer(http, ann[1], {"ents": [ADA, BAB], "objs": [{"x": 10, "y": 10, "w": 50, "h": 50, "label": "car"}],
                                     "ok": {"verdict": "fail"}})
    _answer(http, bob[1], {"ents": [ADA], "objs": [], "ok": {"verdict": "pass"}})
    gold = {"ents": [ADA, BAB], "objs": [{"x": 10, "y": 10, "w": 50, "h": 50, "label": "car"}], "ok": "fail"}
    r = http.put(f"/api/v1/projects/shown/items/{item_id}/gold", headers=h, json={"answers": gold})
    assert r.status_code == 200, r.text

    post_login(http, "olive", "owner-password")
    page = http.get(f"/projects/shown/items/{item_id}")
    assert page.status_code == 200
    table = page.text.split('id="answers-h"')[1]
    assert "<script>alert" not in page.text and "{&#39;start&#39;" not in table and "{'start'" not in table
    rows = re.findall(r"<tr><td>(ann|bob)</td>(.*?)</tr>", table, re.S)
    assert [r[0] for r in rows] == ["ann", "bob"]
    ann_row, bob_row = rows[0][1], rows[1][1]
    assert ann_row.count('<mark class="seg is-span') == 2 and '<svg class="boxes-overlay"' in ann_row
    assert ann_row.count('title="matches gold">✓') == 3  # each question by its own type's score
    assert 'title="partly matches gold (score 0.67)">✗ 0.67' in bob_row  # one of two spans: F1 2/3
    assert bob_row.count('title="differs from gold">✗') == 2 and "no boxes" in bob_row
    assert 'data-code-task="ok" data-item-id' in ann_row and "Fails" in ann_row and "Passes" in bob_row

    # an annotator may not open it
    post_login(http, "ann", "ann-password")
    assert http.get(f"/projects/shown/items/{item_id}").status_code == 403


def test_the_review_page_shows_the_answer_through_its_type(http, owner, make_annotator):
    h = bearer(owner[1])
    http.post("/api/v1/projects", headers=h, json={**SCHEMA, "review": {"mode": "all"}})
    http.post("/api/v1/projects/shown/items", headers=h, json={"items": [ITEM]})
    ann = make_annotator("ann", "ann-password")
    _answer(http, ann[1], {"ents": [SCRIPT], "objs": [{"x": 1, "y": 1, "w": 5, "h": 5, "label": EVIL}]})
    post_login(http, "olive", "owner-password")
    page = http.get("/projects/shown/review")
    assert page.status_code == 200, page.text
    shown = page.text.split('id="review-answer"')[1].split("</section>")[0]
    assert '<mark class="seg is-span span-c1"' in shown and '<svg class="boxes-overlay"' in shown
    assert "<script>" not in page.text


def test_polygons_are_drawn_over_the_image_and_checked_against_its_size():
    schema = parse_schema({**SCHEMA, "questions": [
        {"name": "outlines", "type": "polygons", "field": "photo", "labels": ["lake", EVIL],
         "width_field": "w", "height_field": "h"}]})
    q = schema.question("outlines")
    polygons = [{"label": "lake", "points": [[10, 10], [60.5, 10], [30, 40]]},
                {"label": EVIL, "points": [[100, 0], [150, 0], [150, 50], [100, 50]]}]
    clean = q.validate_answer(polygons)
    html = q.answer_html(clean, _view())
    assert "<script" not in html
    assert '<svg class="boxes-overlay" viewBox="0 0 200 100" role="img"' in html
    assert '<image href="https://example.org/a.png" x="0" y="0" width="200" height="100"/>' in html
    assert '<polygon points="10,10 60.5,10 30,40" fill="#e6194b"' in html
    assert 'data-label="&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "<svg" not in q.answer_html(clean, ItemView(data={"photo": "a.png"}))  # no size: the list only
    q.check_item(clean, ITEM)  # inside the 200 x 100 image
    outside = q.validate_answer([{"label": "lake", "points": [[10, 10], [250, 10], [30, 40]]}])
    with pytest.raises(ValidationError, match="polygon 0 point 1: 250 is outside the image") as err:
        q.check_item(outside, ITEM)
    assert err.value.field == "outlines.0.points.1"
    q.check_item(outside, {"photo": "a.png"})  # the item gives no size: nothing to check against
