"""Invite links: a URL that lets someone create their own account, with a role, and join a project.

Owners invite to any role and project; managers invite reviewers and annotators to the projects they
manage. A link expires (``hours``), can be used ``max_uses`` times, and can be revoked. Only the SHA-256
of its secret is stored, like every other token.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import Row, Select, insert, select, update

from labelwright.errors import Forbidden, NotFound, Unauthorized, ValidationError
from labelwright.services import access, audit
from labelwright.services.projects import Project, get_project
from labelwright.services.users import User, _hash, create_user, start_session
from labelwright.store import Store
from labelwright.store import tables as t


def create_invite(store: Store, by: User, *, role: str = "annotator", project: Project | None = None,
                  project_role: str = "annotator", hours: float = 72, max_uses: int = 1) -> tuple[str, dict]:
    """Returns ``(secret, invite)``; the link is ``/invite/<secret>``."""
    if role not in access.ORG_ROLES:
        raise ValidationError(f"role must be one of {list(access.ORG_ROLES)}", field="role")
    if project is not None and project_role not in access.PROJECT_ROLES:
        raise ValidationError(f"project_role must be one of {list(access.PROJECT_ROLES)}", field="project_role")
    if project is not None and role != "owner" and access.RANK[project_role] > access.RANK[role]:
        raise ValidationError(f"{access._a(role)} cannot be {access._a(project_role)} of a project",
                              field="project_role")
    if not by.is_owner:
        access.require_org(by, "manager")
        if project is None:
            raise Forbidden("a manager invites people to a project they manage: name the project")
        if access.RANK[role] >= access.RANK["manager"]:
            raise Forbidden("only an owner can invite managers and owners")
    if not 0 < hours <= 24 * 90:
        raise ValidationError("an invite lasts between a moment and 90 days", field="hours")
    secret = secrets.token_urlsafe(32)
    now = time.time()
    with store.write() as conn:
        invite_id = conn.execute(insert(t.invites).values(
            token_hash=_hash(secret), role=role, project_id=getattr(project, "id", None),
            project_role=project_role if project is not None else None, created_by=by.id, created_at=now,
            expires_at=now + hours * 3600, max_uses=max_uses, uses=0).returning(t.invites.c.id)).scalar_one()
        audit.record(conn, by, "invite.create", getattr(project, "id", None), str(invite_id),
                     {"role": role, "project_role": project_role if project else None, "max_uses": max_uses})
    return secret, _one(store, invite_id)


def _listing() -> Select:
    """The invites with their project's slug and their creator's name (``_dict`` reads the rows)."""
    i, p, u = t.invites, t.projects, t.users
    return (select(i.c.id, i.c.role, p.c.slug, i.c.project_role, u.c.name, i.c.created_at, i.c.expires_at,
                   i.c.max_uses, i.c.uses, i.c.revoked_at)
            .select_from(i.outerjoin(p, p.c.id == i.c.project_id).outerjoin(u, u.c.id == i.c.created_by)))


def _dict(r: Row) -> dict:
    now = time.time()
    return {"id": r.id, "role": r.role, "project": r.slug, "project_role": r.project_role, "created_by": r.name,
            "created_at": r.created_at, "expires_at": r.expires_at, "max_uses": r.max_uses, "uses": r.uses,
            "revoked_at": r.revoked_at, "usable": r.revoked_at is None and r.expires_at > now and r.uses < r.max_uses}


def _one(store: Store, invite_id: int) -> dict:
    with store.read() as conn:
        return _dict(conn.execute(_listing().where(t.invites.c.id == invite_id)).one())


def list_invites(store: Store, by: User | None = None, project: Project | None = None) -> list[dict]:
    """Every invite (``by`` None), or those ``by`` created; with ``project``, only the invites to it."""
    i = t.invites
    stmt = _listing().order_by(i.c.id)
    if by is not None:
        stmt = stmt.where(i.c.created_by == by.id)
    if project is not None:
        stmt = stmt.where(i.c.project_id == project.id)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [_dict(r) for r in rows]


def revoke_invite(store: Store, invite_id: int, by: User, project: Project | None = None) -> None:
    """Revoke an invite: its creator's or, for an owner, anyone's. With ``project`` (the caller is checked
    to manage it), any invite to that project, and only those."""
    i = t.invites
    with store.write() as conn:
        row = conn.execute(select(i.c.created_by, i.c.project_id).where(i.c.id == invite_id)).first()
        if project is not None:
            if row is None or row.project_id != project.id:
                raise NotFound(f"no invite {invite_id} to project {project.slug!r}")
        elif row is None or (row.created_by != by.id and not by.is_owner):
            raise NotFound(f"no invite {invite_id} of yours")
        conn.execute(update(i).where(i.c.id == invite_id, i.c.revoked_at.is_(None)).values(revoked_at=time.time()))
        audit.record(conn, by, "invite.revoke", row.project_id, str(invite_id))


def describe(store: Store, secret: str) -> dict:
    """What an invite offers (for its page); raises :class:`Unauthorized` when it cannot be used."""
    with store.read() as conn:
        row = conn.execute(_listing().where(t.invites.c.token_hash == _hash(secret or ""))).first()
    if row is None or not _dict(row)["usable"]:
        raise Unauthorized("this invite link is invalid, used up, revoked or expired: ask for a new one")
    return _dict(row)


def accept(store: Store, secret: str, name: str, password: str, session_days: int):
    """Create the account the invite offers and sign it in; returns ``(cookie secret, session)``."""
    if not password:
        raise ValidationError("choose a password", field="password")
    now = time.time()
    i = t.invites
    with store.write() as conn:
        # Count the use first, in the same transaction: two people racing for the last use cannot both win.
        row = conn.execute(update(i).where(i.c.token_hash == _hash(secret or ""), i.c.revoked_at.is_(None),
                                           i.c.expires_at > now, i.c.uses < i.c.max_uses)
                           .values(uses=i.c.uses + 1)
                           .returning(i.c.id, i.c.role, i.c.project_id, i.c.project_role)).first()
        if row is None:
            raise Unauthorized("this invite link is invalid, used up, revoked or expired: ask for a new one")
    invite_id, role, project_id, project_role = row.id, row.role, row.project_id, row.project_role
    try:
        user = create_user(store, name, role, password)
    except Exception:
        with store.write() as conn:  # give the use back: nothing was created
            conn.execute(update(i).where(i.c.id == invite_id).values(uses=i.c.uses - 1))
        raise
    if project_id is not None:
        access.set_member(store, get_project(store, project_id), name, project_role, by=None)
    with store.write() as conn:
        audit.record(conn, user, "invite.accept", project_id, name, {"invite": invite_id, "role": role})
    return start_session(store, user, session_days)
