"""Answers as a person reads them: option labels, not JSON.

:func:`answer_views` turns one submission's stored answers into what the review page and the owner's
item page show: a single choice as its option's label ("Spam"), several choices as their labels, a
rating with the scale's end labels, a pairwise answer as "B is better" (with its rationale), a ranking
as the candidates' titles in order (an ordered list in the template), free text as the text. The
templates escape every value; nothing here makes markup.
"""

from __future__ import annotations

from labelwright.schema import ProjectSchema

PAIRWISE_TEXT = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}


def _option_text(q, value) -> str:
    for o in q.options:
        if o.value == value:
            return o.text
    return str(value)  # an option since removed from the schema: its stored value


def _rating_text(q, value) -> str:
    ends = {q.min: q.min_label, q.max: q.max_label}
    try:
        end = ends.get(int(value))
    except (TypeError, ValueError):
        end = None
    return f"{value} ({end})" if end else str(value)


def answer_view(schema: ProjectSchema, q, value) -> dict:
    """One question's answer: ``{name, title, type, text}``, ``parts`` for several values (ranking in
    order, multiple choice), ``rationale`` for a pairwise answer; ``text`` None when unanswered."""
    view = {"name": q.name, "title": q.title, "type": q.type, "text": None, "parts": None, "rationale": None}
    if value is None:
        return view
    if q.type == "single_choice":
        view["text"] = _option_text(q, value)
    elif q.type == "multiple_choice":
        view["parts"] = [_option_text(q, v) for v in value]
        view["text"] = ", ".join(view["parts"]) if value else "none of them"
    elif q.type == "rating":
        view["text"] = _rating_text(q, value)
    elif q.type == "pairwise":
        choice = value.get("choice") if isinstance(value, dict) else value
        view["text"] = PAIRWISE_TEXT.get(str(choice), str(choice))
        view["rationale"] = value.get("rationale") if isinstance(value, dict) else None
    elif q.type == "ranking":
        titles = {f.name: f.title for f in schema.fields}
        view["parts"] = [titles.get(c, str(c)) for c in value]
        view["text"] = " > ".join(view["parts"])
    else:
        view["text"] = str(value)
    return view


def answer_views(schema: ProjectSchema, answers: dict | None) -> list[dict]:
    """Every question's answer in schema order (see :func:`answer_view`)."""
    answers = answers or {}
    return [answer_view(schema, q, answers.get(q.name)) for q in schema.questions]
