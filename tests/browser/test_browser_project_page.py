"""The project page in real Chromium at 1280x800 and 390x844 (issue 10): the pace section shows items
completed per day and the finish estimate in words, its charts render inside the page (no CSP violation:
console errors fail the test), the dashed projection is drawn, and nothing spills sideways on a phone."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.chromium import close_context
from tests.browser.test_browser import browser, server, sign_in  # noqa: F401 - fixtures

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


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_project_page_pace_and_finish_estimate(server, browser, pace, size):  # noqa: F811
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
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
        assert box and box["width"] > 200 and box["x"] >= 0 and box["x"] + box["width"] <= size[0] + 1
    dashed = section.locator("polyline.projected")
    assert dashed.count() == 1
    assert dashed.evaluate("el => getComputedStyle(el).strokeDasharray") not in ("none", "")
    # nothing on the page is wider than the viewport
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=f"/tmp/lw-project-{size[0]}.png", full_page=True)
    close_context(context)
    assert not errors, errors
