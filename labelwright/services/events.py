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

from sqlalchemy import text

from labelwright.store import dumps

KINDS = ("annotation.submitted", "item.completed", "review.decided", "qualification.passed", "project.completed")


_LISTENERS = ("FROM webhooks w WHERE w.active = 1 AND (w.project_id IS NULL OR w.project_id = :p) "
              "AND (w.kinds = '*' OR w.kinds LIKE :like)")


# The same, as raw SQL for the submission's hot path (``:name`` parameters: k kind, p project, d payload,
# now, like). SQLite: EVENT_SQL then, when it returned an id, DELIVERIES_SQL with :e.
EVENT_SQL = ("INSERT INTO events (at, kind, project_id, payload) SELECT :now, :k, :p, :d "
             f"WHERE EXISTS (SELECT 1 {_LISTENERS.replace(':like', ':like')}) RETURNING id")
DELIVERIES_SQL = ("INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
                  f"SELECT w.id, :e, 'pending', 0, :now, :now {_LISTENERS}")


LISTENERS_TTL = 2.0  # seconds a server process trusts its list of webhooks (see wanted())


def wanted(store, kinds: tuple[str, ...], project_id: int | None, now: float | None = None) -> bool:
    """Whether any active webhook wants any of ``kinds`` events of the project, from a per-process list refreshed
    every :data:`LISTENERS_TTL` seconds (and at once when this process changes a webhook, see
    :func:`forget`). The submission path asks this before it writes anything, so a server with no
    webhooks pays one dictionary look-up per submission. A webhook created in another server process is
    seen here within the TTL; events before that are not sent to it."""
    now = now or time.monotonic()
    cached = store.__dict__.get("_webhook_listeners")
    if cached is None or now - cached[0] > LISTENERS_TTL:
        with store.read() as conn:
            rows = conn.execute(text("SELECT project_id, kinds FROM webhooks WHERE active = 1")).all()
        cached = (now, [(p, k) for p, k in rows])
        store.__dict__["_webhook_listeners"] = cached
    return any((p is None or p == project_id) and (k == "*" or any(f'"{kind}"' in k for kind in kinds))
               for p, k in cached[1])


def forget(store) -> None:
    """Drop the cached list of webhooks (after this process created, changed or deleted one)."""
    store.__dict__.pop("_webhook_listeners", None)


def like(kind: str) -> str:
    return f'%"{kind}"%'


def emit(conn, kind: str, project_id: int | None, payload: dict, now: float | None = None) -> int | None:
    """Record one event in the caller's transaction and queue its deliveries; returns the event id.

    An event nobody listens to (no active webhook wants it) is not stored: the table is an outbox, not
    a history, and the statement that finds no listener is all a submission pays."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    now = now or time.time()
    like = f'%"{kind}"%'
    event_id = conn.execute(text(
        "INSERT INTO events (at, kind, project_id, payload) SELECT :at, :k, :p, :d "
        f"WHERE EXISTS (SELECT 1 {_LISTENERS}) RETURNING id"),
        {"at": now, "k": kind, "p": project_id, "d": dumps({"kind": kind, **payload}), "like": like}).scalar()
    if event_id is None:
        return None
    conn.execute(text(
        "INSERT INTO deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) "
        f"SELECT w.id, :e, 'pending', 0, :now, :now {_LISTENERS}"),
        {"e": event_id, "now": now, "p": project_id, "like": like})
    return event_id
