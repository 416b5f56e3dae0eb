"""A rating: an integer on a scale from ``min`` to ``max`` (at most 21 points), its ends optionally named.

Answers are the integer (``4``; ``"4"`` and ``4.0`` are read as 4). A rating is categorical and ordinal:
truth inference aggregates it, agreement is Krippendorff's alpha at the ordinal level, and a tie in the
plain vote goes to the lower value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from labelwright.questions.base import QuestionType, kind_of
from labelwright.questions.choice import option_key


class Rating(QuestionType):
    type: Literal["rating"]
    min: int = 1
    max: int = 5
    min_label: str | None = None
    max_label: str | None = None

    categorical: ClassVar[bool] = True
    suggestible: ClassVar[bool] = True
    agreement_level: ClassVar[Literal["nominal", "ordinal"]] = "ordinal"
    template: ClassVar[str] = "templates/rating.html"

    @model_validator(mode="after")
    def _range(self):
        if self.max <= self.min:
            raise ValueError(f"question {self.name!r}: max ({self.max}) must be greater than min ({self.min})")
        if self.max - self.min > 20:
            raise ValueError(f"question {self.name!r}: a rating scale has at most 21 points")
        return self

    def validate_answer(self, value: Any) -> Any:
        expected = f"expected an integer from {self.min} to {self.max}"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.fail(f"{expected}, got {kind_of(value)}")
        try:
            number = int(value) if not isinstance(value, float) else value
        except ValueError:
            raise self.fail(f"{expected}, got {value!r}") from None
        if isinstance(number, float):
            if not number.is_integer():
                raise self.fail(f"{expected}, got {value!r}")
            number = int(number)
        if not self.min <= number <= self.max:
            raise self.fail(f"{number} is outside the scale {self.min}..{self.max}")
        return number

    def label_values(self) -> list:
        return list(range(self.min, self.max + 1))

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        # Scales from 0 or 1: the key is the value itself (0..9); other scales number their points.
        direct = 0 <= self.min <= 1
        return {"choices": [{"value": str(p), "label": str(p),
                             "key": (str(p) if p <= 9 else None) if direct else option_key(i)}
                            for i, p in enumerate(self.label_values())],
                "suggestion_names_value": True}

    def label_text(self, label: Any) -> str:
        """The point, with the scale's name for it at either end: ``5 (excellent)``."""
        ends = {self.min: self.min_label, self.max: self.max_label}
        try:
            end = ends.get(int(label))
        except (TypeError, ValueError):
            end = None
        return f"{label} ({end})" if end else str(label)

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        return {"text": self.label_text(answer), "parts": None, "rationale": None}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        low = f" ({self.min_label})" if self.min_label else ""
        high = f" ({self.max_label})" if self.max_label else ""
        return f"an integer from {self.min}{low} to {self.max}{high}", f"<integer {self.min}-{self.max}>"

    def llm_json_schema(self) -> dict:
        return {"type": "integer", "minimum": self.min, "maximum": self.max}

