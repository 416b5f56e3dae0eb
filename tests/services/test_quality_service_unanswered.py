"""The quality summary of a project whose optional categorical question nobody has answered yet: that
question is reported as not summarised ("no answers yet"), the answered one as usual (it was a 500)."""

from labelwright.services import users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.services.quality import project_quality
from tests.conftest import join, seed_answer


def test_an_optional_question_nobody_answered(store, owner):
    p = create_project(store, {
        "name": "Two questions", "slug": "two", "overlap": 2, "fields": [{"name": "text"}],
        "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
                      {"name": "tone", "type": "single_choice", "options": ["calm", "rude"], "required": False}]})
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(3)])
    people = [users.create_user(store, n, "annotator") for n in ("ana", "bob")]
    for u in people:
        join(store, u.name, [p])
        for item_id in (1, 2, 3):
            seed_answer(store, item_id, u, {"spam": "spam" if item_id == 1 else "ham"})
    q = project_quality(store, p)
    spam, tone = q["questions"]
    assert spam["name"] == "spam" and spam["summarised"] and spam["answers"] == 6 and spam["items"] == 3
    assert tone == {"name": "tone", "type": "single_choice", "summarised": False, "answers": 0, "items": 0,
                    "reason": "no answers yet"}
    assert q["annotations"] == 6 and sorted(a["annotator"] for a in q["annotators"]) == ["ana", "bob"]
