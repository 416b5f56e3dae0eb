"""The one rule for "is a webhook listening" (labelwright/store/listeners.py): its SQL, on SQLite and PostgreSQL,
agrees with its Python twin for every webhook and kind, including the near misses a substring test would let in."""

from __future__ import annotations

import itertools
import time

from sqlalchemy import insert, select, text

from labelwright.services import events
from labelwright.services.projects import create_project
from labelwright.store import tables as t
from labelwright.store.listeners import listening, listening_expr, of_project, of_project_expr, wants
from tests.conftest import SPAM_SCHEMA

KINDS = [*events.KINDS, "item", "completed", "item.complete", "item.completed.later", "*", 'item.completed"']
HOOK_KINDS = ["*", '["item.completed"]', '["annotation.submitted", "project.completed"]',
              '["item.completed.later"]', '["x-item.completed"]', '["item"]', "[]", '["ITEM.COMPLETED"]']


def _hooks(store, owner_id: int):
    mine = create_project(store, {**SPAM_SCHEMA, "name": "mine", "slug": "mine"}, created_by=owner_id)
    other = create_project(store, {**SPAM_SCHEMA, "name": "other", "slug": "other"}, created_by=owner_id)
    rows = []
    with store.write() as conn:
        for project_id, kinds, active in itertools.product((None, mine.id, other.id), HOOK_KINDS, (0, 1)):
            conn.execute(insert(t.webhooks).values(project_id=project_id, url="https://example.org/hook", secret="s",
                                                   kinds=kinds, active=active, created_at=time.time()))
            rows.append((project_id, kinds, active))
    return mine, other, rows


def _expected(rows, project_id: int, kind: str) -> list[tuple]:
    return sorted((r for r in rows if r[2] == 1 and r[0] in (None, project_id) and wants(r[1], kind)), key=repr)


def test_the_sql_and_python_agree_for_every_webhook_and_kind(store, owner):
    mine, other, rows = _hooks(store, owner[0].id)
    with store.read() as conn:
        for project, kind in itertools.product((mine, other), KINDS):
            got = conn.execute(text("SELECT w.project_id, w.kinds, w.active FROM webhooks w WHERE "
                                    + listening("CAST(:k AS text)")), {"p": project.id, "k": kind}).all()
            assert sorted((tuple(r) for r in got), key=repr) == _expected(rows, project.id, kind), (project.name, kind)
            quoted = "'" + kind.replace("'", "''") + "'"  # the literal form the submission's statement uses
            got = conn.execute(text("SELECT w.project_id, w.kinds, w.active FROM webhooks w WHERE "
                                    + listening(quoted)), {"p": project.id}).all()
            assert sorted((tuple(r) for r in got), key=repr) == _expected(rows, project.id, kind), (project.name, kind)
            w = t.webhooks  # the Core form
            got = conn.execute(select(w.c.project_id, w.c.kinds, w.c.active)
                               .where(listening_expr(kind, project.id))).all()
            assert sorted((tuple(r) for r in got), key=repr) == _expected(rows, project.id, kind), (project.name, kind)
        # a column (the deliveries of several events at once)
        got = conn.execute(text("SELECT e.kind, w.kinds, w.project_id FROM (SELECT 'item.completed' AS kind "
                                "UNION ALL SELECT 'project.completed') e JOIN webhooks w ON "
                                + listening("e.kind")), {"p": mine.id}).all()
        want = sorted(((k, r[1], r[0]) for k in ("item.completed", "project.completed")
                       for r in _expected(rows, mine.id, k)), key=repr)
        assert sorted((tuple(r) for r in got), key=repr) == want
        assert conn.execute(text("SELECT count(*) FROM webhooks w WHERE " + of_project()),
                            {"p": mine.id}).scalar() == 2 * len(HOOK_KINDS)
        assert len(conn.execute(select(t.webhooks.c.id).where(of_project_expr(mine.id))).all()) == 2 * len(HOOK_KINDS)


def test_near_misses_do_not_listen():
    assert wants("*", "anything")
    assert wants('["item.completed"]', "item.completed")
    for kinds in ('["item.completed.later"]', '["x-item.completed"]', '["item"]', '["ITEM.COMPLETED"]', "[]"):
        assert not wants(kinds, "item.completed"), kinds


def test_events_are_stored_only_for_a_listener(store, owner):
    mine, other, _ = _hooks(store, owner[0].id)
    with store.write() as conn:  # only the active '*' hooks of the project or of every project want it
        event_id = events.emit(conn, "review.decided", mine.id, {})
        assert event_id is not None
        hooks = conn.execute(text("SELECT w.project_id, w.kinds FROM deliveries d JOIN webhooks w "
                                  "ON w.id = d.webhook_id WHERE d.event_id = :e"), {"e": event_id}).all()
    assert sorted((tuple(h) for h in hooks), key=repr) == sorted([(None, "*"), (mine.id, "*")], key=repr)
    with store.write() as conn:
        conn.execute(text("UPDATE webhooks SET active = 0 WHERE kinds = '*'"))
        assert events.emit(conn, "review.decided", mine.id, {}) is None
        event_id = events.emit(conn, "item.completed", mine.id, {})
        assert event_id is not None
        hooks = conn.execute(text("SELECT w.project_id, w.kinds FROM deliveries d JOIN webhooks w "
                                  "ON w.id = d.webhook_id WHERE d.event_id = :e"), {"e": event_id}).all()
    assert sorted((tuple(h) for h in hooks), key=repr) == sorted(
        [(None, '["item.completed"]'), (mine.id, '["item.completed"]')], key=repr)
