"""The spans (NER) question type: its settings and answers, span F1, span voting with skills, gold, and a
project taken through the API, the labelling form, aggregation and the CoNLL and spaCy exports on SQLite and
PostgreSQL. The texts are questions from the TREC question classification set with hand-made spans."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text as sql

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io import conll
from labelwright.io.spacy_docbin import doc_bin
from labelwright.quality.spans import SpanVote, match_spans, overlap, pairwise_f1, span_f1
from labelwright.schema import parse_schema
from labelwright.services.gold import store_gold
from labelwright.services.projects import get_project
from tests.conftest import bearer, post_login

TREC = Path("/work/shared/datasets/trec_question_classification/items.csv")
IDS = ["train_0002", "train_0011", "train_0014", "train_0029", "train_0030", "train_0016"]


def texts() -> dict[str, str]:
    if not TREC.exists():
        pytest.skip(f"{TREC} is not here")
    with TREC.open(newline="") as f:
        return {r["item"]: r["text"] for r in csv.DictReader(f) if r["item"] in IDS}


def span(text: str, phrase: str, label: str) -> dict:
    start = text.index(phrase)
    return {"start": start, "end": start + len(phrase), "label": label}


# what a careful annotator marks in each text
TRUTH = {
    "train_0002": [("Popeye Doyle", "PER")],
    "train_0011": [("Ozzy Osbourne", "PER")],
    "train_0014": [("Gandhi", "PER")],
    "train_0029": [("Myrtle Beach", "LOC")],
    "train_0030": [("Chesapeake Bay", "LOC")],
    "train_0016": [("U.S.", "LOC")],
}

SCHEMA = {
    "name": "Entities", "slug": "ents", "overlap": 3, "id_field": "id", "gold": {"rate": 1},
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "ents", "type": "spans", "field": "text", "prompt": "Mark the names",
                   "labels": ["PER", "LOC", {"value": "ORG", "label": "Organisation", "key": "o"}]}],
}


def truth(t: dict[str, str], item: str) -> list[dict]:
    return [span(t[item], phrase, label) for phrase, label in TRUTH[item]]


# ---- settings and answers -------------------------------------------------------------------------


def test_answers_are_checked_and_kept_sorted():
    schema = parse_schema(SCHEMA)
    q = schema.question("ents")
    assert q.keys() == {"PER": "1", "LOC": "2", "ORG": "o"}
    assert parse_schema(schema.to_json()) == schema
    got = schema.validate_answers({"ents": [{"start": 10, "end": 14, "label": "LOC", "text": "York"},
                                            {"start": 0, "end": 5, "label": "PER"}]})
    assert got == {"ents": [{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 14, "label": "LOC"}]}
    assert schema.validate_answers({"ents": []}) == {"ents": []}  # no entity in the text is an answer
    bad = [
        ({"start": 0, "end": 4, "label": "DATE"}, "ents.0.label", "not a label"),
        ({"start": 4, "end": 4, "label": "PER"}, "ents.0.end", "must be after start"),
        ({"start": -1, "end": 4, "label": "PER"}, "ents.0.start", "integer >= 0"),
        ({"start": True, "end": 4, "label": "PER"}, "ents.0.start", "integer >= 0"),
        ({"start": 0, "end": 4, "label": "PER", "score": 1}, "ents.0", "unknown keys"),
        ("PER", "ents.0", "expected a span"),
    ]
    for value, field, words in bad:
        with pytest.raises(ValidationError) as e:
            schema.validate_answers({"ents": [value]})
        assert e.value.field == field and words in e.value.message
    with pytest.raises(ValidationError, match="expected a list of spans") as e:
        schema.validate_answers({"ents": {"start": 0}})
    with pytest.raises(ValidationError, match="overlap; this question does not allow"):
        schema.validate_answers({"ents": [{"start": 0, "end": 8, "label": "ORG"},
                                          {"start": 4, "end": 8, "label": "LOC"}]})
    with pytest.raises(ValidationError, match="given twice"):
        schema.validate_answers({"ents": [{"start": 0, "end": 8, "label": "ORG"}] * 2})
    both = parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], "allow_overlap": True}]})
    assert len(both.validate_answers({"ents": [{"start": 0, "end": 8, "label": "ORG"},
                                               {"start": 4, "end": 8, "label": "LOC"}]})["ents"]) == 2
    assert schema.validate_gold({"ents": '[{"start": 0, "end": 3, "label": "PER"}]'}) == {
        "ents": [{"start": 0, "end": 3, "label": "PER"}]}  # a CSV cell


def test_settings_are_checked():
    def q(**kw):
        return parse_schema({**SCHEMA, "questions": [{**SCHEMA["questions"][0], **kw}]})
    with pytest.raises(ValidationError, match="'PER' appears twice"):
        q(labels=["PER", "PER"])
    with pytest.raises(ValidationError, match="appears twice"):
        q(labels=[{"value": "PER", "key": "p"}, {"value": "LOC", "key": "P"}])
    with pytest.raises(ValidationError, match="one printable character"):
        q(labels=[{"value": "PER", "key": " "}])
    with pytest.raises(ValidationError, match="refers to field 'body'"):
        q(field="body")


def test_the_text_bounds_are_checked_where_the_text_is_known():
    q = parse_schema(SCHEMA).question("ents")
    q.check_text([{"start": 0, "end": 5, "label": "PER"}], "Hello")
    with pytest.raises(ValidationError, match="item t1: span 3-9 .PER. ends after the text of field 'text', "
                                              "which has 5 characters") as e:
        q.check_text([{"start": 3, "end": 9, "label": "PER"}], "Hello", "item t1: ")
    assert e.value.field == "ents.0.end"


# ---- span F1 and voting ---------------------------------------------------------------------------


def test_span_f1_matches_partial_overlaps_of_the_same_label():
    t = "What sprawling U.S. state boasts the most airports ?"
    us, us_state = span(t, "U.S.", "LOC"), span(t, "U.S. state", "LOC")
    assert overlap((us["start"], us["end"], "LOC"), (us_state["start"], us_state["end"], "LOC")) == 0.4
    assert span_f1([us], [us_state]) == 0.0  # 4 / 10 characters: below 0.5
    assert span_f1([us], [us_state], threshold=0.4) == 1.0
    ny = "New York City"
    assert span_f1([span(ny, "New York", "LOC")], [span(ny, ny, "LOC")]) == 1.0  # 8 / 13
    assert span_f1([span(ny, "New York", "ORG")], [span(ny, ny, "LOC")]) == 0.0  # labels differ
    assert span_f1([], []) == 1.0 and span_f1([us], []) == 0.0
    a = [span(ny, "New", "LOC"), span(ny, "York", "LOC")]
    assert match_spans(a, [span(ny, "New York", "LOC")]) == [(1, 0)]  # York: 4 / 8 matches, New: 3 / 8 not
    assert round(span_f1(a + [span(ny, "City", "ORG")], [span(ny, "City", "ORG")]), 4) == 0.5
    assert pairwise_f1([[us], [us], []]) == pytest.approx(1 / 3)


def test_span_vote_keeps_the_weighted_majority_and_learns_skills():
    t = texts()
    tasks, workers, answers = [], [], []
    for item in IDS:
        right = truth(t, item)
        # ann, bob and dee are right (bob's boundaries are one character short on one item); cy marks
        # every first word as an ORG and misses the names
        bobs = [dict(right[0], end=right[0]["end"] - 1)] if item == "train_0029" else right
        cys = [span(t[item], t[item].split()[0], "ORG")]
        for w, a in (("ann", right), ("bob", bobs), ("cy", cys), ("dee", right)):
            tasks.append(item)
            workers.append(w)
            answers.append(a)
    fit = SpanVote().fit(tasks, workers, answers)
    for item in IDS:
        assert fit.spans_[item] == [(s["start"], s["end"], s["label"]) for s in truth(t, item)], item
        assert fit.confidence_[item] > 0.8  # both clusters clear: the names kept, cy's ORG dropped
    assert fit.skills_["ann"] > fit.skills_["cy"] and fit.skills_["bob"] > fit.skills_["cy"]
    assert fit.skills_["cy"] < 0.2

    # two annotators who disagree: the skilled one wins once skills are known from the other items
    fit = SpanVote().fit(tasks + ["x", "x"], workers + ["ann", "cy"],
                         answers + [[(0, 4, "PER")], [(0, 4, "ORG")]])
    assert fit.spans_["x"] == [(0, 4, "PER")]
    # gold items keep their gold spans and anchor the skills
    fit = SpanVote().fit(["g", "g"], ["ann", "cy"], [[(0, 4, "PER")], []], gold={"g": [(0, 4, "PER")]})
    assert fit.spans_["g"] == [(0, 4, "PER")] and fit.confidence_["g"] == 1.0
    assert fit.skills_["ann"] > fit.skills_["cy"]


def test_the_vote_gold_score_and_agreement_of_the_type():
    t = texts()
    q = parse_schema(SCHEMA).question("ents")
    right = truth(t, "train_0030")
    wrong = [span(t["train_0030"], "Chesapeake", "ORG")]
    v = q.vote([right, right, wrong])
    assert v == {"label": right, "agreement": round(1 / 3, 4), "n": 3}
    assert q.gold_score(right, right) == 1.0 and q.gold_score(wrong, right) == 0.0
    assert q.gold_score(right + wrong, right) == pytest.approx(2 / 3, abs=1e-4)  # partial credit
    assert q.matches_label(right, right) and not q.matches_label(wrong, right)
    assert q.answer_text(right, {})["parts"] == [f"LOC {right[0]['start']}–{right[0]['end']}"]
    assert json.loads(q.export_cell(right)) == right


def test_bio_tags_use_whitespace_tokens():
    text = "Name a golf course in Myrtle  Beach ."
    pairs, dropped = conll.bio_tags(text, [span(text, "Myrtle  Beach", "LOC"), span(text, "Beach", "ORG")])
    assert pairs[-4:] == [("in", "O"), ("Myrtle", "B-LOC"), ("Beach", "I-LOC"), (".", "O")]
    assert dropped == 1  # CoNLL cannot hold the overlapping ORG


# ---- through the service, the API, the form and the exports ---------------------------------------


def sign_in(http, name: str, password: str) -> None:
    http.cookies.clear()
    assert post_login(http, name, password, follow_redirects=False).status_code == 303


def test_a_spans_project_end_to_end(http, store, db_url, owner, make_annotator, tmp_path):
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional (the spacy extra)
    from spacy.training.converters import conll_ner_to_docs  # noqa: PLC0415 - optional

    t = texts()
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json=SCHEMA)
    assert r.status_code == 201, r.text
    items = [{"id": i, "text": t[i]} for i in IDS[:5]]
    items.append({"id": IDS[5], "text": t[IDS[5]], "gold": {"ents": truth(t, IDS[5])}})
    r = http.post("/api/v1/projects/ents/items", headers=h, json={"items": items})
    assert r.status_code in (200, 201), r.text

    # ann and bob answer through the API: ann is right everywhere, bob marks names as ORG on two items
    for name in ("ann", "bob"):
        _, tok = make_annotator(name, password=f"{name}-password")
        for _ in range(6):
            item = http.post("/api/v1/projects/ents/next", headers=bearer(tok)).json()
            ext = next(i for i in IDS if t[i] == item["data"]["text"])
            answer = truth(t, ext)
            if name == "bob" and ext in ("train_0002", "train_0011"):
                answer = [dict(s, label="ORG") for s in answer]
            bad = [{"start": 0, "end": 4, "label": "PER"}, {"start": 2, "end": 6, "label": "LOC"}]
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"ents": bad}})
            assert r.status_code == 422 and r.json()["field"] == "ents" and "overlap" in r.json()["error"]
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"ents": answer}})
            assert r.status_code == 201, r.text

    # cy answers through the labelling page: the partial carries the text and keys; the answer is JSON
    make_annotator("cy", password="cy-password")
    sign_in(http, "cy", "cy-password")
    for _ in range(6):
        page = http.get("/projects/ents/label").text
        start = page.index('id="q-ents"')
        fieldset = page[start:page.index("</fieldset>", start)]
        assert 'data-qtype="spans"' in page and "spans.js" in fieldset
        assert 'data-span-label="ORG"' in fieldset and 'data-span-key="o"' in fieldset
        data_text = html.unescape(re.search(r'data-text="([^"]*)"', fieldset).group(1))
        text = json.loads(data_text)
        ext = next(i for i in IDS if t[i] == text)
        csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
        key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
        action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "ents": "[{"}, follow_redirects=False)
        assert r.status_code == 422 and "could not be read" in r.text
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "ents": json.dumps(truth(t, ext))},
                      follow_redirects=False)
        assert r.status_code == 303, r.text

    # the aggregate: ann and cy outvote bob; the gold item keeps its gold
    recs = {rec["external_id"]: rec for rec in map(json.loads, http.get(
        "/api/v1/projects/ents/export?format=jsonl", headers=h).text.splitlines())}
    for ext in IDS:
        assert recs[ext]["aggregate"]["ents"]["label"] == truth(t, ext), ext
    assert recs[IDS[5]]["aggregate"]["ents"]["method"] == "gold"
    assert recs["train_0002"]["majority"]["ents"]["agreement"] == round(1 / 3, 4)
    assert "span vote" in recs["train_0002"]["aggregate"]["ents"]["method"]

    # gold accuracy is scored by span F1
    quality = http.get("/api/v1/projects/ents/quality", headers=h).json()
    accuracy = {a["annotator"]: a.get("gold_accuracy") for a in quality["annotators"]}
    assert accuracy == {"ann": 1, "bob": 1, "cy": 1}

    # CoNLL lines, read back by spaCy's own converter
    project = get_project(store, "ents")
    exported = conll.conll_export(store, project)
    assert exported.items == 6 and exported.dropped == 0
    body = exported.to_bytes().decode()
    assert "Popeye -X- _ B-PER\nDoyle -X- _ I-PER\n? -X- _ O\n" in body
    docs = list(conll_ner_to_docs(body, n_sents=1))
    ents = {(e.text, e.label_) for d in docs for e in d.ents}
    assert ents == {(phrase, label) for v in TRUTH.values() for phrase, label in v}

    # a spaCy DocBin, written and loaded again
    path = tmp_path / "ents.spacy"
    doc_bin(store, project).to_disk(path)
    loaded = list(DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab))
    assert len(loaded) == 6
    by_ext = {d.user_data["external_id"]: d for d in loaded}
    for ext in IDS:
        d = by_ext[ext]
        assert d.text == t[ext]
        want = [(s["start"], s["end"], s["label"]) for s in truth(t, ext)]
        assert [(e.start_char, e.end_char, e.label_) for e in d.ents] == want
        assert [(s.start_char, s.end_char, s.label_) for s in d.spans["sc"]] == want

    # the same two through labelwright export
    for fmt in ("conll", "spacy"):
        target = tmp_path / f"cli.{fmt}"
        res = CliRunner().invoke(main, ["--db", db_url, "export", "ents", "--format", fmt, "-o", str(target)])
        assert res.exit_code == 0, res.output
    assert (tmp_path / "cli.conll").read_text() == body
    assert len(list(DocBin().from_disk(tmp_path / "cli.spacy").get_docs(spacy.blank("xx").vocab))) == 6


def test_the_exports_name_an_item_whose_span_runs_past_its_text(http, store, owner):
    r = http.post("/api/v1/projects", headers=bearer(owner[1]), json=SCHEMA)
    assert r.status_code == 201, r.text
    bad = {"id": "short", "text": "Gandhi", "gold": {"ents": [{"start": 0, "end": 9, "label": "PER"}]}}
    r = http.post("/api/v1/projects/ents/items", headers=bearer(owner[1]), json={"items": [bad]})
    assert r.status_code == 422  # an import checks gold against its item (nothing lands)
    assert r.json()["field"] == "items[0].gold.ents.0.end" and "has 6 characters" in r.json()["error"]
    r = http.post("/api/v1/projects/ents/items", headers=bearer(owner[1]), json={"items": [{**bad, "gold": None}]})
    assert r.status_code in (200, 201), r.text
    with store.write() as conn:  # gold written past the checks (an older database): the export still says where
        store_gold(conn, get_project(store, "ents").id, [(_item_id(store), json.dumps(bad["gold"]))], None, 0.0)
    with pytest.raises(ValidationError, match="item short: span 0-9 .PER. ends after the text"):
        conll.conll_export(store, get_project(store, "ents"))


def _item_id(store) -> int:
    with store.read() as conn:
        return conn.execute(sql("SELECT id FROM items WHERE external_id = 'short'")).scalar_one()


# ---- the docs page ---------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "task-types" / "spans.md"


def test_the_docs_schema_parses_and_the_worked_example_holds():
    text = DOC.read_text()
    q = parse_schema(yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))).question("ents")
    assert q.keys() == {"PER": "1", "LOC": "2", "ORG": "o"} and not q.allow_overlap and q.threshold == 0.5
    scope: dict = {}
    exec(re.search(r"```python\n(.*?)```", text, re.S).group(1), scope)  # the page's example, as written
    fit = scope["fit"]
    assert fit.spans_ == {"q1": [(9, 22, "PER")], "q2": [(22, 34, "LOC")]}
    assert fit.support_ == {"q1": [0.7826], "q2": [1.0]}
    assert fit.confidence_ == {"q1": 0.7826, "q2": 0.8913}
    assert fit.skills_ == {"ann": 0.75, "bob": 0.75, "cy": 0.4167}
    assert span_f1(scope["ann"], scope["bob"]) == 1.0 and span_f1(scope["ann"], scope["cy"]) == 0.0
    lines = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    pairs, _ = conll.bio_tags("When was Ozzy Osbourne born ?", [{"start": 9, "end": 22, "label": "PER"}])
    assert lines == "".join(f"{tok} -X- _ {tag}\n" for tok, tag in pairs)
