"""Review: reviewers check submissions and accept, fix or reject them.

A project with ``review:`` in its schema gives its reviewers (and managers, owners) a queue of
submissions, chosen by ``review.mode``:

* ``all``: every submission;
* ``sample``: a random share ``review.rate`` of them (decided by a hash of the submission's id, so the
  choice is stable and costs nothing when the answer is saved);
* ``disagreement``: submissions whose answer differs from the item's majority, or from its gold answer.

For each one the reviewer **accepts** it, **fixes** it (their answers are kept beside the annotator's,
which stay untouched; aggregation and the export use the fix) or **rejects** it with written feedback.
A rejected submission no longer counts: the item asks for one more answer, from another annotator (the
rejected annotator cannot answer it again). Every decision is a row in ``reviews`` (a changed decision
is a new row), in the audit log, and an event (``review.decided``). Annotators see the decisions and
feedback on their own work (:func:`feedback_for`, their home page). A reviewer never reviews their own
submission and never sees gold answers.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Row,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)

from labelwright.consensus import majority
from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.services import audit, events
from labelwright.services.gold import matches_label, score
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t
from labelwright.store.slots import retarget
from labelwright.store.sql import upsert

DECISIONS = ("accepted", "fixed", "rejected")
_SAMPLE_MOD = 10_000
_BATCH = 500


def in_sample(annotation_id: int, rate: float) -> bool:
    """A stable pseudo-random choice of ``rate`` of the submissions (Knuth's multiplicative hash)."""
    return (annotation_id * 2654435761) % 4294967296 % _SAMPLE_MOD < rate * _SAMPLE_MOD




def in_sample_sql(annotation_id: ColumnElement, rate: float) -> ColumnElement[bool]:
    """:func:`in_sample` in SQL, for both databases: (id * 2654435761) mod 2**32 without a 64-bit overflow, by
    splitting the multiplier into 40503 * 2**16 + 31153 (every product stays below 2**48)."""
    def n(value: int) -> ColumnElement:  # written into the SQL: the arithmetic stays in 64-bit integers
        return literal_column(str(int(value)))
    low = annotation_id % n(4294967296)
    return (low * n(31153) + ((low * n(40503)) % n(65536)) * n(65536)) % n(4294967296) % n(_SAMPLE_MOD) \
        < rate * _SAMPLE_MOD


def _open_to(a: FromClause, project: Project, reviewer: User, now: float) -> list[ColumnElement[bool]]:
    """The submissions ``a`` that may wait for ``reviewer``: pending, not theirs, not under another reviewer's
    lease, and chosen by the review mode where SQL can choose (``all``, ``sample``; ``disagreement`` is
    Python's)."""
    rl = t.review_leases
    out = [a.c.project_id == project.id, a.c.review_status == "pending", a.c.user_id != reviewer.id,
           ~exists().where(rl.c.annotation_id == a.c.id, rl.c.reviewer_id != reviewer.id, rl.c.expires_at > now)]
    settings = project.schema.review
    if settings is not None and settings.mode == "sample":
        out.append(in_sample_sql(a.c.id, settings.rate))
    return out


def _candidates(conn: Connection, project: Project, reviewer: User, now: float, after: int) -> list[Row]:
    a, u = t.annotations, t.users
    return list(conn.execute(
        select(a.c.id, a.c.item_id, a.c.user_id, a.c.answers, a.c.active_ms, a.c.created_at, u.c.name, a.c.revision)
        .select_from(a.join(u, u.c.id == a.c.user_id))
        .where(*_open_to(a, project, reviewer, now), a.c.id > after).order_by(a.c.id).limit(_BATCH)).all())


def _disagrees(conn: Connection, project: Project, rows: list[Row]) -> set[int]:
    """Ids of the submissions among ``rows`` that differ from their item's majority or gold answer."""
    items = sorted({r.item_id for r in rows})
    if not items:
        return set()
    a, g = t.annotations, t.gold
    all_answers: dict[int, list] = {}
    for r in conn.execute(select(a.c.item_id, a.c.answers, a.c.review_status, a.c.reviewed_answers)
                          .where(a.c.item_id.in_(items))):
        if r.review_status != "rejected":
            all_answers.setdefault(r.item_id, []).append(loads(r.reviewed_answers or r.answers))
    gold = {r.item_id: loads(r.answers) for r in conn.execute(
        select(g.c.item_id, g.c.answers).where(g.c.item_id.in_(items)))}
    questions = {q.name: q for q in project.schema.questions}
    out = set()
    for row in rows:
        ann_id, item_id = row.id, row.item_id
        answers = loads(row.answers)
        if item_id in gold:
            right, checked = score(questions, answers, gold[item_id])
            if right < checked:
                out.add(ann_id)
            continue
        votes = majority(project.schema, all_answers.get(item_id, []))
        for name, v in votes.items():
            if v["n"] >= 2 and answers.get(name) is not None and not v.get("tie") \
                    and matches_label(questions[name], answers[name], v["label"]) is False:
                out.add(ann_id)
                break
    return out


def _waiting_batches(conn: Connection, project: Project, reviewer: User, now: float, after: int = 0):
    """The submissions waiting for ``reviewer``, in id order and in batches: pending, not their own, not
    under another reviewer's lease, and chosen by the project's review mode. One definition for the
    queue (:func:`next_for_review`) and the count (:func:`waiting`, which counts the same in one statement
    where SQL can choose: :func:`_open_to`), so the two never disagree."""
    settings = project.schema.review
    while True:
        rows = _candidates(conn, project, reviewer, now, after)
        if not rows:
            return
        if settings is not None and settings.mode == "disagreement":
            flagged = _disagrees(conn, project, rows)
            chosen = [r for r in rows if r.id in flagged]
        else:
            chosen = list(rows)
        if chosen:
            yield chosen
        after = rows[-1].id


def waiting(store: Store, project: Project, reviewer: User, now: float | None = None) -> int:
    """How many submissions are waiting for ``reviewer`` (what :func:`next_for_review` hands out, one by
    one): 0 exactly when it has nothing to give."""
    if project.schema.review is None:
        return 0
    now = now or time.time()
    with store.read() as conn:
        if project.schema.review.mode == "disagreement":
            return sum(len(rows) for rows in _waiting_batches(conn, project, reviewer, now))
        a = t.annotations
        return int(conn.execute(select(func.count()).select_from(a)
                                .where(*_open_to(a, project, reviewer, now))).scalar_one())


def next_for_review(store: Store, project: Project, reviewer: User, now: float | None = None,
                    skip: int | None = None) -> dict | None:
    """The next submission for ``reviewer`` under a lease, or None when none is waiting.

    ``skip`` passes over one submission (the reviewer's "next"): its lease, when they hold it, is given
    up and the one after it comes next (or, past the last, the first again; the same one when no other
    is waiting)."""
    settings = project.schema.review
    if settings is None:
        raise ValidationError(f"project {project.slug!r} has no review (add `review:` to its schema)")
    now = now or time.time()
    rl, a, u, i = t.review_leases, t.annotations, t.users, t.items
    with store.write() as conn:
        held = conn.execute(select(rl.c.annotation_id).where(
            rl.c.reviewer_id == reviewer.id, rl.c.project_id == project.id, rl.c.expires_at > now)).scalar()
        if skip is not None and held == skip:  # passing over the one held: its lease goes
            conn.execute(delete(rl).where(rl.c.annotation_id == skip, rl.c.reviewer_id == reviewer.id))
            held = None
        chosen = None
        # after the one passed over, then from the start, then (no other waiting) that one again
        passes = ((0, None),) if skip is None else ((skip, skip), (0, skip), (0, None))
        for start, leave_out in passes:
            for rows in _waiting_batches(conn, project, reviewer, now, start):
                if held is not None and any(r.id == held for r in rows):
                    chosen = next(r for r in rows if r.id == held)
                else:
                    chosen = next((r for r in rows if r.id != leave_out), None)
                if chosen is not None:
                    break
            if chosen is not None:
                break
        if chosen is None:
            return None
        lease = upsert(conn, rl).values(annotation_id=chosen.id, reviewer_id=reviewer.id, project_id=project.id,
                                        expires_at=now + settings.lease_seconds)
        conn.execute(lease.on_conflict_do_update(index_elements=["annotation_id"], set_={
            "reviewer_id": lease.excluded.reviewer_id, "expires_at": lease.excluded.expires_at}))
        item = conn.execute(select(i.c.external_id, i.c.data).where(i.c.id == chosen.item_id)).one()
        others = conn.execute(select(u.c.name, a.c.answers).select_from(a.join(u, u.c.id == a.c.user_id))
                              .where(a.c.item_id == chosen.item_id, a.c.id != chosen.id,
                                     a.c.review_status != "rejected").order_by(a.c.id)).all()
    return {"annotation_id": chosen.id, "annotator": chosen.name, "answers": loads(chosen.answers),
            "active_ms": chosen.active_ms, "created_at": chosen.created_at, "revision": chosen.revision,
            "item": {"id": chosen.item_id, "external_id": item.external_id, "data": loads(item.data)},
            "other_answers": [{"annotator": o.name, "answers": loads(o.answers)} for o in others],
            "lease_expires_at": now + settings.lease_seconds}


def decide(store: Store, project: Project, reviewer: User, annotation_id: int, decision: str, *,
           fixed_answers: dict | None = None, feedback: str | None = None, revision: int | None = None,
           now: float | None = None) -> dict:
    """Record a decision on one submission of ``project``; returns the review.

    The decision is on the submission's current revision (kept as ``reviewed_revision``; from then on
    its author cannot amend it). ``revision``, when given, is the one the reviewer saw: if the
    annotator amended it since, nothing is recorded (:class:`Conflict`)."""
    if decision not in DECISIONS:
        raise ValidationError(f"decision must be one of {list(DECISIONS)}", field="decision")
    feedback = (feedback or "").strip() or None
    if feedback is not None and len(feedback) > 10_000:
        raise ValidationError("feedback has at most 10,000 characters", field="feedback")
    if decision == "rejected" and not feedback:
        raise ValidationError("say why: a rejection needs written feedback for the annotator", field="feedback")
    clean = None
    if decision == "fixed":
        if fixed_answers is None:
            raise ValidationError("a fix needs the corrected answers", field="answers")
        clean = project.schema.validate_answers(fixed_answers)
    now = now or time.time()
    a, u, rv, i, rl = t.annotations, t.users, t.reviews, t.items, t.review_leases
    fixed = dumps(clean) if clean is not None else None
    with store.write() as conn:
        row = conn.execute(select(a.c.user_id, a.c.item_id, a.c.review_status, u.c.name, a.c.revision)
                           .select_from(a.join(u, u.c.id == a.c.user_id))
                           .where(a.c.id == annotation_id, a.c.project_id == project.id)).first()
        if row is None:
            raise NotFound(f"no submission {annotation_id} in project {project.slug!r}")
        if clean is not None and project.schema.checks_items():  # the fix against the item it answers
            data = conn.execute(select(i.c.data).where(i.c.id == row.item_id)).scalar_one()
            project.schema.validate_answers(fixed_answers, loads(data))
        if row.user_id == reviewer.id:
            raise Conflict("you cannot review your own submission")
        if revision is not None and revision != row.revision:
            raise Conflict(f"the annotator changed this submission (revision {row.revision}, you saw {revision}); "
                           "look at it again", field="revision")
        review_id = conn.execute(insert(rv).values(
            annotation_id=annotation_id, project_id=project.id, reviewer_id=reviewer.id, decision=decision,
            fixed_answers=fixed, feedback=feedback, created_at=now, revision=row.revision)
            .returning(rv.c.id)).scalar_one()
        # the revision guard: an amend that committed after the read above makes this change nothing
        changed = conn.execute(update(a).where(a.c.id == annotation_id, a.c.revision == row.revision)
                               .values(review_status=decision, reviewed_answers=fixed,
                                       reviewed_revision=a.c.revision)).rowcount
        if changed != 1:
            raise Conflict("the annotator changed this submission meanwhile; look at it again", field="revision")
        if decision == "rejected" and row.review_status != "rejected":
            # the rejected answer no longer counts: ask for one more, from someone else (flag: store/slots.py)
            more = func.coalesce(i.c.target, project.overlap) + 1
            conn.execute(retarget(more, i.c.id == row.item_id, i.c.is_gold == 0))
        conn.execute(delete(rl).where(rl.c.annotation_id == annotation_id))
        audit.record(conn, reviewer, "review.decide", project.id, str(annotation_id),
                     {"decision": decision, "annotator": row.name})
        events.emit(conn, "review.decided", project.id, {
            "project": project.slug, "annotation_id": annotation_id, "item_id": row.item_id, "annotator": row.name,
            "reviewer": reviewer.name, "decision": decision, "fixed_answers": clean, "feedback": feedback}, now)
    return {"id": review_id, "annotation_id": annotation_id, "decision": decision, "fixed_answers": clean,
            "feedback": feedback, "reviewer": reviewer.name, "revision": row.revision, "created_at": now}


def feedback_for(store: Store, user: User, project: Project | None = None, limit: int = 50) -> list[dict]:
    """Decisions on the user's own submissions (newest first), with the reviewer's feedback and fix."""
    rv, a, i, pr = t.reviews, t.annotations, t.items, t.projects
    stmt = (select(rv.c.id, rv.c.annotation_id, pr.c.slug, i.c.external_id, rv.c.decision, rv.c.feedback,
                   rv.c.fixed_answers, a.c.answers, rv.c.created_at)
            .select_from(rv.join(a, a.c.id == rv.c.annotation_id).join(i, i.c.id == a.c.item_id)
                         .join(pr, pr.c.id == rv.c.project_id))
            .where(a.c.user_id == user.id).order_by(rv.c.id.desc()).limit(limit))
    if project is not None:
        stmt = stmt.where(rv.c.project_id == project.id)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "annotation_id": r.annotation_id, "project": r.slug, "external_id": r.external_id,
             "decision": r.decision, "feedback": r.feedback, "fixed_answers": loads(r.fixed_answers)
             if r.fixed_answers else None, "your_answers": loads(r.answers), "created_at": r.created_at}
            for r in rows]


def counts(store: Store, project: Project, reviewer: User | None = None, now: float | None = None) -> dict:
    """Submissions by review status (``pending`` counts every undecided one, reviewed or not by the
    project's mode). With ``reviewer``, ``waiting`` is what waits for them (:func:`waiting`)."""
    a = t.annotations
    with store.read() as conn:
        rows = conn.execute(select(a.c.review_status, func.count().label("n")).where(a.c.project_id == project.id)
                            .group_by(a.c.review_status)).all()
    out = {d: 0 for d in ("pending",) + DECISIONS}
    out.update({r.review_status: int(r.n) for r in rows})
    if reviewer is not None:
        out["waiting"] = waiting(store, project, reviewer, now)
    return out
