"""Pausing an annotator in a project: an owner stops someone's work there without deleting anything.

A paused annotator is given no new items in the project and cannot submit to it (403 with a message
saying why); the leases they held there are released at once so their items go to others. Their
earlier answers stay and still count. Resuming lets them carry on where they stopped.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select

from labelwright.errors import ValidationError
from labelwright.services import audit, events
from labelwright.services.access import release_leases
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store
from labelwright.store import tables as t
from labelwright.store.sql import upsert


def pause(store: Store, project: Project, annotator: User, by: User | None = None, reason: str | None = None,
          *, automatic: bool = False) -> int:
    """Pause ``annotator`` in ``project``; returns how many of their leases were released. ``automatic``:
    the project's rule did it (:mod:`labelwright.services.auto_pause`), not a person; it is said so in the
    audit log and the ``annotator.paused`` event."""
    if reason is not None and len(reason) > 1000:
        raise ValidationError("a reason has at most 1000 characters", field="reason")
    with store.write() as conn:
        add = upsert(conn, t.paused_annotators).values(project_id=project.id, user_id=annotator.id, reason=reason,
                                                       paused_by=getattr(by, "id", None), paused_at=time.time())
        conn.execute(add.on_conflict_do_update(index_elements=["project_id", "user_id"], set_={
            "reason": add.excluded.reason, "paused_by": add.excluded.paused_by, "paused_at": add.excluded.paused_at}))
        released = release_leases(conn, project.id, annotator.id)
        audit.record(conn, by, "annotator.pause", project.id, annotator.name,
                     {"reason": reason, **({"automatic": True} if automatic else {})})
        events.emit(conn, "annotator.paused", project.id, {
            "project": project.slug, "annotator": annotator.name, "reason": reason, "automatic": automatic,
            "paused_by": getattr(by, "name", None)})
    return released


def resume(store: Store, project: Project, annotator: User, by: User | None = None) -> bool:
    """Let a paused annotator work in the project again; returns whether they were paused."""
    with store.write() as conn:
        pa = t.paused_annotators
        gone = conn.execute(delete(pa).where(pa.c.project_id == project.id, pa.c.user_id == annotator.id)
                            .returning(pa.c.user_id)).first()
        if gone is not None:
            audit.record(conn, by, "annotator.resume", project.id, annotator.name)
            events.emit(conn, "annotator.resumed", project.id, {
                "project": project.slug, "annotator": annotator.name, "resumed_by": getattr(by, "name", None)})
    return gone is not None


def paused(store: Store, project: Project) -> dict[str, dict]:
    """``{annotator name: {"reason", "paused_at", "paused_by"}}`` for the project."""
    pa, u, b = t.paused_annotators, t.users.alias("u"), t.users.alias("b")
    with store.read() as conn:
        rows = conn.execute(select(u.c.name, pa.c.reason, pa.c.paused_at, b.c.name.label("paused_by"))
                            .select_from(pa.join(u, u.c.id == pa.c.user_id).outerjoin(b, b.c.id == pa.c.paused_by))
                            .where(pa.c.project_id == project.id).order_by(u.c.name)).all()
    return {r.name: {"reason": r.reason, "paused_at": r.paused_at, "paused_by": r.paused_by} for r in rows}
