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

from sqlalchemy import text

from labelwright.errors import ValidationError
from labelwright.services.gold import FIRST_ANSWERS, score
from labelwright.services.projects import Project
from labelwright.store import loads

# ISO 4217 minor units for the currencies that do not use two.
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XOF": 0, "XAF": 0,
                "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}
_MS_PER_HOUR = Decimal(3_600_000)
# Machine annotators (LLMs, see labelwright.services.machines) are never paid: their annotations earn nothing.
_PEOPLE = "NOT EXISTS (SELECT 1 FROM machine_annotators ma WHERE ma.user_id = {a}.user_id)"


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


def settle(store, project: Project, now: float | None = None) -> dict:
    """Append the ledger entries that bring every annotator's earnings up to date; returns counts."""
    pay = _settings(project)
    now = now or time.time()
    cur = pay.currency
    unit = 10 ** digits(cur)
    reward = Fraction(Decimal(pay.reward_per_item)) * unit  # minor units per approved submission
    per_ms = Fraction(Decimal(pay.hourly_rate)) * unit / 3_600_000  # minor units per active millisecond
    cutoff = now - pay.auto_approve_hours * 3600
    written = {"reward": 0, "hourly": 0, "reversal": 0, "bonus": 0}
    with store.write() as conn:
        if store.dialect == "postgresql":  # two settles of one project must not both append the same entries
            conn.execute(text("SELECT pg_advisory_xact_lock(7420003, :p)"), {"p": project.id})
        anns = conn.execute(text(
            "SELECT id, user_id, active_ms, review_status, created_at FROM annotations WHERE project_id = :p "
            f"AND {_PEOPLE.format(a='annotations')} ORDER BY id"), {"p": project.id}).all()
        held: dict[tuple[int, str], int] = {}
        for ann_id, kind, note, total in conn.execute(text(
                "SELECT annotation_id, kind, note, sum(amount_minor) FROM ledger WHERE project_id = :p "
                "AND annotation_id IS NOT NULL GROUP BY annotation_id, kind, note"), {"p": project.id}):
            part = note if kind == "reversal" else kind
            held[ann_id, part] = held.get((ann_id, part), 0) + int(total)
        # One running total per annotator, week and part: each approved submission is due its step.
        totals: dict[tuple[int, str, str], RunningTotal] = defaultdict(RunningTotal)
        entries = []
        for ann_id, user_id, active_ms, status, created_at in anns:
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
            conn.execute(text(
                "INSERT INTO ledger (project_id, user_id, kind, amount_minor, currency, annotation_id, period, note, "
                "created_at) VALUES (:p, :u, :k, :a, :c, :ann, :per, :note, :now)"),
                {"p": project.id, "u": user_id, "k": kind, "a": amount, "c": cur, "ann": ann_id, "per": period,
                 "note": note, "now": now})
            written[kind] += 1
    return written


def settle_if_stale(store, project: Project, max_age: float = 60.0) -> None:
    """:func:`settle`, unless this process settled the project less than ``max_age`` seconds ago (pages
    that show earnings call this, so a busy home page does not settle on every view)."""
    if project.schema.pay is None:
        return
    last = store.caches.settled_at
    now = time.time()
    if now - last.get(project.id, 0.0) >= max_age:
        settle(store, project, now)
        last[project.id] = now


def _bonuses(conn, project: Project, now: float) -> list[tuple]:
    """Weekly gold-accuracy bonuses not yet paid, for weeks that are over."""
    rule = project.schema.pay.bonus
    if rule is None:
        return []
    questions = {q.name: q for q in project.schema.questions}
    paid = {(u, p) for u, p in conn.execute(text(
        "SELECT user_id, period FROM ledger WHERE project_id = :p AND kind = 'bonus'"), {"p": project.id})}
    tally: dict[tuple[int, str], list[int]] = {}
    for user_id, answers, gold, created_at in conn.execute(text(
            f"SELECT a.user_id, {FIRST_ANSWERS}, g.answers, a.created_at FROM annotations a JOIN gold g ON g.item_id = a.item_id "
            f"WHERE a.project_id = :p AND {_PEOPLE.format(a='a')}"), {"p": project.id}):
        week = iso_week(created_at)
        if week == iso_week(now):
            continue  # the week is not over yet
        right, checked = score(questions, loads(answers), loads(gold))
        if checked:
            t = tally.setdefault((user_id, week), [0, 0])
            t[0] += right
            t[1] += checked
    amount = to_minor(rule.amount, project.schema.pay.currency)
    out = []
    for (user_id, week), (right, total) in sorted(tally.items()):
        if (user_id, week) not in paid and total >= rule.min_gold_answers and right / total > rule.gold_accuracy_above:
            out.append((user_id, "bonus", amount, None, week, f"gold accuracy {right}/{total}"))
    return out


def ledger_rows(store, project: Project, *, start: float | None = None, end: float | None = None,
                annotator: str | None = None) -> list[dict]:
    """Ledger entries in order, optionally from ``start`` to ``end`` (unix times) and for one annotator."""
    where, params = ["l.project_id = :p"], {"p": project.id}
    if start is not None:
        where.append("l.created_at >= :s")
        params["s"] = start
    if end is not None:
        where.append("l.created_at < :e")
        params["e"] = end
    if annotator is not None:
        where.append("u.name = :n")
        params["n"] = annotator
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT l.id, l.created_at, u.name, l.kind, l.amount_minor, l.currency, l.annotation_id, i.external_id, "
            "l.period, l.note FROM ledger l JOIN users u ON u.id = l.user_id "
            "LEFT JOIN annotations a ON a.id = l.annotation_id LEFT JOIN items i ON i.id = a.item_id "
            f"WHERE {' AND '.join(where)} ORDER BY l.id"), params).all()
    return [{"id": r[0], "created_at": r[1], "annotator": r[2], "kind": r[3], "amount": money(r[4], r[5]),
             "amount_minor": int(r[4]), "currency": r[5], "annotation_id": r[6], "item": r[7], "period": r[8],
             "note": r[9]} for r in rows]


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


def summary(store, project: Project, user=None, now: float | None = None) -> list[dict]:
    """Per annotator (or just ``user``): items, active hours, earnings, effective hourly rate, fairness flag.

    The rate is earnings over the active time of approved and rejected submissions; pending ones count
    neither way until their fate is known, so nobody is flagged before the approval window has passed."""
    pay = project.schema.pay
    currency = pay.currency if pay else "USD"
    now = now or time.time()
    params = {"p": project.id, "cut": _cutoff(project, now)}
    only = ""
    if user is not None:
        only = " AND u.id = :u"
        params["u"] = user.id
    pending = "a.review_status = 'pending' AND a.created_at > :cut"
    with store.read() as conn:
        work = conn.execute(text(
            "SELECT u.id, u.name, count(a.id), coalesce(sum(a.active_ms), 0), "
            f"coalesce(sum(CASE WHEN {pending} THEN 1 ELSE 0 END), 0), "
            f"coalesce(sum(CASE WHEN {pending} THEN 0 ELSE a.active_ms END), 0) FROM annotations a "
            f"JOIN users u ON u.id = a.user_id WHERE a.project_id = :p AND {_PEOPLE.format(a='a')}{only} "
            "GROUP BY u.id, u.name ORDER BY u.name"),
            params).all()
        earned = {uid: int(total) for uid, total in conn.execute(text(
            "SELECT user_id, sum(amount_minor) FROM ledger WHERE project_id = :p GROUP BY user_id"), {"p": project.id})}
    fair = to_minor(pay.min_fair_hourly, currency) if pay and pay.min_fair_hourly is not None else None
    out = []
    for uid, name, items, ms, waiting, judged_ms in work:
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


def for_annotator(store, project: Project, user, now: float | None = None) -> dict:
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
    with store.read() as conn:
        anns = conn.execute(text(
            "SELECT active_ms, review_status, created_at FROM annotations WHERE project_id = :p AND user_id = :u"),
            {"p": project.id, "u": user.id}).all()
        ledger = conn.execute(text(
            "SELECT period, kind, sum(amount_minor) FROM ledger WHERE project_id = :p AND user_id = :u "
            "GROUP BY period, kind ORDER BY period"), {"p": project.id, "u": user.id}).all()
    parts = {k: {"items": 0, "active_ms": 0} for k in ("approved", "pending", "rejected")}
    by_day: dict[str, Fraction] = {}
    by_day_items: dict[str, int] = {}
    for active_ms, status, created_at in anns:
        f = fate(status, created_at, cutoff)
        parts[f]["items"] += 1
        parts[f]["active_ms"] += int(active_ms)
        if f == "pending":
            day = datetime.fromtimestamp(created_at + window, timezone.utc).strftime("%Y-%m-%d")
            by_day[day] = by_day.get(day, Fraction(0)) + reward + per_ms * int(active_ms)
            by_day_items[day] = by_day_items.get(day, 0) + 1
    weeks: dict[str, int] = {}
    bonus = 0
    for period, kind, total in ledger:
        weeks[period] = weeks.get(period, 0) + int(total)
        if kind == "bonus":
            bonus += int(total)
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
