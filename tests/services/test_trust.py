"""Time, pay, review and gold tried as a dishonest annotator would: each test is an attack that worked
before (see docs/operations.md, "Security") and must not work now. Both databases."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from labelwright.errors import Conflict
from labelwright.services import gold as gold_svc
from labelwright.services import home, pauses, pay, queue, queue_controls, review
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project, set_overlap
from labelwright.store import Store, timed_out
from tests.conftest import SPAM_SCHEMA, bearer, seed_answer
from tests.server import item_state_violations
from tests.web.test_web import form_action, hidden, sign_in

DAY_MS = 86_400_000
PAID = {**SPAM_SCHEMA, "slug": "paid", "overlap": 1, "gold": {"rate": 0}, "review": {"mode": "all"},
        "pay": {"hourly_rate": "15.00", "auto_approve_hours": 0}}


def _rows(store, sql, **params):
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def _earned(store, project) -> Decimal:
    pay.settle(store, get_project(store, project.id))
    return sum((Decimal(r["amount"]) for r in pay.ledger_rows(store, project)), Decimal(0))


# ---- 1. pay inflation -------------------------------------------------------------------------------------


def test_claimed_time_cannot_exceed_what_the_server_saw(http, store, owner, make_annotator):
    """The attack: next, then submit claiming a day, then amend five times claiming a day each; once
    accepted the ledger paid one item $2,520.10 at 15.00/h. Now the time kept is what the server saw."""
    p = create_project(store, PAID, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": "x"} for i in range(3)])
    _, tok = make_annotator("mallory")
    _, rex = make_annotator("rex", role="reviewer")
    t0 = time.time()
    item = http.post("/api/v1/projects/paid/next", headers=bearer(tok)).json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "spam"}, "active_ms": DAY_MS},
                  headers=bearer(tok))
    assert r.status_code == 201, r.text
    ann = r.json()
    assert ann["reported_ms"] == DAY_MS and ann["active_ms"] <= (time.time() - t0) * 1000 + 1
    for _ in range(5):
        r = http.put(f"/api/v1/annotations/{ann['id']}", json={"answers": {"spam": "spam"}, "active_ms": DAY_MS},
                     headers=bearer(tok))
        assert r.status_code == 200, r.text
    elapsed_ms = (time.time() - t0) * 1000
    (active, reported, bound), = _rows(store, "SELECT active_ms, reported_ms, bound_ms FROM annotations")
    assert reported == 6 * DAY_MS and active <= bound <= elapsed_ms + 1
    sub = http.post("/api/v1/projects/paid/review/next", headers=bearer(rex)).json()
    assert http.post(f"/api/v1/projects/paid/review/{sub['annotation_id']}", json={"decision": "accepted"},
                     headers=bearer(rex)).status_code == 200
    assert _earned(store, p) <= Decimal("0.01")  # seconds at 15.00/h, not $2,520.10
    export = http.get("/api/v1/projects/paid/export", headers=bearer(owner[1])).text
    assert f'"active_ms":{active},' in export


def test_time_is_bounded_by_the_lease_and_by_the_last_save(store, owner, make_annotator):
    p = create_project(store, {**PAID, "lease_seconds": 600}, created_by=owner[0].id)
    add_items(store, p, [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    u = make_annotator("mallory")[0]
    t0 = 1_000_000.0
    item = queue.claim_next(store, p, u, now=t0)
    ann, _ = queue.submit(store, item["id"], u, {"spam": "spam"}, active_ms=DAY_MS, now=t0 + 30)
    assert ann["active_ms"] == 30_000 and ann["reported_ms"] == DAY_MS
    # honest time within the bound is kept as the browser measured it
    got = queue.amend(store, ann["id"], u, {"spam": "ham"}, active_ms=4_000, now=t0 + 100)
    assert got["active_ms"] == 34_000
    # an amend claims at most the time since the last save (60 s here) ...
    got = queue.amend(store, ann["id"], u, {"spam": "spam"}, active_ms=DAY_MS, now=t0 + 160)
    assert got["active_ms"] == 94_000
    # ... and at most the project's lease time, however long the annotator waited
    got = queue.amend(store, ann["id"], u, {"spam": "ham"}, active_ms=DAY_MS, now=t0 + 160 + 86_000)
    assert got["active_ms"] == 694_000
    # a lease held past its expiry: the time after the expiry does not count
    item = queue.claim_next(store, p, u, now=t0 + 200_000)
    ann, _ = queue.submit(store, item["id"], u, {"spam": "spam"}, active_ms=DAY_MS, now=t0 + 200_000 + 5_000)
    assert ann["active_ms"] == 600_000
    assert _rows(store, "SELECT sum(active_ms) FROM annotations") == [(1_294_000,)]


def test_the_web_form_is_bounded_too(http, store, owner, make_annotator):
    p = create_project(store, PAID, created_by=owner[0].id)
    add_items(store, p, [{"id": "a", "text": "x"}])
    make_annotator("mallory", password="mallory-password")
    sign_in(http, "mallory", "mallory-password")
    page = http.get("/projects/paid/label")
    r = http.post(form_action(page.text), data={"csrf": hidden(page.text, "csrf"), "spam": "spam",
                                                "active_ms": str(DAY_MS)})
    assert r.status_code in (200, 303), r.text
    (active, reported), = _rows(store, "SELECT active_ms, reported_ms FROM annotations")
    assert reported == DAY_MS and active < 60_000


# ---- 2. amend after review ----------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["accepted", "fixed", "rejected"])
def test_reviewed_work_is_frozen_for_its_author(http, store, owner, make_annotator, decision):
    p = create_project(store, {**PAID, "overlap": 2}, created_by=owner[0].id)
    add_items(store, p, [{"id": "a", "text": "x"}])
    _, tok = make_annotator("mallory")
    _, rex = make_annotator("rex", role="reviewer")
    item = http.post("/api/v1/projects/paid/next", headers=bearer(tok)).json()
    ann = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "spam"}},
                    headers=bearer(tok)).json()
    sub = http.post("/api/v1/projects/paid/review/next", headers=bearer(rex)).json()
    assert sub["revision"] == 1
    # while a reviewer holds it, its author cannot change it under them
    r = http.put(f"/api/v1/annotations/{ann['id']}", json={"answers": {"spam": "ham"}}, headers=bearer(tok))
    assert r.status_code == 409 and "reviewer is checking" in r.json()["error"]
    body = {"decision": decision, "feedback": "no", "answers": {"spam": "ham"} if decision == "fixed" else None}
    assert http.post(f"/api/v1/projects/paid/review/{ann['id']}", json=body, headers=bearer(rex)).status_code == 200
    r = http.put(f"/api/v1/annotations/{ann['id']}", json={"answers": {"spam": "ham"}, "active_ms": 1000},
                 headers=bearer(tok))
    assert r.status_code == 409 and "can no longer be changed" in r.json()["error"]
    assert _rows(store, "SELECT answers, revision, reviewed_revision, review_status FROM annotations") == [
        ('{"spam":"spam"}', 1, 1, decision)]
    line = http.get("/api/v1/projects/paid/export", headers=bearer(owner[1])).json()
    (exported,) = line["annotations"]
    assert exported["answers"] == {"spam": "spam"} and exported["reviewed_revision"] == 1


def test_a_decision_on_a_revision_the_reviewer_did_not_see_is_refused(store, owner, make_annotator):
    p = create_project(store, {**PAID, "review": {"mode": "all", "lease_seconds": 10}}, created_by=owner[0].id)
    add_items(store, p, [{"id": "a", "text": "x"}])
    u, rex = make_annotator("mallory")[0], make_annotator("rex", role="reviewer")[0]
    t0 = time.time()
    item = queue.claim_next(store, p, u, now=t0)
    ann, _ = queue.submit(store, item["id"], u, {"spam": "spam"}, now=t0 + 1)
    seen = review.next_for_review(store, p, rex, now=t0 + 2)
    queue.amend(store, ann["id"], u, {"spam": "ham"}, now=t0 + 20)  # after the review lease ran out
    with pytest.raises(Conflict, match="changed this submission"):
        review.decide(store, p, rex, ann["id"], "accepted", revision=seen["revision"], now=t0 + 21)
    assert _rows(store, "SELECT review_status, revision FROM annotations") == [("pending", 2)]
    review.decide(store, p, rex, ann["id"], "accepted", revision=2, now=t0 + 22)
    assert _rows(store, "SELECT review_status, reviewed_revision FROM annotations") == [("accepted", 2)]


# ---- 3. gold and other annotators' answers ---------------------------------------------------------------


def _gold_project(store, owner, n_gold=6, n_items=30, overlap=3):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "g", "overlap": overlap, "gold": {"rate": 1.0}},
                       created_by=owner[0].id)
    rows = [{"id": f"g{i}", "text": f"gold {i}", "gold": "spam"} for i in range(n_gold)]
    rows += [{"id": f"c{i}", "text": f"comment {i}"} for i in range(n_items)]
    add_items(store, p, rows)
    return p


def test_an_item_never_handed_out_cannot_be_answered(http, store, owner, make_annotator):
    """The attack: submit to every item id without a lease; gold ones did not move 'left'."""
    _gold_project(store, owner)
    _, tok = make_annotator("mallory")
    gold_ids = [r[0] for r in _rows(store, "SELECT item_id FROM gold")]
    before = http.get("/api/v1/projects/g/mine", headers=bearer(tok)).json()
    for item_id in gold_ids[:3] + [gold_ids[-1] + 5]:
        r = http.post(f"/api/v1/items/{item_id}/annotations", json={"answers": {"spam": "ham"}}, headers=bearer(tok))
        assert r.status_code == 409 and "not handed to you" in r.json()["error"]
    assert http.get("/api/v1/projects/g/mine", headers=bearer(tok)).json() == before
    assert _rows(store, "SELECT count(*) FROM annotations") == [(0,)]


def test_gold_accuracy_moves_in_batches_of_first_answers(http, store, owner, make_annotator):
    """The attack: answer a gold item, then amend it and watch gold_accuracy move."""
    _gold_project(store, owner)
    _, tok = make_annotator("mallory")
    served = []
    for _ in range(home.GOLD_BATCH):
        item = http.post("/api/v1/projects/g/next", headers=bearer(tok)).json()
        assert item["external_id"].startswith("g")  # rate 1: gold first
        ann = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "ham"}},
                        headers=bearer(tok)).json()
        served.append(ann["id"])
        work = http.get("/api/v1/me/work", headers=bearer(tok)).json()["projects"][0]
        if len(served) < home.GOLD_BATCH:
            assert work["gold_accuracy"] is None  # not one whole batch yet: says nothing
    assert work["gold_accuracy"] == 0.0 and work["gold_checked"] == home.GOLD_BATCH
    for answer in ("spam", "ham", "spam"):  # flip the last answer back and forth: nothing moves
        r = http.put(f"/api/v1/annotations/{served[-1]}", json={"answers": {"spam": answer}}, headers=bearer(tok))
        assert r.status_code == 200
        again = http.get("/api/v1/me/work", headers=bearer(tok)).json()["projects"][0]
        assert (again["gold_accuracy"], again["gold_checked"]) == (0.0, home.GOLD_BATCH)
    # one more gold answer (the sixth) starts a new batch: still nothing moves
    item = http.post("/api/v1/projects/g/next", headers=bearer(tok)).json()
    http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "spam"}}, headers=bearer(tok))
    again = http.get("/api/v1/me/work", headers=bearer(tok)).json()["projects"][0]
    assert (again["gold_accuracy"], again["gold_checked"]) == (0.0, home.GOLD_BATCH)


def test_agreement_does_not_reveal_other_answers(store, owner, make_annotator):
    """The attack: amend an answer to each option in turn and watch 'agreement' to read the others'."""
    p = create_project(store, {**SPAM_SCHEMA, "slug": "agree", "overlap": 3, "gold": {"rate": 0}},
                       created_by=owner[0].id)
    n = home.AGREEMENT_BATCH
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(n + 2)])
    ids = [r[0] for r in _rows(store, "SELECT id FROM items ORDER BY id")]
    a, b, m = (make_annotator(x)[0] for x in ("ann", "bob", "mallory"))
    for k, item_id in enumerate(ids):
        truth = "spam" if k % 3 else "ham"
        seed_answer(store, item_id, a, {"spam": truth})
        seed_answer(store, item_id, b, {"spam": truth})
    mine = []
    for item_id in ids[:n]:
        mine.append(seed_answer(store, item_id, m, {"spam": "spam"})[0]["id"])
    first = home.my_work(store, m)["projects"][0]
    assert first["agreement_checked"] == n and first["agreement"] == round(sum(1 for k in range(n) if k % 3) / n, 4)
    for answer in ("ham", "spam", "ham"):
        queue.amend(store, mine[-1], m, {"spam": answer})
        again = home.my_work(store, m)["projects"][0]
        assert (again["agreement"], again["agreement_checked"]) == (first["agreement"], n)
    # the next answer (not a whole batch) moves nothing either
    seed_answer(store, ids[n], m, {"spam": "ham"})
    again = home.my_work(store, m)["projects"][0]
    assert (again["agreement"], again["agreement_checked"]) == (first["agreement"], n)


def test_the_home_page_after_pairwise_work(http, store, owner, make_annotator):
    """Pairwise answers that overlap someone else's made the home page and /me/work answer 500."""
    schema = {"name": "Pairs", "slug": "pairs", "overlap": 2, "gold": {"rate": 0},
              "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
              "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b"}]}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"id": f"p{i}", "a": "x", "b": "y"} for i in range(home.AGREEMENT_BATCH)])
    ids = [r[0] for r in _rows(store, "SELECT id FROM items ORDER BY id")]
    a, tok = make_annotator("ann", password="ann-password")
    b = make_annotator("bob")[0]
    for item_id in ids:
        seed_answer(store, item_id, b, {"pref": {"choice": "A"}})
        seed_answer(store, item_id, a, {"pref": {"choice": "A" if item_id % 2 else "B"}})
    work = http.get("/api/v1/me/work", headers=bearer(tok))
    assert work.status_code == 200, work.text
    assert work.json()["projects"][0]["agreement_checked"] == home.AGREEMENT_BATCH

    sign_in(http, "ann", "ann-password")
    assert http.get("/").status_code == 200


# ---- 8. the queue flag ----------------------------------------------------------------------------------------


def test_a_gold_item_made_ordinary_does_not_stall_the_queue(store, owner, make_annotator):
    """A gold item with a full set of answers and one live lease is made ordinary, then the lease expires:
    SQLite answered 'nothing left' while items were open; PostgreSQL spun on the event loop."""
    p = create_project(store, {**SPAM_SCHEMA, "slug": "drift", "overlap": 2, "lease_seconds": 60,
                               "gold": {"rate": 1.0}}, created_by=owner[0].id)
    add_items(store, p, [{"id": "g", "text": "gold", "gold": "spam"}]
              + [{"id": f"c{i}", "text": f"comment {i}"} for i in range(4)])
    a, b, c, d = (make_annotator(x)[0] for x in ("a", "b", "c", "d"))
    t0 = time.time()
    for u in (a, b):
        item = queue.claim_next(store, p, u, now=t0)
        assert item["external_id"] == "g"
        queue.submit(store, item["id"], u, {"spam": "spam"}, now=t0 + 1)
    held = queue.claim_next(store, p, c, now=t0 + 2)
    assert held["external_id"] == "g"
    gold_svc.unset_gold(store, get_project(store, p.id), held["id"], None)
    p = get_project(store, p.id)
    with store.read() as conn:  # c's lease is beyond what the item now wants: legitimate, not taken so
        assert item_state_violations(conn, p.id, p.overlap, strict=False) == []
    got: dict = {}

    def claim():
        got["item"] = queue.claim_next(store, p, d, now=t0 + 120)  # c's lease has expired
    worker = threading.Thread(target=claim, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the claim did not come back"
    assert got["item"] is not None and got["item"]["external_id"] == "c0"
    with store.read() as conn:
        assert item_state_violations(conn, p.id, p.overlap) == []
    assert _rows(store, "SELECT n_assigned, is_open FROM items WHERE id = :i", i=held["id"]) == [(2, 0)]


def test_every_writer_keeps_the_flag_derived(store, owner, make_annotator):
    """Walk the writers of n_assigned and target (claim, submit, skip, release, reclaim, pause, more
    answers, review rejection, gold on and off, overlap change) and check the flag after each."""
    p = create_project(store, {**SPAM_SCHEMA, "slug": "flag", "overlap": 2, "lease_seconds": 60,
                               "gold": {"rate": 0}, "review": {"mode": "all"}}, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(6)])
    a, b = (make_annotator(x)[0] for x in ("a", "b"))
    rex = make_annotator("rex", role="reviewer")[0]
    t0 = time.time()

    def check(step):
        q = get_project(store, p.id)
        with store.read() as conn:
            bad = item_state_violations(conn, q.id, q.overlap)
        assert bad == [], (step, bad)

    for u in (a, b):
        item = queue.claim_next(store, p, u, now=t0)
        queue.submit(store, item["id"], u, {"spam": "spam"}, now=t0 + 1)
    check("submit")
    item = queue.claim_next(store, p, a, now=t0 + 2)
    queue.skip(store, item["id"], a)
    check("skip")
    item = queue.claim_next(store, p, b, now=t0 + 3)
    queue.release(store, item["id"], b)
    check("release")
    queue.claim_next(store, p, a, now=t0 + 4)
    queue.claim_next(store, p, b, now=t0 + 100)  # reclaims a's lease
    check("reclaim")
    pauses.pause(store, p, b, by=None)
    check("pause")
    queue_controls.more_answers(store, p, ["c0"], 1, by=None)
    check("more answers")
    sub = review.next_for_review(store, p, rex)
    review.decide(store, p, rex, sub["annotation_id"], "rejected", feedback="no")
    check("review rejection")
    gold_svc.set_gold(store, p, sub["item"]["id"], {"spam": "spam"})
    check("gold on")
    gold_svc.unset_gold(store, p, sub["item"]["id"])
    check("gold off")
    set_overlap(store, get_project(store, p.id), 1)
    check("overlap")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_statements_have_a_time_limit(db_url):
    s = Store(db_url, pool_size=2, statement_timeout_ms=200)
    try:
        s.migrate()
        t = time.monotonic()
        with pytest.raises(Exception) as e:
            s.lookup("SELECT pg_sleep(5)", {})
        assert timed_out(e.value) and time.monotonic() - t < 3
        with pytest.raises(Exception) as e:
            with s.read() as conn:
                conn.execute(text("SELECT pg_sleep(5)"))
        assert timed_out(e.value)
    finally:
        s.close()


def test_a_crafted_csrf_token_is_refused_not_a_500(http, store, owner, make_annotator):
    """A non-ASCII CSRF field made the constant-time comparison raise (500)."""
    create_project(store, PAID, created_by=owner[0].id)
    make_annotator("mallory", password="mallory-password")
    sign_in(http, "mallory", "mallory-password")
    r = http.post("/account/password", data={"csrf": "é" * 20, "current": "x", "new": "y" * 12},
                  follow_redirects=False)
    assert r.status_code == 403
    r = http.post("/api/v1/tokens", headers={"X-CSRF-Token": b"\xe9" * 20})
    assert r.status_code == 403


def test_left_drops_alike_after_a_gold_and_an_ordinary_answer(http, store, owner, make_annotator):
    """'left' that did not drop after an answer told the annotator the item was gold."""
    _gold_project(store, owner, n_gold=2, n_items=5)
    _, tok = make_annotator("mallory")
    assert http.get("/api/v1/projects/g/mine", headers=bearer(tok)).json() == {"done": 0, "left": 7, "held_back": None}
    kinds = []
    for n in range(7):
        item = http.post("/api/v1/projects/g/next", headers=bearer(tok)).json()
        kinds.append(item["external_id"][0])
        http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "ham"}}, headers=bearer(tok))
        assert http.get("/api/v1/projects/g/mine", headers=bearer(tok)).json() == {
            "done": n + 1, "left": 6 - n, "held_back": None}
    assert sorted(kinds) == ["c"] * 5 + ["g"] * 2  # both kinds were answered, and 'left' fell by one each time
    assert http.post("/api/v1/projects/g/next", headers=bearer(tok)).status_code == 204
