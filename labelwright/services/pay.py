"""Pay: what each annotator earned, in an append-only ledger, in exact money.

A project's ``pay:`` settings give a reward per accepted submission and/or an hourly rate for the active
time of accepted submissions, and an optional weekly bonus for gold accuracy. Amounts are written as
decimal strings in the schema and kept as integer minor units (cents) in the database; arithmetic is
exact (:class:`decimal.Decimal`, :class:`fractions.Fraction`), never a float. Earnings are rounded once per
annotator and ISO week (the ``period``), never per entry: an entry is the step of a **running total**
(the week's approved submissions in order), the exact amount so far rounded half-even to the currency's
minor unit less what the earlier submissions were given. So the week's entries add up to its exact pay
rounded once, whatever the number of items: 1,000 items of 3 s at 15.00 an hour earn 12.50 (1.25 cents
each), where rounding every entry would pay 10.00.

A submission is **approved** when a reviewer accepted or fixed it, or when nobody rejected it within
``auto_approve_hours`` of its submission. :func:`settle` brings the ledger up to date: for every
submission it compares what it should have earned by now (its step of the running total) with what the
ledger holds for it and appends the difference, as an earning (``reward``, ``hourly``) or a ``reversal``
(a rejection after approval, or a minor unit taken back when a decision on an earlier submission of
the week moved the steps).
Nothing is ever edited or deleted, so the ledger is a full history and settling twice changes nothing.
Bonuses are per ISO week (``period`` ``2026-W48``): paid once when the week's gold accuracy is above the
rule's mark over at least its number of gold answers.

:func:`summary` gives, per annotator: active hours, items, earnings and the **effective hourly rate**
(earnings / active hours of the submissions whose fate is known: approved or rejected), flagged when below
the project's ``min_fair_hourly``. Pending submissions (neither decided nor past the approval window) are
left out of the rate until they are approved or rejected: counting their time while their pay is not yet
due showed a careful annotator in red only because their work was still waiting.

:func:`for_annotator` is the annotator's own view: earnings split into approved, pending (an estimate, with
the day each becomes approved) and rejected, the effective hourly rate over approved work only, the
rejection rate and the earnings per week.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from sqlalchemy import ColumnElement, Connection, FromClause, case, exists, func, insert, literal_column, select

from labelwright.errors import ValidationError
from labelwright.services.gold import first_answers, score
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store, loads, locks
from labelwright.store import tables as t
from labelwright.timefmt import utc_day

# ISO 4217 minor units for the currencies that do not use two.
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XOF": 0, "XAF": 0,
                "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}
_MS_PER_HOUR = Decimal(3_600_000)


def _people(a: FromClause) -> ColumnElement[bool]:
    """Annotations ``a`` by people: machine annotators (LLMs, see labelwright.services.machines) are never paid,
    their annotations earn nothing."""
    ma = t.machine_annotators
    return ~exists().where(ma.c.user_id == a.c.user_id)


def digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


def to_minor(amount: str | Decimal, currency: str) -> int:
    """'0.105' USD -> 10 (half-even), exactly."""
    return int((Decimal(amount).scaleb(digits(currency))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-digits(currency))


def money(minor: int, currency: str) -> str:
    """10 USD -> '0.10'."""
    return f"{to_decimal(minor, currency):.{digits(currency)}f}"


def iso_week(ts: float) -> str:
    y, w, _ = datetime.fromtimestamp(ts, timezone.utc).isocalendar()
    return f"{y}-W{w:02d}"


def _settings(project: Project):
    pay = project.schema.pay
    if pay is None:
        raise ValidationError(f"project {project.slug!r} pays nothing (add `pay:` to its schema)", field="pay")
    return pay


class RunningTotal:
    """A running sum of exact amounts (in minor units), rounded once: :meth:`add` returns the step, the new
    total rounded half-even less the total rounded before it. The steps add up to the exact sum rounded
    once, so nothing is lost to rounding however small and many the amounts."""

    def __init__(self) -> None:
        self.exact = Fraction(0)
        self.rounded = 0

    def add(self, amount: Fraction) -> int:
        self.exact += amount
        total = round(self.exact)  # a Fraction rounds half to even, exactly
        step, self.rounded = total - self.rounded, total
        return step


def settle(store: Store, project: Project, now: float | None = None) -> dict:
    """Append the ledger entries that bring every annotator's earnings up to date; returns counts."""
    pay = _settings(project)
    now = now or time.time()
    cur = pay.currency
    unit = 10 ** digits(cur)
    reward = Fraction(Decimal(pay.reward_per_item)) * unit  # minor units per approved submission
    per_ms = Fraction(Decimal(pay.hourly_rate)) * unit / 3_600_000  # minor units per active millisecond
    cutoff = now - pay.auto_approve_hours * 3600
    written = {"reward": 0, "hourly": 0, "reversal": 0, "bonus": 0}
    a, lg = t.annotations, t.ledger
    with store.write() as conn:
        if store.dialect == "postgresql":  # two settles of one project must not both append the same entries
            conn.execute(select(func.pg_advisory_xact_lock(literal_column(locks.PAY), project.id)))
        anns = conn.execute(select(a.c.id, a.c.user_id, a.c.active_ms, a.c.review_status, a.c.created_at)
                            .where(a.c.project_id == project.id, _people(a)).order_by(a.c.id)).all()
        held: dict[tuple[int, str], int] = {}
        for r in conn.execute(select(lg.c.annotation_id, lg.c.kind, lg.c.note,
                                     func.sum(lg.c.amount_minor).label("total"))
                              .where(lg.c.project_id == project.id, lg.c.annotation_id.is_not(None))
                              .group_by(lg.c.annotation_id, lg.c.kind, lg.c.note)):
            ann_id, kind, note, total = r.annotation_id, r.kind, r.note, r.total
            part = note if kind == "reversal" else kind
            held[ann_id, part] = held.get((ann_id, part), 0) + int(total)
        # One running total per annotator, week and part: each approved submission is due its step.
        totals: dict[tuple[int, str, str], RunningTotal] = defaultdict(RunningTotal)
        entries: list[tuple] = []
        for ann in anns:
            ann_id, user_id, active_ms, status, created_at = (ann.id, ann.user_id, ann.active_ms, ann.review_status,
                                                              ann.created_at)
            approved = status in ("accepted", "fixed") or (status == "pending" and created_at <= cutoff)
            week = iso_week(created_at)
            for part, exact in (("reward", reward), ("hourly", per_ms * int(active_ms))):
                amount = 0
                if approved:
                    amount = totals[user_id, week, part].add(exact)
                delta = amount - held.get((ann_id, part), 0)
                if delta > 0:
                    entries.append((user_id, part, delta, ann_id, week, None))
                elif delta < 0:
                    entries.append((user_id, "reversal", delta, ann_id, week, part))
        entries += _bonuses(conn, project, now)
        for user_id, kind, amount, ann_id, period, note in entries:
            conn.execute(insert(lg).values(project_id=project.id, user_id=user_id, kind=kind, amount_minor=amount,
                                           currency=cur, annotation_id=ann_id, period=period, note=note,
                                           created_at=now))
            written[kind] += 1
    return written


def settle_if_stale(store: Store, project: Project, max_age: float = 60.0) -> None:
    """:func:`settle`, unless this process settled the project less than ``max_age`` seconds ago (pages
    that show earnings call this, so a busy home page does not settle on every view)."""
    if project.schema.pay is None:
        return
    last = store.caches.settled_at
    now = time.time()
    if now - last.get(project.id, 0.0) >= max_age:
        settle(store, project, now)
        last[project.id] = now


def _bonuses(conn: Connection, project: Project, now: float) -> list[tuple]:
    """Weekly gold-accuracy bonuses not yet paid, for weeks that are over."""
    pay = _settings(project)
    rule = pay.bonus
    if rule is None:
        return []
    questions = {q.name: q for q in project.schema.questions}
    lg, a, g = t.ledger, t.annotations, t.gold
    paid = {(r.user_id, r.period) for r in conn.execute(
        select(lg.c.user_id, lg.c.period).where(lg.c.project_id == project.id, lg.c.kind == "bonus"))}
    tally: dict[tuple[int, str], list[int]] = {}
    for r in conn.execute(select(a.c.user_id, first_answers(a), g.c.answers.label("gold"), a.c.created_at)
                          .select_from(a.join(g, g.c.item_id == a.c.item_id))
                          .where(a.c.project_id == project.id, _people(a))):
        week = iso_week(r.created_at)
        if week == iso_week(now):
            continue  # the week is not over yet
        right, checked = score(questions, loads(r.answers), loads(r.gold))
        if checked:
            counts = tally.setdefault((r.user_id, week), [0, 0])
            counts[0] += right
            counts[1] += checked
    amount = to_minor(rule.amount, pay.currency)
    out = []
    for (user_id, week), (right, total) in sorted(tally.items()):
        if (user_id, week) not in paid and total >= rule.min_gold_answers and right / total > rule.gold_accuracy_above:
            out.append((user_id, "bonus", amount, None, week, f"gold accuracy {right}/{total}"))
    return out


def ledger_rows(store: Store, project: Project, *, start: float | None = None, end: float | None = None,
                annotator: str | None = None) -> list[dict]:
    """Ledger entries in order, optionally from ``start`` to ``end`` (unix times) and for one annotator."""
    lg, u, a, i = t.ledger, t.users, t.annotations, t.items
    stmt = (select(lg.c.id, lg.c.created_at, u.c.name, lg.c.kind, lg.c.amount_minor, lg.c.currency,
                   lg.c.annotation_id, i.c.external_id, lg.c.period, lg.c.note)
            .select_from(lg.join(u, u.c.id == lg.c.user_id).outerjoin(a, a.c.id == lg.c.annotation_id)
                         .outerjoin(i, i.c.id == a.c.item_id))
            .where(lg.c.project_id == project.id).order_by(lg.c.id))
    if start is not None:
        stmt = stmt.where(lg.c.created_at >= start)
    if end is not None:
        stmt = stmt.where(lg.c.created_at < end)
    if annotator is not None:
        stmt = stmt.where(u.c.name == annotator)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "created_at": r.created_at, "annotator": r.name, "kind": r.kind,
             "amount": money(r.amount_minor, r.currency), "amount_minor": int(r.amount_minor), "currency": r.currency,
             "annotation_id": r.annotation_id, "item": r.external_id, "period": r.period, "note": r.note}
            for r in rows]


def ledger_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["entry", "time_utc", "annotator", "kind", "amount", "currency", "annotation_id", "item", "period",
                "note"])
    for r in rows:
        w.writerow([r["id"], datetime.fromtimestamp(r["created_at"], timezone.utc).isoformat(timespec="seconds"),
                    r["annotator"], r["kind"], r["amount"], r["currency"], r["annotation_id"] or "", r["item"] or "",
                    r["period"] or "", r["note"] or ""])
    return buf.getvalue()


def fate(review_status: str, created_at: float, cutoff: float) -> str:
    """``approved``, ``rejected`` or ``pending`` for one submission, given the approval ``cutoff`` (now
    less the approval window): the rule :func:`settle` pays by."""
    if review_status in ("accepted", "fixed") or (review_status == "pending" and created_at <= cutoff):
        return "approved"
    return "rejected" if review_status == "rejected" else "pending"


def _cutoff(project: Project, now: float) -> float:
    pay = project.schema.pay
    return now - (pay.auto_approve_hours if pay is not None else 0) * 3600


def summary(store: Store, project: Project, user: User | None = None, now: float | None = None) -> list[dict]:
    """Per annotator (or just ``user``): items, active hours, earnings, effective hourly rate, fairness flag.

    The rate is earnings over the active time of approved and rejected submissions; pending ones count
    neither way until their fate is known, so nobody is flagged before the approval window has passed."""
    pay = project.schema.pay
    currency = pay.currency if pay else "USD"
    now = now or time.time()
    a, u, lg = t.annotations, t.users, t.ledger
    pending = (a.c.review_status == "pending") & (a.c.created_at > _cutoff(project, now))
    stmt = (select(u.c.id, u.c.name, func.count(a.c.id).label("items"),
                   func.coalesce(func.sum(a.c.active_ms), 0).label("ms"),
                   func.coalesce(func.sum(case((pending, 1), else_=0)), 0).label("waiting"),
                   func.coalesce(func.sum(case((pending, 0), else_=a.c.active_ms)), 0).label("judged_ms"))
            .select_from(a.join(u, u.c.id == a.c.user_id))
            .where(a.c.project_id == project.id, _people(a))
            .group_by(u.c.id, u.c.name).order_by(u.c.name))
    if user is not None:
        stmt = stmt.where(u.c.id == user.id)
    with store.read() as conn:
        work = conn.execute(stmt).all()
        earned = {r.user_id: int(r.total) for r in conn.execute(
            select(lg.c.user_id, func.sum(lg.c.amount_minor).label("total")).where(lg.c.project_id == project.id)
            .group_by(lg.c.user_id))}
    fair = to_minor(pay.min_fair_hourly, currency) if pay and pay.min_fair_hourly is not None else None
    out = []
    for w in work:
        uid, name, items, ms, waiting, judged_ms = w.id, w.name, w.items, w.ms, w.waiting, w.judged_ms
        minor = earned.get(uid, 0)
        hours = Decimal(int(ms)) / _MS_PER_HOUR
        judged = Decimal(int(judged_ms)) / _MS_PER_HOUR
        rate = to_minor(to_decimal(minor, currency) / judged, currency) if judged > 0 else None
        out.append({"annotator": name, "items": int(items), "pending_items": int(waiting),
                    "active_ms": int(ms), "active_hours": float(round(hours, 3)),
                    "judged_hours": float(round(judged, 3)),
                    "earnings": money(minor, currency), "earnings_minor": minor, "currency": currency,
                    "effective_hourly": money(rate, currency) if rate is not None else None,
                    "below_fair_rate": bool(fair is not None and rate is not None and rate < fair)})
    return out


def for_annotator(store: Store, project: Project, user: User, now: float | None = None) -> dict:
    """One annotator's own pay in ``project`` (the caller settles first): approved, pending and rejected
    work, the effective hourly rate over approved work, the rejection rate and the earnings per week.

    ``approved.amount`` is what the ledger holds for them (bonuses included); ``pending.amount`` is an
    estimate (what the pending work earns if it is approved), per day it becomes approved. The fair-rate
    flag waits for approved work: before the approval window has passed there is no rate to judge."""
    settings = _settings(project)
    now = now or time.time()
    cur = settings.currency
    unit = 10 ** digits(cur)
    reward = Fraction(Decimal(settings.reward_per_item)) * unit
    per_ms = Fraction(Decimal(settings.hourly_rate)) * unit / 3_600_000
    window = settings.auto_approve_hours * 3600
    cutoff = now - window
    a, lg = t.annotations, t.ledger
    with store.read() as conn:
        anns = conn.execute(select(a.c.active_ms, a.c.review_status, a.c.created_at)
                            .where(a.c.project_id == project.id, a.c.user_id == user.id)).all()
        ledger = conn.execute(select(lg.c.period, lg.c.kind, func.sum(lg.c.amount_minor).label("total"))
                              .where(lg.c.project_id == project.id, lg.c.user_id == user.id)
                              .group_by(lg.c.period, lg.c.kind).order_by(lg.c.period)).all()
    parts = {k: {"items": 0, "active_ms": 0} for k in ("approved", "pending", "rejected")}
    by_day: dict[str, Fraction] = {}
    by_day_items: dict[str, int] = {}
    for ann in anns:
        active_ms, created_at = ann.active_ms, ann.created_at
        f = fate(ann.review_status, created_at, cutoff)
        parts[f]["items"] += 1
        parts[f]["active_ms"] += int(active_ms)
        if f == "pending":
            day = utc_day(created_at + window)
            by_day[day] = by_day.get(day, Fraction(0)) + reward + per_ms * int(active_ms)
            by_day_items[day] = by_day_items.get(day, 0) + 1
    weeks: dict[str, int] = {}
    bonus = 0
    for entry in ledger:
        weeks[entry.period] = weeks.get(entry.period, 0) + int(entry.total)
        if entry.kind == "bonus":
            bonus += int(entry.total)
    earned = sum(weeks.values())
    approved_ms = parts["approved"]["active_ms"]
    rate = (to_minor(to_decimal(earned, cur) / (Decimal(approved_ms) / _MS_PER_HOUR), cur)
            if approved_ms > 0 else None)
    fair = to_minor(settings.min_fair_hourly, cur) if settings.min_fair_hourly is not None else None
    decided = parts["approved"]["items"] + parts["rejected"]["items"]
    pending_days = [{"date": d, "items": by_day_items[d], "amount": money(round(by_day[d]), cur)}
                    for d in sorted(by_day)]
    return {
        "currency": cur,
        "approved": {"amount": money(earned, cur), "amount_minor": earned, "bonuses": money(bonus, cur),
                     **parts["approved"]},
        "pending": {"amount": money(round(sum(by_day.values(), Fraction(0))), cur), **parts["pending"],
                    "by_day": pending_days},
        "rejected": parts["rejected"],
        "effective_hourly": money(rate, cur) if rate is not None else None,
        "min_fair_hourly": settings.min_fair_hourly,
        "below_fair_rate": bool(fair is not None and rate is not None and rate < fair),
        "rejection_rate": round(parts["rejected"]["items"] / decided, 4) if decided else None,
        "decided": decided,
        "weeks": [{"period": p, "amount": money(m, cur), "amount_minor": m} for p, m in sorted(weeks.items())],
    }
