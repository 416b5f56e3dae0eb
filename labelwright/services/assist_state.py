"""The assistant's per-project state row (``assist_state``): auto-labelling on or stopped, the audit's start,
the worker lease. Kept apart from :mod:`labelwright.services.assistant` so that the modules the assistant
drives (:mod:`~labelwright.services.autolabel`, :mod:`~labelwright.services.checks`) can read it without
importing the assistant back."""

from __future__ import annotations

import time

from sqlalchemy import Connection, select, update

from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t
from labelwright.store.sql import upsert

DEFAULT = {"auto_label": "on", "reason": None, "labels_at_train": 0, "features_done": 0, "features_total": 0,
           "audit_since": 0.0, "ranked_at": None, "worker_at": None, "worker_error": None,
           "worker_public_error": None}


def ensure_state(conn: Connection, project_id: int, now: float) -> None:
    """The project's state row, created with the defaults if it is missing (in the caller's transaction)."""
    conn.execute(upsert(conn, t.assist_state).values(
        project_id=project_id, auto_label="on", labels_at_train=0, worker_until=0, features_done=0,
        features_total=0, updated_at=now, audit_since=0).on_conflict_do_nothing(index_elements=["project_id"]))


def get_state(store: Store, project: Project) -> dict:
    st = t.assist_state
    with store.read() as conn:
        row = conn.execute(select(st).where(st.c.project_id == project.id)).mappings().first()
    return dict(DEFAULT) if row is None else dict(row)


def claim_worker(store: Store, project_id: int, now: float, seconds: float) -> bool:
    """Take the project's assist lease (one worker per project across server processes); True if taken."""
    st = t.assist_state
    with store.write() as conn:
        ensure_state(conn, project_id, now)
        row = conn.execute(update(st).where(st.c.project_id == project_id, st.c.worker_until <= now)
                           .values(worker_until=now + seconds).returning(st.c.project_id)).first()
    return row is not None


def release_worker(store: Store, project_id: int, outcome: dict | None = None, now: float | None = None) -> None:
    """Give the project's assist lease back; with ``outcome`` (the background worker's step report) also
    record when it ran and its error, which the assist page shows whichever process serves it."""
    st = t.assist_state
    values: dict = {"worker_until": 0}
    if outcome is not None:
        values.update(worker_at=time.time() if now is None else now, worker_error=outcome.get("error"),
                      worker_public_error=outcome.get("public_error"))
    with store.write() as conn:
        conn.execute(update(st).where(st.c.project_id == project_id).values(**values))


def worker_outcome(state: dict) -> dict | None:
    """The background worker's last step of the project from its state row (:func:`get_state`): ``at``,
    ``error`` and ``public_error``; None before its first step."""
    if state.get("worker_at") is None:
        return None
    return {"at": state["worker_at"], "error": state.get("worker_error"),
            "public_error": state.get("worker_public_error")}
