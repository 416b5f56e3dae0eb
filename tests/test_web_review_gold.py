"""The review page, gold marking through the items in doubt and asking for more answers, through the
in-process client (on SQLite and PostgreSQL): what each role may do, forged forms, and what the pages show."""

from __future__ import annotations

import html
import re

import pytest

from labelwright.services import audit as audit_svc
from labelwright.services import gold as gold_svc
from labelwright.services import review as review_svc
from labelwright.services import users as users_svc
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from labelwright.services.review import in_sample
from labelwright.web.answers import answer_views
from tests.conftest import join, post_login
from tests.conftest import seed_answer as _seed_answer

REVIEWED = {
    "name": "Reviewed", "slug": "rev", "id_field": "id", "overlap": 2, "gold": {"rate": 0},
    "instructions": "Spam **promotes** a channel.",
    "review": {"mode": "all"},
    "fields": [{"name": "text", "type": "text", "label": "Comment"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Spam?",
                   "options": [{"value": "spam", "label": "Spam"}, {"value": "ham", "label": "Not spam"}]}],
}
PASSWORDS = {"olive": "owner-password", "ana": "ana-password", "bob": "bob-password", "rita": "rita-password",
             "max": "max-password"}


def seed_answer(store, item_id: int, user, answers: dict) -> dict:
    """The annotation (see tests.conftest.seed_answer)."""
    return _seed_answer(store, item_id, user, answers)[0]


def sign_in(http, name: str) -> None:
    http.cookies.clear()
    r = post_login(http, name, PASSWORDS[name], follow_redirects=False)
    assert r.status_code == 303, r.text


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in the page"
    return html.unescape(match.group(1))


def review_action(page: str) -> str:
    return re.search(r'action="([^"]+)" id="review-form"', page).group(1)


def waiting_shown(page: str) -> int:
    return int(re.search(r"<strong>(\d+)</strong> waiting", page).group(1))


def item_ids(store, project) -> dict[str, int]:
    from sqlalchemy import text

    with store.read() as conn:
        return dict(conn.execute(text("SELECT external_id, id FROM items WHERE project_id = :p"),
                                 {"p": project.id}).all())


@pytest.fixture
def people(store, owner):
    """ana and bob annotate, rita reviews, max manages; all members of the projects made before."""
    made = {name: users_svc.create_user(store, name, "annotator", PASSWORDS[name]) for name in ("ana", "bob")}
    made["rita"] = users_svc.create_user(store, "rita", "reviewer", PASSWORDS["rita"])
    made["max"] = users_svc.create_user(store, "max", "manager", PASSWORDS["max"])
    made["olive"] = owner[0]
    return made


def make_project(store, owner, schema: dict, n: int = 6):
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(n)])
    return p


def members(store, p):
    join(store, "ana", [p])
    join(store, "bob", [p])
    join(store, "rita", [p], role="reviewer")
    join(store, "max", [p], role="manager")


# ---- the review count ---------------------------------------------------------------------------------


def test_the_count_is_what_waits_for_this_reviewer(http, store, owner, people):
    """Sample mode: the page counted every undecided submission ("114 waiting") next to "Nothing to review"."""
    p = make_project(store, owner, {**REVIEWED, "review": {"mode": "sample", "rate": 0.3}}, n=12)
    members(store, p)
    ids = item_ids(store, p)
    subs = [seed_answer(store, ids[f"c{i}"], people["ana"], {"spam": "ham"}) for i in range(12)]
    sampled = [s["id"] for s in subs if in_sample(s["id"], 0.3)]
    assert 0 < len(sampled) < 12, "the hash should sample some and leave some"
    sign_in(http, "rita")
    page = http.get("/projects/rev/review").text
    assert waiting_shown(page) == len(sampled)
    for k in range(len(sampled)):
        action = review_action(page)
        assert int(action.rsplit("/", 1)[1]) in sampled
        r = http.post(action, data={"csrf": hidden(page, "csrf"), "revision": hidden(page, "revision"),
                                    "decision": "accepted"}, follow_redirects=False)
        assert r.status_code == 303
        page = http.get("/projects/rev/review").text
        assert waiting_shown(page) == len(sampled) - k - 1
    assert "Nothing to review" in page and waiting_shown(page) == 0
    assert review_svc.counts(store, p)["pending"] == 12 - len(sampled)  # the others stay undecided


def test_the_count_leaves_out_own_work_and_other_reviewers_leases(store, owner, people):
    p = make_project(store, owner, REVIEWED, n=4)
    members(store, p)  # max manages: he reviews, and answers too
    ids = item_ids(store, p)
    seed_answer(store, ids["c0"], people["ana"], {"spam": "ham"})
    seed_answer(store, ids["c1"], people["ana"], {"spam": "spam"})
    seed_answer(store, ids["c2"], people["max"], {"spam": "ham"})
    assert review_svc.waiting(store, p, people["rita"]) == 3
    assert review_svc.waiting(store, p, people["max"]) == 2  # not his own
    held = review_svc.next_for_review(store, p, people["max"])
    assert review_svc.waiting(store, p, people["rita"]) == 2  # max holds one under his lease
    assert review_svc.waiting(store, p, people["max"]) == 2  # his own lease still waits for him
    review_svc.decide(store, p, people["max"], held["annotation_id"], "accepted")
    assert review_svc.waiting(store, p, people["rita"]) == 2
    assert review_svc.counts(store, p, people["rita"])["waiting"] == 2


def test_disagreement_mode_count_matches_the_queue(store, owner, people):
    p = make_project(store, owner, {**REVIEWED, "review": {"mode": "disagreement"}, "overlap": 3}, n=3)
    members(store, p)
    ids = item_ids(store, p)
    for who, answer in (("ana", "spam"), ("bob", "spam"), ("max", "ham")):
        seed_answer(store, ids["c0"], people[who], {"spam": answer})
    seed_answer(store, ids["c1"], people["ana"], {"spam": "ham"})
    assert review_svc.waiting(store, p, people["rita"]) == 1  # max's lone "ham" against two "spam"
    got = review_svc.next_for_review(store, p, people["rita"])
    assert got["annotator"] == "max"
    review_svc.decide(store, p, people["rita"], got["annotation_id"], "accepted")
    assert review_svc.waiting(store, p, people["rita"]) == 0
    assert review_svc.next_for_review(store, p, people["rita"]) is None


# ---- the review page -------------------------------------------------------------------------------------


def test_review_page_shows_labels_instructions_and_passes_over(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=3)
    members(store, p)
    ids = item_ids(store, p)
    first = seed_answer(store, ids["c0"], people["ana"], {"spam": "spam"})
    bobs = seed_answer(store, ids["c0"], people["bob"], {"spam": "ham"})
    second = seed_answer(store, ids["c1"], people["ana"], {"spam": "ham"})
    sign_in(http, "rita")
    page = http.get("/projects/rev/review").text
    assert review_action(page).endswith(f"/{first['id']}")
    answer = page[page.index('id="review-answer"'):page.index("</section>", page.index('id="review-answer"'))]
    assert "<strong class=\"answer-label\">Spam</strong>" in answer  # the option's label, not its value
    others = page[page.index('id="other-answers-h"'):]
    assert "bob" in others and "Not spam" in others[:others.index("</section>")]
    assert "{&#34;spam&#34;" not in page and '{"spam"' not in page  # no JSON
    assert '<details class="instructions"' in page and "<strong>promotes</strong>" in page
    assert '<script type="module" src="/static/review.js"></script>' in page
    # Next passes over one submission to the one after it; past the last, from the start again
    nxt = re.search(r'href="([^"]+)" id="review-next"|id="review-next" href="([^"]+)"', page)
    href = html.unescape(next(g for g in nxt.groups() if g))
    assert href == f"/projects/rev/review?skip={first['id']}"
    page = http.get(href).text
    assert review_action(page).endswith(f"/{bobs['id']}")
    page = http.get(f"/projects/rev/review?skip={bobs['id']}").text
    assert review_action(page).endswith(f"/{second['id']}")
    page = http.get(f"/projects/rev/review?skip={second['id']}").text
    assert review_action(page).endswith(f"/{first['id']}")  # past the last: from the start again
    assert waiting_shown(page) == 3


def test_passing_over_the_only_one_shows_it_again(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=2)
    members(store, p)
    only = seed_answer(store, item_ids(store, p)["c0"], people["ana"], {"spam": "spam"})
    sign_in(http, "rita")
    page = http.get(f"/projects/rev/review?skip={only['id']}").text
    assert review_action(page).endswith(f"/{only['id']}")
    assert http.get("/projects/rev/review?skip=0").status_code == 422
    assert http.get("/projects/rev/review?skip=abc").status_code == 422


def test_answers_as_labels_for_every_question_type():
    from labelwright.schema import parse_schema

    schema = parse_schema({
        "name": "All", "fields": [{"name": "a", "type": "markdown", "label": "Reply A"},
                                  {"name": "b", "type": "markdown", "label": "Reply B"}],
        "questions": [
            {"name": "topic", "type": "multiple_choice", "options": [{"value": "x", "label": "Ex"}, "y"]},
            {"name": "score", "type": "rating", "min": 1, "max": 5, "max_label": "great"},
            {"name": "pref", "type": "pairwise", "a": "a", "b": "b"},
            {"name": "order", "type": "ranking", "candidates": ["a", "b"]},
            {"name": "note", "type": "text", "required": False},
        ]})
    views = {v["name"]: v for v in answer_views(schema, {
        "topic": ["x", "y"], "score": 5, "pref": {"choice": "B", "rationale": "clearer"}, "order": ["b", "a"]})}
    assert views["topic"]["items"] == ["Ex", "y"]
    assert views["score"]["text"] == "5 (great)"
    assert views["pref"]["text"] == "B is better" and views["pref"]["rationale"] == "clearer"
    assert views["order"]["items"] == ["Reply B", "Reply A"]
    assert views["note"]["text"] is None


def test_review_fix_and_reject_through_the_form(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=3)
    members(store, p)
    ids = item_ids(store, p)
    a = seed_answer(store, ids["c0"], people["ana"], {"spam": "ham"})
    b = seed_answer(store, ids["c1"], people["ana"], {"spam": "ham"})
    sign_in(http, "rita")
    page = http.get("/projects/rev/review").text
    base = {"csrf": hidden(page, "csrf"), "revision": hidden(page, "revision")}
    # a rejection without feedback: refused, the page comes back in its reject step
    r = http.post(review_action(page), data={**base, "decision": "rejected", "feedback": "  "})
    assert r.status_code == 422 and 'data-mode="reject"' in r.text and "say why" in r.text
    # a fix with an invalid answer: refused next to the question, in the fix step
    r = http.post(review_action(page), data={**base, "decision": "fixed", "spam": "maybe"})
    assert r.status_code == 422 and 'data-mode="fix"' in r.text
    r = http.post(review_action(page), data={**base, "decision": "fixed", "spam": "spam"}, follow_redirects=False)
    assert r.status_code == 303
    page = http.get("/projects/rev/review").text
    assert review_action(page).endswith(f"/{b['id']}")
    r = http.post(review_action(page), data={"csrf": hidden(page, "csrf"), "revision": hidden(page, "revision"),
                                             "decision": "rejected", "feedback": "Promotes a channel."},
                  follow_redirects=False)
    assert r.status_code == 303
    decided = {f["annotation_id"]: f for f in review_svc.feedback_for(store, people["ana"])}
    assert decided[a["id"]]["decision"] == "fixed" and decided[a["id"]]["fixed_answers"] == {"spam": "spam"}
    assert decided[b["id"]]["decision"] == "rejected" and decided[b["id"]]["feedback"] == "Promotes a channel."


# ---- attacks on the review page ----------------------------------------------------------------------------


def test_annotators_and_outsiders_cannot_review(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=2)
    members(store, p)
    sub = seed_answer(store, item_ids(store, p)["c0"], people["bob"], {"spam": "ham"})
    sign_in(http, "ana")
    assert http.get("/projects/rev/review").status_code == 403
    page = http.get("/account").text  # a valid token of ana's own session
    r = http.post(f"/projects/rev/review/{sub['id']}", data={"csrf": hidden(page, "csrf"), "decision": "accepted"})
    assert r.status_code == 403
    assert review_svc.counts(store, p)["accepted"] == 0


def test_forged_or_missing_csrf_is_refused(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=2)
    members(store, p)
    sub = seed_answer(store, item_ids(store, p)["c0"], people["ana"], {"spam": "ham"})
    sign_in(http, "rita")
    for data in ({"decision": "accepted"}, {"decision": "accepted", "csrf": "forged"},
                 {"decision": "accepted", "csrf": "é" * 43}):
        r = http.post(f"/projects/rev/review/{sub['id']}", data=data)
        assert r.status_code == 403 and "security token" in r.text
    assert review_svc.counts(store, p)["accepted"] == 0


def test_no_review_of_own_work_or_another_projects(http, store, owner, people):
    p = make_project(store, owner, REVIEWED, n=2)
    other = make_project(store, owner, {**REVIEWED, "slug": "other", "name": "Other"}, n=2)
    members(store, p)
    join(store, "ana", [other])
    join(store, "rita", [p], role="reviewer")
    foreign = seed_answer(store, item_ids(store, other)["c0"], people["ana"], {"spam": "ham"})
    join(store, "rita", [p], role="annotator")
    own = seed_answer(store, item_ids(store, p)["c0"], people["rita"], {"spam": "ham"})
    join(store, "rita", [p], role="reviewer")
    sign_in(http, "rita")
    page = http.get("/projects/rev/review").text
    assert "Nothing to review" in page and waiting_shown(page) == 0  # her own answer is no one's to see here
    csrf = hidden(page, "csrf")
    r = http.post(f"/projects/rev/review/{own['id']}", data={"csrf": csrf, "decision": "accepted"})
    assert r.status_code == 409 and "your own" in r.text
    # another project's submission through this project's URL: as if it did not exist
    r = http.post(f"/projects/rev/review/{foreign['id']}", data={"csrf": csrf, "decision": "accepted"})
    assert r.status_code == 404
    assert http.get("/projects/other/review").status_code in (403, 404)
    assert review_svc.counts(store, other)["accepted"] == 0


def test_the_reviewer_never_sees_gold_answers(http, store, owner, people):
    schema = {**REVIEWED, "fields": [{"name": "text", "type": "text"}, {"name": "a", "type": "text"},
                                     {"name": "b", "type": "text"}],
              "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b"}]}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"id": "g1", "text": "t", "a": "one", "b": "two"}])
    members(store, p)
    gid = item_ids(store, p)["g1"]
    gold_svc.set_gold(store, p, gid, {"pref": {"choice": "A", "rationale": "GOLD-SECRET-RATIONALE"}})
    seed_answer(store, gid, people["ana"], {"pref": {"choice": "B"}})
    sign_in(http, "rita")
    page = http.get("/projects/rev/review").text
    assert 'id="review-form"' in page
    assert "GOLD-SECRET" not in page and "gold" not in page.lower()
    assert http.get(f"/projects/rev/items/{gid}").status_code == 403  # the item page with its gold: managers'
    assert http.get("/api/v1/projects/rev/gold").status_code == 403
