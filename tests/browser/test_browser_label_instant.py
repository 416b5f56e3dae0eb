"""The labelling page in real Chromium: instant items, the pairwise keyboard fix, the lease clock, the
instructions box, the no-JavaScript path, and no lease left behind. At 1280x800 and 390x844.

A server process on its own SQLite file (the leases are read back from it), driven by Playwright with
Debian's Chromium (see tests/browser/test_browser.py; skipped without it, except in CI).
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import text

from labelwright.services import access, items, projects, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store, loads
from labelwright.web.assets import version
from tests.browser.chromium import close_context, launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium

pytestmark = pytest.mark.browser

PASSWORD = "instant-password"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SPAM = {
    "name": "Instant spam", "slug": "fast", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "instructions": "Spam promotes a channel, a product or a link.",
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Spam?", "options": ["spam", "ham"]}],
}
PAIR = {
    "name": "Pairs", "slug": "pairs", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
    "questions": [
        {"name": "pref", "type": "pairwise", "prompt": "Which is better?", "a": "a", "b": "b", "rationale": "optional"},
        {"name": "quality", "type": "rating", "prompt": "How good is it?", "min": 1, "max": 5, "required": False},
    ],
}
TAGS = {
    "name": "Tags", "slug": "tags", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "tags", "type": "multiple_choice", "prompt": "Tags", "options": ["a", "b", "c"],
                   "min_selected": 2}],
}
SHORT = {
    "name": "Short lease", "slug": "short", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "lease_seconds": 10,
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "ok", "type": "single_choice", "options": ["yes", "no"]}],
}
TAIL = {**SPAM, "name": "The end", "slug": "tail", "overlap": 2}
USERS = ["ana", "ben", "cy", "dee", "eve", "fay", "gus", "hal"]


class Server:
    def __init__(self, url: str, db_url: str):
        self.url = url
        self.store = Store(db_url)

    def leases(self, name: str, slug: str) -> list[str]:
        """External ids of the items ``name`` holds a lease on in project ``slug``, oldest first."""
        with self.store.read() as conn:
            return [r[0] for r in conn.execute(text(
                "SELECT i.external_id FROM leases l JOIN items i ON i.id = l.item_id JOIN users u ON u.id = l.user_id "
                "JOIN projects p ON p.id = l.project_id WHERE u.name = :n AND p.slug = :s ORDER BY l.created_at"),
                {"n": name, "s": slug})]

    def answers(self, name: str, slug: str) -> dict[str, dict]:
        with self.store.read() as conn:
            return {r[0]: {"answers": loads(r[1]), "active_ms": r[2]} for r in conn.execute(text(
                "SELECT i.external_id, a.answers, a.active_ms FROM annotations a JOIN items i ON i.id = a.item_id "
                "JOIN users u ON u.id = a.user_id JOIN projects p ON p.id = a.project_id "
                "WHERE u.name = :n AND p.slug = :s"), {"n": name, "s": slug})}


def _seed(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        for name in USERS:
            users.create_user(store, name, "annotator", PASSWORD)
        for schema, rows in (
                (SPAM, [{"id": f"s{i}", "text": f"comment {i}"} for i in range(60)]),
                (PAIR, [{"id": f"p{i}", "a": f"answer A{i}", "b": f"answer B{i}"} for i in range(10)]),
                (TAGS, [{"id": f"t{i}", "text": f"tag me {i}"} for i in range(10)]),
                (SHORT, [{"id": f"h{i}", "text": f"quick {i}"} for i in range(10)]),
                (TAIL, [{"id": f"e{i}", "text": f"last {i}"} for i in range(4)])):
            p = projects.create_project(store, schema, created_by=owner.id)
            items.add_items(store, p, rows)
            for name in USERS:
                access.set_member(store, p, name, "annotator")
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("instant")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    _seed(db_url)
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp / "lw.db"), "serve",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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


def open_page(browser, size="desktop", **options):
    context = browser.new_context(viewport=SIZES[size], **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def sign_in(page, server, name: str, target: str):
    page.goto(server.url + target)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    assert page.url == server.url + target


def wait_for(page, expression: str, timeout: float = 10):
    """Poll ``expression`` in the page until it is truthy (wait_for_function would need 'unsafe-eval')."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value or time.monotonic() > deadline:
            assert value, f"still falsy after {timeout} s: {expression}"
            return value
        page.wait_for_timeout(20)


def wait_prefetched(page) -> str:
    return wait_for(page, "document.body.dataset.prefetched")


def item_text(page) -> str:
    return page.locator("#item-region .field .text").first.inner_text()


@pytest.mark.parametrize("size", SIZES)
def test_prefetched_item_swaps_in_without_a_reload(server, browser, size):
    name = {"desktop": "ana", "phone": "ben"}[size]
    context, page, errors = open_page(browser, size)
    sign_in(page, server, name, "/projects/fast/label")
    first = item_text(page)
    wait_prefetched(page)
    assert len(server.leases(name, "fast")) == 2  # the item on screen and the prefetched one
    page.evaluate("window.__sameDocument = true")
    for n in range(3):
        before = item_text(page)
        page.keyboard.press("1" if n % 2 == 0 else "2")
        page.wait_for_timeout(100)
        with page.expect_navigation():  # history.pushState once the answer is saved
            page.keyboard.press("Enter")
        assert item_text(page) != before
        assert page.evaluate("window.__sameDocument") is True  # no page load
        wait_prefetched(page)
    assert page.url.startswith(server.url + "/projects/fast/label?item=")
    assert page.locator("#counts").inner_text().split()[:2] == ["3", "done"]
    saved = server.answers(name, "fast")
    assert len(saved) == 3 and first in {f"comment {e[1:]}" for e in saved}
    assert [saved[k]["answers"]["spam"] for k in sorted(saved)] == ["spam", "ham", "spam"]
    assert all(a["active_ms"] < 5000 for a in saved.values())  # each item's own time, not the page's
    held = server.leases(name, "fast")
    assert len(held) == 2 and held[0] == "s" + item_text(page).split()[-1]  # on screen, then prefetched
    page.screenshot(path=f"/tmp/lw-instant-{size}.png", full_page=True)
    if size == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # Refresh: the item on screen again (the page's oldest lease), not the prefetched one.
    shown = item_text(page)
    page.reload()
    assert item_text(page) == shown
    # Back: the answer before, opened to change it.
    wait_prefetched(page)
    page.go_back()
    page.wait_for_url("**/history/**")
    assert "Changing an earlier answer" in page.locator("h1").inner_text()
    close_context(context)
    assert not errors, errors


def test_without_javascript_the_page_still_labels(server, browser):
    context, page, _ = open_page(browser, "phone", java_script_enabled=False)
    sign_in(page, server, "cy", "/projects/fast/label")
    for choice in ("spam", "ham"):
        before = item_text(page)
        page.locator(f"label.choice:has(input[value={choice}])").click()
        with page.expect_navigation():
            page.locator("button.primary").click()
        assert item_text(page) != before
    assert sorted(a["answers"]["spam"] for a in server.answers("cy", "fast").values()) == ["ham", "spam"]
    assert len(server.leases("cy", "fast")) == 1  # no prefetch without JavaScript
    assert page.locator("#lease-left").inner_text().startswith(("9:", "10:"))  # the time left at load
    close_context(context)


def test_no_lease_left_behind_when_the_page_goes_away(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "dee", "/projects/fast/label")
    shown = "s" + item_text(page).split()[-1]
    wait_prefetched(page)
    assert server.leases("dee", "fast")[0] == shown and len(server.leases("dee", "fast")) == 2
    page.close()  # the tab closed: the prefetched item goes back at once
    deadline = time.monotonic() + 5
    while len(server.leases("dee", "fast")) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.leases("dee", "fast") == [shown]  # only the item the annotator saw

    # Skipping swaps the prefetched item in (it is used, not lost); Backspace releases the next one.
    page = context.new_page()
    page.goto(server.url + "/projects/fast/label")
    wait_prefetched(page)
    nxt = page.evaluate("document.body.dataset.prefetched")
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    wait_prefetched(page)
    with page.expect_navigation():
        page.keyboard.press("s")
    wait_prefetched(page)
    held = server.leases("dee", "fast")
    assert len(held) == 2 and nxt not in held
    with page.expect_navigation(url="**/history/**"):
        page.keyboard.press("Backspace")
    deadline = time.monotonic() + 5
    while len(server.leases("dee", "fast")) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.leases("dee", "fast") == held[:1]
    close_context(context)
    assert not errors, errors


@pytest.mark.parametrize("size", SIZES)
def test_a_digit_never_silently_changes_an_answered_pairwise_question(server, browser, size):
    """Issue 10: "B is better", then a click or Esc, then 4 meant for the rating became "Both bad"."""
    name = {"desktop": "eve", "phone": "fay"}[size]
    context, page, errors = open_page(browser, size)
    sign_in(page, server, name, "/projects/pairs/label")
    target = page.locator("#keys-target")
    assert target.is_visible() and "Which is better?" in target.inner_text()
    page.keyboard.press("2")  # B is better: the rating becomes the active question
    assert page.locator("#q-pref input[value=B]").is_checked()
    assert "How good is it?" in target.inner_text()
    assert "B is better" in page.locator("#flash").inner_text()

    # After a click on the answered question, 4 does not re-answer it: it asks first.
    page.locator("#q-pref legend").click()
    assert page.locator(".question.is-active").get_attribute("id") == "q-pref"
    assert "Which is better?" in target.inner_text()
    page.keyboard.press("4")
    assert page.locator("#q-pref input[value=B]").is_checked()
    flash = page.locator("#flash")
    assert "already answered: B is better" in flash.inner_text() and "Both bad" in flash.inner_text()
    page.screenshot(path=f"/tmp/lw-pairwise-ask-{size}.png", full_page=True)
    page.keyboard.press("ArrowDown")  # the rating, as meant
    page.keyboard.press("4")
    assert page.locator("#q-quality input[value='4']").is_checked()
    assert page.locator("#q-pref input[value=B]").is_checked()

    # After Esc from the rationale, the same.
    page.locator("textarea[name='pref.rationale']").fill("B answers the question")
    page.keyboard.press("Escape")
    page.keyboard.press("4")
    assert page.locator("#q-pref input[value=B]").is_checked()
    # Pressed again, it is a deliberate change, and says so.
    page.keyboard.press("4")
    assert page.locator("#q-pref input[value=both_bad]").is_checked()
    assert "changed from B is better to Both bad" in flash.inner_text()
    close_context(context)
    assert not errors, errors


def test_an_invalid_answer_comes_back_on_its_own_item(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "gus", "/projects/tags/label")
    first = item_text(page)
    nxt = wait_prefetched(page)
    page.keyboard.press("1")  # one tag, where two are needed: only the server knows
    page.keyboard.press("Enter")
    page.wait_for_selector("#item-region .question.has-error")
    assert item_text(page) == first
    assert "at least 2" in page.locator("#q-tags .error").inner_text()
    assert page.evaluate("document.body.dataset.prefetched") == nxt  # the next one waits, still held
    page.keyboard.press("2")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert item_text(page) != first
    assert server.answers("gus", "tags")[first.replace("tag me ", "t")]["answers"] == {"tags": ["a", "b"]}
    close_context(context)
    assert [e for e in errors if "422" not in e] == []  # the browser logs the refused answer's 422


@pytest.mark.parametrize("size", SIZES)
def test_instructions_box_remembers_being_closed(server, browser, size):
    name = {"desktop": "ana", "phone": "ben"}[size]
    context, page, errors = open_page(browser, size)
    sign_in(page, server, name, "/projects/fast/label")
    box = page.locator("#instructions")
    assert box.get_attribute("open") is not None
    # the page stores the state on <details>' toggle event, which fires a moment after the click: wait for
    # it before reloading (a reload in between raced it and lost the state, failing 2 runs in 5)
    stored = "state => localStorage.getItem(document.getElementById('instructions').dataset.remember) === state"
    page.locator("#instructions summary").click()
    assert box.get_attribute("open") is None
    page.wait_for_function(stored, arg="closed")
    page.reload()
    assert page.locator("#instructions").get_attribute("open") is None
    assert page.locator("#instructions .md").is_hidden()
    page.locator("#instructions summary").click()
    page.wait_for_function(stored, arg="open")
    page.reload()
    assert page.locator("#instructions").get_attribute("open") is not None
    close_context(context)
    assert not errors, errors


@pytest.mark.parametrize("size", SIZES)
def test_lease_clock_counts_down_warns_and_explains_the_end(server, browser, size):
    name = {"desktop": "hal", "phone": "cy"}[size]
    context, page, errors = open_page(browser, size)
    sign_in(page, server, name, "/projects/short/label")
    clock = page.locator("#lease-left")
    assert clock.is_visible()
    first = clock.inner_text()
    assert first in ("0:10", "0:09")
    page.wait_for_timeout(1500)
    assert clock.inner_text() < first
    assert "is-ending" in page.locator("#lease").get_attribute("class")  # the last minute
    wait_for(page, "document.getElementById('lease-left').textContent === '0:00'", timeout=15)
    assert "is-over" in page.locator("#lease").get_attribute("class")
    assert "Time is up" in page.locator("#lease-note").inner_text()
    page.screenshot(path=f"/tmp/lw-lease-over-{size}.png", full_page=True)
    close_context(context)
    assert not errors, errors


def test_static_files_are_versioned_and_immutable(server):
    page = httpx.get(server.url + "/login")
    assert page.status_code == 200

    r = httpx.get(f"{server.url}/static/{version()}/label.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{server.url}/static/{version()}/activity.js").headers["cache-control"].endswith("immutable")
    assert httpx.get(f"{server.url}/static/0000deadbeef/label.js").status_code == 404  # an old version


@pytest.mark.parametrize("size", SIZES)
def test_to_the_end_of_the_queue_by_keyboard(server, browser, size):
    """Instant items while there are enough, page loads for the last ones, then "All done" (no errors)."""
    name = {"desktop": "gus", "phone": "hal"}[size]
    context, page, errors = open_page(browser, size)
    sign_in(page, server, name, "/projects/tail/label")
    seen = []
    while page.locator(".done").count() == 0 and len(seen) < 6:
        seen.append(item_text(page))
        page.keyboard.press("2")
        page.wait_for_timeout(300)  # a person reading: time for the prefetch
        with page.expect_navigation():
            page.keyboard.press("Enter")
    assert page.locator(".done h1").inner_text() == "All done"
    assert len(seen) == 4 and len(set(seen)) == 4 and len(server.answers(name, "tail")) == 4
    assert server.leases(name, "tail") == []
    page.screenshot(path=f"/tmp/lw-instant-done-{size}.png", full_page=True)
    close_context(context)
    assert not errors, errors
