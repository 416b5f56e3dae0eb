"""The LLM annotator asks each question through its question type (QuestionType.llm_instructions,
llm_json_schema, from_llm): labelwright/assist/llm.py names no type, built-ins keep their words, a code task
has its own, and a plugin type without the hooks is still asked (its settings shown, any JSON value
accepted, its answer validated as a person's)."""

from __future__ import annotations

import ast
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from labelwright.assist import llm
from labelwright.errors import ValidationError
from labelwright.questions import registry
from labelwright.schema import parse_schema

LLM_SOURCE = Path(llm.__file__).read_text()

SCHEMA = parse_schema({
    "name": "All", "fields": [{"name": "a"}, {"name": "b"}, {"name": "src"}, {"name": "tests"}],
    "questions": [
        {"name": "one", "type": "single_choice", "options": [{"value": "pos", "label": "Positive"}, "neg"]},
        {"name": "many", "type": "multiple_choice", "options": ["x", "y", "z"], "max_selected": 2,
         "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 3, "max_label": "great"},
        {"name": "pair", "type": "pairwise", "a": "a", "b": "b", "rationale": "none"},
        {"name": "order", "type": "ranking", "candidates": ["a", "b"]},
        {"name": "note", "type": "text", "max_length": 50, "required": False},
        {"name": "verdict", "type": "code", "code": "src", "tests": "tests", "required": False},
    ],
})


def test_llm_py_names_no_question_type():
    tree = ast.parse(LLM_SOURCE)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imported.isdisjoint({"SingleChoice", "MultipleChoice", "Rating", "Pairwise", "Ranking", "FreeText",
                                "CodeTask", "Spans", "Boxes", "PAIRWISE_CHOICES"})
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "isinstance"]
    assert all(not (isinstance(c.args[1], ast.Name) and c.args[1].id[0].isupper() and c.args[1].id not in
                    {"dict", "list", "str"}) for c in calls)


def test_each_type_words_its_question_in_the_prompt_and_the_schema():
    prompt = llm.system_prompt(SCHEMA)
    assert '    - "pos" (Positive)\n    - "neg"' in prompt
    assert '"many": [<distinct values from "x", "y", "z">] or null' in prompt and "choose at most 2" in prompt
    assert "an integer from 1 to 3 (great)" in prompt and '"stars": <integer 1-3>' in prompt
    assert '"pair": {"choice": <one of "A", "B", "tie", "both_bad">}' in prompt
    assert 'rank the candidate fields "a", "b"' in prompt and "free text, at most 50 characters" in prompt
    assert 'judge the code in field "src" against the tests in field "tests"' in prompt
    assert '"verdict": {"verdict": <one of "pass", "fail", "needs_fix">' in prompt
    props = llm.answer_schema(SCHEMA)["properties"]
    assert props["one"] == {"type": "string", "enum": ["pos", "neg"]}
    assert props["many"] == {"anyOf": [{"type": "array", "items": {"type": "string", "enum": ["x", "y", "z"]},
                                        "uniqueItems": True, "maxItems": 2}, {"type": "null"}]}
    assert props["pair"]["required"] == ["choice"] and props["order"]["minItems"] == 2
    assert props["verdict"]["anyOf"][0]["properties"]["verdict"]["enum"] == ["pass", "fail", "needs_fix"]


def test_each_type_reads_the_models_words():
    reply = ('{"one": "positive", "many": ["X", "z"], "stars": 3, "pair": {"choice": "both bad"}, '
             '"order": ["b", "a"], "note": null, "verdict": "Needs fix"}')
    assert llm.parse_answer(SCHEMA, reply) == {
        "one": "pos", "many": ["x", "z"], "stars": 3, "pair": {"choice": "both_bad"}, "order": ["b", "a"],
        "verdict": {"verdict": "needs_fix"}}
    with pytest.raises(ValidationError) as e:
        llm.parse_answer(SCHEMA, '{"one": "pos", "stars": 3, "pair": "A", "order": ["a", "b"], "verdict": "maybe"}')
    assert e.value.field == "verdict.verdict"


@pytest.fixture
def yes_no():
    cls = registry.load(EntryPoint("yes_no", "tests.questions.yes_no:YesNo", registry.GROUP))
    registry.register(cls)
    yield cls
    registry.unregister("yes_no")


def test_a_type_without_the_hooks_is_asked_through_the_defaults(yes_no):
    schema = parse_schema({"name": "Tone", "fields": [{"name": "text"}],
                           "questions": [{"name": "ok", "type": "yes_no", "comment": False}]})
    prompt = llm.system_prompt(schema)
    assert 'answer with the JSON value a yes_no question takes; its settings: {"comment": false}' in prompt
    assert '"ok": <JSON value>' in prompt
    assert llm.answer_schema(schema)["properties"]["ok"] == {}
    assert llm.parse_answer(schema, '{"ok": {"answer": "yes"}}') == {"ok": {"answer": "yes"}}
    with pytest.raises(ValidationError) as e:
        llm.parse_answer(schema, '{"ok": {"answer": "maybe"}}')
    assert e.value.field == "ok.answer"
