"""Questioning a review decision: an annotator asks the reviewers about a rejection or a fix of their
own submission; the project's reviewers see the open questions on the review page and answer them.

The rules, all checked here:

* only the submission's author asks, only while they are still a member of its project, and only about
  a decision to reject or fix it (an accepted submission has nothing to question);
* one question per decision (a unique index on ``review_questions.review_id``): a reviewer who changes
  the decision makes a new one, which may be questioned again;
* at most :data:`MAX_PER_DAY` questions per annotator in any 24 hours, and :data:`MAX_LENGTH`
  characters per question or answer (the text is untrusted: pages show it escaped);
* a reviewer (or manager, owner) of the project answers, once, and never a question about their own
  submission. The question's author sees the answer beside the decision on their home page.

Asking and answering are in the audit log.
"""

from __future__ import annotations

import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from labelwright.errors import Conflict, NotFound, TooManyAttempts, ValidationError
from labelwright.services import access, audit
from labelwright.services.projects import Project, get_project
from labelwright.services.users import User
from labelwright.store import Store, loads
from labelwright.store import tables as t

MAX_LENGTH = 2_000
MAX_PER_DAY = 10
QUESTIONABLE = ("rejected", "fixed")


def _body(body: str | None, what: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError(f"{what} needs some text", field="body")
    if len(body) > MAX_LENGTH:
        raise ValidationError(f"{what} has at most {MAX_LENGTH:,} characters (this one has {len(body):,})",
                              field="body")
    return body


def ask(store: Store, user: User, annotation_id: int, body: str | None, now: float | None = None) -> dict:
    """Question the latest decision on the user's own submission ``annotation_id``; returns the question."""
    now = now or time.time()
    try:
        return _ask(store, user, annotation_id, body, now)
    except IntegrityError:  # the same question sent twice at once: the unique index let one through
        raise Conflict("you have already asked about this decision; the reviewers will answer there") from None


def _ask(store: Store, user: User, annotation_id: int, body: str | None, now: float) -> dict:
    missing = f"no submission {annotation_id} of yours"
    a, rv, q = t.annotations, t.reviews, t.review_questions
    with store.write() as conn:
        row = conn.execute(select(a.c.user_id, a.c.project_id).where(a.c.id == annotation_id)).first()
        if row is None or row.user_id != user.id:
            raise NotFound(missing)
        project = get_project(store, row.project_id, conn=conn)
        access.require(store, user, project, missing=missing)
        review = conn.execute(select(rv.c.id, rv.c.decision).where(rv.c.annotation_id == annotation_id)
                              .order_by(rv.c.id.desc()).limit(1)).first()
        if review is None or review.decision not in QUESTIONABLE:
            raise Conflict("only a rejected or fixed submission can be questioned")
        body = _body(body, "a question")  # after the checks above: nobody learns of others' submissions
        if conn.execute(select(q.c.id).where(q.c.review_id == review.id)).first():
            raise Conflict("you have already asked about this decision; the reviewers will answer there")
        recent = conn.execute(select(func.count()).select_from(q)
                              .where(q.c.user_id == user.id, q.c.created_at > now - 86_400)).scalar_one()
        if recent >= MAX_PER_DAY:
            raise TooManyAttempts(f"at most {MAX_PER_DAY} questions a day: ask again tomorrow",
                                  retry_after=3600, field="body")
        qid = conn.execute(insert(q).values(project_id=project.id, annotation_id=annotation_id, review_id=review.id,
                                            user_id=user.id, body=body, created_at=now)
                           .returning(q.c.id)).scalar_one()
        audit.record(conn, user, "review.question", project.id, str(annotation_id), {"question": qid})
    return {"id": qid, "project": project.slug, "annotation_id": annotation_id, "review_id": review.id,
            "body": body, "created_at": now, "reply": None, "replied_at": None}


def open_for_review(store: Store, project: Project, reviewer: User, limit: int = 50) -> list[dict]:
    """The project's unanswered questions (oldest first) that ``reviewer`` may answer: not about their own
    submissions. Each has the item, the annotator's answers, the decision and its feedback."""
    q, a, rv, i = t.review_questions, t.annotations, t.reviews, t.items
    u, ru = t.users.alias("u"), t.users.alias("ru")
    stmt = (select(q.c.id, q.c.annotation_id, u.c.name.label("annotator"), q.c.body, q.c.created_at, rv.c.decision,
                   rv.c.feedback, rv.c.fixed_answers, a.c.answers, i.c.external_id, i.c.data,
                   ru.c.name.label("decided_by"))
            .select_from(q.join(a, a.c.id == q.c.annotation_id).join(u, u.c.id == q.c.user_id)
                         .join(rv, rv.c.id == q.c.review_id).join(i, i.c.id == a.c.item_id)
                         .outerjoin(ru, ru.c.id == rv.c.reviewer_id))
            .where(q.c.project_id == project.id, q.c.replied_at.is_(None), q.c.user_id != reviewer.id)
            .order_by(q.c.id).limit(limit))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "annotation_id": r.annotation_id, "annotator": r.annotator, "body": r.body,
             "created_at": r.created_at, "decision": r.decision, "feedback": r.feedback,
             "fixed_answers": loads(r.fixed_answers) if r.fixed_answers else None,
             "answers": loads(r.answers), "external_id": r.external_id, "item": shown_fields(project, loads(r.data)),
             "decided_by": r.decided_by} for r in rows]


def reply(store: Store, project: Project, reviewer: User, question_id: int, body: str | None,
          now: float | None = None) -> dict:
    """Answer one open question of ``project`` (the caller is at least a reviewer there)."""
    now = now or time.time()
    q = t.review_questions
    with store.write() as conn:
        row = conn.execute(select(q.c.user_id, q.c.annotation_id, q.c.replied_at)
                           .where(q.c.id == question_id, q.c.project_id == project.id)).first()
        if row is None:
            raise NotFound(f"no question {question_id} in project {project.slug!r}")
        if row.user_id == reviewer.id:
            raise Conflict("you cannot answer a question about your own submission")
        body = _body(body, "an answer")
        changed = conn.execute(update(q).where(q.c.id == question_id, q.c.replied_at.is_(None))
                               .values(reply=body, replied_by=reviewer.id, replied_at=now)).rowcount
        if changed != 1:
            raise Conflict("this question has already been answered")
        audit.record(conn, reviewer, "review.answer", project.id, str(row.annotation_id), {"question": question_id})
    return {"id": question_id, "annotation_id": row.annotation_id, "reply": body, "replied_at": now,
            "replied_by": reviewer.name}


def for_user(store: Store, user: User, annotation_ids: list[int]) -> dict[int, dict]:
    """The user's own questions on ``annotation_ids``, latest per submission, keyed by annotation id, with
    the review each is about (a question about an older decision is still shown)."""
    if not annotation_ids:
        return {}
    ids = sorted(set(annotation_ids))[:1000]
    q, ru = t.review_questions, t.users
    stmt = (select(q.c.id, q.c.annotation_id, q.c.review_id, q.c.body, q.c.created_at, q.c.reply, q.c.replied_at,
                   ru.c.name.label("replied_by"))
            .select_from(q.outerjoin(ru, ru.c.id == q.c.replied_by))
            .where(q.c.user_id == user.id, q.c.annotation_id.in_(ids)).order_by(q.c.id))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return {r.annotation_id: {"id": r.id, "annotation_id": r.annotation_id, "review_id": r.review_id, "body": r.body,
                              "created_at": r.created_at, "reply": r.reply, "replied_at": r.replied_at,
                              "replied_by": r.replied_by} for r in rows}


def open_count(store: Store, project: Project, reviewer: User) -> int:
    q = t.review_questions
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(q).where(
            q.c.project_id == project.id, q.c.replied_at.is_(None), q.c.user_id != reviewer.id)).scalar_one())


def shown_fields(project: Project, data: dict) -> list[dict]:
    """The item as its annotator saw it: the schema's display fields only (title, type, value), never
    the item's other columns."""
    return [{"name": f.name, "title": f.title, "type": f.type, "value": data.get(f.name)}
            for f in project.schema.fields]
