"""Two Store objects on one database stand for two server processes: what one writes, the other sees at
once, and a project's schema is read and written in one transaction (no change lost when two land at once).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from labelwright.services import access, events, pay, projects, queue, webhooks
from labelwright.services.items import add_items
from labelwright.store import Store
from labelwright.store.caches import Caches, RunLocks
from tests.conftest import SPAM_SCHEMA


@pytest.fixture
def two(db_url):
    """Two stores on one freshly migrated database (two server processes, as far as caches go)."""
    a = Store(db_url, pool_size=4)
    a.migrate()
    b = Store(db_url, pool_size=4)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def project(two):
    a, _ = two
    p = projects.create_project(a, SPAM_SCHEMA)
    add_items(a, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(6)])
    return p


def test_concurrent_expire_and_settings_change_both_land(two, project):
    """Each side reads the project as a request does, both wait until the other has read too, then both
    write. Before change_schema, the second write put back the schema the first had replaced."""
    a, b = two
    rounds = 15
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []
    seen: list[tuple] = []

    def expire_side():
        try:
            for i in range(rounds):
                p = projects.get_project(a, project.id)
                barrier.wait()
                projects.expire(a, p, at=2_000_000_000.0 + i)
                barrier.wait()  # both changes of round i are committed
                got = projects.get_project(a, project.id).schema
                seen.append((got.expires_at, got.instructions))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    def settings_side():
        try:
            for i in range(rounds):
                p = projects.get_project(b, project.id)
                barrier.wait()
                projects.update_settings(b, p, {"instructions": f"round {i}", "lease_seconds": 600 + i})
                barrier.wait()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=expire_side), threading.Thread(target=settings_side)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert seen == [(2_000_000_000.0 + i, f"round {i}") for i in range(rounds)]  # no round lost either change
    final = projects.get_project(a, project.id)
    assert final.schema.expires_at == 2_000_000_000.0 + rounds - 1
    assert final.schema.instructions == f"round {rounds - 1}"
    assert final.lease_seconds == 600 + rounds - 1 == final.schema.lease_seconds
    # every round's two changes are in the audit log
    with a.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE project_id = :p AND action IN "
                              "('project.expire', 'project.settings')"), {"p": project.id}).scalar_one()
    assert n == 2 * rounds


def test_expire_then_settings_with_a_stale_project_object_keeps_the_expiry(two, project):
    """The project object a request holds may be older than the row: the change applies to the row."""
    a, b = two
    stale = projects.get_project(b, project.id)
    projects.expire(a, projects.get_project(a, project.id), at=1_900_000_000.0)
    projects.update_settings(b, stale, {"instructions": "read the text"})
    got = projects.get_project(a, project.id)
    assert got.schema.expires_at == 1_900_000_000.0
    assert got.schema.instructions == "read the text"
    projects.set_overlap(b, stale, 3)
    got = projects.get_project(b, project.id)
    assert (got.overlap, got.schema.overlap, got.schema.expires_at) == (3, 3, 1_900_000_000.0)
    assert got.schema.instructions == "read the text"


def test_a_settings_change_through_one_store_is_seen_by_the_other_at_once(two, project):
    a, b = two
    assert projects.get_project(b, project.id).schema.instructions == ""  # b has it parsed and cached
    projects.update_settings(a, projects.get_project(a, project.id), {"instructions": "new words"})
    assert projects.get_project(b, project.id).schema.instructions == "new words"


def test_the_schema_cache_is_keyed_by_content_not_by_time(two, project):
    """Even a schema written with the very updated_at the cache last saw (two servers' clocks, or a restore)
    is parsed again: the cache compares the text itself."""
    a, b = two
    before = projects.get_project(b, project.id)
    projects.update_settings(a, before, {"instructions": "changed"})
    with a.write() as conn:
        conn.execute(text("UPDATE projects SET updated_at = :u WHERE id = :p"),
                     {"u": before.updated_at, "p": project.id})
    assert projects.get_project(b, project.id).schema.instructions == "changed"


def test_every_change_moves_updated_at_even_when_a_clock_is_behind(two, project):
    a, _ = two
    future = time.time() + 3600  # another server's clock ran ahead when it wrote
    with a.write() as conn:
        conn.execute(text("UPDATE projects SET updated_at = :u WHERE id = :p"), {"u": future, "p": project.id})
    changed = projects.update_settings(a, projects.get_project(a, project.id), {"instructions": "x"})
    assert changed.updated_at > future
    with a.write() as conn:
        events.touch(conn, project.id)
    assert projects.get_project(a, project.id).updated_at > changed.updated_at


def _wants(store, project_id):
    return events.wanted(store, ("annotation.submitted",), projects.get_project(store, project_id))


def test_a_webhook_made_through_one_store_is_wanted_by_the_other_at_once(two, project):
    a, b = two
    other = projects.create_project(a, {**SPAM_SCHEMA, "slug": "other"})
    assert not _wants(b, project.id) and not _wants(b, other.id)  # b caches "nobody listens"
    _secret, hook = webhooks.create_webhook(a, "https://example.com/hook", project, ["annotation.submitted"],
                                            allow_private=True)
    assert _wants(b, project.id)
    assert not _wants(b, other.id)  # a project's webhook is not another project's
    webhooks.set_active(a, hook["id"], False)
    assert not _wants(b, project.id)
    webhooks.set_active(a, hook["id"], True)
    assert _wants(b, project.id)
    webhooks.delete_webhook(a, hook["id"])
    assert not _wants(b, project.id)
    # a webhook for every project reaches every project's cache, including one created later
    webhooks.create_webhook(a, "https://example.com/all", None, "*", allow_private=True)
    assert _wants(b, project.id) and _wants(b, other.id)
    third = projects.create_project(a, {**SPAM_SCHEMA, "slug": "third"})
    assert _wants(b, third.id)


def test_a_webhook_for_other_kinds_is_not_wanted(two, project):
    a, b = two
    webhooks.create_webhook(a, "https://example.com/hook", project, ["review.decided"], allow_private=True)
    assert not _wants(b, project.id)
    assert events.wanted(b, ("review.decided",), projects.get_project(b, project.id))


def test_settling_at_once_from_two_stores_writes_each_entry_once(two, project, make_annotator):
    a, b = two
    schema = {**SPAM_SCHEMA, "slug": "paid", "pay": {"currency": "EUR", "reward_per_item": "0.10",
                                                       "auto_approve_hours": 0}}
    p = projects.create_project(a, schema)
    add_items(a, p, [{"id": "x", "text": "t"}])
    user, _tok = make_annotator("ann")  # on the fixture's store: a third Store on the same database
    access.set_member(a, p, "ann", "annotator")
    item = queue.claim_next(a, p, user)
    queue.submit(a, item["id"], user, {"spam": "ham"}, now=time.time() - 10)
    barrier = threading.Barrier(2, timeout=30)

    def settle(store):
        barrier.wait()
        pay.settle_if_stale(store, projects.get_project(store, p.id))

    threads = [threading.Thread(target=settle, args=(s,)) for s in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    with a.read() as conn:
        rows = conn.execute(text("SELECT kind, amount_minor FROM ledger WHERE project_id = :p"), {"p": p.id}).all()
    assert [tuple(r) for r in rows] == [("reward", 10)]
    assert p.id in a.caches.settled_at and p.id in b.caches.settled_at


def test_caches_belong_to_their_store(two, project):
    a, b = two
    projects.get_project(a, project.id)
    assert project.id in a.caches.schemas
    assert isinstance(a.caches, Caches) and a.caches is not b.caches
    assert not any(k.startswith("_schema") or k.startswith("_webhook") for k in vars(a))
    a.caches.clear()
    assert not a.caches.schemas


_HOLDER = """
import sys, time
from labelwright.store.caches import RunLocks
locks = RunLocks(sys.argv[1])
with locks.hold(int(sys.argv[2])) as got:
    print("held" if got else "busy", flush=True)
    sys.stdin.readline()
"""


def test_run_locks_hold_across_threads_and_processes(tmp_path):
    path = str(tmp_path / "lw.db-locks")
    locks = RunLocks(path)
    with locks.hold(7) as got:
        assert got
        with locks.hold(7) as again:
            assert not again  # the same annotator, another thread of this process
        with locks.hold(8) as other:
            assert other
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, path, "7"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with locks.hold(7) as got:
            assert not got  # held by the other process
        with locks.hold(9) as got:
            assert got
    finally:
        holder.communicate("\n", timeout=30)
    with locks.hold(7) as got:
        assert got  # the other process let go


def test_caches_for_a_sqlite_file_lock_beside_it(tmp_path):
    assert Caches.for_url(f"sqlite:///{tmp_path}/x.db").machine_runs.path == f"{tmp_path}/x.db-locks"
    assert Caches.for_url("sqlite:///:memory:").machine_runs.path is None
    assert Caches.for_url("postgresql+psycopg://u@h/db").machine_runs.path is None
