"""The labelling UI in a real browser: a server process and headless Chromium driven by Playwright.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download is never used). Without
it the tests are skipped, except in CI (``CI`` set), where a missing browser is a failure.
Screenshots of the pages land in /tmp/lw-*.png for a person to look at.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import text

from labelwright.services import access, items, messages, projects, queue, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import CHROMIUM, close_context, launched
from tests.conftest import seed_answer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "labelwright" / "demo"
PASSWORDS = {"olive": "owner-password", "ana": "ana-password", "rita": "rita-password"}
XSS_TEXT = '<script>window.__xss=1</script>\n<img src=x onerror="window.__xss=2">'

KEYS_SCHEMA = {
    "name": "Keyboard test", "slug": "keys", "id_field": "id", "history_size": 5,
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [
        {"name": "spam", "type": "single_choice", "prompt": "Spam?", "options": ["spam", "ham"]},
        {"name": "tone", "type": "rating", "prompt": "Tone", "min": 1, "max": 5,
         "min_label": "hostile", "max_label": "friendly"},
    ],
}
XSS_SCHEMA = {
    "name": "Hostile items", "slug": "xss", "id_field": "id",
    "instructions": "Look at <b>this</b> and [that](javascript:window.__xss=3).",
    "fields": [{"name": "plain", "type": "text"}, {"name": "rich", "type": "markdown"},
               {"name": "chat", "type": "chat"}],
    "questions": [{"name": "ok", "type": "single_choice", "options": ["yes", "no"]}],
}
RANK_SCHEMA = {
    "name": "Rank and edit", "slug": "rank", "id_field": "id",
    "fields": [{"name": "prompt", "type": "text"}, {"name": "r1", "type": "markdown", "label": "First"},
               {"name": "r2", "type": "markdown", "label": "Second"},
               {"name": "r3", "type": "markdown", "label": "Third"}],
    "questions": [
        {"name": "order", "type": "ranking", "prompt": "Rank the replies", "candidates": ["r1", "r2", "r3"]},
        {"name": "fixed", "type": "text", "prompt": "Correct the best reply", "prefill": "r2"},
    ],
}


def _require_chromium():
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (install Debian's chromium package)"
    else:
        try:
            import playwright.sync_api  # noqa: F401, PLC0415 - is it installed?
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, owner_token: str):
        self.url = url
        self.owner_token = owner_token

    def export(self, slug: str) -> dict[str, dict]:
        r = httpx.get(f"{self.url}/api/v1/projects/{slug}/export", params={"format": "jsonl"},
                      headers={"Authorization": f"Bearer {self.owner_token}"}, timeout=30)
        r.raise_for_status()
        rows = [json.loads(line) for line in r.text.splitlines() if line]
        return {row["external_id"]: row for row in rows}


def _seed(db_url: str) -> str:
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORDS["olive"])
        users.create_user(store, "ana", "annotator", PASSWORDS["ana"])
        token = users.create_api_token(store, owner)
        p = projects.create_project(store, KEYS_SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(5)])
        p = projects.create_project(store, XSS_SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": "x1", "plain": XSS_TEXT, "rich": XSS_TEXT,
                                    "chat": [{"role": "user", "content": XSS_TEXT},
                                             {"role": "<b>bot</b>", "content": "fine"}]}])
        p = projects.create_project(store, RANK_SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": "k1", "prompt": "Say hello.", "r1": "Hi.", "r2": "Hello there!",
                                    "r3": "Go away."}])
        p = projects.create_project(store, yaml.safe_load((DEMO / "pandalm.yaml").read_text()),
                                    created_by=owner.id)
        lines = (DEMO / "data" / "pandalm_200.jsonl").read_text().splitlines()[:6]
        items.add_items(store, p, [json.loads(line) for line in lines])
        for project in projects.list_projects(store):
            access.set_member(store, project, "ana", "annotator")
        _seed_quality(store, owner)
        _seed_review(store, owner)
    finally:
        store.close()
    return token


QUALITY_SCHEMA = {
    "name": "Quality check", "slug": "qual", "id_field": "id", "overlap": 3, "gold": {"rate": 0.2},
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Spam?", "options": ["spam", "ham"]}],
}


def _seed_quality(store, owner):
    """Three annotators' answers to ten comments (two contested) and one gold item."""
    p = projects.create_project(store, QUALITY_SCHEMA, created_by=owner.id)
    items.add_items(store, p, [{"id": f"q{i}", "text": f"comment {i}"} for i in range(10)]
                    + [{"id": "qg", "text": "BUY NOW", "gold": {"spam": "spam"}}])
    workers = [users.create_user(store, f"w{i}", "annotator") for i in range(3)]
    for w in workers:
        access.set_member(store, p, w.name, "annotator")
    for item_id in range(1, 12):
        for n, w in enumerate(workers):
            truth = "spam" if item_id % 2 else "ham"
            contested = item_id in (3, 4) and n == 2
            seed_answer(store, (item_id + _first_item_id(store, p) - 1), w,
                         {"spam": ("ham" if truth == "spam" else "spam") if contested else truth},
                         active_ms=4000 + 500 * n)


REVIEW_SCHEMA = {
    "name": "Reviewed comments", "slug": "rev", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "review": {"mode": "all"},
    "pay": {"reward_per_item": "0.25", "hourly_rate": "18.00", "auto_approve_hours": 0, "min_fair_hourly": "15.00"},
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Spam?", "options": ["spam", "ham"]}],
}


def _seed_review(store, owner):
    """Three of ana's answers waiting for review by rita, and a message from the owner."""
    p = projects.create_project(store, REVIEW_SCHEMA, created_by=owner.id)
    items.add_items(store, p, [{"id": f"v{i}", "text": f"check out my channel {i}"} for i in range(4)])
    ana = users.get_user(store, "ana")
    access.set_member(store, p, "ana", "annotator")
    users.create_user(store, "rita", "reviewer", PASSWORDS["rita"])
    access.set_member(store, p, "rita", "reviewer")
    for k in range(3):  # each item held 60 s under its lease, 40 s of it active
        t = time.time() - 600 + 100 * k
        item = queue.claim_next(store, p, ana, now=t)
        queue.submit(store, item["id"], ana, {"spam": "ham"}, active_ms=40_000, now=t + 60)
    messages.send(store, p, owner, "New batch tomorrow: thank you for the careful work.")


def _first_item_id(store, project) -> int:
    with store.read() as conn:
        return conn.execute(text("SELECT min(id) FROM items WHERE project_id = :p"), {"p": project.id}).scalar_one()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "lw.db"
    token = _seed(normalise_db_url(str(db)))
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(db), "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a busy machine (two test workers) starts it slowly
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.2)
        yield Server(url, token)
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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield page
    close_context(context)
    assert not errors, f"the page logged errors: {errors}"


def sign_in(page, server: Server, name: str, target: str):
    page.goto(server.url + target)
    assert "/login" in page.url  # signed out: sent to the sign-in form, which brings us back
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    assert page.url == server.url + target


def press(page, *keys: str, navigate: bool = False):
    for key in keys:
        page.wait_for_timeout(150)  # a person takes a moment; it also gives active time to count
        if navigate and key == keys[-1]:
            with page.expect_navigation():
                page.keyboard.press(key)
        else:
            page.keyboard.press(key)


def item_text(page) -> str:
    return page.locator(".field-text .text").first.inner_text()


def test_keyboard_labelling_and_amending(server, page):
    sign_in(page, server, "ana", "/projects/keys/label")
    answers = {"c0": ("1", "4"), "c1": ("2", "3"), "c2": ("1", "5")}
    for n, (_ext, (choice, tone)) in enumerate(answers.items()):
        assert item_text(page) == f"comment {n}"
        assert page.locator("#counts").inner_text().split() == [str(n), "done", str(5 - n), "left"]
        assert page.locator(".question.is-active").get_attribute("id") == "q-spam"
        press(page, choice)
        assert page.locator(".question.is-active").get_attribute("id") == "q-tone"
        press(page, tone, "Enter", navigate=True)
    assert item_text(page) == "comment 3"

    # Backspace: back to the last answer; on that page, Backspace goes one further.
    press(page, "Backspace", navigate=True)
    assert item_text(page) == "comment 2" and "/history/" in page.url
    press(page, "Backspace", navigate=True)
    assert item_text(page) == "comment 1"
    page.screenshot(path="/tmp/lw-amend.png", full_page=True)
    assert page.locator("input[name=spam][value=ham]").is_checked()  # the saved answer is shown
    press(page, "1", "Enter", navigate=True)
    assert page.url.endswith("/projects/keys/label")
    assert item_text(page) == "comment 3"  # the item held before going back

    rows = server.export("keys")
    done = {ext: row["annotations"] for ext, row in rows.items() if row["annotations"]}
    assert sorted(done) == ["c0", "c1", "c2"]
    assert [a["annotator"] for anns in done.values() for a in anns] == ["ana"] * 3
    assert done["c0"][0]["answers"] == {"spam": "spam", "tone": 4}
    assert done["c1"][0]["answers"] == {"spam": "spam", "tone": 3}  # amended from ham
    assert done["c1"][0]["revision"] == 2
    assert done["c2"][0]["answers"] == {"spam": "spam", "tone": 5}
    assert all(anns[0]["active_ms"] > 0 for anns in done.values())


def test_hostile_item_is_shown_as_text(server, page):
    sign_in(page, server, "ana", "/projects/xss/label")
    assert page.locator(".field-text .text").inner_text() == XSS_TEXT
    rich = page.locator(".field-markdown .md").inner_text()
    assert "<script>window.__xss=1</script>" in rich and '<img src=x onerror="window.__xss=2">' in rich
    assert XSS_TEXT in page.locator(".field-chat .turn-user").inner_text()
    assert page.locator(".field-chat .turn-other .role").inner_text().lower() == "<b>bot</b>"
    assert "<b>this</b>" in page.locator(".instructions").inner_text()
    assert page.locator(".instructions a").count() == 0  # the javascript: link is not a link
    # Escaped, not merely blocked by the Content-Security-Policy: the markup never became elements.
    assert page.locator("img[src=x], .item script, .item b, .instructions b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_ranking_and_prefilled_text_by_keyboard(server, page):
    sign_in(page, server, "ana", "/projects/rank/label")
    order = page.locator("[data-ranking-order]")
    press(page, "3", "1")
    assert order.locator("li").all_inner_texts() == ["Third", "First"]
    page.screenshot(path="/tmp/lw-ranking.png", full_page=True)
    press(page, "r")
    assert order.is_hidden()
    press(page, "2", "1", "3")  # complete: the text question becomes active and takes the focus
    assert order.locator("li").all_inner_texts() == ["Second", "First", "Third"]
    box = page.locator("textarea[name=fixed]")
    assert box.input_value() == "Hello there!"
    assert page.evaluate("document.activeElement.name") == "fixed"
    press(page, "End", "s")  # typing: S does not skip
    assert box.input_value() == "Hello there!s"
    press(page, "Backspace", "1")  # Backspace edits, a number is typed
    assert box.input_value() == "Hello there!1"
    press(page, "Backspace", "Control+Enter", navigate=True)
    assert page.locator(".done h1").inner_text() == "All done"

    answers = server.export("rank")["k1"]["annotations"][0]["answers"]
    assert answers == {"order": ["r2", "r1", "r3"], "fixed": "Hello there!"}


def test_pages_look_right(server, browser):
    """Screenshots for a person to check, and the layout facts that can be checked mechanically."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, "olive", "/projects/llm-preference/label")
    a, b = page.locator(".group-pair .field").all()
    box_a, box_b = a.bounding_box(), b.bounding_box()
    assert box_a["y"] == box_b["y"] and box_a["x"] < box_b["x"]  # A and B side by side
    page.screenshot(path="/tmp/lw-label.png", full_page=True)
    press(page, "2")
    assert page.locator(".question.is-active").get_attribute("id") == "q-quality"
    press(page, "4", "Enter", navigate=True)

    page.goto(server.url + "/projects/llm-preference")
    assert page.locator(".tile-done dd").inner_text() == "0"
    assert page.locator("[aria-labelledby=annotators-h] table tbody tr").count() == 1  # one annotator (olive)
    assert page.locator(".chart .bar").count() == 60
    page.screenshot(path="/tmp/lw-project.png", full_page=True)
    page.goto(server.url + "/")
    page.screenshot(path="/tmp/lw-index.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/projects/llm-preference/label")
    a, b = page.locator(".group-pair .field").all()
    assert a.bounding_box()["y"] < b.bounding_box()["y"]  # stacked on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    page.screenshot(path="/tmp/lw-label-phone.png", full_page=True)
    close_context(context)


def test_quality_page_mark_gold_and_pause(server, page):
    sign_in(page, server, "olive", "/projects/qual/quality")
    assert "Agreement per question" in page.locator("h2").all_inner_texts()
    rows = page.locator("table.annotators tbody tr")
    assert sorted(r.split()[0] for r in rows.all_inner_texts()) == ["w0", "w1", "w2"]
    w0 = page.locator("table.annotators tbody tr", has_text="w0")
    assert "100%" in w0.inner_text()  # right on the one gold item
    page.screenshot(path="/tmp/lw-quality.png", full_page=True)
    # the items in most doubt are the contested ones; open one and make it gold
    doubt = page.locator("section[aria-labelledby=doubt-h] tbody tr a").first
    assert doubt.inner_text() in ("q2", "q3")
    with page.expect_navigation():
        doubt.click()
    assert "Mark as gold" in page.locator("#gold-form").inner_text()
    assert page.locator("section[aria-labelledby=answers-h] tbody tr").count() == 5  # 3 answers, consensus, majority
    page.locator("#gold-form label.choice", has_text="ham").click()
    with page.expect_navigation():
        page.locator("#gold-form button.primary").click()
    assert page.locator("h1 .badge.gold").inner_text() == "gold"
    assert page.locator("#gold-form input[name=spam][value=ham]").is_checked()
    page.screenshot(path="/tmp/lw-item.png", full_page=True)
    # pause w2 from the annotator table
    page.goto(server.url + "/projects/qual/quality")
    w2 = page.locator("table.annotators tbody tr", has_text="w2")
    with page.expect_navigation():
        w2.locator("button", has_text="Pause").click()
    w2 = page.locator("table.annotators tbody tr", has_text="w2")
    assert "paused" in w2.inner_text() and w2.locator("button", has_text="Resume").count() == 1
    gold = httpx.get(server.url + "/api/v1/projects/qual/gold",
                     headers={"Authorization": f"Bearer {server.owner_token}"}).json()
    assert len(gold) == 2


def test_review_flow_and_the_annotator_home_page(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, "rita", "/projects/rev/review")
    assert page.locator("#review-annotator").inner_text() == "ana"
    assert page.locator("#review-form input[name=spam][value=ham]").is_checked()  # her answer, shown
    page.screenshot(path="/tmp/lw-review.png", full_page=True)
    # reject the first with feedback
    page.fill("#review-feedback", "Promotes a channel: this is spam.")
    with page.expect_navigation():
        page.locator("#review-form button[value=rejected]").click()
    # fix the second: change the answer, then Fix
    page.locator("#review-form label.choice", has_text="spam").click()
    with page.expect_navigation():
        page.locator("#review-form button[value=fixed]").click()
    with page.expect_navigation():
        page.locator("#review-form button[value=accepted]").click()
    assert "Nothing to review" in page.locator("main").inner_text()
    counts = page.locator(".counts").inner_text().split()
    assert counts == ["0", "waiting", "2", "accepted", "1", "rejected"]
    close_context(context)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, "ana", "/")
    card = page.locator(".project-card", has_text="Reviewed comments")
    assert "3 done" in card.locator(".mine").inner_text()
    # two approved: 2 x (0.25 + 18.00/h x 40 s = 0.20) = 0.90 for 80 s of approved work: 40.50 an hour
    assert "0.90" in card.locator(".tile").filter(has=page.locator("dt", has_text="Approved")).inner_text()
    assert "40.50" in card.locator(".tile").filter(has=page.locator("dt", has_text="Hourly rate")).inner_text()
    rejected = page.locator("section[aria-labelledby=feedback-h] li.decision-rejected")
    rejected.locator("summary").click()  # a rejected answer opens to the item, the answer and the feedback
    assert "Promotes a channel: this is spam." in rejected.inner_text()
    assert "New batch tomorrow" in page.locator("section[aria-labelledby=messages-h]").inner_text()
    page.screenshot(path="/tmp/lw-home.png", full_page=True)
    close_context(context)


ACTIVE_TIME_SCRIPT = """async () => {
  const { ActiveTimer } = await import("/static/activity.js");
  let t = 0, focused = true;
  const doc = { visibilityState: "visible", hasFocus: () => focused, addEventListener() {} };
  const timer = new ActiveTimer({ now: () => t, doc, win: { addEventListener() {} } });
  const seen = [];
  const at = (time, change) => { t = time; if (change) change(); timer.settle(); seen.push(Math.round(timer.total)); };
  at(1000);                                              // visible and focused: counts
  at(2000, () => { doc.visibilityState = "hidden"; });  // hidden from here on
  at(5000);
  at(5000, () => { doc.visibilityState = "visible"; });
  at(6000, () => { focused = false; });                  // another window has the focus
  at(9000);
  at(9000, () => { focused = true; });
  at(100000);                                            // no input since t=0: only 60 s of it count
  t = 110000; timer.activity();                          // a key press: counting again
  t = 111000; seen.push(timer.ms);
  return seen;
}"""


def test_active_time_counts_only_attended_time(server, page):
    page.goto(server.url + "/login")
    assert page.evaluate(ACTIVE_TIME_SCRIPT) == [1000, 2000, 2000, 2000, 3000, 3000, 3000, 54000, 55000]
