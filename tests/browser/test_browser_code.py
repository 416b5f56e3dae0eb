"""A code task in a real browser: the annotator runs the item's code and tests (in the server's sandbox),
sees the exit status and the output beside the code, fixes the code, runs it again, and answers."""

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
from tests.browser.chromium import launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.test_sandbox import require_bwrap

pytestmark = pytest.mark.browser
PASSWORD = "ana-password"
BAD = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
TESTS = "from solution import add\n\nassert add(2, 3) == 5, f'add(2, 3) gave {add(2, 3)}'\nprint('all tests passed')\n"
SCHEMA = {"name": "Code check", "slug": "code", "id_field": "id",
          "fields": [{"name": "solution", "type": "text", "label": "Model's answer"},
                     {"name": "tests", "type": "text", "label": "Tests"}],
          "questions": [{"name": "verdict", "type": "code", "code": "solution", "tests": "tests",
                         "prompt": "Does it pass its tests?"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    require_bwrap()
    tmp = tmp_path_factory.mktemp("code")
    db_url = normalise_db_url(str(tmp / "lw.db"))
    store = Store(db_url)
    try:
        store.migrate()
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA)
        items.add_items(store, p, [{"id": "add", "solution": BAD, "tests": TESTS}])
        access.set_member(store, p, "ana", "annotator")
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


def test_an_annotator_runs_the_code_sees_the_output_fixes_it_and_answers(server):
    url, store = server
    with launched() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/projects/code/label")
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.press("input[name=password]", "Enter")
        task = page.locator('fieldset[data-qtype="code"] [data-code-task="verdict"]')
        assert task.locator("textarea[data-code-source]").input_value() == BAD
        output = task.locator("[data-code-output]")
        assert output.is_hidden()

        # run the item's code: its tests fail, and the page says so beside the code
        task.locator("[data-code-run]").click()
        output.wait_for(state="visible")
        assert task.locator("[data-code-exit]").inner_text() == "1 (failed)"
        assert "AssertionError: add(2, 3) gave -1" in task.locator("[data-code-stderr]").inner_text()
        assert task.locator("[data-code-stdout]").inner_text() == "(nothing)"
        assert task.locator("[data-code-status]").inner_text() == "Ran: failed"

        # fix it and run again: the tests pass
        task.locator("textarea[data-code-source]").fill(FIXED)
        task.locator("[data-code-run]").click()
        page.wait_for_function("() => document.querySelector('[data-code-status]').innerText === 'Ran: passed'")
        assert task.locator("[data-code-exit]").inner_text() == "0 (passed)"
        assert task.locator("[data-code-stdout]").inner_text().strip() == "all tests passed"

        # answer: needs a fix, with the fixed code
        page.locator('input[name="verdict"][value="needs_fix"]').check()
        with page.expect_navigation():
            page.locator("#answer-form [type=submit]").first.click()
        deadline = time.monotonic() + 10
        while not (saved := _saved(store)) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not errors, errors
    assert saved == {"add": {"verdict": {"verdict": "needs_fix", "code": FIXED}}}


def _saved(store) -> dict:
    with store.read() as conn:
        return {r[0]: loads(r[1]) for r in conn.execute(text(
            "SELECT i.external_id, a.answers FROM annotations a JOIN items i ON i.id = a.item_id"))}
