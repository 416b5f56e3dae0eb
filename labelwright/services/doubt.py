"""Items in doubt: the project's answered items whose consensus is least sure, candidates for gold (the owner
settles them) or for more answers (the owner's items-in-doubt page and the quality report)."""

from __future__ import annotations

from sqlalchemy import select

from labelwright.schema import is_categorical
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t


def items_in_doubt(store: Store, project: Project, labels: dict | None = None) -> list[dict]:
    """The project's ordinary items with answers, least sure first: the candidates for gold (the owner
    settles them) or for more answers.

    Each item's doubt is its lowest consensus confidence over the categorical questions (single choice,
    rating, pairwise; over every labelled question when the project has none of those), taken from
    :func:`labelwright.services.labels.project_labels` on people's answers, so it is the confidence the
    quality page and the export show. Gold items and items nobody answered are left out. Rows:
    ``{item_id, external_id, confidence, question, label}``, ties in item order."""
    if labels is None:
        labels = project_labels(store, project, machine=False)
    categorical = {q.name for q in project.schema.questions if is_categorical(q)}
    names = [n for n in labels if n in categorical] or list(labels)
    worst: dict[int, tuple[float, str, object]] = {}
    for name in names:
        ql = labels[name]
        for item_id, label, confidence in ql.items():
            if confidence is None or item_id in ql.special:  # gold, or a label that came another way
                continue
            if item_id not in worst or confidence < worst[item_id][0]:
                worst[item_id] = (confidence, name, label)
    if not worst:
        return []
    i = t.items
    with store.read() as conn:
        rows = conn.execute(select(i.c.id, i.c.external_id).where(i.c.project_id == project.id, i.c.is_gold == 0))
        external = {r.id: r.external_id for r in rows}
    out = [{"item_id": i, "external_id": external[i], "confidence": round(float(c), 4), "question": q, "label": v}
           for i, (c, q, v) in worst.items() if i in external]
    out.sort(key=lambda d: (d["confidence"], d["item_id"]))
    return out


def doubt_neighbours(doubt: list[dict], item_id: int, position: int | None = None) -> dict:
    """Where ``item_id`` stands in :func:`items_in_doubt`'s list and the items before and after it:
    ``{position, of, previous, next}`` (``previous``/``next``: a row with its ``position``, or None).

    An item no longer in the list (just marked gold) keeps the ``position`` it had, so "next" is the
    item that came after it."""
    ids = [d["item_id"] for d in doubt]
    if item_id in ids:
        here = ids.index(item_id)
        before, after = here - 1, here + 1
    elif position is not None:
        here = None
        before, after = position - 1, position
    else:
        return {"position": None, "of": len(doubt), "previous": None,
                "next": {**doubt[0], "position": 0} if doubt else None}

    def at(k):
        return {**doubt[k], "position": k} if 0 <= k < len(doubt) else None
    return {"position": here, "of": len(doubt), "previous": at(before), "next": at(after)}
