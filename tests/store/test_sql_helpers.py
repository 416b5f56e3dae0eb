"""store/sql.py: the dialect-specific INSERT ... ON CONFLICT, on SQLite and PostgreSQL, through a real store."""

from __future__ import annotations

from sqlalchemy import insert, select

from labelwright.services import audit
from labelwright.store import tables as t
from labelwright.store.sql import dialect_of, upsert


def _user(conn, name: str) -> int:
    return conn.execute(insert(t.users).values(name=name, role="annotator", disabled=0, created_at=1.0)
                        .returning(t.users.c.id)).scalar_one()


def _project(conn) -> int:
    return conn.execute(insert(t.projects).values(slug="p", name="p", schema="{}", overlap=1, lease_seconds=60,
                                                  created_at=1.0, updated_at=1.0)
                        .returning(t.projects.c.id)).scalar_one()


def test_upsert_does_nothing_or_updates_on_conflict(store):
    f = t.featurisers
    with store.write() as conn:
        assert dialect_of(conn) == dialect_of(store) == store.dialect
        pid = _project(conn)
        first = upsert(store, f).values(project_id=pid, version="v1", blob=b"a", created_at=1.0)
        conn.execute(first.on_conflict_do_nothing(index_elements=["project_id"]))
        again = upsert(conn, f).values(project_id=pid, version="v2", blob=b"b", created_at=2.0)
        got = conn.execute(again.on_conflict_do_nothing(index_elements=["project_id"]).returning(f.c.version)).first()
        assert got is None  # nothing inserted, nothing returned
        assert conn.execute(select(f.c.version)).scalar_one() == "v1"
        conn.execute(again.on_conflict_do_update(index_elements=["project_id"],
                                                 set_={"version": again.excluded.version, "blob": again.excluded.blob}))
        row = conn.execute(select(f.c.version, f.c.blob, f.c.created_at)).one()
    assert (row.version, bytes(row.blob), row.created_at) == ("v2", b"b", 1.0)  # created_at was not in set_


def test_audit_entries_filter_and_page_without_hand_built_sql(store):
    with store.write() as conn:
        alice = _user(conn, "alice")
        pid = _project(conn)
        for k in range(5):
            audit.record(conn, type("Actor", (), {"id": alice})(), f"act{k}", project_id=None if k % 2 else pid,
                         target="x' OR 1=1 --", details={"k": k})
    everything = audit.entries(store)
    assert [e["action"] for e in everything] == ["act4", "act3", "act2", "act1", "act0"]
    assert everything[0]["actor"] == "alice" and everything[0]["target"] == "x' OR 1=1 --"
    assert [e["action"] for e in audit.entries(store, project_id=pid)] == ["act4", "act2", "act0"]
    older = audit.entries(store, before=everything[1]["id"], limit=2)
    assert [e["action"] for e in older] == ["act2", "act1"]
