"""Who may do what: organisation roles, project membership, and the checks every route makes.

Every user has an organisation role (``users.role``):

* **owner**: everything, in every project; manages users.
* **manager**: creates projects (becoming their manager) and invites people; runs the projects they are a
  manager of.
* **reviewer**, **annotator**: work in the projects they are members of.

Inside a project, a member's role (``memberships.role``) says what they do there, each role including
the ones below it: **annotator** (labels), **reviewer** (labels and reviews), **manager** (runs the
project: items, gold, quality, export, members, pauses and blocks). A user's project role can be at most
their organisation role (an annotator cannot be made a project's manager). Owners need no membership.

A blocked member sees nothing of the project and their leases in it are released; non-members get 403
naming the project as they named it (a slug they typed, so they know whom to ask; an id stays an id, so
trying ids teaches nobody a project's name). Things reached by their own id (an item, an annotation)
answer a non-member 404, exactly as if they did not exist: see :func:`require`.
"""

from __future__ import annotations

import hmac
import time

from sqlalchemy import Connection, delete, select, update

from labelwright.errors import Forbidden, NotFound, ValidationError
from labelwright.services import audit
from labelwright.services.projects import Project, get_project, insert_project, project_from_row
from labelwright.store import Store, lookups
from labelwright.store import tables as t
from labelwright.store.lookups import MembershipRow, ProjectAccessRow
from labelwright.store.slots import release
from labelwright.store.sql import upsert

ORG_ROLES = ("owner", "manager", "reviewer", "annotator")
PROJECT_ROLES = ("annotator", "reviewer", "manager")
RANK = {"annotator": 1, "reviewer": 2, "manager": 3, "owner": 4}
NEEDS = {"annotator": "a member of", "reviewer": "a reviewer in", "manager": "a manager of",
         "owner": "an owner to manage"}
MAX_ID = 2**63 - 1  # ids are signed 64-bit integers on both databases: a larger number names nothing



def project_for(store: Store, ref: int | str, user, at_least: str = "annotator") -> tuple[Project, str]:
    """The project ``ref`` (slug or id) and the caller's role in it, in one lookup; raises
    :class:`Forbidden` unless that role is at least ``at_least``."""
    if isinstance(ref, str) and ref.isascii() and ref.isdigit():
        ref = int(ref)
    if isinstance(ref, int) and not 0 <= ref <= MAX_ID:
        raise NotFound(f"no project {ref!r}")
    # the lookup every request makes (Store.lookup: one plain statement outside a transaction)
    raw = store.lookup(lookups.PROJECT_BY_ID if isinstance(ref, int) else lookups.PROJECT_BY_SLUG,
                       {"r": ref, "u": user.id})
    if raw is None:
        raise NotFound(f"no project {ref!r}")
    row = ProjectAccessRow._make(raw)
    project = project_from_row(store, row)  # read by name: the membership's columns are not looked at
    role = "owner" if user.role == "owner" else (row.member_role if row.member_status == "active" else None)
    return project, _check(project, role, at_least, named=str(ref) if isinstance(ref, int) else None)


def _check(project: Project, role: str | None, at_least: str, named: str | None = None) -> str:
    """``role``, once it is at least ``at_least`` (else :class:`Forbidden`); ``named``: how the caller named
    the project (default: its slug)."""
    named = named or repr(project.slug)
    if role is None:
        raise Forbidden(f"you are not a member of project {named}; ask its manager to add you")
    if RANK[role] < RANK[at_least]:
        raise Forbidden(f"this needs {NEEDS[at_least]} project {named}; you are {_a(role)} there")
    return role


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def role_in(store: Store, user, project: Project) -> str | None:
    """The user's role in the project (``owner`` for owners), or None for non-members and blocked members."""
    if user.role == "owner":
        return "owner"
    raw = store.lookup(lookups.ROLE_IN, {"p": project.id, "u": user.id})
    if raw is None:
        return None
    row = MembershipRow._make(raw)
    return row.role if row.status == "active" else None


def require(store: Store, user, project: Project, at_least: str = "annotator", *, missing: str | None = None) -> str:
    """The user's role in ``project``, once it is at least ``at_least``.

    For a thing reached by its own id (an item, an annotation), pass ``missing``: the message of the
    :class:`NotFound` it answers when there is no such thing (``"no item 12"``). A caller who is not a
    member of its project (or is blocked there) gets exactly that, not a 403 naming the project."""
    role = role_in(store, user, project)
    if role is None and missing is not None:
        raise NotFound(missing)
    return _check(project, role, at_least)


def require_org(user, at_least: str) -> None:
    if RANK.get(user.role, 0) < RANK[at_least]:
        raise Forbidden(f"this needs {_a(at_least)}" + (" or an owner" if at_least != "owner" else ""))


def csrf_matches(expected: str | None, sent: object) -> bool:
    """Whether ``sent`` (a header or form value, untrusted: maybe missing, not a string, non-ASCII) is the token
    ``expected``, compared in constant time. Bytes, because ``hmac.compare_digest`` refuses ``str`` holding
    non-ASCII characters (a crafted value would otherwise answer 500)."""
    if not expected or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def check_csrf(session, sent: object, what: str = "the form's security token") -> None:
    """The one CSRF check, for pages (the form's ``csrf`` field) and the API (the ``X-CSRF-Token`` header
    of a request signed in with the session cookie): :class:`Forbidden` unless ``sent`` is the session's
    token. ``what`` names where it was looked for, for the message."""
    if not csrf_matches(session.csrf, sent):
        raise Forbidden(f"{what} is missing or does not match this session's (CSRF protection): "
                        "reload the page and try again")


def visible_project_ids(store: Store, user) -> set[int] | None:
    """Ids of the projects the user may see; None means all (owners)."""
    if user.role == "owner":
        return None
    m = t.memberships
    with store.read() as conn:
        return set(conn.execute(select(m.c.project_id).where(m.c.user_id == user.id, m.c.status == "active"))
                   .scalars())


# ---- membership ----------------------------------------------------------------------------------


def _target_user(conn: Connection, name: str):
    u = t.users
    row = conn.execute(select(u.c.id, u.c.name, u.c.role).where(u.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return row


def set_member(store: Store, project: Project, name: str, role: str, by=None) -> dict:
    """Add ``name`` to the project with ``role`` (or change their role; unblocks them)."""
    with store.write() as conn:
        return _set_member(conn, project.id, name, role, by)


def _set_member(conn: Connection, project_id: int, name: str, role: str, by=None) -> dict:
    if role not in PROJECT_ROLES:
        raise ValidationError(f"a project role is one of {list(PROJECT_ROLES)}", field="role")
    user = _target_user(conn, name)
    if user.role == "owner":
        raise ValidationError(f"{name!r} is an owner and works in every project already", field="name")
    if RANK[role] > RANK[user.role]:
        raise ValidationError(f"{name!r} is {_a(user.role)}; they cannot be {_a(role)} of a project "
                              "(change their organisation role first)", field="role")
    add = upsert(conn, t.memberships).values(project_id=project_id, user_id=user.id, role=role, status="active",
                                             added_by=getattr(by, "id", None), added_at=time.time())
    conn.execute(add.on_conflict_do_update(index_elements=["project_id", "user_id"], set_={
        "role": add.excluded.role, "status": "active", "blocked_at": None}))
    audit.record(conn, by, "member.set", project_id, name, {"role": role})
    return {"user": name, "role": role, "status": "active"}


def create_project_for(store: Store, schema, user) -> Project:
    """A new project made by ``user`` (an owner or a manager; the caller checked
    :func:`labelwright.services.policy.create_project`). A manager becomes its manager in the same
    transaction: a project its maker cannot manage is never left behind. Used by the API and the page."""
    with store.write() as conn:
        pid = insert_project(conn, schema, created_by=user.id, by=user)
        if not user.is_owner:
            _set_member(conn, pid, user.name, "manager", by=user)
    return get_project(store, pid)


def remove_member(store: Store, project: Project, name: str, by=None) -> bool:
    with store.write() as conn:
        user = _target_user(conn, name)
        release_leases(conn, project.id, user.id)
        m = t.memberships
        gone = conn.execute(delete(m).where(m.c.project_id == project.id, m.c.user_id == user.id)
                            .returning(m.c.user_id)).first()
        if gone:
            audit.record(conn, by, "member.remove", project.id, name)
    return gone is not None


def block(store: Store, project: Project, name: str, by=None, reason: str | None = None) -> int:
    """Block ``name`` from the project: they see nothing of it; their leases are released (returned: how many)."""
    now = time.time()
    with store.write() as conn:
        user = _target_user(conn, name)
        if user.role == "owner":
            raise ValidationError("an owner cannot be blocked from a project", field="name")
        add = upsert(conn, t.memberships).values(project_id=project.id, user_id=user.id, role="annotator",
                                                 status="blocked", added_by=getattr(by, "id", None), added_at=now,
                                                 blocked_at=now)
        conn.execute(add.on_conflict_do_update(index_elements=["project_id", "user_id"], set_={
            "status": "blocked", "blocked_at": add.excluded.blocked_at}))
        released = release_leases(conn, project.id, user.id)
        audit.record(conn, by, "member.block", project.id, name, {"reason": reason, "leases_released": released})
    return released


def unblock(store: Store, project: Project, name: str, by=None) -> bool:
    with store.write() as conn:
        user = _target_user(conn, name)
        m = t.memberships
        done = conn.execute(update(m).where(m.c.project_id == project.id, m.c.user_id == user.id,
                                            m.c.status == "blocked")
                            .values(status="active", blocked_at=None).returning(m.c.user_id)).first()
        if done:
            audit.record(conn, by, "member.unblock", project.id, name)
    return done is not None


def release_leases(conn: Connection, project_id: int, user_id: int) -> int:
    """Give back every lease ``user_id`` holds in the project (their items go to others); returns how many."""
    le = t.leases
    gone = conn.execute(delete(le).where(le.c.project_id == project_id, le.c.user_id == user_id)
                        .returning(le.c.item_id)).scalars().all()
    if gone:  # the queue's slot arithmetic (store/slots.py)
        conn.execute(release(t.items.c.id.in_(gone)))
    return len(gone)


def members(store: Store, project: Project) -> list[dict]:
    """The project's members (blocked ones too), by name: their organisation role, their role and status here."""
    m, u = t.memberships, t.users
    with store.read() as conn:
        rows = conn.execute(select(u.c.name, u.c.role.label("org_role"), m.c.role, m.c.status, m.c.added_at,
                                   m.c.blocked_at).join(u, u.c.id == m.c.user_id)
                            .where(m.c.project_id == project.id).order_by(u.c.name)).all()
    return [{"user": r.name, "org_role": r.org_role, "role": r.role, "status": r.status, "added_at": r.added_at,
             "blocked_at": r.blocked_at} for r in rows]
