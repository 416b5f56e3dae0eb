"""Qualification: a test of gold items an annotator must pass before the project's real work.

With ``qualification: {size, pass_mark, retakes, retake_after_hours}`` in the schema, the test is the
project's first ``size`` gold items (import order). An annotator who has not passed is given the test's
items first, one at a time (``next`` answers them with ``"stage": "qualification"``; the answers go to
``POST /api/v1/projects/{p}/qualification/{item_id}``). When every item is answered the attempt is
graded: passing (right answers / gold answers checked >= ``pass_mark``) unlocks the queue at once and
emits ``qualification.passed``; failing locks the project's work for them until a retake is allowed
(``retakes`` more tries, each ``retake_after_hours`` after the last). Answers to the test are kept apart
from annotations (a retake answers the same items again) and never reveal the gold answers: the
annotator learns their score, not which answers were wrong.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Row, func, insert, select, update

from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.schema import Qualification
from labelwright.services import events
from labelwright.services.gold import score
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store, dumps, loads, lookups
from labelwright.store import tables as t
from labelwright.store.sql import upsert
from labelwright.timefmt import utc_time


def _settings(project: Project) -> Qualification:
    q = project.schema.qualification
    if q is None:
        raise ValidationError(f"project {project.slug!r} has no qualification test")
    return q


def _items(conn: Connection, project: Project) -> list[tuple[int, str, str, dict]]:
    """The test: ``(item id, external id, data, gold answers)`` of the project's first gold items."""
    size = _settings(project).size
    i, g = t.items, t.gold
    rows = conn.execute(select(i.c.id, i.c.external_id, i.c.data, g.c.answers)
                        .select_from(i.join(g, g.c.item_id == i.c.id))
                        .where(i.c.project_id == project.id).order_by(i.c.id).limit(size)).all()
    return [(r.id, r.external_id, r.data, loads(r.answers)) for r in rows]


def _attempts(conn: Connection, project: Project, user: User) -> list[Row]:
    qa = t.qualification_attempts
    return list(conn.execute(select(qa.c.id, qa.c.started_at, qa.c.finished_at, qa.c.correct, qa.c.total, qa.c.passed)
                             .where(qa.c.project_id == project.id, qa.c.user_id == user.id)
                             .order_by(qa.c.id)).all())


def _state(project: Project, attempts: list[Row], now: float) -> dict:
    q = _settings(project)
    done = [a for a in attempts if a.finished_at is not None]
    if any(a.passed for a in done):
        best = next(a for a in done if a.passed)
        return {"state": "passed", "score": _score(best), "attempts": len(attempts)}
    if attempts and attempts[-1].finished_at is None:
        return {"state": "in_progress", "attempts": len(attempts)}
    out: dict = {"state": "not_started" if not done else "failed", "attempts": len(done),
           "retakes_left": max(q.retakes + 1 - len(done), 0)}
    if done:
        out["score"] = _score(done[-1])
        if out["retakes_left"] == 0:
            out["state"] = "locked"
        else:
            out["retake_at"] = done[-1].finished_at + q.retake_after_hours * 3600
            if out["retake_at"] <= now:
                out["state"] = "retake_available"
    return out


def _score(attempt: Row) -> float | None:
    return round(attempt.correct / attempt.total, 4) if attempt.total else None


def status(store: Store, project: Project, user: User, now: float | None = None) -> dict:
    """``{"required": bool, "state": ...}``: not_started, in_progress, passed, failed (a retake later),
    retake_available or locked (no tries left)."""
    if project.schema.qualification is None or user.role == "owner":
        return {"required": False, "state": "passed"}
    with store.read() as conn:
        return {"required": True, "pass_mark": project.schema.qualification.pass_mark,
                **_state(project, _attempts(conn, project, user), now or time.time())}


def passed(store: Store, project: Project, user: User) -> bool:
    if project.schema.qualification is None or user.role == "owner":
        return True
    return store.lookup(lookups.QUALIFIED, {"p": project.id, "u": user.id}) is not None


def next_item(store: Store, project: Project, user: User, now: float | None = None) -> dict | None:
    """The next test item for a user who has not passed (starting an attempt if one is allowed);
    raises :class:`Forbidden` when they failed and may not retake yet; None once passed."""
    now = now or time.time()
    with store.write() as conn:
        attempts = _attempts(conn, project, user)
        state = _state(project, attempts, now)
        if state["state"] == "passed":
            return None
        if state["state"] == "locked":
            raise Forbidden(f"you did not pass the qualification test of project {project.slug!r} and have no "
                            "tries left")
        if state["state"] == "failed":
            when = utc_time(state["retake_at"])
            raise Forbidden(f"you did not pass the qualification test (score {state['score']:.0%}); "
                            f"you may try again from {when}")
        items = _items(conn, project)
        if not items:
            raise Forbidden(f"project {project.slug!r} has no qualification items yet; ask its manager")
        qa, qn = t.qualification_attempts, t.qualification_answers
        if state["state"] == "in_progress":
            attempt_id = attempts[-1].id
        else:
            attempt_id = conn.execute(insert(qa).values(project_id=project.id, user_id=user.id, started_at=now)
                                      .returning(qa.c.id)).scalar_one()
        answered = set(conn.execute(select(qn.c.item_id).where(qn.c.attempt_id == attempt_id)).scalars())
        left = [i for i in items if i[0] not in answered]
    item_id, ext, data, _ = left[0]
    return {"id": item_id, "external_id": ext, "project": project.slug, "data": loads(data),
            "stage": "qualification", "question_number": len(items) - len(left) + 1, "of": len(items),
            "submit_to": f"/api/v1/projects/{project.slug}/qualification/{item_id}"}


def answer(store: Store, project: Project, user: User, item_id: int, answers, now: float | None = None) -> dict:
    """Record one test answer; when it is the last, grade the attempt. Returns the status."""
    now = now or time.time()
    if project.schema.qualification is None:
        raise ValidationError(f"project {project.slug!r} has no qualification test")
    clean = project.schema.validate_answers(answers)
    questions = {q.name: q for q in project.schema.questions}
    qa, qn = t.qualification_attempts, t.qualification_answers
    with store.write() as conn:
        attempts = _attempts(conn, project, user)
        if not attempts or attempts[-1].finished_at is not None:
            raise Conflict("no qualification test in progress: ask for the next item first")
        attempt_id = attempts[-1].id
        items = {i[0]: i for i in _items(conn, project)}
        if item_id not in items:
            raise NotFound(f"item {item_id} is not in the qualification test")
        if project.schema.checks_items():
            project.schema.validate_answers(answers, loads(items[item_id][2]))
        right, checked = score(questions, clean, items[item_id][3])
        written = conn.execute(
            upsert(conn, qn).values(attempt_id=attempt_id, item_id=item_id, answers=dumps(clean), correct=right,
                                    checked=checked, created_at=now)
            .on_conflict_do_nothing(index_elements=["attempt_id", "item_id"]).returning(qn.c.item_id)).first()
        if written is None:
            raise ValidationError("you already answered this test item", field="item_id")
        tally = conn.execute(select(func.coalesce(func.sum(qn.c.correct), 0).label("correct"),
                                    func.coalesce(func.sum(qn.c.checked), 0).label("total"),
                                    func.count().label("count"))
                             .where(qn.c.attempt_id == attempt_id)).one()
        correct, total, count = int(tally.correct), int(tally.total), int(tally.count)
        if count >= len(items):
            share = correct / total if total else 0.0
            ok = share >= project.schema.qualification.pass_mark
            conn.execute(update(qa).where(qa.c.id == attempt_id)
                         .values(finished_at=now, correct=correct, total=total, passed=int(ok)))
            if ok:
                events.emit(conn, "qualification.passed", project.id, {
                    "project": project.slug, "annotator": user.name, "score": round(share, 4)}, now)
    return status(store, project, user, now)
