"""The ``code`` question type: its schema and answers, the form, and runs through the API and the service on
SQLite and PostgreSQL with the real sandbox (skipped without bwrap, failing in CI: tests/test_sandbox.py)."""

from __future__ import annotations

import html
import json
import re
import threading
import time

import pytest
from sqlalchemy import text
from starlette.datastructures import FormData

from labelwright.errors import Busy, TooManyAttempts, ValidationError
from labelwright.questions.code import CodeTask, code_digest
from labelwright.schema import parse_schema
from labelwright.services import runs
from labelwright.services import users as users_svc
from labelwright.services.projects import create_project
from tests.conftest import bearer, hand_out, post_login
from tests.test_sandbox import require_bwrap

GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"
TESTS = "from solution import add\n\nassert add(2, 3) == 5, 'add(2, 3) should be 5'\nprint('all tests passed')\n"
SCHEMA = {
    "name": "Code check", "slug": "code", "overlap": 2, "id_field": "id",
    "fields": [{"name": "solution", "type": "text", "label": "Model's answer"}, {"name": "tests", "type": "text"}],
    "questions": [{"name": "verdict", "type": "code", "code": "solution", "tests": "tests",
                   "prompt": "Does the answer pass its tests?", "time_s": 3}],
}


@pytest.fixture
def bwrap() -> None:
    require_bwrap()


def question(**settings) -> CodeTask:
    return parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], **settings}]}).question("verdict")


# ---- the type, without running anything -----------------------------------------------------------------


def test_answers_are_a_verdict_and_maybe_the_edited_code():
    schema = parse_schema(SCHEMA)
    q = schema.question("verdict")
    assert isinstance(q, CodeTask) and q.categorical and q.label_values() == ["pass", "fail", "needs_fix"]
    assert schema.validate_answers({"verdict": "pass"}) == {"verdict": {"verdict": "pass"}}
    assert schema.validate_answers({"verdict": {"verdict": "needs_fix", "code": GOOD}}) == {
        "verdict": {"verdict": "needs_fix", "code": GOOD}}
    for bad, field, words in [({"verdict": "maybe"}, "verdict.verdict", "must be one of"),
                              ({"verdict": "fail", "code": 3}, "verdict.code", "as text"),
                              ({"verdict": "fail", "why": "x"}, "verdict", "unexpected keys"),
                              (["pass"], "verdict", "expected {verdict, code}")]:
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"verdict": bad})
        assert e.value.field == field and words in e.value.message
    with pytest.raises(ValidationError, match="does not take edited code"):
        question(editable=False).validate_answer({"verdict": "fail", "code": "x"})
    assert q.answer_label({"verdict": "fail"}) == "fail" and q.label_path() == ["verdict", "verdict"]
    assert q.vote([{"verdict": "fail"}, {"verdict": "fail", "code": "x"}, {"verdict": "pass"}]) == {
        "label": "fail", "agreement": 0.6667, "n": 3}
    assert q.gold_score({"verdict": "needs_fix", "code": "y"}, {"verdict": "needs_fix"}) == 1.0
    assert q.answer_text({"verdict": "needs_fix", "code": "x = 1"}, {})["text"] == "Needs a fix"


def test_the_schema_checks_the_fields_and_limits():
    with pytest.raises(ValidationError, match="refers to field 'nope'"):
        question(code="nope")
    with pytest.raises(ValidationError) as e:
        question(time_s=600)
    assert e.value.field == "questions[0] (verdict).time_s"
    with pytest.raises(ValidationError) as e:
        question(language="cobol")
    assert e.value.field == "questions[0] (verdict).language"


def test_the_program_lays_out_code_and_tests():
    data = {"solution": GOOD, "tests": TESTS}
    assert question().program(data) == ({"solution.py": GOOD, "test_solution.py": TESTS}, "test_solution.py")
    assert question().program(data, BAD)[0]["solution.py"] == BAD
    files, main = question(layout="append").program({"solution": GOOD, "tests": "assert add(1, 1) == 2\n"})
    assert main == "main.py" and files == {"main.py": GOOD.rstrip() + "\n\n\nassert add(1, 1) == 2\n"}
    assert question(tests=None).program(data) == ({"solution.py": GOOD}, "solution.py")
    with pytest.raises(ValidationError, match="holds no code"):
        question().program({"solution": None, "tests": TESTS})


def test_the_form_keeps_the_code_only_when_it_was_edited():
    q = question()
    view = q.view_context(None, {"solution": GOOD, "tests": TESTS}, {"solution": "Model's answer"})
    assert view["state"] == {"verdict": "", "code": GOOD} and view["original"] == code_digest(GOOD)
    assert [c["value"] for c in view["choices"]] == ["pass", "fail", "needs_fix"]
    same = q.parse_form(FormData([("verdict", "pass"), ("verdict.code", GOOD.replace("\n", "\r\n")),
                                  ("verdict.original", code_digest(GOOD))]))
    assert same.answer == {"verdict": "pass"}
    edited = q.parse_form(FormData([("verdict", "needs_fix"), ("verdict.code", BAD),
                                    ("verdict.original", code_digest(GOOD))]))
    assert edited.answer == {"verdict": "needs_fix", "code": BAD} and edited.state["code"] == BAD
    # an edit with no verdict is an answer the type refuses (not a silently dropped edit)
    assert q.parse_form(FormData([("verdict.code", BAD), ("verdict.original", code_digest(GOOD))])).answer == {
        "verdict": None, "code": BAD}
    assert q.view_context(q.form_state({"verdict": "fail"}), {"solution": GOOD}, {})["state"]["code"] == GOOD


# ---- runs, through the API and the service, on both databases -----------------------------------------


@pytest.fixture
def code_project(http, store, owner, make_annotator):
    r = http.post("/api/v1/projects", headers=bearer(owner[1]), json=SCHEMA)
    assert r.status_code == 201, r.text
    items = [{"id": "good", "solution": GOOD, "tests": TESTS}, {"id": "bad", "solution": BAD, "tests": TESTS},
             {"id": "loop", "solution": "def add(a, b):\n    while True:\n        pass\n", "tests": TESTS}]
    r = http.post("/api/v1/projects/code/items", headers=bearer(owner[1]), json={"items": items})
    assert r.status_code in (200, 201), r.text
    ann = make_annotator("ann", password="ann-password")
    return {"owner": owner, "ann": ann, "ids": _ids(http, owner[1])}


def _ids(http, token) -> dict[str, int]:
    r = http.get("/api/v1/projects/code/export?format=jsonl", headers=bearer(token))
    return {rec["external_id"]: rec["item_id"] if "item_id" in rec else rec["id"]
            for rec in map(json.loads, r.text.splitlines())}


def test_an_annotator_runs_the_code_edits_it_runs_again_and_answers(bwrap, http, store, code_project):
    _, tok = code_project["ann"]
    h = bearer(tok)
    item = http.post("/api/v1/projects/code/next", headers=h).json()
    assert item["data"]["solution"] in (GOOD, BAD, item["data"]["solution"])
    r = http.post(f"/api/v1/items/{item['id']}/run", headers=h, json={})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["question"] == "verdict" and not out["edited"] and out["timed_out"] is False
    external = {v: k for k, v in code_project["ids"].items()}[item["id"]]
    if external == "good":
        assert out["exit_code"] == 0 and out["passed"] and out["stdout"] == "all tests passed\n"
    elif external == "bad":
        assert out["exit_code"] == 1 and "add(2, 3) should be 5" in out["stderr"]
    else:
        assert out["timed_out"] and out["killed_reason"] == "time limit"

    # the annotator fixes the code and runs their version: the item's tests pass
    r = http.post(f"/api/v1/items/{item['id']}/run", headers=h, json={"code": GOOD + "\n# fixed\n"})
    assert r.status_code == 200 and r.json()["edited"] and r.json()["passed"], r.text
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=h,
                  json={"answers": {"verdict": {"verdict": "needs_fix", "code": GOOD + "\n# fixed\n"}}})
    assert r.status_code == 201, r.text
    assert r.json()["answers"]["verdict"] == {"verdict": "needs_fix", "code": GOOD + "\n# fixed\n"}
    # after answering, they may still run it (to check what they said)
    assert http.post(f"/api/v1/items/{item['id']}/run", headers=h, json={"code": BAD}).json()["exit_code"] == 1


def test_who_may_run_an_item(bwrap, http, store, code_project, make_annotator):
    ids = code_project["ids"]
    _, tok = code_project["ann"]
    # a member may run only the items handed to them (a lease or their own answer)
    r = http.post(f"/api/v1/items/{ids['good']}/run", headers=bearer(tok), json={})
    assert r.status_code == 403 and "not handed to you" in r.json()["error"]
    hand_out(store, ids["good"], code_project["ann"][0])
    assert http.post(f"/api/v1/items/{ids['good']}/run", headers=bearer(tok), json={}).json()["passed"]
    # a stranger (and a blocked member) learns nothing: 404 as for no item; a reviewer and the owner may run it
    _, otto = make_annotator("otto", member=False)
    r = http.post(f"/api/v1/items/{ids['good']}/run", headers=bearer(otto), json={})
    assert r.status_code == 404 and r.json()["error"] == f"no item {ids['good']}"
    assert http.post("/api/v1/items/999999/run", headers=bearer(tok), json={}).status_code == 404
    rev = make_annotator("rex", role="reviewer")
    assert http.post(f"/api/v1/items/{ids['bad']}/run", headers=bearer(rev[1]), json={}).json()["exit_code"] == 1
    r = http.post(f"/api/v1/items/{ids['bad']}/run", headers=bearer(code_project["owner"][1]),
                  json={"question": "nope"})
    assert r.status_code == 422 and r.json()["field"] == "question"
    r = http.post(f"/api/v1/items/{ids['bad']}/run", headers=bearer(code_project["owner"][1]),
                  json={"code": "x" * 100_001})
    assert r.status_code == 422


def test_a_browser_session_needs_its_csrf_header(bwrap, http, store, code_project):
    ids = code_project["ids"]
    hand_out(store, ids["good"], code_project["ann"][0])
    assert post_login(http, "ann", "ann-password", follow_redirects=False).status_code == 303
    r = http.post(f"/api/v1/items/{ids['good']}/run", json={})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1))
    r = http.post(f"/api/v1/items/{ids['good']}/run", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["passed"], r.text


def test_the_labelling_page_shows_the_code_and_saves_an_edit(http, store, code_project):
    assert post_login(http, "ann", "ann-password", follow_redirects=False).status_code == 303
    page = http.get("/projects/code/label").text
    start = page.index('id="q-verdict"')
    fieldset = page[start:page.index("</fieldset>", start)]
    assert 'data-qtype="code"' in page and "data-code-run" in fieldset and 'name="verdict.code"' in fieldset
    assert "from solution import add" not in fieldset  # the tests are a display field, not in the box
    assert "/code-task.js" in fieldset and 'name="verdict" value="needs_fix" data-key="3"' in fieldset
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
    key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
    original = html.unescape(re.search(r'name="verdict.original" value="([^"]*)"', fieldset).group(1))
    action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
    code = "def add(a, b):\n    return b + a  # <script>\n"
    r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "verdict.code": code,
                                "verdict.original": original}, follow_redirects=False)
    assert r.status_code == 422 and "must be one of" in r.text
    assert "# &lt;script&gt;" in r.text and "# <script>" not in r.text  # the edit is kept, escaped
    r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "verdict": "needs_fix", "verdict.code": code,
                                "verdict.original": original}, follow_redirects=False)
    assert r.status_code == 303, r.text
    history = http.get("/api/v1/projects/code/history", headers=bearer(code_project["ann"][1])).json()
    assert history[0]["answers"]["verdict"] == {"verdict": "needs_fix", "code": code}


def test_verdicts_aggregate_like_a_single_choice(http, store, code_project, make_annotator):
    bob = make_annotator("bob")
    for _, tok in (code_project["ann"], bob):
        for _ in range(3):
            item = http.post("/api/v1/projects/code/next", headers=bearer(tok)).json()
            verdict = "pass" if item["data"]["solution"] == GOOD else "fail"
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"verdict": verdict}})
            assert r.status_code == 201, r.text
    r = http.get("/api/v1/projects/code/export?format=jsonl", headers=bearer(code_project["owner"][1]))
    recs = {rec["external_id"]: rec for rec in map(json.loads, r.text.splitlines())}
    assert recs["good"]["majority"]["verdict"] == {"label": "pass", "agreement": 1.0, "n": 2}
    assert recs["bad"]["aggregate"]["verdict"]["label"] == "fail"


# ---- the limits around the sandbox ------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_per_minute_and_runs_at_once_are_capped(bwrap, store, owner):
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    q = p.schema.question("verdict")
    now = [1000.0]
    runner = runs.Runner(per_minute=2, concurrent=1, wait_s=0.3, clock=lambda: now[0])
    files, main = q.program({"solution": GOOD, "tests": TESTS})
    assert runner.run(store, 1, files, main, q).passed and runner.run(store, 1, files, main, q).passed
    with pytest.raises(TooManyAttempts, match="at most 2 code runs a minute") as e:
        runner.run(store, 1, files, main, q)
    assert 1 <= e.value.retry_after <= 61
    assert runner.run(store, 2, files, main, q).passed  # another person has their own allowance
    now[0] += 61
    assert runner.run(store, 1, files, main, q).passed  # a minute later, again

    slow = {"solution.py": "import time\ntime.sleep(2)\n"}
    busy = threading.Thread(target=runner.run, args=(store, 3, slow, "solution.py", q))
    busy.start()
    time.sleep(0.3)
    with pytest.raises(Busy, match="busy"):
        runner.run(store, 4, files, main, q)
    busy.join()


def test_the_runs_per_minute_are_shared_by_every_server_process(store):
    """Two runners stand for two server processes on one database: a person who used their allowance
    through one is refused by the other (before, each process counted its own 20). Parallel admissions
    cannot pass the limit together."""
    now = [5000.0]
    a, b = (runs.Runner(per_minute=3, clock=lambda: now[0]) for _ in range(2))
    a.admit(store, 7)
    b.admit(store, 7)
    a.admit(store, 7)
    with pytest.raises(TooManyAttempts, match="at most 3 code runs a minute") as e:
        b.admit(store, 7)
    assert e.value.retry_after == 60
    b.admit(store, 8)  # someone else
    now[0] += 30
    with pytest.raises(TooManyAttempts) as e:
        a.admit(store, 7)
    assert e.value.retry_after == 30
    now[0] += 31
    a.admit(store, 7)  # the first runs left the minute
    with store.read() as conn:  # rows older than the minute are gone
        assert conn.execute(text("SELECT count(*) FROM code_runs WHERE created_at <= :t"),
                            {"t": now[0] - 60}).scalar_one() == 0
    # eight parallel tries at a fresh person's allowance of 3: exactly 3 pass
    now[0] += 120
    passed, refused = [], []

    def go(runner):
        try:
            runner.admit(store, 9)
            passed.append(1)
        except TooManyAttempts:
            refused.append(1)

    threads = [threading.Thread(target=go, args=((a, b)[i % 2],)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(passed), len(refused)) == (3, 5)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_item_page_and_the_review_page_draw_the_code_task(http, store, code_project):
    ids = code_project["ids"]
    users_svc.set_password(store, code_project["owner"][0], "owner-password")
    assert post_login(http, "olive", "owner-password", follow_redirects=False).status_code == 303
    page = http.get(f"/projects/code/items/{ids['bad']}")
    assert page.status_code == 200 and 'data-code-task="verdict"' in page.text
    assert "return a - b" in page.text  # the item's code, escaped text in the box
