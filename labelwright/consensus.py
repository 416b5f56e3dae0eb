"""Majority vote per question, used by the export.

Pure functions with no database or server imports. For each question type:

* single choice, rating, pairwise (on ``choice``): the most frequent answer. A tie between the most
  frequent answers is broken by the order the options are declared in the schema (for ratings, the
  lower value; for pairwise, A, B, tie, both_bad), and reported with ``"tie": true``.
* multiple choice: each option is in the label when more than half the annotators chose it;
  ``agreement`` is the mean, over options, of the fraction that agrees with that decision.
* ranking: candidates ordered by mean position (Borda count); ``agreement`` is the fraction of
  annotators whose first choice is the aggregate's first choice.
* free text: no vote (texts are rarely equal); the export lists every answer.

``agreement`` is the fraction of annotators who gave the label; ``n`` is the number of answers.
"""

from __future__ import annotations

from labelwright.schema import (
    PAIRWISE_CHOICES,
    FreeText,
    MultipleChoice,
    Pairwise,
    ProjectSchema,
    Ranking,
    Rating,
    SingleChoice,
)


def _plurality(values: list, order: list) -> dict:
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values())
    winners = [v for v in order if counts.get(v) == best]
    if not winners:  # values outside the declared order (should not happen after validation)
        winners = sorted((v for v, c in counts.items() if c == best), key=str)
    out = {"label": winners[0], "agreement": round(best / len(values), 4), "n": len(values)}
    if len(winners) > 1:
        out["tie"] = True
    return out


def vote(question, answers: list) -> dict | None:
    """Majority label for one question given every annotator's answer to it (missing ones dropped)."""
    answers = [a for a in answers if a is not None]
    if not answers or isinstance(question, FreeText):
        return None
    if isinstance(question, MultipleChoice):
        n = len(answers)
        chosen = []
        agree = 0.0
        for opt in question.values:
            k = sum(1 for a in answers if opt in a)
            if k * 2 > n:
                chosen.append(opt)
            agree += max(k, n - k) / n
        return {"label": chosen, "agreement": round(agree / len(question.values), 4), "n": n}
    if isinstance(question, SingleChoice):
        return _plurality(answers, question.values)
    if isinstance(question, Rating):
        return _plurality(answers, list(range(question.min, question.max + 1)))
    if isinstance(question, Pairwise):
        return _plurality([a["choice"] for a in answers], list(PAIRWISE_CHOICES))
    if isinstance(question, Ranking):
        n = len(answers)
        score = {c: 0.0 for c in question.candidates}
        for ranking in answers:
            for pos, c in enumerate(ranking):
                score[c] += pos
        order = sorted(question.candidates, key=lambda c: (score[c], question.candidates.index(c)))
        agree = sum(1 for r in answers if r[0] == order[0]) / n
        return {"label": order, "agreement": round(agree, 4), "n": n}
    return None


def majority(schema: ProjectSchema, answers: list[dict]) -> dict:
    """``{question: {label, agreement, n}}`` given each annotator's ``answers`` dict."""
    out = {}
    for q in schema.questions:
        v = vote(q, [a.get(q.name) for a in answers])
        if v is not None:
            out[q.name] = v
    return out
