"""An execution-checked code task: the item holds code (or a model's answer) and its tests, the annotator
runs them in the sandbox, reads the output and exit status, and gives a verdict, optionally with the code
as they edited it.

Schema: ``{name: verdict, type: code, code: solution, tests: tests}``: ``code`` and ``tests`` name the item's
fields holding the program and its tests (``tests`` is optional: without it the code runs alone).
``layout: files`` (the default) puts the code in ``solution.py`` and the tests in ``test_solution.py`` and
runs the tests (which ``from solution import ...``); ``layout: append`` runs one ``main.py``, the code then
the tests (HumanEval-style tests that call the code's functions directly).

Answers: ``{"verdict": "pass"|"fail"|"needs_fix", "code": "..."}`` (a bare ``"pass"`` is read as
``{"verdict": "pass"}``); ``code`` only when the annotator changed it. Categorical on the verdict: truth
inference aggregates it, ties in the plain vote go to pass, fail, needs_fix in that order, and gold is
compared on the verdict.

This module says what to run (:meth:`CodeTask.program`); it never runs anything: the run goes through
:mod:`labelwright.services.runs`, which checks access and limits, into :mod:`labelwright.sandbox`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from markupsafe import Markup
from pydantic import Field

from labelwright.questions.base import (
    Form,
    FormValue,
    ItemView,
    QuestionType,
    form_text,
    kind_of,
    match_name,
    quoted,
)
from labelwright.questions.choice import option_key

VERDICTS = ("pass", "fail", "needs_fix")
VERDICT_LABELS = (("pass", "Passes"), ("fail", "Fails"), ("needs_fix", "Needs a fix"))
VERDICT_TEXT = dict(VERDICT_LABELS)
MAX_CODE = 100_000  # characters of code an answer (or a run) may carry

#: per language: (the code's file, the tests' file, the one file of ``layout: append``)
FILES = {"python": ("solution.py", "test_solution.py", "main.py")}


def code_digest(code: str) -> str:
    """A short digest of a program's text (line ends as the form sends them back: ``\\n``)."""
    return hashlib.sha256(code.replace("\r\n", "\n").encode("utf-8", "surrogatepass")).hexdigest()[:32]


class CodeTask(QuestionType):
    type: Literal["code"]
    code: str = Field(description="the item field holding the code to check")
    tests: str | None = Field(default=None, description="the item field holding its tests (optional)")
    language: Literal["python"] = "python"
    layout: Literal["files", "append"] = Field(
        default="files", description="files: code and tests in two files, the tests run; append: one program")
    editable: bool = Field(default=True, description="the annotator may edit the code, re-run it and submit it")
    time_s: float = Field(default=5.0, gt=0, le=30, description="wall-clock limit of one run, in seconds")
    memory_mb: int = Field(default=256, ge=64, le=2048, description="memory limit of one run")
    max_processes: int = Field(default=16, ge=1, le=256, description="processes and threads one run may have")

    categorical: ClassVar[bool] = True
    template: ClassVar[str] = "templates/code.html"

    def field_refs(self) -> list[str]:
        return [self.code] + ([self.tests] if self.tests else [])

    # ---- what to run --------------------------------------------------------------------------

    def program(self, data: Mapping[str, Any], code: str | None = None) -> tuple[dict[str, str], str]:
        """The files of one run and the file to run: the item's code (or ``code``, the annotator's edit)
        and its tests, laid out as :attr:`layout` says."""
        source = data.get(self.code) if code is None else code
        if not isinstance(source, str):
            raise self.fail(f"the item's field {self.code!r} holds no code ({kind_of(source)})", "code")
        tests = data.get(self.tests) if self.tests else ""
        if not isinstance(tests, str):
            raise self.fail(f"the item's field {self.tests!r} holds no tests ({kind_of(tests)})", "tests")
        code_file, tests_file, main_file = FILES[self.language]
        if self.layout == "append":
            return {main_file: f"{source.rstrip()}\n\n\n{tests}" if tests else source}, main_file
        if not tests:
            return {code_file: source}, code_file
        return {code_file: source, tests_file: tests}, tests_file

    def limits(self) -> dict:
        return {"time_s": self.time_s, "memory_mb": self.memory_mb, "max_processes": self.max_processes}

    # ---- answers ------------------------------------------------------------------------------

    def validate_answer(self, value: Any) -> Any:
        if isinstance(value, str):
            value = {"verdict": value}
        if not isinstance(value, dict):
            raise self.fail(f"expected {{verdict, code}}, got {kind_of(value)}")
        extra = set(value) - {"verdict", "code"}
        if extra:
            raise self.fail(f"unexpected keys {sorted(extra)}")
        verdict = value.get("verdict")
        if verdict not in VERDICTS:
            raise self.fail(f"verdict must be one of {list(VERDICTS)}, got {verdict!r}", "verdict")
        out: dict[str, Any] = {"verdict": verdict}
        code = value.get("code")
        if code is not None and code != "":
            if not isinstance(code, str):
                raise self.fail(f"expected the edited code as text, got {kind_of(code)}", "code")
            if not self.editable:
                raise self.fail("this question does not take edited code", "code")
            if len(code) > MAX_CODE:
                raise self.fail(f"at most {MAX_CODE} characters of code", "code")
            out["code"] = code
        return out

    def label_values(self) -> list:
        return list(VERDICTS)

    def label_text(self, label: Any) -> str:
        return VERDICT_TEXT.get(str(label), str(label))

    def answer_label(self, answer: Any) -> Any:
        return answer["verdict"]

    def label_path(self) -> list[str]:
        return [self.name, "verdict"]

    # ---- the form -----------------------------------------------------------------------------

    def parse_form(self, form: Form) -> FormValue | None:
        verdict = form_text(form.get(self.name))
        code = form.get(f"{self.name}.code")
        out = FormValue(state={"verdict": verdict, "code": None if code is None else form_text(code)})
        edited = (self.editable and code is not None
                  and code_digest(form_text(code)) != form_text(form.get(f"{self.name}.original")))
        if verdict or edited:
            out.answer = {"verdict": verdict or None}
            if edited:
                out.answer["code"] = form_text(code)
        return out

    def form_state(self, answer: Any) -> Any:
        return {"verdict": answer.get("verdict", ""), "code": answer.get("code")}

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        original = data.get(self.code)
        original = original if isinstance(original, str) else ""
        state = state or {"verdict": "", "code": None}
        code = state.get("code")
        return {"choices": [{"value": v, "label": label, "key": option_key(i)}
                            for i, (v, label) in enumerate(VERDICT_LABELS)],
                "state": {**state, "code": original if code is None else code},
                "original": code_digest(original), "code_title": titles.get(self.code, self.code)}

    # ---- an LLM as annotator ------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        tests = f" against the tests in field {quoted(self.tests)}" if self.tests else ""
        verdicts = ", ".join(quoted(v) for v in VERDICTS)
        return (f"judge the code in field {quoted(self.code)}{tests}: \"pass\" (it is right), \"fail\" (it is "
                f"wrong) or \"needs_fix\" (nearly right; give the fixed code as \"code\", else leave it out)",
                f'{{"verdict": <one of {verdicts}>, "code": <string, optional>}}')

    def llm_json_schema(self) -> dict:
        return {"type": "object", "properties": {"verdict": {"type": "string", "enum": list(VERDICTS)},
                                                 "code": {"type": "string"}},
                "required": ["verdict"], "additionalProperties": False}

    def from_llm(self, value: Any) -> Any:
        names = {v: v for v in VERDICTS} | {"needs fix": "needs_fix", "needs-fix": "needs_fix"}
        if isinstance(value, dict) and "verdict" in value:
            return {**value, "verdict": match_name(value["verdict"], names)}
        return match_name(value, names)

    def answer_html(self, answer: Any, item: ItemView) -> Markup:
        """The verdict, then the code it is about as a code block (the annotator's edit, else the item's
        code) with Run: the page's code-task.js runs it in the server's sandbox (the run endpoint checks the
        viewer may) and shows the exit status and output beside it. Runs are not stored, so the result is
        the one this viewer asks for."""
        verdict = answer.get("verdict") if isinstance(answer, dict) else answer
        edited = answer.get("code") if isinstance(answer, dict) else None
        original = item.data.get(self.code)
        code = edited if edited else original if isinstance(original, str) else None
        head = Markup('<strong class="answer-label">{}</strong>').format(self.label_text(verdict))
        if code is None:
            return head
        which = "Edited code" if edited else f"{item.titles.get(self.code, self.code)} (unchanged)"
        run = Markup("")
        if item.item_id is not None:
            run = Markup(
                '<textarea hidden data-code-source aria-hidden="true">{code}</textarea>'
                '<p class="code-run"><button type="button" class="button secondary" data-code-run>Run{tests}</button> '
                '<span class="muted" data-code-status role="status" aria-live="polite"></span></p>'
                '<div class="code-output" data-code-output hidden><p>Exit status: <strong data-code-exit></strong> '
                '<span class="muted" data-code-time></span></p><p class="field-title">Output (stdout)</p>'
                '<pre data-code-stdout></pre><p class="field-title">Errors (stderr)</p><pre data-code-stderr></pre>'
                '</div>').format(code=code, tests=" the tests" if self.tests else "")
        return head + Markup(
            '<div class="code-task code-answer" data-code-task="{name}"{item}><p class="field-title">{which}</p>'
            '<pre class="answer-code"><code>{code}</code></pre>{run}</div>').format(
            name=self.name, item=Markup(' data-item-id="{}"').format(item.item_id) if item.item_id is not None else "",
            which=which, code=code, run=run)

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        verdict = answer.get("verdict") if isinstance(answer, dict) else answer
        code = answer.get("code") if isinstance(answer, dict) else None
        return {"text": self.label_text(verdict), "parts": None,
                "rationale": f"Edited code:\n{code}" if code else None}


__all__ = ["FILES", "VERDICTS", "CodeTask", "code_digest"]
