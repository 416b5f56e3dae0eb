"""The spans question in real Chromium: a name selected word by word with the keyboard (→, Shift+→) and
labelled with its number key, submitted (the next item swaps in without a reload); on that next item a name
selected by dragging the mouse over it, labelled with its key, a wrong span added and removed again; the
stored answers hold the server's character offsets. The texts are TREC questions, one with a double space
and one with a character outside the Basic Multilingual Plane before the name (offsets are code points).

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
TEXTS = {  # from /work/shared/datasets/trec_question_classification (the second with an emoji added)
    "q1": ("What films featured the character  Popeye Doyle ?", "Popeye Doyle", "PER"),
    "q2": ("Name a golf course 🏌 in Myrtle Beach .", "Myrtle Beach", "LOC"),
}
SCHEMA = {
    "name": "Names", "slug": "names", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text", "label": "Question"}],
    "questions": [{"name": "ents", "type": "spans", "prompt": "Mark the names", "field": "text",
                   "labels": ["PER", "LOC", {"value": "ORG", "label": "Organisation", "key": "o"}]}],
}


def expected(ext: str) -> dict:
    text, phrase, label = TEXTS[ext]
    start = text.index(phrase)  # code points, as the server counts
    return {"start": start, "end": start + len(phrase), "label": label}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("spans")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": k, "text": v[0]} for k, v in TEXTS.items()])
        access.set_member(store, p, "ana", "annotator")
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
    """The external id of the item on screen (its text, as the spans script has it)."""
    text = page.evaluate("JSON.parse(document.querySelector('#item-region [data-spans]').dataset.text)")
    return next(k for k, v in TEXTS.items() if v[0] == text)


def saved(server, ext: str) -> None:
    deadline = time.monotonic() + 10
    while ext not in server.answers("ana", "names") and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_shown_other(page, ext: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            if page.locator("#item-region [data-spans-text] .seg").count() and shown(page) != ext:
                return
        except Exception:  # the page is loading the next item
            pass
        assert time.monotonic() < deadline, "the next item did not show"
        page.wait_for_timeout(50)


def value(page) -> list:
    return page.evaluate("JSON.parse(document.querySelector('#item-region [data-spans-value]').value)")


# The screen rectangle of code points [a, b) of the spans box's text.
RECT = """([a, b]) => {
  const box = document.querySelector('#item-region [data-spans-text]');
  const at = (n) => { let count = 0;
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const cps = Array.from(node.data);
      if (count + cps.length >= n) return [node, cps.slice(0, n - count).join('').length];
      count += cps.length; } };
  const range = document.createRange();
  range.setStart(...at(a)); range.setEnd(...at(b));
  const r = range.getClientRects();
  const first = r[0], last = r[r.length - 1];
  return {x0: first.left, y0: first.top + first.height / 2, x1: last.right, y1: last.top + last.height / 2};
}"""


def test_select_spans_with_the_keyboard_and_the_mouse(server, browser):
    context, page, errors = open_page(browser)
    sign_in(page, server, "ana", "/projects/names/label")
    wait_for(page, "document.querySelector('#item-region [data-spans-text] .seg') !== null")
    buttons = page.locator("#item-region .span-label").all_inner_texts()
    assert [" ".join(b.split()) for b in buttons] == ["1 PER", "2 LOC", "o Organisation"]

    # the keyboard: → selects the first word, more → move by word, Shift+→ takes the next word in
    first = shown(page)
    text, phrase, label = TEXTS[first]
    words = text.split()
    at = words.index(phrase.split()[0])
    for _ in range(at + 1):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#item-region .seg.is-selected").all_inner_texts() == [phrase]
    page.keyboard.press("1" if label == "PER" else "2")
    assert value(page) == [expected(first)]
    assert page.locator("#item-region .spans-list li").count() == 1
    page.keyboard.press("Enter")  # the next item swaps in, or the page loads it
    saved(server, first)
    wait_shown_other(page, first)
    assert server.answers("ana", "names")[first]["answers"] == {"ents": [expected(first)]}

    # the mouse, on the item swapped in: drag over the name, then its label's key
    second = shown(page)
    text, phrase, label = TEXTS[second]
    wait_for(page, "document.querySelector('#item-region [data-spans-text] .seg') !== null")
    start = len(text[:text.index(phrase)])
    r = page.evaluate(RECT, [start, start + len(phrase)])
    page.mouse.move(r["x0"] + 1, r["y0"])
    page.mouse.down()
    page.mouse.move((r["x0"] + r["x1"]) / 2, r["y0"], steps=4)
    page.mouse.move(r["x1"] - 1, r["y1"], steps=4)
    page.mouse.up()
    assert page.locator("#item-region .seg.is-selected").all_inner_texts() == [phrase]
    page.keyboard.press("1" if label == "PER" else "2")
    assert value(page) == [expected(second)]

    # a wrong span on the first word, labelled with the button, removed with its × button
    r = page.evaluate(RECT, [0, 4])
    page.mouse.dblclick(r["x0"] + 3, r["y0"])
    page.locator("#item-region .span-label", has_text="Organisation").click()
    assert value(page) == [{"start": 0, "end": 4, "label": "ORG"}, expected(second)]
    page.locator("#item-region .spans-list li", has_text="Organisation").locator("button").click()
    assert value(page) == [expected(second)]
    page.locator("#item-region .spans-text").focus()
    page.keyboard.press("Enter")
    saved(server, second)
    assert server.answers("ana", "names")[second]["answers"] == {"ents": [expected(second)]}
    assert errors == []
    close_context(context)
