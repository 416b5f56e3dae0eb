"""The polygons question in real Chromium: a polygon drawn point by point with the mouse over an image served from
the media root (Backspace takes a point back, Enter closes it), nudged and relabelled with the keyboard, reshaped
and moved by dragging, a second one closed by a double click, selected with Tab and deleted, a third cancelled
with Escape, and the form submitted; the stored answer is in the image's own pixels though the image is shown at
half its size, and a label with markup in it shows as text.

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

from labelwright.services import access, items, projects, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context, launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.browser.test_browser_label_instant import Server, open_page, sign_in, wait_for

pytestmark = pytest.mark.browser

DOG = "dog & <b>pup</b>"  # item and schema text is data: it must show as text, never as markup
PASSWORD = "instant-password"  # sign_in of test_browser_label_instant types this one
SCHEMA = {
    "name": "Pets", "slug": "pets", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image", "label": "Photo"}],
    "questions": [{"name": "pets", "type": "polygons", "prompt": "Outline every pet", "field": "photo",
                   "labels": ["cat", DOG]}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("polygons")
    media = tmp / "media"
    media.mkdir()
    for i in range(2):
        Image.new("RGB", (800, 600), (40 * i, 120, 200)).save(media / f"p{i}.png")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": f"p{i}", "photo": f"p{i}.png"} for i in range(2)])
        access.set_member(store, p, "ana", "annotator")
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
        s = Server(url, db_url)
        yield s
        s.store.close()
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


def test_draw_edit_by_keyboard_and_mouse_and_submit_a_polygon(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/pets/label")
    wait_for(page, "document.querySelector('svg.polygons-layer') !== null")
    page.evaluate("document.querySelector('.polygons-stage > img').style.width = '400px'")  # half its natural size
    layer = page.locator("svg.polygons-layer")
    box = layer.bounding_box()
    assert box is not None and round(box["width"]) == 400
    assert page.locator("textarea.polygons-json").is_hidden()  # the JSON fallback gives way to the editor

    def at(x, y):  # a point on screen, from the layer's top-left corner
        return box["x"] + x, box["y"] + y

    def drawn():
        return page.evaluate("JSON.parse(document.querySelector('textarea.polygons-json').value || '[]')")

    def drag(x0, y0, x1, y1):
        page.mouse.move(*at(x0, y0))
        page.mouse.down()
        page.mouse.move(*at((x0 + x1) / 2, (y0 + y1) / 2), steps=3)
        page.mouse.move(*at(x1, y1), steps=3)
        page.mouse.up()

    # four clicks, Backspace takes the last back, a fifth, Enter closes: image pixels are twice the screen's
    for x, y in ((50, 40), (150, 40), (150, 100), (120, 130)):
        page.mouse.click(*at(x, y))
    assert page.locator(".polygons-list li.is-draft").inner_text() == "cat: drawing, 4 points"
    page.keyboard.press("Backspace")
    page.mouse.click(*at(50, 100))
    page.keyboard.press("Enter")  # closes the polygon; the form is not sent
    assert page.locator("svg.polygons-layer polygon.polygon").count() == 1
    assert page.locator("svg.polygons-layer circle.polygon-vertex").count() == 4  # the new polygon is selected
    assert drawn() == [{"label": "cat", "points": [[100, 80], [300, 80], [300, 200], [100, 200]]}]

    # arrows nudge it (Shift: ten pixels), 2 relabels it; none of them leave the question
    for key in ("ArrowRight", "ArrowRight", "Shift+ArrowDown", "2"):
        page.keyboard.press(key)
    assert drawn() == [{"label": DOG, "points": [[102, 90], [302, 90], [302, 210], [102, 210]]}]
    assert page.locator(".polygons-list li").inner_text() == f"{DOG}: 4 points"  # text, not markup
    assert page.locator("#q-pets b").count() == 0

    # drag its first point (at 51, 45 on screen) to 40, 30; then drag the whole polygon 10 right, 5 down
    drag(51, 45, 40, 30)
    assert drawn()[0]["points"] == [[80, 60], [302, 90], [302, 210], [102, 210]]
    drag(100, 75, 110, 80)
    assert drawn()[0]["points"] == [[100, 70], [322, 100], [322, 220], [122, 220]]

    # a click beside it unselects; two clicks and a double click draw a triangle, closed by the double click
    page.mouse.click(*at(350, 250))
    assert page.locator("svg.polygons-layer circle.polygon-vertex").count() == 0
    page.mouse.click(*at(300, 200))
    page.mouse.click(*at(350, 200))
    page.mouse.dblclick(*at(330, 260))
    assert [p["points"] for p in drawn()][1] == [[600, 400], [700, 400], [660, 520]]

    # Escape unselects; Tab selects the first polygon, Tab again the second, Delete removes it
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.locator(".polygons-list li.is-selected").inner_text() == f"{DOG}: 4 points"
    page.keyboard.press("Tab")
    assert page.locator(".polygons-list li.is-selected").inner_text() == f"{DOG}: 3 points"
    page.keyboard.press("Delete")
    assert page.locator("svg.polygons-layer polygon.polygon").count() == 1 and len(drawn()) == 1

    # a polygon begun and cancelled with Escape leaves nothing behind
    page.mouse.click(*at(300, 50))
    page.mouse.click(*at(350, 50))
    assert page.locator(".polygons-list li.is-draft").count() == 1
    page.keyboard.press("Escape")
    assert page.locator(".polygons-list li.is-draft").count() == 0 and len(drawn()) == 1

    with page.expect_navigation():
        page.keyboard.press("Enter")  # nothing being drawn: Enter sends the form
    stored = server.answers("ana", "pets")
    assert list(stored.values())[0]["answers"] == {
        "pets": [{"label": DOG, "points": [[100, 70], [322, 100], [322, 220], [122, 220]]}]}

    # the next item swapped in without a page load gets its own editor, empty, on its own image
    wait_for(page, "document.querySelectorAll('svg.polygons-layer').length === 1 && "
                   "document.querySelector('.polygons-list').children.length === 0")
    assert errors == []
    close_context(context)
