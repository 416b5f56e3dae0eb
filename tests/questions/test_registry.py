"""The registry: every built-in type joins it the way a plugin does and round-trips through the schema, the
form and the page; a type that cannot join is refused with a message naming it."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import ClassVar, Literal

import pytest
from starlette.datastructures import FormData

from labelwright.questions import NO_ANSWER, QuestionType, QuestionTypeError, question_types, register, registry
from labelwright.schema import parse_schema
from labelwright.web.router import make_env
from labelwright.web.views import question_views

FIELDS = [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}, {"name": "c", "type": "text"}]

# one question of each built-in type and one answer it takes
BUILTIN = {
    "single_choice": ({"options": ["x", "y"]}, "y"),
    "multiple_choice": ({"options": ["x", "y", "z"]}, ["x", "z"]),
    "rating": ({"min": 0, "max": 10, "min_label": "bad"}, 0),
    "pairwise": ({"a": "a", "b": "b"}, {"choice": "B", "rationale": "clearer"}),
    "ranking": ({"candidates": ["a", "b", "c"]}, ["c", "a", "b"]),
    "text": ({"prefill": "a"}, "hello\nthere"),
}


def test_the_builtins_are_registered_in_order_as_entry_points_name_them():
    types = question_types()
    assert list(types)[:6] == list(BUILTIN)
    for tag, value in registry.BUILTINS:
        cls = types[tag]
        assert f"{cls.__module__}:{cls.__qualname__}" == value
        assert registry.load(EntryPoint(tag, value, registry.GROUP)) is cls
        assert cls.template_path().is_file()


@pytest.mark.parametrize("tag", list(BUILTIN))
def test_a_builtin_round_trips_schema_answer_form_and_page(tag):
    settings, answer = BUILTIN[tag]
    schema = parse_schema({"name": "t", "fields": FIELDS, "questions": [{"name": "q", "type": tag, **settings}]})
    assert parse_schema(schema.to_json()) == schema
    q = schema.question("q")
    assert type(q) is question_types()[tag]
    assert schema.validate_answers({"q": answer}) == {"q": answer}
    assert schema.validate_gold({"q": answer}) == {"q": answer}
    # the form: the saved answer shown again, submitted as the partial names its fields, reads back the same
    state = q.form_state(answer)
    fields = _form_fields(tag, state)
    got = q.parse_form(FormData(fields))
    assert got is not None and got.error is None and got.state == state
    assert schema.validate_answers({"q": got.answer}) == {"q": answer}
    # the page: the type's partial renders the state, in the field names parse_form reads
    views = question_views(schema, {"a": "A", "b": "B", "c": "C"}, {"q": state}, {})
    page = make_env().from_string('{% import "_item.html" as ui %}{{ ui.question(v, 1) }}').render(v=views[0])
    for name, _ in fields:
        assert f'name="{name}"' in page, (tag, name)
    # a vote, a gold score and how it reads
    v = q.vote([answer, answer])
    if q.aggregated:
        assert v is not None and v["n"] == 2 and q.gold_score(answer, answer) == 1.0
        assert q.matches_label(answer, v["label"]) is True
    else:
        assert v is None and q.gold_score(answer, answer) is None
    assert q.answer_text(answer, {"a": "A", "b": "B", "c": "C"})["text"]


def _form_fields(tag: str, state) -> list[tuple[str, str]]:
    if tag == "multiple_choice":
        return [("q", v) for v in state]
    if tag == "pairwise":
        return [("q", state["choice"]), ("q.rationale", state["rationale"])]
    if tag == "ranking":
        return [(f"q.rank.{c}", place) for c, place in state.items()]
    return [("q", state)]


def test_an_unanswered_optional_question_is_left_out_and_none_of_several_is_kept():
    schema = parse_schema({"name": "t", "fields": FIELDS, "questions": [
        {"name": "m", "type": "multiple_choice", "options": ["x", "y"]},
        {"name": "s", "type": "single_choice", "options": ["x", "y"], "required": False}]})
    assert schema.validate_answers({"m": []}) == {"m": []}
    assert schema.question("s").empty_answer(None) is NO_ANSWER


class _NoTag(QuestionType):
    type: str = "loose"  # not a Literal
    template: ClassVar[str] = "templates/yes_no.html"


class _NoTemplate(QuestionType):
    type: Literal["no_template"]
    template: ClassVar[str] = "templates/missing.html"


class _Rival(QuestionType):
    type: Literal["rating"]
    template: ClassVar[str] = "templates/yes_no.html"


def test_types_that_cannot_join_are_refused_naming_them():
    with pytest.raises(QuestionTypeError, match="type: Literal"):
        register(_NoTag)
    with pytest.raises(QuestionTypeError, match="form partial .*missing.html.* is missing"):
        register(_NoTemplate)
    with pytest.raises(QuestionTypeError, match="'rating' is already registered by labelwright.questions.rating"):
        register(_Rival)
    with pytest.raises(QuestionTypeError, match="is not a subclass"):
        register(dict)  # type: ignore[arg-type]
    with pytest.raises(QuestionTypeError, match="is a built-in"):
        registry.unregister("rating")
    with pytest.raises(QuestionTypeError, match="entry point nope = 'tests.questions.nowhere:X' cannot be loaded"):
        registry.load(EntryPoint("nope", "tests.questions.nowhere:X", registry.GROUP))
    with pytest.raises(QuestionTypeError, match="the class's tag is 'yes_no'; name the entry point 'yes_no'"):
        registry.load(EntryPoint("yesno", "tests.questions.yes_no:YesNo", registry.GROUP))
    assert "no_template" not in question_types() and question_types()["rating"].__module__.startswith("labelwright")


def test_an_installed_package_entry_point_is_found(tmp_path, monkeypatch):
    """A distribution on sys.path declaring the entry point (what ``pip install`` writes) adds its type."""
    info = tmp_path / "yes_no_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: yes-no-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\nyes_no = tests.questions.yes_no:YesNo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.reload()
        assert question_types()["yes_no"].__module__ == "tests.questions.yes_no"
        schema = parse_schema({"name": "t", "fields": FIELDS, "questions": [{"name": "q", "type": "yes_no"}]})
        assert schema.validate_answers({"q": "no"}) == {"q": {"answer": "no"}}
    finally:
        monkeypatch.undo()
        registry.reload()
    assert "yes_no" not in question_types()
