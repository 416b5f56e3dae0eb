"""The assistant in a real browser: suggestions confirmed or changed by keyboard, the assist page, the check queue.

A server process on a SQLite file seeded with an assisted project (a slice of the YouTube spam comments, people's
answers, a trained model, machine labels sent to the audit), driven by headless Chromium through Playwright, as
in tests/browser/test_browser.py (whose helpers this reuses). Screenshots land in /tmp/lw-assist-*.png.
"""

from __future__ import annotations

import json

import httpx
import pytest

from labelwright.services import access, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser import test_browser
from tests.browser.test_browser import _require_chromium, press
from tests.server import ServerProcess
from tests.web.test_web_assist import YOUTUBE, assisted_schema, make_assisted

# browser, page: the same fixtures as the other browser tests (they use this module's server)
browser, page = test_browser.browser, test_browser.page

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not YOUTUBE.exists(), reason=f"shared dataset missing: {YOUTUBE}")]

PASSWORDS = {"olive": "owner-password", "ana": "ana-password", "rita": "rita-password", "maya": "maya-password"}


def _seed(db_url: str) -> dict:
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORDS["olive"])
        tokens = {"olive": users.create_api_token(store, owner)}
        for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("maya", "manager")):
            tokens[name] = users.create_api_token(store, users.create_user(store, name, role, PASSWORDS[name]))
        users.create_user(store, "w", "annotator")
        # 20 of the 26 items of the validation sample answered: the other 6 (never machine-labelled) are ana's
        p, _ = make_assisted(store, owner, assisted_schema(
            "aspam", auto_label={"target_accuracy": 0.5, "confidence": 0.5, "audit_rate": 1.0, "min_validation": 26}))
        for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("maya", "manager")):
            access.set_member(store, p, name, role)
    finally:
        store.close()
    return tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    db = normalise_db_url(str(tmp_path_factory.mktemp("browser-assist") / "lw.db"))
    tokens = _seed(db)
    # The background workers stay off: the test decides when the assistant runs.
    proc = ServerProcess(db, extra_env={"LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"})
    with proc.start():
        proc.tokens = tokens
        yield proc


def sign_in(page, server, name: str, target: str):
    page.goto(server.url + target)
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    assert page.url == server.url + target


def api(server, name: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}/api/v1{path}", timeout=30,
                         headers={"Authorization": f"Bearer {server.tokens[name]}"}, **kwargs)


def held(server) -> dict:
    """The item ana holds, with its suggestion, from the API (`next` gives the held item again)."""
    r = api(server, "ana", "POST", "/projects/aspam/next")
    assert r.status_code == 200, r.text
    return r.json()


def test_confirm_a_suggestion_with_enter_and_change_one_with_a_number_key(server, page):
    sign_in(page, server, "ana", "/projects/aspam/label")
    spam_q = page.locator("#q-spam")
    first = held(server)
    s1 = first["suggestion"]
    assert s1 and s1["model"] == "builtin-1"
    assert "has-suggestion" in spam_q.get_attribute("class")
    assert page.locator(f"#q-spam input[value={s1['label']}]").is_checked()  # pre-selected
    badge = page.locator("#q-spam .choice.is-suggested .suggestion-badge")
    assert badge.is_visible() and badge.inner_text() == f"suggested · {s1['confidence']:.0%} · builtin-1"
    assert page.locator("#suggestion-spam").is_visible()
    # the suggested option looks unlike a person's choice: dashed, in the suggestion colour
    body = page.locator("#q-spam .choice.is-suggested .choice-body")
    assert body.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    page.screenshot(path="/tmp/lw-assist-suggestion.png", full_page=True)
    press(page, "Enter", navigate=True)  # one key confirms it

    second = held(server)
    assert second["id"] != first["id"]
    s2 = second["suggestion"]
    other = "ham" if s2["label"] == "spam" else "spam"
    assert page.locator(f"#q-spam input[value={s2['label']}]").is_checked()
    press(page, "2" if other == "ham" else "1")  # the usual number key changes it
    assert "has-suggestion" not in spam_q.get_attribute("class")
    assert page.locator(f"#q-spam input[value={other}]").is_checked()
    assert not page.locator("#q-spam .suggestion-badge").is_visible()
    assert not page.locator("#suggestion-spam").is_visible()
    chosen = page.locator(f"#q-spam input[value={other}] + .choice-body")
    assert chosen.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"  # a person's choice, as usual
    page.screenshot(path="/tmp/lw-assist-changed.png", full_page=True)
    press(page, "Enter", navigate=True)

    # a click on the suggested option makes it the person's own choice too: the mark goes away
    third = held(server)["suggestion"]
    assert "has-suggestion" in spam_q.get_attribute("class")
    page.locator("#q-spam label.choice.is-suggested").click()
    assert "has-suggestion" not in spam_q.get_attribute("class")
    assert page.locator(f"#q-spam input[value={third['label']}]").is_checked()

    rows = httpx.get(f"{server.url}/api/v1/projects/aspam/export", params={"format": "jsonl"}, timeout=30,
                     headers={"Authorization": f"Bearer {server.tokens['olive']}"})

    by_id = {r["external_id"]: r for r in map(json.loads, rows.text.splitlines())}
    mine = {ext: [a for a in r["annotations"] if a["annotator"] == "ana"] for ext, r in by_id.items()}
    assert [a["answers"] for a in mine[first["external_id"]]] == [{"spam": s1["label"]}]
    assert [a["answers"] for a in mine[second["external_id"]]] == [{"spam": other}]


def test_a_manager_sees_the_assist_page_and_runs_a_step(server, page):
    sign_in(page, server, "maya", "/projects/aspam")
    with page.expect_navigation():
        page.locator("#assist-link").click()
    assert page.url.endswith("/projects/aspam/assist")
    assert page.locator("#auto-label-state").inner_text().startswith("auto-labelling on")
    assert page.locator("#models tbody tr").count() == 1
    assert "builtin-1" in page.locator("#models tbody tr").first.inner_text()
    assert page.locator("#labels-chart rect").count() >= 1 and page.locator("#labels-chart").is_visible()
    assert int(page.locator("#machine-labelled").inner_text()) > 0
    page.screenshot(path="/tmp/lw-assist-page.png", full_page=True)
    with page.expect_navigation():
        page.locator("#run-step").click()
    assert "Step done" in page.locator("#step-report").inner_text()


def test_a_reviewer_decides_an_audit_by_keyboard(server, page):
    before = api(server, "olive", "GET", "/projects/aspam/checks").json()
    sign_in(page, server, "rita", "/")
    with page.expect_navigation():
        page.locator(".project-card a", has_text="Checks").click()
    assert page.url.endswith("/projects/aspam/checks")
    assert "Audit." in page.locator("#check-kind").inner_text()
    assert page.locator("#current-label, #suggested-label, .suggestion-badge").count() == 0
    assert page.locator("#answer-form input[name=label]:checked").count() == 0
    action = page.locator("#answer-form").get_attribute("action")
    check_id = int(action.rsplit("/", 1)[1])
    page.screenshot(path="/tmp/lw-assist-check.png", full_page=True)
    press(page, "2", "Enter", navigate=True)
    assert page.locator("#saved").is_visible()
    page.screenshot(path="/tmp/lw-assist-check-next.png", full_page=True)
    after = {c["id"]: c for c in api(server, "olive", "GET", "/projects/aspam/checks").json()}
    assert after[check_id]["checked_label"] == "ham" and after[check_id]["checked_by"] == "rita"
    assert sum(c["checked_at"] is not None for c in after.values()) == 1 + sum(
        c["checked_at"] is not None for c in before)
