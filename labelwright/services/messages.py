"""In-app messages from a project's managers to its annotators."""

from __future__ import annotations

import time

from sqlalchemy import text

from labelwright.errors import NotFound, ValidationError
from labelwright.services.projects import Project


def send(store, project: Project, by, body: str, to: str | None = None) -> dict:
    """A message to one member (``to``) or to every member of the project."""
    body = (body or "").strip()
    if not body:
        raise ValidationError("a message needs some text", field="body")
    if len(body) > 10_000:
        raise ValidationError("a message has at most 10,000 characters", field="body")
    now = time.time()
    with store.write() as conn:
        to_id = None
        if to is not None:
            # only an active member: a manager cannot reach (or learn the names of) people outside the project
            to_id = conn.execute(text(
                "SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id AND m.project_id = :p "
                "AND m.status = 'active' WHERE u.name = :n"), {"n": to, "p": project.id}).scalar()
            if to_id is None:
                raise NotFound(f"no member named {to!r} in project {project.slug!r}", field="to")
        mid = conn.execute(text(
            "INSERT INTO messages (project_id, from_user, to_user, body, created_at) VALUES (:p, :f, :t, :b, :now) "
            "RETURNING id"), {"p": project.id, "f": getattr(by, "id", None), "t": to_id, "b": body, "now": now}
        ).scalar_one()
    return {"id": mid, "project": project.slug, "to": to, "body": body, "created_at": now}


def sent(store, project: Project, limit: int = 100) -> list[dict]:
    """The project's messages, newest first: who sent each, to whom (None: every member), and the text."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT m.id, f.name, t.name, m.body, m.created_at FROM messages m "
            "LEFT JOIN users f ON f.id = m.from_user LEFT JOIN users t ON t.id = m.to_user "
            "WHERE m.project_id = :p ORDER BY m.id DESC LIMIT :n"), {"p": project.id, "n": limit}).all()
    return [{"id": r[0], "from": r[1], "to": r[2], "body": r[3], "created_at": r[4]} for r in rows]


def for_user(store, user, limit: int = 50) -> list[dict]:
    """Messages to the user, or to every member of a project they belong to, newest first."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT m.id, p.slug, f.name, m.to_user, m.body, m.created_at FROM messages m "
            "JOIN projects p ON p.id = m.project_id LEFT JOIN users f ON f.id = m.from_user "
            "WHERE m.to_user = :u OR (m.to_user IS NULL AND EXISTS (SELECT 1 FROM memberships ms "
            "WHERE ms.project_id = m.project_id AND ms.user_id = :u AND ms.status = 'active')) "
            "ORDER BY m.id DESC LIMIT :n"), {"u": user.id, "n": limit}).all()
    return [{"id": r[0], "project": r[1], "from": r[2], "to_you_only": r[3] is not None, "body": r[4],
             "created_at": r[5]} for r in rows]
