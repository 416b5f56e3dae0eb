"""Pausing weak annotators automatically, as an MTurk requester blocks a spammer (``redundancy.pause_below``).

At every skill refit of a project with adaptive redundancy and ``pause_below`` set, the annotators whose
estimated accuracy on the redundancy question (:func:`labelwright.quality.adaptive.fit_skills`, no truth
needed; an annotator with 5 or more gold answers is judged by their share right on those) is below
``1/K + pause_below · (crowd - 1/K)`` after at least
:data:`~labelwright.quality.adaptive.MIN_ANSWERS_TO_PAUSE` answers are paused in the project
(:mod:`labelwright.services.pauses`): they get no new items there, their answers so far still count and are
paid for, and the quality page shows the reason with a Resume button. Only plain annotators are paused:
never a machine annotator, an owner, or a member who manages or reviews the project; and an annotator a
manager resumed is left alone from then on (the manager's word beats the model's), as the audit log says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import pandas as pd
from sqlalchemy import select

from labelwright.quality.adaptive import WeakAnnotator, weak_annotators
from labelwright.schema import answer_label
from labelwright.services import pauses
from labelwright.services.gold import first_answers
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store, loads
from labelwright.store import tables as t


def reason(w: WeakAnnotator, pause_below: float, question: str) -> str:
    """What the annotator and the project's managers read (the pause's reason)."""
    measured = (f"gold accuracy {w.accuracy:.0%} on '{question}'" if w.on_gold else
                f"estimated accuracy {w.accuracy:.0%} on {w.answers} answers to '{question}'")
    return (f"paused automatically: {measured}, under the project's bar of {w.bar:.0%} ({pause_below:g} of the "
            f"way from chance, {w.chance:.0%}, to the crowd's {w.crowd:.0%})")


def _first_answers_on_gold(store: Store, project: Project, answers: pd.DataFrame) -> pd.DataFrame:
    """``answers`` with each answer to a gold item replaced by the annotator's first one: gold accuracy is
    measured on first answers wherever it counts (:func:`labelwright.services.gold.first_answers`), so
    amending a gold answer never changes whether someone is paused."""
    a, g = t.annotations, t.gold
    q = project.schema.redundancy_question()
    with store.read() as conn:
        rows = conn.execute(select(a.c.item_id, a.c.user_id, first_answers(a))
                            .select_from(a.join(g, g.c.item_id == a.c.item_id))
                            .where(a.c.project_id == project.id)).all()
    first = {(item_id, user_id): answer_label(q, loads(ans).get(q.name)) for item_id, user_id, ans in rows}
    if not first:
        return answers
    labels = [label if first.get(k) is None else first[k]  # a first answer without the question: the latest
              for k, label in zip(zip(answers["task"], answers["worker"]), answers["label"])]
    return answers.assign(label=labels)


def _candidates(store: Store, project: Project, ids: list) -> dict[int, str]:
    """``{user id: name}`` of those among ``ids`` that may be paused automatically (see the module)."""
    u, m, log, ma = t.users, t.memberships, t.audit_log, t.machine_annotators
    already = pauses.paused(store, project)
    with store.read() as conn:
        rows = conn.execute(select(u.c.id, u.c.name, u.c.role, m.c.role.label("member_role"))
                            .select_from(u.outerjoin(m, (m.c.user_id == u.c.id) & (m.c.project_id == project.id)))
                            .where(u.c.id.in_(ids))).all()
        resumed = set(conn.execute(select(log.c.target).where(log.c.project_id == project.id,
                                                              log.c.action == "annotator.resume")).scalars())
        machines = set(conn.execute(select(ma.c.user_id).where(ma.c.project_id == project.id)).scalars())
    return {r.id: r.name for r in rows
            if r.role == "annotator" and r.member_role in (None, "annotator")
            and r.name not in already and r.id not in machines and r.name not in resumed}


def pause_weak(store: Store, project: Project, answers: pd.DataFrame, skills: Mapping,
               gold: pd.Series | None = None) -> list[str]:
    """Pause the project's weak annotators under the fit ``skills`` (of ``answers``: task, worker = user id,
    label; ``gold``: item id -> gold label, by which those with 5 gold answers are judged); returns the
    names paused now. Nothing when ``redundancy.pause_below`` is not set."""
    r = project.schema.redundancy
    if r is None or r.pause_below is None:
        return []
    if gold is not None and len(gold):
        answers = _first_answers_on_gold(store, project, answers)
    weak = weak_annotators(answers, skills, r.pause_below, gold=gold)
    if not weak:
        return []
    question = project.schema.redundancy_question().name
    names = _candidates(store, project, [int(cast(int, w)) for w in weak])  # user ids (numpy ints from pandas)
    for uid, name in names.items():
        pauses.pause(store, project, User(uid, name, "annotator"), by=None,
                     reason=reason(weak[uid], r.pause_below, question), automatic=True)
    return sorted(names.values())
