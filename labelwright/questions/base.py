"""What a question type is: one class that owns its configuration, its answers and how they are shown.

A question type is a pydantic model (the question's settings in the project schema, with a ``type`` tag)
whose methods say everything the rest of labelwright needs to know about its answers:

=====================  ===========================================================================
validation             :meth:`~QuestionType.validate_answer`, :meth:`~QuestionType.empty_answer`,
                       :meth:`~QuestionType.from_text` (a gold answer written in a CSV cell),
                       :meth:`~QuestionType.check_item` (an answer against the item it answers)
labels                 :attr:`~QuestionType.categorical`, :meth:`~QuestionType.label_values`,
                       :meth:`~QuestionType.answer_label`, :meth:`~QuestionType.label_path`
vote and aggregation   :meth:`~QuestionType.vote` (the plain majority), :meth:`~QuestionType.compact` and
                       :meth:`~QuestionType.aggregate` (the export's label for types that are not
                       categorical; categorical ones get the project's truth inference),
                       :attr:`~QuestionType.agreement_level`
gold                   :meth:`~QuestionType.gold_score`, :meth:`~QuestionType.matches_label`
the form               :meth:`~QuestionType.parse_form`, :meth:`~QuestionType.form_state`,
                       :meth:`~QuestionType.view_context`, :attr:`~QuestionType.template`
showing an answer      :meth:`~QuestionType.answer_text`, :attr:`~QuestionType.answer_display`,
                       :meth:`~QuestionType.answer_html` and :meth:`~QuestionType.label_html` (the owner's
                       item page and the review page, given an :class:`ItemView`)
export                 :meth:`~QuestionType.export_cell`
an LLM annotator       :meth:`~QuestionType.llm_instructions`, :meth:`~QuestionType.llm_json_schema`,
                       :meth:`~QuestionType.from_llm` (:mod:`labelwright.assist.llm`)
=====================  ===========================================================================

Built-in types and plugins join :mod:`labelwright.questions.registry` the same way; see
docs/question-types.md for a worked example. Nothing here imports the server: a type is usable from the
schema, the services, the pages and the CLI alike.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import orjson
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from labelwright.errors import ValidationError

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"


class _NoAnswer:
    """The marker for "leave this question out of the answers" (an unanswered optional question)."""

    _instance: _NoAnswer | None = None

    def __new__(cls) -> _NoAnswer:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_ANSWER"

    def __bool__(self) -> bool:
        return False


NO_ANSWER: Any = _NoAnswer()


class Form(Protocol):
    """What :meth:`QuestionType.parse_form` reads: a submitted form (Starlette's ``FormData`` is one)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


@dataclass
class FormValue:
    """One question read out of a form: what to show again (``state``), the answer for the service
    (:data:`NO_ANSWER` to leave it out) and an error to show next to the question."""

    state: Any
    answer: Any = NO_ANSWER
    error: str | None = None


@dataclass
class Aggregate:
    """A question's label for every item that has answers: ``tasks[i]`` (item ids, increasing) has label
    ``values[i]`` with ``confidence[i]``; ``method`` says how they were made."""

    method: str
    tasks: np.ndarray
    values: list
    confidence: np.ndarray


@dataclass(frozen=True)
class ItemView:
    """What showing an answer may use of the item it answers: its ``data`` (untrusted: escape all of it),
    the display fields' ``titles`` by name, ``images``: each image field's URL for the browser (None
    where the page cannot load it), and the item's id."""

    data: Mapping[str, Any] = field(default_factory=dict)
    titles: Mapping[str, str] = field(default_factory=dict)
    images: Mapping[str, str | None] = field(default_factory=dict)
    item_id: int | None = None


def form_text(value: Any) -> str:
    """A form field's value as text (missing: empty), with browser line ends (CRLF) made ``\\n``."""
    return "" if value is None else str(value).replace("\r\n", "\n")


def finite_number(v: Any) -> float | None:
    """``v`` as a float when it is a JSON number a float holds; None for anything else: a boolean, a string,
    NaN, an infinity, an integer past a float's range (which ``math.isfinite`` would raise on)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def kind_of(v: Any) -> str:
    """A JSON value's kind in words, for error messages ("an object", "a list", ...)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def json_list(value: Any) -> Any:
    """A list answer written as JSON text (a CSV cell) read back; anything else unchanged."""
    if isinstance(value, str) and value[:1] == "[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def quoted(s: str) -> str:
    """A string as JSON writes it (in quotes), for the LLM's instructions."""
    return json.dumps(s, ensure_ascii=False)


def match_name(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` itself when it is one of the canonical ``names``' values, else the one whose key (lower
    case) matches it case-insensitively; anything else unchanged (validation then says what is wrong)."""
    if not isinstance(value, str) or value in names.values():
        return value
    return names.get(value.strip().casefold(), value)


def check_unique(values: Sequence[str], where: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{where}: {v!r} appears twice")
        seen.add(v)


def plurality(values: list, order: list) -> dict:
    """The most frequent of ``values`` (``{label, agreement, n}``, ``tie`` when several are): a tie is broken
    by ``order`` (the declared order of the labels)."""
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values())
    winners = [v for v in order if counts.get(v) == best]
    if not winners:  # values outside the declared order (should not happen after validation)
        winners = sorted((v for v, c in counts.items() if c == best), key=str)
    out = {"label": winners[0], "agreement": round(best / len(values), 4), "n": len(values)}
    if len(winners) > 1:
        out["tie"] = True
    return out


class QuestionType(BaseModel):
    """The base of every question type. A subclass declares ``type: Literal["its_name"]``, its settings as
    pydantic fields, and overrides the methods below that its answers need (see the module's table).

    The defaults describe a categorical question whose answer is its label (a single choice): subclasses
    that are not categorical set :attr:`categorical` False and implement :meth:`aggregate` or set
    :attr:`aggregated` False.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_RE)
    prompt: str = ""
    required: bool = True
    hint: str | None = None
    type: str  # each type narrows it to its tag: type: Literal["its_tag"]

    #: answers are one of :meth:`label_values` (truth inference, agreement, the assistant and adaptive
    #: redundancy work on them)
    categorical: ClassVar[bool] = False
    #: answers get a label per item (a vote in :meth:`vote`, the export's label); free text does not
    aggregated: ClassVar[bool] = True
    #: Krippendorff's alpha's level for a categorical question: ``nominal`` or ``ordinal``
    agreement_level: ClassVar[Literal["nominal", "ordinal"]] = "nominal"
    #: the form partial (a Jinja2 file), relative to the folder of the module defining the class
    template: ClassVar[str] = ""
    #: the type's own scripts (``.js``, ES modules) and styles (``.css``), relative to the same folder; the
    #: partial links them with ``{{ type_asset_url("<tag>", "<file>") }}`` (served under ``/static/types/``,
    #: cached for good, allowed by the pages' Content-Security-Policy, which refuses inline code)
    assets: ClassVar[tuple[str, ...]] = ()
    #: how an answer shows on the review and item pages: ``label`` (bold), ``list`` (an ordered list of
    #: :meth:`answer_text`'s parts) or ``block`` (a block of text)
    answer_display: ClassVar[Literal["label", "list", "block"]] = "label"
    #: the assistant may answer it and its answer be pre-selected on the form (categorical, one value)
    suggestible: ClassVar[bool] = False

    @property
    def title(self) -> str:
        return self.prompt or self.name

    # ---- the schema -----------------------------------------------------------------------------

    def field_refs(self) -> list[str]:
        """The display fields this question refers to (the schema checks they exist)."""
        return []

    def check_fields(self, fields: Collection[str]) -> None:
        """Check the question against the schema's display fields (``fields``: their names); raise
        ValueError. The default checks that :meth:`field_refs` exist."""
        for r in self.field_refs():
            if r not in fields:
                raise ValueError(f"question {self.name!r} refers to field {r!r}, which is not in fields")

    def field_groups(self) -> tuple[str, list[tuple[str, str]]] | None:
        """Display fields shown together for this question: ``(kind, [(field, badge), ...])`` (the page's
        ``group-<kind>`` block), or None."""
        return None

    @classmethod
    def template_path(cls) -> Path:
        """The form partial's file (:attr:`template` next to the module defining the class)."""
        module = sys.modules[cls.__module__]
        return Path(module.__file__ or ".").parent / cls.template

    @classmethod
    def asset_path(cls, name: str) -> Path | None:
        """The file of :attr:`assets` entry ``name``; None when the type lists no such asset."""
        if name not in cls.assets:
            return None
        module = sys.modules[cls.__module__]
        return Path(module.__file__ or ".").parent / name

    # ---- answers --------------------------------------------------------------------------------

    def validate_answer(self, value: Any) -> Any:
        """Check one answer that is not empty; return it normalised, or raise :class:`ValidationError`
        with ``field`` the question's name (or a path below it, ``name.part``)."""
        raise NotImplementedError(f"question type {self.type!r} does not implement validate_answer")

    def check_item(self, answer: Any, data: Mapping[str, Any]) -> None:
        """Check one answer against the item it answers (``data``: the item's data); raise
        :class:`ValidationError` as :meth:`validate_answer` does (``self.fail(message, part)``).

        ``answer`` is the value as it was submitted, after :meth:`validate_answer` accepted it, so a part
        named in the error (``entities.2.end``) is the submitted list's own position. Called wherever the
        item is known: submitting, amending, a reviewer's fix, gold. The default accepts every answer."""
        return None

    @classmethod
    def checks_item(cls) -> bool:
        """Whether the type overrides :meth:`check_item` (the hot path reads an item's data only then)."""
        return cls.check_item is not QuestionType.check_item

    def check_data(self, data: Mapping[str, Any]) -> None:
        """Check an item's data for this question when the item is imported, before anyone answers it
        (a chat question's turns and roles): raise :class:`ValidationError` with ``field`` the item's
        field (``messages[2]``); the import adds the file and line. The default accepts every item."""
        return None

    def empty_answer(self, value: Any) -> Any:
        """An empty answer (``None``, ``""`` or ``[]``): raise when the question is required, else what to
        store (:data:`NO_ANSWER`: nothing)."""
        if self.required:
            raise ValidationError("an answer is required", field=self.name)
        return NO_ANSWER

    def from_text(self, value: Any) -> Any:
        """A gold answer as an import gave it (a CSV cell is text): the value to validate."""
        return value

    def fail(self, message: str, part: str | None = None) -> ValidationError:
        """A :class:`ValidationError` naming this question (``name.part`` with ``part``)."""
        return ValidationError(message, field=self.name if part is None else f"{self.name}.{part}")

    # ---- labels ---------------------------------------------------------------------------------

    def label_values(self) -> list:
        """The labels a categorical question's answers take, in declared order."""
        raise TypeError(f"{self.type} questions have no fixed set of labels")

    def answer_label(self, answer: Any) -> Any:
        """The label of one answer (what is voted on and compared with gold)."""
        return answer

    def label_text(self, label: Any) -> str:
        """What people see for one label (an option's text; the label itself by default)."""
        return str(label)

    def label_path(self) -> list[str]:
        """Where a categorical answer's label is in the stored answers object (the database reads it)."""
        return [self.name]

    def vote(self, answers: list) -> dict | None:
        """The plain majority of the annotators' answers (none missing): ``{label, agreement, n}`` (and
        ``tie``), or None when the type has no vote."""
        if not self.aggregated or not answers:
            return None
        if self.categorical:
            return plurality([self.answer_label(a) for a in answers], self.label_values())
        return None

    def compact(self, answer: Any) -> Any:
        """What the project's aggregation keeps of one answer of a non-categorical type (the whole answer
        unless a smaller form does, such as a bit mask for several choices)."""
        return answer

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        """The label of every item of a non-categorical type, from its answers in long form (``tasks[i]``,
        ``workers[i]``, ``values[i]``: :meth:`compact` of an answer) and the gold answers by item.

        The default is the plain vote per item (``confidence``: its agreement)."""
        by_item: dict[int, list] = {}
        for task, value in zip(tasks.tolist(), values):
            by_item.setdefault(task, []).append(value)
        items = sorted(by_item)
        labels, confidence = [], []
        for i in items:
            v = self.vote(by_item[i])
            labels.append(None if v is None else v["label"])
            confidence.append(float("nan") if v is None else v["agreement"])
        return Aggregate(method="majority vote (confidence: agreement)", tasks=np.array(items, dtype=np.int64),
                         values=labels, confidence=np.array(confidence, dtype=float))

    # ---- gold -----------------------------------------------------------------------------------

    def gold_score(self, answer: Any, truth: Any) -> float | None:
        """How right one answer is against the gold answer, from 0 to 1 (1: right); None when the type is
        not checked against gold or either is missing."""
        if answer is None or truth is None or not self.aggregated:
            return None
        return 1.0 if self.answer_label(answer) == self.answer_label(truth) else 0.0

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        """Whether one answer agrees with an aggregated label (already in label form); None when the type
        has no label or either is missing."""
        if answer is None or label is None or not self.aggregated:
            return None
        return self.answer_label(answer) == label

    # ---- the form -------------------------------------------------------------------------------

    def parse_form(self, form: Form) -> FormValue | None:
        """Read this question out of a submitted form (fields named ``<name>`` and ``<name>.<part>``);
        None when the form has no field of it. The default reads one text field."""
        value = form.get(self.name)
        if value is None:
            return None
        text = form_text(value)
        return FormValue(state=text, answer=text if text != "" else NO_ANSWER)

    def form_state(self, answer: Any) -> Any:
        """The form state that shows a saved answer again (for amending)."""
        return str(answer)

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        """What the form partial needs besides the question (``v.q``), its ``name``, ``title``, ``hint``,
        ``required``, ``error`` and ``state``: choices, candidates... ``state`` included replaces the
        state (None when nothing was entered yet); ``data`` is the item's data, ``titles`` the display
        fields' titles by name."""
        return {}

    def suggestion_state(self, state: Any, value: str) -> tuple[Any, Any]:
        """A suggested label put into the form state when nothing is chosen yet: ``(new state, the value
        chosen now)``."""
        if state in (None, ""):
            return value, value
        return state, state

    # ---- showing and exporting an answer --------------------------------------------------------

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        """One saved answer as a person reads it: ``{text, parts, rationale}`` (``parts`` for several
        values, shown as a list with ``answer_display = "list"``). ``titles``: display field titles."""
        return {"text": str(answer), "parts": None, "rationale": None}

    def answer_html(self, answer: Any, item: ItemView) -> Markup:
        """One saved answer as HTML for the owner's item page and the review page, every value escaped.
        The default shows :meth:`answer_text` as :attr:`answer_display` says (a bold label, an ordered list
        or a block of text) with its rationale; spans highlight their text, boxes draw over the image."""
        shown = self.answer_text(answer, item.titles)
        if self.answer_display == "list" and shown.get("parts"):
            body = Markup('<ol class="answer-ranking">{}</ol>').format(
                Markup("").join(Markup("<li>{}</li>").format(p) for p in shown["parts"]))
        elif self.answer_display == "block":
            body = Markup('<div class="answer-text">{}</div>').format(shown["text"])
        else:
            body = Markup('<strong class="answer-label">{}</strong>').format(shown["text"])
        if shown.get("rationale"):
            body += Markup('<p class="answer-rationale"><span class="muted">Rationale:</span> {}</p>').format(
                shown["rationale"])
        return body

    def label_html(self, label: Any, item: ItemView) -> Markup:
        """An aggregated label (the item page's consensus and majority rows) as HTML: the label's words
        (:meth:`label_text`; a list of labels joined with commas). Types whose label has an answer's shape
        (spans, boxes) show it as :meth:`answer_html` does."""
        if isinstance(label, (list, tuple)):
            return escape(", ".join(self.label_text(v) for v in label))
        return escape(self.label_text(label))

    def export_cell(self, answer: Any) -> Any:
        """One answer in a flat export's ``answer.<question>`` cell: text and numbers as they are, lists
        and objects as JSON text."""
        if answer is None or isinstance(answer, (str, int, float)):
            return answer
        return orjson.dumps(answer).decode()

    # ---- an LLM as annotator --------------------------------------------------------------------

    def llm_instructions(self) -> tuple[str, str]:
        """What an LLM annotator is told about this question: ``(what it asks, its answer's shape in the
        reply's template)``, e.g. ``("an integer from 1 to 5", "<integer 1-5>")``. The default shows the
        type's settings and asks for the JSON value the type takes (its answers are validated as anyone's)."""
        settings = self.model_dump(mode="json", exclude={"name", "prompt", "hint", "required", "type"})
        return (f"answer with the JSON value a {self.type} question takes; its settings: "
                f"{json.dumps(settings, ensure_ascii=False)}", "<JSON value>")

    def llm_json_schema(self) -> dict:
        """A JSON Schema of one answer (part of the ``response_format`` an LLM is asked to follow). The
        default allows any JSON value."""
        return {}

    def from_llm(self, value: Any) -> Any:
        """A model's answer made ready for :meth:`validate_answer`: a label given for a value mapped to
        the value, and the like. The default leaves it unchanged."""
        return value
