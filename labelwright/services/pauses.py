"""Pausing an annotator in a project: an owner stops someone's work there without deleting anything.

A paused annotator is given no new items in the project and cannot submit to it (403 with a message
saying why); the leases they held there are released at once so their items go to others. Their
earlier answers stay and still count. Resuming lets them carry on where they stopped.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from labelwright.errors import ValidationError
from labelwright.services import audit
from labelwright.services.access import release_leases
from labelwright.services.projects import Project
from labelwright.services.users import User


def pause(store, project: Project, annotator: User, by: User | None = None, reason: str | None = None) -> int:
    """Pause ``annotator`` in ``project``; returns how many of their leases were released."""
    if reason is not None and len(reason) > 1000:
        raise ValidationError("a reason has at most 1000 characters", field="reason")
    with store.write() as conn:
        conn.execute(text(
            "INSERT INTO paused_annotators (project_id, user_id, reason, paused_by, paused_at) "
            "VALUES (:p, :u, :r, :b, :now) ON CONFLICT (project_id, user_id) DO UPDATE SET "
            "reason = excluded.reason, paused_by = excluded.paused_by, paused_at = excluded.paused_at"),
            {"p": project.id, "u": annotator.id, "r": reason, "b": getattr(by, "id", None), "now": time.time()})
        released = release_leases(conn, project.id, annotator.id)
        audit.record(conn, by, "annotator.pause", project.id, annotator.name, {"reason": reason})
    return released


def resume(store, project: Project, annotator: User, by: User | None = None) -> bool:
    """Let a paused annotator work in the project again; returns whether they were paused."""
    with store.write() as conn:
        gone = conn.execute(text(
            "DELETE FROM paused_annotators WHERE project_id = :p AND user_id = :u RETURNING user_id"),
            {"p": project.id, "u": annotator.id}).first()
        if gone is not None:
            audit.record(conn, by, "annotator.resume", project.id, annotator.name)
    return gone is not None


def paused(store, project: Project) -> dict[str, dict]:
    """``{annotator name: {"reason", "paused_at", "paused_by"}}`` for the project."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT u.name, pa.reason, pa.paused_at, b.name FROM paused_annotators pa "
            "JOIN users u ON u.id = pa.user_id LEFT JOIN users b ON b.id = pa.paused_by "
            "WHERE pa.project_id = :p ORDER BY u.name"), {"p": project.id}).all()
    return {name: {"reason": reason, "paused_at": at, "paused_by": by} for name, reason, at, by in rows}
