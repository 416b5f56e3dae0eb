"""Choices: one option (``single_choice``) or several (``multiple_choice``).

Answers: a single choice is the option's value (``"spam"``); several choices are a list of distinct option
values (``["funny", "rude"]``), kept in the options' declared order.

A single choice is categorical: truth inference aggregates it, ties in the plain vote go to the option
declared first. Several choices are aggregated option by option: each option is a yes/no question
aggregated the same way, the label is the options more likely chosen than not, and the confidence the
product of the per-option probabilities (the chance that the whole set is right, were the options
independent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labelwright.quality import aggregate_proba
from labelwright.questions.base import (
    Aggregate,
    Form,
    FormValue,
    QuestionType,
    check_unique,
    form_text,
    json_list,
    kind_of,
    match_name,
    quoted,
)


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(min_length=1, max_length=200)
    label: str | None = None
    hint: str | None = None

    @property
    def text(self) -> str:
        return self.label or self.value


def option_key(index: int) -> str | None:
    """The number key that picks the option at ``index`` (only the first nine have one)."""
    return str(index + 1) if index < 9 else None


def _options(value):
    if isinstance(value, list):
        return [{"value": str(v)} if not isinstance(v, dict) else v for v in value]
    return value


class SingleChoice(QuestionType):
    type: Literal["single_choice"]
    options: list[Option] = Field(min_length=2, max_length=50)

    categorical: ClassVar[bool] = True
    suggestible: ClassVar[bool] = True
    template: ClassVar[str] = "templates/single_choice.html"

    @field_validator("options", mode="before")
    @classmethod
    def _norm_options(cls, v):
        return _options(v)

    @model_validator(mode="after")
    def _unique(self):
        check_unique([o.value for o in self.options], self.name)
        return self

    @property
    def values(self) -> list[str]:
        return [o.value for o in self.options]

    def option_text(self, value: Any) -> str:
        for o in self.options:
            if o.value == value:
                return o.text
        return str(value)  # an option since removed from the schema: its stored value

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.fail(f"expected one option value, got {kind_of(value)}")
        if value not in self.values:
            raise self.fail(f"{value!r} is not an option; options are {self.values}")
        return value

    def label_values(self) -> list:
        return list(self.values)

    def label_text(self, label: Any) -> str:
        return self.option_text(label)

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {"choices": [{"value": o.value, "label": o.text, "hint": o.hint, "key": option_key(i)}
                            for i, o in enumerate(self.options)]}

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        return {"text": self.option_text(answer), "parts": None, "rationale": None}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def _llm_options(self, kind: str) -> list[str]:
        lines = [f"{kind}; answer with the option's value in quotes:"]
        for o in self.options:
            extra = f" ({o.label})" if o.label and o.label != o.value else ""
            hint = f" - {o.hint}" if o.hint else ""
            lines.append(f"  - {quoted(o.value)}{extra}{hint}")
        return lines

    def llm_instructions(self) -> tuple[str, str]:
        values = ", ".join(quoted(v) for v in self.values)
        return "\n".join(self._llm_options("choose exactly one option")), f"<one of {values}>"

    def llm_json_schema(self) -> dict:
        return {"type": "string", "enum": list(self.values)}

    def llm_names(self) -> dict[str, str]:
        """Lower-cased option labels and values -> the option's value (a model may answer either)."""
        names: dict[str, str] = {}
        for o in self.options:
            if o.label:
                names.setdefault(o.label.strip().casefold(), o.value)
        for o in self.options:
            names[o.value.casefold()] = o.value
        return names

    def from_llm(self, value: Any) -> Any:
        return match_name(value, self.llm_names())


class MultipleChoice(SingleChoice):
    type: Literal["multiple_choice"]  # type: ignore[assignment]
    min_selected: int = Field(default=0, ge=0)
    max_selected: int | None = Field(default=None, ge=1)

    categorical: ClassVar[bool] = False
    suggestible: ClassVar[bool] = False
    template: ClassVar[str] = "templates/multiple_choice.html"

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"expected a list of option values, got {kind_of(value)}")
        if len(set(value)) != len(value):
            raise self.fail("an option is chosen twice")
        bad = [v for v in value if v not in self.values]
        if bad:
            raise self.fail(f"{bad[0]!r} is not an option; options are {self.values}")
        if len(value) < self.min_selected:
            raise self.fail(f"choose at least {self.min_selected}")
        if self.max_selected is not None and len(value) > self.max_selected:
            raise self.fail(f"choose at most {self.max_selected}")
        return [v for v in self.values if v in value]  # canonical order

    def empty_answer(self, value: Any) -> Any:
        if value == []:  # "none of them" is an answer unless a minimum is set on a required question
            if self.required and self.min_selected > 0:
                raise self.fail("an answer is required")
            return []
        return super().empty_answer(value)

    def from_text(self, value: Any) -> Any:
        return json_list(value)

    def label_values(self) -> list:
        raise TypeError("multiple_choice questions have no fixed set of labels")

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        n = len(answers)
        chosen = []
        agree = 0.0
        for opt in self.values:
            k = sum(1 for a in answers if opt in a)
            if k * 2 > n:
                chosen.append(opt)
            agree += max(k, n - k) / n
        return {"label": chosen, "agreement": round(agree / len(self.values), 4), "n": n}

    def compact(self, answer: Any) -> int:
        """The options chosen as a bit mask (bit ``i``: the ``i``-th option)."""
        bits = {v: 1 << i for i, v in enumerate(self.values)}
        return sum(bits.get(v, 0) for v in answer)

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        masks = np.asarray(values, dtype=np.int64)
        items = np.unique(tasks)
        chosen = np.zeros(len(items), dtype=np.int64)
        confidence = np.ones(len(items))
        method = ""
        for i, opt in enumerate(self.values):
            bit = 1 << i
            yes = pd.DataFrame({"task": tasks, "worker": workers, "label": (masks & bit) != 0})
            g = {item: opt in answer for item, answer in gold.items()}
            probas = aggregate_proba(yes, pd.Series(g, dtype=object) if g else None)
            method = "per option: " + probas.attrs["method"]
            p_yes = probas[True] if True in probas.columns else pd.Series(0.0, index=probas.index)
            p = p_yes.reindex(items).to_numpy()
            chosen |= np.where(p > 0.5, bit, 0)
            confidence *= np.maximum(p, 1 - p)
        labels = [[o for i, o in enumerate(self.values) if m & (1 << i)] for m in chosen.tolist()]
        return Aggregate(method=method, tasks=items, values=labels, confidence=np.round(confidence, 4))

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        if answer is None or label is None:
            return None
        return set(answer) == set(label)

    def parse_form(self, form: Form) -> FormValue | None:
        values = [form_text(v) for v in form.getlist(self.name)]
        return FormValue(state=values, answer=values)  # [] is "none of them", which empty_answer judges

    def form_state(self, answer: Any) -> Any:
        return list(answer)

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {**super().view_context(state, data, titles), "state": [] if state is None else state}

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        parts = [self.option_text(v) for v in answer]
        return {"text": ", ".join(parts) if answer else "none of them", "parts": parts, "rationale": None}

    def llm_instructions(self) -> tuple[str, str]:
        kind = "choose any of the options ([] for none)" if not self.min_selected else "choose options"
        lines = self._llm_options(kind)
        bounds = f"at least {self.min_selected}" if self.min_selected else ""
        if self.max_selected is not None:
            bounds += (", " if bounds else "") + f"at most {self.max_selected}"
        if bounds:
            lines.append(f"  choose {bounds}")
        values = ", ".join(quoted(v) for v in self.values)
        return "\n".join(lines), f"[<distinct values from {values}>]"

    def llm_json_schema(self) -> dict:
        s: dict = {"type": "array", "items": {"type": "string", "enum": list(self.values)}, "uniqueItems": True}
        if self.min_selected:
            s["minItems"] = self.min_selected
        if self.max_selected is not None:
            s["maxItems"] = self.max_selected
        return s

    def from_llm(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        names = self.llm_names()
        return [match_name(v, names) for v in value]


__all__ = ["MultipleChoice", "Option", "SingleChoice", "option_key"]
