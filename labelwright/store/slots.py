"""The one definition of an item's queue flag, used by every statement that writes ``items.n_assigned``
or ``items.target``.

An item wants ``COALESCE(target, overlap)`` answers (``target`` is set for gold items, by adaptive
redundancy, by "more answers" and after a rejected review). ``items.is_open`` is what the queue index
scans, and must always equal ``n_assigned < COALESCE(target, overlap)``. Hand-written copies of that
rule drifted (one writer set the flag to 1 after releasing a slot of an item that still had more than
its target), so every writer builds its ``SET`` clause here and gives the flag the same new values it
gives the counters. ``tests/server.py`` checks the invariant on live data; the queue's pick also tests
``n_assigned < want`` itself, so a flag that were ever wrong could not make it report "nothing left".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Update, case, func, select, update

from labelwright.store import tables as t

# The overlap of the item's project, for statements that do not have it as the parameter :o.
PROJECT_OVERLAP = "(SELECT p.overlap FROM projects p WHERE p.id = items.project_id)"


def want(target: str = "target", overlap: str = ":o") -> str:
    """How many answers the item wants."""
    return f"COALESCE({target}, {overlap})"


def open_flag(assigned: str = "n_assigned", target: str = "target", overlap: str = ":o") -> str:
    """The value of ``is_open`` for an item whose new ``n_assigned`` and ``target`` are the expressions given
    (in an UPDATE's SET, column names mean the old values: pass the new ones, e.g. ``"n_assigned + 1"``)."""
    return f"CASE WHEN {assigned} < {want(target, overlap)} THEN 1 ELSE 0 END"


def release_sql(count: str = "1", where: str = "id = :i") -> str:
    """Give back ``count`` slots of the items matched by ``where`` (leases released or reclaimed)."""
    return (f"UPDATE items SET n_assigned = n_assigned - {count}, "
            f"is_open = {open_flag(f'n_assigned - {count}', 'target', PROJECT_OVERLAP)} WHERE {where}")


# ---- the same rule as SQLAlchemy Core expressions, for the statements built with Core ----------------------
# (the hand-written strings above serve the queue's hot statements in store/queue_sql.py; both are tested to
# keep the flag equal to n_assigned < COALESCE(target, overlap): tests/store/test_slots.py)


def project_overlap_of_item() -> Any:
    """The overlap of the item's project (a scalar subquery on ``projects``), like :data:`PROJECT_OVERLAP`."""
    p, i = t.projects, t.items
    return select(p.c.overlap).where(p.c.id == i.c.project_id).scalar_subquery()


def open_expr(assigned: Any, target: Any, overlap: Any) -> ColumnElement:
    """``is_open`` for an item whose new ``n_assigned`` and ``target`` are these expressions, as Core
    (:func:`open_flag`). In an UPDATE's values, columns mean the old values: pass the new ones."""
    return case((assigned < func.coalesce(target, overlap), 1), else_=0)


def retarget(new_target: Any, *where: Any, overlap: Any = None) -> Update:
    """Set the items' target to ``new_target`` (an expression of the old values, or a bind parameter) and
    their flag with it (:func:`open_flag`'s rule). ``overlap``: the project's, when the caller has
    it (default: read from the item's project)."""
    i = t.items
    overlap = project_overlap_of_item() if overlap is None else overlap
    return update(i).where(*where).values(target=new_target,
                                          is_open=open_expr(i.c.n_assigned, new_target, overlap))


def release(*where: Any, count: Any = 1) -> Update:
    """:func:`release_sql` as Core: give back ``count`` slots of the items matched by ``where``."""
    i = t.items
    return update(i).where(*where).values(
        n_assigned=i.c.n_assigned - count,
        is_open=open_expr(i.c.n_assigned - count, i.c.target, project_overlap_of_item()))


def reflag(*where: Any, overlap: Any) -> Update:
    """Recompute the flag of the items matched by ``where`` for a new project ``overlap``."""
    i = t.items
    return update(i).where(*where).values(is_open=open_expr(i.c.n_assigned, i.c.target, overlap))
