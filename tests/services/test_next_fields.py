"""``next`` sends annotators only the item fields the labelling page shows (schema ``send_fields``).

Items often carry more than their display fields: an answer key, the author's e-mail address, a gold
column. Each test here reads what reaches an annotator through every way ``next`` is answered: the hot
path (a bearer token, :mod:`labelwright.api.hot`), the FastAPI route (a browser session with its CSRF
header), the qualification test, and the labelling page's HTML.
"""

from __future__ import annotations

import re

import pytest

from labelwright.errors import ValidationError
from labelwright.schema import parse_schema
from labelwright.services import projects, queue, review, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.services.users import get_user
from tests.conftest import bearer, post_login

SECRET = "the-answer-is-spam-7f3a"
EMAIL = "author-4411@example.org"
SCHEMA = {
    "name": "Hidden fields", "slug": "hidden", "overlap": 1, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "text", "type": "text"}, {"name": "note", "type": "text", "required": False}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}


def _item(i: int, **extra) -> dict:
    return {"id": f"h{i}", "text": f"comment {i}", "answer_key": SECRET, "email": EMAIL, **extra}


def _project(store, owner, items=3, **schema):
    p = create_project(store, {**SCHEMA, **schema}, created_by=owner[0].id)
    add_items(store, p, [_item(i) for i in range(items)])
    return p


def _browser_session(http, make_annotator, name="bea"):
    make_annotator(name, password=f"{name}-password-1")
    assert post_login(http, name, f"{name}-password-1", follow_redirects=False).status_code == 303
    page = http.get("/projects/hidden/label")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), page


def test_next_sends_only_display_fields_on_the_hot_path(http, store, owner, make_annotator):
    _project(store, owner)
    _, token = make_annotator("ann")
    r = http.post("/api/v1/projects/hidden/next", headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["data"] == {"text": "comment 0"}  # the optional display field is absent in the item
    assert SECRET not in r.text and EMAIL not in r.text and "answer_key" not in r.text


def test_next_sends_only_display_fields_through_fastapi(http, store, owner, make_annotator):
    _project(store, owner)
    csrf, page = _browser_session(http, make_annotator)
    assert SECRET not in page.text and EMAIL not in page.text  # the labelling page
    r = http.post("/api/v1/projects/hidden/next", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert r.json()["data"] == {"text": "comment 0"}
    assert SECRET not in r.text and EMAIL not in r.text


def test_hot_path_and_route_answer_alike(http, store, owner, make_annotator):
    """The same annotator asking twice (the held item comes back) through both paths gets the same body."""
    _project(store, owner)
    csrf, _ = _browser_session(http, make_annotator, "cai")

    token = users.create_api_token(store, users.get_user(store, "cai"))
    hot = http.post("/api/v1/projects/hidden/next", headers=bearer(token))
    slow = http.post("/api/v1/projects/hidden/next", headers={"X-CSRF-Token": csrf})
    a, b = hot.json(), slow.json()
    a.pop("lease_expires_at"), b.pop("lease_expires_at")
    assert a == b and a["data"] == {"text": "comment 0"}


def test_send_fields_all_and_a_list(http, store, owner, make_annotator):
    every = create_project(store, {**SCHEMA, "slug": "every", "send_fields": "all"}, created_by=owner[0].id)
    add_items(store, every, [_item(0, gold={"spam": "spam"}), _item(1)])  # a gold column is stripped at import
    listed = create_project(store, {**SCHEMA, "slug": "listed", "send_fields": ["answer_key"]},
                            created_by=owner[0].id)
    add_items(store, listed, [_item(0)])
    _, token = make_annotator("ann")
    got = http.post("/api/v1/projects/every/next", headers=bearer(token)).json()
    assert got["data"] == {"id": "h1", "text": "comment 1", "answer_key": SECRET, "email": EMAIL}
    got = http.post("/api/v1/projects/listed/next", headers=bearer(token)).json()
    assert got["data"] == {"text": "comment 0", "answer_key": SECRET}


def test_qualification_items_send_only_display_fields(http, store, owner, make_annotator):
    p = create_project(store, {**SCHEMA, "qualification": {"size": 1}}, created_by=owner[0].id)
    add_items(store, p, [_item(0, gold={"spam": "spam"}), _item(1)])
    _, token = make_annotator("ann")
    r = http.post("/api/v1/projects/hidden/next", headers=bearer(token))
    assert r.json()["stage"] == "qualification"
    assert r.json()["data"] == {"text": "comment 0"}
    assert SECRET not in r.text and "spam" not in r.text.replace('"project":"hidden"', "")


def test_a_dishonest_annotator_cannot_widen_what_is_sent(http, store, owner, make_annotator):
    """Only a manager changes the schema; an annotator's PATCH-like tricks on next do nothing."""
    _project(store, owner)
    _, token = make_annotator("ann")
    r = http.post("/api/v1/projects/hidden/next?send_fields=all", headers=bearer(token),
                  json={"send_fields": "all"})
    assert r.status_code == 200 and SECRET not in r.text


@pytest.mark.parametrize("value, message", [
    (["answer_key", "answer_key"], "appears twice"),
    (["gold"], "gold answers are never sent"),
    ("some", "send_fields"),
])
def test_send_fields_is_validated(value, message):
    with pytest.raises(ValidationError) as e:
        parse_schema({**SCHEMA, "send_fields": value})
    assert message in str(e.value)


def test_sent_data_default_keeps_display_fields_only():
    schema = parse_schema(SCHEMA)
    assert schema.send_fields == "shown"
    assert schema.sent_data({"text": "t", "note": "n", "answer_key": SECRET}) == {"text": "t", "note": "n"}


def test_history_sends_only_display_fields(http, store, owner, make_annotator):
    """The caller's history (GET /projects/P/history) carried each item's whole data, answer keys too."""
    _project(store, owner)
    _, token = make_annotator("ann")
    item = http.post("/api/v1/projects/hidden/next", headers=bearer(token)).json()
    assert http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "ham"}},
                     headers=bearer(token)).status_code == 201
    r = http.get("/api/v1/projects/hidden/history", headers=bearer(token))
    assert r.status_code == 200
    (entry,) = r.json()
    assert entry["data"] == {"text": "comment 0"} and entry["amendable"] is True
    assert SECRET not in r.text and EMAIL not in r.text


def test_a_reviewed_answer_is_shown_as_frozen_not_as_a_form(http, store, owner, make_annotator):
    p = _project(store, owner, review={"mode": "all"})
    csrf, page = _browser_session(http, make_annotator)

    user = get_user(store, "bea")
    item = queue.claim_next(store, p, user)
    ann, _ = queue.submit(store, item["id"], user, {"spam": "ham"})
    r = http.get(f"/projects/hidden/history/{ann['id']}")
    assert r.status_code == 200 and 'name="spam"' in r.text  # still amendable: the form
    review.decide(store, projects.get_project(store, "hidden"), owner[0], ann["id"], "accepted")
    r = http.get(f"/projects/hidden/history/{ann['id']}")
    assert r.status_code == 409 and "can no longer be changed" in r.text and 'name="spam"' not in r.text
    assert http.get("/api/v1/projects/hidden/history", headers={"X-CSRF-Token": csrf}).json()[0]["amendable"] is False
