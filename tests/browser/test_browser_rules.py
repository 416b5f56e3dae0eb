"""The owner adds a keyword rule in real Chromium on a 60-comment YouTube-spam slice (10 gold items, one person's
answers to 20) and reads the analysis table, with numbers computed here independently, on the rules page and on
the quality page."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest

from labelwright.services import access, items, projects, queue, users
from labelwright.settings import normalise_db_url
from labelwright.store import Store
from tests.browser.chromium import launched
from tests.browser.test_browser import ROOT, _free_port, _require_chromium
from tests.services.test_rules import SCHEMA, matches, slice_of_youtube

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore")]
N, GOLD, ANSWERED = 60, 10, 20
KEYWORDS = ["check out", "subscribe"]


def _seed(db_url: str) -> list[dict]:
    store = Store(db_url)
    store.migrate()
    try:
        owner = users.create_user(store, "olive", "owner", "owner-password")
        ana = users.create_user(store, "ana", "annotator", "ana-password")
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        records = slice_of_youtube(0, N)
        items.add_items(store, p, [{"id": r["id"], "text": r["text"], **({"gold": {"spam": r["truth"]}}
                                                                         if k < GOLD else {})}
                                   for k, r in enumerate(records)])
        access.set_member(store, p, "ana", "annotator")
        truth = {r["id"]: r["truth"] for r in records}
        answered = []
        while len(answered) < ANSWERED and (item := queue.claim_next(store, p, ana)) is not None:
            queue.submit(store, item["id"], ana, {"spam": truth[item["external_id"]]})
            answered.append(item["external_id"])
        return [{**r, "gold": k < GOLD, "answered": r["id"] in answered} for k, r in enumerate(records)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    tmp = tmp_path_factory.mktemp("rules")
    db = tmp / "lw.db"
    records = _seed(normalise_db_url(str(db)))
    port = _free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(db), "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.2)
        yield url, records
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def pct(x: float) -> str:
    return f"{x:.0%}"


def test_the_owner_adds_a_keyword_rule_and_reads_the_analysis(server):
    url, records = server
    hits = matches(records, KEYWORDS)
    on_gold = [r for r in records if r["gold"] and r["id"] in hits]
    on_people = [r for r in records if r["answered"] and r["id"] in hits]  # gold items ana was served too
    assert on_gold and on_people  # the slice exercises both accuracy columns
    expect = {"votes": str(len(hits)), "coverage": pct(len(hits) / N),
              "gold": pct(sum(r["truth"] == "spam" for r in on_gold) / len(on_gold)) + f" of {len(on_gold)}",
              "people": pct(sum(r["truth"] == "spam" for r in on_people) / len(on_people)) + f" of {len(on_people)}"}
    errors: list[str] = []
    with launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/projects/yt/rules")
        assert "/login" in page.url  # signed out: the sign-in form brings the owner back
        page.fill("input[name=name]", "olive")
        page.fill("input[name=password]", "owner-password")
        with page.expect_navigation():
            page.press("input[name=password]", "Enter")
        assert page.url == url + "/projects/yt/rules"
        assert page.get_by_text("No rules yet").is_visible()
        page.fill("#rule-name", "check-out")
        page.select_option("#rule-kind", "keyword")
        page.select_option("#rule-field", "text")
        page.select_option("#rule-label", "spam")
        page.fill("#rule-pattern", "\n".join(KEYWORDS))
        with page.expect_navigation():
            page.click("#add-rule button[type=submit]")
        assert page.get_by_role("status").inner_text().startswith("Rule added")
        for where in ("/projects/yt/rules", "/projects/yt/quality"):
            if where != "/projects/yt/rules":
                page.goto(url + where)
            row = page.locator("table.lf-analysis tbody tr").filter(has_text="check-out")
            assert row.count() == 1, where
            cells = [re.sub(r"\s+", " ", c).strip() for c in row.locator("td").all_inner_texts()]
            assert cells[1] == "spam" and cells[2] == expect["votes"] and cells[3] == expect["coverage"], cells
            assert cells[6] == expect["gold"] and cells[7] == expect["people"], (cells, expect)
            caption = row.locator("xpath=ancestor::table/caption").inner_text()
            assert caption == f"spam: {N} items, {expect['coverage']} covered by at least one rule", caption
            page.screenshot(path=f"/tmp/lw-rules{where.replace('/', '-')}.png", full_page=True)
        # the label model on: every item gets a label, also those nobody answered and no rule voted on (the
        # quality page crashed on them); then the quality page at phone size too
        page.goto(url + "/projects/yt/rules")
        with page.expect_navigation():
            page.click("text=Use the label model (people and rules)")
        assert "aggregates people and rules" in page.locator("#label-model-state").inner_text()
        for viewport in ({"width": 1280, "height": 900}, {"width": 390, "height": 844}):
            page.set_viewport_size(viewport)
            response = page.goto(url + "/projects/yt/quality")
            assert response is not None and response.status == 200
            assert "spam label_model" in re.sub(r"\s+", " ", page.locator("main").inner_text())
            assert page.locator("table.lf-analysis tbody tr").filter(has_text="check-out").count() == 1
            assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth"), viewport
    assert not errors, errors
