"""The owner's item page in real Chromium shows each answer through its question type: spans highlighted in
the item's text with their labels (a label and a text holding ``<script>`` stay text), boxes drawn as an SVG
over the image (a real PNG served from the media root, the boxes in its pixels); an annotator cannot open
the page.

A server process on its own SQLite file, driven by Playwright with Debian's Chromium (skipped without it,
except in CI; see tests/browser/test_browser.py).
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from labelwright.services import access, items, projects, queue, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context, launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.browser.test_browser_label_instant import open_page, sign_in

pytestmark = pytest.mark.browser

PASSWORD = "instant-password"  # sign_in of test_browser_label_instant types this one
EVIL = "<script>window.pwned = 1</script>"
TEXT = f"Ada Lovelace wrote to Charles Babbage {EVIL}"
SPANS = {
    "name": "Names", "slug": "names", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "ents", "type": "spans", "field": "text",
                   "labels": ["PER", {"value": "BAD", "label": EVIL}]}],
}
BOXES = {
    "name": "Cars", "slug": "cars", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "objs", "type": "boxes", "field": "photo", "labels": ["car", "bike"],
                   "width_field": "w", "height_field": "h"}],
}
PER = [{"start": 0, "end": 12, "label": "PER"}, {"start": 22, "end": 37, "label": "PER"},
       {"start": TEXT.index(EVIL), "end": len(TEXT), "label": "BAD"}]
CARS = [{"x": 20, "y": 10, "w": 80, "h": 40, "label": "car"}, {"x": 150, "y": 50, "w": 40, "h": 45, "label": "bike"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("answers")
    media = tmp / "media"
    media.mkdir()
    Image.new("RGB", (200, 100), (200, 220, 255)).save(media / "street.png")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    store.migrate()
    ids = {}
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        ana = users.create_user(store, "ana", "annotator", PASSWORD)
        for schema, record, answers in ((SPANS, {"id": "t1", "text": TEXT}, {"ents": PER}),
                                        (BOXES, {"id": "p1", "photo": "street.png", "w": 200, "h": 100},
                                         {"objs": CARS})):
            p = projects.create_project(store, schema, created_by=owner.id)
            items.add_items(store, p, [record])
            access.set_member(store, p, "ana", "annotator")
            item = queue.claim_next(store, projects.get_project(store, p.id), ana)
            queue.submit(store, item["id"], ana, answers)
            ids[schema["slug"]] = item["id"]
    finally:
        store.close()
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp / "lw.db"), "serve",
                             "--port", str(port), "--media-root", str(media)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a busy machine starts it slowly
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.2)
        yield url, ids
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    with launched() as b:
        yield b


class _At:
    def __init__(self, url: str):
        self.url = url


def test_the_owner_sees_spans_highlighted_and_boxes_over_the_image(server, browser):
    url, ids = server
    context, page, errors = open_page(browser)
    sign_in(page, _At(url), "olive", f"/projects/names/items/{ids['names']}")
    cell = page.locator("#answers-h + .scroll tbody tr").first.locator(".answer-spans")
    marks = cell.locator("mark.is-span")
    assert marks.all_inner_texts() == ["Ada Lovelace", "Charles Babbage", EVIL]  # the script shows as text
    assert cell.locator(".span-tag").all_inner_texts() == ["PER", "PER", EVIL]
    assert marks.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(214, 228, 250)"
    assert page.evaluate("window.pwned") is None

    page.goto(f"{url}/projects/cars/items/{ids['cars']}")
    svg = page.locator("#answers-h + .scroll tbody tr").first.locator("svg.boxes-overlay")
    assert svg.get_attribute("viewBox") == "0 0 200 100"
    # the image is the media root's file, loaded; the boxes sit over it at the image's scale
    loaded = svg.locator("image").evaluate(
        "i => new Promise(ok => { const p = new Image(); p.onload = () => ok([p.naturalWidth, p.naturalHeight]);"
        " p.onerror = () => ok(null); p.src = i.href.baseVal; })")
    assert loaded == [200, 100]
    box = svg.bounding_box()
    rect = svg.locator("rect").first.bounding_box()
    scale = box["width"] / 200
    assert abs(rect["x"] - box["x"] - 20 * scale) < 2 and abs(rect["width"] - 80 * scale) < 3
    assert svg.locator("g.answer-box").evaluate_all("gs => gs.map(g => g.dataset.label)") == ["car", "bike"]
    assert errors == []
    close_context(context)

    context, page, errors = open_page(browser)
    sign_in(page, _At(url), "ana", "/")
    r = page.goto(f"{url}/projects/names/items/{ids['names']}")
    assert r.status == 403 and "Lovelace" not in page.content()
    close_context(context)
