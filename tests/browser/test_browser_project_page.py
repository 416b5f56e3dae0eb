"""The project page in real Chromium at 1280x800 and 390x844 (issue 10): the pace section shows items
completed per day and the finish estimate in words, its charts render inside the page (no CSP violation:
console errors fail the test), the dashed projection is drawn, and nothing spills sideways on a phone; the
Export card lists the formats a boxes project fits and its links download them."""

from __future__ import annotations

import json
import zipfile

import httpx
import pytest

from tests.browser.chromium import close_context
from tests.browser.test_browser import browser, server, sign_in  # noqa: F401 - fixtures
from tests.browser.test_browser_label_instant import SIZES, open_page

pytestmark = pytest.mark.filterwarnings("ignore")

SCHEMA = {"name": "Pace check", "slug": "pace", "id_field": "id", "overlap": 1,
          "fields": [{"name": "text", "type": "text"}],
          "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}


@pytest.fixture(scope="module")
def pace(server):  # noqa: F811
    """A project of 10 items, 4 of them answered today by the owner through the API: 4 items a day, 6 left."""
    h = {"Authorization": f"Bearer {server.owner_token}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=h, timeout=30) as c:
        c.post("/projects", json=SCHEMA).raise_for_status()
        c.post("/projects/pace/items", json={"items": [{"id": f"p{i}", "text": f"text {i}"} for i in range(10)]}
               ).raise_for_status()
        for _ in range(4):
            item = c.post("/projects/pace/next").json()
            c.post(f"/items/{item['id']}/annotations",
                   json={"answers": {"spam": "ham"}}).raise_for_status()
    return "/projects/pace"


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_project_page_pace_and_finish_estimate(server, browser, pace, size):  # noqa: F811
    context, page, errors = open_page(browser, size)
    sign_in(page, server, "olive", pace)
    estimate = page.locator("#finish-estimate")
    assert estimate.is_visible()
    text = estimate.inner_text()
    assert text.startswith("At 4 items/day the remaining 6 items finish around "), text
    assert "4 items/day completed today" in page.locator("main").inner_text()
    assert "4 of 10 items done (40%)" in page.locator("main").inner_text()
    section = page.locator("section[aria-labelledby=pace-h]")
    svgs = section.locator("figure.chart-figure svg")
    assert svgs.count() == 2
    for i in range(2):
        box = svgs.nth(i).bounding_box()
        assert box and box["width"] > 200 and box["x"] >= 0 and box["x"] + box["width"] <= SIZES[size]["width"] + 1
    dashed = section.locator("polyline.projected")
    assert dashed.count() == 1
    assert dashed.evaluate("el => getComputedStyle(el).strokeDasharray") not in ("none", "")
    # nothing on the page is wider than the viewport
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=f"/tmp/lw-project-{size}.png", full_page=True)
    close_context(context)
    assert not errors, errors


BOXES_SCHEMA = {"name": "Export check", "slug": "shapes", "id_field": "id", "overlap": 1,
                "fields": [{"name": "photo", "type": "image"}],
                "questions": [{"name": "shapes", "type": "boxes", "field": "photo", "labels": ["cat", "dog"],
                               "width_field": "width", "height_field": "height"}]}


@pytest.fixture(scope="module")
def shapes(server):  # noqa: F811
    """A boxes project of two images (their sizes in the items), each with its boxes as gold."""
    h = {"Authorization": f"Bearer {server.owner_token}"}
    boxes = {"s0": [{"x": 10, "y": 20, "w": 100, "h": 50, "label": "cat"}], "s1": []}
    with httpx.Client(base_url=server.url + "/api/v1", headers=h, timeout=30) as c:
        c.post("/projects", json=BOXES_SCHEMA).raise_for_status()
        c.post("/projects/shapes/items", json={"items": [
            {"id": ext, "photo": f"img/{ext}.png", "width": 640, "height": 480, "gold": {"shapes": b}}
            for ext, b in boxes.items()]}).raise_for_status()
    return "/projects/shapes"


def test_project_page_exports_a_boxes_project_in_its_formats(server, browser, shapes, tmp_path):  # noqa: F811
    context, page, errors = open_page(browser, "desktop", accept_downloads=True)
    sign_in(page, server, "olive", shapes)
    card = page.locator("section[aria-labelledby=export-h]")
    links = card.locator("a[download]")
    assert [links.nth(i).get_attribute("data-format") for i in range(links.count())] == [
        "jsonl", "csv", "parquet", "labelstudio", "hf", "coco", "yolo", "voc"]  # no spans or TRL formats
    assert "pycocotools" in card.inner_text()
    coco_link = card.get_by_role("link", name="COCO")
    coco_link.focus()  # by keyboard: the link takes the focus and Enter downloads
    with page.expect_download() as got:
        page.keyboard.press("Enter")
    download = got.value
    assert download.suggested_filename == "shapes-coco.json"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = json.loads(path.read_text())
    assert [(a["bbox"], a["category_id"]) for a in data["annotations"]] == [([10, 20, 100, 50], 1)]
    assert [(i["width"], i["height"]) for i in data["images"]] == [(640, 480), (640, 480)]
    with page.expect_download() as got:
        card.get_by_role("link", name="YOLO").click()
    download = got.value
    assert download.suggested_filename == "shapes-yolo.zip"
    download.save_as(tmp_path / "yolo.zip")
    with zipfile.ZipFile(tmp_path / "yolo.zip") as z:
        assert z.read("shapes-yolo/labels/img/s0.txt") == b"0 0.093750 0.093750 0.156250 0.104167\n"
    assert page.url == server.url + shapes  # a download, not a navigation
    close_context(context)
    assert not errors, errors
