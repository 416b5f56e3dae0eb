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
from labelwright.schema import FreeText, MultipleChoice, answer_label
from labelwright.services.gold import FIRST_ANSWERS, score
from labelwright.services.projects import list_projects
from labelwright.store import loads


def _starts(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    return day.timestamp(), week.timestamp()


# An annotator's own gold accuracy and agreement move only in whole batches of their answers, so no
# sequence of submissions tells them whether one particular answer matched.
GOLD_BATCH = 5
AGREEMENT_BATCH = 10


def _agrees(question, answer, label) -> bool | None:
    if answer is None or label is None or isinstance(question, FreeText):
        return None
    if isinstance(question, MultipleChoice):
        return set(answer) == set(label)
    return answer_label(question, answer) == label


def _quality(conn, project, user) -> dict:
    """Gold accuracy and agreement with the majority, over the user's own first answers in the project.

    Gold accuracy counts the first ``GOLD_BATCH * k`` gold answers (k whole batches), agreement the
    first ``AGREEMENT_BATCH * k`` ordinary ones, compared with the others' first answers given before
    the last answer of the batch: amending, or answering one more item, moves neither figure."""
    questions = {q.name: q for q in project.schema.questions}
    mine = conn.execute(text(
        f"SELECT a.item_id, {FIRST_ANSWERS}, g.answers, a.created_at FROM annotations a "
        "LEFT JOIN gold g ON g.item_id = a.item_id WHERE a.user_id = :u AND a.project_id = :p ORDER BY a.id"),
        {"u": user.id, "p": project.id}).all()
    on_gold = [r for r in mine if r[2] is not None]
    on_gold = on_gold[:len(on_gold) // GOLD_BATCH * GOLD_BATCH]
    gold_right = gold_checked = 0
    for _, answers, gold, _ in on_gold:
        right, checked = score(questions, loads(answers), loads(gold))
        gold_right += right
        gold_checked += checked
    ordinary = [r for r in mine if r[2] is None]
    ordinary = ordinary[:len(ordinary) // AGREEMENT_BATCH * AGREEMENT_BATCH]
    cutoff = ordinary[-1][3] if ordinary else 0.0
    others: dict[int, list] = {}
    ids = [r[0] for r in ordinary]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        for item_id, answers in conn.execute(text(
                f"SELECT a.item_id, {FIRST_ANSWERS} FROM annotations a WHERE a.item_id IN ({marks}) "
                "AND a.user_id <> :u AND a.created_at <= :cutoff"),
                {"u": user.id, "cutoff": cutoff, **{f"i{k}": v for k, v in enumerate(chunk)}}):
            others.setdefault(item_id, []).append(loads(answers))
    agree = compared = 0
    for item_id, answers, _, _ in ordinary:
        if item_id not in others:
            continue
        answers = loads(answers)
        votes = majority(project.schema, others[item_id] + [answers])
        for name, v in votes.items():
            ok = _agrees(questions[name], answers.get(name), v["label"])
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
