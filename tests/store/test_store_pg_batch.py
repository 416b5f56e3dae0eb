"""PostgreSQL group commit (labelwright.store.pg_batch): calls run through Store.run share transactions,
answer as they would alone, keep one user's transactions apart, and survive a failing batch."""

import asyncio

import pytest
from sqlalchemy import text

from labelwright.errors import Conflict
from labelwright.services import access, queue, users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project
from labelwright.store import Store
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
    batcher = store._batcher
    assert batcher is not None and batcher.shared > 60 and batcher.commits < batcher.shared / 3, \
        (batcher.shared, batcher.commits)


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
