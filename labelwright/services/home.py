"""An annotator's own view of their work: projects, what is left, what they did today and this week,
their gold accuracy and agreement, feedback, messages, earnings and effective hourly rate.

This is for the annotator, not about them: it shows only their own answers and numbers, never anyone
else's answers or the gold answers themselves.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from labelwright.consensus import majority
from labelwright.services import access, messages, pay, qualification, queue, review
from labelwright.services.gold import answer_matches, score
from labelwright.services.projects import list_projects
from labelwright.store import loads


def _starts(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    return day.timestamp(), week.timestamp()


def _quality(conn, project, user) -> dict:
    """Gold accuracy and agreement with the majority, over the user's own answers in the project."""
    questions = {q.name: q for q in project.schema.questions}
    mine = conn.execute(text(
        "SELECT a.item_id, COALESCE(a.reviewed_answers, a.answers), g.answers FROM annotations a "
        "LEFT JOIN gold g ON g.item_id = a.item_id WHERE a.user_id = :u AND a.project_id = :p"),
        {"u": user.id, "p": project.id}).all()
    gold_right = gold_checked = 0
    for _, answers, gold in mine:
        if gold is not None:
            right, checked = score(questions, loads(answers), loads(gold))
            gold_right += right
            gold_checked += checked
    others: dict[int, list] = {}
    ordinary = [i for i, _, g in mine if g is None]
    for start in range(0, len(ordinary), 500):
        chunk = ordinary[start:start + 500]
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        for item_id, answers in conn.execute(text(
                f"SELECT item_id, COALESCE(reviewed_answers, answers) FROM annotations WHERE item_id IN ({marks}) "
                "AND user_id <> :u AND review_status <> 'rejected'"),
                {"u": user.id, **{f"i{k}": v for k, v in enumerate(chunk)}}):
            others.setdefault(item_id, []).append(loads(answers))
    agree = compared = 0
    for item_id, answers, gold in mine:
        if gold is not None or item_id not in others:
            continue
        answers = loads(answers)
        votes = majority(project.schema, others[item_id] + [answers])
        for name, v in votes.items():
            ok = answer_matches(questions[name], answers.get(name), v["label"])
            if ok is not None and v["n"] >= 2:
                compared += 1
                agree += int(ok)
    return {"gold_checked": gold_checked, "gold_accuracy": round(gold_right / gold_checked, 4) if gold_checked else None,
            "agreement_checked": compared, "agreement": round(agree / compared, 4) if compared else None}


def my_work(store, user, now: float | None = None) -> dict:
    now = now or time.time()
    day, week = _starts(now)
    visible = access.visible_project_ids(store, user)
    projects = [p for p in list_projects(store) if visible is None or p.id in visible]
    out = []
    with store.read() as conn:
        for p in projects:
            today, this_week = conn.execute(text(
                "SELECT coalesce(sum(CASE WHEN created_at >= :d THEN 1 ELSE 0 END), 0), count(*) FROM annotations "
                "WHERE user_id = :u AND project_id = :p AND created_at >= :w"),
                {"u": user.id, "p": p.id, "d": day, "w": week}).one()
            entry = {"project": p.slug, "name": p.name, "role": access.role_in(store, user, p),
                     "queue": queue.counts_for_user(store, p, user), "done_today": int(today),
                     "done_this_week": int(this_week), **_quality(conn, p, user),
                     "qualification": qualification.status(store, p, user, now),
                     "expired": p.schema.expires_at is not None and now >= p.schema.expires_at}
            if p.schema.pay is not None:
                pay.settle_if_stale(store, p)
                mine = pay.summary(store, p, user)
                entry["pay"] = mine[0] if mine else {"items": 0, "active_hours": 0.0, "earnings": pay.money(0, p.schema.pay.currency),
                                                     "currency": p.schema.pay.currency, "effective_hourly": None}
            out.append(entry)
    return {"user": user.name, "projects": out, "feedback": review.feedback_for(store, user, limit=20),
            "messages": messages.for_user(store, user, limit=20)}
