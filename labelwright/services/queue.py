"""The labelling queue: claiming items under a lease, skipping, submitting and amending answers.

Invariants (checked by tests/test_concurrency.py against a real server):

* ``items.n_assigned`` = annotations + live leases for the item, and never exceeds the project's
  overlap; ``items.is_open`` is ``n_assigned < overlap`` and is what the queue index scans.
* An annotator holds at most one lease per item and answers an item at most once
  (primary key on ``leases (item_id, user_id)``, unique ``annotations (item_id, user_id)``).
* Claiming is one write transaction. On SQLite the single writer makes it atomic; on PostgreSQL the
  candidate row is locked with ``FOR UPDATE SKIP LOCKED`` and claims by one user are serialised with
  a transaction-scoped advisory lock, so two requests of one annotator cannot take the same item.
* A lease that expires is reclaimed by the next claim in the project: the lease row is deleted and
  the item's slot handed back.
* A submission commits before it is acknowledged; on SQLite with ``synchronous=FULL`` that means it
  is on disk.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.services.projects import Project, get_project
from labelwright.services.users import User
from labelwright.store import dumps, loads

_PICK = """
SELECT i.id FROM items i
WHERE i.project_id = :p AND i.is_open = 1
  AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.item_id = i.id AND l.user_id = :u)
  AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u)
ORDER BY i.id
LIMIT 1
"""


def _item_payload(project: Project, row, expires_at: float | None) -> dict:
    return {"id": row.id, "external_id": row.external_id, "project": project.slug,
            "data": loads(row.data), "lease_expires_at": expires_at}


def _reclaim_expired(conn, project_id: int, now: float) -> int:
    rows = conn.execute(text(
        "DELETE FROM leases WHERE project_id = :p AND expires_at <= :now RETURNING item_id"),
        {"p": project_id, "now": now}).all()
    for (item_id,) in rows:
        _release_slot(conn, item_id)
    return len(rows)


def _release_slot(conn, item_id: int) -> None:
    conn.execute(text(
        "UPDATE items SET n_assigned = n_assigned - 1, is_open = 1 WHERE id = :i"), {"i": item_id})


def _take_slot(conn, item_id: int, overlap: int) -> bool:
    """Add one to the item's assigned count if it has room; False when it is full."""
    res = conn.execute(text(
        "UPDATE items SET n_assigned = n_assigned + 1, "
        "is_open = CASE WHEN n_assigned + 1 < :o THEN 1 ELSE 0 END "
        "WHERE id = :i AND n_assigned < :o"), {"i": item_id, "o": overlap})
    return res.rowcount == 1


def _lock_user(store, conn, user_id: int) -> None:
    if store.dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7420002, :u)"), {"u": user_id})


def claim_next(store, project: Project, user: User, now: float | None = None) -> dict | None:
    """Give ``user`` the next item of ``project`` under a lease, or None when nothing is left for them.

    If the user already holds a live lease in this project, that item is returned again (its lease
    renewed), so reloading the page or retrying a request never takes a second item.
    """
    now = now or time.time()
    expires = now + project.lease_seconds
    with store.write() as conn:
        _lock_user(store, conn, user.id)
        held = conn.execute(text(
            "SELECT item_id FROM leases WHERE user_id = :u AND project_id = :p AND expires_at > :now "
            "ORDER BY created_at LIMIT 1"), {"u": user.id, "p": project.id, "now": now}).first()
        if held is not None:
            item_id = held.item_id
            conn.execute(text("UPDATE leases SET expires_at = :e WHERE item_id = :i AND user_id = :u"),
                         {"e": expires, "i": item_id, "u": user.id})
        else:
            _reclaim_expired(conn, project.id, now)
            pick = _PICK + (" FOR UPDATE OF i SKIP LOCKED" if store.dialect == "postgresql" else "")
            while True:
                found = conn.execute(text(pick), {"p": project.id, "u": user.id}).first()
                if found is None:
                    return None
                item_id = found.id
                if _take_slot(conn, item_id, project.overlap):
                    break
                # Lost a race on PostgreSQL between our scan and the row lock; look again.
            conn.execute(text(
                "INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                "VALUES (:i, :u, :p, :now, :e)"),
                {"i": item_id, "u": user.id, "p": project.id, "now": now, "e": expires})
        row = conn.execute(text("SELECT id, external_id, data FROM items WHERE id = :i"),
                           {"i": item_id}).one()
    return _item_payload(project, row, expires)


def _item_and_project(store, conn, item_id: int) -> tuple:
    row = conn.execute(text("SELECT id, project_id, external_id, data FROM items WHERE id = :i"),
                       {"i": item_id}).first()
    if row is None:
        raise NotFound(f"no item {item_id}")
    return row, get_project(store, row.project_id, conn=conn)


def project_of_item(store, item_id: int) -> Project:
    with store.read() as conn:
        return _item_and_project(store, conn, item_id)[1]


def release(store, item_id: int, user: User) -> bool:
    """Give back a lease without answering (the annotator may get the item again later)."""
    with store.write() as conn:
        gone = conn.execute(text("DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
                            {"i": item_id, "u": user.id}).first()
        if gone:
            _release_slot(conn, item_id)
    return gone is not None


def skip(store, item_id: int, user: User, now: float | None = None) -> None:
    """The annotator passes on this item: release any lease and never offer it to them again."""
    now = now or time.time()
    with store.write() as conn:
        row, project = _item_and_project(store, conn, item_id)
        gone = conn.execute(text("DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
                            {"i": item_id, "u": user.id}).first()
        if gone:
            _release_slot(conn, item_id)
        conn.execute(text(
            "INSERT INTO skips (item_id, user_id, project_id, created_at) VALUES (:i, :u, :p, :now) "
            "ON CONFLICT (item_id, user_id) DO NOTHING"),
            {"i": item_id, "u": user.id, "p": project.id, "now": now})


def _annotation_dict(row, user_name: str | None = None) -> dict:
    out = {"id": row.id, "item_id": row.item_id, "answers": loads(row.answers), "active_ms": row.active_ms,
           "revision": row.revision, "created_at": row.created_at, "updated_at": row.updated_at}
    if user_name is not None:
        out["annotator"] = user_name
    return out


_ANN_COLS = "id, item_id, user_id, answers, active_ms, revision, created_at, updated_at, idempotency_key"


def submit(store, item_id: int, user: User, answers, *, active_ms: int = 0,
           idempotency_key: str | None = None, now: float | None = None) -> tuple[dict, bool]:
    """Record the user's answers for an item. Returns ``(annotation, created)``.

    A retry with the same idempotency key returns the first annotation with ``created=False``.
    """
    now = now or time.time()
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or active_ms < 0:
        raise ValidationError("active_ms must be a non-negative integer", field="active_ms")
    active_ms = min(active_ms, 24 * 3600 * 1000)
    key = idempotency_key or str(uuid.uuid4())
    if len(key) > 200:
        raise ValidationError("an idempotency key has at most 200 characters", field="idempotency_key")
    with store.write() as conn:
        _lock_user(store, conn, user.id)
        replay = conn.execute(text(f"SELECT {_ANN_COLS} FROM annotations WHERE user_id = :u AND idempotency_key = :k"),
                              {"u": user.id, "k": key}).first()
        if replay is not None:
            if replay.item_id != item_id:
                raise Conflict("this idempotency key was already used for another item", field="idempotency_key")
            return _annotation_dict(replay), False
        row, project = _item_and_project(store, conn, item_id)
        clean = project.schema.validate_answers(answers)
        if conn.execute(text("SELECT 1 FROM annotations WHERE item_id = :i AND user_id = :u"),
                        {"i": item_id, "u": user.id}).first():
            raise Conflict("you already answered this item; amend your annotation instead")
        had_lease = conn.execute(text(
            "DELETE FROM leases WHERE item_id = :i AND user_id = :u RETURNING item_id"),
            {"i": item_id, "u": user.id}).first()
        if had_lease is None and not _take_slot(conn, item_id, project.overlap):
            raise Conflict("your lease on this item expired and it has since been given to other "
                           "annotators; nothing was saved, please take the next item")
        conn.execute(text("UPDATE items SET n_done = n_done + 1 WHERE id = :i"), {"i": item_id})
        conn.execute(text("DELETE FROM skips WHERE item_id = :i AND user_id = :u"), {"i": item_id, "u": user.id})
        ann_id = conn.execute(text(
            "INSERT INTO annotations (item_id, project_id, user_id, answers, active_ms, idempotency_key, "
            "revision, created_at, updated_at) VALUES (:i, :p, :u, :a, :ms, :k, 1, :now, :now) RETURNING id"),
            {"i": item_id, "p": project.id, "u": user.id, "a": dumps(clean), "ms": active_ms, "k": key,
             "now": now}).scalar_one()
    return {"id": ann_id, "item_id": item_id, "answers": clean, "active_ms": active_ms, "revision": 1,
            "created_at": now, "updated_at": now}, True


def history(store, project: Project, user: User, limit: int | None = None) -> list[dict]:
    """The user's most recent annotations in the project, newest first (the ones they may amend)."""
    limit = project.schema.history_size if limit is None else min(limit, project.schema.history_size)
    if limit <= 0:
        return []
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.id, a.item_id, a.answers, a.active_ms, a.revision, a.created_at, a.updated_at, "
            "i.external_id, i.data FROM annotations a JOIN items i ON i.id = a.item_id "
            "WHERE a.user_id = :u AND a.project_id = :p ORDER BY a.id DESC LIMIT :n"),
            {"u": user.id, "p": project.id, "n": limit}).all()
    out = []
    for r in rows:
        d = _annotation_dict(r)
        d["external_id"] = r.external_id
        d["data"] = loads(r.data)
        out.append(d)
    return out


def get_annotation(store, annotation_id: int, user: User) -> tuple[dict, Project]:
    with store.read() as conn:
        row = conn.execute(text(f"SELECT {_ANN_COLS}, project_id FROM annotations WHERE id = :a"),
                           {"a": annotation_id}).first()
        if row is None or (row.user_id != user.id and not user.is_owner):
            raise NotFound(f"no annotation {annotation_id}")
        project = get_project(store, row.project_id, conn=conn)
    return _annotation_dict(row), project


def amend(store, annotation_id: int, user: User, answers, *, active_ms: int = 0,
          now: float | None = None) -> dict:
    """Replace the answers of one of the user's recent annotations; the old version is kept."""
    now = now or time.time()
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or active_ms < 0:
        raise ValidationError("active_ms must be a non-negative integer", field="active_ms")
    with store.write() as conn:
        row = conn.execute(text(f"SELECT {_ANN_COLS}, project_id FROM annotations WHERE id = :a"),
                           {"a": annotation_id}).first()
        if row is None or row.user_id != user.id:
            raise NotFound(f"no annotation {annotation_id} of yours")
        project = get_project(store, row.project_id, conn=conn)
        recent = [r[0] for r in conn.execute(text(
            "SELECT id FROM annotations WHERE user_id = :u AND project_id = :p ORDER BY id DESC LIMIT :n"),
            {"u": user.id, "p": project.id, "n": max(project.schema.history_size, 0)})]
        if annotation_id not in recent:
            raise Forbidden(f"only your last {project.schema.history_size} answers in this project can be amended")
        clean = project.schema.validate_answers(answers)
        conn.execute(text(
            "INSERT INTO annotation_revisions (annotation_id, revision, answers, active_ms, replaced_at) "
            "VALUES (:a, :r, :ans, :ms, :now)"),
            {"a": annotation_id, "r": row.revision, "ans": row.answers, "ms": row.active_ms, "now": now})
        total_ms = row.active_ms + min(active_ms, 24 * 3600 * 1000)
        conn.execute(text(
            "UPDATE annotations SET answers = :ans, active_ms = :ms, revision = revision + 1, "
            "updated_at = :now WHERE id = :a"),
            {"ans": dumps(clean), "ms": total_ms, "now": now, "a": annotation_id})
    return {"id": annotation_id, "item_id": row.item_id, "answers": clean, "active_ms": total_ms,
            "revision": row.revision + 1, "created_at": row.created_at, "updated_at": now}


def counts_for_user(store, project: Project, user: User) -> dict:
    """What this annotator has done in the project and how many items are still open to them."""
    with store.read() as conn:
        done = conn.execute(text("SELECT count(*) FROM annotations WHERE user_id = :u AND project_id = :p"),
                            {"u": user.id, "p": project.id}).scalar_one()
        left = conn.execute(text(
            "SELECT count(*) FROM items i WHERE i.project_id = :p AND i.n_done < :o "
            "AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = :u) "
            "AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = :u)"),
            {"p": project.id, "o": project.overlap, "u": user.id}).scalar_one()
    return {"done": int(done), "left": int(left)}
