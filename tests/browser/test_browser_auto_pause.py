"""``redundancy.pause_below`` in real Chromium, as each role sees it: the owner turns it on in the project's
settings; an annotator answering at random is paused automatically and their labelling page says why; the
owner's quality page shows the reason under their name and the rule in the adaptive redundancy section, and
Resume lifts it."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.browser.chromium import close_context
from tests.browser.test_browser import browser, server, sign_in  # noqa: F401 - fixtures
from tests.browser.test_browser_owner import no_sideways_scroll
from tests.conftest import label_until_done

pytestmark = pytest.mark.filterwarnings("ignore")

SCHEMA = {
    "name": "Auto pause", "slug": "autopause", "id_field": "id", "gold": {"rate": 0},
    "redundancy": {"min": 2, "max": 3, "confidence": 0.95},
    "fields": [{"name": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}


def spam_project(api: httpx.Client, owner: dict, schema: dict, names) -> tuple[dict, dict]:
    """Create ``schema``'s project through the API with 60 items (text "spam" or "ham", the truth) and an
    annotator for each of ``names`` in it; returns their ``({name: API token}, {name: sign-in link})``."""
    assert api.post("/api/v1/projects", json=schema, headers=owner).status_code == 201
    items = [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(60)]
    assert api.post(f"/api/v1/projects/{schema['slug']}/items", json={"items": items},
                    headers=owner).status_code == 200
    tokens, links = {}, {}
    for name in names:
        r = api.post("/api/v1/users", json={"name": name, "role": "annotator", "projects": [schema["slug"]]},
                     headers=owner)
        assert r.status_code == 201, r.text
        tokens[name], links[name] = r.json()["token"], r.json()["signin_url"]
    return tokens, links


def test_a_spammer_is_paused_and_everyone_sees_why(server, browser):  # noqa: F811
    owner = {"Authorization": f"Bearer {server.owner_token}"}
    api = httpx.Client(base_url=server.url, timeout=30)
    tokens, links = spam_project(api, owner, SCHEMA, ("h1", "h2", "h3", "pat"))
    # the owner turns the rule on in the settings
    owner_context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = owner_context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server, "olive", "/projects/autopause/settings")
    assert page.locator("#redundancy input[name=enabled]").is_checked()
    page.fill("#set-redundancy-pause_below", "1.5")  # out of range: refused, next to the field
    with page.expect_navigation():
        page.click("#redundancy button[type=submit]")
    assert page.locator("#redundancy .error").is_visible()
    errors.clear()  # the browser logs that 422 as an error: expected here
    page.fill("#set-redundancy-pause_below", "0.25")
    with page.expect_navigation():
        page.click("#redundancy button[type=submit]")
    assert "Saved." in page.locator("#redundancy").inner_text()
    page.locator("#redundancy").screenshot(path="/tmp/lw-autopause-settings.png")
    project = api.get("/api/v1/projects/autopause", headers=owner).json()
    assert project["schema"]["redundancy"]["pause_below"] == 0.25, project

    rng = random.Random(3)
    refused, _ = label_until_done(api, "autopause", tokens, lambda name, item: {
        "spam": rng.choice(["spam", "ham"]) if name == "pat" else item["data"]["text"]})
    assert list(refused) == ["pat"], refused

    # the annotator: their labelling page says the work is paused, and why
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(links["pat"])
    for size in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.goto(server.url + "/projects/autopause/label")
        assert page.locator("h1").inner_text() == "Not open to you"
        body = page.locator("body").inner_text()
        assert "paused" in body and "paused automatically: estimated accuracy" in body, body[:2000]
        no_sideways_scroll(page)
        page.screenshot(path=f"/tmp/lw-autopause-annotator-{size[0]}.png", full_page=True)
    close_context(context)

    # the owner: the reason under the name, the rule in the redundancy section, and Resume
    page = owner_context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/projects/autopause/quality")
    row = page.locator("table.annotators tr", has=page.locator("td.who", has_text="pat"))
    assert row.locator(".badge", has_text="paused").is_visible()
    reason = row.locator(".pause-reason")
    assert reason.is_visible() and "paused automatically: estimated accuracy" in reason.inner_text()
    for name in ("h1", "h2", "h3"):
        other = page.locator("table.annotators tr", has=page.locator("td.who", has_text=name))
        assert other.locator("button", has_text="Pause").is_visible()
    rule = page.locator("p.pause-below")
    assert rule.is_visible() and "0.25 of the way from chance" in rule.inner_text()
    page.screenshot(path="/tmp/lw-autopause-owner.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the table scrolls in its region, not the page
    page.reload()
    no_sideways_scroll(page)
    assert row.locator(".pause-reason").is_visible() and page.locator("p.pause-below").is_visible()
    page.screenshot(path="/tmp/lw-autopause-owner-390.png", full_page=True)
    page.goto(server.url + "/projects/autopause/settings")
    no_sideways_scroll(page)
    assert page.locator("#set-redundancy-pause_below").input_value() == "0.25"
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(server.url + "/projects/autopause/quality")
    with page.expect_navigation():
        row.locator("button", has_text="Resume").click()
    row = page.locator("table.annotators tr", has=page.locator("td.who", has_text="pat"))
    assert row.locator("button", has_text="Pause").is_visible() and row.locator(".pause-reason").count() == 0
    close_context(owner_context)
    assert not errors, errors
    # resumed by the owner, pat is given work again
    again = api.post("/api/v1/projects/autopause/next", headers={"Authorization": f"Bearer {tokens['pat']}"})
    assert again.status_code in (200, 204), again.text
