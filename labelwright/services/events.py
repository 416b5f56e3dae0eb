"""Events: what happened, written in the same transaction as the change (an outbox).

:func:`emit` inserts the event and one pending delivery per active webhook that wants it; the webhook
worker (:mod:`labelwright.services.webhooks`) sends them later, outside any request. Kinds:

================================  ==========================================================
``annotation.submitted``          an annotator submitted answers (payload: item, annotator, answers)
``item.completed``                an item has all the answers it wants
``review.decided``                a reviewer accepted, fixed or rejected a submission
``qualification.passed``          an annotator passed a project's qualification test
``project.completed``             every item of a project is complete
``annotator.paused``              an annotator was paused in a project (by a manager, or automatically)
``annotator.resumed``             a paused annotator was let work again
================================  ==========================================================
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    Text,
    exists,
    insert,
    literal,
    select,
    update,
)

from labelwright.services.projects import Project, newer_updated_at
from labelwright.store import Store, dumps
from labelwright.store import tables as t

# The submission's events on SQLite run on the driver's cursor, hand-written (labelwright.services.queue
# uses them as events.EVENT_SQL and events.DELIVERIES_SQL).
from labelwright.store.events_sql import DELIVERIES_SQL as DELIVERIES_SQL
from labelwright.store.events_sql import EVENT_SQL as EVENT_SQL
from labelwright.store.listeners import listening_expr, of_project_expr, wants

KINDS = ("annotation.submitted", "item.completed", "review.decided", "qualification.passed", "project.completed",
         "annotator.paused", "annotator.resumed")


def wanted(store: Store, kinds: tuple[str, ...], project: Project) -> bool:
    """Whether any active webhook wants any of ``kinds`` events of ``project``, from this process's list of
    webhooks (:attr:`Caches.listeners <labelwright.store.caches.Caches>`), read again whenever the project's
    ``updated_at`` differs from the one it was read at. Every webhook change moves that (:func:`touch`) in its
    transaction, and the submission path reads the project row in its own: a webhook made through any server
    process gets the events of every submission that commits after it. A server with no webhooks pays one
    dictionary look-up per submission."""
    cached = store.caches.listeners.get(project.id)
    if cached is None or cached[0] != project.updated_at:
        w = t.webhooks
        with store.read() as conn:
            rows = conn.execute(select(w.c.project_id, w.c.kinds).where(of_project_expr(project.id))).all()
        cached = (project.updated_at, [(r.project_id, r.kinds) for r in rows])
        store.caches.listeners[project.id] = cached
    return any(wants(k, kind) for _p, k in cached[1] for kind in kinds)


def touch(conn: Connection, project_id: int | None, now: float | None = None) -> None:
    """Move ``updated_at`` of the project (None: of every project) in the caller's transaction, which
    creates, changes or deletes a webhook of it: every server process reads its webhooks again (:func:`wanted`)."""
    p = t.projects
    change = update(p).values(updated_at=newer_updated_at(now or time.time()))
    conn.execute(change if project_id is None else change.where(p.c.id == project_id))


def emit(conn: Connection, kind: str, project_id: int | None, payload: dict, now: float | None = None) -> int | None:
    """Record one event in the caller's transaction and queue its deliveries; returns the event id.

    An event nobody listens to (no active webhook wants it) is not stored: the table is an outbox, not
    a history, and the statement that finds no listener is all a submission pays."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    now = now or time.time()
    e, d, w = t.events, t.deliveries, t.webhooks
    listens = listening_expr(kind, project_id)
    event_id = conn.execute(insert(e).from_select(
        ["at", "kind", "project_id", "payload"],
        select(literal(now, Float), literal(kind, Text), literal(project_id, BigInteger),
               literal(dumps({"kind": kind, **payload}), Text)).where(exists().where(listens)))
        .returning(e.c.id)).scalar()
    if event_id is None:
        return None
    conn.execute(insert(d).from_select(
        ["webhook_id", "event_id", "status", "attempts", "next_attempt_at", "created_at"],
        select(w.c.id, literal(event_id, BigInteger), literal("pending", Text), literal(0, Integer),
               literal(now, Float), literal(now, Float)).where(listens)))
    return event_id
