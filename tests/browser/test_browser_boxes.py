"""The boxes question in real Chromium: a box drawn with the mouse over an image served from the media root,
nudged and resized with the keyboard, relabelled with a number key, and submitted; another moved by dragging
its body and resized by dragging its corners, past the image's edges too (it stays inside the image). The
stored answers are in the image's own pixels though the image is shown at half its size.

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

PASSWORD = "instant-password"  # sign_in of test_browser_label_instant types this one
SCHEMA = {
    "name": "Pets", "slug": "pets", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image", "label": "Photo"}],
    "questions": [{"name": "pets", "type": "boxes", "prompt": "Box every pet", "field": "photo",
                   "labels": ["cat", "dog"]}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("boxes")
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
        moves = projects.create_project(store, {**SCHEMA, "name": "Moves", "slug": "moves"}, created_by=owner.id)
        items.add_items(store, moves, [{"id": "m0", "photo": "p0.png"}])
        access.set_member(store, moves, "ana", "annotator")
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


def test_draw_nudge_resize_relabel_and_submit_a_box(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/pets/label")
    wait_for(page, "document.querySelector('svg.boxes-layer') !== null")
    page.evaluate("document.querySelector('.boxes-stage > img').style.width = '400px'")  # half its natural size
    layer = page.locator("svg.boxes-layer")
    box = layer.bounding_box()
    assert box is not None and round(box["width"]) == 400
    assert page.locator("textarea.boxes-json").is_hidden()  # the JSON fallback gives way to the editor

    # drag from (50, 40) to (150, 100) on screen: (100, 80) to (300, 200) in the image's pixels
    page.mouse.move(box["x"] + 50, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 70, steps=4)
    page.mouse.move(box["x"] + 150, box["y"] + 100, steps=4)
    page.mouse.up()
    assert page.locator("svg.boxes-layer rect.box").count() == 1
    assert page.locator("svg.boxes-layer rect.box-handle").count() == 4  # the new box is selected

    # arrows nudge it by a pixel, shift+arrows resize it, 2 makes it a dog; none of them leave the question
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "Shift+ArrowLeft", "2"):
        page.keyboard.press(key)
    drawn = page.evaluate("JSON.parse(document.querySelector('textarea.boxes-json').value)")
    assert drawn == [{"x": 102, "y": 81, "w": 199, "h": 120, "label": "dog"}]
    assert page.locator(".boxes-list li").inner_text() == "dog: 102, 81, 199×120"

    # a click on empty image unselects, a second box, Delete removes the selected one
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 350, box["y"] + 250, steps=4)
    page.mouse.up()
    assert page.locator("svg.boxes-layer rect.box").count() == 2
    page.keyboard.press("Delete")
    assert page.locator("svg.boxes-layer rect.box").count() == 1

    with page.expect_navigation():
        page.keyboard.press("Enter")
    stored = server.answers("ana", "pets")
    assert list(stored.values())[0]["answers"] == {"pets": [{"x": 102, "y": 81, "w": 199, "h": 120, "label": "dog"}]}

    # the next item swapped in without a page load gets its own editor, empty, on its own image
    wait_for(page, "document.querySelectorAll('svg.boxes-layer').length === 1 && "
                   "document.querySelector('.boxes-list').children.length === 0")
    layer = page.locator("svg.boxes-layer")
    box = layer.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 40, steps=4)
    page.mouse.up()
    page.keyboard.press("Escape")  # unselected: the arrows are the page's again
    assert page.locator("svg.boxes-layer rect.box-handle").count() == 0
    with page.expect_navigation():
        page.keyboard.press("Enter")
    stored = server.answers("ana", "pets")
    assert len(stored) == 2 and all(len(s["answers"]["pets"]) == 1 for s in stored.values())
    assert errors == []
    close_context(context)


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=3)
    page.mouse.move(*end, steps=3)
    page.mouse.up()


def on_screen(page) -> dict:
    """The one box as the editor shows it: the SVG rect (image pixels), the list's line and the answer's JSON."""
    return page.evaluate("""() => {
      const r = document.querySelector('svg.boxes-layer rect.box');
      return {rect: ['x', 'y', 'width', 'height'].map((k) => Number(r.getAttribute(k))),
              selected: r.classList.contains('is-selected'),
              handles: document.querySelectorAll('svg.boxes-layer rect.box-handle').length,
              line: document.querySelector('.boxes-list li').textContent,
              json: JSON.parse(document.querySelector('textarea.boxes-json').value)};
    }""")


def test_move_a_box_and_resize_it_by_its_corners_with_the_mouse(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/moves/label")
    wait_for(page, "document.querySelector('svg.boxes-layer') !== null")
    page.evaluate("document.querySelector('.boxes-stage > img').style.width = '400px'")  # half its natural size
    box = page.locator("svg.boxes-layer").bounding_box()
    assert box is not None and round(box["width"]) == 400 and round(box["height"]) == 300
    ox, oy = box["x"], box["y"]

    def at(x: float, y: float) -> tuple[float, float]:
        """The screen point of image pixel (x, y): the image is shown at half its size."""
        return ox + x / 2, oy + y / 2

    def expect(x: int, y: int, w: int, h: int) -> None:
        shown = on_screen(page)
        assert shown == {"rect": [x, y, w, h], "selected": True, "handles": 4, "line": f"cat: {x}, {y}, {w}×{h}",
                         "json": [{"x": x, "y": y, "w": w, "h": h, "label": "cat"}]}
        assert page.locator("svg.boxes-layer rect.box").count() == 1

    drag(page, at(100, 80), at(300, 200))  # drawn: the new box is selected
    expect(100, 80, 200, 120)

    # its body dragged 50, 30 image pixels (25, 15 on screen) moves it, the same size
    drag(page, at(200, 140), at(250, 170))
    expect(150, 110, 200, 120)

    # the bottom-right corner's handle: the top-left corner stays
    handle = page.locator("svg.boxes-layer rect.box-handle[data-handle=se]").bounding_box()
    assert handle is not None
    assert abs(handle["x"] + handle["width"] / 2 - at(350, 230)[0]) < 0.5
    assert abs(handle["y"] + handle["height"] / 2 - at(350, 230)[1]) < 0.5
    drag(page, at(350, 230), at(390, 250))
    expect(150, 110, 240, 140)

    # the top-left corner's handle: the bottom-right corner stays
    drag(page, at(150, 110), at(90, 70))
    expect(90, 70, 300, 180)

    # the bottom-right handle, grabbed a little inside the corner, dragged past the image's bottom-right edge:
    # the box ends at the edge and its top-left corner stays where it was
    drag(page, at(386, 246), (ox + 430, oy + 330))
    expect(90, 70, 710, 530)

    # the body dragged past the image's top-left edge: the box stops at it, the same size
    drag(page, at(200, 200), (ox - 20, oy - 20))
    expect(0, 0, 710, 530)

    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert server.answers("ana", "moves")["m0"]["answers"] == {"pets": [{"x": 0, "y": 0, "w": 710, "h": 530,
                                                                          "label": "cat"}]}
    assert errors == []
    close_context(context)
