"""The annotator's own screens (issue 10): honest money and time on the home page and /me/work, the pay
page, the briefing before a project, the history of one's answers with amend links, and questioning a
review decision, end to end on SQLite and PostgreSQL; with the dishonest annotator's attempts."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from threading import Barrier
from xml.etree import ElementTree

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from labelwright.errors import Conflict, NotFound, TooManyAttempts
from labelwright.services import access, appeals, home, pay, queue, review
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.web.annotator import earnings_chart, hours_minutes
from tests.conftest import SPAM_SCHEMA, bearer, join, post_login

T0 = 1_800_000_000.0  # a Friday; the approval window is a day
PAID = {**SPAM_SCHEMA, "slug": "spam", "overlap": 2, "gold": {"rate": 0}, "review": {"mode": "all"},
        "pay": {"reward_per_item": "0.10", "hourly_rate": "12.00", "auto_approve_hours": 24,
                "min_fair_hourly": "15.00"}}


def _answer(store, project, user, answer="spam", active_ms=45_000, now=T0):
    """Claim the next item a minute before ``now`` and answer it at ``now`` with ``active_ms`` of work."""
    item = queue.claim_next(store, project, user, now=now - active_ms / 1000 - 1)
    ann, _ = queue.submit(store, item["id"], user, {"spam": answer}, active_ms=active_ms, now=now)
    return ann


@pytest.fixture
def paid(store, owner, make_annotator):
    p = create_project(store, PAID, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(12)])
    ann = make_annotator("ann", "ann-password-1")
    bob = make_annotator("bob", "bob-password-1")
    rex = make_annotator("rex", "rex-password-1", role="reviewer", member=False)
    join(store, "rex", [p], role="reviewer")
    return p, ann, bob, rex


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _sign_in(http, name, password):
    http.cookies.clear()
    assert post_login(http, name, password, follow_redirects=False).status_code == 303


# ---- the bugs of issue 10 -------------------------------------------------------------------------------


def test_pairwise_answers_that_overlap_do_not_break_the_home_page(http, store, owner, make_annotator):
    """The home page and /me/work answered 500 once pairwise answers overlapped someone else's
    (the majority label string was compared as if it were an answer)."""
    p = create_project(store, {"name": "Pairs", "slug": "pw", "overlap": 2, "id_field": "id", "gold": {"rate": 0},
                               "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
                               "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b",
                                              "rationale": "none"}]}, created_by=owner[0].id)
    add_items(store, p, [{"id": f"i{k}", "a": "x", "b": "y"} for k in range(10)])
    ann, tok = make_annotator("ann", "ann-password-1")
    bob = make_annotator("bob")[0]
    for k in range(10):
        for u in (bob, ann):
            item = queue.claim_next(store, p, u)
            queue.submit(store, item["id"], u, {"pref": {"choice": "A" if k else "B"}})
    r = http.get("/api/v1/me/work", headers=bearer(tok))
    assert r.status_code == 200, r.text
    (mine,) = r.json()["projects"]
    assert mine["agreement_checked"] == 10 and mine["agreement"] == 1.0
    _sign_in(http, "ann", "ann-password-1")
    page = http.get("/")
    assert page.status_code == 200 and "Agreement" in page.text


def test_pay_page_items_column(http, store, paid, owner):
    p, ann, _bob, _rex = paid
    for _ in range(3):
        _answer(store, p, ann[0])
    _sign_in(http, "olive", "owner-password")
    page = http.get("/projects/spam/pay")
    assert page.status_code == 200
    assert "built-in method" not in page.text
    row = re.search(r"<td>ann</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td>"
                    r"<td class=\"num\">([^<]+)</td>",
                    page.text)
    assert row and row.groups() == ("3", "3", "0 h 02 min")  # 3 items, pending (T0 is after the real now)


# ---- honest money and time ---------------------------------------------------------------------------


def test_earnings_split_pending_dates_and_the_fair_rate_only_after_the_window(store, paid):
    p, ann, _bob, rex = paid
    # a careful annotator: 3 minutes an item, 0.10 + 12.00/h x 180 s = 0.70 an item, 14.00 an hour (< 15.00)
    subs = [_answer(store, p, ann[0], active_ms=180_000, now=T0 + k) for k in range(4)]
    before = home.my_work(store, ann[0], now=T0 + 3600)["projects"][0]["pay"]
    assert before["approved"]["items"] == 0 and before["approved"]["amount"] == "0.00"
    assert before["pending"]["items"] == 4 and before["pending"]["amount"] == "2.80"
    assert before["pending"]["by_day"] == [{"date": "2027-01-16", "items": 4, "amount": "2.80"}]
    assert before["effective_hourly"] is None and before["below_fair_rate"] is False  # nothing approved yet
    assert before["rejection_rate"] is None and before["active_ms"] == 720_000
    # the manager's view does not flag them either while the work is pending
    (row,) = pay.summary(store, p, ann[0], now=T0 + 3600)
    assert row["pending_items"] == 4 and row["effective_hourly"] is None and row["below_fair_rate"] is False

    # a reviewer accepts one and rejects one (the rejected one had taken 3 minutes too)
    review.decide(store, p, rex[0], subs[0]["id"], "accepted", now=T0 + 7200)
    review.decide(store, p, rex[0], subs[1]["id"], "rejected", feedback="not spam", now=T0 + 7200)
    mid = home.my_work(store, ann[0], now=T0 + 7300)["projects"][0]["pay"]
    assert (mid["approved"]["items"], mid["pending"]["items"], mid["rejected"]["items"]) == (1, 2, 1)
    assert mid["approved"]["amount"] == "0.70" and mid["pending"]["amount"] == "1.40"
    # the rate is over approved work only: 0.70 for 3 minutes
    assert mid["effective_hourly"] == "14.00" and mid["below_fair_rate"] is True
    assert mid["rejection_rate"] == 0.5 and mid["decided"] == 2

    after = home.my_work(store, ann[0], now=T0 + 25 * 3600)["projects"][0]["pay"]
    assert (after["approved"]["items"], after["pending"]["items"], after["rejected"]["items"]) == (3, 0, 1)
    assert after["approved"]["amount"] == "2.10" and after["pending"]["by_day"] == []
    assert after["effective_hourly"] == "14.00" and after["below_fair_rate"] is True
    assert after["rejection_rate"] == 0.25
    assert after["weeks"] == [{"period": pay.iso_week(T0), "amount": "2.10", "amount_minor": 210}]


def test_a_fast_clicker_is_not_paid_more_per_hour_for_pending_work(store, paid):
    """Effective rates compare like with like: the careful annotator's pending time does not pull their
    rate down while the clicker's approved work pushes theirs up."""
    p, ann, bob, rex = paid
    careful = [_answer(store, p, ann[0], active_ms=120_000, now=T0) for _ in range(2)]
    _answer(store, p, bob[0], active_ms=2_000, now=T0 - 25 * 3600)  # approved by the window long ago
    review.decide(store, p, rex[0], careful[0]["id"], "accepted", now=T0 + 60)
    pay.settle(store, p, now=T0 + 120)
    table = {r["annotator"]: r for r in pay.summary(store, p, now=T0 + 120)}
    # ann: 0.10 + 0.40 for 2 minutes = 15.00 an hour, over the accepted one only (the other is pending)
    assert table["ann"]["effective_hourly"] == "15.00" and table["ann"]["below_fair_rate"] is False
    assert table["ann"]["pending_items"] == 1
    mine = home.my_work(store, ann[0], now=T0 + 120)["projects"][0]["pay"]
    assert mine["effective_hourly"] == "15.00"


def test_me_work_shows_only_ones_own_pay_and_no_gold(http, store, paid):
    p, ann, bob, _rex = paid
    _answer(store, p, ann[0])
    _answer(store, p, bob[0], active_ms=30_000)
    work = http.get("/api/v1/me/work", headers=bearer(ann[1])).json()
    text = json.dumps(work)
    assert "bob" not in text and "gold" not in text.replace("gold_checked", "").replace("gold_accuracy", "")
    assert work["projects"][0]["pay"]["items"] == 1


# ---- the history page -------------------------------------------------------------------------------------


def test_history_page_lists_own_answers_with_amend_links_for_amendable_ones(http, store, paid, owner):
    p, ann, bob, rex = paid
    mine = [_answer(store, p, ann[0], now=T0 + k) for k in range(3)]
    theirs = _answer(store, p, bob[0], answer="ham", now=T0)
    review.decide(store, p, rex[0], mine[0]["id"], "accepted", now=T0 + 10)
    _sign_in(http, "ann", "ann-password-1")
    page = http.get("/projects/spam/history")
    assert page.status_code == 200
    for a in mine:
        assert f'id="answer-{a["id"]}"' in page.text
    assert f'href="/projects/spam/history/{mine[1]["id"]}"' in page.text
    assert f'href="/projects/spam/history/{mine[2]["id"]}"' in page.text
    assert f'href="/projects/spam/history/{mine[0]["id"]}"' not in page.text  # accepted: frozen
    assert f'answer-{theirs["id"]}' not in page.text and not _names(page.text, "bob")
    amend = http.post(f"/projects/spam/history/{mine[0]['id']}", data={"spam": "ham", "csrf": _csrf(page.text)},
                      follow_redirects=False)
    assert amend.status_code == 409  # and amending it is refused
    # another project's history is not the annotator's to read
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other"}, created_by=owner[0].id)
    add_items(store, other, [{"id": "x", "text": "secret"}])
    assert http.get("/projects/other/history").status_code in (403, 404)
    assert http.get("/projects/other/start").status_code in (403, 404)


# ---- the briefing -------------------------------------------------------------------------------------------


def test_briefing_lists_every_term_and_estimates_from_three_others(http, store, paid, make_annotator):
    p, ann, bob, _rex = paid
    _sign_in(http, "ann", "ann-password-1")
    page = http.get("/projects/spam/start")
    assert page.status_code == 200
    for words in ("0.10 USD", "12.00 USD", "after 24.0 h", "every answer", "15.00 USD an hour",
                  "your last 20 answers", "No estimate yet: fewer than 3", "Checked answers"):
        assert words in page.text, words
    assert 'href="/projects/spam/label"' in page.text
    # three other people: 30 s, 60 s and (90, 90, 30) s -> medians 30, 60, 90 -> 60 s an item
    cy = make_annotator("cy", member=False)[0]
    join(store, "cy", [p])
    _answer(store, p, bob[0], active_ms=30_000)
    dee = make_annotator("dee", member=False)[0]
    join(store, "dee", [p])
    _answer(store, p, cy, active_ms=60_000)
    for ms in (90_000, 90_000, 30_000):
        _answer(store, p, dee, active_ms=ms)
    b = home.briefing(store, p, ann[0])
    assert b["estimate"] == {"median_seconds_per_item": 60.0, "annotators": 3, "submissions": 5,
                             "hourly": "18.00"}  # 0.10 x 60 + 12.00
    page = http.get("/projects/spam/start")
    assert "About <strong>18.00 USD an hour</strong>" in page.text and "Based on 3 other annotators" in page.text
    for name in ("bob", "cy", "dee"):
        assert not _names(page.text, name), name


def _names(page: str, name: str) -> bool:
    """Whether the page shows ``name`` as a word, outside attribute values (its random CSRF tokens may hold
    any two letters: "cy" was found in one)."""
    shown = re.sub(r'(value|content)="[^"]*"', "", page)
    return re.search(rf"\b{re.escape(name)}\b", shown) is not None


# ---- questioning a decision ---------------------------------------------------------------------------------


def test_questioning_a_decision_end_to_end(http, store, paid):
    p, ann, bob, rex = paid
    rejected = _answer(store, p, ann[0], now=T0)
    accepted = _answer(store, p, ann[0], now=T0 + 1)
    bobs = _answer(store, p, bob[0], now=T0)
    review.decide(store, p, rex[0], rejected["id"], "rejected", feedback="It <i>sells</i> nothing.", now=T0 + 5)
    review.decide(store, p, rex[0], accepted["id"], "accepted", now=T0 + 5)
    review.decide(store, p, rex[0], bobs["id"], "rejected", feedback="bob's feedback", now=T0 + 5)

    _sign_in(http, "ann", "ann-password-1")
    home_page = http.get("/").text
    assert f'id="decision-{rejected["id"]}"' in home_page and "<details" in home_page
    assert "It &lt;i&gt;sells&lt;/i&gt; nothing." in home_page and "comment " in home_page  # the item, escaped feedback
    assert f'action="/me/questions/{rejected["id"]}"' in home_page
    assert f'action="/me/questions/{accepted["id"]}"' not in home_page  # nothing to question
    assert "bob's feedback" not in home_page
    csrf = _csrf(home_page)
    ask = f"/me/questions/{rejected['id']}"
    assert http.post(ask, data={"body": "why?"}, follow_redirects=False).status_code == 403  # no CSRF token
    assert http.post(ask, data={"body": "x" * 2001, "csrf": csrf}, follow_redirects=False).status_code == 422
    assert http.post(f"/me/questions/{accepted['id']}", data={"body": "why?", "csrf": csrf},
                     follow_redirects=False).status_code == 409
    assert http.post(f"/me/questions/{bobs['id']}", data={"body": "why?", "csrf": csrf},
                     follow_redirects=False).status_code == 404  # another annotator's submission
    hostile = "I think it's ham <script>alert(1)</script>"
    r = http.post(ask, data={"body": hostile, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/#decision-{rejected['id']}"
    assert http.post(ask, data={"body": "again", "csrf": csrf}, follow_redirects=False).status_code == 409  # one
    home_page = http.get("/").text
    assert "Waiting for an answer" in home_page and "&lt;script&gt;alert(1)" in home_page
    assert "<script>alert(1)" not in home_page
    # an annotator cannot answer questions
    qid = appeals.for_user(store, ann[0], [rejected["id"]])[rejected["id"]]["id"]
    assert http.post(f"/projects/spam/questions/{qid}", data={"body": "granted", "csrf": csrf},
                     follow_redirects=False).status_code == 403

    _sign_in(http, "rex", "rex-password-1")
    review_page = http.get("/projects/spam/review").text
    assert 'id="questions"' in review_page and "&lt;script&gt;alert(1)" in review_page
    assert "<script>alert(1)" not in review_page
    csrf = _csrf(review_page)
    assert http.post(f"/projects/spam/questions/{qid}", data={"body": "ok"}, follow_redirects=False).status_code == 403
    r = http.post(f"/projects/spam/questions/{qid}", data={"body": "You are right: reversed.", "csrf": csrf},
                  follow_redirects=False)
    assert r.status_code == 303
    assert http.post(f"/projects/spam/questions/{qid}", data={"body": "twice", "csrf": csrf},
                     follow_redirects=False).status_code == 409
    assert 'id="questions"' not in http.get("/projects/spam/review").text  # none open

    _sign_in(http, "ann", "ann-password-1")
    home_page = http.get("/").text
    assert "You are right: reversed." in home_page and "rex" in home_page


def test_questions_are_limited_per_day_and_only_for_members(store, paid):
    p, ann, bob, rex = paid
    subs = [_answer(store, p, ann[0], now=T0 + k) for k in range(appeals.MAX_PER_DAY + 1)]
    for s in subs:
        review.decide(store, p, rex[0], s["id"], "rejected", feedback="no", now=T0 + 100)
    for s in subs[:-1]:
        appeals.ask(store, ann[0], s["id"], "why?", now=T0 + 200)

    with pytest.raises(TooManyAttempts):
        appeals.ask(store, ann[0], subs[-1]["id"], "why?", now=T0 + 300)
    appeals.ask(store, ann[0], subs[-1]["id"], "why?", now=T0 + 200 + 86_401)  # a day later
    # a reviewer changing the decision makes a new one, which may be questioned again
    review.decide(store, p, rex[0], subs[0]["id"], "fixed", fixed_answers={"spam": "ham"}, now=T0 + 90_000)
    appeals.ask(store, ann[0], subs[0]["id"], "and the fix?", now=T0 + 90_001)
    # a rejection the reviewer then turned into an acceptance has nothing left to question
    review.decide(store, p, rex[0], subs[3]["id"], "accepted", now=T0 + 90_001)
    (row,) = [f for f in home.my_work(store, ann[0], now=T0 + 90_001)["feedback"]
              if f["annotation_id"] == subs[3]["id"] and f["decision"] == "accepted"]
    assert row["can_question"] is False and "item" not in row
    # nobody asks about another annotator's submission
    with pytest.raises(NotFound):
        appeals.ask(store, bob[0], subs[1]["id"], "mine?", now=T0 + 90_002)
    assert len(appeals.open_for_review(store, p, rex[0])) == appeals.MAX_PER_DAY + 2
    # a reviewer never answers a question about their own submission, nor one of another project
    qid = appeals.for_user(store, ann[0], [subs[0]["id"]])[subs[0]["id"]]["id"]
    with pytest.raises(Conflict):
        appeals.reply(store, p, ann[0], qid, "granted myself")
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other"})
    with pytest.raises(NotFound):
        appeals.reply(store, other, rex[0], qid, "from elsewhere")
    # someone removed from the project can no longer ask
    review.decide(store, p, rex[0], subs[2]["id"], "fixed", fixed_answers={"spam": "ham"}, now=T0 + 90_003)
    access.remove_member(store, p, "ann")
    with pytest.raises(NotFound):
        appeals.ask(store, ann[0], subs[2]["id"], "still mine?", now=T0 + 90_004)


# ---- time and the weekly chart ----------------------------------------------------------------------------


def test_hours_and_minutes():
    assert [hours_minutes(ms) for ms in (None, 0, 29_999, 30_000, 187 * 60_000, 25 * 3_600_000 + 60_000)] == [
        "0 h 00 min", "0 h 00 min", "0 h 00 min", "0 h 01 min", "3 h 07 min", "25 h 01 min"]


def test_weekly_earnings_chart_fills_empty_weeks_and_stops_at_twelve():
    assert earnings_chart([], "USD") is None
    svg = str(earnings_chart([{"period": "2026-W40", "amount": "3.50"}, {"period": "2026-W42", "amount": "1.25"}],
                             "USD", today=date(2026, 10, 28)))
    ElementTree.fromstring(svg)  # well-formed
    assert svg.count('class="bar"') == 5  # W40 to W44, the empty weeks as zero
    assert "2026-W41: 0.00 USD" in svg and "2026-W42: 1.25 USD" in svg
    many = [{"period": f"2026-W{w:02d}", "amount": "1.00"} for w in range(1, 45)]
    assert str(earnings_chart(many, "USD", today=date(2026, 10, 28))).count('class="bar"') == 12


def test_questions_through_the_api(http, store, paid):
    p, ann, bob, rex = paid
    rejected = _answer(store, p, ann[0], now=T0)
    bobs = _answer(store, p, bob[0], now=T0)
    for a in (rejected, bobs):
        review.decide(store, p, rex[0], a["id"], "rejected", feedback="no", now=T0 + 5)
    ask = f"/api/v1/me/questions/{rejected['id']}"
    assert http.post(f"/api/v1/me/questions/{bobs['id']}", json={"body": "why?"},
                     headers=bearer(ann[1])).status_code == 404
    assert http.post(ask, json={"body": " "}, headers=bearer(ann[1])).status_code == 422
    r = http.post(ask, json={"body": "Why is it not ham?"}, headers=bearer(ann[1]))
    assert r.status_code == 201 and r.json()["body"] == "Why is it not ham?"
    assert http.post(ask, json={"body": "again"}, headers=bearer(ann[1])).status_code == 409
    assert http.get("/api/v1/projects/spam/questions", headers=bearer(ann[1])).status_code == 403
    (q,) = http.get("/api/v1/projects/spam/questions", headers=bearer(rex[1])).json()
    assert q["annotator"] == "ann" and q["answers"] == {"spam": "spam"} and q["feedback"] == "no"
    assert http.post(f"/api/v1/projects/spam/questions/{q['id']}", json={"body": "x"},
                     headers=bearer(bob[1])).status_code == 403
    r = http.post(f"/api/v1/projects/spam/questions/{q['id']}", json={"body": "Links out."}, headers=bearer(rex[1]))
    assert r.status_code == 200 and r.json()["replied_by"] == "rex"
    assert http.get("/api/v1/projects/spam/questions", headers=bearer(rex[1])).json() == []
    (mine,) = [f for f in http.get("/api/v1/me/work", headers=bearer(ann[1])).json()["feedback"]
               if f["annotation_id"] == rejected["id"]]
    assert mine["question"]["reply"] == "Links out." and mine["can_question"] is False


def test_migration_0010_allows_one_question_per_decision(store, paid):
    """The database itself refuses a second question about one decision (two requests at once cannot both
    pass the service's check)."""
    p, ann, _bob, rex = paid
    sub = _answer(store, p, ann[0])
    review.decide(store, p, rex[0], sub["id"], "rejected", feedback="no", now=T0 + 1)
    q = appeals.ask(store, ann[0], sub["id"], "why?", now=T0 + 2)
    with pytest.raises(sqlalchemy.exc.IntegrityError), store.write() as conn:
        conn.execute(text("INSERT INTO review_questions (project_id, annotation_id, review_id, user_id, body, "
                          "created_at) VALUES (:p, :a, :r, :u, 'again', 0)"),
                     {"p": p.id, "a": sub["id"], "r": q["review_id"], "u": ann[0].id})


def test_the_same_question_sent_twice_at_once(store, paid):
    """Two requests at once for one decision: one question, and a Conflict (never a 500) for the other."""
    p, ann, _bob, rex = paid
    subs = [_answer(store, p, ann[0], now=T0 + k) for k in range(5)]
    for s in subs:
        review.decide(store, p, rex[0], s["id"], "rejected", feedback="no", now=T0 + 10)
    for s in subs:
        gate = Barrier(2)

        def ask(_, s=s, gate=gate):
            gate.wait()
            try:
                return appeals.ask(store, ann[0], s["id"], "why?", now=T0 + 20)["id"]
            except Conflict:
                return "conflict"
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(ask, range(2)))
        assert sorted(map(str, got)).count("conflict") == 1, got
