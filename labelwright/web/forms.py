"""Reading the labelling forms: answers out of form fields, and saved answers back into a form's state.

Answers travel as ordinary form fields (one per question, see :func:`parse_answers`), so the pages work
without JavaScript. The labelling, review, gold and qualification forms all read their answers here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labelwright.errors import ValidationError
from labelwright.questions.base import NO_ANSWER
from labelwright.questions.base import form_text as form_text  # the pages read text fields with it
from labelwright.schema import ProjectSchema
from labelwright.services.queue import MAX_ACTIVE_MS


@dataclass
class FormAnswers:
    """A submitted form read back: the answers for the service, what to show again, and form errors."""

    answers: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)


def form_id(form, name: str) -> int | None:
    """A form field holding a database id, or None when it is missing or not a plain number."""
    value = str(form.get(name) or "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def parse_answers(schema: ProjectSchema, form) -> FormAnswers:
    """Read the answers out of a labelling form.

    Each question type reads its own fields (:meth:`labelwright.questions.QuestionType.parse_form`):
    ``<question>`` for every question's main value (repeated for multiple choice),
    ``<question>.rationale`` for a pairwise rationale, ``<question>.rank.<candidate>`` (1 = best) for
    a ranking. Unanswered questions are left out so the schema reports them as missing.
    """
    out = FormAnswers()
    for q in schema.questions:
        got = q.parse_form(form)
        if got is None:
            continue
        out.state[q.name] = got.state
        if got.answer is not NO_ANSWER:
            out.answers[q.name] = got.answer
        if got.error:
            out.errors[q.name] = got.error
    return out


def state_from_answers(schema: ProjectSchema, answers: dict) -> dict:
    """The form state that shows saved ``answers`` again (for amending)."""
    return {q.name: q.form_state(answers[q.name]) for q in schema.questions if answers.get(q.name) is not None}


def active_ms(form) -> int:
    """The active time the page counted (``active_ms``), within the queue's cap; 0 when unreadable."""
    try:
        return max(0, min(int(str(form.get("active_ms") or 0)), MAX_ACTIVE_MS))
    except ValueError:
        return 0


def errors_by_question(schema: ProjectSchema, error: ValidationError) -> tuple[dict, str | None]:
    """Place a service error next to its question (``pref.rationale`` belongs to ``pref``)."""
    head = (error.field or "").split(".", 1)[0].split("[", 1)[0]
    if head in {q.name for q in schema.questions}:
        return {head: error.message}, None
    return {}, error.message
