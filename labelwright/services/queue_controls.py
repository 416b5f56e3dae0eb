"""Controls a project's managers use on its queue: asking for more answers on chosen items, which reopens
them (MTurk requesters know it as "add assignments"). Expiring a project is a change to its schema:
:func:`labelwright.services.projects.expire`."""

from __future__ import annotations

from sqlalchemy import func

from labelwright.errors import NotFound, ValidationError
from labelwright.services import audit
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t
from labelwright.store.slots import retarget


def more_answers(store: Store, project: Project, external_ids: list[str], extra: int, by=None) -> dict:
    """Ask for ``extra`` more answers on the chosen items (by external id); they reopen in the queue."""
    if not 1 <= extra <= 20:
        raise ValidationError("ask for 1 to 20 more answers", field="answers")
    if not external_ids:
        raise ValidationError("name at least one item", field="items")
    i = t.items
    with store.write() as conn:
        changed = 0
        missing = []
        for ext in external_ids:
            item_id = conn.execute(
                retarget(func.coalesce(i.c.target, project.overlap) + extra,
                         i.c.project_id == project.id, i.c.external_id == str(ext), i.c.is_gold == 0)
                .returning(i.c.id)).scalar()
            if item_id is None:
                missing.append(ext)
            else:
                changed += 1
        if missing:
            raise NotFound(f"no ordinary item {missing[0]!r} in project {project.slug!r}"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        audit.record(conn, by, "items.more_answers", project.id, None, {"items": len(external_ids), "extra": extra})
    return {"items": changed, "extra_answers": extra}
