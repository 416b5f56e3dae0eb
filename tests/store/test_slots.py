"""The queue flag's one rule (labelwright/store/slots.py), as hand-written SQL and as Core: both keep
``is_open == (n_assigned < COALESCE(target, overlap))`` on both databases, item by item."""

from __future__ import annotations

import itertools

from sqlalchemy import func, null, select, text, update

from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.store import tables as t
from labelwright.store.slots import PROJECT_OVERLAP, open_expr, open_flag, reflag, release, release_sql, retarget
from tests.conftest import SPAM_SCHEMA

STATES = list(itertools.product((0, 1, 2, 3), (None, 0, 1, 2, 4)))  # (n_assigned, target)


def _items(store, slug: str, overlap: int) -> tuple[int, list[int]]:
    p = create_project(store, {**SPAM_SCHEMA, "slug": slug, "overlap": overlap})
    add_items(store, p, [{"id": f"{slug}{k}", "text": "x"} for k in range(len(STATES))])
    i = t.items
    with store.write() as conn:
        ids = conn.execute(select(i.c.id).where(i.c.project_id == p.id).order_by(i.c.id)).scalars().all()
        for item_id, (assigned, target) in zip(ids, STATES):
            conn.execute(update(i).where(i.c.id == item_id).values(n_assigned=assigned, target=target, is_open=0))
    return p.id, ids


def _broken(store, project_id: int, overlap: int) -> list:
    """The items whose flag disagrees with the rule."""
    i = t.items
    with store.read() as conn:
        rows = conn.execute(select(i.c.id, i.c.n_assigned, i.c.target, i.c.is_open)
                            .where(i.c.project_id == project_id)).all()
    return [r for r in rows if r.is_open != int(r.n_assigned < (overlap if r.target is None else r.target))]


def _state(store, project_id: int) -> list[tuple]:
    i = t.items
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(select(i.c.n_assigned, i.c.target, i.c.is_open)
                                               .where(i.c.project_id == project_id).order_by(i.c.id))]


def _retarget_sql(new_target: str, where: str) -> str:
    """Retargeting spelled by hand with the rule's SQL text (the hot statements' form)."""
    return (f"UPDATE items SET target = {new_target}, "
            f"is_open = {open_flag('n_assigned', new_target, PROJECT_OVERLAP)} WHERE {where}")


def test_core_and_hand_written_slot_statements_agree(store):
    a, a_ids = _items(store, "a", 2)
    b, b_ids = _items(store, "b", 2)
    i = t.items
    # reflag: a new overlap (Core only: the project's own statement)
    with store.write() as conn:
        conn.execute(reflag(i.c.project_id == a, overlap=2))
        conn.execute(text("UPDATE items SET is_open = CASE WHEN n_assigned < COALESCE(target, 2) THEN 1 ELSE 0 END "
                          "WHERE project_id = :p"), {"p": b})
    assert _broken(store, a, 2) == [] and _state(store, a) == _state(store, b)
    # retarget to an expression of the old values, then to a constant and to NULL
    with store.write() as conn:
        conn.execute(retarget(func.coalesce(i.c.target, 2) + 1, i.c.project_id == a))
        conn.execute(text(_retarget_sql("COALESCE(target, :o) + 1", "project_id = :p")), {"o": 2, "p": b})
    assert _broken(store, a, 2) == [] and _state(store, a) == _state(store, b)
    with store.write() as conn:
        conn.execute(retarget(null(), i.c.project_id == a))
        conn.execute(text(_retarget_sql("NULL", "project_id = :p")), {"p": b})
    assert _broken(store, a, 2) == [] and _state(store, a) == _state(store, b)
    # release a slot of the items that hold one
    with store.write() as conn:
        conn.execute(release(i.c.project_id == a, i.c.n_assigned > 0))
        conn.execute(text(release_sql(where="project_id = :p AND n_assigned > 0")), {"p": b})
    assert _broken(store, a, 2) == [] and _state(store, a) == _state(store, b)
    assert {s[2] for s in _state(store, a)} == {0, 1}  # both flags occur: the check can tell them apart


def test_open_expr_is_the_rule():
    sql = str(open_expr(t.items.c.n_assigned, t.items.c.target, 3).compile(compile_kwargs={"literal_binds": True}))
    assert sql == "CASE WHEN (items.n_assigned < coalesce(items.target, 3)) THEN 1 ELSE 0 END"
