"""The labelling queue: claiming items under a lease, skipping, submitting and amending answers.

Invariants (checked by tests/services/test_concurrency.py against a real server):

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

from sqlalchemy import text

from labelwright.errors import Busy, Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import events as _events
from labelwright.services import qualification, redundancy, suggestions
from labelwright.services.access import require
from labelwright.services.projects import Project, get_project, project_from_row
from labelwright.services.users import User
from labelwright.store import Store, dumps, loads, retry_deadlocks
from labelwright.store import queue_sql as sql
from labelwright.store.queue_sql import (
    AnnotationRow,
    ClaimStateRow,
    CountedRow,
    ExpiredLeaseRow,
    ItemProjectRow,
    ItemRow,
    LeaseRow,
    SubmittedRow,
    fetch_all,
    fetch_one,
    fetch_value,
)
from labelwright.store.slots import release_sql

_PAUSED_MESSAGE = "your work on this project is paused; a project manager can resume it"


def _item_payload(project: Project, row: ItemRow, expires_at: float | None) -> dict:
    return {"id": row.id, "external_id": row.external_id, "project": project.slug,
            "data": loads(row.data), "lease_expires_at": expires_at}


_RELEASE_ONE = release_sql()


def _reclaim_expired_sqlite(cur, project_id: int, now: float, overlap: int) -> int:
    """Delete the project's expired leases, give their slots back, and remember them as lapsed (their
    holders may still submit while the item has room)."""
    cur.execute(sql.EXPIRED_SQLITE, {"p": project_id, "now": now})
    gone = fetch_all(cur, ExpiredLeaseRow)
    if gone:
        cur.executemany(sql.RELEASE_EXPIRED_SQLITE, [(overlap, g.item_id) for g in gone])
        cur.executemany(sql.LAPSE_SQLITE, [(g.item_id, g.user_id, project_id, g.created_at, g.expires_at, now)
                                           for g in gone])
    return len(gone)


def _release_slot(conn, item_id: int) -> None:
    conn.execute(text(_RELEASE_ONE), {"i": item_id})


_CLAIM_TRIES = 8  # lost races in a row before a claim gives up (503); each try is two round trips


def _claim_pg(store: Store, params: dict, gold: bool) -> ItemRow | None:
    """The claim on PostgreSQL in two round trips: BEGIN, lock the caller and read whether they hold a live
    lease and whether any lease of the project has expired; then renew the held lease, or reclaim expired
    leases (only when there are some) and pick and take an item, and COMMIT. Claims commit asynchronously
    (``synchronous_commit`` off: a crash may forget a lease, never half of one); submissions commit
    synchronously. ``gold``: take a gold item if the caller has one left, else an ordinary one in the same
    transaction (the ordinary take picks nothing once the gold take has leased an item: a caller holding a
    live lease is given no second item)."""
    wait = False
    for _ in range(_CLAIM_TRIES):
        with store.pipeline() as tx:
            state = fetch_one(tx.lock_user(params, durable=False, then=sql.CLAIM_STATE_PG), ClaimStateRow)
            assert state is not None  # the statement always has its one row
            if state.held is not None:  # the item they hold, its lease renewed (leases cascade with items)
                return fetch_one(tx.commit_with(sql.RENEW_PG, {**params, "i": state.held}), ItemRow)
            if state.expired:
                tx.execute(sql.RECLAIM_PG, params)
            golden = tx.execute(sql.TAKE_PG[True, wait], params) if gold else None
            taken = tx.commit_with(sql.TAKE_PG[False, wait], params)
            row = fetch_one(golden, ItemRow) if golden is not None else None
            if row is None or row.id is None:  # no gold item for them, or it was taken meanwhile
                row = fetch_one(taken, ItemRow)
        if row is None:
            if wait:
                return None
            wait = True  # nothing free that nobody holds: look again, waiting for busy rows
        elif row.id is not None:
            return row
        # else: picked a row whose last slot another claim took meanwhile; look again
    raise Busy("the queue is busy; please ask for the next item again")


def claim_next(store: Store, project: Project, user: User, now: float | None = None) -> dict | None:
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
        item["suggestion"] = suggestions.for_item(store, project, user.id, item["id"])
    return item


def _claim(store: Store, project: Project, user: User, now: float | None) -> dict | None:
    now = now or time.time()
    schema = project.schema
    if schema.expires_at is not None and now >= schema.expires_at:
        return None  # the project has expired: no new work
    if schema.qualification is not None:
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
        cur.execute(sql.HELD, params)
        held = fetch_value(cur)  # the item of the caller's live lease
        if held is not None:
            params["i"] = held
            cur.execute(sql.RENEW, params)
            cur.execute(sql.ITEM, params)
            row = fetch_one(cur, ItemRow)
            assert row is not None  # the lease's item: leases cascade with their items
        else:
            _reclaim_expired_sqlite(cur, project.id, now, project.overlap)
            row = None
            if gold:
                cur.execute(sql.TAKE_SQLITE[True], params)
                row = fetch_one(cur, ItemRow)
            if row is None:
                cur.execute(sql.TAKE_SQLITE[False], params)
                row = fetch_one(cur, ItemRow)
            if row is None:
                _refuse_if_paused(store, params, cur)
                return None
            params["i"] = row.id
            cur.execute(sql.INSERT_LEASE, params)
    return _item_payload(project, row, expires)


def _refuse_if_paused(store: Store, params: dict, cur=None) -> None:
    if cur is not None:
        cur.execute(sql.PAUSED, params)
        paused = cur.fetchone()
    else:
        paused = store.lookup(sql.PAUSED, params)
    if paused is not None:
        raise Forbidden(_PAUSED_MESSAGE + (f". Reason: {paused[0]}" if paused[0] else ""))


def _item_and_project(store: Store, conn, item_id: int) -> tuple:
    row = conn.execute(text("SELECT id, project_id, external_id, data FROM items WHERE id = :i"),
                       {"i": item_id}).first()
    if row is None:
        raise NotFound(f"no item {item_id}")
    return row, get_project(store, row.project_id, conn=conn)


def project_of_item(store: Store, item_id: int) -> Project:
    with store.read() as conn:
        return _item_and_project(store, conn, item_id)[1]


def release(store: Store, item_id: int, user: User) -> bool:
    """Give back a lease without answering (the annotator may get the item again later)."""
    def work():
        with store.write() as conn:
            gone = conn.execute(text("DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
                                {"i": item_id, "u": user.id}).first()
            if gone:
                _release_slot(conn, item_id)
        return gone is not None
    return retry_deadlocks(work)


# ---- prefetch: the labelling page's next item, claimed while the annotator works on this one -------

PREFETCH_SECONDS = 120  # a prefetched item's lease; the page renews it while it is open
PREFETCH_MIN_OPEN = 3  # no prefetch near the end of the queue: the last items go to whoever asks first
_MY_LEASES = ("SELECT item_id, created_at, expires_at FROM leases WHERE user_id = :u AND project_id = :p "
              "ORDER BY created_at, item_id")
_OPEN_ENOUGH = ("SELECT count(*) FROM (SELECT 1 FROM items WHERE project_id = :p AND is_open = 1 "
                "AND is_gold = 0 LIMIT :m) AS open_items")


def prefetch(store: Store, project: Project, user: User, current_item_id: int, now: float | None = None) -> dict | None:
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
        if not qualification.passed(store, project, user):
            return None
    short = min(PREFETCH_SECONDS, project.lease_seconds)
    params = {"u": user.id, "p": project.id, "now": now, "o": project.overlap, "m": PREFETCH_MIN_OPEN,
              "qs": schema.qualification.size if schema.qualification is not None else 0}
    rate = schema.gold.rate
    gold = rate > 0 and (rate >= 1 or random.random() < rate)
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text(sql.LOCK_USER), params)
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
            # created after the current lease, so that one stays the page's item (see claim_next's HELD)
            params.update(now=max(now, current.created_at + 0.001), e=now + short)
            row = _take_extra(store, conn, params, gold)
            if row is None:
                return None
    item = _item_payload(project, row, params["e"])
    item["data"] = schema.sent_data(item["data"])
    if schema.assist is not None and schema.assist.suggestions:
        item["suggestion"] = suggestions.for_item(store, project, user.id, item["id"])
    return item


def _take_extra(store: Store, conn, params: dict, gold: bool) -> ItemRow | None:
    """Take one more item for the caller under the lease ``params["e"]`` (a gold one first if ``gold``)."""
    cur = store.cursor(conn)
    row: ItemRow | None = None
    if store.dialect == "postgresql":
        for g in ((True, False) if gold else (False,)):
            cur.execute(store.sql(sql.PREFETCH_PG[g]), params)
            row = fetch_one(cur, ItemRow)
            if row is not None and row.id is not None:
                return row
        return None
    _reclaim_expired_sqlite(cur, params["p"], params["now"], params["o"])
    for g in ((True, False) if gold else (False,)):
        cur.execute(sql.TAKE_SQLITE[g], params)
        row = fetch_one(cur, ItemRow)
        if row is not None:
            break
    if row is None:
        return None
    params["i"] = row.id
    cur.execute(sql.INSERT_LEASE, params)
    return row


def promote(store: Store, project: Project, user: User, item_id: int, now: float | None = None) -> float | None:
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


def release_prefetched(store: Store, project: Project, user: User, item_id: int) -> bool:
    """Give back a prefetched lease the page will not show (it went away): only one the user holds beside
    an older lease in the project, so a late request can never release the item on their screen."""
    def work():
        with store.write() as conn:
            gone = conn.execute(text(
                "DELETE FROM leases WHERE item_id = :i AND user_id = :u AND project_id = :p AND EXISTS ("
                "SELECT 1 FROM leases o WHERE o.user_id = :u AND o.project_id = :p AND o.item_id <> :i "
                "AND o.created_at < leases.created_at) RETURNING item_id"),
                {"i": item_id, "u": user.id, "p": project.id}).first()
            if gone:
                _release_slot(conn, item_id)
        return gone is not None
    return retry_deadlocks(work)


def skip(store: Store, item_id: int, user: User, now: float | None = None) -> None:
    """The annotator passes on this item: release any lease and never offer it to them again."""
    now = now or time.time()

    def work() -> None:
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
    retry_deadlocks(work)


def _annotation_dict(row, user_name: str | None = None) -> dict:
    out = {"id": row.id, "item_id": row.item_id, "answers": loads(row.answers), "active_ms": row.active_ms,
           "reported_ms": row.reported_ms, "revision": row.revision, "created_at": row.created_at,
           "updated_at": row.updated_at}
    if user_name is not None:
        out["annotator"] = user_name
    return out




_LEASE_EXPIRED = ("your lease on this item expired and it has since been given to other "
                  "annotators; nothing was saved, please take the next item")
_NOT_HANDED = ("this item was not handed to you (ask for the next item first, and answer the item it "
               "gives you); nothing was saved")
MAX_ACTIVE_MS = 24 * 3600 * 1000  # no one save claims more active time than this


def _bound_ms(start: float, end: float) -> int:
    """The time from ``start`` to ``end`` in ms (never negative, at most a day): the most active time a
    save may claim for that stretch."""
    return min(max(0, int((end - start) * 1000)), MAX_ACTIVE_MS)


def _earlier(cur, params: dict, prow: ItemProjectRow | None) -> list[AnnotationRow]:
    """The caller's annotations of the item or with the submission's idempotency key: read only when the
    item's row says there are some (a replay, or a second answer), or when there is no such item (a key
    used before still gets its replay or its conflict)."""
    if prow is not None and not prow.earlier:
        return []
    return fetch_all(cur.execute(sql.SUBMIT_CHECK, params), AnnotationRow)


def _submit_checks(store: Store, user: User, item_id: int, key: str, answers, earlier: list[AnnotationRow],
                   prow: ItemProjectRow | None) -> tuple:
    """``(project, clean answers, replay)`` from the rows a submission reads first; raises when it
    must not go on. ``replay`` is the earlier annotation made with the same idempotency key."""
    for row in earlier:
        if row.idempotency_key == key:
            if row.item_id != item_id:
                raise Conflict("this idempotency key was already used for another item", field="idempotency_key")
            return None, None, _annotation_dict(row)
    if prow is None:
        raise NotFound(f"no item {item_id}")
    project = project_from_row(store, prow.project)
    if prow.membership != "active" and not user.is_owner:
        raise NotFound(f"no item {item_id}")  # a non-member learns nothing of the item or its project
    if prow.paused:
        _refuse_if_paused(store, {"p": project.id, "u": user.id})  # with the reason given
        raise Forbidden(_PAUSED_MESSAGE)  # resumed a moment ago: this submission was still refused
    if project.schema.qualification is not None:
        if not qualification.passed(store, project, user):
            raise Forbidden(f"pass the qualification test of project {project.slug!r} first")
    item = loads(prow.data) if project.schema.checks_items() else None  # read with the item's row
    clean = project.schema.validate_answers(answers, item)
    if earlier:
        raise Conflict("you already answered this item; amend your annotation instead")
    return project, clean, None


_SUBMISSION_EVENTS = ("annotation.submitted", "item.completed", "project.completed")


def _event_params(project: Project, user: User, item_id: int, prow: ItemProjectRow, clean: dict,
                  ann_id: int | None = None) -> dict:
    """The payloads of the events a submission may raise (see labelwright.services.events). On
    PostgreSQL the annotation id is not known yet: the statement sets it (``jsonb_set``)."""
    return {"d1": dumps({"kind": "annotation.submitted", "project": project.slug, "item_id": item_id,
                         "annotation_id": ann_id, "annotator": user.name, "answers": clean}),
            "d2": dumps({"kind": "item.completed", "project": project.slug, "item_id": item_id}),
            "d3": dumps({"kind": "project.completed", "project": project.slug}),
            # with adaptive redundancy the decision after the answer says whether the item is complete
            "complete_here": project.schema.redundancy is None and not prow.is_gold}


def _emit_sqlite(cur, kind: str, project_id: int, payload: str, now: float) -> bool:
    """Record an event if a webhook listens (see labelwright.services.events); returns whether one did."""
    params = {"now": now, "k": kind, "p": project_id, "d": payload}
    event_id = fetch_value(cur.execute(_events.EVENT_SQL, params))
    if event_id is not None:
        cur.execute(_events.DELIVERIES_SQL, {**params, "e": event_id})
    return event_id is not None


def submit(store: Store, item_id: int, user: User, answers, *, active_ms: int = 0,
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
            prow = fetch_one(tx.lock_user(params, then=sql.ITEM_PROJECT), ItemProjectRow)
            earlier = _earlier(tx, params, prow)
            project, clean, replay = _submit_checks(store, user, item_id, key, answers, earlier, prow)
            if replay is not None:
                return replay, False
            params.update(p=project.id, o=project.overlap, a=dumps(clean))
            suggested = _suggested(project, user, params)
            events = _events.wanted(store, _SUBMISSION_EVENTS, project)
            if events:
                params.update(_event_params(project, user, item_id, prow, clean))
            got = fetch_one(tx.commit_with(sql.SUBMIT_PG[events, suggested], params), SubmittedRow)
        assert got is not None  # the statement always has its one row
        if got.annotation_id is None:  # the statement changed nothing
            raise Conflict(_LEASE_EXPIRED if got.lease_started is not None else _NOT_HANDED)
        ann_id, active_ms = got.annotation_id, got.active_ms
    else:
        with store.write() as conn:
            cur = store.cursor(conn)
            prow = fetch_one(cur.execute(sql.ITEM_PROJECT, params), ItemProjectRow)
            earlier = _earlier(cur, params, prow)
            project, clean, replay = _submit_checks(store, user, item_id, key, answers, earlier, prow)
            if replay is not None:
                return replay, False
            params.update(p=project.id, o=project.overlap, a=dumps(clean))
            held = fetch_one(cur.execute(sql.DROP_LEASE, params), LeaseRow)
            if held is None:
                held = fetch_one(cur.execute(sql.DROP_LAPSED, params), LeaseRow)
                if held is None:
                    raise Conflict(_NOT_HANDED)
                params["take"] = 1
            else:
                params["take"] = 0
            params["bound"] = bound = _bound_ms(held.created_at, min(now, held.expires_at))
            params["kept"] = active_ms = min(reported, bound)
            counted = fetch_one(cur.execute(sql.COUNT_SQLITE, params), CountedRow)
            if counted is None:
                raise Conflict(_LEASE_EXPIRED)
            cur.execute(sql.UNSKIP, params)
            cur.execute(sql.INSERT_SQLITE[_suggested(project, user, params)], params)
            ann_id = fetch_value(cur)
            if _events.wanted(store, _SUBMISSION_EVENTS, project):
                ev = _event_params(project, user, item_id, prow, clean, ann_id)
                _emit_sqlite(cur, "annotation.submitted", project.id, ev["d1"], now)
                if ev["complete_here"] and counted.n_done >= counted.want:
                    _emit_sqlite(cur, "item.completed", project.id, ev["d2"], now)
                    if fetch_value(cur.execute("SELECT " + sql.PROJECT_DONE, params)):
                        _emit_sqlite(cur, "project.completed", project.id, ev["d3"], now)
    if project.schema.redundancy is not None and not prow.is_gold:
        redundancy.decide(store, project, item_id)
    return {"id": ann_id, "item_id": item_id, "answers": clean, "active_ms": active_ms,
            "reported_ms": reported, "revision": 1, "created_at": now, "updated_at": now}, True


def _suggested(project: Project, user: User, params: dict) -> bool:
    """Whether the submission records what its author was suggested (setting ``:sa``, their arm)."""
    if project.schema.assist is None or not project.schema.assist.suggestions:
        return False
    params["sa"] = suggestions.arm(project, user.id)
    return True


def history(store: Store, project: Project, user: User, limit: int | None = None) -> list[dict]:
    """The user's most recent annotations in the project, newest first (the ones they may amend)."""
    limit = project.schema.history_size if limit is None else min(limit, project.schema.history_size)
    if limit <= 0:
        return []
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.id, a.item_id, a.answers, a.active_ms, a.reported_ms, a.revision, a.created_at, a.updated_at, "
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


def get_annotation(store: Store, annotation_id: int, user: User) -> tuple[dict, Project]:
    with store.read() as conn:
        row = conn.execute(text(f"SELECT {sql.ANNOTATION_COLUMNS}, project_id FROM annotations WHERE id = :a"),
                           {"a": annotation_id}).first()
        if row is None or (row.user_id != user.id and not user.is_owner):
            raise NotFound(f"no annotation {annotation_id}")
        project = get_project(store, row.project_id, conn=conn)
    return _annotation_dict(row), project


_FROZEN = {"accepted": "accepted", "fixed": "fixed by a reviewer", "rejected": "rejected"}


def amend(store: Store, annotation_id: int, user: User, answers, *, active_ms: int = 0,
          now: float | None = None) -> dict:
    """Replace the answers of one of the user's recent annotations; the old version is kept.

    Reviewed work is frozen for its author: an annotation a reviewer accepted, fixed or rejected, or is
    checking right now (a live review lease), answers :class:`Conflict`. The active time an amend adds
    is at most the time since the annotation was last saved, and at most the project's lease time."""
    now = now or time.time()
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or active_ms < 0:
        raise ValidationError("active_ms must be a non-negative integer", field="active_ms")
    with store.write() as conn:
        row = conn.execute(text(
            f"SELECT {sql.ANNOTATION_COLUMNS}, project_id, review_status, bound_ms, "
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
        item = None
        if project.schema.checks_items():
            item = loads(conn.execute(text("SELECT data FROM items WHERE id = :i"), {"i": row.item_id}).scalar_one())
        clean = project.schema.validate_answers(answers, item)
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
         "AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u) "
         "AND (i.is_gold = 1 OR NOT EXISTS (SELECT 1 FROM weaker_half wh WHERE wh.project_id = :p "
         "AND wh.user_id = :u AND i.n_done >= wh.from_answers)) GROUP BY i.is_gold")


def counts_for_user(store: Store, project: Project, user: User) -> dict:
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
