"""The quality page in real Chromium at 1280x800 and 390x844: the annotator table fits (or scrolls in a
named, keyboard-reachable region), its Pause buttons and spammer reasons are visible and reachable by
keyboard, and the SVG charts render (no CSP violation: the page fixture fails on any console error)."""

from __future__ import annotations

import pytest

from tests.browser.chromium import close_context
from tests.browser.test_browser import browser, server, sign_in  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_quality_page_fits_and_is_reachable_by_keyboard(server, browser, size):  # noqa: F811
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server, "olive", "/projects/qual/quality")
    region = page.locator("div.scroll.annotators")
    assert region.get_attribute("role") == "region" and region.get_attribute("aria-label")
    assert region.get_attribute("tabindex") == "0"
    buttons = page.locator("table.annotators button")
    assert buttons.count() >= 3
    if size[0] == 1280:  # the table fits: nothing scrolls, the Pause buttons are inside the page
        assert region.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box["x"] + box["width"] <= size[0]
    # keyboard: Tab reaches the table's region and every Pause button, each shown on screen when focused
    seen = set()
    for _ in range(200):
        page.keyboard.press("Tab")
        info = page.evaluate("() => [document.activeElement.tagName, document.activeElement.form ?"
                             " document.activeElement.form.action : '',"
                             " !!document.activeElement.closest('table.annotators')]")
        if info[2] and info[0] == "BUTTON":
            seen.add(info[1])
            focused = page.locator(":focus")
            box = focused.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= size[0] + 1
        if len(seen) == buttons.count():
            break
    assert len(seen) == buttons.count()
    # the charts render: an SVG per chart with a title, drawn with a real size
    svgs = page.locator("figure.chart-figure svg")
    assert svgs.count() >= 3
    for i in range(svgs.count()):
        box = svgs.nth(i).bounding_box()
        assert box and box["width"] > 50 and box["x"] + box["width"] <= size[0] + 1
    assert page.locator("svg.heatmap rect.cell").count() >= 4
    page.screenshot(path=f"/tmp/lw-quality-{size[0]}.png", full_page=True)
    close_context(context)
    assert not errors, errors
