"""The chat question in real Chromium: a conversation whose assistant turns are rated by keyboard (a number
rates the focused turn and the focus moves to the next unrated one; k goes back; e opens a rewrite box with
the turn in it), submitted with Enter, and the stored answer checked; a second item rated with the mouse.
A turn holding a <script> tag shows it as text and runs nothing. The conversations are written for the test.

A server process on its own SQLite file, driven by Playwright with Debian's Chromium (skipped without it,
except in CI; see tests/browser/test_browser.py).
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from labelwright.services import access, items, projects, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context, launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.browser.test_browser_label_instant import Server, open_page, sign_in, wait_for

pytestmark = pytest.mark.browser

PASSWORD = "instant-password"  # sign_in of test_browser_label_instant types this one
ITEMS = [
    {"id": "math", "messages": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "2+2 is 5."},
        {"role": "user", "content": "Show it in a page."},
        {"role": "assistant", "content": "<script>window.pwned = 1</script>It is 4."}]},
    {"id": "capital", "messages": [
        {"role": "user", "content": "What is the capital of Japan?"},
        {"role": "assistant", "content": "Tokyo."}]},
]
RANK = {
    "name": "Replies", "slug": "replies", "id_field": "id", "overlap": 1, "send_fields": ["candidates"],
    "fields": [{"name": "messages", "type": "chat"}],
    "questions": [{"name": "best", "type": "chat", "mode": "rank", "rewrite": True}],
}
RANK_ITEM = {"id": "capital", "messages": [{"role": "user", "content": "Capital of France?"},
                                           {"role": "assistant", "content": "Lyon."}],
             "candidates": ["Lyon.", "Paris.", "<b>Paris</b>, on the Seine."]}
SCHEMA = {
    "name": "Turns", "slug": "turns", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "messages", "type": "chat", "label": "Conversation"}],
    "questions": [{"name": "turns", "type": "chat", "prompt": "Rate each assistant turn", "rewrite": True}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("chat")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, ITEMS)
        access.set_member(store, p, "ana", "annotator")
        r = projects.create_project(store, RANK, created_by=owner.id)
        items.add_items(store, r, [RANK_ITEM])
        access.set_member(store, r, "ana", "annotator")
    finally:
        store.close()
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp / "lw.db"), "serve",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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


def shown(page) -> str:
    """The external id of the item on screen, by its first turn."""
    first = page.locator("#item-region .chatq-content").first.inner_text()
    return next(i["id"] for i in ITEMS if i["messages"][0]["content"] == first)


def saved(server, ext: str, slug: str = "turns") -> dict:
    deadline = time.monotonic() + 10
    while ext not in server.answers("ana", slug) and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.answers("ana", slug)[ext]["answers"]


def wait_shown(page, ext: str) -> None:
    """Wait until item ``ext`` is on screen (swapped in, or loaded by a page load)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            if page.locator("#item-region .chatq-turn.is-focused").count() and shown(page) == ext:
                return
        except Exception:  # the page is loading the next item
            pass
        assert time.monotonic() < deadline, f"item {ext} did not show"
        page.wait_for_timeout(50)


def focused(page) -> str:
    return page.evaluate("document.querySelector('#item-region .chatq-turn.is-focused').dataset.turn")


def test_rate_and_rewrite_turns_with_the_keyboard_then_the_mouse(server, browser):
    context, page, errors = open_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, server, "ana", "/projects/turns/label")
    wait_for(page, "document.querySelector('#item-region .chatq-turn.is-focused') !== null")
    # the conversation shows once, in the form; its copy beside the form is hidden
    assert not page.locator("#item-region .group-chat-question").is_visible()
    first = shown(page)
    if first == "capital":  # the keyboard part wants the two-turn conversation: take the other item first
        page.keyboard.press("4")
        page.keyboard.press("Enter")
        saved(server, "capital")
        wait_shown(page, "math")
    script_turn = page.locator("#item-region .chatq-turn[data-turn='3'] .chatq-content")
    assert script_turn.inner_text() == "<script>window.pwned = 1</script>It is 4."  # text, not markup
    assert page.evaluate("window.pwned === undefined")

    assert focused(page) == "1"
    page.keyboard.press("2")  # rates turn 1; the focus moves on to turn 3
    assert focused(page) == "3"
    page.keyboard.press("5")
    page.keyboard.press("k")  # back to turn 1, rate it again, then write a better one
    assert focused(page) == "1"
    page.keyboard.press("1")
    page.keyboard.press("k")
    page.keyboard.press("e")
    box = page.locator("#item-region textarea[name='turns.rewrite.1']")
    assert box.is_visible() and box.input_value() == "2+2 is 5."
    page.keyboard.press("Control+a")
    page.keyboard.type("2+2 is 4.")
    page.keyboard.press("Escape")  # leaves the box, so Enter submits
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert focused(page) == "3"
    page.keyboard.press("Enter")
    assert saved(server, "math") == {"turns": {"ratings": {"1": 1, "3": 5}, "rewrites": {"1": "2+2 is 4."}}}

    if first == "math":  # the other item, with the mouse: a click on a point, a rewrite opened and left as it was
        wait_shown(page, "capital")
        page.locator("#item-region .chatq-turn[data-turn='1'] .chatq-point", has_text="3").click()
        page.locator("#item-region .chatq-turn[data-turn='1'] summary").click()
        page.locator("#item-region textarea[name='turns.rewrite.1']").click()
        page.locator("#item-region .chatq-content").first.click()  # unchanged: the box empties again
        assert page.locator("#item-region textarea[name='turns.rewrite.1']").input_value() == ""
        page.locator("#item-region button[type=submit].primary").click()
        assert saved(server, "capital") == {"turns": {"ratings": {"1": 3}}}
    assert dialogs == [] and errors == []
    close_context(context)


def test_rank_candidate_replies_with_number_keys(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/replies/label")
    wait_for(page, "document.querySelector('#item-region .chatq-candidate') !== null")
    # the conversation before the candidates: its last assistant turn is the one they replace
    assert page.locator("#item-region .chatq-turn").count() == 1
    assert page.locator("#item-region .chatq-candidate .chatq-content").all_inner_texts() == RANK_ITEM["candidates"]
    for key in ("3", "2", "1"):  # best first, as on a ranking question
        page.keyboard.press(key)
    assert page.locator("#item-region [data-ranking-order] li").all_inner_texts() == ["Reply 3", "Reply 2", "Reply 1"]
    page.keyboard.press("Enter")
    assert saved(server, "capital", "replies") == {"best": {"ranking": [2, 1, 0]}}
    assert errors == []
    close_context(context)
