"""A reviewer fixing a spans answer and a boxes answer in real Chromium (headless, through Playwright).

On the review page the Fix step shows each question's own editor (spans.js, boxes.js) on the annotator's answer:
the reviewer presses F, removes a wrong span (a double click selects it, Delete removes it) and adds missing ones
(a mouse drag and the label's key; → by word and the key), or moves one box by dragging it and deletes another
(Delete), and saves with Enter. The review stored is "fixed" with exactly the edited answer, and the annotator's
own answer is kept as it was. The items' texts carry markup, shown as text. A server process on a SQLite file,
with a media root.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image
from sqlalchemy import text

from labelwright.services import access, items, projects, queue, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context
from tests.browser.test_browser import _require_chromium, browser  # noqa: F401 - the browser fixture
from tests.browser.test_browser_label_instant import wait_for
from tests.browser.test_browser_review import PASSWORDS, _context, sign_in
from tests.conftest import hand_out
from tests.server import ServerProcess

pytestmark = pytest.mark.browser

NAMES = "Ada Lovelace wrote to <script>window.pwned = 1</script> Charles Babbage from London ."
CAPTION = '<b>Two pets</b> <img src="/nowhere.png" onerror="window.pwned = 2">'
SPANS = {
    "name": "Names", "slug": "names", "id_field": "id", "overlap": 1, "gold": {"rate": 0}, "review": {"mode": "all"},
    "fields": [{"name": "text", "type": "text", "label": "Letter"}],
    "questions": [{"name": "ents", "type": "spans", "prompt": "Mark the names", "field": "text",
                   "labels": ["PER", "LOC"]}],
}
BOXES = {
    "name": "Pets", "slug": "pets", "id_field": "id", "overlap": 1, "gold": {"rate": 0}, "review": {"mode": "all"},
    "fields": [{"name": "photo", "type": "image", "label": "Photo"},
               {"name": "caption", "type": "text", "label": "Caption"}],
    "questions": [{"name": "pets", "type": "boxes", "prompt": "Box every pet", "field": "photo",
                   "labels": ["cat", "dog"]}],
}


def span(phrase: str, label: str) -> dict:
    start = NAMES.index(phrase)  # the text is all in the Basic Multilingual Plane: code points are indexes
    return {"start": start, "end": start + len(phrase), "label": label}


ANA_SPANS = [span("Ada Lovelace", "PER"), span("London", "PER")]  # London is a place; Babbage is missing
ANA_BOXES = [{"x": 100, "y": 80, "w": 200, "h": 120, "label": "cat"},
             {"x": 500, "y": 300, "w": 100, "h": 100, "label": "dog"}]


class Seeded:
    def __init__(self, db_url: str):
        self.store = Store(db_url)

    def answer(self, slug: str, name: str, answers: dict) -> int:
        """``name``'s submission on the project's one item; its annotation id."""
        with self.store.read() as conn:
            item_id = conn.execute(text("SELECT i.id FROM items i JOIN projects p ON p.id = i.project_id "
                                        "WHERE p.slug = :s"), {"s": slug}).scalar_one()
        user = users.get_user(self.store, name)
        hand_out(self.store, item_id, user)
        return queue.submit(self.store, item_id, user, answers, active_ms=3000)[0]["id"]

    def stored(self, annotation_id: int) -> tuple[str, dict | None, dict]:
        """The review decision, the fixed answers, and the annotator's own answers of a submission."""
        with self.store.read() as conn:
            decision, fixed = conn.execute(text("SELECT decision, fixed_answers FROM reviews "
                                                "WHERE annotation_id = :a"), {"a": annotation_id}).one()
            own = conn.execute(text("SELECT answers FROM annotations WHERE id = :a"),
                               {"a": annotation_id}).scalar_one()
        return decision, json.loads(fixed) if fixed else None, json.loads(own)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("browser-review-types")
    media = tmp / "media"
    media.mkdir()
    Image.new("RGB", (800, 600), (40, 120, 200)).save(media / "pets.png")
    db = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORDS["olive"])
        users.create_user(store, "ana", "annotator", PASSWORDS["ana"])
        users.create_user(store, "rita", "reviewer", PASSWORDS["rita"])
        for schema, item in ((SPANS, {"id": "letter", "text": NAMES}),
                             (BOXES, {"id": "pets", "photo": "pets.png", "caption": CAPTION})):
            p = projects.create_project(store, schema, created_by=owner.id)
            items.add_items(store, p, [item])
            access.set_member(store, p, "ana", "annotator")
            access.set_member(store, p, "rita", "reviewer")
    finally:
        store.close()
    proc = ServerProcess(db, extra_env={"LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0",
                                        "LABELWRIGHT_MEDIA_ROOT": str(media)})
    with proc.start():
        proc.seed = Seeded(db)
        yield proc
        proc.seed.store.close()


@pytest.fixture
def page(browser):  # noqa: F811 - browser is the fixture's value
    context, page, errors = _context(browser, "wide")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield page
    close_context(context)
    assert not errors, f"the page logged errors: {errors}"
    assert not dialogs, f"the page opened dialogs: {dialogs}"


def assert_markup_shown_as_text(page, shown: str) -> None:
    """``shown`` appears as text in the item on the review page, and none of its markup ran."""
    assert shown in page.locator("article.item").inner_text()
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("article.item script, article.item b, article.item img[src='/nowhere.png']").count() == 0


# The screen rectangle of code points [a, b) of the fix form's spans box (text of the Basic Multilingual Plane).
RECT = """([a, b]) => {
  const box = document.querySelector('#review-fix [data-spans-text]');
  const at = (n, end) => { let count = 0;  // a start in the node that holds it, not at the end of the one before
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (count + node.data.length > n || (end && count + node.data.length === n)) return [node, n - count];
      count += node.data.length; } };
  const range = document.createRange();
  range.setStart(...at(a, false)); range.setEnd(...at(b, true));
  const r = range.getClientRects();
  const first = r[0], last = r[r.length - 1];
  return {x0: first.left, y0: first.top + first.height / 2, x1: last.right, y1: last.top + last.height / 2};
}"""


def spans_value(page) -> list:
    return page.evaluate("JSON.parse(document.querySelector('#review-fix [data-spans-value]').value)")


def test_a_reviewer_fixes_a_spans_answer(server, page):
    sub = server.seed.answer("names", "ana", {"ents": ANA_SPANS})
    sign_in(page, server, "rita", "/projects/names/review")
    wait_for(page, "document.querySelector('#review-fix [data-spans-text] .seg') !== null")
    assert_markup_shown_as_text(page, NAMES)
    assert page.locator("#review-fix [data-spans-text]").inner_text() == NAMES
    # ana's answer shown as she gave it, the text escaped there too
    assert page.locator("#review-answer mark.is-span").all_inner_texts() == ["Ada Lovelace", "London"]
    assert "<script>window.pwned = 1</script>" in page.locator("#review-answer").inner_text()
    # the editor starts from ana's answer
    assert spans_value(page) == ANA_SPANS
    assert page.locator("#review-fix .seg.is-span").all_inner_texts() == ["Ada Lovelace", "London"]

    page.keyboard.press("f")
    assert "is-open" in (page.locator("#review-fix").get_attribute("class") or "")

    # the wrong span: a double click selects the word, Delete removes the spans under it
    wrong = span("London", "PER")
    r = page.evaluate(RECT, [wrong["start"], wrong["end"]])
    page.mouse.dblclick((r["x0"] + r["x1"]) / 2, r["y0"])
    assert page.locator("#review-fix .seg.is-selected").all_inner_texts() == ["London"]
    page.keyboard.press("Delete")
    assert spans_value(page) == [span("Ada Lovelace", "PER")]

    # the missing one: dragged over with the mouse, then its label's key (1: PER)
    missing = span("Charles Babbage", "PER")
    r = page.evaluate(RECT, [missing["start"], missing["end"]])
    page.mouse.move(r["x0"] + 1, r["y0"])
    page.mouse.down()
    page.mouse.move((r["x0"] + r["x1"]) / 2, (r["y0"] + r["y1"]) / 2, steps=4)
    page.mouse.move(r["x1"] - 1, r["y1"], steps=4)
    page.mouse.up()
    assert page.locator("#review-fix .seg.is-selected").all_inner_texts() == ["Charles Babbage"]
    page.keyboard.press("1")
    assert spans_value(page) == [span("Ada Lovelace", "PER"), missing]

    # and by the keyboard: → → goes on from the selection by two words to London, 2 labels it a place
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.locator("#review-fix .seg.is-selected").all_inner_texts() == ["London"]
    page.keyboard.press("2")
    fixed = [span("Ada Lovelace", "PER"), missing, span("London", "LOC")]
    assert spans_value(page) == fixed
    assert page.locator("#review-fix .seg.is-span").all_inner_texts() == ["Ada Lovelace", "Charles Babbage", "London"]

    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Nothing to review" in page.locator("main").inner_text()
    assert server.seed.stored(sub) == ("fixed", {"ents": fixed}, {"ents": ANA_SPANS})


def test_a_reviewer_fixes_a_boxes_answer(server, page):
    sub = server.seed.answer("pets", "ana", {"pets": ANA_BOXES})
    sign_in(page, server, "rita", "/projects/pets/review")
    wait_for(page, "document.querySelector('svg.boxes-layer') !== null")
    assert_markup_shown_as_text(page, CAPTION)
    # the editor lies over the item's image, not over the picture of ana's answer, and starts from her boxes
    assert page.locator("svg.boxes-layer").count() == 1
    assert page.locator("article.item .boxes-stage svg.boxes-layer").count() == 1
    page.evaluate("document.querySelector('.boxes-stage > img').style.width = '400px'")  # half its natural size
    assert page.locator("svg.boxes-layer rect.box").count() == 2
    assert page.locator("#review-fix .boxes-list li").all_inner_texts() == ["cat: 100, 80, 200×120",
                                                                            "dog: 500, 300, 100×100"]

    page.keyboard.press("f")
    assert "is-open" in (page.locator("#review-fix").get_attribute("class") or "")
    layer = page.locator("svg.boxes-layer").bounding_box()  # where F left it (the page may have scrolled)
    assert layer is not None and round(layer["width"]) == 400 and round(layer["height"]) == 300

    def at(x: float, y: float) -> tuple[float, float]:
        """The screen point of image pixel (x, y)."""
        return layer["x"] + x / 2, layer["y"] + y / 2

    # the cat's box dragged by its body 40, 20 image pixels to the right and down
    page.mouse.move(*at(200, 140))
    page.mouse.down()
    page.mouse.move(*at(220, 150), steps=3)
    page.mouse.move(*at(240, 160), steps=3)
    page.mouse.up()
    moved = {"x": 140, "y": 100, "w": 200, "h": 120, "label": "cat"}
    assert page.locator("#review-fix .boxes-list li").all_inner_texts() == ["cat: 140, 100, 200×120",
                                                                            "dog: 500, 300, 100×100"]
    assert page.locator("svg.boxes-layer rect.box.is-selected").evaluate(
        "r => ['x', 'y', 'width', 'height'].map((k) => Number(r.getAttribute(k)))") == [140, 100, 200, 120]

    # the dog's box: a click selects it, Delete removes it
    page.mouse.click(*at(550, 350))
    assert page.locator("#review-fix .boxes-list li.is-selected").inner_text() == "dog: 500, 300, 100×100"
    page.keyboard.press("Delete")
    assert page.locator("svg.boxes-layer rect.box").count() == 1
    assert page.evaluate("JSON.parse(document.querySelector('#review-fix textarea.boxes-json').value)") == [moved]

    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Nothing to review" in page.locator("main").inner_text()
    assert server.seed.stored(sub) == ("fixed", {"pets": [moved]}, {"pets": ANA_BOXES})
