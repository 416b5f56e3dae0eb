"""Skips and releases beside a transaction that locks the same item and lease the other way round.

On PostgreSQL the hot path's batcher runs many annotators' calls in one transaction, so it may hold an
item's row and then want a lease row that a skip (or release) already took while the skip wants the item:
PostgreSQL aborts one side of the cycle. Before the fix the skip was that side and the annotator got a 500
(seen in tests/services/test_concurrency.py's many-annotators run). A skip, release or prefetch release is now run
again when it is the transaction PostgreSQL chose to abort, so it always lands.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from labelwright.services import queue
from labelwright.store import Store


def _deadlock_against(store: Store, item_id: int, user_id: int, action) -> None:
    """Run ``action()`` while another transaction holds ``item_id``'s row and then asks for the caller's lease
    row, after ``action`` has taken the lease row and waits for the item: a real lock cycle."""
    holder = Store(store.url, pool_size=1)
    done: dict = {}
    try:
        with holder.engine.connect() as other:
            tx = other.begin()
            # the other side looks for the cycle late, so PostgreSQL aborts the action (the case that failed)
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            other.execute(text("UPDATE items SET data = data WHERE id = :i"), {"i": item_id})  # holds the item
            t = threading.Thread(target=lambda: done.setdefault("result", action()))
            t.start()
            time.sleep(0.5)  # the action has deleted the lease and now waits for the item row
            try:  # now wait for the action's lease row: a cycle; PostgreSQL aborts one of the two
                other.execute(text("UPDATE leases SET expires_at = expires_at WHERE item_id = :i AND user_id = :u"),
                              {"i": item_id, "u": user_id})
                tx.commit()
            except Exception as e:  # noqa: BLE001 - this side may be the one aborted
                done["other"] = type(getattr(e, "orig", e)).__name__
                tx.rollback()
            t.join(30)
            assert not t.is_alive()
    finally:
        holder.close()


@pytest.mark.parametrize("what", ["skip", "release"])
def test_a_skip_or_release_caught_in_a_deadlock_still_lands(db_url, store, spam_project, make_annotator, what):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time: no lock cycles")
    user, _token = make_annotator("dora")
    item = queue.claim_next(store, spam_project, user)
    assert item is not None
    errors: list = []

    def action():
        try:
            if what == "skip":
                return queue.skip(store, item["id"], user)
            return queue.release(store, item["id"], user)
        except Exception as e:  # noqa: BLE001 - the test reports it
            errors.append(e)

    _deadlock_against(store, item["id"], user.id, action)
    assert not errors, f"the {what} failed: {errors[0]!r}"
    with store.read() as conn:
        leases = conn.execute(text("SELECT count(*) FROM leases WHERE item_id = :i"), {"i": item["id"]}).scalar()
        skips = conn.execute(text("SELECT count(*) FROM skips WHERE item_id = :i"), {"i": item["id"]}).scalar()
        n_assigned = conn.execute(text("SELECT n_assigned FROM items WHERE id = :i"), {"i": item["id"]}).scalar()
    assert leases == 0 and n_assigned == 0
    assert skips == (1 if what == "skip" else 0)
