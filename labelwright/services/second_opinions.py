"""Second opinions from the stronger half (``redundancy.second_opinions = "stronger_half"``).

An item in doubt gets one more answer (adaptive redundancy reopens it). Whose answer it gets matters: an
annotator the crowd agrees with more often moves the posterior further. With this setting, at every skill
refit (:func:`labelwright.services.redundancy.refit`) the annotators whose estimated accuracy on the
redundancy question (:func:`labelwright.quality.adaptive.fit_skills`, no truth needed, anchored on gold
where there is some) is below the median of those with 10 answers or more are listed in ``weaker_half``
(:func:`labelwright.quality.adaptive.weaker_half`), replacing the last list. The queue then serves them
no ordinary item that already has ``redundancy.min`` answers (:data:`labelwright.store.queue_sql.SECOND_OPINION`);
they still get first answers and gold items, are not paused, and their answers count as before. An
annotator with fewer than 10 answers does not move the median but is compared with it by their estimate
(shrunk towards the prior on few answers); one with no answers yet is not listed. The list follows the
skills: an annotator whose accuracy rises to the median gives second opinions again at the next refit.
Nobody is held back while the fit has fewer than twice ``redundancy.max`` annotators (in a smaller team
the stronger half may be too few to give an item all its answers, and the item would wait for ever).

``benchmarks/redundancy.py`` replays real crowds through the same rule (``replay_budget(...,
second_opinions="stronger_half")``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

import pandas as pd
from sqlalchemy import delete, exists, func, insert, select

from labelwright.quality.adaptive import weaker_half
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t


def sync(store: Store, project: Project, answers: pd.DataFrame, skills: Mapping) -> list[int]:
    """Replace the project's list with the weaker half under the fit ``skills`` of ``answers`` (task,
    worker = user id, label). Nothing when the setting is off (turning it off forgets the list:
    :func:`labelwright.services.projects.change_schema`). Returns the user ids listed."""
    r = project.schema.redundancy
    if r is None or r.second_opinions != "stronger_half":
        return []
    now = time.time()
    weaker = {int(cast(int, w)): h for w, h in weaker_half(answers, skills, min_workers=2 * r.max).items()}
    rows = [{"project_id": project.id, "user_id": uid, "accuracy": h.accuracy, "median": h.bar,
             "answers": h.answers, "from_answers": r.min, "updated_at": now} for uid, h in weaker.items()]
    wh = t.weaker_half
    with store.write() as conn:
        conn.execute(delete(wh).where(wh.c.project_id == project.id))
        if rows:
            conn.execute(insert(wh), rows)
    return list(weaker)


def listed(store: Store, project: Project) -> list[dict]:
    """The project's weaker half now, for the quality page: name, estimated accuracy, the median it fell
    below and on how many answers, weakest first."""
    wh, u = t.weaker_half, t.users
    with store.read() as conn:
        rows = conn.execute(select(u.c.name, wh.c.accuracy, wh.c.median, wh.c.answers)
                            .select_from(wh.join(u, u.c.id == wh.c.user_id))
                            .where(wh.c.project_id == project.id).order_by(wh.c.accuracy, u.c.name)).all()
    return [{"annotator": r.name, "accuracy": round(r.accuracy, 4), "median": round(r.median, 4),
             "answers": r.answers} for r in rows]


def held_back(store: Store, project: Project, user_id: int) -> dict | None:
    """Whether ``user_id`` is in the project's weaker half now and items in doubt wait for others because
    of it: ``{"accuracy", "median", "answers", "waiting"}`` (``waiting``: open ordinary items past their
    first answers that they have not answered or skipped), for the page that tells them why; None when
    they are not held back or nothing waits."""
    wh, i, a, sk = t.weaker_half, t.items, t.annotations, t.skips
    with store.read() as conn:
        row = conn.execute(select(wh.c.accuracy, wh.c.median, wh.c.answers, wh.c.from_answers)
                           .where(wh.c.project_id == project.id, wh.c.user_id == user_id)).first()
        if row is None:
            return None
        waiting = conn.execute(select(func.count()).select_from(i).where(
            i.c.project_id == project.id, i.c.is_open == 1, i.c.is_gold == 0, i.c.n_done >= row.from_answers,
            ~exists().where(a.c.item_id == i.c.id, a.c.user_id == user_id),
            ~exists().where(sk.c.item_id == i.c.id, sk.c.user_id == user_id))).scalar_one()
    if not waiting:
        return None
    return {"accuracy": row.accuracy, "median": row.median, "answers": row.answers, "waiting": int(waiting)}
