"""Answers as a person reads them: option labels, not JSON.

:func:`answer_views` turns one submission's stored answers into what the review page and the owner's
item page show: a single choice as its option's label ("Spam"), several choices as their labels, a
rating with the scale's end labels, a pairwise answer as "B is better" (with its rationale), a ranking
as the candidates' titles in order (an ordered list in the template), free text as the text. The
templates escape every value; nothing here makes markup.
"""

from __future__ import annotations

from labelwright.schema import ProjectSchema


def answer_view(schema: ProjectSchema, q, value) -> dict:
    """One question's answer: ``{name, title, type, display, text}``, ``parts`` for several values (ranking
    in order, multiple choice), ``rationale`` for a pairwise answer; ``text`` None when unanswered. The
    question's type words it (:meth:`labelwright.questions.QuestionType.answer_text`); ``display`` says
    how the template shows it (``label``, ``list`` or ``block``)."""
    view = {"name": q.name, "title": q.title, "type": q.type, "display": q.answer_display, "text": None,
            "parts": None, "rationale": None}
    if value is None:
        return view
    view.update(q.answer_text(value, {f.name: f.title for f in schema.fields}))
    return view


def answer_views(schema: ProjectSchema, answers: dict | None) -> list[dict]:
    """Every question's answer in schema order (see :func:`answer_view`)."""
    answers = answers or {}
    return [answer_view(schema, q, answers.get(q.name)) for q in schema.questions]
