"""A question type from an installed package, in a real browser: the server process finds it through the
``labelwright.question_types`` entry point of a distribution on its path (what ``pip install`` leaves), draws
its partial, and the labelling page's keys work on it without a line of labelwright's script that knows its name;
the type's own script and style (``QuestionType.assets``) come from its package and run under the pages' CSP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import text

from labelwright.questions import registry
from labelwright.services import access, items, projects, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store, loads
from tests.browser.chromium import launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.questions.yes_no import YesNo

pytestmark = pytest.mark.browser
PASSWORD = "ana-password"
SCHEMA = {"name": "Tone", "slug": "tone", "id_field": "id", "fields": [{"name": "text", "type": "text"}],
          "questions": [{"name": "ok", "type": "yes_no", "prompt": "Friendly?"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("plugin")
    info = tmp / "site" / "yes_no_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: yes-no-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\nyes_no = tests.questions.yes_no:YesNo\n")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    registry.register(YesNo)  # this process seeds the project: it needs the type too
    store = Store(db_url)
    try:
        store.migrate()
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA)
        items.add_items(store, p, [{"id": f"t{i}", "text": f"message {i}"} for i in range(3)])
        access.set_member(store, p, "ana", "annotator")
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp / "site"), str(ROOT)])}
        log = (tmp / "server.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp / "lw.db"), "serve",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
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
            yield url, store
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    finally:
        store.close()
        registry.unregister("yes_no")


def test_an_installed_question_type_is_labelled_by_keyboard(server):
    url, store = server
    with launched() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/projects/tone/label")
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.press("input[name=password]", "Enter")
        for n, key in enumerate(("2", "1", "2")):
            page.wait_for_selector('fieldset[data-qtype="yes_no"] input[value="yes"]')
            shown = page.locator(".field-text .text").first.inner_text()
            page.wait_for_timeout(150)
            page.keyboard.press(key)
            assert page.locator(f'input[name="ok"][data-key="{key}"]').is_checked()
            if n == 1:  # the type's own script counts the comment, its own style colours the count
                box = page.locator('#item-region textarea[name="ok.comment"]')
                box.fill("  warm enough ")
                count = page.locator("#item-region [data-yes-no-count]")
                assert count.inner_text() == "11 characters"
                assert count.evaluate("e => getComputedStyle(e).color") == "rgb(0, 100, 0)"
                box.evaluate("e => e.blur()")
            page.wait_for_timeout(150)
            page.keyboard.press("Enter")
            page.wait_for_function("t => { const e = document.querySelector('.field-text .text'); "
                                   "return !e || e.innerText !== t; }", arg=shown)  # the next item, or none
        deadline = time.monotonic() + 10
        while len(saved := _saved(store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not errors, errors
    assert sorted(a["ok"]["answer"] for a in saved.values()) == ["no", "no", "yes"]
    assert [a["ok"]["comment"] for a in saved.values() if "comment" in a["ok"]] == ["warm enough"]


def _saved(store) -> dict:
    with store.read() as conn:
        return {r[0]: loads(r[1]) for r in conn.execute(text(
            "SELECT i.external_id, a.answers FROM annotations a JOIN items i ON i.id = a.item_id"))}
