"""The queue service: leases, overlap, skips, submissions, idempotency, amendments."""

import pytest
from sqlalchemy import text

from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import queue
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, set_overlap
from tests.conftest import SPAM_SCHEMA


def users(make_annotator, n):
    return [make_annotator(f"a{i}")[0] for i in range(n)]


def test_overlap_and_no_repeat(store, spam_project, make_annotator):
    a, b, c = users(make_annotator, 3)
    seen = {}
    for u in (a, b, c):
        got = []
        while (item := queue.claim_next(store, spam_project, u)) is not None:
            queue.submit(store, item["id"], u, {"spam": "ham"})
            got.append(item["external_id"])
        seen[u.name] = got
    # overlap 2: a and b take all 10 items, c gets nothing
    assert seen["a0"] == [f"c{i}" for i in range(10)]
    assert seen["a1"] == seen["a0"]
    assert seen["a2"] == []
    with store.read() as conn:
        assert conn.execute(text("SELECT max(n_done), min(n_done), max(n_assigned) FROM items")).one() == (2, 2, 2)


def test_held_lease_is_returned_again(store, spam_project, make_annotator):
    (a,) = users(make_annotator, 1)
    first = queue.claim_next(store, spam_project, a)
    again = queue.claim_next(store, spam_project, a)
    assert again["id"] == first["id"] and again["lease_expires_at"] >= first["lease_expires_at"]


def test_expired_lease_puts_the_item_back(store, make_annotator, owner):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "one", "overlap": 1, "lease_seconds": 60})
    add_items(store, p, [{"id": "only", "text": "x"}])
    a, b = users(make_annotator, 2)
    t0 = 1_000_000.0
    item = queue.claim_next(store, p, a, now=t0)
    assert queue.claim_next(store, p, b, now=t0 + 30) is None  # a's lease still live
    got = queue.claim_next(store, p, b, now=t0 + 61)  # a's lease expired: b gets it
    assert got["id"] == item["id"]
    with pytest.raises(Conflict, match="lease on this item expired"):
        queue.submit(store, item["id"], a, {"spam": "spam"}, now=t0 + 62)
    ann, created = queue.submit(store, item["id"], b, {"spam": "ham"}, now=t0 + 63)
    assert created
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotations")).scalar_one() == 1


def test_submit_with_a_lapsed_lease_uses_a_free_slot(store, make_annotator, owner):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "lapse", "overlap": 2, "lease_seconds": 60})
    add_items(store, p, [{"id": "x", "text": "x"}])
    a, b = users(make_annotator, 2)
    t0 = 1_000_000.0
    item = queue.claim_next(store, p, a, now=t0)
    assert queue.claim_next(store, p, b, now=t0 + 61)["id"] == item["id"]  # reclaims a's lease
    ann, created = queue.submit(store, item["id"], a, {"spam": "spam"}, active_ms=3_600_000, now=t0 + 90)
    assert created and ann["answers"] == {"spam": "spam"}
    assert ann["active_ms"] == 60_000  # the lease's life, not the hour claimed nor the 90 s since
    with store.read() as conn:
        assert conn.execute(text("SELECT n_assigned, n_done, is_open FROM items")).one() == (2, 1, 0)
        assert conn.execute(text("SELECT count(*) FROM lapsed_leases")).scalar_one() == 0


def test_submit_needs_an_item_handed_to_you(store, spam_project, make_annotator):
    (a,) = users(make_annotator, 1)
    item = queue.claim_next(store, spam_project, a)
    with pytest.raises(Conflict, match="not handed to you"):
        queue.submit(store, item["id"] + 1, a, {"spam": "spam"})
    queue.release(store, item["id"], a)
    with pytest.raises(Conflict, match="not handed to you"):
        queue.submit(store, item["id"], a, {"spam": "spam"})
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotations")).scalar_one() == 0
        assert conn.execute(text("SELECT sum(n_assigned), sum(n_done) FROM items")).one() == (0, 0)


def test_idempotency_key(store, spam_project, make_annotator):
    (a,) = users(make_annotator, 1)
    item = queue.claim_next(store, spam_project, a)
    first, created = queue.submit(store, item["id"], a, {"spam": "spam"}, idempotency_key="k", active_ms=1500)
    again, created2 = queue.submit(store, item["id"], a, {"spam": "spam"}, idempotency_key="k", active_ms=99)
    assert created and not created2 and again["id"] == first["id"]
    # the replay answers with the stored annotation, field for field (the retry's own time counts for nothing)
    assert again == first and again["reported_ms"] == 1500
    with pytest.raises(Conflict, match="another item"):
        queue.submit(store, item["id"] + 1, a, {"spam": "spam"}, idempotency_key="k")
    with pytest.raises(Conflict, match="already answered"):
        queue.submit(store, item["id"], a, {"spam": "ham"}, idempotency_key="other")


def test_invalid_answers_save_nothing(store, spam_project, make_annotator):
    (a,) = users(make_annotator, 1)
    item = queue.claim_next(store, spam_project, a)
    with pytest.raises(ValidationError) as e:
        queue.submit(store, item["id"], a, {"spam": "eggs"})
    assert e.value.field == "spam"
    with pytest.raises(ValidationError, match="active_ms"):
        queue.submit(store, item["id"], a, {"spam": "ham"}, active_ms=-5)
    with pytest.raises(NotFound):
        queue.submit(store, 999_999, a, {"spam": "ham"})
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotations")).scalar_one() == 0
        # the lease is still held: nothing was consumed
        assert conn.execute(text("SELECT count(*) FROM leases")).scalar_one() == 1


def test_skip_and_release(store, spam_project, make_annotator):
    (a,) = users(make_annotator, 1)
    item = queue.claim_next(store, spam_project, a)
    queue.skip(store, item["id"], a)
    nxt = queue.claim_next(store, spam_project, a)
    assert nxt["id"] != item["id"]
    assert queue.release(store, nxt["id"], a) is True
    assert queue.release(store, nxt["id"], a) is False
    assert queue.claim_next(store, spam_project, a)["id"] == nxt["id"]  # released, not skipped
    assert queue.counts_for_user(store, spam_project, a) == {"done": 0, "left": 9}
    with store.read() as conn:
        assert conn.execute(text("SELECT n_assigned FROM items WHERE id = :i"), {"i": item["id"]}).scalar_one() == 0


def test_amend_keeps_history_and_respects_window(store, make_annotator):
    p = create_project(store, {**SPAM_SCHEMA, "slug": "amend", "history_size": 2, "overlap": 1})
    add_items(store, p, [{"id": str(i), "text": "x"} for i in range(4)])
    a, b = users(make_annotator, 2)
    anns = []
    t0 = 1_000_000.0
    for k in range(3):
        item = queue.claim_next(store, p, a, now=t0 + 10 * k)
        anns.append(queue.submit(store, item["id"], a, {"spam": "spam"}, active_ms=1000, now=t0 + 10 * k + 2)[0])
    assert [h["id"] for h in queue.history(store, p, a)] == [anns[2]["id"], anns[1]["id"]]
    new = queue.amend(store, anns[1]["id"], a, {"spam": "ham"}, active_ms=500, now=t0 + 40)
    assert new["revision"] == 2 and new["answers"] == {"spam": "ham"} and new["active_ms"] == 1500
    with pytest.raises(Forbidden, match="last 2"):
        queue.amend(store, anns[0]["id"], a, {"spam": "ham"})
    with pytest.raises(NotFound):
        queue.amend(store, anns[2]["id"], b, {"spam": "ham"})  # not b's annotation
    with pytest.raises(ValidationError):
        queue.amend(store, anns[2]["id"], a, {"spam": "eggs"})
    with store.read() as conn:
        old = conn.execute(text("SELECT answers, revision FROM annotation_revisions")).all()
    assert [(o.answers, o.revision) for o in old] == [('{"spam":"spam"}', 1)]


def test_raising_overlap_reopens_items(store, spam_project, make_annotator):
    a, b, c = users(make_annotator, 3)
    for u in (a, b):
        while (item := queue.claim_next(store, spam_project, u)) is not None:
            queue.submit(store, item["id"], u, {"spam": "ham"})
    assert queue.claim_next(store, spam_project, c) is None
    p3 = set_overlap(store, spam_project, 3)
    assert queue.claim_next(store, p3, c) is not None
