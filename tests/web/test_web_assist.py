"""The assistant's pages, through the in-process client (on SQLite and PostgreSQL): suggestions on the labelling
page, the managers' assist page, the reviewers' check queue. Predictions come from the builtin model trained on
people's answers to a slice of the YouTube spam comments (UCI)."""

from __future__ import annotations

import csv
import html
import re
import time

import pytest
from sqlalchemy import text

from labelwright.schema import parse_schema
from labelwright.services import (
    access,
    assist_report,
    assist_state,
    assistant,
    autolabel,
    checks,
    gold,
    queue,
    suggestions,
)
from labelwright.services import assistant as assistant_svc
from labelwright.services import users as users_svc
from labelwright.services.items import add_items
from labelwright.services.items import add_items as _add
from labelwright.services.projects import create_project, update_settings
from labelwright.services.projects import create_project as _create
from labelwright.store import dumps
from labelwright.web.assist import labels_chart
from labelwright.web.views import question_views, suggest
from tests.conftest import SHARED, post_login
from tests.conftest import post_login as _login
from tests.server import internal_page

YOUTUBE = SHARED / "youtube_spam" / "items.csv"
pytestmark = pytest.mark.skipif(not YOUTUBE.exists(), reason=f"shared dataset missing: {YOUTUBE}")
HOSTILE = "<script>window.__xss=1</script><img src=x onerror=alert(1)>"
PASSWORDS = {"ana": "ana-password", "rita": "rita-password", "maya": "maya-password", "otto": "otto-password"}


def comments(n: int = 30) -> list[dict]:
    """``n`` short comments from the YouTube spam data, half spam, in file order: ``{id, text, truth}``."""
    got: dict[str, list[dict]] = {"1": [], "0": []}
    with YOUTUBE.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            bucket = got[row["label"]]
            if len(row["text"]) <= 160 and len(bucket) < n // 2:
                truth = "spam" if row["label"] == "1" else "ham"
                bucket.append({"id": row["item"], "text": row["text"], "truth": truth})
    return sorted(got["1"] + got["0"], key=lambda r: r["id"])


def assisted_schema(slug: str, question: dict | None = None, **assist) -> dict:
    return {"name": f"Assisted {slug}", "slug": slug, "id_field": "id", "overlap": 1,
            "fields": [{"name": "text", "type": "text", "label": "Comment"}],
            "questions": [question or {"name": "spam", "type": "single_choice", "prompt": "Spam?",
                                       "options": [{"value": "spam", "label": "Spam"},
                                                   {"value": "ham", "label": "Not spam"}]}],
            "assist": {"min_train": 4, **assist}}


def make_assisted(store, owner, schema: dict, answer=lambda row: row["truth"], n_items: int = 40,
                  n_seeded: int = 20):
    """An assisted project with ``n_items`` comments, a first step (features; with auto-labelling, the random
    validation sample), people's answers (by ``w``, taking items from the queue as a person does) on ``n_seeded``
    of them, and a second step that trains the model and stores its predictions (and auto-labels, and sends
    machine labels to the audit). Returns ``(project, {external id: item id})``."""
    p = create_project(store, schema, created_by=owner.id)
    rows = comments(n_items)
    add_items(store, p, [{"id": r["id"], "text": r["text"]} for r in rows])
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items WHERE project_id = :p"), {"p": p.id}).all())
    assert assistant.step(store, p).error is None
    worker = users_svc.get_user(store, "w")
    access.set_member(store, p, "w", "annotator")
    truth = {r["id"]: r for r in rows}
    q = schema["questions"][0]["name"]
    for _ in range(n_seeded):
        item = queue.claim_next(store, p, worker)
        queue.submit(store, item["id"], worker, {q: answer(truth[item["external_id"]])})
    report = assistant.step(store, p, force_train=True)
    assert report.error is None and report.trained, report
    return p, ids


@pytest.fixture
def people(store, owner):
    """ana (annotator), rita (reviewer), maya (manager), otto (annotator, member of nothing): users of the org."""
    made = {}
    for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("maya", "manager"), ("otto", "annotator")):
        made[name] = users_svc.create_user(store, name, role, PASSWORDS[name])
    users_svc.create_user(store, "w", "annotator")
    return made


def members(store, project) -> None:
    for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("maya", "manager")):
        access.set_member(store, project, name, role)


@pytest.fixture
def spam(store, owner, people):
    """Project "aspam": suggestions, and auto-labelling with every machine label audited (with the lowest
    target and confidence there are, so that this small project gets machine labels whatever the model)."""
    p, ids = make_assisted(store, owner[0], assisted_schema(
        "aspam", auto_label={"target_accuracy": 0.5, "confidence": 0.5, "audit_rate": 1.0, "min_validation": 20}))
    members(store, p)
    return p, ids


def sign_in(http, name: str) -> str:
    """Sign ``name`` in through the form; returns the session's CSRF token."""
    http.cookies.clear()
    r = post_login(http, name, PASSWORDS[name] if name != "olive" else "owner-password", follow_redirects=False)
    assert r.status_code == 303, r.text
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def fieldset(page: str, question: str) -> str:
    start = page.index(f'id="q-{question}"')
    return page[page.rindex("<fieldset", 0, start):page.index("</fieldset>", start)]


def checked_values(block: str) -> list[str]:
    radios = re.findall(r'<input type="radio" name="[^"]+" value="([^"]*)"[^>]*\schecked', block)
    return [html.unescape(v) for v in radios]


def held_item(store, project, user) -> dict:
    """The item the user holds (claim_next gives the held one again), with its suggestion."""
    return queue.claim_next(store, project, user)


# ---- suggestions on the labelling page ------------------------------------------------------------------


def test_the_suggestion_is_pre_selected_marked_and_submitted_as_is(http, store, spam, people):
    p, _ = spam
    sign_in(http, "ana")
    page = http.get("/projects/aspam/label").text
    item = held_item(store, p, people["ana"])
    s = item["suggestion"]
    assert s is not None and s["question"] == "spam" and s["model"] == "builtin-1"
    block = fieldset(page, "spam")
    assert "has-suggestion" in block[:200]
    assert checked_values(block) == [s["label"]]  # pre-selected
    badge = re.search(r'<label class="choice is-suggested">.*?value="([^"]+)".*?'
                      r'<span class="suggestion-badge">([^<]+)</span>', block, re.DOTALL)
    assert badge and badge.group(1) == s["label"]
    assert html.unescape(badge.group(2)) == f"suggested · {s['confidence']:.0%} · builtin-1"
    assert block.count("is-suggested") == 1 and "Enter</kbd> accepts it" in block
    # Enter submits the form as it is: the suggested label, recorded as shown
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    r = http.post(f"/projects/aspam/items/{item['id']}/submit", follow_redirects=False,
                  data={"csrf": csrf, "idempotency_key": key, "active_ms": "900", "spam": s["label"]})
    assert r.status_code == 303
    with store.read() as conn:
        row = conn.execute(text("SELECT answers, suggestion, suggestion_arm FROM annotations WHERE item_id = :i"),
                           {"i": item["id"]}).one()
    assert row[1] == dumps(s["label"]) and row[2] == "shown" and s["label"] in row[0]


def test_no_suggestion_for_the_control_group_nor_without_a_prediction(http, store, owner, people):
    p, _ = make_assisted(store, owner[0], assisted_schema("ctl", suggestion_control=0.9))
    members(store, p)
    hidden = [u for u in people.values() if suggestions.arm(p, u.id) == suggestions.HIDDEN]
    shown = [u for u in people.values() if suggestions.arm(p, u.id) == suggestions.SHOWN]
    assert hidden, "with 90% in the control group, some of the four users are in it"
    user = hidden[0]
    access.set_member(store, p, user.name, "annotator")
    sign_in(http, user.name)
    page = http.get("/projects/ctl/label").text
    assert held_item(store, p, user)["suggestion"] is None  # the service gives them none...
    block = fieldset(page, "spam")
    assert "suggest" not in page and checked_values(block) == []  # ...and the page shows nothing of it
    if shown:  # and the other arm in the same project does see it
        access.set_member(store, p, shown[0].name, "annotator")
        sign_in(http, shown[0].name)
        assert "has-suggestion" in http.get("/projects/ctl/label").text
    # an item without a prediction looks exactly as before
    with store.write() as conn:
        conn.execute(text("DELETE FROM predictions WHERE project_id = :p"), {"p": p.id})
    access.set_member(store, p, "maya", "annotator")
    sign_in(http, "maya")
    page = http.get("/projects/ctl/label").text
    assert "suggest" not in page and checked_values(fieldset(page, "spam")) == []


def test_a_suggestion_with_hostile_label_and_model_is_escaped(http, store, owner, people):
    schema = assisted_schema("evil", question={"name": "spam", "type": "single_choice", "options": ["spam", HOSTILE]})
    p, _ = make_assisted(store, owner[0], schema, answer=lambda r: "spam" if r["truth"] == "spam" else HOSTILE)
    with store.write() as conn:
        conn.execute(text("UPDATE predictions SET label = :l WHERE project_id = :p"), {"l": dumps(HOSTILE), "p": p.id})
        conn.execute(text("UPDATE assist_models SET version = :v WHERE project_id = :p"), {"v": HOSTILE, "p": p.id})
        conn.execute(text("UPDATE items SET data = :d WHERE id = (SELECT min(id) FROM items WHERE project_id = :p "
                          "AND n_assigned = 0)"), {"d": dumps({"id": "evil", "text": HOSTILE}), "p": p.id})
    access.set_member(store, p, "ana", "annotator")
    sign_in(http, "ana")
    page = http.get("/projects/evil/label").text
    assert "<script>window" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE, quote=False) in page  # the item, shown as text
    block = fieldset(page, "spam")
    assert checked_values(block) == [HOSTILE]
    assert "suggested · " in html.unescape(block) and html.escape(HOSTILE, quote=False) in block  # badge: model name


def test_suggest_on_rating_and_pairwise_views():
    schema = parse_schema({
        "name": "x", "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
        "questions": [{"name": "tone", "type": "rating", "min": 1, "max": 5},
                      {"name": "pref", "type": "pairwise", "a": "a", "b": "b"},
                      {"name": "tags", "type": "multiple_choice", "options": ["x", "y"]}]})
    views = question_views(schema, {}, {}, {})
    suggest(views, {"question": "tone", "label": 4, "confidence": 0.61, "model": "m-1"})
    assert views[0]["state"] == "4" and views[0]["suggestion"] == {"value": "4", "model": "m-1", "confidence": "61%",
                                                                  "pending": True}
    views = question_views(schema, {}, {}, {})
    suggest(views, {"question": "pref", "label": "A", "confidence": 0.9, "model": "m-1"})
    assert views[1]["state"] == {"choice": "A", "rationale": ""} and views[1]["suggestion"]["pending"]
    # a person's own choice (a form shown again) is kept; the suggestion is no longer pending
    views = question_views(schema, {}, {"pref": {"choice": "B", "rationale": ""}}, {})
    suggest(views, {"question": "pref", "label": "A", "confidence": 0.9, "model": "m-1"})
    assert views[1]["state"]["choice"] == "B" and not views[1]["suggestion"]["pending"]
    # a label the question does not have, another type, nothing: no change
    for s in ({"question": "tone", "label": 9, "confidence": 0.5, "model": "m"},
              {"question": "tags", "label": "x", "confidence": 0.5, "model": "m"}, None):
        views = question_views(schema, {}, {}, {})
        suggest(views, s)
        assert all("suggestion" not in v for v in views) and views[0]["state"] is None


@pytest.mark.parametrize("kind", ["rating", "pairwise"])
def test_rating_and_pairwise_suggestions_on_the_page(http, store, owner, people, kind):
    if kind == "rating":
        question = {"name": "tone", "type": "rating", "min": 1, "max": 3}
        schema = assisted_schema("rate", question=question)
        def answer(r):
            return 1 if r["truth"] == "spam" else 3
    else:
        question = {"name": "pref", "type": "pairwise", "a": "text", "b": "other"}
        schema = assisted_schema("pair", question=question)
        schema["fields"].append({"name": "other", "type": "text", "required": False})
        def answer(r):
            return {"choice": "A" if r["truth"] == "spam" else "B"}
    p, _ = make_assisted(store, owner[0], schema, answer=answer)
    access.set_member(store, p, "ana", "annotator")
    sign_in(http, "ana")
    page = http.get(f"/projects/{p.slug}/label").text
    s = held_item(store, p, people["ana"])["suggestion"]
    block = fieldset(page, question["name"])
    assert "has-suggestion" in block[:200] and checked_values(block) == [str(s["label"])]
    assert re.search(rf'class="(point|choice) is-suggested"[^>]*>\s*<input type="radio" name="{question["name"]}" '
                     rf'value="{s["label"]}"', block)
    if kind == "rating":
        assert f"The assistant suggests <strong>{s['label']}</strong>" in block


# ---- the assist page -----------------------------------------------------------------------------------


def test_the_assist_page_for_managers_only(http, store, spam, people):
    p, _ = spam
    sign_in(http, "maya")
    r = http.get("/projects/aspam/assist")
    assert r.status_code == 200
    page = r.text
    assert "auto-labelling on" in page and 'id="models"' in page and "<code>builtin-1</code>" in page
    assert re.search(r'<svg class="chart stacked" id="labels-chart".*?<rect class="bar-people"', page, re.DOTALL)
    rep = assist_report.report(store, p)
    assert f'id="machine-labelled">{rep["machine_labelled"]}<' in page
    assert "Thresholds per class" in page and "Spam</strong>:" in page  # per class, by the option's text
    assert 'id="arms"' in page and "no prediction yet" in page  # the seeded answers came before any model
    assert 'href="/projects/aspam/checks"' in page
    assert http.get("/projects/aspam").text.count('href="/projects/aspam/assist"') == 1  # linked from the project
    for name, status in (("rita", 403), ("ana", 403), ("otto", 403)):
        sign_in(http, name)
        assert http.get("/projects/aspam/assist").status_code == status, name
    http.cookies.clear()
    r = http.get("/projects/aspam/assist", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    sign_in(http, "maya")
    assert http.get("/projects/nope/assist").status_code == 404


def test_a_project_without_an_assist_block_explains_how_to_add_one(http, store, spam_project, people):
    access.set_member(store, spam_project, "maya", "manager")
    sign_in(http, "maya")
    r = http.get("/projects/spam/assist")
    assert r.status_code == 200
    assert "has no assistant" in r.text and "assist:" in r.text and "target_accuracy" in r.text
    assert "Run a step now" not in r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    r = http.post("/projects/spam/assist/run", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/spam/assist"
    access.set_member(store, spam_project, "rita", "reviewer")
    sign_in(http, "rita")
    assert "has no assistant" in http.get("/projects/spam/checks").text


def test_run_a_step_and_resume_auto_labelling(http, store, spam, people):
    p, _ = spam
    csrf = sign_in(http, "maya")
    assert http.post("/projects/aspam/assist/run", data={}).status_code == 403  # no CSRF token
    assert http.post("/projects/aspam/assist/run", data={"csrf": "x" * 43}).status_code == 403
    r = http.post("/projects/aspam/assist/run", data={"csrf": csrf})
    assert r.status_code == 200 and 'id="step-report"' in r.text and "Step done" in r.text
    autolabel.stop(store, p, "the audit failed: 3 of 10 right <b>test</b>")
    page = http.get("/projects/aspam/assist").text
    assert "auto-labelling stopped" in page and "the audit failed: 3 of 10 right &lt;b&gt;test&lt;/b&gt;" in page
    assert "Resume auto-labelling" in page
    assert http.post("/projects/aspam/assist/resume", data={}).status_code == 403
    r = http.post("/projects/aspam/assist/resume", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/aspam/assist"
    assert assistant.get_state(store, p)["auto_label"] == "on"
    page = http.get("/projects/aspam/assist").text
    assert "auto-labelling on" in page and "off in this server" in page  # the worker is off in tests
    # the worker's last step, recorded in the database by whichever server process ran it (this process's
    # worker object holds nothing: the page reads assist_state)
    http.app.state.assist_worker = object()
    try:
        assert "on; no step of this project yet" in http.get("/projects/aspam/assist").text
        assist_state.release_worker(store, p.id, {"error": "ModelError: <b>down</b>",
                                                  "public_error": "ModelError: <b>down</b>"}, now=1_800_000_000)
        page = http.get("/projects/aspam/assist").text
        assert "its last step (2027-01-15 08:00 UTC) failed:</span> ModelError: &lt;b&gt;down&lt;/b&gt;" in page
        assist_state.release_worker(store, p.id, {"error": None}, now=1_800_000_060)
        assert "on; its last step (2027-01-15 08:01 UTC) went well" in http.get("/projects/aspam/assist").text
    finally:
        http.app.state.assist_worker = None
    sign_in(http, "rita")
    assert http.post("/projects/aspam/assist/resume", data={"csrf": csrf}).status_code == 403


def test_labels_chart_fills_missing_days():
    chart = labels_chart([{"day": "2026-01-01", "people": 4, "llm": 1, "machine": 0},
                          {"day": "2026-01-04", "people": 0, "llm": 0, "machine": 10}], height=100)
    assert [b["day"] for b in chart["bars"]] == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    assert chart["max"] == 10 and chart["first"] == "2026-01-01" and chart["last"] == "2026-01-04"
    first, _, _, last = chart["bars"]
    assert [p["kind"] for p in first["parts"]] == ["people", "llm"] and last["parts"][0]["h"] == 94.0
    assert first["parts"][1]["y"] == round(100 - 37.6 - 9.4, 1)  # stacked: LLM above people
    assert labels_chart([])["bars"] == []
    long = labels_chart([{"day": "2025-01-01", "people": 1, "llm": 0, "machine": 0},
                         {"day": "2026-01-01", "people": 1, "llm": 0, "machine": 0}])
    assert len(long["bars"]) == 60 and long["last"] == "2026-01-01"


# ---- the check queue --------------------------------------------------------------------------------------


def _audit_check(store, project) -> dict:
    with store.read() as conn:
        rows = conn.execute(text("SELECT c.id, c.item_id, c.shown_label, ml.confidence FROM assist_checks c "
                                 "JOIN machine_labels ml ON ml.item_id = c.item_id WHERE c.project_id = :p "
                                 "AND c.kind = 'audit' ORDER BY c.id"), {"p": project.id}).all()
    assert rows, "the step sent machine labels to the audit"
    return {"id": rows[0][0], "item_id": rows[0][1]}


def test_an_audit_never_shows_the_machine_label(http, store, spam, people):
    p, _ = spam
    first = _audit_check(store, p)
    sign_in(http, "rita")
    page = http.get("/projects/aspam/checks").text
    assert f'action="/projects/aspam/checks/{first["id"]}"' in page
    form = page[page.index('id="answer-form"'):page.index("</form>", page.index('id="answer-form"'))]
    assert "<strong>Audit.</strong>" in form
    assert 'id="current-label"' not in page and 'id="suggested-label"' not in page and "suggest" not in form
    assert checked_values(form) == []  # nothing pre-selected
    assert [html.unescape(v) for v in re.findall(r'name="label" value="([^"]*)"', form)] == ["spam", "ham"]
    assert "Not spam" in form and 'data-key="2"' in form
    # the page names no label as the machine's: the label texts appear only as the two buttons
    assert page.count(">Spam<") == 1 and page.count(">Not spam<") == 1


def test_deciding_checks(http, store, spam, people):
    p, _ = spam
    csrf = sign_in(http, "rita")
    page = http.get("/projects/aspam/checks").text
    check_id = int(re.search(r'action="/projects/aspam/checks/(\d+)"', page).group(1))
    url = f"/projects/aspam/checks/{check_id}"
    assert http.post(url, data={"label": "spam"}).status_code == 403  # no CSRF token
    r = http.post(url, data={"csrf": csrf})
    assert r.status_code == 422 and "choose a label" in r.text and f'action="{url}"' in r.text
    r = http.post(url, data={"csrf": csrf, "label": "maybe"})
    assert r.status_code == 422 and "&#39;maybe&#39; is not a label of &#39;spam&#39;" in r.text
    r = http.post(url, data={"csrf": csrf, "label": "ham"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/aspam/checks?saved=true"
    decided = {c["id"]: c for c in checks.list_checks(store, p)}[check_id]
    assert decided["checked_label"] == "ham" and decided["checked_by"] == "rita"
    page = http.get(r.headers["location"]).text
    assert 'id="saved"' in page and f'action="{url}"' not in page  # the next one
    # deciding it again (or one held by someone else): 409, readable, nothing saved
    r = http.post(url, data={"csrf": csrf, "label": "spam"})
    assert r.status_code == 409 and "Nothing was saved" in r.text and "not yours to decide" in r.text
    nxt = int(re.search(r'action="/projects/aspam/checks/(\d+)"', page).group(1))
    maya_csrf = sign_in(http, "maya")
    r = http.post(f"/projects/aspam/checks/{nxt}", data={"csrf": maya_csrf, "label": "spam"})
    assert r.status_code == 409
    # an annotator may not; a check of another project is not found here
    sign_in(http, "ana")
    assert http.get("/projects/aspam/checks").status_code == 403
    csrf = sign_in(http, "rita")
    assert http.post("/projects/aspam/checks/99999999", data={"csrf": csrf, "label": "spam"}).status_code == 404


def test_label_error_check_shows_label_suggestion_and_reason(http, store, owner, people):
    p, ids = make_assisted(store, owner[0], assisted_schema("lerr", label_errors=False))
    members(store, p)
    item_id = next(iter(ids.values()))
    with store.write() as conn:
        conn.execute(text("UPDATE items SET data = :d WHERE id = :i"), {"d": dumps({"id": "x", "text": HOSTILE}),
                                                                        "i": item_id})
        conn.execute(text(
            "INSERT INTO assist_checks (project_id, item_id, kind, question, shown_label, reason, created_at) "
            "VALUES (:p, :i, 'label_error', 'spam', :l, :r, 0)"),
            {"p": p.id, "i": item_id, "l": dumps("ham"), "r": f"builtin-1: {HOSTILE}"})
    pred = assistant.prediction_for(store, item_id)
    csrf = sign_in(http, "rita")
    page = http.get("/projects/lerr/checks").text
    assert "<script>window" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE, quote=False) in page
    assert re.search(r'id="current-label">Not spam<', page)
    shown = {"spam": "Spam", "ham": "Not spam"}[pred["label"]]
    assert re.search(rf'id="suggested-label">{shown} <span class="muted">\({pred["confidence"]:.0%} sure\)', page)
    assert "Likely label error" in page
    check_id = int(re.search(r'action="/projects/lerr/checks/(\d+)"', page).group(1))
    r = http.post(f"/projects/lerr/checks/{check_id}", data={"csrf": csrf, "label": "spam"}, follow_redirects=False)
    assert r.status_code == 303
    assert checks.checked_labels(store, p) == {"spam": {item_id: "spam"}}
    page = http.get("/projects/lerr/checks?saved=true").text
    assert 'id="nothing"' in page and 'id="saved"' in page


def test_links_to_the_check_queue(http, store, spam, people):
    sign_in(http, "rita")
    assert 'href="/projects/aspam/checks"' in http.get("/").text
    sign_in(http, "ana")
    assert 'href="/projects/aspam/checks"' not in http.get("/").text


def test_a_qualification_test_never_shows_the_assistants_answer(http, store, owner, people):
    p, _ = make_assisted(store, owner[0], assisted_schema("quals"))
    with store.read() as conn:
        untouched = conn.execute(text("SELECT min(id) FROM items WHERE project_id = :p AND n_assigned = 0"),
                                 {"p": p.id}).scalar_one()
    gold.set_gold(store, p, untouched, {"spam": "spam"})
    p = update_settings(store, p, {"qualification": {"size": 1}})
    access.set_member(store, p, "ana", "annotator")
    item = held_item(store, p, people["ana"])
    assert item["stage"] == "qualification" and item["id"] == untouched
    assert assistant.prediction_for(store, untouched) is not None  # the item has a prediction...
    sign_in(http, "ana")
    page = http.get("/projects/quals/label").text
    assert "Qualification test" in page
    assert "suggest" not in page and checked_values(fieldset(page, "spam")) == []  # ...which the test never shows


def test_the_run_button_waits_for_a_running_step_and_hides_a_model_servers_answer(http, store, owner, make_annotator):
    """The page's "Run a step now" takes the project's assist lease like the API (409 while a step runs), and a
    manager never reads what a model server answered (an internal page, say): only owners do."""

    with internal_page(b"INTERNAL PAGE secret-token-42") as port:
        schema = {"name": "Ext", "slug": "ext", "fields": [{"name": "text"}],
                  "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
                  "assist": {"model": f"http://127.0.0.1:{port}/predict"}}
        p = _create(store, schema, created_by=owner[0].id)
        _add(store, p, [{"text": f"comment number {i}"} for i in range(10)])
        make_annotator("mia", "mia-password", role="manager")
        _login(http, "mia", "mia-password")
        page = http.get("/projects/ext/assist").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = http.post("/projects/ext/assist/run", data={"csrf": csrf})
        assert r.status_code == 200 and "HTTP 500" in r.text and "secret-token-42" not in r.text
        assert assistant_svc.claim_worker(store, p.id, time.time(), 60)  # a step is running elsewhere
        r = http.post("/projects/ext/assist/run", data={"csrf": csrf})
        assert r.status_code == 409 and "already running a step" in r.text
