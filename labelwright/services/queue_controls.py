"""Controls a project's managers use on its queue: asking for more answers on chosen items, which reopens
them (MTurk requesters know it as "add assignments"). Expiring a project is a change to its schema:
:func:`labelwright.services.projects.expire`."""

from __future__ import annotations

from sqlalchemy import text

from labelwright.errors import NotFound, ValidationError
from labelwright.services import audit
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store.slots import retarget_sql


def more_answers(store: Store, project: Project, external_ids: list[str], extra: int, by=None) -> dict:
    """Ask for ``extra`` more answers on the chosen items (by external id); they reopen in the queue."""
    if not 1 <= extra <= 20:
        raise ValidationError("ask for 1 to 20 more answers", field="answers")
    if not external_ids:
        raise ValidationError("name at least one item", field="items")
    with store.write() as conn:
        changed = 0
        missing = []
        for ext in external_ids:
            n = conn.execute(text(
                retarget_sql("COALESCE(target, :o) + :x", "project_id = :p AND external_id = :e AND is_gold = 0")
                + " RETURNING id"),
                {"o": project.overlap, "x": extra, "p": project.id, "e": str(ext)}).first()
            if n is None:
                missing.append(ext)
            else:
                changed += 1
        if missing:
            raise NotFound(f"no ordinary item {missing[0]!r} in project {project.slug!r}"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        audit.record(conn, by, "items.more_answers", project.id, None, {"items": len(external_ids), "extra": extra})
    return {"items": changed, "extra_answers": extra}
