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


def retarget_sql(new_target: str, where: str = "id = :i") -> str:
    """Set the items' target to ``new_target`` (an expression of the old values) and their flag with it."""
    return (f"UPDATE items SET target = {new_target}, "
            f"is_open = {open_flag('n_assigned', new_target, PROJECT_OVERLAP)} WHERE {where}")
