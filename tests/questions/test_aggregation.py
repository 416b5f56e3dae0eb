"""A question type that is not categorical aggregates its own answers: the project's labels, the export's
vote and gold scoring call its hooks (here the defaults: its vote per item), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest

from labelwright.questions import QuestionType, registry
from labelwright.services import gold as gold_svc
from labelwright.services.items import add_items
from labelwright.services.labels import item_labels, project_labels
from labelwright.services.projects import create_project
from labelwright.services.users import create_user
from tests.conftest import join, seed_answer


class Word(QuestionType):
    """One word, compared without case: no fixed labels, a plurality vote per item."""

    type: Literal["word"]
    template: ClassVar[str] = "templates/word.html"

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip().isalpha():
            raise self.fail("expected one word")
        return value.strip()

    def answer_label(self, answer: Any) -> Any:
        return answer.lower()

    def compact(self, answer: Any) -> Any:
        return answer.lower()

    def vote(self, answers: list) -> dict | None:
        words = [a.lower() for a in answers]
        best = max(sorted(set(words)), key=words.count)
        return {"label": best, "agreement": round(words.count(best) / len(words), 4), "n": len(words)}


@pytest.fixture
def word():
    registry.register(Word)
    yield Word
    registry.unregister("word")


def test_a_non_categorical_type_is_aggregated_by_its_own_hooks(word, store):
    p = create_project(store, {"name": "Words", "slug": "words", "overlap": 3, "id_field": "id",
                               "fields": [{"name": "text"}], "questions": [{"name": "w", "type": "word"}]})
    add_items(store, p, [{"id": "a", "text": "x"}, {"id": "b", "text": "y"},
                         {"id": "g", "text": "z", "gold": {"w": "Cat"}}])
    people = [create_user(store, name, "annotator") for name in ("ann", "bob", "cy")]
    for name in ("ann", "bob", "cy"):
        join(store, name)
    ids = {ext: i for i, ext in enumerate("abg", start=1)}
    answers = {"a": ["Dog", "dog", "cat"], "b": ["owl", "Owl", "OWL"], "g": ["cat", "dog", "CAT"]}
    for ext, words in answers.items():
        for person, w in zip(people, words):
            seed_answer(store, ids[ext], person, {"w": w})

    labels = project_labels(store, p)
    assert item_labels(labels, ids["a"])["w"] == {"label": "dog", "confidence": 0.6667,
                                                  "method": "majority vote (confidence: agreement)", "source": "people"}
    assert item_labels(labels, ids["b"])["w"]["confidence"] == 1.0
    assert item_labels(labels, ids["g"])["w"] == {"label": "Cat", "confidence": 1.0, "method": "gold",
                                                  "source": "people"}
    # gold is scored by the type: its answer_label ignores case
    gold = gold_svc.gold_answers(store, p)
    rows = [(ids["g"], person.name, {"w": w}) for person, w in zip(people, answers["g"])]
    assert gold_svc.gold_accuracy(p.schema, rows, gold) == {
        "ann": {"checked": 1, "correct": 1}, "bob": {"checked": 1, "correct": 0}, "cy": {"checked": 1, "correct": 1}}
