"""Labelling functions: what a rule is, checked, and turned into a function ``item data -> label or None``.

Three kinds (docs/quality.md, "Rules as annotators"):

* ``keyword``: a list of keywords or phrases; the rule votes its label when any of them occurs in the
  chosen field as a whole word (case-insensitive: ``check out`` matches "Check out my channel", ``sub``
  does not match "subscribe").
* ``regex``: a regular expression searched in the chosen field; it votes its label when it matches.
* ``python``: a function installed by a plugin package under the entry point group
  :data:`GROUP` (``labelwright.labelling_functions``), named by its entry point. It is called with the
  item's data (a dict) and returns a label of the question, or ``None`` to abstain.

Regular expressions are item data's worst enemy: a pattern such as ``(a|aa)+$`` takes exponential time on
some texts. They are run with the ``regex`` package's ``timeout`` (:data:`MATCH_TIMEOUT_S` per item; it is checked
only now and then, so a search that ends over four times later counts as timed out too), over
at most :data:`MAX_TEXT` characters of the field; a pattern longer than :data:`MAX_PATTERN` is refused,
and so is one that already times out on :data:`_PROBES` (texts that make backtracking patterns explode).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import regex

from labelwright.errors import ValidationError

GROUP = "labelwright.labelling_functions"
KINDS = ("keyword", "regex", "python")
MAX_PATTERN = 300  # characters of a regular expression
MAX_KEYWORDS = 200  # keywords in one keyword rule
MAX_KEYWORD = 100  # characters of one keyword
MAX_TEXT = 10_000  # characters of the field a keyword or regex rule reads (the rest is not searched)
MATCH_TIMEOUT_S = 0.05  # per item and rule
NAME_MAX = 64
# Texts on which catastrophically backtracking patterns explode: a long run of one character with a
# mismatch at the end, in the shapes that (x+)+, (x|xx)+ and (\w+\s?)+ patterns stumble over.
_PROBES = ("a" * 3000 + "!", "1" * 3000 + "!", "word " * 600 + "!", "aA1 " * 750 + "!", "x" * 3000 + "\n")

LabellingFunction = Callable[[dict], Any]


class RuleTimeout(Exception):
    """A regular expression took longer than :data:`MATCH_TIMEOUT_S` on one item."""


@dataclass(frozen=True)
class RuleSpec:
    """A rule as its owner made it: ``pattern`` is the regex, the keywords (one per line) or the entry
    point's name; ``label`` is ``None`` for a Python function (it returns its own labels)."""

    name: str
    kind: str
    question: str
    field: str | None
    pattern: str
    label: str | None


def parse_keywords(text: str) -> list[str]:
    """Keywords from what a person typed: one per line or comma-separated, trimmed, empty ones dropped,
    repeats (ignoring case) dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for part in text.replace(",", "\n").splitlines():
        word = " ".join(part.split())
        if word and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    return out


def keyword_pattern(keywords: list[str]) -> str:
    r"""The regular expression of a keyword list: any keyword as a whole word (not inside a longer word),
    the spaces of a phrase matching any run of white space."""
    alternatives = sorted((r"\s+".join(regex.escape(p) for p in k.split()) for k in keywords), key=len, reverse=True)
    return r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"


def python_functions() -> dict[str, EntryPoint]:
    """The installed labelling functions: ``{entry point name: entry point}``."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_function(name: str) -> LabellingFunction:
    """The function installed under entry point ``name`` of :data:`GROUP`."""
    ep = python_functions().get(name)
    if ep is None:
        known = sorted(python_functions())
        raise ValidationError(f"no labelling function {name!r} is installed (entry point group {GROUP!r}); "
                              f"installed: {known or 'none'}", field="pattern")
    try:
        fn = ep.load()
    except Exception as e:  # a plugin's import error, whatever it is, is the plugin's: say which
        raise ValidationError(f"entry point {ep.name} = {ep.value!r} cannot be loaded: {type(e).__name__}: {e}",
                              field="pattern") from None
    if not callable(fn):
        raise ValidationError(f"entry point {ep.name} = {ep.value!r} is not a function", field="pattern")
    return fn


def _compile(pattern: str, flags: int = 0) -> regex.Pattern:
    try:
        compiled = regex.compile(pattern, flags)
    except regex.error as e:
        raise ValidationError(f"not a valid regular expression: {e}", field="pattern") from None
    for probe in _PROBES:
        # The thread's CPU time, not the clock's: a busy machine that pauses this thread must not make a good
        # pattern look slow. More than one item's allowance on one probe is too slow: regex's guards make some
        # nested repeats polynomial rather than exponential, ~0.15 s of CPU here for ^(\w+\s?)+$, which is
        # still seconds on a 10,000-character field.
        started = time.thread_time()
        try:
            compiled.search(probe, timeout=MATCH_TIMEOUT_S * 4)
            slow = time.thread_time() - started > MATCH_TIMEOUT_S  # regex checks its timeout only now and then
        except TimeoutError:
            slow = True
        if slow:
            raise ValidationError("the regular expression backtracks catastrophically (it took too long on a "
                                  "long run of one character): avoid nested repeats such as (a+)+ or (a|aa)+",
                                  field="pattern") from None
    return compiled


def check(spec: RuleSpec, questions: dict[str, Any], fields: set[str]) -> RuleSpec:
    """``spec`` checked against the project (``questions``: name -> question type; ``fields``: the item
    fields a rule may read) and normalised; raises :class:`ValidationError` naming the form field."""
    name = (spec.name or "").strip()
    if not name or len(name) > NAME_MAX or any(c in name for c in "/\\:\n\t"):
        raise ValidationError(f"a rule's name is 1-{NAME_MAX} characters, without '/', '\\' or ':'", field="name")
    if spec.kind not in KINDS:
        raise ValidationError(f"kind is one of {list(KINDS)}, not {spec.kind!r}", field="kind")
    q = questions.get(spec.question)
    if q is None:
        raise ValidationError(f"question {spec.question!r} is not one a rule can answer; rules answer the "
                              f"single-label categorical questions: {sorted(questions) or 'none here'}",
                              field="question")
    pattern = (spec.pattern or "").strip()
    if spec.kind == "python":
        load_function(pattern)
        return RuleSpec(name, spec.kind, spec.question, None, pattern, None)
    if spec.field not in fields:
        raise ValidationError(f"field {spec.field!r} is not an item field of this project; fields: {sorted(fields)}",
                              field="field")
    values = {str(v): v for v in q.label_values()}
    if spec.label is None or str(spec.label) not in values:
        raise ValidationError(f"label {spec.label!r} is not one of question {q.name!r}'s: {list(values)}",
                              field="label")
    if spec.kind == "keyword":
        keywords = parse_keywords(pattern)
        if not keywords:
            raise ValidationError("give at least one keyword (one per line, or separated by commas)", field="pattern")
        if len(keywords) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD for k in keywords):
            raise ValidationError(f"at most {MAX_KEYWORDS} keywords of at most {MAX_KEYWORD} characters each",
                                  field="pattern")
        pattern = "\n".join(keywords)
        _compile(keyword_pattern(keywords), regex.IGNORECASE)
    else:
        if not pattern:
            raise ValidationError("give a regular expression", field="pattern")
        if len(pattern) > MAX_PATTERN:
            raise ValidationError(f"a regular expression is at most {MAX_PATTERN} characters (this one has "
                                  f"{len(pattern)})", field="pattern")
        _compile(pattern)
    return RuleSpec(name, spec.kind, spec.question, spec.field, pattern, str(spec.label))


def make_function(spec: RuleSpec, question: Any) -> LabellingFunction:
    """The function of a checked rule: item data -> a label of ``question`` or ``None`` (abstain).

    A keyword or regex rule raises :class:`RuleTimeout` when its pattern takes too long on one item; a
    Python function raises whatever it raises, and :class:`ValidationError` when it returns a label the
    question does not have."""
    values = {str(v): v for v in question.label_values()}
    if spec.kind == "python":
        fn = load_function(spec.pattern)

        def python(data: dict) -> Any:
            got = fn(data)
            if got is None:
                return None
            if got in question.label_values():
                return got
            if str(got) in values:
                return values[str(got)]
            raise ValidationError(f"returned {got!r}, not a label of question {question.name!r} "
                                  f"({list(values)}) or None")
        return python
    if spec.kind == "keyword":
        compiled = regex.compile(keyword_pattern(spec.pattern.splitlines()), regex.IGNORECASE)
    else:
        compiled = regex.compile(spec.pattern)
    label, field = values[str(spec.label)], spec.field

    def search(data: dict) -> Any:
        text = data.get(field) if field is not None else None
        if text is None:
            return None
        text = text if isinstance(text, str) else str(text)
        started = time.perf_counter()
        try:
            found = compiled.search(text[:MAX_TEXT], timeout=MATCH_TIMEOUT_S)
        except TimeoutError:
            raise RuleTimeout(f"the pattern took over {MATCH_TIMEOUT_S} s") from None
        if time.perf_counter() - started > MATCH_TIMEOUT_S * 4:  # finished, but late: the same trouble
            raise RuleTimeout(f"the pattern took over {MATCH_TIMEOUT_S * 4} s")
        return label if found else None
    return search
