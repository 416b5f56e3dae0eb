"""Suggestions: the assistant's answer shown pre-selected to people, and what it does to them (issue 9 item 4).

With ``assist.suggestions`` on, an item handed out by the queue carries ``suggestion`` (the stored prediction
for the assisted question: label, confidence, model version) for annotators in the ``shown`` arm. The
anchoring control: a share ``assist.suggestion_control`` of the project's annotators (chosen by a hash of
project and annotator, so the same person is always in the same arm) never sees suggestions: the ``hidden``
arm. Gold items carry suggestions like any other item (so they cannot be told apart by their absence), and
the builtin model never trains on gold answers (so its suggestions on gold items are no better than on any
item): gold accuracy then measures people, with and without suggestions.

Each submission records what its author was shown (``annotations.suggestion``, ``suggestion_arm``) for items
that had a prediction, in the submission's own INSERT (:mod:`labelwright.services.queue`). :func:`report`
gives, per arm: submissions, acceptance (the answer equals the suggestion), median active time, and gold
accuracy; the difference in gold accuracy between the arms is the measured anchoring effect (with both arms'
counts, so its noise can be judged).

**Rubber-stamping.** Accepting every suggestion is fast, and on gold items it scores the model's accuracy,
which may pass a gold check. What gives it away is the gold items where the suggestion was *wrong*: an
annotator who reads the item corrects it there, one who only presses Enter does not. :func:`per_annotator`
counts, for each person, the suggestions shown and accepted and, on gold items, the wrong suggestions and how
many they corrected; the quality page flags a person who corrected at most half of at least
:data:`MIN_WRONG_SUGGESTIONS` wrong ones.
"""

from __future__ import annotations

import hashlib
import statistics

from sqlalchemy import func, select

from labelwright.schema import answer_label
from labelwright.services.assistant import prediction_for
from labelwright.services.projects import Project
from labelwright.store import Store, loads
from labelwright.store import tables as t

SHOWN, HIDDEN = "shown", "hidden"
MIN_WRONG_SUGGESTIONS = 5  # gold answers under a wrong suggestion before an annotator can be flagged


def arm(project: Project, user_id: int) -> str:
    """The annotator's arm in this project: ``shown`` or ``hidden`` (the anchoring control group)."""
    share = project.schema.assist.suggestion_control if project.schema.assist else 0.0
    if share <= 0:
        return SHOWN
    h = int.from_bytes(hashlib.sha256(f"suggestions:{project.id}:{user_id}".encode()).digest()[:8], "big")
    return HIDDEN if h / 2**64 < share else SHOWN


def enabled(project: Project) -> bool:
    return project.schema.assist is not None and project.schema.assist.suggestions


def for_item(store: Store, project: Project, user_id: int, item_id: int) -> dict | None:
    """The suggestion to show ``user_id`` on ``item_id``: ``{question, label, confidence, model}``, or None."""
    if not enabled(project) or arm(project, user_id) != SHOWN:
        return None
    pred = prediction_for(store, item_id)
    if pred is None:
        return None
    return {"question": project.schema.assist_question().name, **pred}


def report(store: Store, project: Project) -> dict:
    """Per arm: submissions, acceptance rate, median active seconds, gold answers and gold accuracy; and the
    gold accuracy difference (shown minus hidden). People only (machine annotators are left out)."""
    q = project.schema.assist_question()
    a_, g, ma = t.annotations, t.gold, t.machine_annotators
    with store.read() as conn:
        rows = conn.execute(select(a_.c.suggestion_arm, a_.c.suggestion, a_.c.answers, a_.c.active_ms,
                                   g.c.answers.label("gold"))
                            .select_from(a_.outerjoin(g, g.c.item_id == a_.c.item_id))
                            .where(a_.c.project_id == project.id, a_.c.user_id.not_in(select(ma.c.user_id)),
                                   a_.c.reviewed_revision.is_(None) | (a_.c.reviewed_revision >= 1))).all()
    arms: dict[str, dict] = {}
    for r in rows:
        suggestion, answers, ms, gold = r.suggestion, r.answers, r.active_ms, r.gold
        key = r.suggestion_arm or "none"
        a = arms.setdefault(key, {"submissions": 0, "accepted": 0, "ms": [], "gold": 0, "gold_right": 0})
        a["submissions"] += 1
        a["ms"].append(ms)
        label = answer_label(q, loads(answers).get(q.name))
        if suggestion is not None and label == loads(suggestion):
            a["accepted"] += 1
        if gold is not None:
            want = loads(gold).get(q.name)
            if want is not None:
                a["gold"] += 1
                a["gold_right"] += label == answer_label(q, want)
    out = {}
    for key, a in arms.items():
        out[key] = {"submissions": a["submissions"],
                    "acceptance": round(a["accepted"] / a["submissions"], 4) if key == SHOWN else None,
                    "median_active_seconds": round(statistics.median(a["ms"]) / 1000, 2) if a["ms"] else None,
                    "gold_answers": a["gold"],
                    "gold_accuracy": round(a["gold_right"] / a["gold"], 4) if a["gold"] else None}
    shown, hidden = out.get(SHOWN, {}), out.get(HIDDEN, {})
    diff = None
    if shown.get("gold_accuracy") is not None and hidden.get("gold_accuracy") is not None:
        diff = round(shown["gold_accuracy"] - hidden["gold_accuracy"], 4)
    return {"arms": out, "gold_accuracy_difference": diff,
            "control_share": project.schema.assist.suggestion_control if project.schema.assist else 0.0}


def per_annotator(store: Store, project: Project) -> dict[int, dict]:
    """``{user_id: {shown, accepted, wrong_on_gold, corrected}}`` for the people shown suggestions."""
    q = project.schema.assist_question()
    a, g = t.annotations, t.gold
    with store.read() as conn:
        rows = conn.execute(select(a.c.user_id, a.c.suggestion,
                                   func.coalesce(a.c.reviewed_answers, a.c.answers).label("answers"),
                                   g.c.answers.label("gold"))
                            .select_from(a.outerjoin(g, g.c.item_id == a.c.item_id))
                            .where(a.c.project_id == project.id, a.c.suggestion_arm == "shown",
                                   a.c.suggestion.is_not(None))).all()
    out: dict[int, dict] = {}
    for r in rows:
        suggestion, answers, gold = r.suggestion, r.answers, r.gold
        d = out.setdefault(r.user_id, {"shown": 0, "accepted": 0, "wrong_on_gold": 0, "corrected": 0})
        shown = loads(suggestion)
        label = answer_label(q, loads(answers).get(q.name))
        d["shown"] += 1
        d["accepted"] += label == shown
        want = answer_label(q, loads(gold).get(q.name)) if gold is not None else None
        if want is not None and want != shown:
            d["wrong_on_gold"] += 1
            d["corrected"] += label == want
    return out


def rubber_stamping(counts: dict | None) -> str | None:
    """The reason to flag an annotator, from :func:`per_annotator`'s counts, or None."""
    if not counts or counts["wrong_on_gold"] < MIN_WRONG_SUGGESTIONS:
        return None
    if counts["corrected"] * 2 > counts["wrong_on_gold"]:
        return None
    return (f"corrected {counts['corrected']} of {counts['wrong_on_gold']} wrong suggestions on gold items "
            f"(accepted {counts['accepted']} of {counts['shown']} suggestions): rubber-stamping the assistant")
