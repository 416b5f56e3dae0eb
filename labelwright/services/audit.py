"""The audit log: who changed what (roles, memberships, blocks, pauses, gold, tokens, invites).

Append-only: :func:`record` inserts a row in the caller's transaction, so a change and its record
commit together or not at all; nothing updates or deletes rows. Owners read it
(``GET /api/v1/audit``, ``labelwright audit``); a project's managers read their project's part.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from labelwright.store import dumps, loads


def record(conn, actor, action: str, project_id: int | None = None, target: str | None = None,
           details: dict | None = None) -> None:
    """Append one entry. ``actor`` is a user (None: the command line, run by whoever holds the database)."""
    conn.execute(text(
        "INSERT INTO audit_log (at, actor_id, action, project_id, target, details) "
        "VALUES (:at, :a, :act, :p, :t, :d)"),
        {"at": time.time(), "a": getattr(actor, "id", None), "act": action, "p": project_id, "t": target,
         "d": dumps(details) if details else None})


def entries(store, project_id: int | None = None, limit: int = 200, before: int | None = None) -> list[dict]:
    """Newest first; ``project_id`` limits to one project; ``before`` pages back from an entry id."""
    where, params = [], {"n": limit}
    if project_id is not None:
        where.append("l.project_id = :p")
        params["p"] = project_id
    if before is not None:
        where.append("l.id < :b")
        params["b"] = before
    sql = ("SELECT l.id, l.at, u.name, l.action, pr.slug, l.target, l.details FROM audit_log l "
           "LEFT JOIN users u ON u.id = l.actor_id LEFT JOIN projects pr ON pr.id = l.project_id "
           + ("WHERE " + " AND ".join(where) + " " if where else "") + "ORDER BY l.id DESC LIMIT :n")
    with store.read() as conn:
        rows = conn.execute(text(sql), params).all()
    return [{"id": i, "at": at, "actor": actor or "(command line)", "action": action, "project": slug,
             "target": target, "details": loads(details) if details else None}
            for i, at, actor, action, slug, target, details in rows]
