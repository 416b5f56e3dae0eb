"""PostgreSQL group commit (labelwright.store.pg_batch): calls run through Store.run share transactions,
answer as they would alone, keep one user's transactions apart, and survive a failing batch."""

import asyncio
import threading

import pytest
from sqlalchemy import text

from labelwright.errors import Conflict
from labelwright.services import access, queue, users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project
from labelwright.store import Store, locks, pg_batch
from tests.conftest import PgSchema, require_pg

SCHEMA = {"name": "Batch", "slug": "batch", "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
          "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}


@pytest.fixture
def pg_store():
    require_pg()
    schema = PgSchema()
    store = Store(schema.url, pool_size=4)
    store.migrate()
    try:
        yield store
    finally:
        store.close()
        schema.drop()


def _setup(store: Store, n_items: int, n_people: int):
    owner = users.create_user(store, "olive", "owner")
    project = create_project(store, SCHEMA, created_by=owner.id)
    import_items(store, project, enumerate(({"id": f"i{i}", "text": "x"} for i in range(n_items)), start=1))
    people = [users.create_user(store, f"a{i}") for i in range(n_people)]
    for p in people:
        access.set_member(store, project, p.name, "annotator")
    return project, people


def test_concurrent_calls_share_transactions_and_never_over_assign(pg_store):
    store = pg_store
    project, people = _setup(store, 60, 20)

    async def work():
        async def one(person):
            got = []
            for _ in range(3):
                item = await store.run(queue.claim_next, store, project, person)
                ann, created = await store.run(queue.submit, store, item["id"], person, {"spam": "ham"})
                assert created and ann["item_id"] == item["id"]
                got.append(item["id"])
            return got
        return await asyncio.gather(*(one(p) for p in people))

    got = asyncio.run(work())
    items = [i for g in got for i in g]
    assert len(items) == len(set(items)) == 60  # overlap 1: every item to exactly one person
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotations")).scalar_one() == 60
        assert conn.execute(text("SELECT count(*) FROM items WHERE n_assigned <> n_done OR is_open = 1")
                            ).scalar_one() == 0
    # 120 calls alone would commit 120 times; most shared a transaction with others.
    shared = sum(b.shared for b in store._batchers)
    commits = sum(b.commits for b in store._batchers)
    assert shared > 60 and commits < shared / 3, (shared, commits)


def test_one_users_calls_in_one_batch_answer_as_if_serialised(pg_store):
    store = pg_store
    project, (person,) = _setup(store, 5, 1)

    async def work():
        item = await store.run(queue.claim_next, store, project, person)
        return await asyncio.gather(*(store.run(queue.submit, store, item["id"], person, {"spam": "spam"})
                                      for _ in range(6)), return_exceptions=True)

    results = asyncio.run(work())
    created = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == 5, results
    assert all("already answered" in str(r) for r in refused), refused  # not "not handed to you"


def test_a_failing_statement_fails_only_its_own_call(pg_store):
    store = pg_store
    project, people = _setup(store, 20, 6)

    def broken():
        return store.lookup("SELECT 1 / 0", {})

    async def work():
        calls = [store.run(queue.claim_next, store, project, p) for p in people]
        calls.insert(3, store.run(broken))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(work())
    assert "division by zero" in str(results[3])
    items = [r for i, r in enumerate(results) if i != 3]
    assert all(isinstance(r, dict) for r in items), items
    assert len({r["id"] for r in items}) == len(people)
    with store.read() as conn:  # each claim committed once, its lease with it
        assert conn.execute(text("SELECT count(*) FROM leases")).scalar_one() == len(people)
        assert conn.execute(text("SELECT sum(n_assigned) FROM items")).scalar_one() == len(people)


def test_batches_of_two_processes_never_deadlock(pg_store):
    """Two stores (as two server processes), each running two batches at once, on a project of overlap 3:
    the three annotators of an item submit at nearly the same moment from different batches. A batch that
    updated its items' rows in the order its calls happened to reach them could hold one row while waiting
    for another's, and the other batch the reverse: PostgreSQL breaks that deadlock after deadlock_timeout
    (1 s) and the batch is re-run call by call. Locking the rows first, in order of id, means no batch ever
    fails."""
    store_a = pg_store
    store_b = Store(store_a.url, pool_size=4, pg_batches=2)
    try:
        owner = users.create_user(store_a, "olive", "owner")
        project = create_project(store_a, {**SCHEMA, "overlap": 3}, created_by=owner.id)
        import_items(store_a, project, enumerate(({"id": f"i{i}", "text": "x"} for i in range(120)), start=1))
        people = [users.create_user(store_a, f"a{i}") for i in range(30)]
        for p in people:
            access.set_member(store_a, project, p.name, "annotator")

        async def work():
            async def one(n, person):
                store = (store_a, store_b)[n % 2]
                done = 0
                while True:
                    item = await store.run(queue.claim_next, store, project, person)
                    if item is None:
                        return done
                    _ann, created = await store.run(queue.submit, store, item["id"], person, {"spam": "ham"},
                                                    items=(item["id"],))
                    assert created
                    done += 1
            return await asyncio.gather(*(one(n, p) for n, p in enumerate(people)))

        done = asyncio.run(work())
        assert sum(done) == 360  # 120 items x 3
        batchers = store_a._batchers + store_b._batchers
        assert len(batchers) == 4
        assert sum(b.shared for b in batchers) > 360  # the calls did share transactions
        assert [b.failed for b in batchers] == [0, 0, 0, 0]
        with store_a.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM annotations")).scalar_one() == 360
            assert conn.execute(text("SELECT count(*) FROM items WHERE n_done <> 3 OR n_assigned <> 3")
                                ).scalar_one() == 0
    finally:
        store_b.close()


def _two_batches_at_once(store: Store, batches: list[list[tuple]]) -> tuple[list, list]:
    """Run each batch of ``(fn, args, items)`` calls in a batcher of its own, all at the same moment (one
    thread each); returns the batchers and every call's result, in order."""
    async def work():
        loop = asyncio.get_running_loop()
        batchers, threads, futures = [], [], []
        for batch in batches:
            batcher = pg_batch.PgBatcher(store, store._pg_jobs)
            calls = []
            for fn, args, items in batch:
                fut = loop.create_future()
                futures.append(fut)
                calls.append(pg_batch._Call(fn, args, {}, loop, fut, items=items))

            def run(batcher=batcher, calls=calls):
                store.in_batcher(batcher)
                batcher._run_batch(calls)
            batchers.append(batcher)
            threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        results = await asyncio.gather(*futures)
        for t in threads:
            t.join()
        return batchers, results
    return asyncio.run(work())


def _update_both(store: Store, first: int, second: int) -> int:
    """A call that updates item ``first``, waits a moment, then updates item ``second``."""
    bump = "UPDATE items SET n_done = n_done WHERE id = :i RETURNING id"
    with store.pipeline() as tx:
        tx.execute(bump, {"i": first}).fetchone()
        tx.execute("SELECT pg_sleep(0.3)", {}).fetchone()
        return tx.commit_with(bump, {"i": second}).fetchone()[0]


def test_two_batches_updating_the_same_rows_in_opposite_orders_do_not_deadlock(pg_store):
    """The deterministic case behind the test above: batch A's call updates item 1 then item 2, batch B's
    item 2 then item 1, at the same moment. Unordered, each would hold one row and wait for the other's
    (a deadlock, one batch failing after deadlock_timeout); the batcher locks both rows first, by id, so B
    simply waits for A."""
    store = pg_store
    _setup(store, 2, 1)
    with store.read() as conn:
        one, two = conn.execute(text("SELECT id FROM items ORDER BY id")).scalars()

    batchers, results = _two_batches_at_once(store, [
        [(_update_both, (store, first, second), (one, two)), (len, ((),), (one, two))]
        for first, second in ((one, two), (two, one))])
    assert results == [two, 0, one, 0]
    assert [(b.failed, b.commits) for b in batchers] == [(0, 1), (0, 1)]


def _as_user(store: Store, user_id: int) -> int:
    """A call that takes user ``user_id``'s lock (as a claim or submission does), then waits a moment."""
    with store.pipeline() as tx:
        tx.lock_user({"u": user_id})
        tx.execute("SELECT pg_sleep(0.3)", {}).fetchone()
        return tx.commit_with("SELECT CAST(:u AS bigint)", {"u": user_id}).fetchone()[0]


def test_two_batches_with_the_same_users_in_opposite_orders_do_not_deadlock(pg_store):
    """One annotator's requests can reach two batches at once (several tabs, a script with threads, two
    server processes): batch A holds calls of users 1 and 2, batch B of users 2 and 1. Had each call waited
    for its user's lock inside its batch, A would hold user 1's and wait for user 2's while B held user 2's
    and waited for user 1's: a deadlock, one batch failing after deadlock_timeout, and under load a call
    failing again when re-run on its own (a 500 seen in CI). A call in a batch only tries its user's lock;
    one that is held elsewhere waits for its batch to commit and then runs on its own."""
    store = pg_store
    _setup(store, 1, 0)
    first, second = (users.create_user(store, f"u{i}").id for i in range(2))

    batchers, results = _two_batches_at_once(store, [[(_as_user, (store, user_id), ()) for user_id in order]
                                                     for order in ((first, second), (second, first))])
    assert results == [first, second, second, first]
    assert [b.failed for b in batchers] == [0, 0]


def test_a_claim_whose_lock_is_held_elsewhere_reads_its_state_again_under_the_lock(pg_store):
    """A claim in a batch sends its first read (does the caller hold a lease? has any lease expired?) with
    the try of the caller's lock, in one round trip. When the lock is held elsewhere (the same person's
    claim committing in another server process), that read was made without the lock and may be stale: the
    claim must read again under the lock in its own transaction. Here the other transaction gives the
    person a lease and commits only after the batch has read; a claim that trusted the stale read would
    take a second item, and the person would hold two leases."""
    store = pg_store
    project, (anna, ben) = _setup(store, 5, 2)
    with store.read() as conn:
        held = conn.execute(text("SELECT id FROM items ORDER BY id DESC LIMIT 1")).scalar_one()
    other = store.engine.connect()
    other.begin()
    other.execute(text(f"SELECT pg_advisory_xact_lock({locks.USER}, :u)"), {"u": anna.id})
    other.execute(text("INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                       "VALUES (:i, :u, :p, 0, 9e9)"), {"i": held, "u": anna.id, "p": project.id})
    other.execute(text("UPDATE items SET n_assigned = 1, is_open = 0 WHERE id = :i"), {"i": held})
    timer = threading.Timer(0.5, lambda: (other.commit(), other.close()))
    timer.start()
    try:
        batchers, (got_anna, got_ben) = _two_batches_at_once(store, [[
            (queue.claim_next, (store, project, anna), ()), (queue.claim_next, (store, project, ben), ())]])
    finally:
        timer.join()
    assert got_anna["id"] == held  # the lease given meanwhile, renewed: not a second item
    assert got_ben["id"] != held
    assert batchers[0].shared == 2 and batchers[0].failed == 0  # both calls began in the batch
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM leases WHERE user_id = :u"), {"u": anna.id}
                            ).scalar_one() == 1
