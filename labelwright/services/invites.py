"""Invite links: a URL that lets someone create their own account, with a role, and join a project.

Owners invite to any role and project; managers invite reviewers and annotators to the projects they
manage. A link expires (``hours``), can be used ``max_uses`` times, and can be revoked. Only the SHA-256
of its secret is stored, like every other token.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import text

from labelwright.errors import Forbidden, NotFound, Unauthorized, ValidationError
from labelwright.services import access, audit
from labelwright.services.users import _hash, create_user, start_session


def create_invite(store, by, *, role: str = "annotator", project=None, project_role: str = "annotator",
                  hours: float = 72, max_uses: int = 1) -> tuple[str, dict]:
    """Returns ``(secret, invite)``; the link is ``/invite/<secret>``."""
    if role not in access.ORG_ROLES:
        raise ValidationError(f"role must be one of {list(access.ORG_ROLES)}", field="role")
    if project is not None and project_role not in access.PROJECT_ROLES:
        raise ValidationError(f"project_role must be one of {list(access.PROJECT_ROLES)}", field="project_role")
    if project is not None and role != "owner" and access.RANK[project_role] > access.RANK[role]:
        raise ValidationError(f"{access._a(role)} cannot be {access._a(project_role)} of a project", field="project_role")
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
        invite_id = conn.execute(text(
            "INSERT INTO invites (token_hash, role, project_id, project_role, created_by, created_at, expires_at, "
            "max_uses, uses) VALUES (:h, :r, :p, :pr, :b, :now, :exp, :m, 0) RETURNING id"),
            {"h": _hash(secret), "r": role, "p": getattr(project, "id", None),
             "pr": project_role if project is not None else None, "b": by.id, "now": now,
             "exp": now + hours * 3600, "m": max_uses}).scalar_one()
        audit.record(conn, by, "invite.create", getattr(project, "id", None), str(invite_id),
                     {"role": role, "project_role": project_role if project else None, "max_uses": max_uses})
    return secret, _one(store, invite_id)


_COLUMNS = ("SELECT i.id, i.role, p.slug, i.project_role, u.name, i.created_at, i.expires_at, i.max_uses, "
            "i.uses, i.revoked_at FROM invites i LEFT JOIN projects p ON p.id = i.project_id "
            "LEFT JOIN users u ON u.id = i.created_by")


def _dict(r) -> dict:
    now = time.time()
    return {"id": r[0], "role": r[1], "project": r[2], "project_role": r[3], "created_by": r[4],
            "created_at": r[5], "expires_at": r[6], "max_uses": r[7], "uses": r[8], "revoked_at": r[9],
            "usable": r[9] is None and r[6] > now and r[8] < r[7]}


def _one(store, invite_id: int) -> dict:
    with store.read() as conn:
        return _dict(conn.execute(text(_COLUMNS + " WHERE i.id = :i"), {"i": invite_id}).one())


def list_invites(store, by=None, project=None) -> list[dict]:
    """Every invite (``by`` None), or those ``by`` created; with ``project``, only the invites to it."""
    where, params = [], {}
    if by is not None:
        where.append("i.created_by = :b")
        params["b"] = by.id
    if project is not None:
        where.append("i.project_id = :p")
        params["p"] = project.id
    sql = _COLUMNS + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY i.id"
    with store.read() as conn:
        rows = conn.execute(text(sql), params).all()
    return [_dict(r) for r in rows]


def revoke_invite(store, invite_id: int, by, project=None) -> None:
    """Revoke an invite: its creator's or, for an owner, anyone's. With ``project`` (the caller is checked
    to manage it), any invite to that project, and only those."""
    with store.write() as conn:
        row = conn.execute(text("SELECT created_by, project_id FROM invites WHERE id = :i"), {"i": invite_id}).first()
        if project is not None:
            if row is None or row[1] != project.id:
                raise NotFound(f"no invite {invite_id} to project {project.slug!r}")
        elif row is None or (row[0] != by.id and not by.is_owner):
            raise NotFound(f"no invite {invite_id} of yours")
        conn.execute(text("UPDATE invites SET revoked_at = :now WHERE id = :i AND revoked_at IS NULL"),
                     {"i": invite_id, "now": time.time()})
        audit.record(conn, by, "invite.revoke", row[1], str(invite_id))


def describe(store, secret: str) -> dict:
    """What an invite offers (for its page); raises :class:`Unauthorized` when it cannot be used."""
    with store.read() as conn:
        row = conn.execute(text(_COLUMNS + " WHERE i.token_hash = :h"), {"h": _hash(secret or "")}).first()
    if row is None or not _dict(row)["usable"]:
        raise Unauthorized("this invite link is invalid, used up, revoked or expired: ask for a new one")
    return _dict(row)


def accept(store, secret: str, name: str, password: str, session_days: int):
    """Create the account the invite offers and sign it in; returns ``(cookie secret, session)``."""
    from labelwright.services.projects import get_project

    if not password:
        raise ValidationError("choose a password", field="password")
    now = time.time()
    with store.write() as conn:
        # Count the use first, in the same transaction: two people racing for the last use cannot both win.
        row = conn.execute(text(
            "UPDATE invites SET uses = uses + 1 WHERE token_hash = :h AND revoked_at IS NULL AND expires_at > :now "
            "AND uses < max_uses RETURNING id, role, project_id, project_role"),
            {"h": _hash(secret or ""), "now": now}).first()
        if row is None:
            raise Unauthorized("this invite link is invalid, used up, revoked or expired: ask for a new one")
    invite_id, role, project_id, project_role = row
    try:
        user = create_user(store, name, role, password)
    except Exception:
        with store.write() as conn:  # give the use back: nothing was created
            conn.execute(text("UPDATE invites SET uses = uses - 1 WHERE id = :i"), {"i": invite_id})
        raise
    if project_id is not None:
        access.set_member(store, get_project(store, project_id), name, project_role, by=None)
    with store.write() as conn:
        audit.record(conn, user, "invite.accept", project_id, name, {"invite": invite_id, "role": role})
    return start_session(store, user, session_days)
