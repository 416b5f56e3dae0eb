"""Majority vote per question, used by the export.

Pure functions with no database or server imports. Each question type votes its own way
(:meth:`labelwright.questions.QuestionType.vote`); the built-ins:

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

from labelwright.questions.base import QuestionType
from labelwright.schema import ProjectSchema


def vote(question: QuestionType, answers: list) -> dict | None:
    """Majority label for one question given every annotator's answer to it (missing ones dropped)."""
    answers = [a for a in answers if a is not None]
    if not answers:
        return None
    return question.vote(answers)


def majority(schema: ProjectSchema, answers: list[dict]) -> dict:
    """``{question: {label, agreement, n}}`` given each annotator's ``answers`` dict."""
    out = {}
    for q in schema.questions:
        v = vote(q, [a.get(q.name) for a in answers])
        if v is not None:
            out[q.name] = v
    return out
