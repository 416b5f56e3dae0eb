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

from sqlalchemy import text

from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.schema import label_values
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import dumps, loads

LEASE_SECONDS = 600
# Confident learning flags every item its thresholds single out; a reviewer's time is dearer. A suspected label
# error goes to the check queue only when the model gives the other label at least this probability, and no
# more are added while this many wait.
MIN_SUGGESTED_PROBA = 0.7
MAX_OPEN_LABEL_ERRORS = 100

_NEXT = ("UPDATE assist_checks SET leased_by = :u, lease_until = :e WHERE id = ("
         "SELECT id FROM assist_checks WHERE project_id = :p AND checked_at IS NULL AND "
         "(lease_until IS NULL OR lease_until <= :now OR leased_by = :u) "
         "ORDER BY CASE WHEN leased_by = :u AND lease_until > :now THEN 0 ELSE 1 END, id LIMIT 1) "
         "AND checked_at IS NULL AND (lease_until IS NULL OR lease_until <= :now OR leased_by = :u) "
         "RETURNING id, item_id, kind, question, shown_label, reason, lease_until")


def add_label_errors(store, project: Project, model: dict, validation, *, now: float | None = None,
                     limit: int = 50) -> int:
    """Put the likely label errors of ``validation`` (people-labelled items, out-of-sample probabilities) in
    the check queue, most likely first, at most ``limit``, only those the model contradicts with at least
    :data:`MIN_SUGGESTED_PROBA`, and never more than :data:`MAX_OPEN_LABEL_ERRORS` waiting; gold items are never
    questioned. Returns how many were added."""
    from labelwright.assist.label_errors import find_label_issues

    now = now or time.time()
    if validation is None or validation.probas is None or len(validation.labels) < 10:
        return 0
    q = project.schema.assist_question()
    classes = label_values(q)
    with store.read() as conn:
        gold = {r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p AND is_gold = 1"),
                                           {"p": project.id})}
    with store.read() as conn:
        waiting = conn.execute(text("SELECT count(*) FROM assist_checks WHERE project_id = :p AND kind = 'label_error' "
                                    "AND checked_at IS NULL"), {"p": project.id}).scalar()
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
        rows.append({"p": project.id, "i": item_id, "q": q.name, "l": dumps(given), "now": now,
                     "r": f"{model['version']}: {issue['reason']}"})
        if len(rows) >= limit:
            break
    if not rows:
        return 0
    with store.write() as conn:
        added = 0
        for row in rows:
            got = conn.execute(text(
                "INSERT INTO assist_checks (project_id, item_id, kind, question, shown_label, reason, created_at) "
                "VALUES (:p, :i, 'label_error', :q, :l, :r, :now) ON CONFLICT (item_id, kind) DO NOTHING "
                "RETURNING id"), row).first()
            added += got is not None
    return added


def next_check(store, project: Project, reviewer: User, *, now: float | None = None) -> dict | None:
    """The reviewer's next check under a lease (the one they hold, if any), or None when none is open."""
    now = now or time.time()
    with store.write() as conn:
        row = conn.execute(text(_NEXT), {"u": reviewer.id, "p": project.id, "now": now,
                                         "e": now + LEASE_SECONDS}).first()
        if row is None:
            return None
        item = conn.execute(text("SELECT id, external_id, data FROM items WHERE id = :i"), {"i": row[1]}).first()
        suggested = None
        if row[2] == "label_error":
            pred = conn.execute(text("SELECT label, confidence FROM predictions WHERE item_id = :i"),
                                {"i": row[1]}).first()
            suggested = {"label": loads(pred[0]), "confidence": round(float(pred[1]), 4)} if pred else None
    q = project.schema.question(row[3])
    out = {"id": row[0], "kind": row[2], "question": row[3], "prompt": q.title,
           "labels": label_values(q), "item": {"id": item[0], "external_id": item[1], "data": loads(item[2])},
           "lease_expires_at": row[6]}
    if row[2] == "label_error":  # an audit is blind: the machine's label is not shown
        out.update({"current_label": loads(row[4]), "suggested": suggested, "reason": row[5]})
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


def decide(store, check_id: int, reviewer: User, label, *, now: float | None = None) -> dict:
    """Record the reviewer's label for a check they hold. An audit's label also marks the machine label
    correct or wrong and re-evaluates the audit (which may stop auto-labelling)."""
    from labelwright.services import autolabel
    from labelwright.services.projects import get_project

    now = now or time.time()
    with store.read() as conn:
        row = conn.execute(text("SELECT project_id, item_id, kind, question, leased_by, lease_until, checked_at "
                                "FROM assist_checks WHERE id = :c"), {"c": check_id}).first()
    if row is None:
        raise NotFound(f"no check {check_id}")
    project = get_project(store, row[0])
    value = _label(project, row[3], label)
    agrees = None
    with store.write() as conn:
        done = conn.execute(text(
            "UPDATE assist_checks SET checked_by = :u, checked_label = :l, checked_at = :now, lease_until = NULL "
            "WHERE id = :c AND checked_at IS NULL AND leased_by = :u RETURNING id"),
            {"u": reviewer.id, "l": dumps(value), "now": now, "c": check_id}).first()
        if done is None:
            raise Conflict("this check is not yours to decide (its lease ran out, or it was already decided); "
                           "ask for the next check")
        if row[2] == "audit":
            agrees = autolabel.record_audit(conn, row[1], reviewer.id, value, now)
    out = {"id": check_id, "kind": row[2], "label": value}
    if row[2] == "audit":
        out["machine_was_right"] = agrees
        out["audit"] = autolabel.evaluate(store, project, now=now).to_dict()
    return out


def list_checks(store, project: Project, *, limit: int = 200) -> list[dict]:
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT c.id, c.item_id, i.external_id, c.kind, c.question, c.shown_label, c.reason, c.created_at, "
            "c.checked_label, c.checked_at, u.name FROM assist_checks c JOIN items i ON i.id = c.item_id "
            "LEFT JOIN users u ON u.id = c.checked_by WHERE c.project_id = :p ORDER BY c.id DESC LIMIT :n"),
            {"p": project.id, "n": limit}).all()
    return [{"id": r[0], "item_id": r[1], "external_id": r[2], "kind": r[3], "question": r[4],
             "label": loads(r[5]) if r[3] == "label_error" else None, "reason": r[6], "created_at": r[7],
             "checked_label": loads(r[8]) if r[8] is not None else None, "checked_at": r[9], "checked_by": r[10]}
            for r in rows]


def checked_labels(store, project: Project) -> dict[str, dict[int, object]]:
    """``{question: {item_id: label}}`` from decided label-error checks (they replace the aggregate)."""
    out: dict[str, dict[int, object]] = {}
    with store.read() as conn:
        for item_id, question, label in conn.execute(text(
                "SELECT item_id, question, checked_label FROM assist_checks WHERE project_id = :p "
                "AND kind = 'label_error' AND checked_at IS NOT NULL ORDER BY checked_at"), {"p": project.id}):
            out.setdefault(question, {})[item_id] = loads(label)
    return out



def project_of(store, check_id: int) -> int:
    """The id of the project a check belongs to (:class:`NotFound` when there is no such check)."""
    row = store.lookup("SELECT project_id FROM assist_checks WHERE id = :c", {"c": check_id})
    if row is None:
        raise NotFound(f"no check {check_id}")
    return row[0]
