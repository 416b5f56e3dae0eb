"""The annotator's screens in real Chromium at 1280x800 and 390x844: the home page's honest pay (approved,
pending with its date, rejected, hourly over approved work, time in hours and minutes, the weekly chart),
a rejected answer that opens to the item, the answer and the feedback (with JavaScript off too), questioning
the decision and the reviewer's answer, the briefing before a project and the history with amend links.
Screenshots land in /tmp/lw-annotator-*.png."""

from __future__ import annotations

import re
import time

import pytest

from labelwright.services import access, items, projects, queue, review, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context
from tests.browser.test_browser import _require_chromium, browser  # noqa: F401
from tests.server import ServerProcess

pytestmark = pytest.mark.browser

PASSWORDS = {"ana": "ana-password", "rita": "rita-password"}
HOSTILE = "Not <b>spam</b> <script>window.__xss=1</script>"
SIZES = [(1280, 800), (390, 844)]
SCHEMA = {
    "name": "Paid comments", "slug": "paid", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "review": {"mode": "all"},
    "pay": {"reward_per_item": "0.25", "hourly_rate": "18.00", "auto_approve_hours": 24, "min_fair_hourly": "15.00"},
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Spam?", "options": ["spam", "ham"]}],
}


def _seed(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", "owner-password")
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": f"v{i}", "text": f"check out my channel {i}"} for i in range(12)])
        ana = users.create_user(store, "ana", "annotator", PASSWORDS["ana"])
        rita = users.create_user(store, "rita", "reviewer", PASSWORDS["rita"])
        access.set_member(store, p, "ana", "annotator")
        access.set_member(store, p, "rita", "reviewer")
        now = time.time()
        others = [users.create_user(store, f"w{k}", "annotator") for k in range(3)]
        for k, w in enumerate(others):  # 30 s, 40 s, 50 s an item: an estimate from 3 people
            access.set_member(store, p, w.name, "annotator")
            item = queue.claim_next(store, p, w, now=now - 200)
            queue.submit(store, item["id"], w, {"spam": "spam"}, active_ms=30_000 + 10_000 * k, now=now - 100)
        subs = []
        for k in range(4):  # ana: 40 s on each of 4 answers, a few minutes ago
            t = now - 900 + 100 * k
            item = queue.claim_next(store, p, ana, now=t)
            subs.append(queue.submit(store, item["id"], ana, {"spam": "ham"}, active_ms=40_000, now=t + 60)[0])
        review.decide(store, p, rita, subs[0]["id"], "accepted")
        review.decide(store, p, rita, subs[1]["id"], "rejected", feedback=HOSTILE)
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    db = normalise_db_url(str(tmp_path_factory.mktemp("browser-annotator") / "lw.db"))
    _seed(db)
    proc = ServerProcess(db, extra_env={"LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"})
    with proc.start():
        yield proc


def _context(chromium, size, js=True):
    context = chromium.new_context(viewport={"width": size[0], "height": size[1]}, java_script_enabled=js)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return context, page, errors


def _sign_in(page, server, name: str, target: str):
    page.goto(server.url + target)
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    assert page.url == server.url + target


def tile(page, card, name: str):
    """The pay tile whose title is exactly ``name``."""
    return card.locator(".tile").filter(has=page.locator("dt", has_text=re.compile(f"^{name}$")))


def _fits(page) -> None:
    """Nothing on the page scrolls sideways (the viewport is the page's width)."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_page_pay_and_the_rejected_answer(server, browser, size):  # noqa: F811
    context, page, errors = _context(browser, size)
    _sign_in(page, server, "ana", "/")
    card = page.locator(".project-card", has_text="Paid comments")
    # approved: 0.25 + 18.00/h x 40 s = 0.45, over 40 s: 40.50 an hour (the rejected and pending time left out)
    assert "0.45" in tile(page, card, "Approved").inner_text()
    pending = tile(page, card, "Pending").inner_text()
    assert "0.90" in pending and "approved on 20" in pending  # 2 x 0.45, and the day
    assert "1" in tile(page, card, "Rejected").inner_text()
    assert "50%" in tile(page, card, "Rejected").inner_text()
    hourly = tile(page, card, "Hourly rate").inner_text()
    assert "40.50" in hourly and "below" not in hourly
    assert "0 h 03 min" in tile(page, card, "Time").inner_text()  # 160 s
    chart = card.locator(".earnings-chart svg[role=img]")
    assert chart.count() == 1 and "earnings per week" in chart.locator("title").first.text_content().lower()
    rejected = page.locator("li.decision-rejected")
    assert not rejected.locator(".decision-body").is_visible()
    rejected.locator("summary").click()
    body = rejected.locator(".decision-body")
    assert body.is_visible() and HOSTILE in body.inner_text() and "check out my channel" in body.inner_text()
    assert page.evaluate("window.__xss") is None
    _fits(page)
    page.screenshot(path=f"/tmp/lw-annotator-home-{size[0]}.png", full_page=True)
    close_context(context)
    assert not errors, errors


def test_questioning_without_javascript_and_the_reviewers_answer(server, browser):  # noqa: F811
    context, page, errors = _context(browser, SIZES[1], js=False)
    _sign_in(page, server, "ana", "/")
    rejected = page.locator("li.decision-rejected")
    rejected.locator("summary").click()  # <details> opens without JavaScript
    rejected.locator("textarea[name=body]").fill("It is a fan's comment, <i>not</i> an advert.")
    with page.expect_navigation():
        rejected.locator("button[type=submit]").click()
    rejected = page.locator("li.decision-rejected")
    assert "question sent" in rejected.locator("summary").inner_text()
    close_context(context)
    assert not errors, errors

    context, page, errors = _context(browser, SIZES[0])
    _sign_in(page, server, "rita", "/projects/paid/review")
    questions = page.locator("#questions")
    assert "ana" in questions.inner_text()
    questions.locator("summary").first.click()
    assert "It is a fan's comment, <i>not</i> an advert." in questions.inner_text()
    questions.locator("textarea[name=body]").first.fill("Agreed: it stays rejected only if it links out.")
    page.screenshot(path="/tmp/lw-annotator-review-questions.png", full_page=True)
    with page.expect_navigation():
        questions.locator("button[type=submit]").first.click()
    assert page.locator("#questions").count() == 0
    close_context(context)
    assert not errors, errors

    context, page, errors = _context(browser, SIZES[1])
    _sign_in(page, server, "ana", "/")
    rejected = page.locator("li.decision-rejected")
    assert "answered" in rejected.locator("summary").inner_text()
    assert "Agreed: it stays rejected only if it links out." in rejected.inner_text()  # opened with the answer
    _fits(page)
    close_context(context)
    assert not errors, errors


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_briefing_and_history_pages(server, browser, size):  # noqa: F811
    context, page, errors = _context(browser, size)
    _sign_in(page, server, "ana", "/projects/paid/start")
    text = page.locator("main").inner_text()
    for words in ("0.25 USD", "18.00 USD", "after 24.0 h", "every answer", "15.00 USD an hour",
                  "Based on 3 other annotators"):
        assert words in text, words
    assert "About 40.50 USD an hour" in text  # 0.25 x 3600 / 40 s (the median of 30, 40, 50 s) + 18.00
    _fits(page)
    page.screenshot(path=f"/tmp/lw-annotator-briefing-{size[0]}.png", full_page=True)
    page.goto(server.url + "/projects/paid/history")
    rows = page.locator(".history-row")
    assert rows.count() == 4
    links = page.locator(".history-row a", has_text="Change this answer")
    assert links.count() == 2  # the two pending ones; accepted and rejected answers are frozen
    _fits(page)
    page.screenshot(path=f"/tmp/lw-annotator-history-{size[0]}.png", full_page=True)
    with page.expect_navigation():
        links.first.click()
    assert "/projects/paid/history/" in page.url
    close_context(context)
    assert not errors, errors
