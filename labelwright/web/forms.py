"""Reading the labelling forms: answers out of form fields, and saved answers back into a form's state.

Answers travel as ordinary form fields (one per question, see :func:`parse_answers`), so the pages work
without JavaScript. The labelling, review, gold and qualification forms all read their answers here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labelwright.errors import ValidationError
from labelwright.schema import ProjectSchema
from labelwright.services.queue import MAX_ACTIVE_MS


@dataclass
class FormAnswers:
    """A submitted form read back: the answers for the service, what to show again, and form errors."""

    answers: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)


def form_text(value) -> str:
    """A form field's value as text (missing: empty), with browser line ends (CRLF) made ``\\n``."""
    return "" if value is None else str(value).replace("\r\n", "\n")


def form_id(form, name: str) -> int | None:
    """A form field holding a database id, or None when it is missing or not a plain number."""
    value = str(form.get(name) or "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def parse_answers(schema: ProjectSchema, form) -> FormAnswers:
    """Read the answers out of a labelling form.

    Field names: ``<question>`` for every question's main value (repeated for multiple choice),
    ``<question>.rationale`` for a pairwise rationale, ``<question>.rank.<candidate>`` (1 = best) for
    a ranking. Unanswered questions are left out so the schema reports them as missing.
    """
    out = FormAnswers()
    for q in schema.questions:
        name = q.name
        if q.type == "multiple_choice":
            values = [form_text(v) for v in form.getlist(name)]
            out.answers[name] = out.state[name] = values
        elif q.type in ("single_choice", "rating", "text"):
            value = form.get(name)
            if value is None:
                continue
            out.state[name] = form_text(value)
            if out.state[name] != "":
                out.answers[name] = out.state[name]
        elif q.type == "pairwise":
            choice = form_text(form.get(name))
            rationale = form_text(form.get(f"{name}.rationale")) if q.rationale != "none" else ""
            out.state[name] = {"choice": choice, "rationale": rationale}
            if choice or rationale.strip():
                out.answers[name] = {"choice": choice or None}
                if rationale.strip():
                    out.answers[name]["rationale"] = rationale
        elif q.type == "ranking":
            ranks = {c: form_text(form.get(f"{name}.rank.{c}")).strip() for c in q.candidates}
            out.state[name] = ranks
            given = {c: int(r) for c, r in ranks.items() if r.isascii() and r.isdigit() and len(r) < 10}
            if not given:
                continue
            if len(set(given.values())) != len(given):
                out.errors[name] = "each place can be given to one candidate only"
            order = sorted(given, key=given.__getitem__)
            out.answers[name] = order  # the schema refuses a partial ranking, naming the question
    return out


def state_from_answers(schema: ProjectSchema, answers: dict) -> dict:
    """The form state that shows saved ``answers`` again (for amending)."""
    state: dict = {}
    for q in schema.questions:
        value = answers.get(q.name)
        if value is None:
            continue
        if q.type == "pairwise":
            state[q.name] = {"choice": value.get("choice", ""), "rationale": value.get("rationale", "")}
        elif q.type == "ranking":
            state[q.name] = {c: str(i + 1) for i, c in enumerate(value)}
        elif q.type == "multiple_choice":
            state[q.name] = list(value)
        else:
            state[q.name] = str(value)
    return state


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
