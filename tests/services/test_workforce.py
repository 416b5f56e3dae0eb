"""The workforce rules through the API: qualification, review, pay and its ledger, controls, messages,
events from the labelling line, and the annotator's own view of their work."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from labelwright.cli import main
from labelwright.services import pay as pay_svc
from labelwright.services import queue, users, webhooks
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project, update_settings
from labelwright.services.review import in_sample
from tests.conftest import SPAM_SCHEMA, bearer, held_for, join
from tests.web.test_web import hidden, sign_in


def _rows(store, sql, **params):
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def _label(http, tok, project="spam", answer="spam", active_ms=0):
    item = http.post(f"/api/v1/projects/{project}/next", headers=bearer(tok))
    if item.status_code == 204:
        return None
    item = item.json()
    if active_ms:  # the time claimed must have passed since the item was handed out
        store = http.app.state.store
        held_for(store, item["id"], users.user_for_api_token(store, tok).id, active_ms / 1000 + 1)
    r = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": answer}, "active_ms": active_ms},
                  headers=bearer(tok))
    assert r.status_code == 201, r.text
    return item, r.json()


# ---- qualification ----------------------------------------------------------------------------------


@pytest.fixture
def qual_project(store, owner):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "qual", "overlap": 1, "gold": {"rate": 0},
                               "qualification": {"size": 3, "pass_mark": 0.66, "retakes": 1,
                                                 "retake_after_hours": 0}})
    add_items(store, p, [{"id": f"g{i}", "text": f"test {i}", "gold": {"spam": "spam" if i % 2 else "ham"}}
                         for i in range(3)] + [{"id": f"r{i}", "text": f"real {i}"} for i in range(3)])
    return p


def _take_test(http, tok, answers):
    for want in answers:
        item = http.post("/api/v1/projects/qual/next", headers=bearer(tok)).json()
        assert item["stage"] == "qualification" and "gold" not in json.dumps(item)
        r = http.post(item["submit_to"], json={"answers": {"spam": want}}, headers=bearer(tok))
        assert r.status_code == 200, r.text
    return r.json()


def test_qualification_gates_the_queue_and_counts_retakes(http, store, qual_project, make_annotator):
    _, tok = make_annotator("ann")
    first = http.post("/api/v1/projects/qual/next", headers=bearer(tok)).json()
    assert (first["stage"], first["question_number"], first["of"]) == ("qualification", 1, 3)
    # the real work cannot be reached around the test
    real = _rows(store, "SELECT id FROM items WHERE external_id = 'r0'")[0][0]
    r = http.post(f"/api/v1/items/{real}/annotations", json={"answers": {"spam": "ham"}}, headers=bearer(tok))
    assert r.status_code == 403 and "qualification" in r.json()["error"]
    # gold: g0 ham, g1 spam, g2 ham. One right of three fails.
    status = _take_test(http, tok, ["spam", "spam", "spam"])
    assert status["state"] == "retake_available" and status["score"] == pytest.approx(1 / 3, abs=1e-3)
    assert status["retakes_left"] == 1
    status = _take_test(http, tok, ["ham", "spam", "ham"])  # the retake: all right
    assert status["state"] == "passed" and status["score"] == 1.0
    item = http.post("/api/v1/projects/qual/next", headers=bearer(tok)).json()
    assert item["external_id"] == "r0" and "stage" not in item  # unlocked at once


def test_a_failed_annotator_waits_and_then_is_locked_out(http, store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "qual", "gold": {"rate": 0},
                               "qualification": {"size": 2, "pass_mark": 1.0, "retakes": 0}})
    add_items(store, p, [{"id": f"g{i}", "text": "t", "gold": {"spam": "spam"}} for i in range(2)]
              + [{"id": "r", "text": "real"}])
    _, tok = make_annotator("ann")
    status = _take_test(http, tok, ["ham", "spam"])
    assert status["state"] == "locked"
    r = http.post("/api/v1/projects/qual/next", headers=bearer(tok))
    assert r.status_code == 403 and "no tries left" in r.json()["error"]
    p2 = create_project(store, {**SPAM_SCHEMA, "slug": "later", "gold": {"rate": 0},
                                "qualification": {"size": 1, "pass_mark": 1.0, "retakes": 2, "retake_after_hours": 24}})
    add_items(store, p2, [{"id": "g", "text": "t", "gold": {"spam": "spam"}}])
    join(store, "ann", [p2])
    item = http.post("/api/v1/projects/later/next", headers=bearer(tok)).json()
    http.post(item["submit_to"], json={"answers": {"spam": "ham"}}, headers=bearer(tok))
    r = http.post("/api/v1/projects/later/next", headers=bearer(tok))
    assert r.status_code == 403 and "you may try again from" in r.json()["error"]
    assert http.get("/api/v1/projects/later/qualification", headers=bearer(tok)).json()["state"] == "failed"


# ---- review -------------------------------------------------------------------------------------------


@pytest.fixture
def reviewed(store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "spam", "overlap": 2, "gold": {"rate": 0},
                               "review": {"mode": "all"},
                               "pay": {"reward_per_item": "0.10", "hourly_rate": "12.00", "auto_approve_hours": 0,
                                       "min_fair_hourly": "15.00"}})
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(3)])
    ann = make_annotator("ann")[1]
    bob = make_annotator("bob")[1]
    rex = make_annotator("rex", role="reviewer", member=False)[1]
    join(store, "rex", [p], role="reviewer")
    return p, ann, bob, rex


def test_review_accept_fix_reject(http, store, reviewed, make_annotator):
    p, ann, bob, rex = reviewed
    for _ in range(3):
        _label(http, ann, answer="spam", active_ms=45_000)
    # annotators do not review
    assert http.post("/api/v1/projects/spam/review/next", headers=bearer(ann)).status_code == 403
    seen = []
    for decision in ("accepted", "fixed", "rejected"):
        sub = http.post("/api/v1/projects/spam/review/next", headers=bearer(rex)).json()
        assert sub["annotator"] == "ann" and sub["answers"] == {"spam": "spam"}
        seen.append(sub["annotation_id"])
        body = {"decision": decision}
        if decision == "fixed":
            body["answers"] = {"spam": "ham"}
        if decision == "rejected":
            bad = http.post(f"/api/v1/projects/spam/review/{sub['annotation_id']}", json=body, headers=bearer(rex))
            assert bad.status_code == 422 and bad.json()["field"] == "feedback"
            body["feedback"] = "This one promotes nothing: it is not spam."
        r = http.post(f"/api/v1/projects/spam/review/{sub['annotation_id']}", json=body, headers=bearer(rex))
        assert r.status_code == 200 and r.json()["decision"] == decision
    assert len(set(seen)) == 3
    assert http.post("/api/v1/projects/spam/review/next", headers=bearer(rex)).status_code == 204
    assert http.get("/api/v1/projects/spam/review", headers=bearer(rex)).json() == {
        "pending": 0, "accepted": 1, "fixed": 1, "rejected": 1}
    # the annotator sees the decisions and the feedback on their own work
    fb = http.get("/api/v1/me/feedback", headers=bearer(ann)).json()
    assert [f["decision"] for f in fb] == ["rejected", "fixed", "accepted"]
    assert fb[0]["feedback"].startswith("This one") and fb[1]["fixed_answers"] == {"spam": "ham"}
    # the rejected item asks for another annotator's answer; the fix is beside the original in the export
    rejected_item = _rows(store, "SELECT item_id FROM annotations WHERE id = :a", a=seen[2])[0][0]
    assert _rows(store, "SELECT target, is_open FROM items WHERE id = :i", i=rejected_item) == [(3, 1)]
    assert http.get("/api/v1/projects/spam/export", headers=bearer(rex)).status_code == 403  # reviewers do not export


def test_review_shows_in_export_and_aggregate(http, store, reviewed, owner):
    p, ann, bob, rex = reviewed
    _, a1 = _label(http, ann, answer="spam")
    _, b1 = _label(http, bob, answer="spam")
    http.post(f"/api/v1/projects/spam/review/{a1['id']}", json={"decision": "fixed", "answers": {"spam": "ham"}},
              headers=bearer(rex))
    http.post(f"/api/v1/projects/spam/review/{b1['id']}", json={"decision": "rejected", "feedback": "wrong"},
              headers=bearer(rex))
    line = json.loads(http.get("/api/v1/projects/spam/export", headers=bearer(owner[1])).text.splitlines()[0])
    reviews = {a["annotator"]: a for a in line["annotations"]}
    assert reviews["ann"]["answers"] == {"spam": "spam"} and reviews["ann"]["reviewed_answers"] == {"spam": "ham"}
    assert reviews["bob"]["review"] == "rejected"
    assert line["majority"]["spam"]["label"] == "ham" and line["majority"]["spam"]["n"] == 1
    assert line["aggregate"]["spam"]["label"] == "ham"
    # a reviewer never reviews their own submission
    join(store, "rex", [p], role="reviewer")
    _, own = _label(http, rex, answer="ham")
    r = http.post(f"/api/v1/projects/spam/review/{own['id']}", json={"decision": "accepted"}, headers=bearer(rex))
    assert r.status_code == 409


def test_review_modes_sample_and_disagreement(http, store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "dis", "overlap": 3, "gold": {"rate": 0},
                               "review": {"mode": "disagreement"}})
    add_items(store, p, [{"id": "x", "text": "t"}, {"id": "y", "text": "u"}])
    toks = [make_annotator(n)[1] for n in ("a", "b", "c")]
    rex = make_annotator("rex", role="reviewer", member=False)[1]
    join(store, "rex", [p], role="reviewer")
    for tok, answers in zip(toks, (("spam", "ham"), ("spam", "ham"), ("ham", "ham"))):
        for ans in answers:
            _label(http, tok, project="dis", answer=ans)
    sub = http.post("/api/v1/projects/dis/review/next", headers=bearer(rex)).json()
    assert (sub["annotator"], sub["answers"], sub["item"]["external_id"]) == ("c", {"spam": "ham"}, "x")
    assert len(sub["other_answers"]) == 2
    http.post(f"/api/v1/projects/dis/review/{sub['annotation_id']}", json={"decision": "accepted"}, headers=bearer(rex))
    assert http.post("/api/v1/projects/dis/review/next", headers=bearer(rex)).status_code == 204
    share = sum(in_sample(i, 0.2) for i in range(1, 20_001)) / 20_000
    assert 0.18 < share < 0.22 and in_sample(7, 0.2) == in_sample(7, 0.2)


# ---- pay ------------------------------------------------------------------------------------------------


def test_ledger_arithmetic_with_a_reversal(http, store, reviewed, owner):
    p, ann, bob, rex = reviewed
    subs = [_label(http, ann, answer="spam", active_ms=45_000)[1] for _ in range(3)]
    h = bearer(owner[1])
    table = {r["annotator"]: r for r in http.get("/api/v1/projects/spam/pay", headers=h).json()}
    # 3 x (0.10 reward + 12.00/h x 45 s = 0.15) = 0.75 for 135 s: 20.00 an hour
    assert table["ann"]["earnings"] == "0.75" and table["ann"]["effective_hourly"] == "20.00"
    assert table["ann"]["below_fair_rate"] is False
    r = http.post(f"/api/v1/projects/spam/review/{subs[0]['id']}", json={"decision": "rejected", "feedback": "no"},
                  headers=bearer(rex))
    assert r.status_code == 200
    assert http.post("/api/v1/projects/spam/pay/settle", headers=h).json() == {
        "reward": 0, "hourly": 0, "reversal": 2, "bonus": 0}
    assert http.post("/api/v1/projects/spam/pay/settle", headers=h).json() == {
        "reward": 0, "hourly": 0, "reversal": 0, "bonus": 0}  # settling again changes nothing
    rows = http.get("/api/v1/projects/spam/ledger", headers=h).json()
    assert [(e["kind"], e["amount"]) for e in rows if e["annotation_id"] == subs[0]["id"]] == [
        ("reward", "0.10"), ("hourly", "0.15"), ("reversal", "-0.10"), ("reversal", "-0.15")]
    assert sum(e["amount_minor"] for e in rows) == 50
    table = {r["annotator"]: r for r in http.get("/api/v1/projects/spam/pay", headers=h).json()}
    # 0.50 for 135 s of active time: 13.33 an hour, under the 15.00 fair rate
    assert table["ann"]["earnings"] == "0.50" and table["ann"]["effective_hourly"] == "13.33"
    assert table["ann"]["below_fair_rate"] is True
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    csv_text = http.get(f"/api/v1/projects/spam/ledger?format=csv&annotator=ann&start={today}", headers=h).text
    parsed = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(parsed) == 8 and {r["annotator"] for r in parsed} == {"ann"} and parsed[0]["currency"] == "USD"
    assert http.get("/api/v1/projects/spam/ledger?format=csv&annotator=bob", headers=h).text.count("\n") == 1
    assert http.get("/api/v1/projects/spam/ledger?start=2026-13-01", headers=h).status_code == 422


def test_money_is_exact(store, owner, make_annotator):
    assert pay_svc.to_minor("0.105", "USD") == 10 and pay_svc.to_minor("0.115", "USD") == 12  # half-even
    assert pay_svc.to_minor("150", "JPY") == 150 and pay_svc.money(1234, "KWD") == "1.234"
    assert pay_svc.money(-15, "USD") == "-0.15"
    # a third of a cent an answer, 3 answers: 0.9 cents in all, rounded once (never a float sum, never per entry)
    p = create_project(store, {**SPAM_SCHEMA, "slug": "tiny", "overlap": 1, "gold": {"rate": 0},
                               "pay": {"reward_per_item": "0.003", "hourly_rate": "0", "auto_approve_hours": 1}})
    add_items(store, p, [{"id": f"t{i}", "text": "x"} for i in range(3)])
    u = make_annotator("ann")[0]
    t0 = 1_800_000_000.0
    for _ in range(3):
        item = queue.claim_next(store, p, u, now=t0)
        queue.submit(store, item["id"], u, {"spam": "ham"}, now=t0)
    assert pay_svc.settle(store, p, now=t0 + 10)["reward"] == 0  # not yet approved: within the hour
    assert pay_svc.settle(store, p, now=t0 + 3601)["reward"] == 1  # running total 0.3, 0.6, 0.9 -> 0, 1, 1
    assert [(r["amount"], r["period"]) for r in pay_svc.ledger_rows(store, p)] == [("0.01", pay_svc.iso_week(t0))]
    p2 = create_project(store, {**SPAM_SCHEMA, "slug": "odd", "overlap": 1, "gold": {"rate": 0},
                                "pay": {"reward_per_item": "0.015", "auto_approve_hours": 0}})
    add_items(store, p2, [{"id": "o", "text": "x"}])
    join(store, "ann", [p2])
    item = queue.claim_next(store, p2, u, now=t0)
    queue.submit(store, item["id"], u, {"spam": "ham"}, now=t0)
    pay_svc.settle(store, p2, now=t0 + 1)
    assert [r["amount"] for r in pay_svc.ledger_rows(store, p2)] == ["0.02"]  # 1.5 cents: half to even


def test_hourly_pay_is_rounded_once_per_annotator_and_week(store, owner, make_annotator):
    # 3 s at 15.00 an hour is 1.25 cents: rounding each entry paid 1 cent (10.00 for 1,000 items).
    p = create_project(store, {**SPAM_SCHEMA, "slug": "fast", "overlap": 1, "gold": {"rate": 0},
                               "pay": {"hourly_rate": "15.00", "auto_approve_hours": 0}})
    add_items(store, p, [{"id": f"f{i}", "text": "x"} for i in range(1001)])
    ann, bob = make_annotator("ann")[0], make_annotator("bob")[0]
    t0 = datetime(2026, 11, 16, 12, tzinfo=timezone.utc).timestamp()  # a Monday
    items = [r[0] for r in _rows(store, "SELECT id FROM items WHERE project_id = :p ORDER BY id", p=p.id)]

    def answer(user, item_ids, at):  # straight into the table: the pay rule is what is under test
        with store.write() as conn:
            for n, item_id in enumerate(item_ids):
                conn.execute(text(
                    "INSERT INTO annotations (item_id, project_id, user_id, answers, active_ms, revision, created_at, "
                    "updated_at) VALUES (:i, :p, :u, '{\"spam\": \"ham\"}', 3000, 1, :t, :t)"),
                    {"i": item_id, "p": p.id, "u": user.id, "t": at + n})

    for part in range(4):  # 4 settles of 250 items each
        answer(ann, items[part * 250:(part + 1) * 250], t0 + part * 1000)
        pay_svc.settle(store, p, now=t0 + 86400)
    answer(bob, items[1000:], t0)
    next_week = t0 + 7 * 86400
    answer(bob, items[:1], next_week)  # the same item, a week later: its own running total
    assert pay_svc.settle(store, p, now=next_week + 1)["hourly"] == 2
    assert pay_svc.settle(store, p, now=next_week + 2) == {"reward": 0, "hourly": 0, "reversal": 0, "bonus": 0}
    rows = pay_svc.ledger_rows(store, p)
    paid = {name: sum(r["amount_minor"] for r in rows if r["annotator"] == name) for name in ("ann", "bob")}
    assert paid == {"ann": 1250, "bob": 2}  # 12.50, not 10.00; bob: 1.25 cents in each of two weeks -> 1 + 1
    assert {r["amount_minor"] for r in rows if r["annotator"] == "ann"} == {1, 2}
    assert {r["period"] for r in rows if r["annotator"] == "bob"} == {pay_svc.iso_week(t0), pay_svc.iso_week(next_week)}
    assert {r["annotator"]: r["earnings"] for r in pay_svc.summary(store, p)} == {"ann": "12.50", "bob": "0.02"}
    # A rejection in the middle: the week's total becomes 999 x 1.25 = 12.4875 -> 12.49, to the cent,
    # by appending entries (the ledger keeps every earlier one as it was).
    with store.write() as conn:
        conn.execute(text("UPDATE annotations SET review_status = 'rejected' WHERE user_id = :u AND item_id = :i"),
                     {"u": ann.id, "i": items[1]})
    pay_svc.settle(store, p, now=next_week + 3)
    after = pay_svc.ledger_rows(store, p)
    assert after[:len(rows)] == rows and sum(r["amount_minor"] for r in after if r["annotator"] == "ann") == 1249


def test_weekly_gold_bonus(store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "bonus", "overlap": 1, "gold": {"rate": 1.0},
                               "pay": {"reward_per_item": "0", "auto_approve_hours": 0,
                                       "bonus": {"gold_accuracy_above": 0.9, "min_gold_answers": 2, "amount": "5.00"}}})
    add_items(store, p, [{"id": f"g{i}", "text": "x", "gold": {"spam": "spam"}} for i in range(2)]
              + [{"id": f"r{i}", "text": "y"} for i in range(2)])
    good, bad = make_annotator("good")[0], make_annotator("bad")[0]
    monday = datetime(2026, 11, 16, 12, tzinfo=timezone.utc).timestamp()
    for u, answer in ((good, "spam"), (bad, "ham")):
        for _ in range(3):
            item = queue.claim_next(store, p, u, now=monday)
            if item is None:
                break
            queue.submit(store, item["id"], u, {"spam": answer}, now=monday)
    assert pay_svc.settle(store, p, now=monday + 3600)["bonus"] == 0  # the week is not over
    next_week = monday + 7 * 86400
    assert pay_svc.settle(store, p, now=next_week)["bonus"] == 1
    assert pay_svc.settle(store, p, now=next_week + 60)["bonus"] == 0
    bonus = [r for r in pay_svc.ledger_rows(store, p) if r["kind"] == "bonus"]
    assert [(b["annotator"], b["amount"], b["period"]) for b in bonus] == [("good", "5.00", "2026-W47")]


# ---- controls, messages, the annotator's own view ------------------------------------------------------


def test_more_answers_expire_and_messages(http, store, spam_project, owner, make_annotator):
    _, ann = make_annotator("ann")
    _, bob = make_annotator("bob")
    make_annotator("outsider", member=False)
    h = bearer(owner[1])
    r = http.post("/api/v1/projects/spam/items/more-answers", json={"items": ["c0", "c1"], "answers": 2}, headers=h)
    assert r.json() == {"items": 2, "extra_answers": 2}
    assert _rows(store, "SELECT target FROM items WHERE external_id IN ('c0', 'c1')") == [(4,), (4,)]
    bad = http.post("/api/v1/projects/spam/items/more-answers", json={"items": ["nope"]}, headers=h)
    assert bad.status_code == 404 and "nope" in bad.json()["error"]
    http.post("/api/v1/projects/spam/messages", json={"body": "Please read the new instructions."}, headers=h)
    http.post("/api/v1/projects/spam/messages", json={"body": "Nice work, Ann.", "to": "ann"}, headers=h)
    assert [m["body"] for m in http.get("/api/v1/me/messages", headers=bearer(ann)).json()] == [
        "Nice work, Ann.", "Please read the new instructions."]
    assert [m["body"] for m in http.get("/api/v1/me/messages", headers=bearer(bob)).json()] == [
        "Please read the new instructions."]
    assert http.post("/api/v1/projects/spam/next", headers=bearer(ann)).status_code == 200
    assert http.post("/api/v1/projects/spam/expire", headers=h).status_code == 200
    assert http.post("/api/v1/projects/spam/next", headers=bearer(bob)).status_code == 204
    assert get_project(store, "spam").schema.expires_at is not None
    actions = {e["action"] for e in http.get("/api/v1/audit", headers=h).json()}
    assert {"items.more_answers", "project.expire"} <= actions


def test_my_work(http, store, reviewed, owner):
    p, ann, bob, rex = reviewed
    for _ in range(2):
        _label(http, ann, answer="spam", active_ms=30_000)
    _label(http, bob, answer="ham")
    sub = http.post("/api/v1/projects/spam/review/next", headers=bearer(rex)).json()
    http.post(f"/api/v1/projects/spam/review/{sub['annotation_id']}", json={"decision": "rejected", "feedback": "f"},
              headers=bearer(rex))
    http.post("/api/v1/projects/spam/messages", json={"body": "hello"}, headers=bearer(owner[1]))
    work = http.get("/api/v1/me/work", headers=bearer(ann)).json()
    (mine,) = work["projects"]
    assert mine["done_today"] == 2 and mine["done_this_week"] == 2 and mine["queue"]["done"] == 2
    # fewer answers than one batch (services/home.py): no agreement figure yet
    assert mine["agreement_checked"] == 0 and mine["agreement"] is None
    assert mine["pay"]["items"] == 2 and mine["pay"]["currency"] == "USD"
    assert work["feedback"][0]["decision"] == "rejected" and work["messages"][0]["body"] == "hello"
    assert "bob" not in json.dumps(work)  # only the annotator's own work


# ---- events from the labelling line ---------------------------------------------------------------------


def test_submissions_raise_events_only_when_someone_listens(http, store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "ev", "overlap": 1, "gold": {"rate": 0}})
    add_items(store, p, [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    _, tok = make_annotator("ann")
    _label(http, tok, project="ev")
    assert _rows(store, "SELECT count(*) FROM events") == [(0,)]  # no webhook: nothing stored

    webhooks.create_webhook(store, "http://127.0.0.1:9/x", p, allow_private=True)
    _label(http, tok, project="ev")
    kinds = [r[0] for r in _rows(store, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["annotation.submitted", "item.completed", "project.completed"]
    payload = json.loads(_rows(store, "SELECT payload FROM events ORDER BY id")[0][0])
    assert payload["annotator"] == "ann" and payload["answers"] == {"spam": "spam"} and payload["annotation_id"] > 0
    assert _rows(store, "SELECT count(*), min(status) FROM deliveries") == [(3, "pending")]


def test_settings_of_a_running_project_are_changed_and_audited(http, store, spam_project, owner, make_annotator):
    h = bearer(owner[1])
    r = http.patch("/api/v1/projects/spam/settings", json={"pay": {"reward_per_item": "0.20", "currency": "EUR"},
                                                           "qualification": {"size": 2, "retakes": 3}}, headers=h)
    assert r.status_code == 200, r.text
    schema = get_project(store, "spam").schema
    assert schema.pay.reward_per_item == "0.20" and schema.qualification.retakes == 3
    bad = http.patch("/api/v1/projects/spam/settings", json={"pay": {"reward_per_item": "lots"}}, headers=h)
    assert bad.status_code == 422 and "decimal" in bad.json()["error"]
    assert http.patch("/api/v1/projects/spam/settings", json={"questions": []}, headers=h).status_code == 422
    http.patch("/api/v1/projects/spam/settings", json={"qualification": None}, headers=h)
    assert get_project(store, "spam").schema.qualification is None
    entry = next(e for e in http.get("/api/v1/audit", headers=h).json() if e["action"] == "project.settings")
    assert entry["details"]["before"] == {"qualification": {"size": 2, "pass_mark": 0.8, "retakes": 3,
                                                            "retake_after_hours": 24.0}}
    _, tok = make_annotator("ann")
    r = http.patch("/api/v1/projects/spam/settings", json={"instructions": "x"}, headers=bearer(tok))
    assert r.status_code == 403


def test_workforce_commands(store, spam_project, make_annotator, db_url, tmp_path):
    update_settings(store, spam_project, {"pay": {"reward_per_item": "0.50", "auto_approve_hours": 0,
                                                  "min_fair_hourly": "100"}})
    u = make_annotator("ann")[0]
    p = get_project(store, "spam")
    t0 = time.time()
    item = queue.claim_next(store, p, u, now=t0 - 61)
    queue.submit(store, item["id"], u, {"spam": "spam"}, active_ms=60_000, now=t0)

    def run(*args):
        res = CliRunner().invoke(main, ["--db", db_url, *args], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        return res.output

    ledger = tmp_path / "ledger.csv"
    out = run("pay", "spam", "--ledger", str(ledger), "--annotator", "ann")
    assert "0.50 USD" in out and "30.00" in out and "below the fair rate" in out
    assert ledger.read_text().splitlines()[1].split(",")[2:5] == ["ann", "reward", "0.50"]
    assert "sent to ann" in run("message", "spam", "hello there", "--to", "ann")
    assert "2 item(s) reopened" in run("more-answers", "spam", "c1", "c2", "--answers", "2")
    assert "no new work" in run("expire", "spam")
    assert queue.claim_next(store, get_project(store, "spam"), u) is None
    assert "member.set" in run("audit", "--limit", "100")


def test_audit_page_for_owners(http, store, spam_project, owner, make_annotator):
    make_annotator("ann", "ann-password-1")
    http.post("/api/v1/projects/spam/members/ann/block", json={"reason": "<script>x</script>"},
              headers=bearer(owner[1]))
    sign_in(http, "olive", "owner-password")
    page = http.get("/audit")
    assert page.status_code == 200 and "member.block" in page.text
    assert "<script>x</script>" not in page.text  # the reason is untrusted text
    assert "\\u003cscript\\u003ex" in page.text
    sign_in(http, "ann", "ann-password-1")
    assert http.get("/audit").status_code == 403


def test_qualification_items_are_not_mixed_in_again(http, store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "qual", "overlap": 1, "gold": {"rate": 1.0},
                               "qualification": {"size": 2, "pass_mark": 0.5}})
    add_items(store, p, [{"id": f"t{i}", "text": "test", "gold": {"spam": "spam"}} for i in range(2)]
              + [{"id": "g", "text": "later gold", "gold": {"spam": "ham"}}, {"id": "r", "text": "real"}])
    _, tok = make_annotator("ann")
    assert _take_test(http, tok, ["spam", "spam"])["state"] == "passed"
    served = []
    while (got := _label(http, tok, project="qual")) is not None:
        served.append(got[0]["external_id"])
    assert served == ["g", "r"]  # gold at rate 1 first, but never the test's own items


def test_qualification_in_the_browser_pages(http, store, owner, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "qual", "overlap": 1, "gold": {"rate": 0},
                               "qualification": {"size": 2, "pass_mark": 1.0, "retakes": 0}})
    add_items(store, p, [{"id": f"t{i}", "text": f"test {i}", "gold": {"spam": "spam"}} for i in range(2)]
              + [{"id": "r", "text": "real"}])
    make_annotator("ann", "ann-password-1")
    sign_in(http, "ann", "ann-password-1")
    for n in (1, 2):
        page = http.get("/projects/qual/label").text
        assert f"Qualification test: question {n} of 2" in page and "Skip" not in page
        action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
        assert action.startswith("/projects/qual/qualification/")
        r = http.post(action, data={"csrf": hidden(page, "csrf"), "spam": "spam"}, follow_redirects=False)
    assert r.status_code == 200 and "You passed" in r.text
    page = http.get("/projects/qual/label").text
    assert "Qualification test" not in page and "real" in page
