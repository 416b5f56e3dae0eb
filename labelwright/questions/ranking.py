"""A ranking of two to nine display fields (the candidates), best first.

Answers: every candidate's name exactly once, best first (``["r2", "r1", "r3"]``). Aggregated by Borda
count: candidates ordered by mean position (ties by declared order); the confidence is the share of
annotators whose first choice is the label's first (an agreement, not a probability: the method says so).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from labelwright.questions.base import (
    Aggregate,
    Form,
    FormValue,
    QuestionType,
    check_unique,
    form_text,
    json_list,
    kind_of,
    quoted,
)
from labelwright.questions.choice import option_key


class Ranking(QuestionType):
    type: Literal["ranking"]
    candidates: list[str] = Field(min_length=2, max_length=9, description="display fields holding the candidates")

    answer_display: ClassVar[Literal["label", "list", "block"]] = "list"
    template: ClassVar[str] = "templates/ranking.html"

    def field_refs(self) -> list[str]:
        return list(self.candidates)

    def check_fields(self, fields: Collection[str]) -> None:
        check_unique(self.candidates, f"question {self.name!r} candidates")
        super().check_fields(fields)

    def field_groups(self) -> tuple[str, list[tuple[str, str]]] | None:
        return "candidates", [(c, str(i + 1)) for i, c in enumerate(self.candidates)]

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"expected a list of candidate names, best first, got {kind_of(value)}")
        if sorted(value) != sorted(self.candidates) or len(set(value)) != len(value):
            raise self.fail(f"rank every candidate exactly once: {self.candidates}")
        return list(value)

    def from_text(self, value: Any) -> Any:
        return json_list(value)

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        n = len(answers)
        score = {c: 0.0 for c in self.candidates}
        for ranking in answers:
            for pos, c in enumerate(ranking):
                score[c] += pos
        order = sorted(self.candidates, key=lambda c: (score[c], self.candidates.index(c)))
        agree = sum(1 for r in answers if r[0] == order[0]) / n
        return {"label": order, "agreement": round(agree, 4), "n": n}

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        out = super().aggregate(tasks, workers, values, gold)
        out.method = "Borda count (confidence: share agreeing on the first place)"
        return out

    def parse_form(self, form: Form) -> FormValue | None:
        ranks = {c: form_text(form.get(f"{self.name}.rank.{c}")).strip() for c in self.candidates}
        out = FormValue(state=ranks)
        given = {c: int(r) for c, r in ranks.items() if r.isascii() and r.isdigit() and len(r) < 10}
        if not given:
            return out
        if len(set(given.values())) != len(given):
            out.error = "each place can be given to one candidate only"
        out.answer = sorted(given, key=given.__getitem__)  # the schema refuses a partial ranking, naming it
        return out

    def form_state(self, answer: Any) -> Any:
        return {c: str(i + 1) for i, c in enumerate(answer)}

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {"candidates": [{"name": c, "title": titles.get(c, c), "key": option_key(i)}
                               for i, c in enumerate(self.candidates)],
                "places": [str(i + 1) for i in range(len(self.candidates))],
                "state": state or {}}

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        parts = [titles.get(c, str(c)) for c in answer]
        return {"text": " > ".join(parts), "parts": parts, "rationale": None}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        names = ", ".join(quoted(c) for c in self.candidates)
        return (f"rank the candidate fields {names}: list every name exactly once, best first",
                f"[<each of {names} once, best first>]")

    def llm_json_schema(self) -> dict:
        n = len(self.candidates)
        return {"type": "array", "items": {"type": "string", "enum": list(self.candidates)},
                "minItems": n, "maxItems": n, "uniqueItems": True}

