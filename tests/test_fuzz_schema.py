"""The schema validator fuzzed: random and malformed schemas (dicts, YAML and JSON text), items and answers.

Whatever comes in, :func:`labelwright.schema.parse_schema`, :meth:`ProjectSchema.validate_item`,
``validate_answers`` and ``validate_gold`` either succeed or raise :class:`labelwright.errors.ValidationError`
with a message (never a pydantic error, a TypeError, a RecursionError...). What they accept is stable: a
parsed schema parses again from its own JSON to the same schema, and cleaned answers validate to themselves.

``LABELWRIGHT_FUZZ_EXAMPLES`` runs more examples.
"""

from __future__ import annotations

import json
import os

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from labelwright.errors import ValidationError
from labelwright.schema import ProjectSchema, parse_schema

FUZZ_EXAMPLES = int(os.environ.get("LABELWRIGHT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES or 40, derandomize=not FUZZ_EXAMPLES, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))

NAMES = st.sampled_from(["text", "a", "b", "c", "spam", "q", "id", "gold", "x-y", "1bad", "", "A" * 70, "é"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.integers(-3, 12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), NAMES)
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8) | NAMES, inner,
                                                                        max_size=4)), max_leaves=12)


def _maybe(value_strategy):
    """A plausible value most of the time, anything at all otherwise."""
    return st.one_of(value_strategy, value_strategy, JSONISH)


FIELD = st.fixed_dictionaries({"name": _maybe(NAMES)}, optional={
    "type": _maybe(st.sampled_from(["text", "markdown", "image", "chat", "video"])),
    "label": _maybe(st.text(max_size=10)), "required": _maybe(st.booleans())})
OPTIONS = _maybe(st.lists(st.one_of(NAMES, st.fixed_dictionaries({"value": NAMES}, optional={"label": NAMES})),
                          max_size=5))
QUESTION = st.fixed_dictionaries({"name": _maybe(NAMES), "type": _maybe(st.sampled_from(
    ["single_choice", "multiple_choice", "rating", "pairwise", "ranking", "text", "essay"]))}, optional={
    "options": OPTIONS, "min": _maybe(st.integers(-3, 30)), "max": _maybe(st.integers(-3, 30)),
    "a": _maybe(NAMES), "b": _maybe(NAMES), "candidates": _maybe(st.lists(NAMES, max_size=10)),
    "rationale": _maybe(st.sampled_from(["none", "optional", "required", "maybe"])),
    "min_selected": _maybe(st.integers(-1, 6)), "max_selected": _maybe(st.integers(-1, 6)),
    "prefill": _maybe(NAMES), "max_length": _maybe(st.integers(-1, 50)), "required": _maybe(st.booleans())})
SCHEMA = st.fixed_dictionaries({
    "name": _maybe(st.text(max_size=20)), "fields": _maybe(st.lists(FIELD, max_size=4)),
    "questions": _maybe(st.lists(QUESTION, max_size=4))}, optional={
    "slug": _maybe(st.from_regex(r"[a-z0-9][a-z0-9\-]{0,10}", fullmatch=True)),
    "overlap": _maybe(st.integers(-1, 12)), "id_field": _maybe(NAMES), "lease_seconds": _maybe(st.integers(0, 10**6)),
    "gold": _maybe(st.fixed_dictionaries({}, optional={"rate": st.floats(-1, 2), "field": NAMES})),
    "redundancy": _maybe(st.fixed_dictionaries({}, optional={
        "min": st.integers(0, 10), "max": st.integers(0, 30), "confidence": st.floats(0, 1.5), "question": NAMES})),
    "qualification": _maybe(st.fixed_dictionaries({}, optional={
        "size": st.integers(0, 300), "pass_mark": st.floats(-1, 2)})),
    "review": _maybe(st.fixed_dictionaries({}, optional={"mode": st.sampled_from(["sample", "all", "x"]),
                                                         "rate": st.floats(-1, 2)})),
    "expires_at": _maybe(st.floats(allow_nan=True)), "history_size": _maybe(st.integers(-2, 10**4)),
    "send_fields": _maybe(st.lists(NAMES, max_size=3)), "instructions": _maybe(st.text(max_size=30)),
    "assist": JSONISH, "pay": JSONISH, "unknown_key": JSONISH})


def _parse(source) -> ProjectSchema | None:
    try:
        schema = parse_schema(source)
    except ValidationError as e:
        assert e.message.strip(), "an error without a message"
        return None
    assert isinstance(schema, ProjectSchema)
    again = parse_schema(schema.to_json())  # what was accepted is accepted again, unchanged
    assert again.model_dump() == schema.model_dump()
    return schema


@FUZZ
@given(SCHEMA)
def test_random_schema_dicts_parse_or_fail_cleanly(data):
    _parse(data)


@FUZZ
@given(JSONISH)
def test_anything_as_a_schema_fails_cleanly(data):
    _parse(data)


@FUZZ
@given(SCHEMA, st.sampled_from(["yaml", "json"]), st.integers(0, 40), st.text(max_size=3))
def test_schema_text_cut_or_garbled_fails_cleanly(data, kind, cut, junk):
    """A schema as YAML or JSON text, whole, cut short, or with a few characters spliced in."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True) if kind == "yaml" else json.dumps(data)
    except (ValueError, yaml.YAMLError):
        return
    for source in (text, text[:len(text) * cut // 40], text[:cut] + junk + text[cut:]):
        _parse(source)


@FUZZ
@given(st.text(max_size=200))
def test_random_text_as_a_schema_fails_cleanly(text):
    _parse(text)


@pytest.mark.parametrize("source", [
    "{" + '"a": [' * 50_000, "[" * 50_000, "a: " + "[" * 50_000, "- " * 20_000 + "x", "{" * 50_000,
    "a: &a [1]\nb: *a\n" + "\n".join(f"l{k}: &l{k} [*l{k - 1}, *l{k - 1}]" for k in range(1, 25)).replace("*l0", "*a"),
    "!!python/object/apply:os.system ['true']", "name: !!binary aGVsbG8=\nfields: []\nquestions: []",
    "name: x\nfields: !!set {a, b}\nquestions: []", "\x00\x01\x02", "name: x\n\tfields: []",
    "name: 2024-01-01\nfields: [{name: text}]\nquestions: [{name: q, type: text}]",
    "name: x\nfields: [{name: text}]\nquestions: [{name: q, type: rating, min: 1, max: 1e400}]",
    '{"name": "x", "fields": [{"name": "text"}], "questions": [{"name": "q", "type": "rating", "max": NaN}]}',
])
def test_hostile_schema_text_fails_cleanly(source):
    """Nesting deep enough to exhaust the parser's recursion, YAML tags, aliases, bytes, NaN."""
    _parse(source)


FULL = parse_schema({
    "name": "all question types", "id_field": "id",
    "fields": [{"name": "a"}, {"name": "b"}, {"name": "c", "type": "markdown"}, {"name": "talk", "type": "chat"},
               {"name": "pic", "type": "image", "required": False}],
    "questions": [
        {"name": "topic", "type": "single_choice", "options": ["x", "y", {"value": "z", "label": "Zed"}]},
        {"name": "tags", "type": "multiple_choice", "options": ["t1", "t2", "t3"], "max_selected": 2,
         "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
        {"name": "pref", "type": "pairwise", "a": "a", "b": "b", "rationale": "required"},
        {"name": "order", "type": "ranking", "candidates": ["a", "b", "c"]},
        {"name": "fix", "type": "text", "prefill": "a", "required": False, "max_length": 20},
    ],
})
ANSWER = st.one_of(JSONISH, st.sampled_from(["x", "z", "t1", "t2", "t9", "A", "B", "tie", "a", "b", "c"]),
                   st.integers(-2, 8), st.lists(st.sampled_from(["t1", "t2", "t3", "a", "b", "c", "x"]), max_size=4),
                   st.fixed_dictionaries({}, optional={"choice": st.sampled_from(["A", "B", "tie", "both_bad", "C"]),
                                                       "rationale": st.one_of(st.text(max_size=5), JSONISH)}))
ANSWERS = st.one_of(JSONISH, st.dictionaries(st.sampled_from(
    ["topic", "tags", "stars", "pref", "order", "fix", "other"]), ANSWER, max_size=7))


@FUZZ
@given(ANSWERS)
def test_random_answers_validate_or_fail_cleanly(answers):
    try:
        clean = FULL.validate_answers(answers)
    except ValidationError as e:
        assert e.message.strip()
        return
    assert isinstance(clean, dict)
    assert FULL.validate_answers(clean) == clean  # cleaned answers are a fixed point
    try:
        FULL.validate_gold(clean)
    except ValidationError as e:
        assert e.message.strip()


CHAT = st.lists(st.fixed_dictionaries({"role": NAMES, "content": st.text(max_size=5)}), max_size=2)
ITEM_KEYS = st.sampled_from(["id", "a", "b", "c", "talk", "pic", "gold", "zz"])


@FUZZ
@given(st.one_of(JSONISH, st.dictionaries(ITEM_KEYS, st.one_of(JSONISH, CHAT), max_size=8)))
def test_random_items_validate_or_fail_cleanly(item):
    try:
        clean = FULL.validate_item(item, file="items.jsonl", line=3)
    except ValidationError as e:
        assert e.message.strip() and e.line == 3
        return
    assert isinstance(clean, dict)
    json.dumps(clean, allow_nan=False)  # what is stored is JSON
