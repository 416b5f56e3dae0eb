"""Free text: a string, in a box that may be pre-filled from a display field (to correct a draft).

Not aggregated (texts are rarely equal): no vote, no label, no gold check; the export lists every answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from labelwright.questions.base import QuestionType, kind_of


class FreeText(QuestionType):
    type: Literal["text"]
    prefill: str | None = Field(default=None, description="a display field whose value pre-fills the box")
    multiline: bool = True
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=100_000, ge=1)

    aggregated: ClassVar[bool] = False
    answer_display: ClassVar[Literal["label", "list", "block"]] = "block"
    template: ClassVar[str] = "templates/text.html"

    def field_refs(self) -> list[str]:
        return [self.prefill] if self.prefill else []

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.fail(f"expected text, got {kind_of(value)}")
        if len(value) < self.min_length:
            raise self.fail(f"at least {self.min_length} characters")
        if len(value) > self.max_length:
            raise self.fail(f"at most {self.max_length} characters")
        return value

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        if state is not None:
            return {}
        prefill = data.get(self.prefill) if self.prefill else None
        return {"state": prefill if isinstance(prefill, str) else ""}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        bounds = f", at most {self.max_length} characters" if self.max_length < 100_000 else ""
        if self.min_length:
            bounds += f", at least {self.min_length} characters"
        return "free text" + bounds, "<string>"

    def llm_json_schema(self) -> dict:
        return {"type": "string"}

