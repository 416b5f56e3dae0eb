"""The check queue: items the assistant asks a reviewer to look at (issue 9 items 6 and 7).

Two kinds of check, one queue per project, served to reviewers (project role reviewer or above) one at a
time under a lease, like review:

* ``audit``: a random sample of machine labels (:mod:`labelwright.services.autolabel`). The reviewer labels
  the item *without* seeing the machine's label (an audit that shows the answer measures agreement with
  it, not accuracy); their label decides whether the machine was right, and the audit is re-evaluated.
* ``label_error``: an item whose aggregated label from people is probably wrong, found by confident
  learning (:func:`labelwright.assist.label_errors.find_label_issues`) on the model's out-of-sample
  probabilities. The reviewer sees the current label, the model's suggestion and the reason, and gives the
  label they believe; it replaces the aggregate in the export (method ``check``).
"""

from __future__ import annotations

import time

from sqlalchemy import and_, case, func, or_, select, update

from labelwright.assist.label_errors import find_label_issues
from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.schema import label_values
from labelwright.services import autolabel
from labelwright.services.projects import Project, get_project
from labelwright.services.users import User
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t
from labelwright.store.sql import upsert

LEASE_SECONDS = 600
# Confident learning flags every item its thresholds single out; a reviewer's time is dearer. A suspected label
# error goes to the check queue only when the model gives the other label at least this probability, and no
# more are added while this many wait.
MIN_SUGGESTED_PROBA = 0.7
MAX_OPEN_LABEL_ERRORS = 100



def _lease_next(project_id: int, reviewer_id: int, now: float):
    """Lease the reviewer's next open check (the one they hold first), in one statement."""
    c = t.assist_checks
    free = or_(c.c.lease_until.is_(None), c.c.lease_until <= now, c.c.leased_by == reviewer_id)
    pick = (select(c.c.id).where(c.c.project_id == project_id, c.c.checked_at.is_(None), free)
            .order_by(case((and_(c.c.leased_by == reviewer_id, c.c.lease_until > now), 0), else_=1), c.c.id)
            .limit(1).scalar_subquery())
    return (update(c).where(c.c.id == pick, c.c.checked_at.is_(None), free)
            .values(leased_by=reviewer_id, lease_until=now + LEASE_SECONDS)
            .returning(c.c.id, c.c.item_id, c.c.kind, c.c.question, c.c.shown_label, c.c.reason, c.c.lease_until))


def add_label_errors(store: Store, project: Project, model: dict, validation, *, now: float | None = None,
                     limit: int = 50) -> int:
    """Put the likely label errors of ``validation`` (people-labelled items, out-of-sample probabilities) in
    the check queue, most likely first, at most ``limit``, only those the model contradicts with at least
    :data:`MIN_SUGGESTED_PROBA`, and never more than :data:`MAX_OPEN_LABEL_ERRORS` waiting; gold items are never
    questioned. Returns how many were added."""
    now = now or time.time()
    if validation is None or validation.probas is None or len(validation.labels) < 10:
        return 0
    q = project.schema.assist_question()
    classes = label_values(q)
    i, c = t.items, t.assist_checks
    with store.read() as conn:
        gold = set(conn.execute(select(i.c.id).where(i.c.project_id == project.id, i.c.is_gold == 1)).scalars())
        waiting = conn.execute(select(func.count()).select_from(c).where(
            c.c.project_id == project.id, c.c.kind == "label_error", c.c.checked_at.is_(None))).scalar_one()
    limit = min(limit, MAX_OPEN_LABEL_ERRORS - waiting)
    if limit <= 0:
        return 0
    issues = find_label_issues(validation.labels, validation.probas, [str(c) for c in classes])
    issues = issues[issues["suggested_proba"] >= MIN_SUGGESTED_PROBA]
    rows = []
    for _, issue in issues.iterrows():
        item_id = int(validation.ids[int(issue["index"])])
        if item_id in gold:
            continue
        given = classes[int(validation.labels[int(issue["index"])])]
        rows.append({"project_id": project.id, "item_id": item_id, "kind": "label_error", "question": q.name,
                     "shown_label": dumps(given), "created_at": now,
                     "reason": f"{model['version']}: {issue['reason']}"})
        if len(rows) >= limit:
            break
    if not rows:
        return 0
    with store.write() as conn:
        added = 0
        add = upsert(conn, c).on_conflict_do_nothing(index_elements=["item_id", "kind"]).returning(c.c.id)
        for row in rows:
            added += conn.execute(add.values(**row)).first() is not None
    return added


def next_check(store: Store, project: Project, reviewer: User, *, now: float | None = None) -> dict | None:
    """The reviewer's next check under a lease (the one they hold, if any), or None when none is open."""
    now = now or time.time()
    i, p = t.items, t.predictions
    with store.write() as conn:
        row = conn.execute(_lease_next(project.id, reviewer.id, now)).first()
        if row is None:
            return None
        item = conn.execute(select(i.c.id, i.c.external_id, i.c.data).where(i.c.id == row.item_id)).one()
        suggested = None
        if row.kind == "label_error":
            pred = conn.execute(select(p.c.label, p.c.confidence).where(p.c.item_id == row.item_id)).first()
            suggested = {"label": loads(pred.label), "confidence": round(float(pred.confidence), 4)} if pred else None
    q = project.schema.question(row.question)
    out = {"id": row.id, "kind": row.kind, "question": row.question, "prompt": q.title,
           "labels": label_values(q),
           "item": {"id": item.id, "external_id": item.external_id, "data": loads(item.data)},
           "lease_expires_at": row.lease_until}
    if row.kind == "label_error":  # an audit is blind: the machine's label is not shown
        out.update({"current_label": loads(row.shown_label), "suggested": suggested, "reason": row.reason})
    else:
        out["reason"] = "audit: label this item; your label is compared with the machine's"
    return out


def _label(project: Project, question: str, value):
    q = project.schema.question(question)
    values = label_values(q)
    for v in values:
        if v == value or (isinstance(v, int) and isinstance(value, str) and value.strip() == str(v)):
            return v
    raise ValidationError(f"{value!r} is not a label of {question!r}; labels are {values}", field="label")


def decide(store: Store, check_id: int, reviewer: User, label, *, now: float | None = None) -> dict:
    """Record the reviewer's label for a check they hold. An audit's label also marks the machine label
    correct or wrong and re-evaluates the audit (which may stop auto-labelling)."""
    now = now or time.time()
    c = t.assist_checks
    with store.read() as conn:
        row = conn.execute(select(c.c.project_id, c.c.item_id, c.c.kind, c.c.question)
                           .where(c.c.id == check_id)).first()
    if row is None:
        raise NotFound(f"no check {check_id}")
    project = get_project(store, row.project_id)
    value = _label(project, row.question, label)
    agrees = None
    with store.write() as conn:
        done = conn.execute(update(c).where(c.c.id == check_id, c.c.checked_at.is_(None), c.c.leased_by == reviewer.id)
                            .values(checked_by=reviewer.id, checked_label=dumps(value), checked_at=now,
                                    lease_until=None).returning(c.c.id)).first()
        if done is None:
            raise Conflict("this check is not yours to decide (its lease ran out, or it was already decided); "
                           "ask for the next check")
        if row.kind == "audit":
            agrees = autolabel.record_audit(conn, row.item_id, reviewer.id, value, now)
    out = {"id": check_id, "kind": row.kind, "label": value}
    if row.kind == "audit":
        out["machine_was_right"] = agrees
        out["audit"] = autolabel.evaluate(store, project, now=now).to_dict()
    return out


def list_checks(store: Store, project: Project, *, limit: int = 200) -> list[dict]:
    c, i, u = t.assist_checks, t.items, t.users
    stmt = (select(c.c.id, c.c.item_id, i.c.external_id, c.c.kind, c.c.question, c.c.shown_label, c.c.reason,
                   c.c.created_at, c.c.checked_label, c.c.checked_at, u.c.name.label("checked_by"))
            .select_from(c.join(i, i.c.id == c.c.item_id).outerjoin(u, u.c.id == c.c.checked_by))
            .where(c.c.project_id == project.id).order_by(c.c.id.desc()).limit(limit))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "item_id": r.item_id, "external_id": r.external_id, "kind": r.kind, "question": r.question,
             "label": loads(r.shown_label) if r.kind == "label_error" else None, "reason": r.reason,
             "created_at": r.created_at,
             "checked_label": loads(r.checked_label) if r.checked_label is not None else None,
             "checked_at": r.checked_at, "checked_by": r.checked_by}
            for r in rows]


def checked_labels(store: Store, project: Project) -> dict[str, dict[int, object]]:
    """``{question: {item_id: label}}`` from decided label-error checks (they replace the aggregate)."""
    out: dict[str, dict[int, object]] = {}
    c = t.assist_checks
    with store.read() as conn:
        for r in conn.execute(select(c.c.item_id, c.c.question, c.c.checked_label)
                              .where(c.c.project_id == project.id, c.c.kind == "label_error",
                                     c.c.checked_at.is_not(None)).order_by(c.c.checked_at)):
            out.setdefault(r.question, {})[r.item_id] = loads(r.checked_label)
    return out


def project_of(store: Store, check_id: int) -> int:
    """The id of the project a check belongs to (:class:`NotFound` when there is no such check)."""
    c = t.assist_checks
    with store.read() as conn:
        project_id = conn.execute(select(c.c.project_id).where(c.c.id == check_id)).scalar()
    if project_id is None:
        raise NotFound(f"no check {check_id}")
    return project_id
