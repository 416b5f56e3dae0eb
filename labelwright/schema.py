"""Project schemas: what each item shows and what each annotator is asked.

This is the one place that knows the shape of a project. The API, the web UI, the importers and the
exporters all call :func:`parse_schema`, :meth:`ProjectSchema.validate_item` and
:meth:`ProjectSchema.validate_answers`; nothing else re-implements these checks.

A schema is written as YAML or JSON::

    name: YouTube comment spam
    overlap: 3                # distinct annotators per item (1-9)
    id_field: id              # the item field holding its external id (optional)
    fields:
      - {name: text, type: text, label: Comment}
    questions:
      - {name: spam, type: single_choice, prompt: Is this spam?, options: [spam, ham]}

Answer formats (what the API takes and the export gives):

================  ==========================================================================
single_choice     the option value, e.g. ``"spam"``
multiple_choice   a list of distinct option values, e.g. ``["funny", "rude"]``
rating            an integer between ``min`` and ``max``
pairwise          ``{"choice": "A"|"B"|"tie"|"both_bad", "rationale": "..."}``
ranking           every candidate name exactly once, best first, e.g. ``["r2", "r1", "r3"]``
text              a string
================  ==========================================================================

Each question type is a class in :mod:`labelwright.questions` that checks its own answers; plugins add
more through the ``labelwright.question_types`` entry point group (docs/question-types.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from labelwright.errors import ValidationError
from labelwright.questions import registry
from labelwright.questions.base import NAME_RE, NO_ANSWER, QuestionType, check_unique, kind_of
from labelwright.questions.choice import MultipleChoice, Option, SingleChoice
from labelwright.questions.pairwise import PAIRWISE_CHOICES, Pairwise
from labelwright.questions.ranking import Ranking
from labelwright.questions.rating import Rating
from labelwright.questions.registry import AnyQuestion
from labelwright.questions.text import FreeText

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,62}$")
MAX_OVERLAP = 9


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- display fields -------------------------------------------------------------------------


class DisplayField(_Model):
    name: str = Field(pattern=NAME_RE)
    type: Literal["text", "markdown", "image", "chat"] = "text"
    label: str | None = None
    required: bool = True

    @property
    def title(self) -> str:
        return self.label or self.name


# ---- questions ------------------------------------------------------------------------------
# Each question type is one class in labelwright.questions (its settings, answers, labels, form and view);
# a schema's questions are any registered type, chosen by their ``type`` tag.

Question = Annotated[QuestionType, AnyQuestion()]
__all__ = ["PAIRWISE_CHOICES", "FreeText", "MultipleChoice", "Option", "Pairwise", "ProjectSchema", "Question",
           "Ranking", "Rating", "SingleChoice", "answer_label", "is_categorical", "label_values", "parse_schema"]


MAX_ANSWERS = 25  # the most answers adaptive redundancy may ask for per item


class GoldSettings(_Model):
    """How gold items (items whose answers the owner knows) are used."""

    rate: float = Field(default=0.1, ge=0, le=1,
                        description="share of the items served to an annotator that are gold, while they "
                                    "have gold items left to answer")
    field: str = Field(default="gold", pattern=NAME_RE,
                       description="import column holding an item's gold answers (stripped from its data)")


class Redundancy(_Model):
    """Adaptive redundancy: ``min`` answers per item, more while the item is in doubt, at most ``max``."""

    min: int = Field(default=2, ge=1, le=MAX_OVERLAP)
    max: int = Field(default=7, ge=1, le=MAX_ANSWERS)
    confidence: float = Field(default=0.95, ge=0.5, lt=1,
                              description="stop asking once the label's posterior probability reaches this")
    budget: float | None = Field(default=None, ge=1, le=MAX_ANSWERS, description=(
        "answers per item on average, spent on the items in most doubt (instead of stopping at "
        "`confidence`, which is then not used)"))
    accuracy: float | None = Field(default=None, gt=0, lt=1, description=(
        "tune the stopping confidence on the project's gold items so that they would have been labelled "
        "this accurately (instead of a fixed `confidence`, which is used until there is enough gold)"))
    question: str | None = Field(default=None, description="the question whose answers decide (default: the "
                                                           "first single choice, rating or pairwise question)")
    pause_below: float | None = Field(default=None, ge=0, le=1, description=(
        "pause annotators whose estimated accuracy (no gold needed) falls below this share of the way from "
        "chance to the crowd's accuracy, after 10 answers (0.25 finds spammers; unset: never)"))
    second_opinions: Literal["anyone", "stronger_half"] = Field(default="anyone", description=(
        "who answers an item beyond its first `min` answers: anyone, or only annotators whose estimated "
        "accuracy is at or above the median of those with 10 answers (first answers still come from everyone)"))

    @model_validator(mode="after")
    def _range(self):
        if self.max < self.min:
            raise ValueError(f"redundancy: max ({self.max}) must be at least min ({self.min})")
        if self.budget is not None and self.accuracy is not None:
            raise ValueError("redundancy: give a budget or an accuracy to tune the confidence for, not both "
                             "(a budget does not stop at a confidence)")
        if self.budget is not None and not self.min <= self.budget <= self.max:
            raise ValueError(f"redundancy: budget ({self.budget}) must be between min ({self.min}) and "
                             f"max ({self.max}) answers per item")
        return self


class Qualification(_Model):
    """A test before the real work: the project's first ``size`` gold items (in import order)."""

    size: int = Field(default=10, ge=1, le=200, description="how many gold items the test asks")
    pass_mark: float = Field(default=0.8, gt=0, le=1, description="share of gold answers right to pass")
    retakes: int = Field(default=1, ge=0, le=100, description="tries allowed after a failed one")
    retake_after_hours: float = Field(default=24, ge=0, le=24 * 365, description="wait before a retake")


class Review(_Model):
    """Which submissions reviewers see: every one, a random sample, or those that disagree."""

    mode: Literal["all", "sample", "disagreement"] = "all"
    rate: float = Field(default=0.1, gt=0, le=1, description="share of submissions sampled (mode: sample)")
    lease_seconds: int = Field(default=600, ge=10, le=24 * 3600)


class Bonus(_Model):
    gold_accuracy_above: float = Field(ge=0, le=1, description="weekly gold accuracy that earns the bonus")
    min_gold_answers: int = Field(default=10, ge=1, description="gold answers needed in the week")
    amount: str = Field(description="the bonus, e.g. '5.00'")


class Pay(_Model):
    """What annotators earn. Amounts are decimal strings in ``currency`` ('0.10'), never floats."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    reward_per_item: str = Field(default="0", description="per accepted submission")
    hourly_rate: str = Field(default="0", description="per hour of active time on accepted submissions")
    bonus: Bonus | None = None
    auto_approve_hours: float = Field(default=72, ge=0, le=24 * 365,
                                      description="a submission not rejected by then is approved")
    min_fair_hourly: str | None = Field(default=None, description="flag annotators whose effective rate is lower")

    @model_validator(mode="after")
    def _amounts(self):
        for name in ("reward_per_item", "hourly_rate", "min_fair_hourly"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                d = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"pay.{name} must be a decimal amount such as '0.10', got {value!r}") from None
            if d < 0 or not d.is_finite():
                raise ValueError(f"pay.{name} cannot be negative")
        return self


class AutoLabel(_Model):
    """Auto-labelling with a guarantee: label items whose prediction clears a per-class threshold chosen so
    that the machine labels' accuracy is at least ``target_accuracy`` with ``confidence``
    (see :mod:`labelwright.assist.thresholds`)."""

    target_accuracy: float = Field(ge=0.5, lt=1, description="the accuracy machine labels must reach")
    confidence: float = Field(default=0.95, ge=0.5, lt=1,
                              description="how sure the lower bound on that accuracy must be")
    audit_rate: float = Field(default=0.05, ge=0, le=1,
                              description="share of machine labels sent to reviewers to check the estimate")
    validation_share: float = Field(default=0.1, gt=0, le=1,
                                    description="share of the items drawn at random as the validation sample "
                                                "(people label them first; the thresholds are chosen on them)")
    min_validation: int = Field(default=300, ge=20, description="the validation sample's smallest size")


class Assist(_Model):
    """The project assistant: a model that answers one categorical question (see docs/assist.md)."""

    question: str | None = Field(default=None, description="the question the assistant answers (default: the "
                                                           "first single choice, rating or pairwise question)")
    model: str = Field(default="builtin", description="builtin | an http(s) URL | python:package.module:attr")
    suggestions: bool = Field(default=True, description="show the assistant's answer pre-selected to people")
    suggestion_control: float = Field(default=0.0, ge=0, le=0.9,
                                      description="share of annotators never shown suggestions (the anchoring "
                                                  "control group)")
    order: Literal["import", "uncertainty"] = "import"
    auto_label: AutoLabel | None = None
    retrain_every: int = Field(default=50, ge=1, le=1_000_000,
                               description="retrain after this many new human labels")
    min_train: int = Field(default=20, ge=4, description="human labels needed before the first model")
    label_errors: bool = Field(default=True, description="send items whose label is probably wrong to the "
                                                         "check queue")
    llm_first: bool = Field(default=False, description="people get items an LLM annotator has answered first; "
                                                       "adaptive redundancy asks them only where it is in doubt")
    features: Literal["auto", "tfidf", "minilm"] = Field(default="auto", description="text features: auto uses "
                                                        "all-MiniLM-L6-v2 when installed, else TF-IDF")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v == "builtin" or v.startswith(("http://", "https://")):
            return v
        if re.match(r"^python:[A-Za-z_][\w.]*:[A-Za-z_]\w*$", v):
            return v
        raise ValueError(f"assist.model must be builtin, an http(s) URL or python:package.module:attr, got {v!r}")


class ProjectSchema(_Model):
    # built on first use, not at import: the question types (plugins among them) load then
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, max_length=200)
    slug: str | None = None
    description: str = ""
    instructions: str = Field(default="", description="Markdown shown above every item")
    overlap: int = Field(default=1, ge=1, le=MAX_OVERLAP)
    lease_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    history_size: int = Field(default=20, ge=0, le=1000,
                              description="how many of an annotator's last answers can be amended")
    id_field: str | None = Field(default=None, description="item field holding the external id")
    fields: list[DisplayField] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)
    gold: GoldSettings = Field(default_factory=GoldSettings)
    redundancy: Redundancy | None = None
    qualification: Qualification | None = None
    review: Review | None = None
    pay: Pay | None = None
    assist: Assist | None = None
    expires_at: float | None = Field(default=None, description="after this time no new work is handed out")
    truth_inference: Literal["default", "auto"] = Field(
        default="default", description="how categorical questions' labels are inferred from people's answers: "
        "default (Dawid-Skene with shrinkage) or auto (per question, the method that best predicts held-out "
        "answers and gold, named with its reason on the quality page and in the export's method; slower)")
    send_fields: Literal["shown", "all"] | list[str] = Field(
        default="shown", description="which item fields `next` sends to annotators: the display fields "
        "(shown), every stored field (all), or the display fields plus the ones listed")

    @model_validator(mode="before")
    @classmethod
    def _overlap_from_redundancy(cls, data):
        if isinstance(data, dict) and isinstance(data.get("redundancy"), dict):
            low = data["redundancy"].get("min", Redundancy.model_fields["min"].default)
            if data.get("overlap") is None:
                data = {**data, "overlap": low}
            elif data["overlap"] != low:
                raise ValueError(f"with adaptive redundancy, overlap is redundancy.min ({low}); "
                                 f"leave overlap out or set it to {low}")
        return data

    @field_validator("slug")
    @classmethod
    def _slug(cls, v):
        if v is not None and not SLUG_RE.match(v):
            raise ValueError("slug must be lower-case letters, digits and dashes (at most 63)")
        return v

    @model_validator(mode="after")
    def _refs(self) -> ProjectSchema:
        check_unique([f.name for f in self.fields], "fields")
        check_unique([q.name for q in self.questions], "questions")
        fields = {f.name: f for f in self.fields}
        for q in self.questions:
            q.check_fields(fields)
        if self.gold.field in fields:
            raise ValueError(f"gold.field {self.gold.field!r} is also a display field; name another column")
        if isinstance(self.send_fields, list):
            check_unique(self.send_fields, "send_fields")
            if self.gold.field in self.send_fields:
                raise ValueError(f"send_fields names gold.field {self.gold.field!r}: gold answers are never "
                                 "sent to annotators")
        if self.redundancy is not None:
            self._check_categorical(self.redundancy.question, "redundancy", "decide on")
        if self.assist is not None:
            self._check_assist(self.assist)
        return self

    def _check_categorical(self, name: str | None, block: str, purpose: str) -> None:
        """``block.question`` names a single choice, rating or pairwise question (or, left out, one exists)."""
        if name is None:
            if not any(is_categorical(q) for q in self.questions):
                raise ValueError(f"{block} needs a single choice, rating or pairwise question to {purpose}")
            return
        q = next((q for q in self.questions if q.name == name), None)
        if q is None:
            raise ValueError(f"{block}.question {name!r} is not one of the questions")
        if not is_categorical(q):
            raise ValueError(f"{block}.question {name!r} is a {q.type} question; it must be "
                             "single choice, rating or pairwise")

    def _check_assist(self, a: Assist) -> None:
        self._check_categorical(a.question, "assist", "answer")
        if a.llm_first and self.redundancy is None:
            raise ValueError("assist.llm_first needs adaptive redundancy (a redundancy block, e.g. min: 1): it "
                             "decides where the LLM's answer is in doubt and people are needed")
        if a.llm_first and a.order == "uncertainty":
            raise ValueError("assist.llm_first and assist.order: uncertainty both set the queue's order; "
                             "choose one")

    # ---- derived --------------------------------------------------------------------------

    def field(self, name: str) -> DisplayField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def question(self, name: str):
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)

    def redundancy_question(self):
        """The question adaptive redundancy decides on, or None when the project has fixed overlap."""
        if self.redundancy is None:
            return None
        if self.redundancy.question:
            return self.question(self.redundancy.question)
        return next(q for q in self.questions if is_categorical(q))

    def assist_question(self):
        """The question the assistant answers, or None when the project has no assist block."""
        if self.assist is None:
            return None
        if self.assist.question:
            return self.question(self.assist.question)
        return next(q for q in self.questions if is_categorical(q))

    def slugified(self) -> str:
        if self.slug:
            return self.slug
        s = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:63]
        return s or "project"

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    # ---- items ----------------------------------------------------------------------------

    def sent_data(self, data: dict) -> dict:
        """The part of an item's ``data`` that annotators are sent (``send_fields``): by default only the
        display fields, so answer keys and personal data kept with an item stay on the server."""
        if self.send_fields == "all":
            return {k: v for k, v in data.items() if k != self.gold.field}
        keep = [f.name for f in self.fields] + (self.send_fields if isinstance(self.send_fields, list) else [])
        return {k: data[k] for k in keep if k in data}

    def validate_item(self, data: Any, *, file: str | None = None, line: int | None = None) -> dict:
        """Check one item's data against the display fields; return it unchanged.

        Raises :class:`ValidationError` naming the file, line and field.
        """
        if not isinstance(data, dict):
            raise ValidationError(f"an item must be an object, got {kind_of(data)}", file=file, line=line)
        for key, value in data.items():  # any field, shown or not: JSON has no NaN or Infinity
            if type(value) is not str and (where := nonfinite_path(value, str(key))) is not None:
                raise ValidationError(NONFINITE_MESSAGE, field=where, file=file, line=line)
        for f in self.fields:
            value = data.get(f.name)
            if value is None:
                if f.required:
                    raise ValidationError("missing required field", field=f.name, file=file, line=line)
                continue
            if f.type == "chat":
                _check_chat(value, f.name, file, line)
            elif not isinstance(value, str):
                raise ValidationError(f"expected a string for a {f.type} field, got {kind_of(value)}",
                                      field=f.name, file=file, line=line)
        for q in self.questions:  # what a question type asks of its items (a chat question's roles)
            try:
                q.check_data(data)
            except ValidationError as e:
                raise ValidationError(e.message, field=e.field, file=file, line=line) from None
        if self.id_field is not None:
            ext = data.get(self.id_field)
            if ext is None or ext == "":
                raise ValidationError("missing item id", field=self.id_field, file=file, line=line)
            if not isinstance(ext, (str, int)) or isinstance(ext, bool):
                raise ValidationError(f"an item id must be a string or integer, got {kind_of(ext)}",
                                      field=self.id_field, file=file, line=line)
        return data

    # ---- answers --------------------------------------------------------------------------

    def checks_items(self) -> bool:
        """Whether an answer of this schema is checked against its item (a question type with
        :meth:`~labelwright.questions.QuestionType.check_item`): callers read the item's data only then."""
        return any(q.checks_item() for q in self.questions)

    def validate_answers(self, answers: Any, item: Mapping[str, Any] | None = None) -> dict:
        """Check a submission's answers; return them normalised. With ``item`` (the item's data) each
        answer is also checked against it (:meth:`QuestionType.check_item`: spans within the text, boxes
        within the image).

        Raises :class:`ValidationError` with ``field`` set to the question's name (or a path below it).
        """
        if not isinstance(answers, dict):
            raise ValidationError(f"answers must be an object keyed by question name, got {kind_of(answers)}",
                                  field="answers")
        known = {q.name for q in self.questions}
        for key in answers:
            if key not in known:
                raise ValidationError(f"unknown question {key!r}; this project asks {sorted(known)}",
                                      field=str(key))
        out: dict[str, Any] = {}
        for q in self.questions:
            value = answers.get(q.name)
            if value is None or value == "" or value == []:
                value = q.empty_answer(value)
                if value is not NO_ANSWER:
                    out[q.name] = value
                continue
            out[q.name] = q.validate_answer(value)
            if item is not None:
                q.check_item(value, item)
        return out

    def validate_gold(self, answers: Any, *, file: str | None = None, line: int | None = None,
                      item: Mapping[str, Any] | None = None) -> dict:
        """Check an item's gold answers: any non-empty subset of the questions (free-text questions
        usually have none), against the item's data when ``item`` is given (as :meth:`validate_answers`).
        Raises :class:`ValidationError` with ``field`` ``gold.<question>`` (or a path below it)."""
        where = self.gold.field
        if not isinstance(answers, dict) or not answers:
            raise ValidationError("gold answers must be a non-empty object keyed by question name",
                                  field=where, file=file, line=line)
        known = {q.name: q for q in self.questions}
        out = {}
        for key, value in answers.items():
            q = known.get(key)
            if q is None:
                raise ValidationError(f"unknown question {key!r}; this project asks {sorted(known)}",
                                      field=f"{where}.{key}", file=file, line=line)
            try:
                given = q.from_text(value)
                out[key] = q.validate_answer(given)
                if item is not None:
                    q.check_item(given, item)
            except ValidationError as e:
                raise ValidationError(e.message, field=f"{where}.{e.field or key}", file=file, line=line) from None
        return {q.name: out[q.name] for q in self.questions if q.name in out}


NONFINITE_MESSAGE = ("NaN and Infinity are not JSON numbers and cannot be stored: leave the field out (or use "
                     "null) for a missing value")


def nonfinite_path(value: Any, path: str) -> str | None:
    """Where the first NaN or infinite number in ``value`` is (``path``, ``path.key``, ``path[2]``), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for k, v in value.items():
            if (where := nonfinite_path(v, f"{path}.{k}")) is not None:
                return where
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if (where := nonfinite_path(v, f"{path}[{i}]")) is not None:
                return where
    return None


def _check_chat(value, name, file, line):
    if not isinstance(value, list):
        raise ValidationError(f"a chat field must be a list of {{role, content}} turns, got {kind_of(value)}",
                              field=name, file=file, line=line)
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or not isinstance(turn.get("role"), str) \
                or not isinstance(turn.get("content"), str):
            raise ValidationError(f"turn {i} must be an object with string 'role' and 'content'",
                                  field=f"{name}[{i}]", file=file, line=line)


def is_categorical(question: QuestionType) -> bool:
    """Whether a question's answers are one of a fixed set of labels (what truth inference aggregates)."""
    return question.categorical


def label_values(question: QuestionType) -> list:
    """The labels a categorical question's answers take, in declared order."""
    return question.label_values()


def answer_label(question: QuestionType, answer):
    """The categorical label of one answer (a pairwise answer's choice; otherwise the answer itself)."""
    if answer is None:
        return None
    return question.answer_label(answer)


def _rebuild() -> None:
    """A question type joined or left the registry: validate schemas with the types registered now."""
    ProjectSchema.model_rebuild(force=True)


registry.on_change(_rebuild)


# ---- parsing --------------------------------------------------------------------------------


def parse_schema(source: str | dict | Path, *, file: str | None = None) -> ProjectSchema:
    """Parse a schema from a dict, a YAML/JSON string, or a file path."""
    if isinstance(source, Path):
        file = file or str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as e:
            raise ValidationError(f"cannot read schema: {e.strerror}", file=file) from None
        source = text
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source) if not source.lstrip().startswith("{") else json.loads(source)
        except (yaml.YAMLError, json.JSONDecodeError) as e:
            line = None
            mark = getattr(e, "problem_mark", None)
            if mark is not None:
                line = mark.line + 1
            elif isinstance(e, json.JSONDecodeError):
                line = e.lineno
            raise ValidationError(f"not valid YAML/JSON: {getattr(e, 'problem', None) or e}", file=file,
                                  line=line) from None
        except RecursionError:  # the parsers recurse once per level of nesting
            raise ValidationError("not a schema: lists or mappings nested too deeply", file=file) from None
    else:
        data = source
    if not isinstance(data, dict):
        raise ValidationError("a schema must be a mapping with name, fields and questions", file=file)
    try:
        return ProjectSchema.model_validate(data)
    except PydanticValidationError as e:
        err = e.errors()[0]
        loc = _loc(data, err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ValidationError(msg, field=loc or None, file=file) from None


def _loc(data, loc) -> str:
    """Turn pydantic's location into a readable path: questions[1] (spam).options."""
    parts: list[str] = []
    node = data
    for p in loc:
        if isinstance(p, int):
            label = f"[{p}]"
            try:
                node = node[p]
                if isinstance(node, dict) and "name" in node:
                    label += f" ({node['name']})"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            if isinstance(node, dict) and node.get("type") == p and p in registry.question_types():
                continue  # pydantic's discriminator tag, not a user-visible key
            parts.append(("." if parts else "") + str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return "".join(parts)
