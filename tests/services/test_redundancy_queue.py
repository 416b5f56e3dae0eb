"""Adaptive redundancy and pausing, through the API: the queue asks for more answers only where in doubt."""

import json
import random

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from labelwright.cli import main
from labelwright.errors import Forbidden, ValidationError
from labelwright.quality.adaptive import weak_annotators
from labelwright.schema import parse_schema
from labelwright.services import access, machines, pauses, redundancy, second_opinions, users, webhooks
from labelwright.services import queue as queue_svc
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project, set_overlap, update_settings
from tests.conftest import bearer, label_until_done, post_login, seed_answer

ADAPTIVE = {
    "name": "Adaptive", "slug": "adaptive", "id_field": "id",
    "gold": {"rate": 0},
    "redundancy": {"min": 2, "max": 3, "confidence": 0.95},
    "fields": [{"name": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}
EASY, CONTESTED = 40, 5


def _counts(store) -> dict[str, int]:
    with store.read() as conn:
        return dict(conn.execute(text("SELECT external_id, n_done FROM items")).all())


def _label_everything(http, tokens: list[str], answer) -> None:
    """Annotators take turns asking for the next item and answering it until, in a whole round of asking,
    every one hears 204 (an annotator told "nothing left" comes back while the others still work, as
    people do: a budget project reopens items as answers come in)."""
    refused, _ = label_until_done(http, "adaptive", {str(i): tok for i, tok in enumerate(tokens)},
                                  lambda name, item: {"spam": answer(item)})
    assert not refused, refused


def test_more_answers_only_where_annotators_disagree(http, store, owner, make_annotator):
    r = http.post("/api/v1/projects", json=ADAPTIVE, headers=bearer(owner[1]))
    assert r.status_code == 201, r.text
    assert r.json()["overlap"] == 2  # overlap is redundancy.min
    items = [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(EASY)]
    items += [{"id": f"x{i}", "text": "contested"} for i in range(CONTESTED)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    tokens = [make_annotator(f"a{i}")[1] for i in range(5)]
    arrivals: dict[str, int] = {}

    def answer(item):
        if item["data"]["text"] != "contested":
            return item["data"]["text"]  # everyone agrees on the easy items
        n = arrivals.get(item["external_id"], 0)  # contested: each answer contradicts the last one
        arrivals[item["external_id"]] = n + 1
        return "spam" if n % 2 == 0 else "ham"

    _label_everything(http, tokens, answer)
    counts = _counts(store)
    assert all(2 <= n <= 3 for n in counts.values()), counts
    assert all(counts[f"x{i}"] == 3 for i in range(CONTESTED)), counts  # in doubt: up to the maximum
    late = [counts[f"e{i:02d}"] for i in range(EASY - 20, EASY)]
    assert late == [2] * 20, counts  # once skills are known, two agreeing answers settle an item
    assert sum(counts.values()) < 3 * len(counts)
    status = http.get("/api/v1/projects/adaptive/status", headers=bearer(owner[1])).json()
    assert status["items"]["done"] == EASY + CONTESTED
    assert status["annotations"] == status["annotations_needed"] == sum(counts.values())


def test_a_budget_spends_its_extra_answers_on_items_in_doubt(http, store, owner, make_annotator):
    """redundancy.budget: 2.5 answers per item on average. Items are never kept open one by one; after
    refits the items in most doubt, settled at their two answers, are reopened, within the budget."""
    schema = {**ADAPTIVE, "redundancy": {"min": 2, "max": 5, "budget": 2.5}}
    r = http.post("/api/v1/projects", json=schema, headers=bearer(owner[1]))
    assert r.status_code == 201, r.text
    easy, contested = 40, 8
    items = [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(easy)]
    items += [{"id": f"x{i}", "text": "contested"} for i in range(contested)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    tokens = [make_annotator(f"a{i}")[1] for i in range(6)]
    arrivals: dict[str, int] = {}

    def answer(item):
        if item["data"]["text"] != "contested":
            return item["data"]["text"]
        n = arrivals.get(item["external_id"], 0)
        arrivals[item["external_id"]] = n + 1
        return "spam" if n % 2 == 0 else "ham"

    _label_everything(http, tokens, answer)
    counts = _counts(store)
    total = sum(counts.values())
    assert all(2 <= n <= 5 for n in counts.values()), counts
    assert total <= int(2.5 * (easy + contested)), (total, counts)
    extra_contested = sum(counts[f"x{i}"] - 2 for i in range(contested))
    extra_easy = sum(counts[f"e{i:02d}"] - 2 for i in range(easy))
    assert extra_contested >= 2 * contested, counts  # the doubtful items got most of the extra answers
    assert extra_contested > extra_easy, counts
    status = http.get("/api/v1/projects/adaptive/status", headers=bearer(owner[1])).json()
    assert status["items"]["done"] == easy + contested
    assert status["annotations"] == status["annotations_needed"] == total


def _tuned_project(http, store, owner, make_annotator, gold_right) -> tuple[list[str], dict[str, int]]:
    """redundancy.accuracy: 0.9 with 24 gold items (served first: rate 1), 30 easy and 6 contested items,
    5 annotators. ``gold_right(i, n)``: whether the n-th answer to gold item i is right."""
    schema = {**ADAPTIVE, "gold": {"rate": 1.0}, "redundancy": {"min": 2, "max": 4, "accuracy": 0.9}}
    r = http.post("/api/v1/projects", json=schema, headers=bearer(owner[1]))
    assert r.status_code == 201, r.text
    gold = [{"id": f"g{i:02d}", "text": "spam" if i % 2 else "ham", "gold": {"spam": "spam" if i % 2 else "ham"}}
            for i in range(24)]
    items = gold + [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(30)]
    items += [{"id": f"x{i}", "text": "contested"} for i in range(6)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    tokens = [make_annotator(f"a{i}")[1] for i in range(5)]
    arrivals: dict[str, int] = {}

    def answer(item):
        n = arrivals.get(item["external_id"], 0)
        arrivals[item["external_id"]] = n + 1
        text_ = item["data"]["text"]
        if item["external_id"].startswith("g"):
            return text_ if gold_right(int(item["external_id"][1:]), n) else ("ham" if text_ == "spam" else "spam")
        if text_ != "contested":
            return text_
        return "spam" if n % 2 == 0 else "ham"

    _label_everything(http, tokens, answer)
    return tokens, _counts(store)


def test_a_confidence_tuned_on_gold_lets_a_reliable_crowd_stop_early(http, store, owner, make_annotator):
    """Everyone right on every gold item: on gold, two answers were always enough, so the tuned threshold
    is the lowest tried and contested items stop at their two answers (a fixed 0.95 asks for more)."""
    tokens, counts = _tuned_project(http, store, owner, make_annotator, gold_right=lambda i, n: True)
    report = http.get("/api/v1/projects/adaptive/quality", headers=bearer(owner[1])).json()["redundancy"]
    assert report["rule"] == "tuned" and report["tuned"] is True, report
    assert report["gold_items"] == 24 and report["target_accuracy"] == 0.9
    assert report["confidence"] == 0.5 and report["configured_confidence"] == 0.95
    assert "tuned on 24 gold items" in report["reason"]
    assert report["curve"][0] == {"confidence": 0.5, "accuracy": 1.0, "answers": 2.0}
    assert all(counts[f"x{i}"] == 2 for i in range(6)), counts
    # annotators never see it: the quality report is the owner's
    assert http.get("/api/v1/projects/adaptive/quality", headers=bearer(tokens[0])).status_code == 403


def test_a_target_gold_shows_out_of_reach_asks_for_the_most_answers(http, store, owner, make_annotator):
    """Every annotator wrong on half the gold items (a different half each): no threshold reaches 90% on
    gold, so the highest is used and items in doubt get up to max answers. (Annotators who are always
    wrong would not do: the model learns to read their answers backwards.)"""
    tokens, counts = _tuned_project(http, store, owner, make_annotator, gold_right=lambda i, n: (i + n) % 2 == 0)
    report = http.get("/api/v1/projects/adaptive/quality", headers=bearer(owner[1])).json()["redundancy"]
    assert report["rule"] == "tuned" and report["confidence"] == 0.99, report
    assert "is only" in report["reason"] and "up to 4 answers" in report["reason"]
    assert all(counts[f"x{i}"] == 4 for i in range(6)), counts
    ordinary = [n for k, n in counts.items() if k.startswith("e")]
    assert sum(ordinary) > 2 * len(ordinary), counts  # doubt, judged by gold, reaches the easy items too
    assert max(ordinary) <= 4


def test_items_settled_on_rough_skills_are_reopened_when_the_skills_firm_up(store, owner, make_annotator):
    """Two annotators agree on six items before anyone's skill is known (70% each: two agreeing answers give
    0.845, above the project's 0.8): the items settle at two answers. Their later answers, beside two careful
    annotators', turn out to be coin flips; at the next refit those six items are in doubt again and each is
    reopened for a third answer. Items two careful annotators agreed on stay settled."""
    p = create_project(store, {**ADAPTIVE, "redundancy": {"min": 2, "max": 3, "confidence": 0.8}},
                       created_by=owner[0].id)
    add = [{"id": f"e{k}", "text": "spam"} for k in range(6)]
    add += [{"id": f"f{k:02d}", "text": "spam" if k % 2 else "ham"} for k in range(24)]
    add += [{"id": f"g{k}", "text": "ham"} for k in range(6)]
    add_items(store, p, add)
    ids = _ids(store)
    careful = [make_annotator(n)[0] for n in ("c1", "c2")]
    sloppy = [make_annotator(n)[0] for n in ("s1", "s2")]
    for k in range(6):  # the sloppy two agree, early, on the right label
        for u in sloppy:
            seed_answer(store, ids[f"e{k}"], u, {"spam": "spam"})
    assert [_counts(store)[f"e{k}"] for k in range(6)] == [2] * 6
    with store.read() as conn:
        assert not conn.execute(text("SELECT count(*) FROM items WHERE external_id LIKE 'e%' AND is_open = 1")).scalar()
    for k in range(24):  # then everyone answers f items: careful right, sloppy right one time in two
        truth = "spam" if k % 2 else "ham"
        wrong = "ham" if truth == "spam" else "spam"
        for u in careful:
            seed_answer(store, ids[f"f{k:02d}"], u, {"spam": truth})
        for n, u in enumerate(sloppy):
            seed_answer(store, ids[f"f{k:02d}"], u, {"spam": truth if (k // 2 + n) % 2 else wrong})
    for k in range(6):
        for u in careful:
            seed_answer(store, ids[f"g{k}"], u, {"spam": "ham"})
    redundancy.refit(store, get_project(store, p.id))
    with store.read() as conn:
        rows = dict(conn.execute(text("SELECT external_id, target FROM items")).all())
        open_ = set(conn.execute(text("SELECT external_id FROM items WHERE is_open = 1")).scalars())
    assert all(rows[f"e{k}"] == 3 for k in range(6)), rows   # reopened: one more answer each
    assert {f"e{k}" for k in range(6)} <= open_
    assert all(rows[f"g{k}"] in (None, 2) for k in range(6)) and not {f"g{k}" for k in range(6)} & open_


def _ids(store) -> dict[str, int]:
    with store.read() as conn:
        return dict(conn.execute(text("SELECT external_id, id FROM items")).all())


def test_accuracy_and_budget_are_exclusive():
    with pytest.raises(ValidationError, match="budget or an accuracy"):
        parse_schema({**ADAPTIVE, "redundancy": {"min": 2, "max": 5, "budget": 3, "accuracy": 0.9}})
    for bad in (0, 1, 1.5):
        with pytest.raises(ValidationError):
            parse_schema({**ADAPTIVE, "redundancy": {"min": 2, "max": 5, "accuracy": bad}})


def test_an_item_in_doubt_reopens_for_a_third_annotator(http, store, owner, make_annotator):
    p = create_project(store, {**ADAPTIVE, "redundancy": {"min": 2, "max": 5, "confidence": 0.95}},
                       created_by=owner[0].id)
    http.post("/api/v1/projects/adaptive/items", json={"items": [{"id": "only", "text": "t"}]},
              headers=bearer(owner[1]))
    a, b, c = (make_annotator(n)[1] for n in "abc")
    for tok, ans in ((a, "spam"), (b, "ham")):
        item = http.post("/api/v1/projects/adaptive/next", headers=bearer(tok)).json()
        http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": ans}}, headers=bearer(tok))
    assert http.get("/api/v1/projects/adaptive/mine", headers=bearer(c)).json()["left"] == 1
    third = http.post("/api/v1/projects/adaptive/next", headers=bearer(c))
    assert third.status_code == 200 and third.json()["external_id"] == "only"
    with store.read() as conn:
        assert conn.execute(text("SELECT target FROM items")).scalar_one() == 3
    assert get_project(store, p.id).overlap == 2


def test_fixed_overlap_projects_are_untouched(http, store, spam_project, make_annotator):
    a, b, c = (make_annotator(n)[1] for n in "abc")
    for tok, ans in ((a, "spam"), (b, "ham")):
        item = http.post("/api/v1/projects/spam/next", headers=bearer(tok)).json()
        assert item["external_id"] == "c0"
        http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": ans}}, headers=bearer(tok))
    assert http.post("/api/v1/projects/spam/next", headers=bearer(c)).json()["external_id"] == "c1"


def test_redundancy_schema_rules():
    base = {k: v for k, v in ADAPTIVE.items() if k != "redundancy"}
    assert parse_schema({**base, "redundancy": {"min": 3, "max": 7}}).overlap == 3
    with pytest.raises(ValidationError, match="overlap is redundancy.min"):
        parse_schema({**base, "overlap": 2, "redundancy": {"min": 3}})
    with pytest.raises(ValidationError, match="max .2. must be at least min .3."):
        parse_schema({**base, "redundancy": {"min": 3, "max": 2}})
    assert parse_schema({**base, "redundancy": {"min": 2, "max": 5, "budget": 2.5}}).redundancy.budget == 2.5
    for budget in (1.5, 5.5):
        with pytest.raises(ValidationError, match=rf"budget \({budget}\) must be between min \(2\) and max \(5\)"):
            parse_schema({**base, "redundancy": {"min": 2, "max": 5, "budget": budget}})
    with pytest.raises(ValidationError, match="'note' is a text question"):
        parse_schema({**base, "questions": base["questions"] + [{"name": "note", "type": "text"}],
                      "redundancy": {"question": "note"}})
    with pytest.raises(ValidationError, match="needs a single choice, rating or pairwise"):
        parse_schema({**base, "questions": [{"name": "note", "type": "text"}], "redundancy": {}})
    rated = parse_schema({**base, "questions": [{"name": "r", "type": "rating"}], "redundancy": {}})
    assert rated.redundancy_question().name == "r"


def test_set_overlap_moves_the_minimum(store, owner):
    p = create_project(store, ADAPTIVE, created_by=owner[0].id)
    p = set_overlap(store, p, 4)
    assert (p.overlap, p.schema.redundancy.min, p.schema.redundancy.max) == (4, 4, 4)


def test_pausing_an_annotator(http, store, spam_project, owner, make_annotator):
    _, tok = make_annotator("ann")
    webhooks.create_webhook(store, "https://hooks.example.org/lw", spam_project, ["annotator.paused"])
    held = http.post("/api/v1/projects/spam/next", headers=bearer(tok)).json()
    assert http.post("/api/v1/projects/spam/annotators/ann/pause", json={"reason": "too fast"},
                     headers=bearer(tok)).status_code == 403  # only an owner pauses
    r = http.post("/api/v1/projects/spam/annotators/ann/pause", json={"reason": "too fast"},
                  headers=bearer(owner[1]))
    assert r.json() == {"annotator": "ann", "paused": True, "leases_released": 1}
    paused = http.get("/api/v1/projects/spam/paused", headers=bearer(owner[1])).json()
    assert paused["ann"]["reason"] == "too fast" and paused["ann"]["paused_by"] == "olive"
    with store.read() as conn:
        event = json.loads(conn.execute(text("SELECT payload FROM events")).scalar_one())
    assert event == {"kind": "annotator.paused", "project": "spam", "annotator": "ann", "reason": "too fast",
                     "automatic": False, "paused_by": "olive"}
    # ann has no answer yet, and is listed on the quality page all the same, so that they can be resumed there
    q = http.get("/api/v1/projects/spam/quality", headers=bearer(owner[1])).json()
    assert [(a["annotator"], a["annotations"], a["paused"], a["pause_reason"], a["median_seconds"])
            for a in q["annotators"]] == [("ann", 0, True, "too fast", None)]
    assert post_login(http, "olive", "owner-password", follow_redirects=False).status_code == 303
    page = http.get("/projects/spam/quality")
    assert page.status_code == 200 and "too fast" in page.text and "/annotators/ann/resume" in page.text
    http.cookies.clear()
    nxt = http.post("/api/v1/projects/spam/next", headers=bearer(tok))
    assert nxt.status_code == 403 and nxt.json()["error"].endswith("is paused; a project manager can resume it. "
                                                                   "Reason: too fast")
    sub = http.post(f"/api/v1/items/{held['id']}/annotations", json={"answers": {"spam": "ham"}},
                    headers=bearer(tok))
    assert sub.status_code == 403 and sub.json()["error"] == nxt.json()["error"]
    with store.read() as conn:  # the released slot went back to the queue
        assert conn.execute(text("SELECT n_assigned FROM items WHERE id = :i"), {"i": held["id"]}).scalar_one() == 0
    # another annotator still works normally
    _, other = make_annotator("other")
    assert http.post("/api/v1/projects/spam/next", headers=bearer(other)).status_code == 200
    r = http.post("/api/v1/projects/spam/annotators/ann/resume", headers=bearer(owner[1]))
    assert r.json() == {"annotator": "ann", "paused": False, "was_paused": True}
    again = http.post("/api/v1/projects/spam/next", headers=bearer(tok))
    assert again.status_code == 200
    assert http.post(f"/api/v1/items/{again.json()['id']}/annotations", json={"answers": {"spam": "ham"}},
                     headers=bearer(tok)).status_code == 201
    assert http.post("/api/v1/projects/spam/annotators/nobody/pause",
                     headers=bearer(owner[1])).status_code == 404


def test_pause_and_resume_from_the_cli(http, store, spam_project, make_annotator, db_url):
    _, tok = make_annotator("ann")
    first = http.post("/api/v1/projects/spam/next", headers=bearer(tok)).json()
    assert http.post(f"/api/v1/items/{first['id']}/annotations", json={"answers": {"spam": "ham"}},
                     headers=bearer(tok)).status_code == 201  # one answer: the quality table lists ann
    http.post("/api/v1/projects/spam/next", headers=bearer(tok))
    res = CliRunner().invoke(main, ["--db", db_url, "pause", "spam", "ann", "--reason", "checking"])
    assert res.exit_code == 0 and "paused ann in spam (1 lease released)" in res.output, res.output
    assert http.post("/api/v1/projects/spam/next", headers=bearer(tok)).status_code == 403
    res = CliRunner().invoke(main, ["--db", db_url, "quality", "spam"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "paused (checking)" in res.output, res.output
    res = CliRunner().invoke(main, ["--db", db_url, "resume", "spam", "ann"])
    assert res.exit_code == 0 and "resumed ann in spam" in res.output
    assert http.post("/api/v1/projects/spam/next", headers=bearer(tok)).status_code == 200
    res = CliRunner().invoke(main, ["--db", db_url, "pause", "spam", "nobody"])
    assert res.exit_code != 0 and "no user named 'nobody'" in res.output


def test_weak_annotators_are_paused_automatically(http, store, owner, make_annotator):
    """redundancy.pause_below: an annotator answering at random is paused at a refit soon after their tenth
    answer, with the reason shown to them and to the managers; honest annotators and the owner (who also
    answers every item wrong here) are not. A manager's resume is final: later refits leave them alone."""

    schema = {**ADAPTIVE, "redundancy": {"min": 2, "max": 3, "confidence": 0.95, "pause_below": 0.25}}
    r = http.post("/api/v1/projects", json=schema, headers=bearer(owner[1]))
    assert r.status_code == 201, r.text
    webhooks.create_webhook(store, "https://hooks.example.org/lw", get_project(store, "adaptive"),
                            ["annotator.paused", "annotator.resumed"])
    items = [{"id": f"e{i:03d}", "text": "spam" if i % 2 else "ham"} for i in range(120)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    people = {f"a{i}": make_annotator(f"a{i}") for i in range(4)}
    honest = {name: tok for name, (_, tok) in people.items()}
    people["sam"] = make_annotator("sam")
    who = {**honest, "sam": people["sam"][1], owner[0].name: owner[1]}
    rng = random.Random(7)

    def answer(name, item):
        truth = item["data"]["text"]
        if name in honest:
            return {"spam": truth}
        if name == "sam":
            return {"spam": rng.choice(["spam", "ham"])}
        return {"spam": "ham" if truth == "spam" else "spam"}  # the owner, trying things out, answers all wrong

    refused, answered = label_until_done(http, "adaptive", who, answer)
    assert list(refused) == ["sam"], (refused, answered)
    assert "your work on this project is paused" in refused["sam"]
    assert "Reason: paused automatically: estimated accuracy" in refused["sam"]
    assert "under the project's bar of" in refused["sam"]
    assert 10 <= answered["sam"] <= 30, answered  # judged after 10 answers, paused at the next refit or so
    assert answered[owner[0].name] >= 10  # the owner, as weak as can be, is never paused:
    project = get_project(store, "adaptive")
    weak = weak_annotators(redundancy.load_labels(store, project)[0], redundancy.current_fit(store, project).skills,
                           0.25)
    assert {owner[0].id, people["sam"][0].id} <= set(weak)
    assert not any(people[name][0].id in weak for name in honest)
    paused = http.get("/api/v1/projects/adaptive/paused", headers=bearer(owner[1])).json()
    assert list(paused) == ["sam"] and paused["sam"]["paused_by"] is None
    with store.read() as conn:
        log = conn.execute(text("SELECT actor_id, target FROM audit_log WHERE action = 'annotator.pause'")).all()
    assert [tuple(row) for row in log] == [(None, "sam")]
    q = http.get("/api/v1/projects/adaptive/quality", headers=bearer(owner[1])).json()
    assert q["redundancy"]["pause_below"] == 0.25
    row = next(a for a in q["annotators"] if a["annotator"] == "sam")
    assert row["paused"] and row["pause_reason"].startswith("paused automatically")
    # sam cannot lift it himself; a manager can, and the model does not overrule them
    assert http.post("/api/v1/projects/adaptive/annotators/sam/resume",
                     headers=bearer(who["sam"])).status_code == 403
    assert http.post("/api/v1/projects/adaptive/annotators/sam/resume",
                     headers=bearer(owner[1])).json()["was_paused"] is True
    fit = redundancy.refit(store, get_project(store, "adaptive"))
    assert fit.paused == []
    assert http.get("/api/v1/projects/adaptive/paused", headers=bearer(owner[1])).json() == {}
    # a webhook that asked for them got both events (in the outbox, in the transactions of the change)
    with store.read() as conn:
        sent = [json.loads(p) for p in conn.execute(text("SELECT payload FROM events ORDER BY id")).scalars()]
    assert [e["kind"] for e in sent] == ["annotator.paused", "annotator.resumed"]
    assert sent[0]["annotator"] == "sam" and sent[0]["automatic"] is True and sent[0]["paused_by"] is None
    assert sent[0]["reason"].startswith("paused automatically") and sent[0]["project"] == "adaptive"
    assert sent[1] == {"kind": "annotator.resumed", "project": "adaptive", "annotator": "sam",
                       "resumed_by": owner[0].name}


def test_pause_below_is_checked():
    base = {**ADAPTIVE}
    for bad in (-0.1, 1.5, "lots"):
        with pytest.raises(ValidationError):
            parse_schema({**base, "redundancy": {"min": 2, "max": 3, "pause_below": bad}})
    assert parse_schema({**base, "redundancy": {"min": 2, "max": 3, "pause_below": 0}}).redundancy.pause_below == 0


def test_only_plain_annotators_are_paused_automatically(store, owner):
    """Four of nine answer every item wrong, item by item; weak_annotators names all four, but only the
    plain annotator is paused: not the machine annotator (an LLM, a member with the annotator role), not
    an organisation reviewer labelling as a member, not the owner."""
    schema = {**ADAPTIVE, "redundancy": {"min": 9, "max": 10, "confidence": 0.95, "pause_below": 0.25}}
    p = create_project(store, parse_schema(schema))
    add_items(store, p, [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(16)])
    honest = [users.create_user(store, f"h{i}", "annotator") for i in range(5)]
    for u in honest:
        access.set_member(store, p, u.name, "annotator")
    spammer = users.create_user(store, "sam", "annotator")
    access.set_member(store, p, "sam", "annotator")
    reviewer = users.create_user(store, "rev", "reviewer")
    access.set_member(store, p, "rev", "annotator")
    machines.add_llm_annotator(store, p, name="bot", base_url="http://127.0.0.1:9/v1", model="m")
    bot = users.get_user(store, "llm:bot")
    refused: set[str] = set()
    with store.read() as conn:
        rows = conn.execute(text("SELECT id, data FROM items ORDER BY id")).all()
    for item_id, data in rows:
        truth = "spam" if '"spam"' in data else "ham"
        for u in [*honest, spammer, reviewer, bot, owner[0]]:
            answer = truth if u in honest else ("ham" if truth == "spam" else "spam")
            try:
                seed_answer(store, item_id, u, {"spam": answer})
            except Forbidden:
                refused.add(u.name)
    assert refused == {"sam"}
    project = get_project(store, p.slug)
    fit = redundancy.refit(store, project)
    weak = weak_annotators(redundancy.load_labels(store, project)[0], fit.skills, 0.25)
    assert {spammer.id, reviewer.id, bot.id, owner[0].id} <= set(weak), weak
    assert not any(u.id in weak for u in honest)
    with store.read() as conn:
        paused = conn.execute(text("SELECT user_id FROM paused_annotators")).scalars().all()
    assert paused == [spammer.id]


def test_a_colluding_majority_cannot_get_the_honest_paused_where_there_is_gold(http, store, owner, make_annotator):
    """Four annotators agree to give the wrong label everywhere, gold items included; three are honest. The
    answers alone would make the colluders the crowd; the gold answers, which every annotator is served
    first, show who is right: the colluders are paused, the honest never are."""
    schema = {**ADAPTIVE, "gold": {"rate": 0.2},
              "redundancy": {"min": 2, "max": 3, "confidence": 0.95, "pause_below": 0.25}}
    assert http.post("/api/v1/projects", json=schema, headers=bearer(owner[1])).status_code == 201
    gold = [{"id": f"g{i:02d}", "text": "spam" if i % 2 else "ham", "gold": {"spam": "spam" if i % 2 else "ham"}}
            for i in range(20)]
    items = gold + [{"id": f"e{i:03d}", "text": "spam" if i % 2 else "ham"} for i in range(100)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    who = {name: make_annotator(name)[1] for name in ("h0", "h1", "h2", "c0", "c1", "c2", "c3")}

    def answer(name, item):
        truth = item["data"]["text"]
        return {"spam": truth if name.startswith("h") else ("ham" if truth == "spam" else "spam")}

    refused, answered = label_until_done(http, "adaptive", who, answer)
    assert sorted(refused) == ["c0", "c1", "c2", "c3"], (refused, answered)
    assert all(answered[f"h{i}"] > 10 for i in range(3)), answered


def test_amending_gold_answers_does_not_escape_a_pause(store, owner):
    """A spammer who answers at random but, having somehow learned the gold answers, amends each wrong gold
    answer right after giving it: judged on current answers they would be 100% on gold and stay; gold is
    measured on first answers wherever it counts, so they are paused, with their real gold accuracy."""
    schema = {**ADAPTIVE, "gold": {"rate": 0}, "history_size": 50, "redundancy": {"min": 4, "max": 5}}
    p = create_project(store, parse_schema(schema))
    gold = [{"id": f"g{i:02d}", "text": "spam" if i % 2 else "ham", "gold": {"spam": "spam" if i % 2 else "ham"}}
            for i in range(10)]
    add_items(store, p, gold + [{"id": f"e{i:02d}", "text": "spam" if i % 2 else "ham"} for i in range(30)])
    people = [users.create_user(store, name, "annotator") for name in ("h0", "h1", "h2", "sly")]
    for u in people:
        access.set_member(store, p, u.name, "annotator")
    rng = random.Random(2)
    with store.read() as conn:
        rows = conn.execute(text("SELECT id, external_id, data FROM items ORDER BY id")).all()
    for item_id, external_id, data in rows:
        truth = "spam" if '"spam"' in data else "ham"
        wrong = "ham" if truth == "spam" else "spam"
        for u in people:
            if u.name != "sly":
                seed_answer(store, item_id, u, {"spam": truth})
            elif external_id.startswith("g"):
                first = seed_answer(store, item_id, u, {"spam": wrong})[0]
                queue_svc.amend(store, first["id"], u, {"spam": truth})  # "fixed" at once
            else:
                seed_answer(store, item_id, u, {"spam": rng.choice(["spam", "ham"])})
    project = update_settings(store, get_project(store, p.slug),
                              {"redundancy": {"min": 4, "max": 5, "pause_below": 0.25}})
    fit = redundancy.refit(store, project)
    assert fit.paused == ["sly"]
    reason = pauses.paused(store, project)["sly"]["reason"]
    assert reason.startswith("paused automatically: gold accuracy 0% on 'spam'"), reason


def _one_in_doubt(http, owner_token: str, tokens: list[str], item_id: str) -> None:
    """Import ``item_id`` and have the first two of ``tokens`` answer it differently: in doubt, reopened."""
    assert http.post("/api/v1/projects/adaptive/items", json={"items": [{"id": item_id, "text": "t"}]},
                     headers=bearer(owner_token)).status_code == 200
    for tok, ans in zip(tokens[:2], ("spam", "ham")):
        item = http.post("/api/v1/projects/adaptive/next", headers=bearer(tok)).json()
        assert item["external_id"] == item_id
        assert http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": ans}},
                         headers=bearer(tok)).status_code == 201


def test_second_opinions_come_from_the_stronger_half(http, store, owner, make_annotator):
    """redundancy.second_opinions = stronger_half: after a refit, the annotators estimated below the median
    still get first answers but no item that already has its two; the stronger half does. The quality page
    lists the weaker half; turning the setting off forgets the list at once."""
    schema = {**ADAPTIVE, "redundancy": {"min": 2, "max": 3, "confidence": 0.95, "second_opinions": "stronger_half"}}
    assert http.post("/api/v1/projects", json=schema, headers=bearer(owner[1])).status_code == 201
    items = [{"id": f"e{i:03d}", "text": "spam" if i % 2 else "ham"} for i in range(60)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    who = {name: make_annotator(name)[1] for name in ("h0", "h1", "h2", "n0", "n1", "n2")}
    rng = random.Random(3)

    def answer(name, item):
        truth = item["data"]["text"]
        wrong = name.startswith("n") and rng.random() < 0.4
        return {"spam": ("ham" if truth == "spam" else "spam") if wrong else truth}

    refused, answered = label_until_done(http, "adaptive", who, answer)
    assert not refused and all(n >= 10 for n in answered.values()), answered
    weaker = http.get("/api/v1/projects/adaptive/quality", headers=bearer(owner[1])).json()["redundancy"]
    assert weaker["second_opinions"] == "stronger_half"
    assert [w["annotator"] for w in weaker["weaker_half"]] and \
        {w["annotator"] for w in weaker["weaker_half"]} == {"n0", "n1", "n2"}, weaker
    assert all(w["accuracy"] < w["median"] and w["answers"] >= 10 for w in weaker["weaker_half"])

    # an item in doubt after its two answers: the weaker half is told there is nothing for them (and their
    # count of items left says so too); the stronger half gets it
    _one_in_doubt(http, owner[1], [who["h0"], who["h1"]], "doubt")
    with store.read() as conn:
        assert conn.execute(text("SELECT target FROM items WHERE external_id = 'doubt'")).scalar_one() == 3
    for name in ("n0", "n1", "n2"):
        assert http.post("/api/v1/projects/adaptive/next", headers=bearer(who[name])).status_code == 204
        mine = http.get("/api/v1/projects/adaptive/mine", headers=bearer(who[name])).json()
        assert mine["left"] == 0 and mine["held_back"]["waiting"] == 1, mine  # and why, for API clients
    mine = http.get("/api/v1/projects/adaptive/mine", headers=bearer(who["h2"])).json()
    assert mine["left"] == 1 and mine["held_back"] is None
    project = get_project(store, "adaptive")
    n0 = users.get_user(store, "n0")
    told = second_opinions.held_back(store, project, n0.id)  # what their "All done" page says
    assert told is not None and told["waiting"] == 1 and told["accuracy"] < told["median"], told
    assert second_opinions.held_back(store, project, users.get_user(store, "h2").id) is None
    third = http.post("/api/v1/projects/adaptive/next", headers=bearer(who["h2"]))
    assert third.status_code == 200 and third.json()["external_id"] == "doubt"
    assert second_opinions.held_back(store, project, n0.id) is None  # nothing waits now: nothing to explain
    assert http.post(f"/api/v1/items/{third.json()['id']}/release", headers=bearer(who["h2"])).status_code == 204
    # a new item's first answers come from anyone, the weaker half included
    _one_in_doubt(http, owner[1], [who["h0"], who["h1"]], "doubt2")
    _one_in_doubt(http, owner[1], [who["h0"], who["h1"]], "doubt3")
    assert http.post("/api/v1/projects/adaptive/items", json={"items": [{"id": "fresh", "text": "t"}]},
                     headers=bearer(owner[1])).status_code == 200
    first = http.post("/api/v1/projects/adaptive/next", headers=bearer(who["n0"]))
    assert first.status_code == 200 and first.json()["external_id"] == "fresh"
    # nor does the labelling page's prefetch of the next item hand them one of the three in doubt
    assert queue_svc.prefetch(store, project, n0, first.json()["id"]) is None
    h2 = users.get_user(store, "h2")
    assert http.post("/api/v1/projects/adaptive/next", headers=bearer(who["h2"])).json()["external_id"] == "doubt"
    assert queue_svc.prefetch(store, project, h2, third.json()["id"])["external_id"] in ("doubt2", "doubt3")

    # turned off, everyone gives second opinions again, at once
    r = http.patch("/api/v1/projects/adaptive/settings", headers=bearer(owner[1]),
                   json={"redundancy": {**schema["redundancy"], "second_opinions": "anyone"}})
    assert r.status_code == 200, r.text
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM weaker_half")).scalar_one() == 0
    later = http.post("/api/v1/projects/adaptive/next", headers=bearer(who["n1"]))
    assert later.status_code == 200 and later.json()["external_id"] == "doubt3"  # h2 holds the other two
    assert http.get("/api/v1/projects/adaptive/quality",
                    headers=bearer(owner[1])).json()["redundancy"]["weaker_half"] == []
    assert second_opinions.held_back(store, get_project(store, "adaptive"), n0.id) is None


def test_a_team_too_small_to_split_holds_nobody_back(http, store, owner, make_annotator):
    """Two careful and two careless annotators, up to 3 answers an item: held back, the careless two would
    leave only two to give a third answer, and an item both careful ones had answered would wait for ever.
    So nobody is held back, and every item gets the answers it asks for."""
    schema = {**ADAPTIVE, "redundancy": {"min": 2, "max": 3, "confidence": 0.95, "second_opinions": "stronger_half"}}
    assert http.post("/api/v1/projects", json=schema, headers=bearer(owner[1])).status_code == 201
    items = [{"id": f"e{i:03d}", "text": "spam" if i % 2 else "ham"} for i in range(40)]
    assert http.post("/api/v1/projects/adaptive/items", json={"items": items},
                     headers=bearer(owner[1])).status_code == 200
    who = {name: make_annotator(name)[1] for name in ("h0", "h1", "n0", "n1")}
    rng = random.Random(3)
    refused, answered = label_until_done(http, "adaptive", who, lambda name, item: {"spam": (
        ("ham" if item["data"]["text"] == "spam" else "spam") if name.startswith("n") and rng.random() < 0.4
        else item["data"]["text"])})
    assert not refused and all(n >= 10 for n in answered.values()), answered
    assert http.get("/api/v1/projects/adaptive/quality",
                    headers=bearer(owner[1])).json()["redundancy"]["weaker_half"] == []
    status = http.get("/api/v1/projects/adaptive/status", headers=bearer(owner[1])).json()
    assert status["items"]["done"] == 40, status


def test_second_opinions_is_checked():
    base = {**ADAPTIVE}
    with pytest.raises(ValidationError, match="second_opinions"):
        parse_schema({**base, "redundancy": {"min": 2, "max": 3, "second_opinions": "experts"}})
    assert parse_schema(base).redundancy.second_opinions == "anyone"
