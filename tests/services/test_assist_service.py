"""The project assistant end to end on real data (a YouTube spam slice), on SQLite and PostgreSQL: features,
the builtin model, predictions with their model version, the uncertainty order, auto-labelling with its
audit (and the audit stopping it), label errors in the check queue, suggestions and the anchoring control,
bring-your-own models that fail, the export's ``source``, and the routes' access rules."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time as _time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from labelwright.app import create_app
from labelwright.errors import Conflict
from labelwright.services import (
    access,
    assistant,
    autolabel,
    checks,
    queue,
    suggestions,
    users,
)
from labelwright.services.assist_report import estimated_accuracy, report
from labelwright.services.assist_worker import AssistWorker
from labelwright.services.items import add_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import create_project, get_project
from labelwright.services.quality import project_quality
from tests.assist.test_assist_models import free_port, port_open
from tests.conftest import SHARED, bearer, held_for, post_login, seed_answer
from tests.server import internal_page, item_state_violations

N_ITEMS = 700


@pytest.fixture(scope="module")
def youtube():
    """The first N_ITEMS comments of the YouTube spam collection: (item records, {text: truth})."""
    df = pd.read_csv(SHARED / "youtube_spam" / "items.csv", dtype={"item": str}).head(N_ITEMS)
    truth = {r.text: ("spam" if r.label == 1 else "ham") for r in df.itertuples()}
    return [{"id": r.item, "text": r.text} for r in df.itertuples()], truth


def _project(store, owner, records, **assist):
    schema = {"name": "YouTube", "slug": "yt", "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
              "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
              "gold": {"rate": 0}, "assist": {"min_train": 20, "retrain_every": 100, **assist}}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, records)
    return p


def _member(store, p, name, role="annotator"):
    user = users.create_user(store, name, role if role != "manager" else "manager")
    access.set_member(store, p, name, role)
    return user


def _label(store, p, user, truth, n, wrong=()):
    """``user`` answers ``n`` items from the queue with the truth (``wrong``: texts answered wrongly)."""
    done = 0
    while done < n:
        item = queue.claim_next(store, p, user)
        if item is None:
            break
        t = item["data"]["text"]
        answer = truth[t] if t not in wrong else {"spam": "ham", "ham": "spam"}[truth[t]]
        queue.submit(store, item["id"], user, {"spam": answer}, active_ms=1500)
        done += 1
    return done


def _texts(store, p) -> dict[int, str]:
    with store.read() as conn:
        return {r[0]: json.loads(r[1])["text"] for r in conn.execute(
            text("SELECT id, data FROM items WHERE project_id = :p"), {"p": p.id})}


def labelled_texts(store, p) -> set[str]:
    with store.read() as conn:
        return {json.loads(r[0])["text"] for r in conn.execute(text(
            "SELECT i.data FROM items i WHERE i.project_id = :p AND i.n_done > 0"), {"p": p.id})}


def _check_invariants(store, p):
    with store.read() as conn:
        assert item_state_violations(conn, p.id, p.overlap) == []


def test_features_model_predictions_and_order(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records, order="uncertainty")
    ann = _member(store, p, "ann")
    first = assistant.step(store, p)
    assert first.featurised == N_ITEMS and first.trained is None and first.error is None
    assert assistant.get_state(store, p)["features_done"] == N_ITEMS
    # the cold start: a random order, not import order
    ids = [queue.claim_next(store, p, ann)["id"]]
    queue.release(store, ids[0], ann)
    with store.read() as conn:
        ranks = [r[0] for r in conn.execute(text("SELECT queue_rank FROM items WHERE project_id = :p ORDER BY id"),
                                            {"p": p.id})]
    assert sorted(ranks) == list(range(1, N_ITEMS + 1)) and ranks != sorted(ranks)
    assert _label(store, p, ann, truth, 120) == 120
    second = assistant.step(store, p)
    assert second.trained == "builtin-1" and second.predicted == N_ITEMS and second.featurised == 0
    model = assistant.latest_model(store, p)
    assert model["n_train"] == 120 and model["n_validation"] == 120 and model["accuracy"] > 0.8
    assert "cross-fitted" in model["details"]["classifier"]
    with store.read() as conn:
        n_pred, versions = conn.execute(text(
            "SELECT count(*), count(DISTINCT model_id) FROM predictions WHERE project_id = :p"), {"p": p.id}).first()
    assert (n_pred, versions) == (N_ITEMS, 1)
    # the queue now serves the most uncertain open item first (rank 1), whatever its id
    with store.read() as conn:
        top = conn.execute(text("SELECT id FROM items WHERE project_id = :p AND is_open = 1 AND queue_rank = 1"),
                           {"p": p.id}).scalar()
    item = queue.claim_next(store, p, ann)
    with store.read() as conn:
        probas = json.loads(conn.execute(text("SELECT probas FROM predictions WHERE item_id = :i"),
                                         {"i": item["id"]}).scalar())
    assert item["id"] == top and max(probas) < 0.9
    # no retraining before retrain_every new labels
    assert assistant.step(store, p).trained is None
    _check_invariants(store, p)


def test_auto_labelling_finishes_the_project_and_the_export_says_who_labelled(store, owner, youtube, http):
    records, truth = youtube
    p = _project(store, owner, records, auto_label={"target_accuracy": 0.9, "audit_rate": 0.05})
    ann = _member(store, p, "ann")
    assistant.step(store, p)
    _label(store, p, ann, truth, 200)
    rep = assistant.step(store, p)
    assert rep.trained == "builtin-1" and rep.auto_labelled > 100, rep
    texts = _texts(store, p)
    machine = autolabel.machine_labels(store, p)
    assert len(machine) == rep.auto_labelled
    right = sum(m["label"] == truth[texts[i]] for i, m in machine.items())
    assert right / len(machine) >= 0.9  # the target, met on the items' ground truth
    assert {m["model"] for m in machine.values()} == {"builtin-1"}
    _check_invariants(store, p)
    # people label the rest; then next answers "nothing left": every item answered or machine-labelled
    people = 200 + _label(store, p, ann, truth, N_ITEMS)
    assert queue.claim_next(store, p, ann) is None
    assert people + len(machine) == N_ITEMS
    export = [json.loads(line) for line in http.get("/api/v1/projects/yt/export?format=jsonl",
                                                     headers=bearer(owner_token(store, owner))).text.splitlines()]
    by_source = {"machine": 0, "people": 0}
    for rec in export:
        agg = rec["aggregate"]["spam"]
        by_source[agg["source"]] += 1
        if agg["source"] == "machine":
            assert agg["method"].startswith("builtin-1") and rec["annotations"] == []
    assert by_source == {"machine": len(machine), "people": people}
    csv = pd.read_csv(io.StringIO(http.get("/api/v1/projects/yt/export?format=csv",
                                           headers=bearer(owner_token(store, owner))).text))
    assert set(csv["source.spam"]) == {"machine", "people"}
    assert (csv["source.spam"] == "machine").sum() == len(machine)
    r = report(store, p)
    assert r["machine_labelled"] == len(machine) and r["estimated_accuracy"] >= 0.9
    assert r["over_time"][0]["machine"] == len(machine)
    # the quality summary is about people's answers: machine-labelled items (nobody answered them) are not in
    # its "items in most doubt" (they once made it fail with a KeyError: a 500 on the quality page)
    q = http.get("/api/v1/projects/yt/quality?doubt=500", headers=bearer(owner_token(store, owner)))
    assert q.status_code == 200, q.text
    doubt = {d["item_id"] for d in q.json()["items_in_doubt"]}
    assert doubt and not doubt & set(machine)


def owner_token(store, owner):
    return owner[1]


def test_a_failed_audit_stops_auto_labelling_and_gives_the_items_back(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records, auto_label={"target_accuracy": 0.9, "audit_rate": 0.2})
    ann, rev = _member(store, p, "ann"), _member(store, p, "rev", "reviewer")
    assistant.step(store, p)
    _label(store, p, ann, truth, 200)
    labelled = assistant.step(store, p).auto_labelled
    assert labelled > 100
    # a reviewer who finds the machine wrong every time: the audit fails at its first look (10 audited)
    seen = 0
    machine = autolabel.machine_labels(store, p)
    while (c := checks.next_check(store, p, rev)) is not None and c["kind"] == "audit":
        assert "current_label" not in c and "suggested" not in c  # blind: the machine's label is not shown
        wrong = {"spam": "ham", "ham": "spam"}[machine[c["item"]["id"]]["label"]]
        out = checks.decide(store, c["id"], rev, wrong)
        seen += 1
        if not out["audit"]["passed"]:
            break
    assert seen == autolabel.FIRST_LOOK
    state = assistant.get_state(store, p)
    assert state["auto_label"] == "stopped" and "the audit failed" in state["reason"] and "10" in state["reason"]
    left = autolabel.machine_labels(store, p)
    assert len(left) == seen and all(m["audit"] == "wrong" for m in left.values())  # the rest withdrawn
    _check_invariants(store, p)
    # the withdrawn items are back in the queue; nothing is auto-labelled while stopped
    assert assistant.step(store, p, force_train=True).auto_labelled == 0
    assert _label(store, p, ann, truth, N_ITEMS) == N_ITEMS - 200 - seen
    # the reviewers' labels stand for the audited items (source people, method audit)
    labels = project_labels(store, p)["spam"]
    for i in left:
        got = labels.get(i)
        assert got["source"] == "people" and got["method"] == "audit" and got["label"] != left[i]["label"]
    autolabel.resume(store, p)
    assert assistant.get_state(store, p)["auto_label"] == "on"


def test_label_errors_go_to_the_check_queue_and_a_reviewers_label_wins(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records)
    ann, rev = _member(store, p, "ann"), _member(store, p, "rev", "reviewer")
    assistant.step(store, p)
    # the annotator gets 12 obvious spam comments wrong (long texts with a link)
    spam = [t for t, v in truth.items() if v == "spam" and "http" in t][:12]
    _label(store, p, ann, truth, 400, wrong=set(spam))
    rep = assistant.step(store, p)
    assert rep.label_errors > 0
    listed = checks.list_checks(store, p)
    texts = _texts(store, p)
    flagged = {texts[c["item_id"]] for c in listed if c["kind"] == "label_error"}
    planted = {t for t in spam if t in set(texts.values())} & labelled_texts(store, p)
    assert len(flagged & planted) >= len(planted) // 2, "confident learning finds most of the planted errors"
    c = checks.next_check(store, p, rev)
    assert c["kind"] == "label_error" and c["current_label"] in ("spam", "ham") and "builtin-1" in c["reason"]
    fixed = truth[c["item"]["data"]["text"]]
    checks.decide(store, c["id"], rev, fixed)
    got = project_labels(store, p)["spam"].get(c["item"]["id"])
    assert got == {"label": fixed, "confidence": 1.0, "method": "check", "source": "people"}
    # an annotator has no access to the check queue's decisions; a check cannot be decided twice
    with pytest.raises(Conflict):
        checks.decide(store, c["id"], rev, fixed)


def test_suggestions_and_the_anchoring_control(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records, suggestion_control=0.5)
    people = [_member(store, p, f"a{i}") for i in range(12)]
    arms = {u.name: suggestions.arm(p, u.id) for u in people}
    assert set(arms.values()) == {"shown", "hidden"}  # both arms are populated with 12 people at 50%
    assert all(suggestions.arm(p, u.id) == arms[u.name] for u in people)  # stable
    assistant.step(store, p)
    _label(store, p, people[0], truth, 60)
    assert assistant.step(store, p).trained == "builtin-1"
    for u in people[1:]:
        item = queue.claim_next(store, p, u)
        if arms[u.name] == "hidden":
            assert item["suggestion"] is None
        else:
            s = item["suggestion"]
            assert s["question"] == "spam" and s["label"] in ("spam", "ham") and s["model"] == "builtin-1"
            assert 0.5 <= s["confidence"] <= 1
        answer = item["suggestion"]["label"] if item["suggestion"] else truth[item["data"]["text"]]
        held_for(store, item["id"], u.id, 5)  # the server saw the item held 5 s: 2 s of it count
        queue.submit(store, item["id"], u, {"spam": answer}, active_ms=2000)
    with store.read() as conn:
        rows = conn.execute(text("SELECT u.name, a.suggestion_arm, a.suggestion FROM annotations a JOIN users u "
                                 "ON u.id = a.user_id WHERE u.name <> 'a0'")).all()
    for name, arm, shown in rows:
        assert arm == arms[name] and shown is not None
    r = suggestions.report(store, p)
    assert r["arms"]["shown"]["acceptance"] == 1.0 and r["arms"]["hidden"]["acceptance"] is None
    assert r["arms"]["shown"]["median_active_seconds"] == 2.0
    assert r["arms"]["none"]["submissions"] == 60  # before the first model there was nothing to show


def test_gold_answers_never_train_the_assistant(store, owner, youtube):
    records, truth = youtube
    gold = [{**r, "gold": {"spam": truth[r["text"]]}} for r in records[:40]]
    p = _project(store, owner, gold + records[40:200])
    ann = _member(store, p, "ann")
    # the annotator answers every gold item and 60 ordinary ones
    with store.read() as conn:
        gold_ids = [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p AND is_gold = 1"),
                                               {"p": p.id})]
    texts = _texts(store, p)
    for i in gold_ids:
        seed_answer(store, i, ann, {"spam": truth[texts[i]]})
    _label(store, p, ann, truth, 60)
    assistant.step(store, p)
    model = assistant.latest_model(store, p)
    assert model["n_train"] == 60  # the 40 gold items are not in it


def test_a_model_that_fails_never_blocks_the_queue(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records[:50], model="http://127.0.0.1:9/predict", order="uncertainty")
    ann = _member(store, p, "ann")
    rep = assistant.step(store, p)
    assert rep.error and "127.0.0.1:9" in rep.error and rep.predicted == 0
    assert _label(store, p, ann, truth, 50) == 50  # people work on regardless
    p2 = _project_slug(store, owner, records[:30], "bad", model="python:tests.assist_model_fixture:with_nan")
    rep = assistant.step(store, p2)
    assert rep.error and "must be allowed by the server's operator" in rep.error  # no python: models by default
    rep = assistant.step(store, p2, python_models=("tests",))
    assert rep.error and "with_nan" in rep.error

    worker = AssistWorker(store, interval=30, python_models=("tests",))
    done = worker.run_once()
    assert done[p.id]["error"] and done[p2.id]["error"]
    assert worker.run_once() == {}  # both are tried again only after a back-off (30 s, then doubling)
    assert worker.last[p2.id]["error"] == done[p2.id]["error"]
    # and in the database, for the assist page of every server process
    for project in (p, p2):
        state = assistant.get_state(store, project)
        assert state["worker_error"] == done[project.id]["error"] and state["worker_at"] > 0
        assert state["worker_public_error"] == done[project.id]["public_error"] and state["worker_until"] == 0


def _project_slug(store, owner, records, slug, **assist):
    schema = {"name": slug, "slug": slug, "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
              "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
              "assist": {"min_train": 20, **assist}}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, records)
    return p


def test_a_python_model_predicts_and_is_validated_on_peoples_labels(store, owner, youtube):
    records, truth = youtube
    p = _project(store, owner, records[:300], model="python:tests.assist_model_fixture:KeywordModel",
                 auto_label={"target_accuracy": 0.95})
    ann = _member(store, p, "ann")
    assert "LABELWRIGHT_ASSIST_PYTHON_MODELS" in assistant.step(store, p).error
    assert "allowed" in assistant.step(store, p, python_models=("tests.other", "test")).error  # a prefix is no package
    rep = assistant.step(store, p, python_models=("tests",))
    assert rep.error is None and rep.predicted == 300
    model = assistant.latest_model(store, p)
    assert model["version"] == "keyword-fixture-2" and model["n_train"] == 0
    _label(store, p, ann, truth, 100)
    assistant.step(store, p, python_models=("tests",))
    model = assistant.latest_model(store, p)
    assert model["n_validation"] == 100 and 0 < model["accuracy"] < 1  # the holdout: people labelled it first
    item = queue.claim_next(store, get_project(store, p.id), ann)
    assert item["suggestion"]["model"] == "keyword-fixture-2"


def test_the_worker_lease_lets_one_process_work_on_a_project(store, owner, youtube):
    records, _ = youtube
    p = _project(store, owner, records[:30])
    assert assistant.claim_worker(store, p.id, 1000.0, 60)
    assert not assistant.claim_worker(store, p.id, 1010.0, 60)  # held by the first
    assert assistant.claim_worker(store, p.id, 1061.0, 60)  # the first died: its lease ran out
    assistant.release_worker(store, p.id)
    assert assistant.claim_worker(store, p.id, 1062.0, 60)
    # a step asked for by a person waits its turn too: while a worker holds the project, it is refused
    assistant.release_worker(store, p.id)
    assert assistant.claim_worker(store, p.id, _time.time(), 60)
    with pytest.raises(Conflict, match="already running a step"):
        assistant.step_now(store, p)
    assistant.release_worker(store, p.id)
    assert assistant.step_now(store, p).featurised == 30
    assert assistant.claim_worker(store, p.id, _time.time(), 60)  # step_now gave the lease back


def test_assist_routes(http, store, owner, youtube, make_annotator):
    records, truth = youtube
    p = _project(store, owner, records[:200], auto_label={"target_accuracy": 0.9})
    ann, ann_tok = make_annotator("ann")
    _, rev_tok = make_annotator("rev", role="reviewer")
    h = bearer(owner_token(store, owner))
    assert http.get("/api/v1/projects/yt/assist", headers=bearer(ann_tok)).status_code == 403
    assert http.post("/api/v1/projects/yt/assist/run", headers=bearer(ann_tok)).status_code == 403
    r = http.post("/api/v1/projects/yt/assist/run", headers=h)
    assert r.status_code == 200 and r.json()["featurised"] == 200
    _label(store, p, ann, truth, 100)
    assert http.post("/api/v1/projects/yt/assist/run", headers=h).json()["trained"] == "builtin-1"
    got = http.get("/api/v1/projects/yt/assist", headers=h).json()
    assert got["models"][0]["n_train"] == 100 and got["question"] == "spam" and got["labels"] == ["spam", "ham"]
    # the check queue: reviewers only; an annotator cannot take or decide a check
    assert http.post("/api/v1/projects/yt/checks/next", headers=bearer(ann_tok)).status_code == 403
    r = http.post("/api/v1/projects/yt/checks/next", headers=bearer(rev_tok))
    if r.status_code == 200:
        c = r.json()
        assert http.post(f"/api/v1/checks/{c['id']}", json={"label": "spam"},
                         headers=bearer(ann_tok)).status_code == 403
        assert http.post(f"/api/v1/checks/{c['id']}", json={"label": "maybe"},
                         headers=bearer(rev_tok)).status_code == 422
        assert http.post(f"/api/v1/checks/{c['id']}", json={"label": "spam"},
                         headers=bearer(rev_tok)).status_code == 200
    else:
        assert r.status_code == 204
    assert http.post("/api/v1/checks/999999", json={"label": "spam"}, headers=bearer(rev_tok)).status_code == 404
    # a project without an assist block says so
    create_project(store, {"name": "plain", "slug": "plain", "fields": [{"name": "text"}],
                                            "questions": [{"name": "q", "type": "single_choice",
                                                           "options": ["a", "b"]}]}, created_by=owner[0].id)
    r = http.get("/api/v1/projects/plain/assist", headers=h)
    assert r.status_code == 422 and "assist" in r.text


@pytest.mark.slow
def test_an_http_model_served_by_the_example_server(store, owner, youtube):
    """The assistant asks a real model server (examples/model_server.py, a separate process) over HTTP."""
    records, truth = youtube
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parents[2] / "examples" / "model_server.py"),
                             "--port", str(port), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = _time.monotonic() + 15
        while not port_open(port):
            assert proc.poll() is None and _time.monotonic() < deadline, "the example server did not start"
            _time.sleep(0.05)
        p = _project(store, owner, records[:400], model=f"http://127.0.0.1:{port}/predict",
                     auto_label={"target_accuracy": 0.9, "min_validation": 100}, order="uncertainty")
        ann = _member(store, p, "ann")
        rep = assistant.step(store, p)
        assert rep.error is None and rep.predicted == 400
        model = assistant.latest_model(store, p)
        assert model["version"] == "keyword-spam-1" and model["details"]["kind"] == "external"
        # people label the validation sample first (the holdout comes before the uncertainty order)
        holdout = assistant.holdout_ids(store, p)
        assert len(holdout) == 100
        for _ in range(100):
            item = queue.claim_next(store, p, ann)
            assert item["id"] in holdout
            queue.submit(store, item["id"], ann, {"spam": truth[item["data"]["text"]]})
        rep = assistant.step(store, p)
        model = assistant.latest_model(store, p)
        assert model["n_validation"] == 100 and model["accuracy"] > 0.6 and model["thresholds"] is not None
        assert rep.predicted == 0  # every item was scored already by this version
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_model_servers_answer_is_shown_to_owners_only(http, store, owner, youtube, make_annotator):
    """A manager may point the model at any URL; the text it answers (an internal page, say) must not come back
    to them through the step's error, only to owners and the server's log."""
    with internal_page(b"INTERNAL ADMIN PAGE: db password hunter2") as port:
        records, _ = youtube
        _project(store, owner, records[:20], model=f"http://127.0.0.1:{port}/predict")
        _, mgr_tok = make_annotator("mia", role="manager")
        mine = http.post("/api/v1/projects/yt/assist/run", headers=bearer(mgr_tok)).json()
        assert "HTTP 500" in mine["error"] and "hunter2" not in mine["error"] and "public_error" not in mine
        theirs = http.post("/api/v1/projects/yt/assist/run", headers=bearer(owner[1])).json()
        assert "hunter2" in theirs["error"]


def test_the_quality_page_reports_the_anchoring_difference_on_gold(store, owner, youtube, http):
    """Gold items carry suggestions like any item; the quality page gives gold accuracy per arm and the
    difference (here: the shown arm accepts every suggestion, the hidden arm answers from the truth)."""
    records, truth = youtube
    gold = [{**r, "gold": {"spam": truth[r["text"]]}} for r in records[:60]]
    p = _project(store, owner, gold + records[60:400], suggestion_control=0.5)
    p = get_project(store, p.id)
    first = _member(store, p, "first")
    _label(store, p, first, truth, 80)
    assistant.step(store, p)
    people = [_member(store, p, f"g{i}") for i in range(8)]
    with store.read() as conn:
        gold_ids = [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p AND is_gold = 1"),
                                               {"p": p.id})]
    texts = _texts(store, p)
    for u in people:
        shown = suggestions.arm(p, u.id) == "shown"
        for i in gold_ids[:20]:
            s = suggestions.for_item(store, p, u.id, i)
            assert (s is not None) == shown
            answer = s["label"] if shown else truth[texts[i]]
            seed_answer(store, i, u, {"spam": answer})
    r = suggestions.report(store, p)
    shown, hidden = r["arms"]["shown"], r["arms"]["hidden"]
    assert hidden["gold_accuracy"] == 1.0 and shown["gold_answers"] > 0 and hidden["gold_answers"] > 0
    assert r["gold_accuracy_difference"] == round(shown["gold_accuracy"] - 1.0, 4)

    users.set_password(store, owner[0], "owner-password")
    post_login(http, "olive", "owner-password")
    page = http.get(f"/projects/{p.slug}/quality").text
    assert "Suggestions and anchoring" in page
    shown_points = re.search(r'id="anchoring-difference">([^<]+)<', page).group(1)
    assert shown_points == "%+.1f points" % (100 * r["gold_accuracy_difference"])


def test_no_suggestion_during_a_qualification_test(store, owner, youtube, http, make_annotator):
    """A qualification test measures the person on gold items: the API never hands them the model's answer."""
    records, truth = youtube
    gold = [{**r, "gold": {"spam": truth[r["text"]]}} for r in records[:10]]
    schema = {"name": "Q", "slug": "q", "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
              "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
              "qualification": {"size": 5, "pass_mark": 0.6}, "assist": {"min_train": 20}}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, gold + records[10:200])
    trainer = _member(store, p, "trainer")
    with store.write() as conn:  # the trainer is qualified already (as if they had passed)
        conn.execute(text("INSERT INTO qualification_attempts (project_id, user_id, started_at, finished_at, "
                          "correct, total, passed) VALUES (:p, :u, 0, 1, 5, 5, 1)"), {"p": p.id, "u": trainer.id})
    assert _label(store, p, trainer, truth, 60) == 60
    assert assistant.step(store, p).trained == "builtin-1"
    _, tok = make_annotator("newbie")
    for _ in range(5):
        item = http.post("/api/v1/projects/q/next", headers=bearer(tok)).json()
        assert item["stage"] == "qualification" and "suggestion" not in item
        r = http.post(item["submit_to"], json={"answers": {"spam": truth[item["data"]["text"]]}},
                      headers=bearer(tok))
        assert r.status_code in (200, 201), r.text
    after = http.post("/api/v1/projects/q/next", headers=bearer(tok)).json()
    assert after.get("stage") != "qualification" and after["suggestion"]["model"] == "builtin-1"


def test_the_server_runs_the_assist_worker_in_the_background(store, owner, youtube, settings):
    """With the setting on (the default), the app starts the assist worker: it featurises a new project's
    items without anyone asking, and stops with the app."""
    records, _ = youtube
    p = _project(store, owner, records[:40])
    app = create_app(settings.with_(assist_worker=True, assist_interval_seconds=1), store=store)
    with TestClient(app):
        worker = app.state.assist_worker
        assert worker is not None and worker._thread.is_alive()
        deadline = _time.monotonic() + 30
        while p.id not in worker.last and _time.monotonic() < deadline:
            _time.sleep(0.1)
        assert worker.last[p.id]["featurised"] == 40 and worker.last[p.id]["error"] is None
    assert worker._thread is None  # stopped with the app
    assert assistant.get_state(store, p)["features_done"] == 40


def test_an_annotator_who_accepts_every_suggestion_is_flagged(store, owner, youtube):
    """Pressing Enter on every suggestion scores the model's accuracy on gold, which can pass a gold check; on
    the gold items where the suggestion was wrong it corrects nothing, and the quality page says so."""
    records, truth = youtube
    gold = [{**r, "gold": {"spam": truth[r["text"]]}} for r in records[:300]]
    p = _project(store, owner, gold + records[300:600])
    first = _member(store, p, "first")
    _label(store, p, first, truth, 25)  # enough for a weak first model, wrong on many gold items
    assert assistant.step(store, p).trained == "builtin-1"
    stamper, honest = _member(store, p, "stamper"), _member(store, p, "honest")
    texts = _texts(store, p)
    with store.read() as conn:
        gold_ids = [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p AND is_gold = 1 "
                                                    "ORDER BY id"), {"p": p.id})]
    wrong = [i for i in gold_ids if suggestions.for_item(store, p, stamper.id, i)["label"] != truth[texts[i]]]
    assert len(wrong) >= suggestions.MIN_WRONG_SUGGESTIONS
    for i in gold_ids[:200]:
        shown = suggestions.for_item(store, p, stamper.id, i)["label"]
        seed_answer(store, i, stamper, {"spam": shown})
        seed_answer(store, i, honest, {"spam": truth[texts[i]]})
    rows = {r["annotator"]: r for r in project_quality(store, p)["annotators"]}
    assert rows["stamper"]["suggestions_accepted"] == 1.0 and rows["stamper"]["likely_spammer"]
    assert any("rubber-stamping" in why for why in rows["stamper"]["reasons"])
    assert rows["stamper"]["gold_accuracy"] > 0.6  # the gold check alone would not have caught it
    assert not rows["honest"]["likely_spammer"] and rows["honest"]["suggestions_accepted"] < 1.0


def test_the_estimate_counts_each_machine_label_with_the_model_that_made_it(store, owner, youtube, monkeypatch):
    """A later model without thresholds (or other ones) does not erase the estimate for labels an earlier model
    made; and a step with nothing to featurise does not read the featuriser back."""
    records, truth = youtube
    p = _project(store, owner, records, auto_label={"target_accuracy": 0.9, "min_validation": 150})
    ann = _member(store, p, "ann")
    assistant.step(store, p)
    _label(store, p, ann, truth, 200)
    assert assistant.step(store, p).auto_labelled > 0
    models = assistant.list_models(store, p)
    machine = autolabel.machine_labels(store, p)
    first = estimated_accuracy(models, machine)
    assert 0.9 <= first <= 1
    later = {**models[-1], "version": "builtin-2", "thresholds": None}
    assert estimated_accuracy(models + [later], machine) == first
    calls = []
    original = assistant._featuriser
    monkeypatch.setattr(assistant, "_featuriser", lambda *a: calls.append(a) or original(*a))
    assert assistant.featurise(store, p) == 0 and calls == []
