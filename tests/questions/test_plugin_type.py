"""A question type from outside labelwright, end to end: registered through the registry's API (what an
entry point does), it validates in a schema, takes answers through the API and the labelling form,
aggregates, scores gold, exports and renders, on SQLite and PostgreSQL. Nothing in labelwright names it:
adding a type is its module (tests/questions/yes_no.py), its partial and its tests."""

from __future__ import annotations

import html
import io
import json
import re
from importlib.metadata import EntryPoint

import pandas as pd
import pytest

from labelwright.errors import ValidationError
from labelwright.questions import registry
from labelwright.schema import parse_schema
from tests.conftest import bearer, post_login
from tests.questions.yes_no import YesNo

SCHEMA = {
    "name": "Tone", "slug": "tone", "overlap": 3, "id_field": "id", "gold": {"rate": 1},
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "ok", "type": "yes_no", "prompt": "Is the tone friendly?"},
                  {"name": "why", "type": "text", "required": False}],
}


@pytest.fixture
def yes_no():
    """YesNo joins the registry as an installed plugin's entry point would make it, and leaves after."""
    cls = registry.load(EntryPoint("yes_no", "tests.questions.yes_no:YesNo", registry.GROUP))
    registry.register(cls)
    yield cls
    registry.unregister("yes_no")


def test_the_schema_validates_the_plugin_type_and_its_answers(yes_no):
    schema = parse_schema(SCHEMA)
    q = schema.question("ok")
    assert isinstance(q, YesNo) and q.categorical and q.label_values() == ["yes", "no"]
    assert parse_schema(schema.to_json()) == schema
    assert schema.validate_answers({"ok": {"answer": "no", "comment": " rude "}}) == {
        "ok": {"answer": "no", "comment": "rude"}}
    with pytest.raises(ValidationError) as e:
        schema.validate_answers({"ok": {"answer": "maybe"}})
    assert e.value.field == "ok.answer" and "yes or no" in e.value.message
    with pytest.raises(ValidationError) as e:
        parse_schema({**SCHEMA, "questions": [{"name": "ok", "type": "yes_no", "comment": "x"}]})
    assert e.value.field == "questions[0] (ok).comment"  # the plugin's own settings, located like a built-in's
    assert schema.validate_gold({"ok": "yes"}) == {"ok": {"answer": "yes"}}


def test_without_the_plugin_the_type_is_unknown(yes_no):
    registry.unregister("yes_no")
    try:
        with pytest.raises(ValidationError, match="does not match any of the expected tags"):
            parse_schema(SCHEMA)
    finally:
        registry.register(yes_no)


def sign_in(http, name: str, password: str) -> None:
    http.cookies.clear()
    assert post_login(http, name, password, follow_redirects=False).status_code == 303


def test_a_plugin_type_through_the_api_the_form_aggregation_and_export(yes_no, http, owner, make_annotator):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json=SCHEMA)
    assert r.status_code == 201, r.text
    items = [{"id": f"t{i}", "text": f"message {i}"} for i in range(3)]
    items.append({"id": "g", "text": "gold message", "gold": {"ok": "no"}})  # a gold answer in the import
    r = http.post("/api/v1/projects/tone/items", headers=h, json={"items": items})
    assert r.status_code in (200, 201), r.text

    # two annotators answer "yes" to every item through the API; on the gold item ann says "no" (right)
    for name in ("ann", "bob"):
        _, tok = make_annotator(name, password=f"{name}-password")
        for _ in range(4):
            item = http.post("/api/v1/projects/tone/next", headers=bearer(tok)).json()
            answer = "no" if name == "ann" and item["data"]["text"] == "gold message" else "yes"
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"ok": {"answer": "maybe"}}})
            assert r.status_code == 422 and r.json()["field"] == "ok.answer"
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"ok": {"answer": answer, "comment": f"{name} says {answer}"}}})
            assert r.status_code == 201, r.text

    # a third answers through the labelling page: the type's own partial, parsed by the type
    make_annotator("cy", password="cy-password")
    sign_in(http, "cy", "cy-password")
    for _ in range(4):
        page = http.get("/projects/tone/label").text
        start = page.index('id="q-ok"')
        fieldset = page[start:page.index("</fieldset>", start)]
        assert 'data-qtype="yes_no"' in page
        assert 'name="ok" value="yes" data-key="1"' in fieldset and 'name="ok.comment"' in fieldset
        csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))
        key = html.unescape(re.search(r'name="idempotency_key" value="([^"]*)"', page).group(1))
        action = re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "ok.comment": "<b>hm</b>"},
                      follow_redirects=False)
        assert r.status_code == 422 and "yes or no" in r.text  # the type's error, next to its question
        assert "&lt;b&gt;hm&lt;/b&gt;" in r.text and "<b>hm</b>" not in r.text  # kept, escaped
        r = http.post(action, data={"csrf": csrf, "idempotency_key": key, "ok": "no", "ok.comment": "cold"},
                      follow_redirects=False)
        assert r.status_code == 303, r.text

    # aggregation (truth inference on the plugin's labels, gold in place), the vote and the type's export cell
    r = http.get("/api/v1/projects/tone/export?format=jsonl", headers=h)
    recs = {rec["external_id"]: rec for rec in map(json.loads, r.text.splitlines())}
    t0 = recs["t0"]
    assert t0["majority"]["ok"] == {"label": "yes", "agreement": 0.6667, "n": 3}
    assert t0["aggregate"]["ok"]["label"] == "yes" and t0["aggregate"]["ok"]["source"] == "people"
    assert recs["g"]["aggregate"]["ok"] == {"label": "no", "confidence": 1.0, "method": "gold", "source": "people"}
    assert sorted(a["answers"]["ok"]["answer"] for a in t0["annotations"]) == ["no", "yes", "yes"]
    df = pd.read_csv(io.StringIO(http.get("/api/v1/projects/tone/export?format=csv", headers=h).text))
    assert set(df[df.external_id == "t0"]["answer.ok"]) == {"yes: ann says yes", "yes: bob says yes", "no: cold"}

    # the quality summary treats it as any categorical question; gold accuracy is scored by the type
    quality = http.get("/api/v1/projects/tone/quality", headers=h).json()
    ok = next(q for q in quality["questions"] if q["name"] == "ok")
    assert ok["summarised"] and ok["answers"] == 12 and ok["confusion"]["labels"] == ["yes", "no"]
    why = next(q for q in quality["questions"] if q["name"] == "why")
    assert not why["summarised"]
    accuracy = {a["annotator"]: a.get("gold_accuracy") for a in quality["annotators"]}
    assert accuracy == {"ann": 1, "bob": 0, "cy": 1}


def test_a_plugin_types_own_script_and_style_are_served_and_nothing_else(yes_no, http, owner, make_annotator):
    """The partial links the type's assets by digest; the route serves exactly the files the type lists, cached
    for good under the current digest, to anyone (like /static), and answers 404 for anything else."""
    assert http.post("/api/v1/projects", headers=bearer(owner[1]), json=SCHEMA).status_code == 201
    assert http.post("/api/v1/projects/tone/items", headers=bearer(owner[1]),
                     json={"items": [{"id": "t0", "text": "hello"}]}).status_code in (200, 201)
    make_annotator("cy", password="cy-password")
    sign_in(http, "cy", "cy-password")
    page = http.get("/projects/tone/label").text
    urls = re.findall(r'(?:src|href)="(/static/types/yes_no/[^"]+)"', page)
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == ["yes_no.css", "yes_no.js"]
    http.cookies.clear()  # public, like labelwright's own static files
    for url in urls:
        r = http.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.content == yes_no.asset_path(url.split("/", 5)[5]).read_bytes()
    js = next(u for u in urls if u.endswith(".js"))
    assert http.get(js).headers["content-type"].startswith("text/javascript")
    stale = js.replace(js.split("/")[4], "000000000000")
    assert http.get(stale).status_code == 200 and http.get(stale).headers["cache-control"] == "no-cache"
    for bad in ("/static/types/yes_no/x/templates/yes_no.html", "/static/types/yes_no/x/yes_no.py",
                "/static/types/yes_no/x/templates/../yes_no.py", "/static/types/yes_no/x/%2e%2e/%2e%2e/conftest.py",
                "/static/types/nope/x/templates/yes_no.js", "/static/types/single_choice/x/templates/yes_no.js"):
        assert http.get(bad).status_code == 404, bad


def test_a_type_whose_assets_are_missing_or_outside_its_folder_cannot_join(yes_no):
    for assets, match in ((("templates/gone.js",), "is missing"), (("../conftest.js",), "in or below"),
                          (("templates/yes_no.html",), ".js or .css"), (("/etc/passwd.js",), "in or below")):
        bad = type("BadAssets", (yes_no,), {"__module__": yes_no.__module__, "assets": assets})
        with pytest.raises(registry.QuestionTypeError, match=re.escape(match)):
            registry.register(bad, replace=True)
    assert registry.get("yes_no") is yes_no
