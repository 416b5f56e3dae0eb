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

from sqlalchemy import Connection, case, exists, func, select

from labelwright.consensus import majority
from labelwright.services import access, appeals, messages, pay, qualification, queue, review
from labelwright.services.gold import first_answers, matches_label, score
from labelwright.services.projects import Project, list_projects
from labelwright.services.users import User
from labelwright.store import Store, loads
from labelwright.store import tables as t


def _starts(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    return day.timestamp(), week.timestamp()


# An annotator's own gold accuracy and agreement move only in whole batches of their answers, so no
# sequence of submissions tells them whether one particular answer matched.
GOLD_BATCH = 5
AGREEMENT_BATCH = 10


def _quality(conn: Connection, project: Project, user: User) -> dict:
    """Gold accuracy and agreement with the majority, over the user's own first answers in the project.

    Gold accuracy counts the first ``GOLD_BATCH * k`` gold answers (k whole batches), agreement the
    first ``AGREEMENT_BATCH * k`` ordinary ones, compared with the others' first answers given before
    the last answer of the batch: amending, or answering one more item, moves neither figure."""
    questions = {q.name: q for q in project.schema.questions}
    a, g = t.annotations, t.gold
    mine = conn.execute(select(a.c.item_id, first_answers(a), g.c.answers.label("gold"), a.c.created_at)
                        .select_from(a.outerjoin(g, g.c.item_id == a.c.item_id))
                        .where(a.c.user_id == user.id, a.c.project_id == project.id).order_by(a.c.id)).all()
    on_gold = [r for r in mine if r.gold is not None]
    on_gold = on_gold[:len(on_gold) // GOLD_BATCH * GOLD_BATCH]
    gold_right = gold_checked = 0
    for r in on_gold:
        right, checked = score(questions, loads(r.answers), loads(r.gold))
        gold_right += right
        gold_checked += checked
    ordinary = [r for r in mine if r.gold is None]
    ordinary = ordinary[:len(ordinary) // AGREEMENT_BATCH * AGREEMENT_BATCH]
    cutoff = ordinary[-1].created_at if ordinary else 0.0
    others: dict[int, list] = {}
    ids = [r.item_id for r in ordinary]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for other in conn.execute(select(a.c.item_id, first_answers(a))
                                  .where(a.c.item_id.in_(chunk), a.c.user_id != user.id, a.c.created_at <= cutoff)):
            others.setdefault(other.item_id, []).append(loads(other.answers))
    agree = compared = 0
    for mine_row in ordinary:
        item_id = mine_row.item_id
        if item_id not in others:
            continue
        answers = loads(mine_row.answers)
        votes = majority(project.schema, others[item_id] + [answers])
        for name, v in votes.items():
            ok = matches_label(questions[name], answers.get(name), v["label"])
            if ok is not None and v["n"] >= 2:
                compared += 1
                agree += int(ok)
    return {"gold_checked": gold_checked,
            "gold_accuracy": round(gold_right / gold_checked, 4) if gold_checked else None,
            "agreement_checked": compared, "agreement": round(agree / compared, 4) if compared else None}


def my_work(store: Store, user: User, now: float | None = None) -> dict:
    """The annotator's home page (and ``GET /api/v1/me/work``). With ``now`` given, pay is settled at
    that time (tests); otherwise at most once a minute per project (:func:`pay.settle_if_stale`)."""
    settle_at = now
    now = now or time.time()
    day, week = _starts(now)
    visible = access.visible_project_ids(store, user)
    projects = [p for p in list_projects(store) if visible is None or p.id in visible]
    out = []
    a = t.annotations
    with store.read() as conn:
        for p in projects:
            today, this_week = conn.execute(
                select(func.coalesce(func.sum(case((a.c.created_at >= day, 1), else_=0)), 0), func.count())
                .where(a.c.user_id == user.id, a.c.project_id == p.id, a.c.created_at >= week)).one()
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


def _feedback(store: Store, user: User, projects: list[Project]) -> list[dict]:
    """Review decisions on the user's submissions, newest first. A rejection or fix also carries the item
    (its display fields), and the question the user asked about it, if any; ``can_question`` is true on
    the latest decision of a submission when it may still be questioned (see :mod:`appeals`)."""
    rows = review.feedback_for(store, user, limit=20)
    by_slug = {p.slug: p for p in projects}
    wanted = [f["annotation_id"] for f in rows if f["decision"] in appeals.QUESTIONABLE and f["project"] in by_slug]
    data: dict[int, dict] = {}
    if wanted:
        a, i = t.annotations, t.items
        with store.read() as conn:
            data = {r.id: loads(r.data) for r in conn.execute(
                select(a.c.id, i.c.data).select_from(a.join(i, i.c.id == a.c.item_id))
                .where(a.c.user_id == user.id, a.c.id.in_(wanted)))}
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


def briefing(store: Store, project: Project, user: User) -> dict:
    """Every term of ``project`` an annotator should know before starting, and an estimate of the hourly
    rate: each other person's median active time per item, the median of those (at least
    :data:`MIN_PEERS` people with timed work; machine annotators never count), priced at the project's
    reward per item and hourly rate, assuming the work is approved."""
    schema = project.schema
    a, ma = t.annotations, t.machine_annotators
    with store.read() as conn:
        rows = conn.execute(select(a.c.user_id, a.c.active_ms)
                            .where(a.c.project_id == project.id, a.c.user_id != user.id, a.c.active_ms > 0,
                                   ~exists().where(ma.c.user_id == a.c.user_id))).all()
    per_person: dict[int, list[float]] = {}
    for r in rows:
        per_person.setdefault(r.user_id, []).append(float(r.active_ms))
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


def history(store: Store, project: Project, user: User, limit: int = 50, now: float | None = None) -> list[dict]:
    """The user's own last ``limit`` answers in ``project``, newest first, each with its review status
    and whether it can still be amended (one of their last ``history_size`` answers, not reviewed and not
    being reviewed right now: the rules of :func:`queue.amend`)."""
    now = now or time.time()
    limit = max(1, min(limit, 200))
    a, i, rl = t.annotations, t.items, t.review_leases
    in_review = exists().where(rl.c.annotation_id == a.c.id, rl.c.expires_at > now).label("in_review")
    with store.read() as conn:
        rows = conn.execute(select(a.c.id, i.c.external_id, i.c.data, a.c.answers, a.c.created_at, a.c.updated_at,
                                   a.c.revision, a.c.review_status, a.c.active_ms, in_review)
                            .select_from(a.join(i, i.c.id == a.c.item_id))
                            .where(a.c.user_id == user.id, a.c.project_id == project.id)
                            .order_by(a.c.id.desc()).limit(limit)).all()
    out = []
    for k, r in enumerate(rows):
        out.append({"id": r.id, "external_id": r.external_id, "item": appeals.shown_fields(project, loads(r.data)),
                    "answers": loads(r.answers), "created_at": r.created_at, "updated_at": r.updated_at,
                    "revision": r.revision, "review_status": r.review_status, "active_ms": int(r.active_ms),
                    "amendable": k < project.schema.history_size and r.review_status == "pending"
                    and not r.in_review})
    return out
