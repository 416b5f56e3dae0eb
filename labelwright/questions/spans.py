"""Spans (named entities): labelled character ranges over one of the item's text fields.

Settings: ``field`` (the text field the spans are over), ``labels`` (values, each with optional words and
a one-character ``key``; the first nine without one get 1-9), ``allow_overlap`` (may spans overlap; off by
default) and ``threshold`` (the overlap at which two spans match, 0.5).

An answer is a list of ``{"start", "end", "label"}``: character offsets into the field's text (code points,
as Python counts them; ``start`` included, ``end`` excluded), kept sorted. ``[]`` is an answer: the text has
no entity. A span may also carry the ``text`` it covers, which is checked and then dropped. Wherever the
item is known (a submission, an amend, a reviewer's fix, gold; :meth:`Spans.check_item`) every span must
end within the field's text and its ``text``, when given, must be the text at its offsets; the CoNLL
reader checks the same (:meth:`Spans.check_text`).

Aggregated by span voting with per-annotator skill (:class:`labelwright.quality.spans.SpanVote`); the
plain vote's agreement is the mean pairwise span F1, and an answer's gold score is its span F1 against the
gold spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labelwright.quality.spans import SpanVote, as_spans, match_spans, pairwise_f1, span_f1, vote_item
from labelwright.questions.base import (
    Aggregate,
    Form,
    FormValue,
    ItemView,
    QuestionType,
    check_unique,
    json_list,
    kind_of,
)


class SpanLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(min_length=1, max_length=100)
    label: str | None = None
    key: str | None = Field(default=None, min_length=1, max_length=1, description="the key that applies it")
    hint: str | None = None

    @field_validator("key")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and (not v.isprintable() or v.isspace()):
            raise ValueError(f"a label's key must be one printable character, got {v!r}")
        return v

    @property
    def text(self) -> str:
        return self.label or self.value


class Spans(QuestionType):
    type: Literal["spans"]
    field: str = Field(description="the text field the spans are over")
    labels: list[SpanLabel] = Field(min_length=1, max_length=50)
    allow_overlap: bool = False
    threshold: float = Field(default=0.5, gt=0, le=1, description="the overlap at which two spans match")
    max_spans: int = Field(default=1000, ge=1)

    template: ClassVar[str] = "templates/spans.html"
    answer_display: ClassVar[Literal["label", "list", "block"]] = "list"

    @field_validator("labels", mode="before")
    @classmethod
    def _norm_labels(cls, v):
        if isinstance(v, list):
            return [{"value": str(x)} if not isinstance(x, dict) else x for x in v]
        return v

    @model_validator(mode="after")
    def _unique(self):
        check_unique(self.values, self.name)
        check_unique([k.lower() for k in self.keys().values()], f"{self.name} (label keys)")
        return self

    @property
    def values(self) -> list[str]:
        return [lab.value for lab in self.labels]

    def keys(self) -> dict[str, str]:
        """Each label's key: its own, else 1-9 in order for the first nine labels without one."""
        out, free = {}, iter(d for d in "123456789" if d not in {lab.key for lab in self.labels})
        for lab in self.labels:
            key = lab.key or next(free, None)
            if key is not None:
                out[lab.value] = key
        return out

    def field_refs(self) -> list[str]:
        return [self.field]

    # ---- answers ----------------------------------------------------------------------------

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise self.fail(f"expected a list of spans {{start, end, label}}, got {kind_of(value)}")
        if len(value) > self.max_spans:
            raise self.fail(f"at most {self.max_spans} spans, got {len(value)}")
        spans = []
        for i, s in enumerate(value):
            if not isinstance(s, dict):
                raise self.fail(f"expected a span {{start, end, label}}, got {kind_of(s)}", f"{i}")
            extra = set(s) - {"start", "end", "label", "text"}
            if extra:
                raise self.fail(f"unknown keys {sorted(extra)}; a span has start, end and label", f"{i}")
            for k in ("start", "end"):
                v = s.get(k)
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise self.fail(f"{k} must be a character offset (an integer >= 0), got {v!r}", f"{i}.{k}")
            if s["end"] <= s["start"]:
                raise self.fail(f"end ({s['end']}) must be after start ({s['start']})", f"{i}.end")
            if s.get("label") not in self.values:
                raise self.fail(f"{s.get('label')!r} is not a label; labels are {self.values}", f"{i}.label")
            spans.append({"start": s["start"], "end": s["end"], "label": s["label"]})
        spans.sort(key=lambda s: (s["start"], s["end"], self.values.index(s["label"])))
        for a, b in zip(spans, spans[1:]):
            if a == b:
                raise self.fail(f"the span {a['start']}-{a['end']} {a['label']} is given twice")
        if not self.allow_overlap:
            for a, b in zip(spans, spans[1:]):
                if b["start"] < a["end"]:
                    raise self.fail(f"spans {a['start']}-{a['end']} ({a['label']}) and {b['start']}-{b['end']} "
                                    f"({b['label']}) overlap; this question does not allow overlapping spans")
        return spans

    def empty_answer(self, value: Any) -> Any:
        if value == []:  # "no entity in this text" is an answer
            return []
        return super().empty_answer(value)

    def from_text(self, value: Any) -> Any:
        return json_list(value)

    def check_text(self, answer: list, text: Any, where: str = "") -> None:
        """Raise when a span of ``answer`` falls outside ``text`` (the item's field); ``where`` names the
        item in the message."""
        n = len(text) if isinstance(text, str) else 0
        for i, s in enumerate(answer):
            if s["end"] > n:
                raise self.fail(f"{where}span {s['start']}-{s['end']} ({s['label']}) ends after the text of "
                                f"field {self.field!r}, which has {n} characters", f"{i}.end")

    def check_item(self, answer: Any, data: Mapping[str, Any]) -> None:
        found = data.get(self.field)
        self.check_text(answer, found)
        text = found if isinstance(found, str) else ""
        for i, s in enumerate(answer):
            given = s.get("text")
            if given is not None and given != text[s["start"]:s["end"]]:
                raise self.fail(f"span {s['start']}-{s['end']} ({s['label']}) says its text is {given!r}, but "
                                f"field {self.field!r} has {text[s['start']:s['end']]!r} there", f"{i}.text")

    # ---- vote, aggregation, gold ------------------------------------------------------------

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        spans, _, _ = vote_item(list(enumerate(answers)), None, self.threshold, self.allow_overlap)
        return {"label": [{"start": s, "end": e, "label": lab} for s, e, lab in spans],
                "agreement": round(pairwise_f1(answers, self.threshold), 4), "n": len(answers)}

    def compact(self, answer: Any) -> Any:
        return [(s["start"], s["end"], s["label"]) for s in answer]

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        fit = SpanVote(threshold=self.threshold, allow_overlap=self.allow_overlap).fit(
            tasks.tolist(), workers.tolist(), values, gold)
        items = sorted(fit.spans_)
        labels = [[{"start": s, "end": e, "label": lab} for s, e, lab in fit.spans_[i]] for i in items]
        return Aggregate(method="span vote weighted by span F1 (confidence: cluster agreement)",
                         tasks=np.array(items, dtype=np.int64), values=labels,
                         confidence=np.array([fit.confidence_[i] for i in items], dtype=float))

    def gold_score(self, answer: Any, truth: Any) -> float | None:
        if answer is None or truth is None:
            return None
        return round(span_f1(answer, truth, self.threshold), 4)

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        if answer is None or label is None:
            return None
        return len(answer) == len(label) == len(match_spans(answer, label, self.threshold))

    # ---- the form ---------------------------------------------------------------------------

    def parse_form(self, form: Form) -> FormValue | None:
        raw = form.get(self.name)
        if raw is None:
            return None
        text = str(raw).strip() or "[]"
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return FormValue(state="[]", error="the spans could not be read; select them again")
        return FormValue(state=text, answer=value)

    def form_state(self, answer: Any) -> Any:
        return orjson.dumps(answer).decode()

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        text = data.get(self.field)
        keys = self.keys()
        return {"text": text if isinstance(text, str) else "", "state": state or "[]",
                "labels": [{"value": lab.value, "text": lab.text, "hint": lab.hint, "key": keys.get(lab.value),
                            "color": i % 8} for i, lab in enumerate(self.labels)]}

    # ---- showing and exporting --------------------------------------------------------------

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        words = {lab.value: lab.text for lab in self.labels}
        parts = [f"{words.get(s['label'], s['label'])} {s['start']}–{s['end']}" for s in answer]
        return {"text": "; ".join(parts) if parts else "no spans", "parts": parts, "rationale": None}

    def answer_html(self, answer: Any, item: ItemView) -> Markup:
        """The field's text with each span highlighted in its label's colour and the label after it (a
        list of spans where the text is unknown or too short for them)."""
        text = item.data.get(self.field)
        if not answer or not isinstance(text, str) or any(s["end"] > len(text) for s in answer):
            return super().answer_html(answer, item)
        colour = {lab.value: i % 8 for i, lab in enumerate(self.labels)}
        words = {lab.value: lab.text for lab in self.labels}
        cuts = sorted({0, len(text), *(s["start"] for s in answer), *(s["end"] for s in answer)})
        out = Markup("")
        for a, b in zip(cuts, cuts[1:]):
            over = [s for s in answer if s["start"] <= a and b <= s["end"]]
            piece = escape(text[a:b])
            if over:
                names = " + ".join(words.get(s["label"], s["label"]) for s in over)
                piece = Markup('<mark class="seg is-span span-c{}{}" title="{}">{}</mark>').format(
                    colour.get(over[0]["label"], 7), " is-overlap" if len(over) > 1 else "", names, piece)
            out += piece
            for s in answer:
                if s["end"] == b:
                    out += Markup('<span class="span-tag span-c{}">{}</span>').format(
                        colour.get(s["label"], 7), words.get(s["label"], s["label"]))
        return Markup('<div class="spans answer-spans"><p class="spans-text">{}</p></div>').format(out)

    def label_html(self, label: Any, item: ItemView) -> Markup:
        return self.answer_html(label, item)

    def export_cell(self, answer: Any) -> Any:
        return None if answer is None else orjson.dumps(answer).decode()


__all__ = ["SpanLabel", "Spans", "as_spans"]
