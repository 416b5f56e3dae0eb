"""Media by reference in real Chromium: a boxes item whose image is ``s3://pets/p0.png``, resolved through
``media_s3_endpoint`` to a real HTTP server (python's http.server in a thread), shown on the labelling page
through the item's media route, boxed with the mouse and submitted in the image's own pixels; the owner's
item page shows the same image, and its thumbnail comes from the server's disk cache.

A server process on its own SQLite file, driven by Playwright with Debian's Chromium (skipped without it,
except in CI; see tests/browser/test_browser.py).
"""

from __future__ import annotations

import os
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
from tests.browser.test_browser_label_instant import PASSWORD, Server, open_page, sign_in, wait_for
from tests.media_server import serve_folder

pytestmark = pytest.mark.browser

SCHEMA = {
    "name": "Pets", "slug": "pets", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image", "label": "Photo"}],
    "questions": [{"name": "pets", "type": "boxes", "prompt": "Box every pet", "field": "photo",
                   "labels": ["cat", "dog"]}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("media")
    (tmp / "www" / "pets").mkdir(parents=True)
    Image.new("RGB", (800, 600), (40, 120, 200)).save(tmp / "www" / "pets" / "p0.png")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": "p0", "photo": "s3://pets/p0.png"}])
        access.set_member(store, p, "ana", "annotator")
    finally:
        store.close()
    port = _free_port()
    log = (tmp / "server.log").open("w")
    with serve_folder(tmp / "www") as bucket:
        env = {**os.environ, "LABELWRIGHT_MEDIA_S3_ENDPOINT": bucket.url, "LABELWRIGHT_MEDIA_ALLOW_PRIVATE": "1",
               "LABELWRIGHT_MEDIA_CACHE_DIR": str(tmp / "cache")}
        proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp / "lw.db"), "serve",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
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
            s.bucket, s.cache = bucket, tmp / "cache"
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


def test_a_boxes_item_whose_image_comes_by_reference(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/pets/label")
    wait_for(page, "document.querySelector('svg.boxes-layer') !== null")
    img = page.locator(".boxes-stage > img")
    src = img.get_attribute("src")
    assert src is not None and src.startswith("/projects/pets/items/") and src.endswith("/media/photo")
    wait_for(page, "document.querySelector('.boxes-stage > img').naturalWidth === 800")
    assert any(s["path"] == "/pets/p0.png" for s in server.bucket.seen)  # the browser loaded it from the bucket
    page.evaluate("document.querySelector('.boxes-stage > img').style.width = '400px'")
    box = page.locator("svg.boxes-layer").bounding_box()
    assert box is not None and round(box["width"]) == 400
    page.mouse.move(box["x"] + 50, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 100, steps=6)
    page.mouse.up()
    page.keyboard.press("2")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    stored = server.answers("ana", "pets")
    assert list(stored.values())[0]["answers"] == {"pets": [{"x": 100, "y": 80, "w": 200, "h": 120, "label": "dog"}]}
    assert errors == []
    close_context(context)

    # the owner's item page: the same image through the route, and its thumbnail from the disk cache
    context, page, errors = open_page(browser)
    item_page = src.rsplit("/media/", 1)[0]
    sign_in(page, server, "olive", item_page)
    wait_for(page, "[...document.querySelectorAll('img.item-image')].some(i => i.naturalWidth === 800)")
    thumb = page.evaluate("""async (u) => { const r = await fetch(u); const b = await r.blob();
        const i = await createImageBitmap(b); return [r.status, r.headers.get('content-type'), i.width, i.height]; }""",
                          src + "?thumb=1")
    assert thumb == [200, "image/jpeg", 256, 192]
    assert len(list(server.cache.rglob("*.jpg"))) == 1
    assert errors == []
    close_context(context)
