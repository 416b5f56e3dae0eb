"""The review page, gold marking through the items in doubt and asking for more answers, through the
in-process client (on SQLite and PostgreSQL): what each role may do, forged forms, and what the pages show."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import BigInteger, bindparam, case, cast, select, text

from labelwright.demo import build_demo
from labelwright.schema import parse_schema
from labelwright.services import audit as audit_svc
from labelwright.services import doubt as doubt_svc
from labelwright.services import gold as gold_svc
from labelwright.services import queue as queue_svc
from labelwright.services import review as review_svc
from labelwright.services import users as users_svc
from labelwright.services.access import set_member
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from labelwright.services.qualification import _items as qualification_items
from labelwright.services.review import in_sample, in_sample_sql
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


def test_the_sample_in_sql_is_the_sample_in_python(store):
    """The queue and the count choose the sample in SQL: the same choice as in_sample, on both databases,
    for small ids and ids near the largest a database holds (no 64-bit overflow)."""

    ids = list(range(1, 400)) + [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 10**12 + 7, 2**62 + 3, 2**63 - 1]
    with store.read() as conn:
        for rate in (0.05, 0.3, 1.0):
            picked = select(case((in_sample_sql(cast(bindparam("id"), BigInteger), rate), 1), else_=0))
            got = [bool(conn.execute(picked, {"id": i}).scalar_one()) for i in ids]
            assert got == [in_sample(i, rate) for i in ids]


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
    assert re.search(r'<script type="module" src="/static/[^"]*review\.js"></script>', page)
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
    assert views["topic"]["parts"] == ["Ex", "y"]
    assert views["score"]["text"] == "5 (great)"
    assert views["pref"]["text"] == "B is better" and views["pref"]["rationale"] == "clearer"
    assert views["order"]["parts"] == ["Reply B", "Reply A"]
    assert views["note"]["text"] is None


def test_review_page_shows_every_type_as_labels_and_escapes_answers(http, store, owner, people):
    schema = {**REVIEWED, "slug": "mix", "overlap": 1,
              "fields": [{"name": "prompt", "type": "text"}, {"name": "a", "type": "markdown", "label": "Reply A"},
                         {"name": "b", "type": "markdown", "label": "Reply B"}],
              "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b", "prompt": "Better?"},
                            {"name": "order", "type": "ranking", "candidates": ["a", "b"], "prompt": "Rank"},
                            {"name": "note", "type": "text", "prompt": "Note"}]}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"id": "m1", "prompt": "hi", "a": "one", "b": "two"}])
    members(store, p)
    hostile = '<img src=x onerror="alert(1)">'
    seed_answer(store, item_ids(store, p)["m1"], people["ana"],
                {"pref": {"choice": "B", "rationale": "<script>alert(2)</script>"}, "order": ["b", "a"],
                 "note": hostile})
    sign_in(http, "rita")
    page = http.get("/projects/mix/review").text
    start = page.index('id="review-answer"')
    answer = page[start:page.index("</section>", start)]
    assert "B is better" in answer
    assert re.search(r'<ol class="answer-ranking"><li>Reply B</li><li>Reply A</li></ol>', answer)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in answer and "<script>alert" not in page
    assert html.escape(hostile, quote=False) in answer or "&lt;img src=x" in answer
    assert "<img src=x" not in page


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


# ---- gold marking through the items in doubt, and more answers ------------------------------------------------

DOUBTFUL = {**REVIEWED, "slug": "dbt", "name": "Doubtful", "overlap": 3, "review": None}
# three annotators; c1 and c3 contested 2-1, the others unanimous
VOTES = {"c0": ("spam", "spam", "spam"), "c1": ("spam", "ham", "spam"), "c2": ("ham", "ham", "ham"),
         "c3": ("ham", "spam", "ham"), "c4": ("spam", "spam", "spam"), "c5": ("ham", "ham", "ham")}


@pytest.fixture
def doubtful(store, owner, people):
    p = make_project(store, owner, DOUBTFUL, n=7)  # c6: nobody answered it
    members(store, p)
    ids = item_ids(store, p)
    for ext, votes in VOTES.items():
        for who, v in zip(("ana", "bob", "max"), votes):
            seed_answer(store, ids[ext], people[who], {"spam": v})
    return p, ids


def nav_links(page: str) -> dict:
    out = {}
    for name in ("doubt-previous", "doubt-next"):
        m = re.search(rf'id="{name}" href="([^"]+)"', page)
        out[name.split("-")[1]] = html.unescape(m.group(1)) if m else None
    return out


def target_of(store, item_id: int):
    with store.read() as conn:
        return conn.execute(text("SELECT target FROM items WHERE id = :i"), {"i": item_id}).scalar()


def test_items_in_doubt_are_the_contested_ones_first(store, doubtful):
    p, ids = doubtful
    rows = doubt_svc.items_in_doubt(store, p)
    assert {r["external_id"] for r in rows[:2]} == {"c1", "c3"}
    assert len(rows) == 6 and "c6" not in {r["external_id"] for r in rows}  # unanswered: nothing to doubt
    assert rows[0]["confidence"] <= rows[1]["confidence"] < rows[2]["confidence"]
    gold_svc.set_gold(store, p, ids["c1"], {"spam": "spam"})
    assert "c1" not in {r["external_id"] for r in doubt_svc.items_in_doubt(store, p)}


def test_mark_gold_then_walk_on_through_the_doubt(http, store, doubtful):
    p, _ = doubtful
    order = [r["item_id"] for r in doubt_svc.items_in_doubt(store, p)]
    sign_in(http, "max")
    listing = http.get("/projects/dbt/doubt").text
    first = f'/projects/dbt/items/{order[0]}?doubt=0'
    assert f'href="{first}"' in listing
    page = http.get(first).text
    assert nav_links(page) == {"previous": None, "next": f"/projects/dbt/items/{order[1]}?doubt=1"}
    assert "In doubt: 1 of 6" in page
    assert re.search(r'<script type="module" src="/static/[^"]*item\.js"></script>', page)
    # G: the gold form, by labels, keeps the place in the list
    assert '<span class="choice-label">Not spam</span>' in page
    r = http.post(f"/projects/dbt/items/{order[0]}/gold",
                  data={"csrf": hidden(page, "csrf"), "doubt": "0", "spam": "ham"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == first
    page = http.get(first).text
    assert '<span class="badge gold">gold</span>' in page
    # no longer in doubt: "next" is the one that came after it, now first in the list
    assert nav_links(page)["next"] == f"/projects/dbt/items/{order[1]}?doubt=0"
    page = http.get(nav_links(page)["next"]).text
    assert nav_links(page) == {"previous": None, "next": f"/projects/dbt/items/{order[2]}?doubt=1"}
    page = http.get(f"/projects/dbt/items/{order[2]}?doubt=1").text
    assert nav_links(page)["previous"] == f"/projects/dbt/items/{order[1]}?doubt=0"
    assert gold_svc.gold_answers(store, p) == {order[0]: {"spam": "ham"}}


def test_more_answers_on_chosen_items(http, store, doubtful):
    _, ids = doubtful
    sign_in(http, "max")
    page = http.get("/projects/dbt/doubt").text
    csrf = hidden(page, "csrf")
    r = http.post("/projects/dbt/more-answers", data={"csrf": csrf, "items": ["c1", "c3", "c1"], "answers": "2"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/dbt/doubt?asked=2&items=2"
    assert "Asked for 2 more answers on 2 items." in http.get(r.headers["location"]).text
    assert target_of(store, ids["c1"]) == 5 and target_of(store, ids["c3"]) == 5
    assert target_of(store, ids["c0"]) is None
    entries = [e for e in audit_svc.entries(store, None, 50) if e["action"] == "items.more_answers"]
    assert len(entries) == 1 and entries[0]["actor"] == "max"
    # from the item page, for that one item
    page = http.get(f"/projects/dbt/items/{ids['c0']}").text
    r = http.post("/projects/dbt/more-answers", data={"csrf": hidden(page, "csrf"), "items": "c0",
                                                      "item_id": str(ids["c0"]), "answers": "1"},
                  follow_redirects=False)
    assert r.headers["location"] == f"/projects/dbt/items/{ids['c0']}?asked=1"
    assert target_of(store, ids["c0"]) == 4
    # nothing ticked, or a silly number: the list again with the reason
    for data in ({"answers": "1"}, {"items": "c2", "answers": "0"}, {"items": "c2", "answers": "x"}):
        r = http.post("/projects/dbt/more-answers", data={"csrf": csrf, **data})
        assert r.status_code == 422 and 'role="alert"' in r.text
    assert target_of(store, ids["c2"]) is None


def test_more_answers_refuses_other_projects_gold_and_forgeries(http, store, owner, doubtful):
    p, ids = doubtful
    other = make_project(store, owner, {**DOUBTFUL, "slug": "other", "name": "Other"}, n=2)
    join(store, "max", [other], role="manager")
    gold_svc.set_gold(store, p, ids["c5"], {"spam": "ham"})
    sign_in(http, "max")
    csrf = hidden(http.get("/projects/dbt/doubt").text, "csrf")
    # an item of another project named through this one: nothing changes anywhere
    other_c0 = item_ids(store, other)["c0"]
    r = http.post("/projects/dbt/more-answers", data={"csrf": csrf, "items": ["c1", "zz-not-here"], "answers": "1"})
    assert r.status_code == 404
    assert target_of(store, ids["c1"]) is None and target_of(store, other_c0) is None
    r = http.post("/projects/dbt/more-answers", data={"csrf": csrf, "items": "c5", "answers": "1"})
    assert r.status_code == 404  # a gold item is offered to everyone already
    for data in ({"items": "c1"}, {"items": "c1", "csrf": "forged"}):
        r = http.post("/projects/dbt/more-answers", data={**data, "answers": "1"})
        assert r.status_code == 403 and "security token" in r.text
        r = http.post(f"/projects/dbt/items/{ids['c1']}/gold", data={**data, "spam": "spam"})
        assert r.status_code == 403 and "security token" in r.text
    assert target_of(store, ids["c1"]) is None and ids["c1"] not in gold_svc.gold_answers(store, p)


@pytest.mark.parametrize("who", ["ana", "rita"])
def test_annotators_and_reviewers_cannot_mark_gold_or_ask(http, store, doubtful, who):
    p, ids = doubtful
    sign_in(http, who)
    csrf = hidden(http.get("/account").text, "csrf")
    item = ids["c1"]
    assert http.get("/projects/dbt/doubt").status_code == 403
    assert http.get(f"/projects/dbt/items/{item}").status_code == 403
    r = http.post(f"/projects/dbt/items/{item}/gold", data={"csrf": csrf, "spam": "spam"})
    assert r.status_code == 403
    r = http.post("/projects/dbt/more-answers", data={"csrf": csrf, "items": "c1", "answers": "3"})
    assert r.status_code == 403
    assert gold_svc.gold_answers(store, p) == {} and target_of(store, item) is None


@pytest.mark.usefixtures("doubtful")  # the project max manages, beside another he does not
def test_gold_of_another_project_through_this_one_is_not_found(http, store, owner):
    other = make_project(store, owner, {**DOUBTFUL, "slug": "other", "name": "Other"}, n=2)
    foreign = item_ids(store, other)["c0"]
    sign_in(http, "max")  # manages dbt only
    csrf = hidden(http.get("/projects/dbt/doubt").text, "csrf")
    assert http.get(f"/projects/dbt/items/{foreign}").status_code == 404
    r = http.post(f"/projects/dbt/items/{foreign}/gold", data={"csrf": csrf, "spam": "spam"})
    assert r.status_code == 404
    assert http.get("/projects/other/doubt").status_code in (403, 404)
    assert gold_svc.gold_answers(store, other) == {}


# ---- the demo ----------------------------------------------------------------------------------------------


def test_demo_switches_on_the_whole_workflow(store, settings):
    first = build_demo(store, settings)
    again = build_demo(store, settings)  # a second run adds nothing
    assert first["projects"] == again["projects"]
    by_slug = {p["slug"]: p for p in again["projects"]}
    assert by_slug["youtube-spam"]["items"] == 300 and by_slug["youtube-spam"]["gold"] == 30
    assert by_slug["llm-preference"]["items"] == 200 and by_slug["llm-preference"]["gold"] == 20
    spam, pref = get_project(store, "youtube-spam"), get_project(store, "llm-preference")
    assert spam.schema.qualification is not None and spam.schema.qualification.size == 5
    for p in (spam, pref):
        assert p.schema.review is not None and p.schema.pay is not None
        assert float(p.schema.pay.reward_per_item) > 0 and float(p.schema.pay.min_fair_hourly) > 0
    gold = gold_svc.gold_answers(store, spam)
    assert {g["spam"] for g in gold.values()} == {"spam", "ham"}
    # the qualification test (the first five gold items) is 3 spam and 2 ham: one answer to everything fails
    with store.read() as conn:
        test = [answers["spam"] for *_, answers in qualification_items(conn, spam)]
    assert sorted(test) == ["ham", "ham", "spam", "spam", "spam"]
    assert all(g["preference"]["choice"] in ("A", "B", "tie") for g in gold_svc.gold_answers(store, pref).values())
    # a newcomer's first item in the spam project is the qualification test, which shows no gold
    newcomer = users_svc.create_user(store, "nia", "annotator")
    set_member(store, spam, "nia", "annotator")
    item = queue_svc.claim_next(store, spam, newcomer)
    assert item["stage"] == "qualification" and "gold" not in item["data"]
