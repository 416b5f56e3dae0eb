"""PostgreSQL connections of a store: the hot pool (psycopg_pool) and the SQLAlchemy engine replace a
connection the server ended, and the hot pool never opens more than ``pool_size`` connections."""

import asyncio
import contextlib
import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy import text

from labelwright.services import access, queue, users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project
from labelwright.store import HOT_SUFFIX, PG_TCP, Store
from tests.conftest import PG_URL, PgSchema, require_pg

SCHEMA = {"name": "Pool", "slug": "pool", "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
          "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}


@pytest.fixture
def pg():
    require_pg()
    schema = PgSchema()
    stores: list[Store] = []

    def make(pool_size: int) -> tuple[Store, str]:
        app = "lwtest-" + uuid.uuid4().hex[:10]  # this store's connections, and no one else's
        store = Store(schema.url, pool_size=pool_size, application_name=app)
        stores.append(store)
        store.migrate()
        return store, app

    try:
        yield make
    finally:
        for store in stores:
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


def _pids(app: str) -> set[int]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchall()
    return {r[0] for r in rows}


def _terminate(pids: set[int]) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for pid in pids:  # waits until the backend has gone
            row = conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
            assert row is not None and row[0]


async def _claim_and_submit(store: Store, project, people) -> list[int]:
    async def one(person):
        item = await store.run(queue.claim_next, store, project, person)
        ann, created = await store.run(queue.submit, store, item["id"], person, {"spam": "ham"})
        assert created and ann["item_id"] == item["id"]
        return item["id"]
    return await asyncio.gather(*(one(p) for p in people))


def test_killed_hot_connections_are_replaced(pg):
    store, app = pg(3)
    project, people = _setup(store, 40, 6)
    hot = app + HOT_SUFFIX
    asyncio.run(_claim_and_submit(store, project, people[:1]))  # alone: its own pipelined transaction
    asyncio.run(_claim_and_submit(store, project, people[1:4]))  # batched
    store.lookup("SELECT count(*) FROM items", {})
    first = _pids(hot)
    assert first
    _terminate(first)
    assert not _pids(hot)

    # The next claim and submission of one caller (its own transaction), then of several (a batch), and a
    # lookup, all succeed on new connections.
    done = asyncio.run(_claim_and_submit(store, project, people[4:5]))
    done += asyncio.run(_claim_and_submit(store, project, people[:4]))
    assert store.lookup("SELECT count(*) FROM annotations", {})[0] == 9
    assert len(set(done)) == 5
    second = _pids(hot)
    assert second and not second & first

    _terminate(second)  # and a batch that is the first to meet the dead connections
    assert len(set(asyncio.run(_claim_and_submit(store, project, people)))) == 6


def test_killed_engine_connections_are_replaced(pg):
    store, app = pg(2)
    with store.read() as conn:
        before = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert before in _pids(app)
    _terminate(_pids(app))
    with store.read() as conn:  # the pool's health check drops the dead one and opens another
        after = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert after != before
    user = users.create_user(store, "wendy", "owner")  # a write, on the engine too
    assert users.get_user(store, "wendy").id == user.id


def test_hot_connections_never_exceed_pool_size(pg):
    cap = 2
    store, app = pg(cap)
    project, people = _setup(store, 120, 24)
    hot = app + HOT_SUFFIX
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                   (hot,)).fetchone()
                assert row is not None
                seen.append(row[0])
                time.sleep(0.002)

    looked_up: list[int] = []

    def lookups() -> None:  # request threads looking up, as the routes do, beside the batcher
        for _ in range(30):
            looked_up.append(store.lookup("SELECT count(*) FROM items", {})[0])

    sampler = threading.Thread(target=sample)
    sampler.start()
    readers = [threading.Thread(target=lookups) for _ in range(12)]
    try:
        for t in readers:
            t.start()
        for _ in range(3):
            asyncio.run(_claim_and_submit(store, project, people))
        for t in readers:
            t.join()
    finally:
        stop.set()
        sampler.join()
    assert looked_up == [120] * 12 * 30
    assert store.lookup("SELECT count(*) FROM annotations", {})[0] == 72
    assert max(seen) == cap  # all of them in use, and never one more
    assert len(_pids(hot)) <= cap


def test_hot_pool_waits_for_a_connection_at_the_cap(pg):
    store, app = pg(1)
    with contextlib.ExitStack() as held:
        conn = held.enter_context(store.hot_connection())
        got: list = []
        t = threading.Thread(target=lambda: got.append(store.lookup("SELECT 1", {})[0]))
        t.start()
        t.join(0.3)
        assert t.is_alive() and not got  # waiting, not opening a second connection
        assert _pids(app + HOT_SUFFIX) == {conn.info.backend_pid}
    t.join(5)
    assert got == [1]


def test_both_pools_connect_with_tcp_keepalives_and_a_user_timeout(pg):
    """A connection the network drops without a word must not hang a request for the kernel's 15 minutes:
    every connection of both pools asks for keepalives and tcp_user_timeout (labelwright.store.PG_TCP)."""
    store, _app = pg(2)
    with store.hot_connection() as conn:
        hot = conn.info.get_parameters()
    with store.read() as conn:
        engine = conn.connection.dbapi_connection.info.get_parameters()
    for params in (hot, engine):
        assert {k: params.get(k) for k in PG_TCP} == {k: str(v) for k, v in PG_TCP.items()}
