"""The chat question type: its settings and answers (checked alone and against the item's conversation),
per-turn aggregation, rankings, gold; a project taken through the API and the labelling form, the export
and the TRL sets (read back by ``datasets``) on SQLite and PostgreSQL. The conversations are written for
these tests (tests/questions/data/chat.jsonl), one with markup in its content."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io import trl
from labelwright.quality.turns import borda, kendall_tau, rating_stats
from labelwright.schema import parse_schema
from labelwright.services.projects import get_project
from tests.conftest import bearer, post_login

DATA = Path(__file__).parent / "data" / "chat.jsonl"
ITEMS = [json.loads(line) for line in DATA.read_text().splitlines()]

SCHEMA = {
    "name": "Assistant turns", "slug": "turns", "overlap": 2, "id_field": "id", "gold": {"rate": 1},
    "fields": [{"name": "messages", "type": "chat", "label": "Conversation"}],
    "questions": [{"name": "turns", "type": "chat", "prompt": "Rate each assistant turn", "rewrite": True,
                   "labels": ["wrong", "poor", "fair", "good", "excellent"]}],
}
RANK = {
    "name": "Replies", "slug": "replies", "overlap": 2, "id_field": "id", "send_fields": ["candidates"],
    "fields": [{"name": "messages", "type": "chat"}],
    "questions": [{"name": "best", "type": "chat", "mode": "rank"}],
}
CONVERSATION = {"messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "5"}, {"role": "user", "content": "Sure?"},
    {"role": "assistant", "content": "Sorry: 4."}]}


# ---- answers ------------------------------------------------------------------------------------------


def test_answers_are_checked_with_a_field_path():
    schema = parse_schema(SCHEMA)
    q = schema.question("turns")
    assert parse_schema(schema.to_json()) == schema
    got = schema.validate_answers({"turns": {"ratings": {4: "4", "2": 1.0}, "rewrites": {"2": " 4\r\n", "4": ""}}})
    assert got == {"turns": {"ratings": {"2": 1, "4": 4}, "rewrites": {"2": "4"}}}
    bad = [
        ({"ratings": {"2": 6}}, "turns.ratings.2", "outside the scale 1..5"),
        ({"ratings": {"2": True}}, "turns.ratings.2", "expected an integer"),
        ({"ratings": {"two": 3}}, "turns.ratings.two", "position in the conversation"),
        ({"ratings": {}}, "turns.ratings", "rate the assistant turns"),
        ({"ratings": {"2": 3}, "rewrites": {"2": 4}}, "turns.rewrites.2", "a rewrite is text"),
        ({"ratings": {"2": 3}, "ranking": [0, 1]}, "turns", "unknown keys ['ranking']"),
        ([3, 4], "turns", "expected an object"),
    ]
    for value, field, words in bad:
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"turns": value})
        assert e.value.field == field and words in e.value.message, (value, e.value.field, e.value.message)
    # against the conversation: only assistant turns, only turns that exist, every one rated
    q.check_item({"ratings": {"2": 1, "4": 5}, "rewrites": {"2": "4"}}, CONVERSATION)
    against = [
        ({"ratings": {"1": 3, "2": 3, "4": 3}}, "turns.ratings.1", "turn 1 is a user turn; only assistant"),
        ({"ratings": {"2": 3, "4": 3, "9": 3}}, "turns.ratings.9", "not in the conversation, which has 5 turns"),
        ({"ratings": {"2": 3}}, "turns.ratings", "turn 4 has no rating"),
        ({"ratings": {"2": 3, "4": 3}, "rewrites": {"4": "Sorry: 4."}}, "turns.rewrites.4", "the turn as it was"),
        ({"ratings": {"2": 3, "4": 3}, "rewrites": {"0": "Be long."}}, "turns.rewrites.0", "a system turn"),
    ]
    for value, field, words in against:
        with pytest.raises(ValidationError) as e:
            q.check_item(value, CONVERSATION)
        assert e.value.field == field and words in e.value.message, (value, e.value.field, e.value.message)
    with pytest.raises(ValidationError, match="role one of") as e:
        q.check_item({"ratings": {"1": 3}}, {"messages": [{"role": "user", "content": "hi"},
                                                          {"role": "bot", "content": "hello"}]})
    assert e.value.field == "messages[1]"
    no_rewrites = parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "rewrite": False}]})
    with pytest.raises(ValidationError, match="does not take rewrites"):
        no_rewrites.validate_answers({"turns": {"ratings": {"2": 3}, "rewrites": {"2": "4"}}})


def test_an_import_names_the_line_and_turn_that_is_wrong(http, store, db_url, owner, tmp_path):
    h = bearer(owner[1])
    for spec in (SCHEMA, RANK):
        assert http.post("/api/v1/projects", headers=h, json=spec).status_code == 201
    bot = {"id": "b", "messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    r = http.post("/api/v1/projects/turns/items", headers=h, json={"items": [ITEMS[1], bot]})
    assert r.status_code == 422 and r.json()["field"] == "items[1].messages[1]", r.text
    assert "role one of ['system', 'user', 'assistant']" in r.json()["error"]
    r = http.post("/api/v1/projects/replies/items", headers=h, json={"items": [ITEMS[1]]})
    assert r.status_code == 422 and r.json()["field"] == "items[0].candidates", r.text
    path = tmp_path / "turns.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in [ITEMS[0], ITEMS[1], {**bot, "messages": []}]) + "\n")
    res = CliRunner().invoke(main, ["--db", db_url, "import", "turns", str(path)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and f"{path}, line 3, field 'messages'" in said and "non-empty list" in said, said
    res = CliRunner().invoke(main, ["--db", db_url, "status", "turns", "--json"])
    assert json.loads(res.output)["items"]["total"] == 0  # nothing landed


def test_settings_are_checked():
    def q(**kw):
        return parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], **kw}]})
    with pytest.raises(ValidationError, match="labels has 2 words for 5 points"):
        q(labels=["bad", "good"])
    with pytest.raises(ValidationError, match="at most 10 points"):
        q(min=0, max=10, labels=None)
    with pytest.raises(ValidationError, match="refers to field 'chat'"):
        q(field="chat")
    with pytest.raises(ValidationError, match="must be a chat field"):
        parse_schema({**SCHEMA, "fields": [{"name": "messages", "type": "text"}]})
    assert [p["key"] for p in q(min=0, max=3, labels=None).question("turns").points()] == ["0", "1", "2", "3"]
    assert [p["key"] for p in q(min=-2, max=2, labels=None).question("turns").points()] == ["1", "2", "3", "4", "5"]


def test_rankings_are_permutations_of_the_candidates():
    schema = parse_schema(RANK)
    q = schema.question("best")
    assert schema.validate_answers({"best": {"ranking": ["1", 0, 2]}}) == {"best": {"ranking": [1, 0, 2]}}
    for bad in ([0, 0, 1], [1, 2], [0], "0,1"):
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"best": {"ranking": bad}})
        assert e.value.field == "best.ranking"
    item = {"messages": CONVERSATION["messages"], "candidates": ["4", "5", "four"]}
    q.check_item({"ranking": [0, 2, 1]}, item)
    assert q.context(q.conversation(item)) == CONVERSATION["messages"][:4]  # the candidates replace turn 4
    with pytest.raises(ValidationError, match="rank all 3 candidates"):
        q.check_item({"ranking": [0, 1]}, item)
    with pytest.raises(ValidationError, match="2 to 9 strings") as e:
        q.check_item({"ranking": [0, 1]}, {**item, "candidates": ["only one"]})
    assert e.value.field == "candidates"


# ---- aggregation and gold ---------------------------------------------------------------------------------


def test_turn_statistics_borda_and_kendall():
    assert rating_stats([5, 5], 1, 5) == {"mean": 5.0, "median": 5.0, "agreement": 1.0, "n": 2}
    assert rating_stats([1, 5], 1, 5)["agreement"] == 0.0
    assert rating_stats([3], 1, 5)["agreement"] is None  # one rating: nothing to agree with
    assert borda([[1, 0, 2], [1, 2, 0], [0, 1, 2]], 3) == [1, 0, 2]
    assert borda([[0, 1], [1, 0]], 2) == [0, 1]  # a tie goes to the lower index
    assert kendall_tau([0, 1, 2], [0, 1, 2]) == 1.0 and kendall_tau([0, 1, 2], [0, 2, 1]) == pytest.approx(1 / 3)


def test_aggregation_keeps_every_rewrite_with_its_author_and_gold_scores_distance():
    q = parse_schema(SCHEMA).question("turns")
    answers = [{"ratings": {"2": 1, "4": 5}, "rewrites": {"2": "4"}},
               {"ratings": {"2": 2, "4": 4}, "rewrites": {"2": "It is 4."}},
               {"ratings": {"2": 1, "4": 5}}]
    agg = q.aggregate(np.array([7, 7, 7, 9]), np.array([1, 2, 3, 1]), answers + [{"ratings": {"1": 3}}], {})
    assert agg.tasks.tolist() == [7, 9]
    first = agg.values[0]
    assert first["ratings"]["2"] == {"mean": 1.3333, "median": 1.0, "agreement": 0.8333, "n": 3}
    assert first["ratings"]["4"]["median"] == 5.0
    assert first["rewrites"] == {"2": [{"text": "4", "by": 1}, {"text": "It is 4.", "by": 2}]}
    assert agg.confidence[0] == pytest.approx(0.8333) and np.isnan(agg.confidence[1]) is np.False_
    assert agg.values[1] == {"ratings": {"1": {"mean": 3.0, "median": 3.0, "agreement": None, "n": 1}}}
    assert q.vote(answers)["agreement"] == 0.8333
    gold = {"ratings": {"2": 1, "4": 5}}
    assert q.gold_score(answers[0], gold) == 1.0
    assert q.gold_score(answers[1], gold) == round(1 - (1 / 4 + 1 / 4) / 2, 4)
    assert q.gold_score({"ratings": {"2": 5}}, gold) == 0.0  # turn 4 not rated counts as wrong
    assert q.matches_label(answers[0], first) and not q.matches_label({"ratings": {"2": 5, "4": 5}}, first)
    r = parse_schema(RANK).question("best")
    assert r.gold_score({"ranking": [0, 1, 2]}, {"ranking": [0, 1, 2]}) == 1.0
    assert r.gold_score({"ranking": [2, 1, 0]}, {"ranking": [0, 1, 2]}) == 0.0
    assert r.vote([{"ranking": [2, 0, 1]}, {"ranking": [2, 1, 0]}]) == {
        "label": {"ranking": [2, 0, 1]}, "agreement": 1.0, "n": 2}


# ---- a project on both databases --------------------------------------------------------------------------


def _sign_in(http, name: str, password: str | None = None) -> None:
    r = post_login(http, name, password or f"{name}-password", follow_redirects=False)
    assert r.status_code == 303, r.text


def _form(page: str) -> dict:
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
    key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
    action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
    return {"action": action, "data": {"csrf": csrf, "idempotency_key": key}}


WRONG = {"math": {2}, "haiku": {3}}  # the assistant turns a careful rater marks wrong
GOLD = {"ratings": {"1": 4, "3": 1}}  # the haiku's
REWRITES = {"math": {"2": "The answer is 4."},
            "haiku": {"3": "Snow on the branches,\nthe whole street holds its breath."}}


def external_id(messages: list[dict]) -> str:
    return next(i["id"] for i in ITEMS if i["messages"] == messages)


def ratings_for(messages: list[dict], careful: bool) -> dict:
    """Every assistant turn rated: a careful rater gives 1 to a wrong turn, 4 to a right one; a careless one 4."""
    wrong = WRONG.get(external_id(messages), set()) if careful else set()
    return {str(i): (1 if i in wrong else 4) for i, t in enumerate(messages) if t["role"] == "assistant"}


def test_a_chat_project_through_the_api_the_form_the_export_and_trl(http, store, db_url, owner, make_annotator,
                                                                     tmp_path):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json=SCHEMA)
    assert r.status_code == 201, r.text
    # gold is checked against its conversation at import (nothing lands), then the haiku is a gold item
    haiku = next(i for i in ITEMS if i["id"] == "haiku")
    r = http.post("/api/v1/projects/turns/items", headers=h,
                  json={"items": [{**haiku, "gold": {"turns": {"ratings": {"0": 4, "1": 4, "3": 1}}}}]})
    assert r.status_code == 422 and r.json()["field"] == "items[0].gold.turns.ratings.0", r.text
    assert "a user turn" in r.json()["error"]
    items = [{**i, "gold": {"turns": GOLD}} if i["id"] == "haiku" else i for i in ITEMS]
    r = http.post("/api/v1/projects/turns/items", headers=h, json={"items": items})
    assert r.status_code in (200, 201), r.text

    # ann answers through the API: wrong shapes and wrong turns are refused with a field path
    _, tok = make_annotator("ann", password="ann-password")
    by_id = {}
    for _ in ITEMS:
        item = http.post("/api/v1/projects/turns/next", headers=bearer(tok)).json()
        msgs = item["data"]["messages"]
        user_turn = next(i for i, t in enumerate(msgs) if t["role"] == "user")
        url = f"/api/v1/items/{item['id']}/annotations"
        for bad, field in (({"ratings": {str(user_turn): 3}}, f"turns.ratings.{user_turn}"),
                           ({"ratings": {"40": 3}}, "turns.ratings.40"),
                           ({"ratings": {"1": 9}}, "turns.ratings.1")):
            r = http.post(url, headers=bearer(tok), json={"answers": {"turns": bad}})
            assert r.status_code == 422 and r.json()["field"] == field, r.text
        ratings = ratings_for(msgs, careful=True)
        rewrites = REWRITES.get(external_id(msgs), {})
        r = http.post(url, headers=bearer(tok), json={"answers": {"turns": {"ratings": ratings, "rewrites": rewrites}}})
        assert r.status_code == 201, r.text
        by_id[item["id"]] = msgs

    # bob answers through the labelling form: the partial shows each turn escaped, with a scale per assistant turn
    make_annotator("bob", password="bob-password")
    _sign_in(http, "bob")
    seen_script = False
    for _ in ITEMS:
        page = http.get("/projects/turns/label").text
        start = page.index('id="q-turns"')
        fieldset = page[start:page.index("</fieldset>", start)]
        assert "chat.js" in fieldset and 'data-chat="turns"' in fieldset
        assert "<script>alert" not in page
        seen_script |= "&lt;script&gt;alert(1)&lt;/script&gt;" in fieldset
        n = int(re.search(r'name="turns.turns" value="(\d+)"', fieldset).group(1))
        contents = [html.unescape(c) for c in re.findall(r'<div class="chatq-content" data-content>(.*?)</div>',
                                                         fieldset, re.S)]
        assert len(contents) == n
        msgs = next(m for m in by_id.values() if [t["content"] for t in m] == contents)
        assistant = [i for i, t in enumerate(msgs) if t["role"] == "assistant"]
        assert re.findall(r'name="turns.rate.(\d+)" value="1"', fieldset) == [str(i) for i in assistant]
        form = _form(page)
        data = {**form["data"], "turns.turns": str(n), "turns.candidates": "0"}
        if len(assistant) > 1:  # a turn left unrated: the form comes back saying which
            r = http.post(form["action"], data={**data, f"turns.rate.{assistant[0]}": "3"}, follow_redirects=False)
            assert r.status_code == 422 and f"turn {assistant[-1]} has no rating" in html.unescape(r.text)
        ratings = ratings_for(msgs, careful=False)
        fields = {**data, **{f"turns.rate.{k}": str(v) for k, v in ratings.items()},
                  f"turns.rewrite.{assistant[-1]}": "A better last turn."}
        r = http.post(form["action"], data=fields, follow_redirects=False)
        assert r.status_code == 303, r.text
    assert seen_script

    # the export: per-turn mean and median with agreement, rewrites with their authors, the answer as JSON
    recs = {rec["external_id"]: rec for rec in map(json.loads, http.get(
        "/api/v1/projects/turns/export?format=jsonl", headers=h).text.splitlines())}
    wrong = recs["math"]["aggregate"]["turns"]
    assert wrong["label"]["ratings"]["2"] == {"mean": 2.5, "median": 2.5, "agreement": 0.25, "n": 2}
    assert [r["text"] for r in wrong["label"]["rewrites"]["2"]] == ["The answer is 4."]
    assert "mean and median rating per turn" in wrong["method"]
    assert recs["haiku"]["aggregate"]["turns"]["method"] == "gold"
    csv_text = http.get("/api/v1/projects/turns/export?format=csv", headers=h).text
    assert "answer.turns" in csv_text.splitlines()[0]

    # gold accuracy: ann's ratings are the gold's; bob's turn 3 is 3 points off (score 0.625: not right)
    quality = http.get("/api/v1/projects/turns/quality", headers=h).json()
    assert {a["annotator"]: a.get("gold_accuracy") for a in quality["annotators"]} == {"ann": 1, "bob": 0}

    # the owner's item page shows the conversation escaped; answers and labels read in words
    _sign_in(http, "olive", "owner-password")
    markup_id = next(i for i, m in by_id.items() if external_id(m) == "markup")
    page = http.get(f"/projects/turns/items/{markup_id}")
    assert page.status_code == 200
    for other in ("/projects/turns", "/projects/turns/quality"):
        assert http.get(other).status_code == 200, other
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    q = get_project(store, "turns").schema.question("turns")
    assert q.answer_text({"ratings": {"1": 4}}, {})["parts"] == ["turn 1: 4 (good)"]
    assert q.label_text(recs["markup"]["aggregate"]["turns"]["label"]) == (
        "turn 1: median 4.0, mean 4.0 (2 ratings, agreement 1.0); turn 1: 1 rewrite")

    # TRL: demonstrations with the best rewrite in place of the turn, and rewrite-vs-original preferences
    project = get_project(store, "turns")
    sft = trl.demonstration_rows(store, project)
    assert len(sft) == len(ITEMS)
    math = next(r for r in sft if r["messages"][1]["content"] == "What is 2+2?")
    assert math["messages"][2] == {"role": "assistant", "content": "The answer is 4."}  # ann's came first
    dpo = trl.preference_rows(store, project)
    pair = next(r for r in dpo if r["rejected"][0]["content"] == "2+2 is 5.")
    assert pair["chosen"] == [{"role": "assistant", "content": "The answer is 4."}]
    assert pair["prompt"] == [{"role": t["role"], "content": t["content"]} for t in ITEMS[0]["messages"][:2]]
    for name, rows in (("sft", sft), ("dpo", dpo)):
        res = CliRunner().invoke(main, ["--db", db_url, "export", "turns", "--format", name,
                                        "-o", str(tmp_path / f"{name}.jsonl")])
        assert res.exit_code == 0, res.output
        ds = datasets.load_dataset("json", data_files=str(tmp_path / f"{name}.jsonl"), split="train")
        assert ds.num_rows == len(rows)
        assert ds.to_list() == rows
    assert ds.column_names == ["prompt", "chosen", "rejected"]


def test_a_rank_project_gives_dpo_pairs_from_the_aggregated_ranking(http, store, owner, make_annotator):
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json=RANK).status_code == 201
    items = [{"id": "capital", "messages": [{"role": "user", "content": "Capital of France?"}],
              "candidates": ["Lyon.", "Paris.", "Paris, on the Seine."]},
             {"id": "bad", "messages": [{"role": "user", "content": "Hi"}], "candidates": ["Hello!", "Go away."]}]
    assert http.post("/api/v1/projects/replies/items", headers=h, json={"items": items}).status_code in (200, 201)
    for name, first in (("ann", 1), ("bob", 2)):
        _, tok = make_annotator(name, password=f"{name}-password")
        for _ in items:
            item = http.post("/api/v1/projects/replies/next", headers=bearer(tok)).json()
            n = len(item["data"]["candidates"])  # sent: send_fields names it
            url = f"/api/v1/items/{item['id']}/annotations"
            r = http.post(url, headers=bearer(tok), json={"answers": {"best": {"ranking": list(range(n))[:-1]}}})
            assert r.status_code == 422 and r.json()["field"] == "best.ranking", r.text
            ranking = [first, 3 - first, 0] if n == 3 else [0, 1]
            r = http.post(url, headers=bearer(tok), json={"answers": {"best": {"ranking": ranking}}})
            assert r.status_code == 201, r.text
    project = get_project(store, "replies")
    rows = trl.preference_rows(store, project)
    def said(text: str) -> list[dict]:
        return [{"role": "assistant", "content": text}]
    assert rows == [
        {"prompt": [{"role": "user", "content": "Capital of France?"}], "chosen": said("Paris."),
         "rejected": said("Lyon.")},
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": said("Hello!"), "rejected": said("Go away.")}]
    sft = trl.demonstration_rows(store, project, system="You are helpful.")
    assert sft[0]["messages"] == [{"role": "system", "content": "You are helpful."},
                                  {"role": "user", "content": "Capital of France?"},
                                  {"role": "assistant", "content": "Paris."}]
    assert datasets.Dataset.from_list(rows).num_rows == 2


# ---- the docs page -------------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "task-types" / "chat.md"


def test_the_docs_worked_example_holds():
    text = DOC.read_text()
    schema = parse_schema(yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1)))
    item = json.loads(re.search(r"```json\n(\{.*?\})\n```", text, re.S).group(1))
    schema.validate_item(item)
    answer = json.loads(re.search(r"```json answer\n(.*?)```", text, re.S).group(1))
    q = schema.questions[0]
    clean = schema.validate_answers({q.name: answer})
    q.check_item(clean[q.name], item)


def test_a_reviewer_fixes_a_rating_and_a_rewrite_in_the_same_form(http, store, owner, make_annotator):
    h = bearer(owner[1])
    spec = {**SCHEMA, "overlap": 1, "gold": {"rate": 0}, "review": {"mode": "all"}}
    assert http.post("/api/v1/projects", headers=h, json=spec).status_code == 201
    assert http.post("/api/v1/projects/turns/items", headers=h, json={"items": ITEMS[:1]}).status_code in (200, 201)
    _, tok = make_annotator("ann", password="ann-password")
    item = http.post("/api/v1/projects/turns/next", headers=bearer(tok)).json()
    answer = {"ratings": {"2": 4, "4": 4}, "rewrites": {"2": "Two plus two is five."}}
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok), json={"answers": {"turns": answer}})
    assert r.status_code == 201, r.text

    _sign_in(http, "olive", "owner-password")
    page = http.get("/projects/turns/review").text
    assert 'data-chat="turns"' in page and "turn 2 rewritten: Two plus two is five." in page
    assert re.search(r'name="turns.rate.2" value="4"[^>]*checked', page)  # the annotator's answer, to change
    form = {"csrf": html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1)),
            "revision": re.search(r'name="revision" value="([^"]*)"', page).group(1),
            "decision": "fixed", "turns.turns": "5", "turns.candidates": "0", "turns.rate.2": "1", "turns.rate.4": "4"}
    action = re.search(r'action="([^"]+)" id="review-form"', page).group(1)
    r = http.post(action, data={**form, "turns.rewrite.2": "2+2 is 5."})
    assert r.status_code == 422 and 'data-mode="fix"' in r.text and "the turn as it was" in r.text
    r = http.post(action, data={**form, "turns.rewrite.2": "2+2 is 4."}, follow_redirects=False)
    assert r.status_code == 303, r.text
    # the reviewer's fix is the answer the TRL sets take
    project = get_project(store, "turns")
    assert trl.demonstration_rows(store, project)[0]["messages"][2]["content"] == "2+2 is 4."
    assert trl.preference_rows(store, project)[0]["chosen"][0]["content"] == "2+2 is 4."
