"""Rules through the API and the pages, on SQLite and PostgreSQL: the owner adds, changes, switches and deletes
rules (forms with the CSRF token), annotators and outsiders cannot, and annotators never see rules' votes."""

from __future__ import annotations

import re

import pytest

from labelwright.services import access, rules
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from tests.conftest import bearer, post_login
from tests.services.test_rules import SCHEMA, slice_of_youtube


@pytest.fixture
def yt(store, owner):
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    records = slice_of_youtube(0, 40)
    add_items(store, p, [{"id": r["id"], "text": r["text"]} for r in records])
    return p, records


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_api_manages_rules_for_the_owner_only(http, store, owner, make_annotator, yt):
    p, records = yt
    _, ann = make_annotator("ann")
    _, otto = make_annotator("otto", member=False)
    body = {"name": "check", "kind": "keyword", "field": "text", "label": "spam", "pattern": "check out, subscribe"}
    for token in (ann, otto):
        assert http.post("/api/v1/projects/yt/rules", json=body, headers=bearer(token)).status_code == 403
        assert http.get("/api/v1/projects/yt/rules", headers=bearer(token)).status_code == 403
    assert rules.list_rules(store, p) == []
    r = http.post("/api/v1/projects/yt/rules", json=body, headers=bearer(owner[1]))
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["votes"] > 0 and rule["enabled"]
    for token in (ann, otto):
        assert http.patch(f"/api/v1/projects/yt/rules/{rule['id']}", json={"enabled": False},
                          headers=bearer(token)).status_code == 403
        assert http.delete(f"/api/v1/projects/yt/rules/{rule['id']}", headers=bearer(token)).status_code == 403
    bad = http.post("/api/v1/projects/yt/rules", json={**body, "name": "bad", "kind": "regex", "pattern": "(a|aa)+$"},
                    headers=bearer(owner[1]))
    assert bad.status_code == 422 and "catastrophically" in bad.json()["error"] and bad.json()["field"] == "pattern"
    listed = http.get("/api/v1/projects/yt/rules", headers=bearer(owner[1])).json()
    assert listed["label_model"] is False and [x["name"] for x in listed["rules"]] == ["check"]
    assert listed["analysis"][0]["rules"][0]["votes"] == rule["votes"]
    off = http.patch(f"/api/v1/projects/yt/rules/{rule['id']}", json={"enabled": False}, headers=bearer(owner[1]))
    assert off.json()["votes"] == 0
    assert http.post("/api/v1/projects/yt/rules/label-model", json={"enabled": True},
                     headers=bearer(owner[1])).json() == {"label_model": True}
    assert http.delete(f"/api/v1/projects/yt/rules/{rule['id']}", headers=bearer(owner[1])).status_code == 204
    assert http.get("/api/v1/projects/yt/rules", headers=bearer(owner[1])).json()["rules"] == []


def test_the_owner_uses_the_forms_and_csrf_is_checked(http, store, owner, yt):
    p, records = yt
    post_login(http, "olive", "owner-password")
    page = http.get("/projects/yt/rules")
    assert page.status_code == 200 and "No rules yet" in page.text
    form = {"name": "subscribe", "kind": "keyword", "question": "spam", "field": "text", "label": "spam",
            "pattern": "subscribe\ncheck out"}
    refused = http.post("/projects/yt/rules", data=form, follow_redirects=False)
    assert refused.status_code in (400, 403) and rules.list_rules(store, p) == []  # no CSRF token
    r = http.post("/projects/yt/rules", data={**form, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = http.get(r.headers["location"])
    rule = rules.list_rules(store, p)[0]
    assert "Rule added" in page.text and f'id="rule-{rule["id"]}"' in page.text and rule["votes"] > 0
    assert 'class="lf-analysis"' in page.text
    bad = http.post("/projects/yt/rules", data={**form, "name": "x", "kind": "regex", "pattern": "(",
                                                "csrf": csrf_of(page.text)})
    assert bad.status_code == 422 and "not a valid regular expression" in bad.text and "(pattern)" in bad.text
    r = http.post(f"/projects/yt/rules/{rule['id']}/enabled", data={"enabled": "0", "csrf": csrf_of(page.text)})
    assert "its votes are gone" in r.text and rules.get_rule(store, p, rule["id"])["votes"] == 0
    r = http.post(f"/projects/yt/rules/{rule['id']}", data={"name": "sub", "pattern": "subscribe",
                                                           "csrf": csrf_of(page.text)})
    assert rules.get_rule(store, p, rule["id"])["name"] == "sub"
    r = http.post("/projects/yt/rules/label-model", data={"enabled": "1", "csrf": csrf_of(page.text)})
    assert "aggregates people and rules" in r.text and rules.label_model_on(store, p)
    r = http.post(f"/projects/yt/rules/{rule['id']}/delete", data={"csrf": csrf_of(page.text)})
    assert "Rule deleted" in r.text and rules.list_rules(store, p) == []


def test_annotators_cannot_open_the_rules_page_nor_see_rule_votes(http, store, owner, make_annotator, yt):
    p, records = yt
    make_annotator("ann", "ann-password")
    access.set_member(store, p, "ann", "annotator")
    rule = rules.create_rule(store, p, name="everything", kind="regex", field="text", label="spam", pattern=".")
    assert rule["votes"] == len(records)  # a vote on every item, so whatever ann is served has one
    post_login(http, "ann", "ann-password")
    assert http.get("/projects/yt/rules", follow_redirects=False).status_code == 403
    page = http.get("/projects/yt/label")
    assert page.status_code == 200
    token = csrf_of(page.text)
    r = http.post("/projects/yt/rules", data={"name": "mine", "kind": "regex", "field": "text", "label": "ham",
                                              "pattern": "x", "csrf": token}, follow_redirects=False)
    assert r.status_code == 403 and len(rules.list_rules(store, p)) == 1
    assert http.get("/projects/yt/quality", follow_redirects=False).status_code == 403
    for shown in (page.text, http.get("/projects/yt/history").text):
        assert "rule:" not in shown and "everything" not in shown
