"""Running a project from the browser, in real Chromium at 1280x800 and 390x844: create a project while the
live preview follows the schema, change a setting, invite, message, add a webhook and send it a test; and
the same forms with JavaScript turned off (the Preview button instead of the live preview).

A server process on a SQLite file (tests/server.py), the webhook worker off (a test delivery stays pending:
no request leaves the machine). Screenshots land in /tmp/lw-owner-*.png.
"""

from __future__ import annotations

import re

import pytest

from labelwright.services import users
from labelwright.settings import normalise_db_url
from labelwright.store import Store

# browser: the same fixture as the other browser tests (it uses this module's server)
from tests.browser.chromium import close_context
from tests.browser.test_browser import _require_chromium, browser  # noqa: F401
from tests.server import ServerProcess

pytestmark = pytest.mark.browser

PASSWORDS = {"olive": "owner-password", "maya": "maya-password"}
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def _seed(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    try:
        users.create_user(store, "olive", "owner", PASSWORDS["olive"])
        users.create_user(store, "maya", "manager", PASSWORDS["maya"])
        users.create_user(store, "ana", "annotator", "ana-password")
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    db = normalise_db_url(str(tmp_path_factory.mktemp("browser-owner") / "lw.db"))
    _seed(db)
    proc = ServerProcess(db, extra_env={"LABELWRIGHT_WEBHOOK_WORKER": "0", "LABELWRIGHT_ASSIST_WORKER": "0",
                                        "LABELWRIGHT_MACHINE_WORKER": "0"})
    with proc.start():
        yield proc


@pytest.fixture(params=[(v, js) for v in VIEWPORTS for js in (True, False)],
                ids=lambda p: f"{p[0]}-{'js' if p[1] else 'nojs'}")
def page(request, browser):  # noqa: F811 - this module's page: its own viewport and JavaScript setting
    size, js = request.param
    context = browser.new_context(viewport=VIEWPORTS[size], java_script_enabled=js)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "(Unprocessable" not in m.text
            else None)
    # 422 is the answer to a form with a mistake in it (shown on purpose below); anything else is an error
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and r.status != 422
            else None)
    page.lw = {"size": size, "js": js, "slug": f"made-{size}-{'js' if js else 'nojs'}"}
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


def no_sideways_scroll(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"the page scrolls sideways: {width}px"


def schema_text(slug: str, prompt: str) -> str:
    return (f"name: Made in the browser\nslug: {slug}\ninstructions: Read *carefully*.\n"
            "fields:\n  - {name: text, type: text, label: Comment}\n"
            f"questions:\n  - name: spam\n    type: single_choice\n    prompt: {prompt}\n    options: [spam, ham]\n")


def test_create_a_project_with_the_preview(server, page):
    from playwright.sync_api import expect  # noqa: PLC0415 - playwright is optional outside CI: browser tests skip without it

    slug, js = page.lw["slug"], page.lw["js"]
    sign_in(page, server, "maya", "/projects/new")
    preview = page.locator("#preview")
    assert "Is this comment spam?" in preview.inner_text()  # the example, previewed on the server
    source = page.locator("#schema-source")
    source.fill(schema_text(slug, "Is it junk?"))
    if js:  # the live preview follows the text without leaving the page
        expect(preview).to_contain_text("Is it junk?")  # (no wait_for_function: the CSP forbids eval)
        source.fill(schema_text(slug, "Is it junk?").replace("options: [spam, ham]", "options: [spam]"))
        page.wait_for_selector("#schema-error")
        assert "Line 10" in page.locator("#schema-error").inner_text()
        assert source.get_attribute("aria-invalid") == "true"
        source.fill(schema_text(slug, "Is it junk?"))
        page.wait_for_selector("#schema-error", state="detached")
    else:  # the Preview button renders it on the server
        with page.expect_navigation():
            page.click("button[value=preview]")
        assert "Is it junk?" in page.locator("#preview").inner_text()
        page.locator("#schema-source").fill(schema_text(slug, "Is it junk?").replace("[spam, ham]", "[spam]"))
        with page.expect_navigation():
            page.click("button[value=create]")  # refused with the line: the project is not created
        assert "Line 10" in page.locator("#schema-error").inner_text()
        page.locator("#schema-source").fill(schema_text(slug, "Is it junk?"))
        with page.expect_navigation():
            page.click("button[value=preview]")
    assert "Is it junk?" in page.locator("#preview").inner_text()
    assert page.locator("#preview input[type=radio]").count() == 2
    page.screenshot(path=f"/tmp/lw-owner-new-{page.lw['size']}-{'js' if js else 'nojs'}.png", full_page=True)
    no_sideways_scroll(page)
    with page.expect_navigation():
        page.click("button[value=create]")
    assert page.url == f"{server.url}/projects/{slug}"
    assert page.locator("h1").inner_text() == "Made in the browser"


def test_settings_invites_messages_and_webhooks(server, page):
    slug, js = page.lw["slug"] + "-run", page.lw["js"]
    tag = f"{page.lw['size']}-{'js' if js else 'nojs'}"
    sign_in(page, server, "olive", "/projects/new")
    page.locator("#schema-source").fill(schema_text(slug, "Spam?"))
    with page.expect_navigation():
        page.click("button[value=create]")
    # settings: the instructions, then a mistake in the pay shown next to the form
    with page.expect_navigation():
        page.click("#settings-link")
    page.fill("#set-instructions", "New **instructions**.")
    with page.expect_navigation():
        page.click("#instructions button[type=submit]")
    assert "Saved." in page.locator("#instructions").inner_text()
    page.check("#pay input[name=enabled]")
    page.fill("#set-pay-reward_per_item", "-1")
    with page.expect_navigation():
        page.click("#pay button[type=submit]")
    assert "cannot be negative" in page.locator("#pay .error").inner_text()
    assert page.locator("#set-pay-reward_per_item").get_attribute("aria-invalid") == "true"
    page.screenshot(path=f"/tmp/lw-owner-settings-{tag}.png", full_page=True)
    no_sideways_scroll(page)
    # members: add ana, then an invite link shown once
    page.goto(f"{server.url}/projects/{slug}/members")
    page.fill("form.row-form input[name=name]", "ana")
    with page.expect_navigation():
        page.click("form.row-form button:has-text('Add member')")
    assert "Member saved." in page.inner_text("main") and "ana" in page.locator("table.members").inner_text()
    page.select_option("form[action$='/invites'] select[name=role]", "reviewer")
    with page.expect_navigation():
        page.click("button:has-text('Create invite link')")
    link = page.locator("#invite-url").input_value()
    assert re.match(rf"{re.escape(server.url)}/invite/[\w-]{{43}}$", link)
    page.screenshot(path=f"/tmp/lw-owner-members-{tag}.png", full_page=True)
    no_sideways_scroll(page)
    page.goto(f"{server.url}/projects/{slug}/members")
    assert page.locator("#invite-url").count() == 0 and "usable" in page.locator("table.invites").inner_text()
    # messages: one to ana
    page.goto(f"{server.url}/projects/{slug}/messages")
    page.select_option("#msg-to", "ana")
    page.fill("#msg-body", "Welcome, <b>Ana</b>!")
    with page.expect_navigation():
        page.click("form button:has-text('Send')")
    assert "Message sent." in page.inner_text("main")
    assert "Welcome, <b>Ana</b>!" in page.locator(".message-list").inner_text()  # shown as text
    # webhooks: a private address is refused, a public one added (secret once), a test queued
    page.goto(f"{server.url}/projects/{slug}/webhooks")
    page.fill("#webhook-url", "http://169.254.169.254/latest/meta-data")
    with page.expect_navigation():
        page.click("button:has-text('Add webhook')")
    assert "link-local" in page.locator("#webhook-error").inner_text()
    page.fill("#webhook-url", f"https://hooks.example.org/{slug}")
    page.check("input[value='item.completed']")
    with page.expect_navigation():
        page.click("button:has-text('Add webhook')")
    assert page.locator("#webhook-secret").input_value().startswith("lwhs_")
    with page.expect_navigation():
        page.click("table.hooks button:has-text('Send a test')")
    assert "Test delivery queued" in page.inner_text("main")
    assert "webhook.test" in page.locator("#log-h + .table-wrap").inner_text()
    with page.expect_navigation():
        page.click("table.hooks button:has-text('Deactivate')")
    assert "inactive" in page.locator("table.hooks").inner_text()
    page.screenshot(path=f"/tmp/lw-owner-webhooks-{tag}.png", full_page=True)
    no_sideways_scroll(page)
