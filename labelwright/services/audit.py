"""The audit log: who changed what (roles, memberships, blocks, pauses, gold, tokens, invites).

Append-only: :func:`record` inserts a row in the caller's transaction, so a change and its record
commit together or not at all; nothing updates or deletes rows. Owners read it
(``GET /api/v1/audit``, ``labelwright audit``); a project's managers read their project's part.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, insert, select

from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t


def record(conn: Connection, actor, action: str, project_id: int | None = None, target: str | None = None,
           details: dict | None = None) -> None:
    """Append one entry. ``actor`` is a user (None: the command line, run by whoever holds the database)."""
    conn.execute(insert(t.audit_log).values(
        at=time.time(), actor_id=getattr(actor, "id", None), action=action, project_id=project_id, target=target,
        details=dumps(details) if details else None))


def entries(store: Store, project_id: int | None = None, limit: int = 200, before: int | None = None) -> list[dict]:
    """Newest first; ``project_id`` limits to one project; ``before`` pages back from an entry id."""
    log, u, pr = t.audit_log, t.users, t.projects
    stmt = (select(log.c.id, log.c.at, u.c.name.label("actor"), log.c.action, pr.c.slug, log.c.target, log.c.details)
            .select_from(log.outerjoin(u, u.c.id == log.c.actor_id).outerjoin(pr, pr.c.id == log.c.project_id))
            .order_by(log.c.id.desc()).limit(limit))
    if project_id is not None:
        stmt = stmt.where(log.c.project_id == project_id)
    if before is not None:
        stmt = stmt.where(log.c.id < before)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "at": r.at, "actor": r.actor or "(command line)", "action": r.action, "project": r.slug,
             "target": r.target, "details": loads(r.details) if r.details else None}
            for r in rows]
