"""A question type defined outside labelwright, as a plugin package would: "yes or no, with a comment".

Answers are ``{"answer": "yes"|"no", "comment": "..."}``; categorical on the answer (so the project's truth
inference, agreement, gold scoring and the assistant all work on it). The whole type is this module, its
form partial (``templates/yes_no.html``), its script and style (``templates/yes_no.js``, ``.css``) and its
tests: nothing in labelwright names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from labelwright.questions import FormValue, QuestionType
from labelwright.questions.base import form_text, kind_of


class YesNo(QuestionType):
    type: Literal["yes_no"]
    comment: bool = True  # ask for a comment

    categorical: ClassVar[bool] = True
    suggestible: ClassVar[bool] = True
    template: ClassVar[str] = "templates/yes_no.html"
    assets: ClassVar[tuple[str, ...]] = ("templates/yes_no.js", "templates/yes_no.css")  # its own script and style

    def validate_answer(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"answer": value}
        if not isinstance(value, dict):
            raise self.fail(f"expected {{answer, comment}}, got {kind_of(value)}")
        if value.get("answer") not in ("yes", "no"):
            raise self.fail(f"answer must be yes or no, got {value.get('answer')!r}", "answer")
        comment = value.get("comment") or ""
        if not isinstance(comment, str):
            raise self.fail("comment must be text", "comment")
        return {"answer": value["answer"], **({"comment": comment.strip()} if comment.strip() else {})}

    def label_values(self) -> list:
        return ["yes", "no"]

    def label_text(self, label: Any) -> str:
        return {"yes": "Yes", "no": "No"}.get(label, str(label))

    def answer_label(self, answer: Any) -> Any:
        return answer["answer"]

    def label_path(self) -> list[str]:
        return [self.name, "answer"]

    def parse_form(self, form) -> FormValue | None:
        answer = form_text(form.get(self.name))
        comment = form_text(form.get(f"{self.name}.comment"))
        out = FormValue(state={"answer": answer, "comment": comment})
        if answer or comment.strip():
            out.answer = {"answer": answer or None, "comment": comment}
        return out

    def form_state(self, answer: Any) -> Any:
        return {"answer": answer["answer"], "comment": answer.get("comment", "")}

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {"choices": [{"value": "yes", "label": "Yes", "key": "1"}, {"value": "no", "label": "No", "key": "2"}],
                "state": state or {"answer": "", "comment": ""}}

    def suggestion_state(self, state: Any, value: str) -> tuple[Any, Any]:
        if not state["answer"]:
            return {**state, "answer": value}, value
        return state, state["answer"]

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        return {"text": self.label_text(answer["answer"]), "parts": None, "rationale": answer.get("comment")}

    def export_cell(self, answer: Any) -> Any:
        if answer is None:
            return None
        return answer["answer"] + (f": {answer['comment']}" if answer.get("comment") else "")
