"""Aggregated labels for a whole project: for every item and question, a label, its confidence and the
method that produced it. The export carries them; the quality summary is built on them.

* single choice, rating, pairwise (on the choice): :func:`labelwright.quality.aggregate_proba`, the
  default truth inference (fitted on every answer to the question, anchored and calibrated on gold);
  ``confidence`` is the probability that the label is right.
* multiple choice: each option is a yes/no question aggregated the same way; the label is the options
  more likely chosen than not, and ``confidence`` the product of the per-option probabilities (the
  chance that the whole set is right, were the options independent).
* ranking: candidates ordered by mean position (Borda count); ``confidence`` is the share of annotators
  whose first choice is the label's first (an agreement, not a probability: the method says so).
* free text: no label.

Gold items get their gold answer, confidence 1, method ``gold``, for the questions gold covers.
Truth inference needs every answer at once, so this reads the question's answers for the whole project
(a few tens of MB per million answers) before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import text

from labelwright.consensus import vote
from labelwright.quality import aggregate_proba
from labelwright.schema import FreeText, MultipleChoice, Ranking, answer_label, is_categorical
from labelwright.services.gold import gold_answers
from labelwright.services.projects import Project
from labelwright.store import loads

GOLD_METHOD = "gold"


@dataclass
class QuestionLabels:
    """One question's aggregate: ``labels[item_id] = (label, confidence)``."""

    method: str
    labels: dict = field(default_factory=dict)
    # categorical questions: the long table (task, worker, label) and the posterior per task and label
    answers: pd.DataFrame | None = None
    probas: pd.DataFrame | None = None

    def get(self, item_id: int) -> dict | None:
        found = self.labels.get(item_id)
        if found is None:
            return None
        label, confidence = found
        return {"label": label, "confidence": confidence,
                "method": GOLD_METHOD if confidence is None else self.method}


def read_answers(store, project: Project) -> list[tuple[int, int, dict]]:
    """``(item_id, user_id, answers)`` for every annotation in the project, in item order."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT item_id, user_id, answers FROM annotations WHERE project_id = :p ORDER BY item_id, id"),
            {"p": project.id}).all()
    return [(i, u, loads(a)) for i, u, a in rows]


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _categorical(rows, q, gold: dict) -> QuestionLabels:
    long = pd.DataFrame([(i, u, answer_label(q, a.get(q.name))) for i, u, a in rows],
                        columns=["task", "worker", "label"]).dropna(subset=["label"])
    g = pd.Series({i: answer_label(q, ans[q.name]) for i, ans in gold.items() if q.name in ans}, dtype=object)
    out = QuestionLabels(method="", answers=long)
    if long.empty:
        return out
    probas = aggregate_proba(long, g if len(g) else None)
    out.method, out.probas = probas.attrs["method"], probas
    values = probas.to_numpy()
    top = values.argmax(axis=1)
    labels = [_plain(v) for v in probas.columns.to_numpy()[top]]
    conf = np.round(values[np.arange(len(top)), top], 4).tolist()
    out.labels = dict(zip(probas.index.tolist(), zip(labels, conf)))
    return out


def _multiple_choice(rows, q: MultipleChoice, gold: dict) -> QuestionLabels:
    answered = [(i, u, a[q.name]) for i, u, a in rows if a.get(q.name) is not None]
    out = QuestionLabels(method="")
    if not answered:
        return out
    chosen: dict[int, list] = {}
    confidence: dict[int, float] = {}
    for opt in q.values:
        long = pd.DataFrame([(i, u, opt in a) for i, u, a in answered], columns=["task", "worker", "label"])
        g = pd.Series({i: q.name in ans and opt in ans[q.name] for i, ans in gold.items() if q.name in ans},
                      dtype=object)
        probas = aggregate_proba(long, g if len(g) else None)
        out.method = "per option: " + probas.attrs["method"]
        p_yes = probas[True].to_numpy() if True in probas.columns else np.zeros(len(probas))
        for task, p in zip(probas.index.tolist(), p_yes.tolist()):
            if p > 0.5:
                chosen.setdefault(task, []).append(opt)
            confidence[task] = confidence.get(task, 1.0) * max(p, 1 - p)
    out.labels = {t: (chosen.get(t, []), round(c, 4)) for t, c in confidence.items()}
    return out


def _ranking(rows, q: Ranking) -> QuestionLabels:
    by_item: dict[int, list] = {}
    for i, _, a in rows:
        if a.get(q.name) is not None:
            by_item.setdefault(i, []).append(a[q.name])
    out = QuestionLabels(method="Borda count (confidence: share agreeing on the first place)")
    for i, rankings in by_item.items():
        v = vote(q, rankings)
        out.labels[i] = (v["label"], v["agreement"])
    return out


def project_labels(store, project: Project, rows: list | None = None) -> dict[str, QuestionLabels]:
    """``{question name: QuestionLabels}`` for every question with a label (all but free text)."""
    rows = read_answers(store, project) if rows is None else rows
    gold = gold_answers(store, project)
    out: dict[str, QuestionLabels] = {}
    for q in project.schema.questions:
        if isinstance(q, FreeText):
            continue
        if is_categorical(q):
            ql = _categorical(rows, q, gold)
        elif isinstance(q, MultipleChoice):
            ql = _multiple_choice(rows, q, gold)
        elif isinstance(q, Ranking):
            ql = _ranking(rows, q)
        else:  # pragma: no cover - every question type is handled above
            continue
        for item_id, ans in gold.items():
            if q.name in ans:
                label = answer_label(q, ans[q.name]) if is_categorical(q) else ans[q.name]
                ql.labels[item_id] = (label, None)  # confidence None marks "from gold"
        out[q.name] = ql
    return out


def item_labels(labels: dict[str, QuestionLabels], item_id: int) -> dict:
    """``{question: {label, confidence, method}}`` for one item (questions without a label left out)."""
    out = {}
    for name, ql in labels.items():
        got = ql.get(item_id)
        if got is not None:
            if got["confidence"] is None:
                got["confidence"] = 1.0
            out[name] = got
    return out
