"""Adaptive redundancy's skill fits with two server processes: each process keeps its own fit, and answers
taken by the other process count towards its next refit (two Store objects on one database)."""

from labelwright.services import access, queue, redundancy, users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project
from labelwright.store import Store

ADAPTIVE = {
    "name": "Adaptive", "slug": "adaptive", "id_field": "id", "gold": {"rate": 0},
    "redundancy": {"min": 2, "max": 3, "confidence": 0.95},
    "fields": [{"name": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}


def _answer(store: Store, project, people: list, n: int) -> None:
    """``n`` answers, spread over ``people``, through ``store`` (as one server process would take them)."""
    done = 0
    while done < n:
        for person in people:
            item = queue.claim_next(store, project, person)
            assert item is not None
            queue.submit(store, item["id"], person, {"spam": "spam"})
            done += 1
            if done == n:
                return


def test_answers_through_another_process_make_a_fit_stale(store, db_url):
    owner = users.create_user(store, "olive", "owner")
    project = create_project(store, ADAPTIVE, created_by=owner.id)
    import_items(store, project, enumerate(({"id": f"i{i}", "text": "x"} for i in range(200)), start=1))
    people = [users.create_user(store, f"a{i}") for i in range(4)]
    for p in people:
        access.set_member(store, project, p.name, "annotator")
    other = Store(db_url, pool_size=2)  # a second server process's store
    try:
        _answer(store, project, people, 30)
        fit = redundancy.current_fit(other, project)
        assert fit.answers == 30
        assert redundancy.current_fit(other, project) is fit  # cached in that process

        # Answers arrive through the first process only; the second sees them in the database.
        _answer(store, project, people, redundancy.REFIT_MIN_NEW - 1)
        assert redundancy.new_answers(other, project, fit) == redundancy.REFIT_MIN_NEW - 1
        assert redundancy.current_fit(other, project) is fit  # not enough new answers yet
        _answer(store, project, people, 1)
        refitted = redundancy.current_fit(other, project)
        assert refitted is not fit
        assert refitted.answers == 30 + redundancy.REFIT_MIN_NEW
        assert redundancy.new_answers(other, project, refitted) == 0

        # Each store has its own cache (the first one's was filled by its own submissions' decisions).
        mine = redundancy.current_fit(store, project)
        assert mine is not refitted and store.caches.skill_fits[project.id] is mine
        assert redundancy.new_answers(store, project, mine) < redundancy.REFIT_MIN_NEW
    finally:
        other.close()


def test_a_fit_too_old_is_redone(store):
    owner = users.create_user(store, "olive", "owner")
    project = create_project(store, ADAPTIVE, created_by=owner.id)
    import_items(store, project, enumerate(({"id": f"i{i}", "text": "x"} for i in range(10)), start=1))
    person = users.create_user(store, "a0")
    access.set_member(store, project, person.name, "annotator")
    _answer(store, project, [person], 2)
    fit = redundancy.current_fit(store, project, now=1000.0)
    assert redundancy.current_fit(store, project, now=fit.at + 1) is fit
    assert redundancy.current_fit(store, project, now=fit.at + redundancy.REFIT_SECONDS + 1) is not fit
