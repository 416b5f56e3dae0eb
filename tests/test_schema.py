"""The schema module: validating project schemas, items and answers (no database)."""

from pathlib import Path

import pytest

from labelwright.errors import ValidationError
from labelwright.schema import parse_schema

FULL = {
    "name": "Everything",
    "fields": [
        {"name": "prompt", "type": "chat"},
        {"name": "a", "type": "markdown"},
        {"name": "b", "type": "markdown"},
        {"name": "c", "type": "text"},
        {"name": "pic", "type": "image", "required": False},
    ],
    "questions": [
        {"name": "topic", "type": "single_choice", "options": ["x", "y", {"value": "z", "label": "Zed"}]},
        {"name": "tags", "type": "multiple_choice", "options": ["t1", "t2", "t3"], "max_selected": 2,
         "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "min_label": "bad", "max_label": "good"},
        {"name": "pref", "type": "pairwise", "a": "a", "b": "b", "rationale": "required"},
        {"name": "order", "type": "ranking", "candidates": ["a", "b", "c"]},
        {"name": "fix", "type": "text", "prefill": "a", "required": False, "max_length": 20},
    ],
}
GOOD = {"topic": "z", "tags": ["t2", "t1"], "stars": 4, "pref": {"choice": "tie", "rationale": " same "},
        "order": ["c", "a", "b"], "fix": "better"}


def schema():
    return parse_schema(FULL)


def test_full_schema_parses_and_normalises_options():
    s = schema()
    assert s.question("topic").values == ["x", "y", "z"]
    assert s.question("topic").options[2].text == "Zed"
    assert s.overlap == 1 and s.lease_seconds == 600
    assert s.slugified() == "everything"


def test_valid_answers_are_normalised():
    out = schema().validate_answers(GOOD)
    assert out["tags"] == ["t1", "t2"]  # schema order
    assert out["pref"] == {"choice": "tie", "rationale": "same"}
    assert out["stars"] == 4


@pytest.mark.parametrize("answers, field, words", [
    ({**GOOD, "topic": "w"}, "topic", "'w' is not an option"),
    ({k: v for k, v in GOOD.items() if k != "topic"}, "topic", "required"),
    ({**GOOD, "tags": ["t1", "t2", "t3"]}, "tags", "at most 2"),
    ({**GOOD, "tags": ["t1", "t1"]}, "tags", "twice"),
    ({**GOOD, "tags": "t1"}, "tags", "list"),
    ({**GOOD, "stars": 6}, "stars", "outside the scale 1..5"),
    ({**GOOD, "stars": 2.5}, "stars", "integer"),
    ({**GOOD, "stars": True}, "stars", "integer"),
    ({**GOOD, "pref": {"choice": "C"}}, "pref.choice", "choice must be one of"),
    ({**GOOD, "pref": {"choice": "A"}}, "pref.rationale", "rationale is required"),
    ({**GOOD, "pref": {"choice": "A", "rationale": "x", "extra": 1}}, "pref", "unexpected keys"),
    ({**GOOD, "order": ["a", "b"]}, "order", "exactly once"),
    ({**GOOD, "order": ["a", "a", "b"]}, "order", "exactly once"),
    ({**GOOD, "fix": "x" * 21}, "fix", "at most 20"),
    ({**GOOD, "bogus": 1}, "bogus", "unknown question"),
])
def test_bad_answers_name_the_field(answers, field, words):
    with pytest.raises(ValidationError) as e:
        schema().validate_answers(answers)
    assert e.value.field == field
    assert words in e.value.message
    assert e.value.status == 422


def test_optional_questions_may_be_omitted():
    out = schema().validate_answers({k: v for k, v in GOOD.items() if k not in ("tags", "fix")})
    assert "fix" not in out


def test_pairwise_accepts_plain_choice_string():
    s = parse_schema({"name": "p", "fields": [{"name": "a"}, {"name": "b"}],
                      "questions": [{"name": "p", "type": "pairwise", "a": "a", "b": "b"}]})
    assert s.validate_answers({"p": "both_bad"}) == {"p": {"choice": "both_bad"}}


@pytest.mark.parametrize("change, field, words", [
    ({"questions": []}, "questions", "at least 1"),
    ({"overlap": 10}, "overlap", "less than or equal to 9"),
    ({"overlap": 0}, "overlap", "greater than or equal to 1"),
    ({"slug": "Bad Slug"}, "slug", "lower-case"),
    ({"fields": [{"name": "a", "type": "video"}]}, "fields[0] (a).type", "Input should be"),
    ({"questions": [{"name": "q", "type": "single_choice", "options": ["only"]}]},
     "questions[0] (q).options", "at least 2"),
    ({"questions": [{"name": "q", "type": "single_choice", "options": ["a", "a"]}]},
     None, "'a' appears twice"),
    ({"questions": [{"name": "q", "type": "pairwise", "a": "a", "b": "nope"}]}, None, "'nope', which is not in fields"),
    ({"questions": [{"name": "q", "type": "rating", "min": 5, "max": 5}]}, None, "must be greater"),
    ({"questions": [{"name": "q", "type": "sliders"}]}, "questions[0] (q)", "does not match any"),
    ({"colour": "red"}, "colour", "Extra inputs"),
])
def test_bad_schemas_are_explained(change, field, words):
    with pytest.raises(ValidationError) as e:
        parse_schema({**FULL, **change})
    assert words in e.value.message
    if field:
        assert e.value.field == field


def test_schema_file_errors_name_file_and_line(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nfields:\n  - name: a\n   type: text\n")
    with pytest.raises(ValidationError) as e:
        parse_schema(f)
    assert e.value.file == str(f) and e.value.line is not None
    with pytest.raises(ValidationError, match="cannot read schema"):
        parse_schema(tmp_path / "missing.yaml")


def test_demo_schemas_parse():
    root = Path(__file__).resolve().parents[1] / "labelwright" / "demo"
    for f in root.glob("*.yaml"):
        parse_schema(f)


@pytest.mark.parametrize("item, field, words", [
    ({"a": "x", "b": "y", "c": "z"}, "prompt", "missing required field"),
    ({"prompt": "hi", "a": "x", "b": "y", "c": "z"}, "prompt", "list of {role, content}"),
    ({"prompt": [{"role": "user"}], "a": "x", "b": "y", "c": "z"}, "prompt[0]", "'role' and 'content'"),
    ({"prompt": [], "a": 3, "b": "y", "c": "z"}, "a", "expected a string"),
])
def test_bad_items_name_the_field(item, field, words):
    with pytest.raises(ValidationError) as e:
        schema().validate_item(item, file="f.jsonl", line=7)
    assert (e.value.field, e.value.file, e.value.line) == (field, "f.jsonl", 7)
    assert words in e.value.message
    assert str(e.value).startswith("f.jsonl, line 7, field")


def test_item_id_field_is_checked():
    s = parse_schema({**FULL, "id_field": "key"})
    good = {"prompt": [], "a": "x", "b": "y", "c": "z"}
    with pytest.raises(ValidationError, match="missing item id"):
        s.validate_item(good)
    with pytest.raises(ValidationError, match="string or integer"):
        s.validate_item({**good, "key": [1]})
    assert s.validate_item({**good, "key": 12}) == {**good, "key": 12}


@pytest.mark.parametrize("assist, message", [
    ({"model": "os.system"}, "assist.model must be builtin, an http(s) URL or python:package.module:attr"),
    ({"model": "python:os"}, "assist.model must be builtin"),
    ({"question": "note"}, "assist.question 'note' is a text question; it must be single choice, rating or pairwise"),
    ({"question": "nope"}, "assist.question 'nope' is not one of the questions"),
    ({"llm_first": True}, "assist.llm_first needs adaptive redundancy"),
    ({"order": "sideways"}, "order"),
    ({"auto_label": {"target_accuracy": 1.0}}, "target_accuracy"),
    ({"suggestion_control": 0.95}, "suggestion_control"),
])
def test_the_assist_block_is_checked(assist, message):
    base = {"name": "x", "fields": [{"name": "text"}],
            "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
                          {"name": "note", "type": "text", "required": False}]}
    with pytest.raises(ValidationError) as e:
        parse_schema({**base, "assist": assist})
    assert message in str(e.value) and "assist" in str(e.value)


def test_llm_first_and_the_uncertainty_order_exclude_each_other():
    base = {"name": "x", "fields": [{"name": "text"}], "redundancy": {"min": 1, "max": 3},
            "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}
    assert parse_schema({**base, "assist": {"llm_first": True}}).assist.llm_first
    with pytest.raises(ValidationError, match="choose one"):
        parse_schema({**base, "assist": {"llm_first": True, "order": "uncertainty"}})
    s = parse_schema({**base, "assist": {}})
    assert s.assist_question().name == "spam" and s.assist.model == "builtin" and s.assist.auto_label is None
