"""In-app messages from a project's managers to its annotators."""

from __future__ import annotations

import time

from sqlalchemy import exists, insert, or_, select
from sqlalchemy.orm import aliased

from labelwright.errors import NotFound, ValidationError
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t


def send(store: Store, project: Project, by, body: str, to: str | None = None) -> dict:
    """A message to one member (``to``) or to every member of the project."""
    body = (body or "").strip()
    if not body:
        raise ValidationError("a message needs some text", field="body")
    if len(body) > 10_000:
        raise ValidationError("a message has at most 10,000 characters", field="body")
    now = time.time()
    u, m = t.users, t.memberships
    with store.write() as conn:
        to_id = None
        if to is not None:
            # only an active member: a manager cannot reach (or learn the names of) people outside the project
            to_id = conn.execute(select(u.c.id).join(m, (m.c.user_id == u.c.id) & (m.c.project_id == project.id)
                                                     & (m.c.status == "active"))
                                 .where(u.c.name == to)).scalar()
            if to_id is None:
                raise NotFound(f"no member named {to!r} in project {project.slug!r}", field="to")
        mid = conn.execute(insert(t.messages).values(project_id=project.id, from_user=getattr(by, "id", None),
                                                     to_user=to_id, body=body, created_at=now)
                           .returning(t.messages.c.id)).scalar_one()
    return {"id": mid, "project": project.slug, "to": to, "body": body, "created_at": now}


def sent(store: Store, project: Project, limit: int = 100) -> list[dict]:
    """The project's messages, newest first: who sent each, to whom (None: every member), and the text."""
    msg, sender, recipient = t.messages, aliased(t.users), aliased(t.users)
    with store.read() as conn:
        rows = conn.execute(
            select(msg.c.id, sender.c.name.label("sender"), recipient.c.name.label("recipient"), msg.c.body,
                   msg.c.created_at)
            .outerjoin(sender, sender.c.id == msg.c.from_user).outerjoin(recipient, recipient.c.id == msg.c.to_user)
            .where(msg.c.project_id == project.id).order_by(msg.c.id.desc()).limit(limit)).all()
    return [{"id": r.id, "from": r.sender, "to": r.recipient, "body": r.body, "created_at": r.created_at}
            for r in rows]


def for_user(store: Store, user, limit: int = 50) -> list[dict]:
    """Messages to the user, or to every member of a project they belong to, newest first."""
    msg, p, sender, m = t.messages, t.projects, aliased(t.users), t.memberships
    member = exists().where(m.c.project_id == msg.c.project_id, m.c.user_id == user.id, m.c.status == "active")
    with store.read() as conn:
        rows = conn.execute(
            select(msg.c.id, p.c.slug, sender.c.name.label("sender"), msg.c.to_user, msg.c.body, msg.c.created_at)
            .join(p, p.c.id == msg.c.project_id).outerjoin(sender, sender.c.id == msg.c.from_user)
            .where(or_(msg.c.to_user == user.id, msg.c.to_user.is_(None) & member))
            .order_by(msg.c.id.desc()).limit(limit)).all()
    return [{"id": r.id, "project": r.slug, "from": r.sender, "to_you_only": r.to_user is not None, "body": r.body,
             "created_at": r.created_at} for r in rows]
