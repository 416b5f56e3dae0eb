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

from sqlalchemy import text

from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import events
from labelwright.services.gold import score
from labelwright.services.projects import Project
from labelwright.store import dumps, loads
from labelwright.timefmt import utc_time


def _items(conn, project: Project) -> list[tuple[int, str, str, dict]]:
    size = project.schema.qualification.size
    rows = conn.execute(text(
        "SELECT i.id, i.external_id, i.data, g.answers FROM items i JOIN gold g ON g.item_id = i.id "
        "WHERE i.project_id = :p ORDER BY i.id LIMIT :n"), {"p": project.id, "n": size}).all()
    return [(r[0], r[1], r[2], loads(r[3])) for r in rows]


def _attempts(conn, project: Project, user) -> list:
    return conn.execute(text(
        "SELECT id, started_at, finished_at, correct, total, passed FROM qualification_attempts "
        "WHERE project_id = :p AND user_id = :u ORDER BY id"), {"p": project.id, "u": user.id}).all()


def _state(project: Project, attempts, now: float) -> dict:
    q = project.schema.qualification
    done = [a for a in attempts if a[2] is not None]
    if any(a[5] for a in done):
        best = next(a for a in done if a[5])
        return {"state": "passed", "score": _score(best), "attempts": len(attempts)}
    if attempts and attempts[-1][2] is None:
        return {"state": "in_progress", "attempts": len(attempts)}
    out = {"state": "not_started" if not done else "failed", "attempts": len(done),
           "retakes_left": max(q.retakes + 1 - len(done), 0)}
    if done:
        out["score"] = _score(done[-1])
        if out["retakes_left"] == 0:
            out["state"] = "locked"
        else:
            out["retake_at"] = done[-1][2] + q.retake_after_hours * 3600
            if out["retake_at"] <= now:
                out["state"] = "retake_available"
    return out


def _score(attempt) -> float | None:
    return round(attempt[3] / attempt[4], 4) if attempt[4] else None


def status(store, project: Project, user, now: float | None = None) -> dict:
    """``{"required": bool, "state": ...}``: not_started, in_progress, passed, failed (a retake later),
    retake_available or locked (no tries left)."""
    if project.schema.qualification is None or user.role == "owner":
        return {"required": False, "state": "passed"}
    with store.read() as conn:
        return {"required": True, "pass_mark": project.schema.qualification.pass_mark,
                **_state(project, _attempts(conn, project, user), now or time.time())}


def passed(store, project: Project, user) -> bool:
    if project.schema.qualification is None or user.role == "owner":
        return True
    row = store.lookup("SELECT 1 FROM qualification_attempts WHERE project_id = :p AND user_id = :u AND passed = 1",
                       {"p": project.id, "u": user.id})
    return row is not None


def next_item(store, project: Project, user, now: float | None = None) -> dict | None:
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
        if state["state"] == "in_progress":
            attempt_id = attempts[-1][0]
        else:
            attempt_id = conn.execute(text(
                "INSERT INTO qualification_attempts (project_id, user_id, started_at) VALUES (:p, :u, :now) "
                "RETURNING id"), {"p": project.id, "u": user.id, "now": now}).scalar_one()
        answered = {r[0] for r in conn.execute(text(
            "SELECT item_id FROM qualification_answers WHERE attempt_id = :a"), {"a": attempt_id})}
        left = [i for i in items if i[0] not in answered]
    item_id, ext, data, _ = left[0]
    return {"id": item_id, "external_id": ext, "project": project.slug, "data": loads(data),
            "stage": "qualification", "question_number": len(items) - len(left) + 1, "of": len(items),
            "submit_to": f"/api/v1/projects/{project.slug}/qualification/{item_id}"}


def answer(store, project: Project, user, item_id: int, answers, now: float | None = None) -> dict:
    """Record one test answer; when it is the last, grade the attempt. Returns the status."""
    now = now or time.time()
    if project.schema.qualification is None:
        raise ValidationError(f"project {project.slug!r} has no qualification test")
    clean = project.schema.validate_answers(answers)
    questions = {q.name: q for q in project.schema.questions}
    with store.write() as conn:
        attempts = _attempts(conn, project, user)
        if not attempts or attempts[-1][2] is not None:
            raise Conflict("no qualification test in progress: ask for the next item first")
        attempt_id = attempts[-1][0]
        items = {i[0]: i for i in _items(conn, project)}
        if item_id not in items:
            raise NotFound(f"item {item_id} is not in the qualification test")
        right, checked = score(questions, clean, items[item_id][3])
        written = conn.execute(text(
            "INSERT INTO qualification_answers (attempt_id, item_id, answers, correct, checked, created_at) "
            "VALUES (:a, :i, :ans, :c, :n, :now) ON CONFLICT (attempt_id, item_id) DO NOTHING RETURNING item_id"),
            {"a": attempt_id, "i": item_id, "ans": dumps(clean), "c": right, "n": checked, "now": now}).first()
        if written is None:
            raise ValidationError("you already answered this test item", field="item_id")
        correct, total, count = conn.execute(text(
            "SELECT coalesce(sum(correct), 0), coalesce(sum(checked), 0), count(*) FROM qualification_answers "
            "WHERE attempt_id = :a"), {"a": attempt_id}).one()
        if int(count) >= len(items):
            share = int(correct) / int(total) if int(total) else 0.0
            ok = share >= project.schema.qualification.pass_mark
            conn.execute(text(
                "UPDATE qualification_attempts SET finished_at = :now, correct = :c, total = :t, passed = :ok "
                "WHERE id = :a"), {"now": now, "c": int(correct), "t": int(total), "ok": int(ok), "a": attempt_id})
            if ok:
                events.emit(conn, "qualification.passed", project.id, {
                    "project": project.slug, "annotator": user.name, "score": round(share, 4)}, now)
    return status(store, project, user, now)
