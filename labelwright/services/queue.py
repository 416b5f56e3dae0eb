"""The labelling queue: claiming items under a lease, skipping, submitting and amending answers.

Invariants (checked by tests/test_concurrency.py against a real server):

* ``items.n_assigned`` = annotations + live leases for the item, and never exceeds the project's
  overlap; ``items.is_open`` is ``n_assigned < overlap`` and is what the queue index scans.
* An annotator holds at most one lease per item and answers an item at most once
  (primary key on ``leases (item_id, user_id)``, unique ``annotations (item_id, user_id)``).
* Claiming is one write transaction. On SQLite the single writer makes it atomic; on PostgreSQL the
  candidate row is locked with ``FOR UPDATE SKIP LOCKED`` (and, when skipping finds nothing, waited
  for, so a row that is only busy for a moment is not reported as "nothing left"), and claims by one
  user are serialised with a transaction-scoped advisory lock, so two requests of one annotator
  cannot take the same item.
* A lease that expires is reclaimed by the next claim in the project: the lease row is deleted and
  the item's slot handed back.
* A submission commits before it is acknowledged; on SQLite with ``synchronous=FULL`` that means it
  is on disk. (Through :meth:`Store.run` several submissions may share one commit; each caller is
  answered only after that commit.)

The two hot paths, :func:`claim_next` and :func:`submit`, run their SQL on the driver's cursor with as
few statements as each database allows (see ``docs/benchmarks.md`` for what that buys).
"""

from __future__ import annotations

import random
import time
import uuid
from typing import NamedTuple

from sqlalchemy import text

from labelwright.errors import Busy, Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import events as _events
from labelwright.services.projects import Project, get_project, project_from_row
from labelwright.services.users import User
from labelwright.store import dumps, loads
from labelwright.store.slots import open_flag, release_sql, want

# What an annotator may be given: not answered, leased or skipped by them, and they are not paused.
_PICK_TAIL = """
  AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.item_id = i.id AND l.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM paused_annotators pa WHERE pa.project_id = :p AND pa.user_id = :u)
"""
# Ordinary items in queue_rank order (0 for all unless the assistant orders the queue), then import order:
# the queue index (project_id, is_open, is_gold, queue_rank, id) gives them in that order, no sort.
_PICK = ("SELECT i.id FROM items i\nWHERE i.project_id = :p AND i.is_open = 1 AND i.is_gold = 0"
         "\n  AND i.n_assigned < " + want("i.target") + _PICK_TAIL + "ORDER BY i.queue_rank, i.id\nLIMIT 1\n")
# A gold item (each annotator answers each once; never served once the annotator's real work is done).
# The qualification test's items (the first :qs gold items) are not mixed in again afterwards.
_PICK_GOLD = ("SELECT i.id FROM items i\nWHERE i.project_id = :p AND i.is_gold = 1\n"
              "  AND i.id NOT IN (SELECT q.id FROM items q WHERE q.project_id = :p AND q.is_gold = 1 "
              "ORDER BY q.id LIMIT :qs)\n"
              "  AND EXISTS (SELECT 1 FROM (" + _PICK.strip() + ") AS work)" + _PICK_TAIL
              + "ORDER BY i.id\nLIMIT 1\n")
# An item wants COALESCE(target, overlap) answers: target is set for gold items and by adaptive redundancy.
_WANT = want()

# The claim in as few statements as each database allows. SQLite has one writer, so picking the item
# and taking its slot is one UPDATE. PostgreSQL locks the picked row (skipping rows other claims hold),
# takes the slot and writes the lease in one statement; the outer row says what was picked and what
# was taken, so a lost race (picked but not taken) is told apart from an empty queue.
def _take_sqlite(pick: str) -> str:
    return (f"UPDATE items SET n_assigned = n_assigned + 1, is_open = {open_flag('n_assigned + 1')} "
            f"WHERE id = ({pick}) AND n_assigned < {_WANT} RETURNING id, external_id, data")


_TAKE_SQLITE = {False: _take_sqlite(_PICK), True: _take_sqlite(_PICK_GOLD)}
_LIVE_LEASE = "SELECT 1 FROM leases WHERE user_id = :u AND project_id = :p AND expires_at > :now"


# PostgreSQL: the claim's statements go out in one round trip (see _claim_pg), so the pick must not
# run when the caller already holds a live lease (that item is renewed and handed back instead).
def _take_pg(pick: str, wait: str, unless_held: bool = True) -> str:
    head, _, tail = pick.rpartition("ORDER BY")
    guard = "AND NOT EXISTS (" + _LIVE_LEASE + ")\n" if unless_held else ""
    return ("WITH pick AS (" + head + guard + "ORDER BY" + tail
            + f" FOR UPDATE OF i {wait}), "
            "took AS (UPDATE items SET n_assigned = items.n_assigned + 1, "
            "is_open = " + open_flag("items.n_assigned + 1", "items.target") + " "
            "FROM pick WHERE items.id = pick.id AND items.n_assigned < COALESCE(items.target, :o) "
            "RETURNING items.id, items.external_id, items.data), "
            "leased AS (INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
            "SELECT id, :u, :p, :now, :e FROM took) "
            "SELECT took.id, took.external_id, took.data FROM pick LEFT JOIN took ON took.id = pick.id")


# First skip rows other transactions hold (claims do not queue behind each other); if that finds
# nothing, the rows left may only be busy for a moment (another annotator's submit is committing), so
# look again waiting for them: ``next`` says "nothing left" only when nothing is.
_TAKE_PG = {(gold, wait): _take_pg(_PICK_GOLD if gold else _PICK, "" if wait else "SKIP LOCKED")
            for gold in (False, True) for wait in (False, True)}
# A prefetch (see prefetch) takes a second item while the caller holds one, skipping rows others hold.
_PREFETCH_PG = {gold: _take_pg(_PICK_GOLD if gold else _PICK, "SKIP LOCKED", unless_held=False)
                for gold in (False, True)}
_PAUSED = "SELECT 1 FROM paused_annotators WHERE project_id = :p AND user_id = :u"
_PAUSED_MESSAGE = "the project owner has paused your work on this project"
_HELD = ("SELECT item_id FROM leases WHERE user_id = :u AND project_id = :p AND expires_at > :now "
         "ORDER BY created_at LIMIT 1")
# PostgreSQL: reclaim expired leases, and renew the caller's live lease if there is one, returning
# its item. (The statement's parts see the same snapshot: the expired leases it deletes are not the
# live one it renews.)
_RECLAIM_AND_RENEW_PG = (
    "WITH gone AS (DELETE FROM leases WHERE project_id = :p AND expires_at <= :now "
    "RETURNING item_id, user_id, created_at, expires_at), "
    "per_item AS (SELECT item_id, count(*) AS n FROM gone GROUP BY item_id), "
    "released AS (UPDATE items SET n_assigned = items.n_assigned - per_item.n, "
    "is_open = " + open_flag("items.n_assigned - per_item.n", "items.target") + " "
    "FROM per_item WHERE items.id = per_item.item_id), "
    "lapsed AS (INSERT INTO lapsed_leases (item_id, user_id, project_id, created_at, expires_at, lapsed_at) "
    "SELECT item_id, user_id, :p, created_at, expires_at, :now FROM gone ON CONFLICT (item_id, user_id) "
    "DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at, "
    "lapsed_at = excluded.lapsed_at), "
    "held AS (" + _HELD + "), "
    "renewed AS (UPDATE leases SET expires_at = :e FROM held "
    "WHERE leases.item_id = held.item_id AND leases.user_id = :u RETURNING leases.item_id) "
    "SELECT i.id, i.external_id, i.data FROM renewed JOIN items i ON i.id = renewed.item_id")
# A claim's lease is not worth a flush of the WAL: set_config(..., true) is SET LOCAL.
_LOCK_CLAIMER = "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(7420002, :u)"
_LOCK_USER = "SELECT pg_advisory_xact_lock(7420002, :u)"
_ANN_COLS = "id, item_id, user_id, answers, active_ms, revision, created_at, updated_at, idempotency_key"


def _item_payload(project: Project, row, expires_at: float | None) -> dict:
    return {"id": row[0], "external_id": row[1], "project": project.slug,
            "data": loads(row[2]), "lease_expires_at": expires_at}


_LAPSE_SQLITE = ("INSERT INTO lapsed_leases (item_id, user_id, project_id, created_at, expires_at, lapsed_at) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, user_id) DO UPDATE "
                 "SET created_at = excluded.created_at, expires_at = excluded.expires_at, "
                 "lapsed_at = excluded.lapsed_at")
_RELEASE_ONE = release_sql()
_RELEASE_EXPIRED_SQLITE = ("UPDATE items SET n_assigned = n_assigned - 1, is_open = "
                           + open_flag("n_assigned - 1", "target", "?") + " WHERE id = ?")


def _reclaim_expired_sqlite(store, cur, project_id: int, now: float, overlap: int) -> int:
    """Delete the project's expired leases, give their slots back, and remember them as lapsed (their
    holders may still submit while the item has room)."""
    cur.execute("DELETE FROM leases WHERE project_id = :p AND expires_at <= :now "
                "RETURNING item_id, user_id, created_at, expires_at", {"p": project_id, "now": now})
    gone = cur.fetchall()
    if gone:
        cur.executemany(_RELEASE_EXPIRED_SQLITE, [(overlap, g[0]) for g in gone])
        cur.executemany(_LAPSE_SQLITE, [(g[0], g[1], project_id, g[2], g[3], now) for g in gone])
    return len(gone)


def _release_slot(conn, item_id: int) -> None:
    conn.execute(text(_RELEASE_ONE), {"i": item_id})


_CLAIM_TRIES = 8  # lost races in a row before a claim gives up (503); each try is one round trip


def _claim_pg(store, params: dict, gold: bool):
    """The claim on PostgreSQL in one round trip: BEGIN, lock the caller, reclaim expired leases and
    renew the caller's live one, pick and take an item unless they hold one, COMMIT. Claims commit
    asynchronously (``synchronous_commit`` off: a crash may forget a lease, never half of one);
    submissions commit synchronously. ``gold``: take a gold item if the caller has one left."""
    wait = False
    for _ in range(_CLAIM_TRIES):
        with store.pipeline() as tx:
            tx.execute(_LOCK_CLAIMER, params)
            renewed = tx.execute(_RECLAIM_AND_RENEW_PG, params)
            taken = tx.commit_with(_TAKE_PG[gold, wait], params)
            row = renewed.fetchone()
            if row is not None:
                return row
            row = taken.fetchone()
        if row is None:
            if gold:  # no gold item left for them (or no real work): an ordinary item instead
                gold = wait = False
                continue
            if wait:
                return None
            wait = True  # nothing free that nobody holds: look again, waiting for busy rows
        elif row[0] is not None:
            return row
        # else: picked a row whose last slot another claim took meanwhile; look again
    raise Busy("the queue is busy; please ask for the next item again")


def claim_next(store, project: Project, user: User, now: float | None = None) -> dict | None:
    """Give ``user`` the next item of ``project`` under a lease, or None when nothing is left for them.

    If the user already holds a live lease in this project, that item is returned again (its lease
    renewed), so reloading the page or retrying a request never takes a second item. With the
    project's ``gold.rate`` chance the item is a gold one the user has not answered yet (while they have
    ordinary work left); it looks like any other item. A paused annotator gets :class:`Forbidden`.
    Items come in ``queue_rank`` order, then import order (ranks are 0 unless the assistant orders the
    queue). With assist suggestions on, the item carries ``suggestion``
    (:mod:`labelwright.services.suggestions`). Its ``data`` holds only the fields the schema sends
    (:meth:`labelwright.schema.ProjectSchema.sent_data`: the display fields unless ``send_fields`` says more).
    """
    item = _claim(store, project, user, now)
    if item is not None:
        item["data"] = project.schema.sent_data(item["data"])
    # No suggestion in a qualification test: it measures the person, and its items are gold.
    if item is not None and project.schema.assist is not None and project.schema.assist.suggestions \
            and item.get("stage") != "qualification":
        from labelwright.services import suggestions

        item["suggestion"] = suggestions.for_item(store, project, user.id, item["id"])
    return item


def _claim(store, project: Project, user: User, now: float | None) -> dict | None:
    now = now or time.time()
    schema = project.schema
    if schema.expires_at is not None and now >= schema.expires_at:
        return None  # the project has expired: no new work
    if schema.qualification is not None:
        from labelwright.services import qualification

        if not qualification.passed(store, project, user):
            return qualification.next_item(store, project, user, now)  # None once the test is passed
    expires = now + project.lease_seconds
    params = {"u": user.id, "p": project.id, "now": now, "e": expires, "o": project.overlap,
              "qs": schema.qualification.size if schema.qualification is not None else 0}
    rate = schema.gold.rate
    gold = rate > 0 and (rate >= 1 or random.random() < rate)
    if store.dialect == "postgresql":
        row = _claim_pg(store, params, gold)
        if row is None:
            _refuse_if_paused(store, params)
            return None
        return _item_payload(project, row, expires)
    with store.write() as conn:
        cur = store.cursor(conn)
        cur.execute(_HELD, params)
        held = cur.fetchone()
        if held is not None:
            params["i"] = held[0]
            cur.execute("UPDATE leases SET expires_at = :e WHERE item_id = :i AND user_id = :u", params)
            cur.execute("SELECT id, external_id, data FROM items WHERE id = :i", params)
            row = cur.fetchone()
        else:
            _reclaim_expired_sqlite(store, cur, params["p"], now, project.overlap)
            row = None
            if gold:
                cur.execute(_TAKE_SQLITE[True], params)
                row = cur.fetchone()
            if row is None:
                cur.execute(_TAKE_SQLITE[False], params)
                row = cur.fetchone()
            if row is None:
                _refuse_if_paused(store, params, cur)
                return None
            params["i"] = row[0]
            cur.execute("INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                        "VALUES (:i, :u, :p, :now, :e)", params)
    return _item_payload(project, row, expires)


def _refuse_if_paused(store, params: dict, cur=None) -> None:
    if cur is not None:
        cur.execute(_PAUSED, params)
        paused = cur.fetchone()
    else:
        paused = store.lookup(_PAUSED, params)
    if paused is not None:
        raise Forbidden(_PAUSED_MESSAGE)


def _item_and_project(store, conn, item_id: int) -> tuple:
    row = conn.execute(text("SELECT id, project_id, external_id, data FROM items WHERE id = :i"),
                       {"i": item_id}).first()
    if row is None:
        raise NotFound(f"no item {item_id}")
    return row, get_project(store, row.project_id, conn=conn)


def project_of_item(store, item_id: int) -> Project:
    with store.read() as conn:
        return _item_and_project(store, conn, item_id)[1]


def release(store, item_id: int, user: User) -> bool:
    """Give back a lease without answering (the annotator may get the item again later)."""
    with store.write() as conn:
        gone = conn.execute(text("DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
                            {"i": item_id, "u": user.id}).first()
        if gone:
            _release_slot(conn, item_id)
    return gone is not None


# ---- prefetch: the labelling page's next item, claimed while the annotator works on this one -------

PREFETCH_SECONDS = 120  # a prefetched item's lease; the page renews it while it is open
PREFETCH_MIN_OPEN = 3  # no prefetch near the end of the queue: the last items go to whoever asks first
_MY_LEASES = ("SELECT item_id, created_at, expires_at FROM leases WHERE user_id = :u AND project_id = :p "
              "ORDER BY created_at, item_id")
_OPEN_ENOUGH = ("SELECT count(*) FROM (SELECT 1 FROM items WHERE project_id = :p AND is_open = 1 "
                "AND is_gold = 0 LIMIT :m) AS open_items")


def prefetch(store, project: Project, user: User, current_item_id: int, now: float | None = None) -> dict | None:
    """Claim the item ``user`` will see after ``current_item_id``, whose live lease they hold, so the
    labelling page can show it the moment they submit. Returns that item (as :func:`claim_next` does), or
    None: no current lease, a qualification test under way, the project expired, or fewer than
    ``PREFETCH_MIN_OPEN`` open items (near the end the last items are left to whoever asks first).

    The prefetched lease is short (``PREFETCH_SECONDS``, at most the project's lease) so a page that goes
    away without saying so (a crash, a lost beacon) holds it only briefly; asking again renews it and
    returns the same item. A user holds at most one prefetched item. It becomes their current item with
    :func:`promote`, or goes back with :func:`release`. The page shows the user's oldest lease, so a
    prefetched lease is always created after the current one.
    """
    now = now or time.time()
    schema = project.schema
    if schema.expires_at is not None and now >= schema.expires_at:
        return None
    if schema.qualification is not None:
        from labelwright.services import qualification

        if not qualification.passed(store, project, user):
            return None
    short = min(PREFETCH_SECONDS, project.lease_seconds)
    params = {"u": user.id, "p": project.id, "now": now, "o": project.overlap, "m": PREFETCH_MIN_OPEN,
              "qs": schema.qualification.size if schema.qualification is not None else 0}
    rate = schema.gold.rate
    gold = rate > 0 and (rate >= 1 or random.random() < rate)
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text(_LOCK_USER), params)
        held = conn.execute(text(_MY_LEASES), params).all()
        current = next((h for h in held if h.item_id == current_item_id and h.expires_at > now), None)
        if current is None:
            return None
        if any(h.created_at < current.created_at for h in held if h.item_id != current_item_id):
            return None  # an older item is theirs to see first (a save still on its way): ask again later
        others = [h for h in held if h.item_id != current_item_id]
        if others:  # the one already prefetched: renew it
            params.update(i=others[0].item_id, e=now + short)
            conn.execute(text("UPDATE leases SET expires_at = :e WHERE item_id = :i AND user_id = :u"), params)
            row = conn.execute(text("SELECT id, external_id, data FROM items WHERE id = :i"), params).first()
        else:
            if conn.execute(text(_OPEN_ENOUGH), params).scalar_one() < PREFETCH_MIN_OPEN:
                return None
            # created after the current lease, so that one stays the page's item (see claim_next's _HELD)
            params.update(now=max(now, current.created_at + 0.001), e=now + short)
            row = _take_extra(store, conn, params, gold)
            if row is None:
                return None
    item = _item_payload(project, tuple(row), params["e"])
    item["data"] = schema.sent_data(item["data"])
    if schema.assist is not None and schema.assist.suggestions:
        from labelwright.services import suggestions

        item["suggestion"] = suggestions.for_item(store, project, user.id, item["id"])
    return item


def _take_extra(store, conn, params: dict, gold: bool):
    """Take one more item for the caller under the lease ``params["e"]`` (a gold one first if ``gold``)."""
    if store.dialect == "postgresql":
        for g in ((True, False) if gold else (False,)):
            row = conn.execute(text(_PREFETCH_PG[g]), params).first()
            if row is not None and row[0] is not None:
                return row
        return None
    cur = store.cursor(conn)
    _reclaim_expired_sqlite(store, cur, params["p"], params["now"], params["o"])
    row = None
    for g in ((True, False) if gold else (False,)):
        cur.execute(_TAKE_SQLITE[g], params)
        row = cur.fetchone()
        if row is not None:
            break
    if row is None:
        return None
    params["i"] = row[0]
    cur.execute("INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                "VALUES (:i, :u, :p, :now, :e)", params)
    return row


def promote(store, project: Project, user: User, item_id: int, now: float | None = None) -> float | None:
    """Make the user's prefetched item their current one: its lease starts now and runs the project's
    full lease time (so the time bound on its answer counts from when they saw it). Returns the new
    expiry, or None when they no longer hold it (it lapsed and was reclaimed: the page starts over)."""
    now = now or time.time()
    expires = now + project.lease_seconds
    with store.write() as conn:
        row = conn.execute(text(
            "UPDATE leases SET created_at = :now, expires_at = :e "
            "WHERE item_id = :i AND user_id = :u AND project_id = :p RETURNING item_id"),
            {"now": now, "e": expires, "i": item_id, "u": user.id, "p": project.id}).first()
    return expires if row is not None else None


def release_prefetched(store, project: Project, user: User, item_id: int) -> bool:
    """Give back a prefetched lease the page will not show (it went away): only one the user holds beside
    an older lease in the project, so a late request can never release the item on their screen."""
    with store.write() as conn:
        gone = conn.execute(text(
            "DELETE FROM leases WHERE item_id = :i AND user_id = :u AND project_id = :p AND EXISTS ("
            "SELECT 1 FROM leases o WHERE o.user_id = :u AND o.project_id = :p AND o.item_id <> :i "
            "AND o.created_at < leases.created_at) RETURNING item_id"),
            {"i": item_id, "u": user.id, "p": project.id}).first()
        if gone:
            _release_slot(conn, item_id)
    return gone is not None


def skip(store, item_id: int, user: User, now: float | None = None) -> None:
    """The annotator passes on this item: release any lease and never offer it to them again."""
    from labelwright.services.access import require

    now = now or time.time()
    with store.write() as conn:
        row, project = _item_and_project(store, conn, item_id)
        require(store, user, project, missing=f"no item {item_id}")
        gone = conn.execute(text("DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
                            {"i": item_id, "u": user.id}).first()
        if gone:
            _release_slot(conn, item_id)
        conn.execute(text(
            "INSERT INTO skips (item_id, user_id, project_id, created_at) VALUES (:i, :u, :p, :now) "
            "ON CONFLICT (item_id, user_id) DO NOTHING"),
            {"i": item_id, "u": user.id, "p": project.id, "now": now})


def _annotation_dict(row, user_name: str | None = None) -> dict:
    out = {"id": row.id, "item_id": row.item_id, "answers": loads(row.answers), "active_ms": row.active_ms,
           "revision": row.revision, "created_at": row.created_at, "updated_at": row.updated_at}
    if user_name is not None:
        out["annotator"] = user_name
    return out




_SUBMIT_CHECK = (
    "SELECT " + _ANN_COLS + " FROM annotations WHERE user_id = :u AND idempotency_key = :k "
    "UNION ALL SELECT " + _ANN_COLS + " FROM annotations WHERE item_id = :i AND user_id = :u")
_ITEM_PROJECT = ("SELECT p.id, p.slug, p.name, p.schema, p.overlap, p.lease_seconds, p.created_at, p.updated_at, "
                 "i.is_gold, EXISTS (SELECT 1 FROM paused_annotators pa WHERE pa.project_id = p.id "
                 "AND pa.user_id = :u), (SELECT m.status FROM memberships m WHERE m.project_id = p.id "
                 "AND m.user_id = :u) FROM items i JOIN projects p ON p.id = i.project_id WHERE i.id = :i")
# Count the answer against the item: a submission under the caller's lease uses the slot the lease
# held; one without a lease (it expired and was reclaimed) must find a free slot, or nothing is saved.
_COUNT_SQLITE = (
    "UPDATE items SET n_done = n_done + 1, n_assigned = n_assigned + :take, "
    f"is_open = {open_flag('n_assigned + :take')} "
    f"WHERE id = :i AND (:take = 0 OR n_assigned < {_WANT}) RETURNING n_done, {_WANT}")
_INSERT_ANNOTATION = (
    "INSERT INTO annotations (item_id, project_id, user_id, answers, active_ms, idempotency_key, "
    "revision, created_at, updated_at, reported_ms, bound_ms) ")
# PostgreSQL: release the lease, drop a skip, count the answer and store it in one statement. Its row:
# (annotation id, answers so far, answers wanted, lease start, active ms kept); the first is NULL when
# nothing was saved, the lease start NULL when the item was never handed to the caller.
_SUBMIT_PG_RESULT = ("SELECT ins.id, counted.n_done, counted.want, take.started, counted.ms "
                     "FROM take LEFT JOIN counted ON true LEFT JOIN ins ON true")
# The item must have been handed to the caller: their lease (live, or expired but not yet reclaimed), or
# else their lapsed lease while the item has room. The lease's life bounds the active time claimed.
_SUBMIT_PG = (
    "WITH gone AS (DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING created_at, expires_at), "
    "lapsed AS (DELETE FROM lapsed_leases WHERE item_id = :i AND user_id = :u "
    "AND NOT EXISTS (SELECT 1 FROM gone) RETURNING created_at, expires_at), "
    "lease AS (SELECT 0 AS n, created_at, expires_at FROM gone UNION ALL "
    "SELECT 1, created_at, expires_at FROM lapsed), "
    "take AS (SELECT max(n) AS n, max(created_at) AS started, max(expires_at) AS ends FROM lease), "
    "held AS (SELECT n, LEAST(CAST(:maxms AS bigint), GREATEST(0, floor((LEAST(:now, ends) - started) * 1000)))"
    "::bigint AS bound FROM take WHERE started IS NOT NULL), "
    "counted AS (UPDATE items SET n_done = n_done + 1, n_assigned = n_assigned + held.n, "
    "is_open = " + open_flag("items.n_assigned + held.n", "items.target") + " "
    "FROM held WHERE items.id = :i AND (held.n = 0 OR items.n_assigned < COALESCE(items.target, :o)) "
    "RETURNING items.id, items.n_done, COALESCE(items.target, :o) AS want, held.bound, "
    "LEAST(CAST(:ms AS bigint), held.bound) AS ms), "
    "unskip AS (DELETE FROM skips USING counted WHERE skips.item_id = counted.id AND skips.user_id = :u), "
    "ins AS (" + _INSERT_ANNOTATION + "SELECT id, :p, :u, :a, ms, :k, 1, :now, :now, :ms, bound FROM counted "
    "RETURNING id), "
    # the events of the submission, in its transaction (stored only when a webhook wants them)
    "ev1 AS (INSERT INTO events (at, kind, project_id, payload) "
    "SELECT :now, 'annotation.submitted', :p, jsonb_set(CAST(:d1 AS jsonb), '{annotation_id}', to_jsonb(ins.id))::text "
    "FROM ins WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.active = 1 AND (w.project_id IS NULL OR w.project_id = :p) "
    "AND (w.kinds = '*' OR strpos(w.kinds, '\"annotation.submitted\"') > 0)) RETURNING id), "
    "ev2 AS (INSERT INTO events (at, kind, project_id, payload) SELECT :now, 'item.completed', :p, :d2 "
    "FROM counted WHERE :complete_here AND counted.n_done >= counted.want "
    "AND EXISTS (SELECT 1 FROM webhooks w WHERE w.active = 1 AND (w.project_id IS NULL OR w.project_id = :p) "
    "AND (w.kinds = '*' OR strpos(w.kinds, '\"item.completed\"') > 0)) RETURNING id, kind), "
    "ev3 AS (INSERT INTO events (at, kind, project_id, payload) SELECT :now, 'project.completed', :p, :d3 "
    "FROM counted WHERE :complete_here AND counted.n_done >= counted.want AND {done} "
    "AND EXISTS (SELECT 1 FROM webhooks w WHERE w.active = 1 AND (w.project_id IS NULL OR w.project_id = :p) "
    "AND (w.kinds = '*' OR strpos(w.kinds, '\"project.completed\"') > 0)) RETURNING id, kind), "
    "dl AS (INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
    "SELECT w.id, e.id, 'pending', 0, :now, :now FROM (SELECT id, 'annotation.submitted' AS kind FROM ev1 "
    "UNION ALL SELECT id, kind FROM ev2 UNION ALL SELECT id, kind FROM ev3) e JOIN webhooks w ON w.active = 1 "
    "AND (w.project_id IS NULL OR w.project_id = :p) AND (w.kinds = '*' OR strpos(w.kinds, '\"' || e.kind || '\"') > 0)) "
    + _SUBMIT_PG_RESULT)
# The project is complete when, besides the item just completed, no ordinary item is open or leased.
_PROJECT_DONE = ("NOT EXISTS (SELECT 1 FROM items oi WHERE oi.project_id = :p AND oi.is_open = 1 AND oi.is_gold = 0 "
                 "AND oi.id <> :i) AND NOT EXISTS (SELECT 1 FROM leases ol JOIN items li ON li.id = ol.item_id "
                 "WHERE ol.project_id = :p AND li.is_gold = 0 AND ol.item_id <> :i)")
_SUBMIT_PG = _SUBMIT_PG.replace("{done}", _PROJECT_DONE)
# The same without the events, for when no webhook listens (see events.wanted): what most submissions run.
_SUBMIT_PG_QUIET = _SUBMIT_PG[:_SUBMIT_PG.index("ev1 AS (")].rstrip().rstrip(",") + " " + _SUBMIT_PG_RESULT
# In a project whose assistant shows suggestions, the annotation also records, in the same INSERT, what its
# author was shown: the item's prediction (NULL when it has none) and the arm (:sa, shown or hidden).
_SUGGESTED_COLS = ("reported_ms, bound_ms) ", "reported_ms, bound_ms, suggestion, suggestion_arm) ")
_SUGGESTED_VALUES = (", (SELECT pr.label FROM predictions pr WHERE pr.item_id = :i), "
                     "(SELECT CAST(:sa AS text) FROM predictions pr WHERE pr.item_id = :i)")
_PG_INS = "SELECT id, :p, :u, :a, ms, :k, 1, :now, :now, :ms, bound FROM counted"


def _suggested_pg(statement: str) -> str:
    return statement.replace(_INSERT_ANNOTATION, _INSERT_ANNOTATION.replace(*_SUGGESTED_COLS)).replace(
        _PG_INS, _PG_INS.replace("bound FROM counted", "bound" + _SUGGESTED_VALUES + " FROM counted"))


_SUBMIT_PG_BY = {(events, suggested): (_suggested_pg(s) if suggested else s)
                 for events, s in ((True, _SUBMIT_PG), (False, _SUBMIT_PG_QUIET)) for suggested in (False, True)}
_INSERT_SQLITE = {
    False: _INSERT_ANNOTATION + "VALUES (:i, :p, :u, :a, :kept, :k, 1, :now, :now, :ms, :bound) RETURNING id",
    True: _INSERT_ANNOTATION.replace(*_SUGGESTED_COLS) + "VALUES (:i, :p, :u, :a, :kept, :k, 1, :now, :now, :ms, "
          ":bound" + _SUGGESTED_VALUES + ") RETURNING id",
}
_LEASE_EXPIRED = ("your lease on this item expired and it has since been given to other "
                  "annotators; nothing was saved, please take the next item")
_NOT_HANDED = ("this item was not handed to you (ask for the next item first, and answer the item it "
               "gives you); nothing was saved")
MAX_ACTIVE_MS = 24 * 3600 * 1000  # no one save claims more active time than this


def _bound_ms(start: float, end: float) -> int:
    """The time from ``start`` to ``end`` in ms (never negative, at most a day): the most active time a
    save may claim for that stretch."""
    return min(max(0, int((end - start) * 1000)), MAX_ACTIVE_MS)


def _submit_checks(store, user: User, item_id: int, key: str, answers, earlier: list, prow) -> tuple:
    """``(project, clean answers, replay)`` from the rows a submission reads first; raises when it
    must not go on. ``replay`` is the earlier annotation made with the same idempotency key."""
    for row in earlier:
        if row[8] == key:
            if row[1] != item_id:
                raise Conflict("this idempotency key was already used for another item", field="idempotency_key")
            return None, None, _annotation_dict(_AnnRow(*row))
    if prow is None:
        raise NotFound(f"no item {item_id}")
    project = project_from_row(store, prow[:8])
    if prow[10] != "active" and not user.is_owner:
        raise NotFound(f"no item {item_id}")  # a non-member learns nothing of the item or its project
    if prow[9]:
        raise Forbidden(_PAUSED_MESSAGE)
    if project.schema.qualification is not None:
        from labelwright.services import qualification

        if not qualification.passed(store, project, user):
            raise Forbidden(f"pass the qualification test of project {project.slug!r} first")
    clean = project.schema.validate_answers(answers)
    if earlier:
        raise Conflict("you already answered this item; amend your annotation instead")
    return project, clean, None


_SUBMISSION_EVENTS = ("annotation.submitted", "item.completed", "project.completed")


def _event_params(project: Project, user: User, item_id: int, prow, clean: dict, ann_id: int | None = None) -> dict:
    """The payloads of the events a submission may raise (see labelwright.services.events). On
    PostgreSQL the annotation id is not known yet: the statement sets it (``jsonb_set``)."""
    return {"d1": dumps({"kind": "annotation.submitted", "project": project.slug, "item_id": item_id,
                         "annotation_id": ann_id, "annotator": user.name, "answers": clean}),
            "d2": dumps({"kind": "item.completed", "project": project.slug, "item_id": item_id}),
            "d3": dumps({"kind": "project.completed", "project": project.slug}),
            # with adaptive redundancy the decision after the answer says whether the item is complete
            "complete_here": project.schema.redundancy is None and not prow[8]}


def _emit_sqlite(cur, kind: str, project_id: int, payload: str, now: float) -> bool:
    """Record an event if a webhook listens (see labelwright.services.events); returns whether one did."""
    params = {"now": now, "k": kind, "p": project_id, "d": payload, "like": _events.like(kind)}
    row = cur.execute(_events.EVENT_SQL, params).fetchone()
    if row is not None:
        cur.execute(_events.DELIVERIES_SQL, {**params, "e": row[0]})
    return row is not None


def submit(store, item_id: int, user: User, answers, *, active_ms: int = 0,
           idempotency_key: str | None = None, now: float | None = None) -> tuple[dict, bool]:
    """Record the user's answers for an item. Returns ``(annotation, created)``.

    The item must have been handed to the user: they hold its lease, or held one that lapsed while the
    item still has room (else :class:`Conflict`, nothing saved). ``active_ms`` is what the client
    measured; the annotation keeps it as ``reported_ms`` and counts (``active_ms``: pay, rates, export)
    no more than the server saw the item held: from the lease's start to now or to its expiry, whichever
    came first (``bound_ms``; renewing the lease by asking for the next item again extends it).

    A retry with the same idempotency key returns the first annotation with ``created=False``. In a
    project with adaptive redundancy the item's target is then revised
    (:func:`labelwright.services.redundancy.decide`).
    """
    now = now or time.time()
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or active_ms < 0:
        raise ValidationError("active_ms must be a non-negative integer", field="active_ms")
    reported = active_ms = min(active_ms, MAX_ACTIVE_MS)
    key = idempotency_key or str(uuid.uuid4())
    if len(key) > 200:
        raise ValidationError("an idempotency key has at most 200 characters", field="idempotency_key")
    params = {"u": user.id, "i": item_id, "k": key, "ms": active_ms, "now": now, "maxms": MAX_ACTIVE_MS}
    if store.dialect == "postgresql":
        with store.pipeline() as tx:
            tx.execute(_LOCK_USER, params)
            check = tx.execute(_SUBMIT_CHECK, params)
            item = tx.execute(_ITEM_PROJECT, params)
            prow = item.fetchone()
            project, clean, replay = _submit_checks(store, user, item_id, key, answers, check.fetchall(), prow)
            if replay is not None:
                return replay, False
            params.update(p=project.id, o=project.overlap, a=dumps(clean))
            suggested = _suggested(project, user, params)
            events = _events.wanted(store, _SUBMISSION_EVENTS, project.id)
            if events:
                params.update(_event_params(project, user, item_id, prow, clean))
            got = tx.commit_with(_SUBMIT_PG_BY[events, suggested], params).fetchone()
        if got[0] is None:  # the statement changed nothing
            raise Conflict(_LEASE_EXPIRED if got[3] is not None else _NOT_HANDED)
        ann_id, active_ms = got[0], got[4]
    else:
        with store.write() as conn:
            cur = store.cursor(conn)
            earlier = cur.execute(_SUBMIT_CHECK, params).fetchall()
            prow = cur.execute(_ITEM_PROJECT, params).fetchone()
            project, clean, replay = _submit_checks(store, user, item_id, key, answers, earlier, prow)
            if replay is not None:
                return replay, False
            params.update(p=project.id, o=project.overlap, a=dumps(clean))
            held = cur.execute("DELETE FROM leases WHERE item_id = :i AND user_id = :u "
                               "RETURNING created_at, expires_at", params).fetchone()
            if held is None:
                held = cur.execute("DELETE FROM lapsed_leases WHERE item_id = :i AND user_id = :u "
                                   "RETURNING created_at, expires_at", params).fetchone()
                if held is None:
                    raise Conflict(_NOT_HANDED)
                params["take"] = 1
            else:
                params["take"] = 0
            params["bound"] = bound = _bound_ms(held[0], min(now, held[1]))
            params["kept"] = active_ms = min(reported, bound)
            counted = cur.execute(_COUNT_SQLITE, params).fetchone()
            if counted is None:
                raise Conflict(_LEASE_EXPIRED)
            cur.execute("DELETE FROM skips WHERE item_id = :i AND user_id = :u", params)
            cur.execute(_INSERT_SQLITE[_suggested(project, user, params)], params)
            ann_id = cur.fetchone()[0]
            if _events.wanted(store, _SUBMISSION_EVENTS, project.id):
                ev = _event_params(project, user, item_id, prow, clean, ann_id)
                _emit_sqlite(cur, "annotation.submitted", project.id, ev["d1"], now)
                if ev["complete_here"] and counted[0] >= counted[1]:
                    _emit_sqlite(cur, "item.completed", project.id, ev["d2"], now)
                    if cur.execute("SELECT " + _PROJECT_DONE, params).fetchone()[0]:
                        _emit_sqlite(cur, "project.completed", project.id, ev["d3"], now)
    if project.schema.redundancy is not None and not prow[8]:
        from labelwright.services.redundancy import decide

        decide(store, project, item_id)
    return {"id": ann_id, "item_id": item_id, "answers": clean, "active_ms": active_ms,
            "reported_ms": reported, "revision": 1, "created_at": now, "updated_at": now}, True


def _suggested(project: Project, user: User, params: dict) -> bool:
    """Whether the submission records what its author was suggested (setting ``:sa``, their arm)."""
    if project.schema.assist is None or not project.schema.assist.suggestions:
        return False
    from labelwright.services.suggestions import arm

    params["sa"] = arm(project, user.id)
    return True


class _AnnRow(NamedTuple):
    id: int
    item_id: int
    user_id: int
    answers: str
    active_ms: int
    revision: int
    created_at: float
    updated_at: float
    idempotency_key: str | None


def history(store, project: Project, user: User, limit: int | None = None) -> list[dict]:
    """The user's most recent annotations in the project, newest first (the ones they may amend)."""
    limit = project.schema.history_size if limit is None else min(limit, project.schema.history_size)
    if limit <= 0:
        return []
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.id, a.item_id, a.answers, a.active_ms, a.revision, a.created_at, a.updated_at, "
            "a.review_status, i.external_id, i.data FROM annotations a JOIN items i ON i.id = a.item_id "
            "WHERE a.user_id = :u AND a.project_id = :p ORDER BY a.id DESC LIMIT :n"),
            {"u": user.id, "p": project.id, "n": limit}).all()
    out = []
    for r in rows:
        d = _annotation_dict(r)
        d["external_id"] = r.external_id
        d["data"] = project.schema.sent_data(loads(r.data))  # what the labelling page showed, no more
        d["review_status"] = r.review_status
        d["amendable"] = r.review_status not in _FROZEN
        out.append(d)
    return out


def get_annotation(store, annotation_id: int, user: User) -> tuple[dict, Project]:
    with store.read() as conn:
        row = conn.execute(text(f"SELECT {_ANN_COLS}, project_id FROM annotations WHERE id = :a"),
                           {"a": annotation_id}).first()
        if row is None or (row.user_id != user.id and not user.is_owner):
            raise NotFound(f"no annotation {annotation_id}")
        project = get_project(store, row.project_id, conn=conn)
    return _annotation_dict(row), project


_FROZEN = {"accepted": "accepted", "fixed": "fixed by a reviewer", "rejected": "rejected"}


def amend(store, annotation_id: int, user: User, answers, *, active_ms: int = 0,
          now: float | None = None) -> dict:
    """Replace the answers of one of the user's recent annotations; the old version is kept.

    Reviewed work is frozen for its author: an annotation a reviewer accepted, fixed or rejected, or is
    checking right now (a live review lease), answers :class:`Conflict`. The active time an amend adds
    is at most the time since the annotation was last saved, and at most the project's lease time."""
    from labelwright.services.access import require

    now = now or time.time()
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or active_ms < 0:
        raise ValidationError("active_ms must be a non-negative integer", field="active_ms")
    with store.write() as conn:
        row = conn.execute(text(
            f"SELECT {_ANN_COLS}, project_id, review_status, reported_ms, bound_ms, "
            "EXISTS (SELECT 1 FROM review_leases rl WHERE rl.annotation_id = annotations.id "
            "AND rl.expires_at > :now) FROM annotations WHERE id = :a"),
            {"a": annotation_id, "now": now}).first()
        if row is None or row.user_id != user.id:
            raise NotFound(f"no annotation {annotation_id} of yours")
        project = get_project(store, row.project_id, conn=conn)
        require(store, user, project, missing=f"no annotation {annotation_id} of yours")
        if row.review_status in _FROZEN:
            raise Conflict(f"this answer was {_FROZEN[row.review_status]} in review and can no longer be "
                           "changed; ask the project's reviewers if it is wrong")
        if row[-1]:
            raise Conflict("a reviewer is checking this answer right now; it cannot be changed")
        recent = [r[0] for r in conn.execute(text(
            "SELECT id FROM annotations WHERE user_id = :u AND project_id = :p ORDER BY id DESC LIMIT :n"),
            {"u": user.id, "p": project.id, "n": max(project.schema.history_size, 0)})]
        if annotation_id not in recent:
            raise Forbidden(f"only your last {project.schema.history_size} answers in this project can be amended")
        clean = project.schema.validate_answers(answers)
        conn.execute(text(
            "INSERT INTO annotation_revisions (annotation_id, revision, answers, active_ms, replaced_at) "
            "VALUES (:a, :r, :ans, :ms, :now)"),
            {"a": annotation_id, "r": row.revision, "ans": row.answers, "ms": row.active_ms, "now": now})
        reported = min(active_ms, MAX_ACTIVE_MS)
        bound = min(_bound_ms(row.updated_at, now), project.lease_seconds * 1000)
        total_ms = row.active_ms + min(reported, bound)
        changed = conn.execute(text(
            "UPDATE annotations SET answers = :ans, active_ms = :ms, reported_ms = reported_ms + :rep, "
            "bound_ms = bound_ms + :bound, revision = revision + 1, updated_at = :now "
            "WHERE id = :a AND revision = :r AND review_status = 'pending'"),
            {"ans": dumps(clean), "ms": total_ms, "rep": reported, "bound": bound, "now": now,
             "a": annotation_id, "r": row.revision}).rowcount
        if changed != 1:  # a reviewer decided, or another amend won, since the row was read
            raise Conflict("this answer changed or was reviewed meanwhile; reload it and try again")
    return {"id": annotation_id, "item_id": row.item_id, "answers": clean, "active_ms": total_ms,
            "reported_ms": row.reported_ms + reported, "revision": row.revision + 1,
            "created_at": row.created_at, "updated_at": now}


_LEFT = ("SELECT i.is_gold, count(*) FROM items i WHERE i.project_id = :p "
         "AND i.n_done < COALESCE(i.target, :o) "
         "AND i.id NOT IN (SELECT q.id FROM items q WHERE q.project_id = :p AND q.is_gold = 1 ORDER BY q.id LIMIT :qs) "
         "AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = :u) "
         "AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u) GROUP BY i.is_gold")


def counts_for_user(store, project: Project, user: User) -> dict:
    """What this annotator has done in the project and how many items are still open to them.

    ``left`` counts the gold items they have not answered too (while they have ordinary work left, as
    the queue serves them), so answering a gold item lowers it exactly as answering any item does: the
    count never tells which of their items were gold."""
    qs = project.schema.qualification.size if project.schema.qualification is not None else 0
    with store.read() as conn:
        done = conn.execute(text("SELECT count(*) FROM annotations WHERE user_id = :u AND project_id = :p"),
                            {"u": user.id, "p": project.id}).scalar_one()
        left = dict(conn.execute(text(_LEFT), {"p": project.id, "o": project.overlap, "u": user.id,
                                               "qs": qs}).all())
    ordinary = int(left.get(0, 0))
    return {"done": int(done), "left": ordinary + int(left.get(1, 0)) if ordinary else 0}
