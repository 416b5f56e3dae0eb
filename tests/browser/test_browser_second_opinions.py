"""``redundancy.second_opinions = stronger_half`` in real Chromium, as each role sees it: the owner turns it on
in the project's settings; once the skills are fitted, an annotator of the weaker half who asks for work while
only an item in doubt is open is told why none comes to them; one of the stronger half is given it; the
owner's quality page lists who is held back, at desktop and phone widths."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.browser.chromium import close_context
from tests.browser.test_browser import browser, server, sign_in  # noqa: F401 - fixtures
from tests.browser.test_browser_auto_pause import spam_project
from tests.browser.test_browser_owner import no_sideways_scroll
from tests.conftest import label_until_done

pytestmark = pytest.mark.filterwarnings("ignore")

SCHEMA = {
    "name": "Second opinions", "slug": "opinions", "id_field": "id", "gold": {"rate": 0},
    "redundancy": {"min": 2, "max": 3, "confidence": 0.95},
    "fields": [{"name": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}


def _watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


def test_second_opinions_as_each_role_sees_them(server, browser):  # noqa: F811
    owner = {"Authorization": f"Bearer {server.owner_token}"}
    api = httpx.Client(base_url=server.url, timeout=30)
    tokens, links = spam_project(api, owner, SCHEMA, ("h0", "h1", "h2", "n0", "n1", "n2"))
    errors: list[str] = []
    owner_context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = owner_context.new_page()
    _watch(page, errors)
    sign_in(page, server, "olive", "/projects/opinions/settings")
    page.select_option("#set-redundancy-second_opinions", "stronger_half")
    with page.expect_navigation():
        page.click("#redundancy button[type=submit]")
    assert "Saved." in page.locator("#redundancy").inner_text()
    project = api.get("/api/v1/projects/opinions", headers=owner).json()
    assert project["schema"]["redundancy"]["second_opinions"] == "stronger_half", project

    rng = random.Random(3)
    refused, _ = label_until_done(api, "opinions", tokens, lambda name, item: {"spam": (
        ("ham" if item["data"]["text"] == "spam" else "spam") if name.startswith("n") and rng.random() < 0.4
        else item["data"]["text"])})
    assert not refused, refused
    assert api.post("/api/v1/projects/opinions/items", json={"items": [{"id": "doubt", "text": "t"}]},
                    headers=owner).status_code == 200
    for name, answer in (("h0", "spam"), ("h1", "ham")):  # two strong annotators disagree: one more answer
        item = api.post("/api/v1/projects/opinions/next", headers={"Authorization": f"Bearer {tokens[name]}"}).json()
        assert item["external_id"] == "doubt"
        assert api.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": answer}},
                        headers={"Authorization": f"Bearer {tokens[name]}"}).status_code == 201

    # an annotator of the weaker half: nothing for them, and why
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _watch(page, errors)
    page.goto(links["n0"])
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(server.url + "/projects/opinions/label")
        assert page.locator("h1").inner_text() == "All done"
        held = page.locator("p.held-back")
        assert held.is_visible() and "under the project's median" in held.inner_text(), page.content()[:3000]
        assert held.inner_text().startswith("1 item in doubt is waiting for another answer.")
        no_sideways_scroll(page)
        page.screenshot(path=f"/tmp/lw-opinions-weaker-{width}.png", full_page=True)
    close_context(context)

    # one of the stronger half is given the item in doubt
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    _watch(page, errors)
    page.goto(links["h2"])
    page.goto(server.url + "/projects/opinions/label")
    assert page.locator("h1").inner_text() != "All done"
    assert page.locator("p.held-back").count() == 0
    close_context(context)

    # the owner: who is held back, at both widths
    page = owner_context.new_page()
    _watch(page, errors)
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(server.url + "/projects/opinions/quality")
        rule = page.locator("p.second-opinions")
        assert rule.is_visible() and "stronger half" in rule.inner_text()
        names = page.locator("table.weaker-half tbody td:first-child").all_inner_texts()
        assert sorted(names) == ["n0", "n1", "n2"], names
        no_sideways_scroll(page)
        page.screenshot(path=f"/tmp/lw-opinions-owner-{width}.png", full_page=True)
    page.goto(server.url + "/projects/opinions/settings")
    assert page.locator("#set-redundancy-second_opinions").input_value() == "stronger_half"
    close_context(owner_context)
    assert not errors, errors
