"""Accessibility, checked in a real browser on every page as each role, at 1280x800 and 390x844.

- Every control reached with Tab shows a focus indicator (an outline or a ring at least 2 px wide) whose
  colour has at least 3:1 contrast against the background around it (WCAG 2.2, 2.4.13 focus appearance;
  1.4.11 non-text contrast).
- Every region that scrolls (a wide table on a phone) can be reached with the keyboard (it is focusable,
  so arrow keys scroll it), and has a name for screen readers.
The checks themselves are in tests/browser/a11y.js; the server and its seeded projects are
tests/browser/test_browser.py's.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.browser import test_browser
from tests.browser.chromium import close_context
from tests.browser.test_browser import PASSWORDS

browser, server = test_browser.browser, test_browser.server  # pytest fixtures, shared with the browser tests

pytestmark = pytest.mark.browser

CHECKS = (Path(__file__).parent / "a11y.js").read_text()
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
MIN_CONTRAST = 3.0
MAX_TABS = 160

# The pages of each role (signed out: the sign-in page). "{qual_item}" is an item of the quality project.
PAGES = {
    None: ["/login"],
    "olive": ["/", "/account", "/audit", "/projects/qual", "/projects/qual/quality", "/projects/qual/items/{qual_item}",
              "/projects/rev/pay", "/projects/rev/webhooks", "/projects/qual/assist", "/projects/qual/checks",
              "/projects/llm-preference/label", "/projects/new", "/projects/qual/settings", "/projects/qual/members",
              "/projects/qual/messages", "/projects/qual/doubt", "/projects/qual/expire", "/projects/qual/rules"],
    "ana": ["/", "/account", "/projects/keys/label", "/projects/rank/label", "/projects/rev/start",
            "/projects/keys/history", "/projects/rev/history"],
    "rita": ["/", "/projects/rev/review"],
}


def _sign_in(page, url: str, name: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")


def _qual_item(server) -> int:
    r = httpx.get(f"{server.url}/api/v1/projects/qual/gold", headers={"Authorization": f"Bearer {server.owner_token}"})
    r.raise_for_status()
    return r.json()[0]["item_id"] if r.json() else 1


def _check_page(page, path: str) -> list[str]:
    problems = []
    page.evaluate(CHECKS)
    for region in page.evaluate("window.__a11y.scrollRegions()"):
        if not region["focusable"]:
            problems.append(f"{path}: the scrolling region {region['el']} cannot be reached by keyboard")
        if region["focusable"] and not region["named"] and not region["el"].startswith("pre"):
            problems.append(f"{path}: the scrolling region {region['el']} has no name (aria-label)")
    seen = set()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        report = page.evaluate("window.__a11y.focusReport()")
        if report is None:
            if seen:
                break  # focus left the page's last control
            continue
        if report["el"] in seen:
            break
        seen.add(report["el"])
        if not report["visible"]:
            problems.append(f"{path}: {report['el']} takes focus but is not visible")
        elif report["best"] is None:
            problems.append(f"{path}: {report['el']} shows no focus indicator")
        elif report["best"]["ratio"] < MIN_CONTRAST:
            problems.append(f"{path}: {report['el']}'s focus {report['best']['kind']} has contrast "
                            f"{report['best']['ratio']}:1 (at least {MIN_CONTRAST}:1)")
    if not seen:
        problems.append(f"{path}: Tab reached no control at all")
    return problems


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("role", list(PAGES), ids=lambda r: r or "signed-out")
def test_focus_is_visible_and_scrolling_regions_reachable(server, browser, role, size):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        if role:
            _sign_in(page, server.url, role)
        problems = []
        for path in PAGES[role]:
            path = path.format(qual_item=_qual_item(server)) if "{" in path else path
            response = page.goto(server.url + path)
            assert response.status == 200, f"{path} answered {response.status}"
            problems += _check_page(page, path)
        assert not problems, "\n".join(problems)
        assert not errors, errors
    finally:
        close_context(context)
