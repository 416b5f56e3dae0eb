"""Answers as a person reads them: option labels, highlighted spans, boxes over the image, never JSON.

:func:`answer_views` turns one submission's stored answers into what the review page and the owner's
item page show, each through its question type: :meth:`~labelwright.questions.QuestionType.answer_text`
words it (a single choice as its option's label, a ranking as the candidates in order...) and
:meth:`~labelwright.questions.QuestionType.answer_html` shows it (spans highlighted in their text, boxes
drawn over the image, a code task's code with Run). :func:`answer_table` is the owner's item page's
table: every annotator's answers, each checked against gold by the type's own
:meth:`~labelwright.questions.QuestionType.gold_score`. The types build their HTML with escaping; item
data is untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from labelwright.questions.base import ItemView, QuestionType
from labelwright.schema import ProjectSchema
from labelwright.web.views import image_src


def item_view(schema: ProjectSchema, data: Mapping[str, Any], media_enabled: bool, media_url: str | None = None,
              item_id: int | None = None) -> ItemView:
    """What the question types may use of an item to show its answers (``media_url``: the item's media
    URLs, :func:`labelwright.web.views.item_media_url`)."""
    images = {f.name: image_src(data.get(f.name), media_enabled,
                                f"{media_url}/{quote(f.name, safe='')}" if media_url else None)
              for f in schema.fields if f.type == "image"}
    return ItemView(data=data, titles={f.name: f.title for f in schema.fields}, images=images, item_id=item_id)


def answer_view(schema: ProjectSchema, q: QuestionType, value, item: ItemView | None = None) -> dict:
    """One question's answer: ``{name, title, type, display, text, html}``, ``parts`` for several values,
    ``rationale``; ``text`` and ``html`` None when unanswered. ``html`` is the type's
    :meth:`~labelwright.questions.QuestionType.answer_html` (safe to put in a page as it is)."""
    view = {"name": q.name, "title": q.title, "type": q.type, "display": q.answer_display, "text": None,
            "parts": None, "rationale": None, "html": None}
    if value is None:
        return view
    item = item or ItemView(titles={f.name: f.title for f in schema.fields})
    view.update(q.answer_text(value, item.titles))
    view["html"] = q.answer_html(value, item)
    return view


def answer_views(schema: ProjectSchema, answers: dict | None, item: ItemView | None = None) -> list[dict]:
    """Every question's answer in schema order (see :func:`answer_view`)."""
    answers = answers or {}
    return [answer_view(schema, q, answers.get(q.name), item) for q in schema.questions]


def gold_mark(q: QuestionType, answer, truth) -> Markup:
    """✓ / ✗ (or the partial score, for spans and boxes) of one answer against the gold answer, by the
    type's :meth:`~labelwright.questions.QuestionType.gold_score`; nothing when it is not checked."""
    score = q.gold_score(answer, truth)
    if score is None:
        return Markup("")
    if score >= 1:
        return Markup('<span class="ok" title="matches gold">✓</span>')
    if score <= 0:
        return Markup('<span class="bad" title="differs from gold">✗</span>')
    return Markup('<span class="bad" title="partly matches gold (score {0:.2f})">✗ {0:.2f}</span>').format(score)


def answer_table(schema: ProjectSchema, item: dict, view: ItemView) -> list[dict]:
    """The owner's item page's rows: ``{annotator, active_ms, cells}``, a cell per question with its
    ``html`` and its ``gold`` mark (when the item is gold and has that question's answer)."""
    gold = item.get("gold") or {}
    rows = []
    for a in item["annotations"]:
        cells = []
        for q in schema.questions:
            value = a["answers"].get(q.name)
            html = Markup("") if value is None else q.answer_html(value, view)
            mark = gold_mark(q, value, gold[q.name]) if q.name in gold and value is not None else Markup("")
            cells.append({"html": html, "gold": mark})
        rows.append({"annotator": a["annotator"], "active_ms": a["active_ms"], "cells": cells})
    return rows


def label_html(q: QuestionType, label, view: ItemView) -> Markup:
    """An aggregated label (the consensus and majority rows) through its type
    (:meth:`~labelwright.questions.QuestionType.label_html`)."""
    return escape("") if label is None else q.label_html(label, view)
