"""Review, gold marking and more answers in a real browser (headless Chromium through Playwright), at
1280x800 and 390x844: review by keyboard (A accept, F fix, R reject with the feedback box focused, N next),
gold marking while walking the items in doubt (J / K, G), asking for more answers, and the same work with
JavaScript off (buttons only). A server process on a SQLite file; each test seeds its own project in it.
Screenshots land in /tmp/lw-review-*.png.
"""

from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import text

from labelwright.services import access, items, projects, queue, users
from labelwright.services.gold import gold_answers
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import close_context
from tests.browser.test_a11y import _check_page
from tests.browser.test_browser import _require_chromium, browser  # noqa: F401 - the browser fixture
from tests.conftest import hand_out
from tests.server import ServerProcess

pytestmark = pytest.mark.browser

PASSWORDS = {"olive": "owner-password", "ana": "ana-password", "bob": "bob-password", "rita": "rita-password",
             "max": "max-password"}
VIEWPORTS = {"wide": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SCHEMA = {
    "name": "Comments", "id_field": "id", "overlap": 1, "gold": {"rate": 0},
    "instructions": "Spam **promotes** a channel, a product or a link.",
    "review": {"mode": "all"},
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Is this comment spam?",
                   "options": [{"value": "spam", "label": "Spam"}, {"value": "ham", "label": "Not spam"}]}],
}
_slugs = itertools.count()


class Seeder:
    """Seeds projects into the server's database from the test process (SQLite takes both)."""

    def __init__(self, db_url: str):
        self.store = Store(db_url)

    def user(self, name: str):
        return users.get_user(self.store, name)

    def project(self, prefix: str, schema_extra: dict, texts: list[str]):
        slug = f"{prefix}-{next(_slugs)}"
        owner = self.user("olive")
        p = projects.create_project(self.store, {**SCHEMA, **schema_extra, "slug": slug, "name": slug},
                                    created_by=owner.id)
        items.add_items(self.store, p, [{"id": f"{slug}-{k}", "text": t} for k, t in enumerate(texts)])
        for name, role in (("ana", "annotator"), ("bob", "annotator"), ("rita", "reviewer"), ("max", "manager")):
            access.set_member(self.store, p, name, role)
        return p

    def item_ids(self, p) -> list[int]:
        with self.store.read() as conn:
            return [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p ORDER BY id"),
                                               {"p": p.id})]

    def answer(self, item_id: int, name: str, answers: dict) -> int:
        user = self.user(name)
        hand_out(self.store, item_id, user)
        return queue.submit(self.store, item_id, user, answers, active_ms=3000)[0]["id"]

    def decisions(self, p) -> dict[int, tuple]:
        with self.store.read() as conn:
            return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(text(
                "SELECT annotation_id, decision, fixed_answers, feedback FROM reviews WHERE project_id = :p"),
                {"p": p.id})}

    def targets(self, p) -> dict[str, int | None]:
        with self.store.read() as conn:
            return dict(conn.execute(text("SELECT external_id, target FROM items WHERE project_id = :p"),
                                     {"p": p.id}).all())

    def gold(self, p) -> dict:
        return gold_answers(self.store, p)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()

    db = normalise_db_url(str(tmp_path_factory.mktemp("browser-review") / "lw.db"))
    store = Store(db)
    store.migrate()
    try:
        users.create_user(store, "olive", "owner", PASSWORDS["olive"])
        for name, role in (("ana", "annotator"), ("bob", "annotator"), ("rita", "reviewer"), ("max", "manager")):
            users.create_user(store, name, role, PASSWORDS[name])
    finally:
        store.close()
    proc = ServerProcess(db, extra_env={"LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"})
    with proc.start():
        proc.seed = Seeder(db)
        yield proc
        proc.seed.store.close()


def _context(browser, viewport: str, javascript: bool = True):  # noqa: F811 - browser is the fixture's value
    context = browser.new_context(viewport=VIEWPORTS[viewport], java_script_enabled=javascript)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return context, page, errors


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser):  # noqa: F811
    context, page, errors = _context(browser, request.param)
    page.viewport_name = request.param
    yield page
    close_context(context)
    assert not errors, f"the page logged errors: {errors}"


def sign_in(page, server, name: str, target: str):
    page.goto(server.url + target)
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    assert page.url == server.url + target


def key(page, k: str, navigate: bool = False):
    page.wait_for_timeout(100)
    if navigate:
        with page.expect_navigation():
            page.keyboard.press(k)
    else:
        page.keyboard.press(k)


def shown_id(page) -> int:
    return int(page.locator("#review-form").get_attribute("action").rsplit("/", 1)[1])


def waiting(page) -> int:
    return int(re.search(r"(\d+)\s+waiting", page.locator(".counts").inner_text()).group(1))


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_review_by_keyboard(server, page):
    seed = server.seed
    p = seed.project("rk", {}, ["check out my channel", "nice song", "free gift cards at example.com"])
    subs = [seed.answer(i, "ana", {"spam": "ham"}) for i in seed.item_ids(p)]
    sign_in(page, server, "rita", f"/projects/{p.slug}/review")
    assert waiting(page) == 3 and shown_id(page) == subs[0]
    answer = page.locator("#review-answer").inner_text()
    assert "Not spam" in answer and "{" not in answer  # the option's label, never JSON
    assert not page.locator("#review-instructions").evaluate("d => d.open")
    key(page, "i")
    assert page.locator("#review-instructions").evaluate("d => d.open")
    assert "promotes" in page.locator("#review-instructions").inner_text()
    page.screenshot(path=f"/tmp/lw-review-{page.viewport_name}.png", full_page=True)
    # N passes over the first
    key(page, "n", navigate=True)
    assert shown_id(page) == subs[1]
    # A accepts the second
    key(page, "a", navigate=True)
    assert waiting(page) == 2 and shown_id(page) == subs[0]
    # F opens the fix form on the annotator's answer: 1 chooses "Spam", Enter saves the fix
    key(page, "f")
    assert "is-open" in page.locator("#review-fix").get_attribute("class")
    assert page.locator("#review-fix .question").first.get_attribute("class").count("is-active") == 1
    assert page.locator("#review-fix input[value=ham]").is_checked()
    key(page, "1")
    assert page.locator("#review-fix input[value=spam]").is_checked()
    page.screenshot(path=f"/tmp/lw-review-fix-{page.viewport_name}.png", full_page=True)
    key(page, "Enter", navigate=True)
    assert shown_id(page) == subs[2]
    # R puts the focus in the feedback box; Esc backs out; R again, write, Enter sends
    key(page, "r")
    assert focused_id(page) == "review-feedback"
    assert "is-open" in page.locator("#review-reject").get_attribute("class")
    key(page, "Escape")
    assert focused_id(page) != "review-feedback"
    assert "is-open" not in page.locator("#review-reject").get_attribute("class")
    key(page, "r")
    page.keyboard.type("Advertises gift cards: spam.")
    page.screenshot(path=f"/tmp/lw-review-reject-{page.viewport_name}.png", full_page=True)
    key(page, "Enter", navigate=True)
    assert "Nothing to review" in page.locator("main").inner_text() and waiting(page) == 0
    got = seed.decisions(p)
    assert got[subs[1]][0] == "accepted"
    assert got[subs[0]][0] == "fixed" and '"spam"' in got[subs[0]][1] and "spam" in got[subs[0]][1]
    assert got[subs[2]] == ("rejected", None, "Advertises gift cards: spam.")


def test_an_empty_rejection_is_not_sent_and_typing_keys_stay_in_the_box(server, page):
    seed = server.seed
    p = seed.project("rx", {}, ["buy followers"])
    seed.answer(seed.item_ids(p)[0], "ana", {"spam": "ham"})
    sign_in(page, server, "rita", f"/projects/{p.slug}/review")
    key(page, "r")
    key(page, "Enter")  # nothing written: nothing sent
    page.wait_for_timeout(300)
    assert focused_id(page) == "review-feedback" and seed.decisions(p) == {}
    page.keyboard.type("a fair")  # A and F typed into the box are text, not decisions
    key(page, "Shift+Enter")
    page.keyboard.type("reason")
    assert page.locator("#review-feedback").input_value() == "a fair\nreason"
    assert seed.decisions(p) == {}
    key(page, "Enter", navigate=True)
    assert list(seed.decisions(p).values()) == [("rejected", None, "a fair\nreason")]


def _doubtful(seed, prefix: str):
    votes = [("spam", "spam", "spam"), ("spam", "ham", "spam"), ("ham", "ham", "ham"), ("ham", "spam", "ham"),
             ("spam", "spam", "spam")]
    p = seed.project(prefix, {"overlap": 3, "review": None}, [f"comment {k}" for k in range(len(votes))])
    for item_id, vs in zip(seed.item_ids(p), votes):
        for who, v in zip(("ana", "bob", "max"), vs):
            seed.answer(item_id, who, {"spam": v})
    return p


def test_gold_marking_through_the_items_in_doubt(server, page):
    seed = server.seed
    p = _doubtful(seed, "gd")
    sign_in(page, server, "max", f"/projects/{p.slug}/doubt")
    rows = page.locator(".doubt-table tbody tr")
    assert rows.count() == 5
    first = rows.first.locator("a")
    first_item = first.get_attribute("href").split("?")[0]
    with page.expect_navigation():
        first.click()
    assert page.url.endswith("?doubt=0") and "In doubt: 1 of 5" in page.locator(".doubt-nav").inner_text()
    key(page, "j", navigate=True)
    assert page.url.endswith("?doubt=1")
    second_item = page.url.split("?")[0]
    key(page, "k", navigate=True)
    assert page.url == server.url + first_item + "?doubt=0"
    # 2 chooses "Not spam" in the gold form, G marks the item gold
    key(page, "2")
    assert page.locator("#gold-form input[value=ham]").is_checked()
    key(page, "g", navigate=True)
    assert page.locator("h1 .badge.gold").inner_text() == "gold"
    page.screenshot(path=f"/tmp/lw-review-gold-{page.viewport_name}.png", full_page=True)
    # out of the list now: J goes on to the one that came after it
    key(page, "j", navigate=True)
    assert page.url.split("?")[0] == second_item
    assert list(seed.gold(p).values()) == [{"spam": "ham"}]


def test_more_answers_on_ticked_items(server, page):
    seed = server.seed
    p = _doubtful(seed, "ma")
    sign_in(page, server, "max", f"/projects/{p.slug}/doubt")
    boxes = page.locator(".doubt-table tbody input[type=checkbox]")
    picked = [boxes.nth(k).get_attribute("value") for k in (0, 1)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.fill("#more-answers-form input[name=answers]", "2")
    with page.expect_navigation():
        page.locator("#more-answers-form button[type=submit]").click()
    assert "Asked for 2 more answers on 2 items." in page.locator("#asked").inner_text()
    page.screenshot(path=f"/tmp/lw-review-doubt-{page.viewport_name}.png", full_page=True)
    targets = seed.targets(p)
    assert {targets[x] for x in picked} == {5} and sum(t is not None for t in targets.values()) == 2


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_everything_works_without_javascript(server, browser, viewport):  # noqa: F811
    seed = server.seed
    p = seed.project("nojs", {}, ["subscribe to me", "lovely"])
    subs = [seed.answer(i, "ana", {"spam": "ham"}) for i in seed.item_ids(p)]
    context, page, errors = _context(browser, viewport, javascript=False)
    seen = [errors]
    try:
        sign_in(page, server, "rita", f"/projects/{p.slug}/review")
        assert page.locator("#review-reject-keys").is_hidden()  # the Enter-sends hint needs the script
        page.fill("#review-feedback", "Asks people to subscribe.")
        with page.expect_navigation():
            page.locator("#review-reject-button").click()
        page.locator("#review-fix label.choice", has_text="Spam").first.click()
        with page.expect_navigation():
            page.locator("#review-fix-button").click()
        assert "Nothing to review" in page.locator("main").inner_text()
        got = seed.decisions(p)
        assert got[subs[0]][0] == "rejected" and got[subs[1]][0] == "fixed"
        close_context(context)

        d = _doubtful(seed, "nojsg")
        context, page, errors = _context(browser, viewport, javascript=False)
        seen.append(errors)
        sign_in(page, server, "max", f"/projects/{d.slug}/doubt")
        with page.expect_navigation():
            page.locator(".doubt-table tbody tr a").first.click()
        ext = page.locator("h1 code").inner_text()
        with page.expect_navigation():
            page.locator("#more-answers-form button[type=submit]").click()
        assert "Asked for 1 more answer" in page.locator("#asked").inner_text()
        assert seed.targets(d)[ext] == 4
        page.locator("#gold-form label.choice", has_text="Not spam").click()
        with page.expect_navigation():
            page.locator("#gold-save").click()
        assert page.locator("h1 .badge.gold").is_visible()
        with page.expect_navigation():
            page.locator("#doubt-next").click()
        assert "?doubt=0" in page.url
    finally:
        close_context(context)
    assert not any(seen), f"the pages logged errors: {seen}"


def test_the_new_pages_pass_the_accessibility_check(server, page):
    """The checks of tests/browser/test_a11y.py (focus visible at 3:1, scrolling regions reachable and named) on the
    items-in-doubt page, an item page with its doubt links and more-answers form, and the review page."""
    seed = server.seed
    p = _doubtful(seed, "a11y")
    r = seed.project("a11yr", {}, ["follow me"])
    seed.answer(seed.item_ids(r)[0], "ana", {"spam": "ham"})
    sign_in(page, server, "max", f"/projects/{p.slug}/doubt")
    problems = _check_page(page, "doubt")
    page.goto(server.url + f"/projects/{p.slug}/items/{seed.item_ids(p)[1]}?doubt=0")
    problems += _check_page(page, "item")
    page.goto(server.url + f"/projects/{r.slug}/review")
    problems += _check_page(page, "review")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_enter_in_a_one_line_answer_box_saves_a_fix_not_an_accept(server, browser, javascript):  # noqa: F811
    seed = server.seed
    p = seed.project("line", {"questions": [
        {"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
        {"name": "why", "type": "text", "multiline": False, "required": False, "prompt": "Why?"}]}, ["hello"])
    sub = seed.answer(seed.item_ids(p)[0], "ana", {"spam": "ham", "why": "polite"})
    context, page, errors = _context(browser, "wide", javascript=javascript)
    try:
        sign_in(page, server, "rita", f"/projects/{p.slug}/review")
        page.locator("#review-fix input[name=why]").fill("a link to a shop")
        with page.expect_navigation():
            page.locator("#review-fix input[name=why]").press("Enter")
        decision, fixed, _ = seed.decisions(p)[sub]
        assert decision == "fixed" and "a link to a shop" in fixed
    finally:
        close_context(context)
    assert not errors, errors
