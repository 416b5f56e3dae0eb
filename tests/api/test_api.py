"""The REST API, in process over httpx, on SQLite and PostgreSQL."""

import io
import json

import httpx
import pandas as pd
import pytest

from labelwright.client import ApiError, Client
from tests.conftest import SPAM_SCHEMA, bearer, post_login


def test_openapi_document_lists_the_contract(http):
    doc = http.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/v1/projects", "/api/v1/projects/{project}/items", "/api/v1/projects/{project}/next",
                 "/api/v1/items/{item_id}/annotations", "/api/v1/projects/{project}/export",
                 "/api/v1/annotations/{annotation_id}"):
        assert path in paths, path


def test_authentication_and_roles(http, owner, make_annotator, spam_project):
    assert http.get("/api/v1/projects").status_code == 401
    assert http.get("/api/v1/projects", headers=bearer("nope")).status_code == 401
    assert http.get("/api/v1/projects", headers={"Authorization": "Basic x"}).status_code == 401
    _, tok = make_annotator("ann")
    assert http.get("/api/v1/me", headers=bearer(tok)).json()["role"] == "annotator"
    r = http.post("/api/v1/projects", headers=bearer(tok), json=SPAM_SCHEMA)
    assert r.status_code == 403 and "owner" in r.json()["error"]
    for path in ("/api/v1/projects/spam/export", "/api/v1/projects/spam/status", "/api/v1/users"):
        assert http.get(path, headers=bearer(tok)).status_code == 403, path
    assert http.post("/api/v1/projects/spam/items", headers=bearer(tok), json={"items": []}).status_code == 403


def test_cookie_session_needs_csrf_header(http, store, make_annotator, spam_project):
    make_annotator("cara", password="cara-password")
    r = post_login(http, "cara", "cara-password", follow_redirects=False)
    assert r.status_code == 303
    assert http.get("/api/v1/me").json()["name"] == "cara"
    r = http.post("/api/v1/projects/spam/next")
    assert r.status_code == 403 and "CSRF" in r.json()["error"]


def test_project_create_read_and_bad_schema(http, owner):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects", headers=h, json=SPAM_SCHEMA)
    assert r.status_code == 201 and r.json()["slug"] == "spam"
    assert http.post("/api/v1/projects", headers=h, json=SPAM_SCHEMA).status_code == 409
    bad = {**SPAM_SCHEMA, "slug": "bad", "questions": [{"name": "q", "type": "single_choice", "options": ["x"]}]}
    r = http.post("/api/v1/projects", headers=h, json=bad)
    assert r.status_code == 422 and r.json()["field"] == "questions[0] (q).options"
    assert http.get("/api/v1/projects/spam", headers=h).json()["overlap"] == 2
    assert http.get("/api/v1/projects/nope", headers=h).status_code == 404


def test_add_items_batch_is_atomic_and_names_the_item(http, owner, spam_project):
    h = bearer(owner[1])
    r = http.post("/api/v1/projects/spam/items", headers=h,
                  json={"items": [{"id": "n1", "text": "ok"}, {"id": "n2", "text": 7}]})
    assert r.status_code == 422
    assert r.json()["field"] == "items[1].text"
    r = http.post("/api/v1/projects/spam/items", headers=h,
                  json={"items": [{"id": "n1", "text": "ok"}, {"id": "c0", "text": "comment 0"}]})
    assert r.json() == {"received": 2, "inserted": 1, "duplicates": 1, "gold": 0}
    assert http.get("/api/v1/projects/spam/status", headers=h).json()["items"]["total"] == 11


def test_next_submit_amend_history_and_errors(http, owner, make_annotator, spam_project):
    _, tok = make_annotator("ann")
    h = bearer(tok)
    item = http.post("/api/v1/projects/spam/next", headers=h).json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=h, json={"answers": {"spam": "eggs"}})
    assert r.status_code == 422 and r.json()["field"] == "spam"
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=h, json={"answers": {}})
    assert r.status_code == 422 and r.json()["field"] == "spam"
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=h,
                  json={"answers": {"spam": "ham"}, "active_ms": -1})
    assert r.status_code == 422 and r.json()["field"] == "active_ms"
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers={**h, "Idempotency-Key": "abc"},
                  json={"answers": {"spam": "ham"}, "active_ms": 900})
    assert r.status_code == 201
    ann = r.json()
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers={**h, "Idempotency-Key": "abc"},
                  json={"answers": {"spam": "ham"}, "active_ms": 900})
    assert r.status_code == 200 and r.json()["id"] == ann["id"]
    r = http.put(f"/api/v1/annotations/{ann['id']}", headers=h, json={"answers": {"spam": "spam"}})
    assert r.status_code == 200 and r.json()["revision"] == 2
    hist = http.get("/api/v1/projects/spam/history", headers=h).json()
    assert [x["answers"] for x in hist] == [{"spam": "spam"}]
    assert http.get("/api/v1/projects/spam/mine", headers=h).json() == {"done": 1, "left": 9, "held_back": None}
    r = http.post("/api/v1/items/999999/annotations", headers=h, json={"answers": {"spam": "ham"}})
    assert r.status_code == 404


def test_next_returns_204_when_nothing_is_left(http, owner, make_annotator, spam_project):
    _, tok = make_annotator("ann")
    h = bearer(tok)
    for _ in range(10):
        item = http.post("/api/v1/projects/spam/next", headers=h).json()
        http.post(f"/api/v1/items/{item['id']}/skip", headers=h)
    assert http.post("/api/v1/projects/spam/next", headers=h).status_code == 204


def test_export_formats(http, owner, make_annotator, spam_project):
    for name, answer in (("ann", "spam"), ("bob", "spam")):
        _, tok = make_annotator(name)
        item = http.post("/api/v1/projects/spam/next", headers=bearer(tok)).json()
        http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                  json={"answers": {"spam": answer}, "active_ms": 1000})
    h = bearer(owner[1])
    r = http.get("/api/v1/projects/spam/export?format=jsonl", headers=h)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    recs = [json.loads(line) for line in r.text.splitlines()]
    assert len(recs) == 10
    assert recs[0]["external_id"] == "c0" and recs[0]["data"] == {"id": "c0", "text": "comment 0"}
    assert sorted(a["annotator"] for a in recs[0]["annotations"]) == ["ann", "bob"]
    assert recs[0]["annotations"][0]["created_at"].endswith("+00:00")
    assert recs[0]["majority"] == {"spam": {"label": "spam", "agreement": 1.0, "n": 2}}
    assert recs[1]["annotations"] == [] and recs[1]["majority"] == {}

    df = pd.read_csv(io.StringIO(http.get("/api/v1/projects/spam/export?format=csv", headers=h).text))
    assert len(df) == 11  # two rows for the item with two annotations, one for each other item
    assert list(df.columns[:3]) == ["item_id", "external_id", "data.text"]
    assert set(df[df.external_id == "c0"]["answer.spam"]) == {"spam"}

    pq = pd.read_parquet(io.BytesIO(http.get("/api/v1/projects/spam/export?format=parquet", headers=h).content))
    assert len(pq) == 11 and pq["agreement.spam"].max() == 1.0
    assert http.get("/api/v1/projects/spam/export?format=xml", headers=h).status_code == 422


class _ThroughTestClient(httpx.BaseTransport):
    """An httpx transport that hands each request to Starlette's TestClient and back. The TestClient may be
    built on ``httpx2`` (Starlette prefers it when installed, as huggingface_hub installs it), whose
    transports httpx's Client refuses, so the client under test cannot take the TestClient's own."""

    def __init__(self, http):
        self.http = http

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        got = self.http.request(request.method, str(request.url), headers=dict(request.headers),
                                content=request.read())
        return httpx.Response(got.status_code, headers=list(got.headers.multi_items()), content=got.content,
                              request=request)


def test_python_client(http, owner, spam_project):
    lw = Client("http://127.0.0.1:8000", owner[1], transport=_ThroughTestClient(http))
    created = lw.create_user("dora", projects=["spam"])
    assert created["signin_url"].startswith("http://127.0.0.1:8000/signin/")
    dora = Client("http://127.0.0.1:8000", created["token"], transport=_ThroughTestClient(http))
    df = pd.DataFrame({"id": ["d1", "d2"], "text": ["x", "y"]})
    assert lw.add_items("spam", df) == {"received": 2, "inserted": 2, "duplicates": 0, "gold": 0}
    item = dora.next("spam")
    ann = dora.submit(item["id"], {"spam": "spam"}, active_ms=10)
    assert dora.amend(ann["id"], {"spam": "ham"})["revision"] == 2
    with pytest.raises(ApiError) as e:
        dora.submit(item["id"], {"spam": "nope"})
    assert e.value.status == 422 and e.value.field == "spam"
    with pytest.raises(ApiError) as e:
        dora.export("spam")
    assert e.value.status == 403
    frame = lw.export_dataframe("spam")
    assert frame.loc[frame.annotator == "dora", "answer.spam"].tolist() == ["ham"]
    assert lw.projects()["slug"].tolist() == ["spam"]
    assert lw.status("spam")["annotations"] == 1
