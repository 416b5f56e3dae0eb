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

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from labelwright.errors import Conflict, NotFound, TooManyAttempts, ValidationError
from labelwright.services import access, audit
from labelwright.services.projects import Project, get_project
from labelwright.store import loads

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


def ask(store, user, annotation_id: int, body: str | None, now: float | None = None) -> dict:
    """Question the latest decision on the user's own submission ``annotation_id``; returns the question."""
    now = now or time.time()
    try:
        return _ask(store, user, annotation_id, body, now)
    except IntegrityError:  # the same question sent twice at once: the unique index let one through
        raise Conflict("you have already asked about this decision; the reviewers will answer there") from None


def _ask(store, user, annotation_id: int, body: str | None, now: float) -> dict:
    missing = f"no submission {annotation_id} of yours"
    with store.write() as conn:
        row = conn.execute(text("SELECT user_id, project_id FROM annotations WHERE id = :a"),
                           {"a": annotation_id}).first()
        if row is None or row[0] != user.id:
            raise NotFound(missing)
        project = get_project(store, row[1], conn=conn)
        access.require(store, user, project, missing=missing)
        review = conn.execute(text(
            "SELECT id, decision FROM reviews WHERE annotation_id = :a ORDER BY id DESC LIMIT 1"),
            {"a": annotation_id}).first()
        if review is None or review[1] not in QUESTIONABLE:
            raise Conflict("only a rejected or fixed submission can be questioned")
        body = _body(body, "a question")  # after the checks above: nobody learns of others' submissions
        if conn.execute(text("SELECT 1 FROM review_questions WHERE review_id = :r"), {"r": review[0]}).first():
            raise Conflict("you have already asked about this decision; the reviewers will answer there")
        recent = conn.execute(text(
            "SELECT count(*) FROM review_questions WHERE user_id = :u AND created_at > :since"),
            {"u": user.id, "since": now - 86_400}).scalar_one()
        if recent >= MAX_PER_DAY:
            raise TooManyAttempts(f"at most {MAX_PER_DAY} questions a day: ask again tomorrow",
                                  retry_after=3600, field="body")
        qid = conn.execute(text(
            "INSERT INTO review_questions (project_id, annotation_id, review_id, user_id, body, created_at) "
            "VALUES (:p, :a, :r, :u, :b, :now) RETURNING id"),
            {"p": project.id, "a": annotation_id, "r": review[0], "u": user.id, "b": body, "now": now}).scalar_one()
        audit.record(conn, user, "review.question", project.id, str(annotation_id), {"question": qid})
    return {"id": qid, "project": project.slug, "annotation_id": annotation_id, "review_id": review[0],
            "body": body, "created_at": now, "reply": None, "replied_at": None}


def open_for_review(store, project: Project, reviewer, limit: int = 50) -> list[dict]:
    """The project's unanswered questions (oldest first) that ``reviewer`` may answer: not about their own
    submissions. Each has the item, the annotator's answers, the decision and its feedback."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT q.id, q.annotation_id, u.name, q.body, q.created_at, r.decision, r.feedback, r.fixed_answers, "
            "a.answers, i.external_id, i.data, ru.name FROM review_questions q "
            "JOIN annotations a ON a.id = q.annotation_id JOIN users u ON u.id = q.user_id "
            "JOIN reviews r ON r.id = q.review_id JOIN items i ON i.id = a.item_id "
            "LEFT JOIN users ru ON ru.id = r.reviewer_id "
            "WHERE q.project_id = :p AND q.replied_at IS NULL AND q.user_id <> :me ORDER BY q.id LIMIT :n"),
            {"p": project.id, "me": reviewer.id, "n": limit}).all()
    return [{"id": r[0], "annotation_id": r[1], "annotator": r[2], "body": r[3], "created_at": r[4],
             "decision": r[5], "feedback": r[6], "fixed_answers": loads(r[7]) if r[7] else None,
             "answers": loads(r[8]), "external_id": r[9], "item": shown_fields(project, loads(r[10])),
             "decided_by": r[11]} for r in rows]


def reply(store, project: Project, reviewer, question_id: int, body: str | None, now: float | None = None) -> dict:
    """Answer one open question of ``project`` (the caller is at least a reviewer there)."""
    now = now or time.time()
    with store.write() as conn:
        row = conn.execute(text(
            "SELECT user_id, annotation_id, replied_at FROM review_questions WHERE id = :q AND project_id = :p"),
            {"q": question_id, "p": project.id}).first()
        if row is None:
            raise NotFound(f"no question {question_id} in project {project.slug!r}")
        if row[0] == reviewer.id:
            raise Conflict("you cannot answer a question about your own submission")
        body = _body(body, "an answer")
        changed = conn.execute(text(
            "UPDATE review_questions SET reply = :b, replied_by = :r, replied_at = :now "
            "WHERE id = :q AND replied_at IS NULL"),
            {"b": body, "r": reviewer.id, "now": now, "q": question_id}).rowcount
        if changed != 1:
            raise Conflict("this question has already been answered")
        audit.record(conn, reviewer, "review.answer", project.id, str(row[1]), {"question": question_id})
    return {"id": question_id, "annotation_id": row[1], "reply": body, "replied_at": now,
            "replied_by": reviewer.name}


def for_user(store, user, annotation_ids: list[int]) -> dict[int, dict]:
    """The user's own questions on ``annotation_ids``, latest per submission, keyed by annotation id, with
    the review each is about (a question about an older decision is still shown)."""
    if not annotation_ids:
        return {}
    ids = sorted(set(annotation_ids))[:1000]
    marks = ", ".join(f":a{k}" for k in range(len(ids)))
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT q.id, q.annotation_id, q.review_id, q.body, q.created_at, q.reply, q.replied_at, ru.name "
            "FROM review_questions q LEFT JOIN users ru ON ru.id = q.replied_by "
            f"WHERE q.user_id = :u AND q.annotation_id IN ({marks}) ORDER BY q.id"),
            {"u": user.id, **{f"a{k}": v for k, v in enumerate(ids)}}).all()
    return {r[1]: {"id": r[0], "annotation_id": r[1], "review_id": r[2], "body": r[3], "created_at": r[4],
                   "reply": r[5], "replied_at": r[6], "replied_by": r[7]} for r in rows}


def open_count(store, project: Project, reviewer) -> int:
    with store.read() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM review_questions WHERE project_id = :p AND replied_at IS NULL AND user_id <> :me"),
            {"p": project.id, "me": reviewer.id}).scalar_one())


def shown_fields(project: Project, data: dict) -> list[dict]:
    """The item as its annotator saw it: the schema's display fields only (title, type, value), never
    the item's other columns."""
    return [{"name": f.name, "title": f.title, "type": f.type, "value": data.get(f.name)}
            for f in project.schema.fields]
