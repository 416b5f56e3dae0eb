"""An annotator's own view of their work: projects, what is left, what they did today and this week,
their gold accuracy and agreement, feedback (with the item, their answer and any question they asked
about the decision), messages, earnings split into approved, pending and rejected, the effective hourly
rate over approved work, earnings per week; the briefing before a project (:func:`briefing`: every term,
and an hourly rate estimated from other annotators' median time) and their recent answers
(:func:`history`).

This is for the annotator, not about them: it shows only their own answers and numbers, never anyone
else's answers, pay or the gold answers themselves (the briefing's estimate is a median over at least
:data:`MIN_PEERS` other people).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text

from labelwright.consensus import majority
from labelwright.services import access, appeals, messages, pay, qualification, queue, review
from labelwright.services.gold import FIRST_ANSWERS, matches_label, score
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
            ok = matches_label(questions[name], answers.get(name), v["label"])
            if ok is not None and v["n"] >= 2:
                compared += 1
                agree += int(ok)
    return {"gold_checked": gold_checked, "gold_accuracy": round(gold_right / gold_checked, 4) if gold_checked else None,
            "agreement_checked": compared, "agreement": round(agree / compared, 4) if compared else None}


def my_work(store, user, now: float | None = None) -> dict:
    """The annotator's home page (and ``GET /api/v1/me/work``). With ``now`` given, pay is settled at
    that time (tests); otherwise at most once a minute per project (:func:`pay.settle_if_stale`)."""
    settle_at = now
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
                if settle_at is not None:
                    pay.settle(store, p, settle_at)
                else:
                    pay.settle_if_stale(store, p)
                mine = pay.for_annotator(store, p, user, now)
                total = sum(mine[k]["items"] for k in ("approved", "pending", "rejected"))
                active_ms = sum(mine[k]["active_ms"] for k in ("approved", "pending", "rejected"))
                entry["pay"] = {**mine, "items": total, "active_ms": active_ms,
                                "active_hours": round(active_ms / 3_600_000, 3),
                                "earnings": mine["approved"]["amount"]}
            out.append(entry)
    return {"user": user.name, "projects": out, "feedback": _feedback(store, user, projects),
            "messages": messages.for_user(store, user, limit=20)}


def _feedback(store, user, projects) -> list[dict]:
    """Review decisions on the user's submissions, newest first. A rejection or fix also carries the item
    (its display fields), and the question the user asked about it, if any; ``can_question`` is true on
    the latest decision of a submission when it may still be questioned (see :mod:`appeals`)."""
    rows = review.feedback_for(store, user, limit=20)
    by_slug = {p.slug: p for p in projects}
    wanted = [f["annotation_id"] for f in rows if f["decision"] in appeals.QUESTIONABLE and f["project"] in by_slug]
    data: dict[int, dict] = {}
    if wanted:
        marks = ", ".join(f":a{k}" for k in range(len(wanted)))
        with store.read() as conn:
            data = {a: loads(d) for a, d in conn.execute(text(
                "SELECT a.id, i.data FROM annotations a JOIN items i ON i.id = a.item_id "
                f"WHERE a.user_id = :u AND a.id IN ({marks})"),
                {"u": user.id, **{f"a{k}": v for k, v in enumerate(wanted)}})}
    asked = appeals.for_user(store, user, wanted)
    seen: set[int] = set()
    for f in rows:
        latest = f["annotation_id"] not in seen
        seen.add(f["annotation_id"])
        q = asked.get(f["annotation_id"])
        f["question"] = q if q is not None and q["review_id"] == f["id"] else None
        questionable = f["decision"] in appeals.QUESTIONABLE and f["annotation_id"] in data
        f["can_question"] = bool(latest and questionable and f["question"] is None)
        if questionable:
            f["item"] = appeals.shown_fields(by_slug[f["project"]], data[f["annotation_id"]])
    return rows


# The briefing's hourly estimate needs the median time of at least this many other annotators.
MIN_PEERS = 3


def _median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def briefing(store, project, user) -> dict:
    """Every term of ``project`` an annotator should know before starting, and an estimate of the hourly
    rate: each other person's median active time per item, the median of those (at least
    :data:`MIN_PEERS` people with timed work; machine annotators never count), priced at the project's
    reward per item and hourly rate, assuming the work is approved."""
    schema = project.schema
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.user_id, a.active_ms FROM annotations a WHERE a.project_id = :p AND a.user_id <> :u "
            "AND a.active_ms > 0 AND NOT EXISTS (SELECT 1 FROM machine_annotators ma WHERE ma.user_id = a.user_id)"),
            {"p": project.id, "u": user.id}).all()
    per_person: dict[int, list[float]] = {}
    for uid, ms in rows:
        per_person.setdefault(uid, []).append(float(ms))
    estimate = None
    if len(per_person) >= MIN_PEERS:
        median_ms = _median([_median(v) for v in per_person.values()])
        hourly = None
        if schema.pay is not None:
            cur = schema.pay.currency
            per_hour = (Decimal(schema.pay.reward_per_item) * 3_600_000 / Decimal(median_ms)
                        + Decimal(schema.pay.hourly_rate))
            hourly = pay.money(pay.to_minor(per_hour, cur), cur)
        estimate = {"median_seconds_per_item": round(median_ms / 1000, 1), "annotators": len(per_person),
                    "submissions": len(rows), "hourly": hourly}
    return {"project": project.slug, "name": project.name, "description": schema.description,
            "pay": schema.pay.model_dump() if schema.pay is not None else None,
            "review": schema.review.model_dump() if schema.review is not None else None,
            "qualification": schema.qualification.model_dump() if schema.qualification is not None else None,
            "qualification_status": qualification.status(store, project, user),
            "gold_rate": schema.gold.rate, "history_size": schema.history_size, "lease_seconds": project.lease_seconds,
            "expires_at": schema.expires_at, "estimate": estimate, "min_peers": MIN_PEERS,
            "started": queue.counts_for_user(store, project, user)["done"] > 0}


def history(store, project, user, limit: int = 50, now: float | None = None) -> list[dict]:
    """The user's own last ``limit`` answers in ``project``, newest first, each with its review status
    and whether it can still be amended (one of their last ``history_size`` answers, not reviewed and not
    being reviewed right now: the rules of :func:`queue.amend`)."""
    now = now or time.time()
    limit = max(1, min(limit, 200))
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.id, i.external_id, i.data, a.answers, a.created_at, a.updated_at, a.revision, a.review_status, "
            "a.active_ms, EXISTS (SELECT 1 FROM review_leases rl WHERE rl.annotation_id = a.id "
            "AND rl.expires_at > :now) FROM annotations a JOIN items i ON i.id = a.item_id "
            "WHERE a.user_id = :u AND a.project_id = :p ORDER BY a.id DESC LIMIT :n"),
            {"u": user.id, "p": project.id, "n": limit, "now": now}).all()
    out = []
    for k, r in enumerate(rows):
        out.append({"id": r[0], "external_id": r[1], "item": appeals.shown_fields(project, loads(r[2])),
                    "answers": loads(r[3]), "created_at": r[4], "updated_at": r[5], "revision": r[6],
                    "review_status": r[7], "active_ms": int(r[8]),
                    "amendable": k < project.schema.history_size and r[7] == "pending" and not r[9]})
    return out
