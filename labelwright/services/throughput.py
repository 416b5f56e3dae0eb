"""Items completed per day and when the rest will be done at the recent rate (the project page's finish
estimate).

An item is *completed* when it has as many answers as it needs (its ``target``, else the project's overlap):
its completion time is the moment of that answer (the n-th by time). Gold items are left out, as in
:func:`labelwright.services.projects.progress`. Days are UTC days.

The recent rate is the mean of completed items per day over the last ``RATE_DAYS`` days (fewer when the
project's first answer is more recent; today counts as a whole day). The estimate is the day on which the
remaining items are done at that rate; there is none when the rate is 0 or nothing remains.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t

DAYS = 30
RATE_DAYS = 7


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, timezone.utc).date()


def throughput(store: Store, project: Project, now: float | None = None, days: int = DAYS) -> dict:
    """``{per_day: [(date, n)] for the last ``days`` days (oldest first, today last), rate (items/day or
    None), rate_days, remaining, total, done, finish (date or None), finish_days}``."""
    now = time.time() if now is None else now
    today = _day(now)
    first_day = today - timedelta(days=days - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc).timestamp()
    i, a = t.items, t.annotations
    want = func.coalesce(i.c.target, project.overlap)
    ranked = (select(a.c.item_id, a.c.created_at,
                     func.row_number().over(partition_by=a.c.item_id, order_by=(a.c.created_at, a.c.id)).label("n"),
                     want.label("want"))
              .select_from(a.join(i, i.c.id == a.c.item_id))
              .where(a.c.project_id == project.id, i.c.is_gold == 0, i.c.n_done >= want, a.c.created_at <= now,
                     # an item completed in the window has an answer in it: only those items are ranked
                     a.c.item_id.in_(select(a.c.item_id).where(a.c.project_id == project.id,
                                                               a.c.created_at >= since)))
              .subquery())
    with store.read() as conn:
        total, done = conn.execute(select(
            func.count(), func.coalesce(func.sum((i.c.n_done >= want).cast(i.c.n_done.type)), 0),
        ).where(i.c.project_id == project.id, i.c.is_gold == 0)).one()
        completed = conn.execute(select(ranked.c.created_at).where(
            ranked.c.n == ranked.c.want, ranked.c.created_at >= since)).scalars().all()
        first = conn.execute(select(func.min(a.c.created_at)).where(a.c.project_id == project.id)).scalar_one()
    counts = {first_day + timedelta(days=k): 0 for k in range(days)}
    for ts in completed:
        d = _day(ts)
        if d in counts:
            counts[d] += 1
    per_day = sorted(counts.items())
    remaining = int(total) - int(done)
    rate, rate_days = None, 0
    if first is not None:
        rate_days = max(1, min(RATE_DAYS, (today - _day(first)).days + 1))
        recent = sum(n for d, n in per_day[-rate_days:])
        rate = recent / rate_days if recent else None
    finish, finish_days = None, None
    if rate and remaining > 0:
        finish_days = math.ceil(remaining / rate)
        finish = today + timedelta(days=finish_days)
    return {"per_day": per_day, "rate": rate, "rate_days": rate_days, "remaining": remaining,
            "total": int(total), "done": int(done), "finish": finish, "finish_days": finish_days, "today": today}
