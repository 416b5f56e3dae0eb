"""A pairwise comparison of two display fields (candidates A and B), with an optional written rationale.

Answers: ``{"choice": "A"|"B"|"tie"|"both_bad", "rationale": "..."}`` (a bare ``"A"`` is read as
``{"choice": "A"}``). Categorical on the choice: truth inference aggregates the choice, ties in the plain
vote go to A, B, tie, both_bad in that order, and gold is compared on the choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from labelwright.questions.base import Form, FormValue, QuestionType, form_text, kind_of, match_name, quoted
from labelwright.questions.choice import option_key

PAIRWISE_CHOICES = ("A", "B", "tie", "both_bad")
PAIRWISE_LABELS = (("A", "A is better"), ("B", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad"))
PAIRWISE_TEXT = dict(PAIRWISE_LABELS)


class Pairwise(QuestionType):
    type: Literal["pairwise"]
    a: str = Field(description="the display field holding candidate A")
    b: str = Field(description="the display field holding candidate B")
    rationale: Literal["none", "optional", "required"] = "optional"

    categorical: ClassVar[bool] = True
    suggestible: ClassVar[bool] = True
    template: ClassVar[str] = "templates/pairwise.html"

    def field_refs(self) -> list[str]:
        return [self.a, self.b]

    def field_groups(self) -> tuple[str, list[tuple[str, str]]] | None:
        return "pair", [(self.a, "A"), (self.b, "B")]

    def validate_answer(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"choice": value}
        if not isinstance(value, dict):
            raise self.fail(f"expected {{choice, rationale}}, got {kind_of(value)}")
        extra = set(value) - {"choice", "rationale"}
        if extra:
            raise self.fail(f"unexpected keys {sorted(extra)}")
        choice = value.get("choice")
        if choice not in PAIRWISE_CHOICES:
            raise self.fail(f"choice must be one of {list(PAIRWISE_CHOICES)}, got {choice!r}", "choice")
        rationale = value.get("rationale") or ""
        if not isinstance(rationale, str):
            raise self.fail("rationale must be a string", "rationale")
        rationale = rationale.strip()
        if self.rationale == "required" and not rationale:
            raise self.fail("a written rationale is required", "rationale")
        if self.rationale == "none" and rationale:
            raise self.fail("this question takes no rationale", "rationale")
        out = {"choice": choice}
        if rationale:
            out["rationale"] = rationale
        return out

    def label_values(self) -> list:
        return list(PAIRWISE_CHOICES)

    def label_text(self, label: Any) -> str:
        return PAIRWISE_TEXT.get(str(label), str(label))

    def answer_label(self, answer: Any) -> Any:
        return answer["choice"]

    def label_path(self) -> list[str]:
        return [self.name, "choice"]

    def parse_form(self, form: Form) -> FormValue | None:
        choice = form_text(form.get(self.name))
        rationale = form_text(form.get(f"{self.name}.rationale")) if self.rationale != "none" else ""
        out = FormValue(state={"choice": choice, "rationale": rationale})
        if choice or rationale.strip():
            out.answer = {"choice": choice or None}
            if rationale.strip():
                out.answer["rationale"] = rationale
        return out

    def form_state(self, answer: Any) -> Any:
        return {"choice": answer.get("choice", ""), "rationale": answer.get("rationale", "")}

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {"choices": [{"value": v, "label": label, "key": option_key(i)}
                            for i, (v, label) in enumerate(PAIRWISE_LABELS)],
                "state": state or {"choice": "", "rationale": ""}}

    def suggestion_state(self, state: Any, value: str) -> tuple[Any, Any]:
        if state["choice"] in (None, ""):
            return {**state, "choice": value}, value
        return state, state["choice"]

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        choice = answer.get("choice") if isinstance(answer, dict) else answer
        return {"text": self.label_text(choice),
                "parts": None, "rationale": answer.get("rationale") if isinstance(answer, dict) else None}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        lines = [f"compare candidate A (field {quoted(self.a)}) with candidate B (field {quoted(self.b)}); "
                 'choice is "A" (A is better), "B" (B is better), "tie" (equally good) '
                 'or "both_bad" (neither is acceptable)']
        choices = ", ".join(quoted(c) for c in PAIRWISE_CHOICES)
        if self.rationale == "none":
            return lines[0], f'{{"choice": <one of {choices}>}}'
        lines.append("rationale: one or two sentences" + (" (required)" if self.rationale == "required"
                                                          else ' (may be "")'))
        return "\n".join(lines), f'{{"choice": <one of {choices}>, "rationale": <string>}}'

    def llm_json_schema(self) -> dict:
        s: dict = {"type": "object", "properties": {"choice": {"type": "string", "enum": list(PAIRWISE_CHOICES)}},
                   "required": ["choice"], "additionalProperties": False}
        if self.rationale != "none":
            s["properties"]["rationale"] = {"type": "string"}
            s["required"].append("rationale")
        return s

    def from_llm(self, value: Any) -> Any:
        names = {c.casefold(): c for c in PAIRWISE_CHOICES}
        names.update({"both bad": "both_bad", "both-bad": "both_bad"})
        if isinstance(value, dict) and "choice" in value:
            return {**value, "choice": match_name(value["choice"], names)}
        return match_name(value, names)

