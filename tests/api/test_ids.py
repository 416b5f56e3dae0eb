"""Ids in paths and queries, and things reached by their id from outside their project.

* An integer id in a path that no database can hold (2**63 and above, below 1) answers 404 like an id
  that names nothing; an integer query parameter out of range answers 422; nothing answers 5xx. The
  checks walk the app's own route table, so a route added later is covered without a new test.
* A caller who is not a member of a thing's project (or is blocked there) learns nothing of it or of
  the project: an item, an annotation or a delivery of another project is not found (404), and no
  refusal names a project the caller did not name.
"""

from __future__ import annotations

import re
import time
from types import UnionType
from typing import Union, get_args, get_origin

import pytest
from fastapi.routing import APIRoute

from labelwright.errors import Forbidden, NotFound
from labelwright.services import access, events, invites, queue, webhooks
from labelwright.services import users as users_svc
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.settings import Settings
from tests.conftest import SPAM_SCHEMA, bearer

HUGE = (2**63, 2**64, -1, -(2**63) - 1)
SECRET = "secret-bravo"  # the slug nobody outside that project may hear


@pytest.fixture
def settings(db_url):
    return Settings(db_url=db_url, webhook_worker=False)  # nothing is sent anywhere


def _routes(app):
    """``(method, path, route)`` for every route, with included routers' prefixes."""
    def walk(routes, prefix=""):
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
            elif isinstance(r, APIRoute):
                path = r.path if r.path.startswith(prefix) else prefix + r.path
                yield from ((m, path, r) for m in sorted(r.methods) if m != "HEAD")
    return list(walk(app.routes))


def _params(dependant, kind: str) -> list:
    found = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        found += _params(sub, kind)
    return found


def _is_int(annotation) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return int in get_args(annotation)
    return annotation is int


def _sign_in(http, name: str, password: str) -> str:
    """A browser session for ``name``; returns its CSRF token."""
    http.cookies.clear()
    form = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)  # the sign-in form's own token
    r = http.post("/login", data={"name": name, "password": password, **({"csrf": form[1]} if form else {})},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def _call(http, method: str, url: str, token: str | None, csrf: str | None, data: dict | None = None):
    """An API call with ``token`` (JSON body ``data``), or a page request in the signed-in session."""
    if url.startswith("/api/"):
        body = (data if data is not None else {}) if method in ("POST", "PUT", "PATCH") else None
        return http.request(method, url, json=body, headers=bearer(token), follow_redirects=False)
    form = {"csrf": csrf, **(data or {})} if method == "POST" else None
    return http.request(method, url, data=form, follow_redirects=False)


def _fill(path: str, values: dict) -> str:
    return re.sub(r"\{([a-z_]+)(?::path)?\}", lambda m: str(values.get(m.group(1), "x.png")), path)


# ---- ids no database can hold ---------------------------------------------------------------------


def test_path_ids_out_of_range_answer_404_on_every_route(http, owner, spam_project):
    csrf = _sign_in(http, "olive", "owner-password")
    base = {"project": "spam", "slug": "spam", "name": "olive", "token": "not-a-token"}
    checked, failures = 0, []
    for method, path, route in _routes(http.app):
        ids = [f.name for f in _params(route.dependant, "path_params") if _is_int(f.field_info.annotation)]
        for name in ids:
            for bad in HUGE:
                values = {**base, **{other: 1 for other in ids}, name: bad}
                r = _call(http, method, _fill(path, values), owner[1], csrf)
                checked += 1
                if r.status_code != 404 or (path.startswith("/api/") and str(bad) not in r.json()["error"]):
                    failures.append(f"{method} {path} {name}={bad}: {r.status_code} {r.text[:120]}")
    assert checked >= 4 * 20
    assert not failures, "\n".join(failures)


def test_project_refs_out_of_range_never_answer_5xx(http, owner, spam_project):
    csrf = _sign_in(http, "olive", "owner-password")
    failures = []
    for method, path, _route in _routes(http.app):
        if "{project}" not in path and "{slug}" not in path:
            continue
        for ref in (str(2**63), str(2**64), "²", "١٢"):
            values = {"project": ref, "slug": ref, "name": "olive", "item_id": 1, "annotation_id": 1}
            r = _call(http, method, _fill(path, values), owner[1], csrf)
            # 422: a body the route refuses before it looks the project up
            if r.status_code not in (404, 422):
                failures.append(f"{method} {path} project={ref}: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)
    h = bearer(owner[1])
    r = http.get(f"/api/v1/projects/{2**63}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == f"no project {2**63}"
    r = http.post("/api/v1/users", json={"name": "newbie", "projects": [str(2**64)]}, headers=h)
    assert r.status_code == 404
    r = http.post("/api/v1/webhooks", json={"url": "https://hooks.example.org/x", "project": "²"}, headers=h)
    assert r.status_code == 404


def test_integer_query_parameters_out_of_range_answer_422(http, owner, spam_project):
    csrf = _sign_in(http, "olive", "owner-password")
    base = {"project": "spam", "slug": "spam", "name": "olive", "item_id": 1, "annotation_id": 1,
            "webhook_id": 1, "delivery_id": 1, "token_id": 1, "invite_id": 1, "token": "not-a-token"}
    checked, failures = 0, []
    for method, path, route in _routes(http.app):
        for field in _params(route.dependant, "query_params"):
            if not _is_int(field.field_info.annotation):
                continue
            for bad in (2**63, 2**64, -1):
                r = _call(http, method, f"{_fill(path, base)}?{field.alias}={bad}", owner[1], csrf)
                checked += 1
                if r.status_code != 422:
                    failures.append(f"{method} {path}?{field.alias}={bad}: {r.status_code} {r.text[:120]}")
    assert checked >= 3 * 5  # before (API and page), limit (three routes), doubt
    assert not failures, "\n".join(failures)
    assert http.get("/api/v1/audit?before=1", headers=bearer(owner[1])).status_code == 200


# ---- things of another project ----------------------------------------------------------------------


@pytest.fixture
def two(store, owner, make_annotator):
    """Projects "alpha" and SECRET, each with items, an annotation, a webhook and a delivery; ann, rex and
    maya are annotator, reviewer and manager in alpha only; bob annotates and bella manages SECRET."""
    alpha = create_project(store, {**SPAM_SCHEMA, "slug": "alpha"}, created_by=owner[0].id)
    bravo = create_project(store, {**SPAM_SCHEMA, "slug": SECRET}, created_by=owner[0].id)
    for p in (alpha, bravo):
        add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(4)])
    w = {"alpha": alpha, "bravo": bravo, "users": {}, "tokens": {}}
    for name, role, project in (("ann", "annotator", alpha), ("rex", "reviewer", alpha), ("maya", "manager", alpha),
                                ("bob", "annotator", bravo), ("bella", "manager", bravo)):
        user, tok = make_annotator(name, f"{name}-password", role=role, member=False)
        access.set_member(store, project, name, role)
        w["users"][name], w["tokens"][name] = user, tok
    item = queue.claim_next(store, alpha, w["users"]["ann"])
    w["ann_a"] = queue.submit(store, item["id"], w["users"]["ann"], {"spam": "spam"})[0]["id"]
    item = queue.claim_next(store, bravo, w["users"]["bob"])
    w["ann_b"] = queue.submit(store, item["id"], w["users"]["bob"], {"spam": "ham"})[0]["id"]
    w["item_b"] = queue.claim_next(store, bravo, w["users"]["bob"])["id"]  # leased by bob
    w["item_a"] = queue.claim_next(store, alpha, w["users"]["ann"])["id"]  # leased by ann
    w["missing_item"] = w["item_b"] + 1000
    w["hook_a"] = webhooks.create_webhook(store, "https://hooks.example.org/a", alpha)[1]["id"]
    w["hook_b"] = webhooks.create_webhook(store, "https://hooks.example.org/b", bravo)[1]["id"]
    w["hook_all"] = webhooks.create_webhook(store, "https://hooks.example.org/all", None)[1]["id"]
    with store.write() as conn:  # far in the future: never due
        events.emit(conn, "item.completed", alpha.id, {"item": "c0"}, now=time.time() + 86400)
        events.emit(conn, "item.completed", bravo.id, {"item": "c0"}, now=time.time() + 86400)
    w["delivery_b"] = webhooks.delivery_log(store, webhook_ids=[w["hook_b"]])[0]["id"]
    users_svc.create_api_token(store, w["users"]["bob"], label="spare")
    w["bob_token"] = users_svc.list_tokens(store, w["users"]["bob"])[-1]["id"]
    w["bella_invite"] = invites.create_invite(store, w["users"]["bella"], project=bravo)[1]["id"]
    return w


def _quiet(r) -> str | None:
    """Why the answer says too much about SECRET, or None."""
    if r.status_code >= 500:
        return f"{r.status_code}"
    if SECRET in r.text:
        return f"{r.status_code} names {SECRET!r}: {r.text[:160]}"
    return None


def _message(r) -> str:
    """The error an API answer or an error page gives."""
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.json()["error"]
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', r.text, re.DOTALL)
    return found[1] if found else r.text


def _same_answer(r, other, n: int, m: int) -> bool:
    """Whether ``r`` (about id ``n``) and ``other`` (about id ``m``) say the same but for the id."""
    def said(resp, i):
        return resp.status_code, re.sub(rf"\b{i}\b", "N", _message(resp))
    return said(r, n) == said(other, m)


def test_items_of_another_project_are_not_found_there(http, owner, two):
    """Gold, the item page and the labelling forms, for a manager, an annotator and the owner of alpha."""
    ib, missing = two["item_b"], two["missing_item"]
    failures = []
    for caller in ("maya", "olive"):
        token = two["tokens"].get(caller, owner[1])
        for method in ("PUT", "DELETE"):
            url = "/api/v1/projects/alpha/items/{}/gold"
            r = _call(http, method, url.format(ib), token, None, {"answers": {"spam": "ham"}})
            gone = _call(http, method, url.format(missing), token, None, {"answers": {"spam": "ham"}})
            if r.status_code != 404 or _quiet(r) or not _same_answer(r, gone, ib, missing):
                failures.append(f"{caller} {method} {url}: {r.status_code} {r.text[:120]}")
    for caller, password, pages in (
            ("maya", "maya-password", [("GET", "/projects/alpha/items/{}", None),
                                       ("POST", "/projects/alpha/items/{}/gold", {"spam": "ham"}),
                                       ("POST", "/projects/alpha/items/{}/gold/remove", None)]),
            ("ann", "ann-password", [("POST", "/projects/alpha/items/{}/submit", {"spam": "ham"}),
                                     ("POST", "/projects/alpha/items/{}/skip", None)]),
            ("olive", "owner-password", [("GET", "/projects/alpha/items/{}", None),
                                         ("POST", "/projects/alpha/items/{}/skip", None)])):
        csrf = _sign_in(http, caller, password)
        for method, url, data in pages:
            r = _call(http, method, url.format(ib), None, csrf, data)
            gone = _call(http, method, url.format(missing), None, csrf, data)
            if r.status_code != 404 or _quiet(r) or not _same_answer(r, gone, ib, missing):
                failures.append(f"{caller} {method} {url}: {r.status_code} {r.text[:120]}")
    # releasing another's or another project's item: nothing to say, nothing done
    r = _call(http, "POST", f"/api/v1/items/{ib}/release", two["tokens"]["ann"], None)
    if r.status_code not in (204, 404) or _quiet(r):
        failures.append(f"ann release: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_annotations_of_another_project_are_not_found_there(http, two):
    ab = two["ann_b"]
    failures = []
    r = http.post(f"/api/v1/projects/alpha/review/{ab}", json={"decision": "accepted"},
                  headers=bearer(two["tokens"]["rex"]))
    if r.status_code != 404 or _quiet(r):
        failures.append(f"rex API review: {r.status_code} {r.text[:120]}")
    r = http.put(f"/api/v1/annotations/{ab}", json={"answers": {"spam": "spam"}}, headers=bearer(two["tokens"]["ann"]))
    if r.status_code != 404 or _quiet(r):
        failures.append(f"ann API amend: {r.status_code} {r.text[:120]}")
    csrf = _sign_in(http, "rex", "rex-password")
    r = _call(http, "POST", f"/projects/alpha/review/{ab}", None, csrf, {"decision": "accepted"})
    if r.status_code != 404 or _quiet(r):
        failures.append(f"rex page review: {r.status_code} {r.text[:120]}")
    csrf = _sign_in(http, "ann", "ann-password")
    for method in ("GET", "POST"):  # not in ann's history: refused, naming nothing
        r = _call(http, method, f"/projects/alpha/history/{ab}", None, csrf, {"spam": "spam"})
        if r.status_code not in (403, 404) or _quiet(r):
            failures.append(f"ann {method} history page: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_an_item_id_alone_tells_a_non_member_nothing(http, store, two):
    """``/api/v1/items/{id}/...`` and ``/api/v1/annotations/{id}`` name no project: for a non-member, or a
    member blocked since, the thing is not found, exactly as a missing one."""
    ib, missing = two["item_b"], two["missing_item"]
    failures = []

    def check(who: str, method: str, url: str, gone_url: str, body=None):
        h = bearer(two["tokens"][who])
        r, gone = http.request(method, url, json=body, headers=h), http.request(method, gone_url, json=body, headers=h)
        if r.status_code != 404 or _quiet(r) or not _same_answer(r, gone, ib, missing):
            failures.append(f"{who} {method} {url}: {r.status_code} {r.text[:120]}")

    answer = {"answers": {"spam": "ham"}}
    check("ann", "POST", f"/api/v1/items/{ib}/annotations", f"/api/v1/items/{missing}/annotations", answer)
    check("ann", "POST", f"/api/v1/items/{ib}/skip", f"/api/v1/items/{missing}/skip")
    access.block(store, two["bravo"], "bob")
    check("bob", "POST", f"/api/v1/items/{ib}/annotations", f"/api/v1/items/{missing}/annotations", answer)
    check("bob", "POST", f"/api/v1/items/{ib}/skip", f"/api/v1/items/{missing}/skip")
    r = http.put(f"/api/v1/annotations/{two['ann_b']}", json=answer, headers=bearer(two["tokens"]["bob"]))
    if r.status_code != 404 or _quiet(r):
        failures.append(f"blocked bob amends: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_webhooks_of_another_project_are_not_named(http, two):
    h = bearer(two["tokens"]["maya"])
    hb, everyone = two["hook_b"], two["hook_all"]
    requests = [("PATCH", "/api/v1/webhooks/{}", {"active": False}), ("DELETE", "/api/v1/webhooks/{}", None),
                ("GET", "/api/v1/webhooks/{}/deliveries", None),
                ("POST", f"/api/v1/webhooks/{{}}/deliveries/{two['delivery_b']}/retry", None)]
    failures = []
    for method, url, body in requests:
        r = http.request(method, url.format(hb), json=body, headers=h)
        other = http.request(method, url.format(everyone), json=body, headers=h)
        # refused the same way, whether the webhook is another project's or every project's
        if r.status_code != 403 or _quiet(r) or not _same_answer(r, other, hb, everyone):
            failures.append(f"maya {method} {url}: {r.status_code} {r.text[:120]} / {other.text[:120]}")
    r = http.post(f"/api/v1/webhooks/{two['hook_a']}/deliveries/{two['delivery_b']}/retry", headers=h)
    if r.status_code != 404 or _quiet(r):
        failures.append(f"maya retries another webhook's delivery: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)
    assert http.get(f"/api/v1/webhooks/{two['hook_a']}/deliveries", headers=h).status_code == 200
    assert http.get(f"/api/v1/webhooks/{hb}/deliveries", headers=bearer(two["tokens"]["bella"])).status_code == 200


def test_a_project_named_by_id_stays_unnamed_to_non_members(http, two):
    bravo_id = two["bravo"].id
    r = http.get(f"/api/v1/projects/{bravo_id}", headers=bearer(two["tokens"]["ann"]))
    assert r.status_code == 403 and SECRET not in r.text and f"project {bravo_id}" in r.json()["error"]
    assert http.post(f"/api/v1/projects/{bravo_id}/next", headers=bearer(two["tokens"]["ann"])).status_code == 403
    csrf = _sign_in(http, "ann", "ann-password")
    r = _call(http, "GET", f"/projects/{bravo_id}/label", None, csrf)
    assert r.status_code == 403 and SECRET not in r.text
    # named by its slug, the refusal names it (the caller knows it, and learns whom to ask)
    r = http.get(f"/api/v1/projects/{SECRET}", headers=bearer(two["tokens"]["ann"]))
    assert r.status_code == 403 and f"project {SECRET!r}" in r.json()["error"]


def test_tokens_and_invites_of_others_are_not_found(http, two):
    h = bearer(two["tokens"]["maya"])
    r = http.delete(f"/api/v1/tokens/{two['bob_token']}", headers=h)
    assert r.status_code == 404 and not _quiet(r)
    r = http.delete(f"/api/v1/invites/{two['bella_invite']}", headers=h)
    assert r.status_code == 404 and not _quiet(r)


def test_require_answers_not_found_for_things_reached_by_id(store, two):
    ann, rex = two["users"]["ann"], two["users"]["rex"]
    with pytest.raises(NotFound, match="^no item 7$"):
        access.require(store, ann, two["bravo"], missing="no item 7")
    with pytest.raises(Forbidden, match="this needs a manager"):  # a member: told what they lack
        access.require(store, rex, two["alpha"], "manager", missing="no item 7")
    access.block(store, two["alpha"], "ann")
    with pytest.raises(NotFound, match="^no annotation 3 of yours$"):
        access.require(store, ann, two["alpha"], missing="no annotation 3 of yours")
    with pytest.raises(Forbidden, match="not a member of project 'alpha'"):
        access.require(store, ann, two["alpha"])
