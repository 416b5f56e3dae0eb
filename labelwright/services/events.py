"""Events: what happened, written in the same transaction as the change (an outbox).

:func:`emit` inserts the event and one pending delivery per active webhook that wants it; the webhook
worker (:mod:`labelwright.services.webhooks`) sends them later, outside any request. Kinds:

================================  ==========================================================
``annotation.submitted``          an annotator submitted answers (payload: item, annotator, answers)
``item.completed``                an item has all the answers it wants
``review.decided``                a reviewer accepted, fixed or rejected a submission
``qualification.passed``          an annotator passed a project's qualification test
``project.completed``             every item of a project is complete
================================  ==========================================================
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, text

from labelwright.services.projects import NEWER_UPDATED_AT, Project
from labelwright.store import Store, dumps
from labelwright.store.listeners import listening, of_project, wants

KINDS = ("annotation.submitted", "item.completed", "review.decided", "qualification.passed", "project.completed")


_LISTENERS = "FROM webhooks w WHERE " + listening("CAST(:k AS text)")


# The same, as raw SQL for the submission's hot path (``:name`` parameters: k kind, p project, d payload,
# now). SQLite: EVENT_SQL then, when it returned an id, DELIVERIES_SQL with :e.
EVENT_SQL = ("INSERT INTO events (at, kind, project_id, payload) SELECT :now, :k, :p, :d "
             f"WHERE EXISTS (SELECT 1 {_LISTENERS}) RETURNING id")
DELIVERIES_SQL = ("INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
                  f"SELECT w.id, :e, 'pending', 0, :now, :now {_LISTENERS}")


def wanted(store: Store, kinds: tuple[str, ...], project: Project) -> bool:
    """Whether any active webhook wants any of ``kinds`` events of ``project``, from this process's list of
    webhooks (:attr:`Caches.listeners <labelwright.store.caches.Caches>`), read again whenever the project's
    ``updated_at`` differs from the one it was read at. Every webhook change moves that (:func:`touch`) in its
    transaction, and the submission path reads the project row in its own: a webhook made through any server
    process gets the events of every submission that commits after it. A server with no webhooks pays one
    dictionary look-up per submission."""
    cached = store.caches.listeners.get(project.id)
    if cached is None or cached[0] != project.updated_at:
        with store.read() as conn:
            rows = conn.execute(text("SELECT w.project_id, w.kinds FROM webhooks w WHERE " + of_project()),
                                {"p": project.id}).all()
        cached = (project.updated_at, [(p, k) for p, k in rows])
        store.caches.listeners[project.id] = cached
    return any(wants(k, kind) for _p, k in cached[1] for kind in kinds)


def touch(conn: Connection, project_id: int | None, now: float | None = None) -> None:
    """Move ``updated_at`` of the project (None: of every project) in the caller's transaction, which
    creates, changes or deletes a webhook of it: every server process reads its webhooks again (:func:`wanted`)."""
    where = "" if project_id is None else " WHERE id = :p"
    conn.execute(text(f"UPDATE projects SET updated_at = {NEWER_UPDATED_AT}{where}"),
                 {"now": now or time.time(), "p": project_id})


def emit(conn, kind: str, project_id: int | None, payload: dict, now: float | None = None) -> int | None:
    """Record one event in the caller's transaction and queue its deliveries; returns the event id.

    An event nobody listens to (no active webhook wants it) is not stored: the table is an outbox, not
    a history, and the statement that finds no listener is all a submission pays."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    now = now or time.time()
    event_id = conn.execute(text(
        "INSERT INTO events (at, kind, project_id, payload) SELECT :at, :k, :p, :d "
        f"WHERE EXISTS (SELECT 1 {_LISTENERS}) RETURNING id"),
        {"at": now, "k": kind, "p": project_id, "d": dumps({"kind": kind, **payload})}).scalar()
    if event_id is None:
        return None
    conn.execute(text(
        "INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
        f"SELECT w.id, :e, 'pending', 0, :now, :now {_LISTENERS}"),
        {"e": event_id, "now": now, "p": project_id, "k": kind})
    return event_id
