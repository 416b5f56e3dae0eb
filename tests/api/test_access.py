"""Who may do what: every route of the app against every role (the matrix), then the rules one by one.

The matrix walks the app's own route table, so a route added without an entry in ``EXPECTED`` fails
the test: nobody can add a route without saying who may use it.
"""

from __future__ import annotations

import re
import time

import pytest
from click.testing import CliRunner
from fastapi.routing import APIRoute
from sqlalchemy import text as sa_text

from labelwright.cli import main
from labelwright.services import access, audit, events, invites, queue, webhooks
from labelwright.services import users as users_svc
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from tests.conftest import SPAM_SCHEMA, bearer, join, post_login

# Who may use each route. "anyone": signed in; "member": annotator or above in the project;
# "reviewer" / "manager": at least that in the project; "org-manager": a manager or owner of the
# organisation; "owner": owners only; "public": no sign-in needed (invite and reset pages check their
# link instead). Routes that act on the caller's own things (their tokens, leases, annotations) are
# "anyone" or "member": other people's things are not found there (404), not forbidden. "author": only
# the annotation's author (ann) may open or amend it.
EXPECTED = {
    ("GET", "/api/v1/me"): "anyone",
    ("GET", "/api/v1/users"): "owner",
    ("POST", "/api/v1/users"): "owner",
    ("PATCH", "/api/v1/users/{name}"): "owner",
    ("GET", "/api/v1/users/{name}/tokens"): "owner",
    ("GET", "/api/v1/tokens"): "anyone",
    ("POST", "/api/v1/tokens"): "anyone",
    ("DELETE", "/api/v1/tokens/{token_id}"): "anyone",
    ("POST", "/api/v1/me/password"): "anyone",
    ("POST", "/api/v1/invites"): "manager",
    ("GET", "/api/v1/invites"): "org-manager",
    ("DELETE", "/api/v1/invites/{invite_id}"): "anyone",
    ("GET", "/api/v1/audit"): "owner",
    ("GET", "/api/v1/projects"): "anyone",
    ("POST", "/api/v1/projects"): "org-manager",
    ("GET", "/api/v1/projects/{project}"): "member",
    ("GET", "/api/v1/projects/{project}/status"): "manager",
    ("GET", "/api/v1/projects/{project}/quality"): "reviewer",
    ("GET", "/api/v1/projects/{project}/members"): "manager",
    ("PUT", "/api/v1/projects/{project}/members/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/members/{name}"): "manager",
    ("POST", "/api/v1/projects/{project}/members/{name}/block"): "manager",
    ("POST", "/api/v1/projects/{project}/members/{name}/unblock"): "manager",
    ("GET", "/api/v1/projects/{project}/gold"): "manager",
    ("PUT", "/api/v1/projects/{project}/items/{item_id}/gold"): "manager",
    ("DELETE", "/api/v1/projects/{project}/items/{item_id}/gold"): "manager",
    ("GET", "/api/v1/projects/{project}/paused"): "manager",
    ("POST", "/api/v1/projects/{project}/annotators/{name}/pause"): "manager",
    ("POST", "/api/v1/projects/{project}/annotators/{name}/resume"): "manager",
    ("POST", "/api/v1/projects/{project}/items"): "manager",
    ("POST", "/api/v1/projects/{project}/next"): "member",
    ("GET", "/api/v1/projects/{project}/history"): "member",
    ("GET", "/api/v1/projects/{project}/mine"): "member",
    ("GET", "/api/v1/projects/{project}/export"): "manager",
    ("POST", "/api/v1/items/{item_id}/annotations"): "member",
    ("PUT", "/api/v1/annotations/{annotation_id}"): "anyone",  # the author's own: others get 404
    ("POST", "/api/v1/items/{item_id}/skip"): "member",
    ("POST", "/api/v1/items/{item_id}/run"): "member",  # a member it was handed to (ann answered it)
    ("POST", "/api/v1/items/{item_id}/release"): "anyone",
    ("GET", "/api/v1/me/work"): "anyone",
    ("GET", "/api/v1/me/feedback"): "anyone",
    ("GET", "/api/v1/me/messages"): "anyone",
    ("GET", "/api/v1/projects/{project}/qualification"): "member",
    ("POST", "/api/v1/projects/{project}/qualification/{item_id}"): "member",
    ("POST", "/api/v1/projects/{project}/review/next"): "reviewer",
    ("POST", "/api/v1/projects/{project}/review/{annotation_id}"): "reviewer",
    ("GET", "/api/v1/projects/{project}/review"): "reviewer",
    ("POST", "/api/v1/projects/{project}/pay/settle"): "manager",
    ("GET", "/api/v1/projects/{project}/pay"): "manager",
    ("GET", "/api/v1/projects/{project}/ledger"): "manager",
    ("POST", "/api/v1/projects/{project}/messages"): "manager",
    ("POST", "/api/v1/projects/{project}/items/more-answers"): "manager",
    ("POST", "/api/v1/projects/{project}/expire"): "manager",
    ("PATCH", "/api/v1/projects/{project}/settings"): "manager",
    ("GET", "/api/v1/projects/{project}/machine-annotators"): "manager",
    ("POST", "/api/v1/projects/{project}/machine-annotators"): "manager",
    ("POST", "/api/v1/projects/{project}/machine-annotators/{name}/enabled"): "manager",
    ("GET", "/api/v1/projects/{project}/assist"): "manager",
    ("POST", "/api/v1/projects/{project}/assist/run"): "manager",
    ("POST", "/api/v1/projects/{project}/assist/resume"): "manager",
    ("GET", "/api/v1/projects/{project}/checks"): "manager",
    ("POST", "/api/v1/projects/{project}/checks/next"): "reviewer",
    ("POST", "/api/v1/checks/{check_id}"): "reviewer",
    ("POST", "/api/v1/webhooks"): "manager",
    ("GET", "/api/v1/webhooks"): "manager",
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): "manager",
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): "manager",
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): "manager",
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): "manager",
    # pages
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("GET", "/signin/{token}"): "public",
    ("GET", "/invite/{token}"): "public",
    ("POST", "/invite/{token}"): "public",
    ("GET", "/reset/{token}"): "public",
    ("POST", "/reset/{token}"): "public",
    ("POST", "/logout"): "anyone",
    ("GET", "/account"): "anyone",
    ("POST", "/account/password"): "anyone",
    ("GET", "/"): "anyone",
    ("GET", "/projects/{slug}/label"): "member",
    ("POST", "/projects/{slug}/items/{item_id}/submit"): "member",
    ("POST", "/projects/{slug}/items/{item_id}/skip"): "member",
    ("POST", "/projects/{slug}/label/prefetch"): "member",
    ("POST", "/projects/{slug}/items/{item_id}/release"): "member",
    ("GET", "/projects/{slug}/history/{annotation_id}"): "author",
    ("POST", "/projects/{slug}/history/{annotation_id}"): "author",
    ("GET", "/projects/{slug}/quality"): "reviewer",
    ("GET", "/projects/{slug}"): "manager",
    ("GET", "/projects/{slug}/items/{item_id}"): "manager",
    ("POST", "/projects/{slug}/items/{item_id}/gold"): "manager",
    ("POST", "/projects/{slug}/items/{item_id}/gold/remove"): "manager",
    ("GET", "/projects/{slug}/doubt"): "manager",  # items in doubt and more answers (web/doubt.py)
    ("POST", "/projects/{slug}/more-answers"): "manager",
    ("POST", "/projects/{slug}/annotators/{name}/pause"): "manager",
    ("POST", "/projects/{slug}/annotators/{name}/resume"): "manager",
    ("GET", "/projects/{slug}/webhooks"): "manager",
    # running a project from the browser (web/manage.py, web/webhooks.py)
    ("GET", "/projects/new"): "org-manager",
    ("POST", "/projects/new"): "org-manager",
    ("POST", "/projects/new/preview"): "org-manager",
    ("GET", "/projects/{slug}/settings"): "manager",
    ("POST", "/projects/{slug}/settings/{group}"): "manager",
    ("GET", "/projects/{slug}/expire"): "manager",
    ("POST", "/projects/{slug}/expire"): "manager",
    ("GET", "/projects/{slug}/members"): "manager",
    ("POST", "/projects/{slug}/members"): "manager",
    ("POST", "/projects/{slug}/members/{name}/role"): "manager",
    ("POST", "/projects/{slug}/members/{name}/remove"): "manager",
    ("POST", "/projects/{slug}/members/{name}/block"): "manager",
    ("POST", "/projects/{slug}/members/{name}/unblock"): "manager",
    ("POST", "/projects/{slug}/invites"): "manager",
    ("POST", "/projects/{slug}/invites/{invite_id}/revoke"): "manager",
    ("GET", "/projects/{slug}/messages"): "manager",
    ("POST", "/projects/{slug}/messages"): "manager",
    ("POST", "/projects/{slug}/webhooks"): "manager",
    ("POST", "/projects/{slug}/webhooks/{webhook_id}/test"): "manager",
    ("POST", "/projects/{slug}/webhooks/{webhook_id}/active"): "manager",
    ("POST", "/projects/{slug}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): "manager",
    ("GET", "/media/{path:path}"): "org-manager",  # the schema preview's images
    ("GET", "/static/types/{tag}/{digest}/{name:path}"): "public",  # a question type's own scripts and styles
    ("GET", "/projects/{slug}/items/{item_id}/media/{field}"): "member",
    ("POST", "/projects/{slug}/qualification/{item_id}"): "member",
    ("GET", "/projects/{slug}/review"): "reviewer",
    ("POST", "/projects/{slug}/review/{annotation_id}"): "reviewer",
    ("GET", "/projects/{slug}/pay"): "manager",
    # the annotator's own pages (web/annotator.py)
    ("GET", "/projects/{slug}/start"): "member",
    ("GET", "/projects/{slug}/history"): "member",
    ("POST", "/me/questions/{annotation_id}"): "author",
    ("POST", "/api/v1/me/questions/{annotation_id}"): "author",
    ("GET", "/api/v1/projects/{project}/questions"): "reviewer",
    ("POST", "/api/v1/projects/{project}/questions/{question_id}"): "reviewer",
    ("POST", "/projects/{slug}/questions/{question_id}"): "reviewer",
    ("GET", "/projects/{slug}/assist"): "manager",
    ("POST", "/projects/{slug}/assist/run"): "manager",
    ("POST", "/projects/{slug}/assist/resume"): "manager",
    ("GET", "/projects/{slug}/checks"): "reviewer",
    ("POST", "/projects/{slug}/checks/{check_id}"): "reviewer",
    ("GET", "/audit"): "owner",
    # rules as annotators (api/rules.py, web/rules_page.py)
    ("GET", "/api/v1/projects/{project}/rules"): "manager",
    ("POST", "/api/v1/projects/{project}/rules"): "manager",
    ("PATCH", "/api/v1/projects/{project}/rules/{rule_id}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/rules/{rule_id}"): "manager",
    ("POST", "/api/v1/projects/{project}/rules/label-model"): "manager",
    ("GET", "/projects/{slug}/rules"): "manager",
    ("POST", "/projects/{slug}/rules"): "manager",
    ("POST", "/projects/{slug}/rules/label-model"): "manager",
    ("POST", "/projects/{slug}/rules/{rule_id}"): "manager",
    ("POST", "/projects/{slug}/rules/{rule_id}/enabled"): "manager",
    ("POST", "/projects/{slug}/rules/{rule_id}/delete"): "manager",
    ("GET", "/healthz"): "public",
}

# Each caller, weakest first (allowed calls by the stronger ones change things the weaker ones use).
# (name, organisation role, role in project "spam" or None, blocked)
CALLERS = [
    ("anonymous", None, None, False),
    ("otto", "annotator", None, False),      # not a member
    ("bea", "annotator", "annotator", True),  # blocked
    ("ann", "annotator", "annotator", False),
    ("rex", "reviewer", "reviewer", False),
    ("maya", "manager", "manager", False),
    ("olive", "owner", None, False),
]
# Routes reached by a thing's own id alone (no project in the path): a caller who may not use them learns
# nothing of the thing, so the refusal is 404, as for a thing that does not exist.
BY_ID = {("POST", "/api/v1/items/{item_id}/annotations"), ("POST", "/api/v1/items/{item_id}/skip"),
         ("POST", "/api/v1/items/{item_id}/run"),
         ("POST", "/api/v1/checks/{check_id}"), ("POST", "/me/questions/{annotation_id}"),
         ("POST", "/api/v1/me/questions/{annotation_id}")}

RANK = {"public": 0, "anyone": 1, "member": 2, "reviewer": 3, "manager": 4, "org-manager": 4, "owner": 5}


def _allowed(need: str, caller: str, org_role: str | None, project_role: str | None, blocked: bool) -> bool:
    if need == "public":
        return True
    if need == "author":
        return caller == "ann"
    if org_role is None:
        return False
    if need == "anyone":
        return True
    if need == "owner":
        return org_role == "owner"
    if need == "org-manager":
        return org_role in ("owner", "manager")
    if org_role == "owner":
        return True
    if project_role is None or blocked:
        return False
    return access.RANK[project_role] >= access.RANK[{"member": "annotator"}.get(need, need)]


def _routes(app) -> list[tuple[str, str]]:
    found = []

    def walk(routes, prefix=""):
        for r in routes:
            if hasattr(r, "original_router"):  # an included router: its routes, under its prefix
                walk(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
            elif isinstance(r, APIRoute):
                path = r.path if r.path.startswith(prefix) else prefix + r.path
                found.extend((m, path) for m in sorted(r.methods) if m != "HEAD")
    walk(app.routes)
    return found


@pytest.fixture
def world(store, owner, make_annotator):
    """Project "spam" with one member of each kind, an item, an annotation, and spare things to act on."""
    p = create_project(store, SPAM_SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(5)])
    tokens = {"olive": owner[1]}
    users = {"olive": owner[0]}
    for name, org_role, project_role, blocked in CALLERS[1:-1]:
        user, tok = make_annotator(name, f"{name}-password", role=org_role, member=False)
        users[name], tokens[name] = user, tok
        if project_role:
            access.set_member(store, p, name, project_role)
        if blocked:
            access.block(store, p, name)
    users_svc.set_password(store, owner[0], "owner-password")
    make_annotator("tara", member=False)  # the target of member routes
    join(store, "tara", [p])
    item = queue.claim_next(store, p, users["ann"])
    annotation, _ = queue.submit(store, item["id"], users["ann"], {"spam": "spam"})
    spare = {name: users_svc.create_api_token(store, users[name], label="spare") for name in users}
    spare_ids = {name: users_svc.list_tokens(store, users[name])[-1]["id"] for name in users}
    _, invite = invites.create_invite(store, owner[0], project=p)
    _, hook = webhooks.create_webhook(store, "http://127.0.0.1:9/hook", p, allow_private=True)
    # the one DELETE deletes
    _, spare_hook = webhooks.create_webhook(store, "http://127.0.0.1:9/spare", p, allow_private=True)
    with store.write() as conn:
        events.emit(conn, "item.completed", p.id, {"item": "c0"}, now=time.time() + 86400)  # not sent before a retry
    delivery = webhooks.delivery_log(store, webhook_ids=[hook["id"]])[0]["id"]
    with store.write() as conn:  # a check in the check queue (an assisted project's; its decision needs a lease)
        check = conn.execute(sa_text(
            "INSERT INTO assist_checks (project_id, item_id, kind, question, shown_label, reason, created_at) "
            "VALUES (:p, :i, 'label_error', 'spam', '\"spam\"', 'test', :now) RETURNING id"),
            {"p": p.id, "i": item["id"], "now": time.time()}).scalar_one()
    return {"check": check, "project": p, "tokens": tokens, "users": users, "item": item["id"],
            "annotation": annotation["id"],
            "spare": spare, "spare_ids": spare_ids, "invite": invite["id"], "webhook": hook["id"],
            "spare_webhook": spare_hook["id"], "delivery": delivery}


def _request(http, method: str, path: str, w: dict, caller: str, n: int):
    url = (path.replace("{project}", "spam").replace("{slug}", "spam").replace("{name}", "tara")
           .replace("{item_id}", str(w["item"])).replace("{annotation_id}", str(w["annotation"]))
           .replace("{token_id}", str(w["spare_ids"].get(caller, 999999)))
           .replace("{invite_id}", str(w["invite"])).replace("{token}", "not-a-real-token")
           .replace("{path:path}", "x.png").replace("{delivery_id}", str(w["delivery"]))
           .replace("{check_id}", str(w["check"])).replace("{question_id}", "1").replace("{rule_id}", "999")
           .replace("{webhook_id}", str(w["spare_webhook" if method == "DELETE" else "webhook"])))
    bodies = {
        "/api/v1/users": {"name": f"new{n}", "role": "annotator"},
        "/api/v1/projects": {**SPAM_SCHEMA, "slug": f"made-{n}"},
        "/api/v1/projects/{project}/items": {"items": [{"id": f"n{n}", "text": "new"}]},
        "/api/v1/projects/{project}/members/{name}": {"role": "annotator"},
        "/api/v1/projects/{project}/items/{item_id}/gold": {"answers": {"spam": "ham"}},
        "/api/v1/items/{item_id}/annotations": {"answers": {"spam": "ham"}},
        "/api/v1/annotations/{annotation_id}": {"answers": {"spam": "ham"}},
        "/api/v1/me/password": {"current": _password(caller), "new": _password(caller), "keep_tokens": True},
        "/api/v1/invites": {"project": "spam", "role": "annotator"},
        "/api/v1/users/{name}": {},
        "/api/v1/projects/{project}/qualification/{item_id}": {"answers": {"spam": "ham"}},
        "/api/v1/projects/{project}/review/{annotation_id}": {"decision": "accepted"},
        "/api/v1/projects/{project}/messages": {"body": "hello"},
        "/api/v1/projects/{project}/settings": {"instructions": "Be careful."},
        "/api/v1/projects/{project}/items/more-answers": {"items": ["c1"], "answers": 1},
        "/api/v1/webhooks": {"url": f"https://example.org/hook{n}", "project": "spam"},
        "/api/v1/webhooks/{webhook_id}": {"active": True},
        "/api/v1/projects/{project}/machine-annotators": {"name": f"bot{n}", "base_url": "http://127.0.0.1:9/v1",
                                                          "model": "fake"},
        "/api/v1/projects/{project}/machine-annotators/{name}/enabled": {"enabled": True},
        "/api/v1/checks/{check_id}": {"label": "spam"},
        "/api/v1/projects/{project}/rules": {"name": f"rule{n}", "kind": "keyword", "field": "text", "label": "spam",
                                             "pattern": "comment 1"},
        "/api/v1/projects/{project}/rules/label-model": {"enabled": False},
        "/api/v1/me/questions/{annotation_id}": {"body": "why?"},
        "/api/v1/projects/{project}/questions/{question_id}": {"body": "because"},
    }
    kwargs = {}
    if path.startswith("/api/"):
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = bodies.get(path, {})
        if caller != "anonymous":
            kwargs["headers"] = bearer(w["tokens"][caller])
    elif method == "POST":
        kwargs["data"] = {"csrf": http.csrf} if getattr(http, "csrf", None) else {}
        if path == "/login":
            kwargs["data"] = {"name": "nobody", "password": "wrong-password"}
    return http.request(method, url, follow_redirects=False, **kwargs)


def _password(caller: str) -> str:
    return "owner-password" if caller == "olive" else f"{caller}-password"


def _sign_in(http, caller: str) -> None:
    """A browser session with its CSRF token, for the pages."""
    http.cookies.clear()
    http.csrf = None
    if caller == "anonymous":
        return
    r = post_login(http, caller, _password(caller), follow_redirects=False)
    assert r.status_code == 303, (caller, r.text)
    http.csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def test_every_route_against_every_role(http, store, world):
    routes = _routes(http.app)
    missing = sorted(set(routes) - set(EXPECTED))
    assert not missing, f"routes with no entry in EXPECTED (say who may use them): {missing}"
    stale = sorted(set(EXPECTED) - set(routes))
    assert not stale, f"EXPECTED names routes that no longer exist: {stale}"
    failures = []
    n = 0
    for caller, org_role, project_role, blocked in CALLERS:
        _sign_in(http, caller)
        for method, path in routes:
            if (method, path) == ("POST", "/logout"):
                continue  # would end the session the rest of the walk uses; checked below
            n += 1
            r = _request(http, method, path, world, caller, n)
            need = EXPECTED[method, path]
            if r.status_code >= 500:
                failures.append(f"{caller:9} {method:6} {path}: {r.status_code}")
            if need == "public":
                continue  # no sign-in needed: these check their link (401 for a bad one) instead
            allowed = _allowed(need, caller, org_role, project_role, blocked)
            # pages send the signed-out to the sign-in form (303), the API answers 401
            to_login = r.status_code == 303 and "/login" in r.headers.get("location", "")
            refused = r.status_code in (401, 403) or to_login
            refused = refused or ((method, path) in BY_ID and r.status_code == 404)
            if allowed == refused:
                failures.append(f"{caller:9} {method:6} {path}: {r.status_code} (needs {need})")
            if (method, path) == ("POST", "/api/v1/me/password") and r.status_code == 204:
                _sign_in(http, caller)  # a password change ends the caller's sessions
    assert not failures, "\n".join(failures)
    assert n > 300


def test_logout_needs_a_session(http):
    assert http.post("/logout", follow_redirects=False).headers["location"].startswith("/login")


# ---- the rules, one at a time ---------------------------------------------------------------------


def test_annotators_see_only_their_projects(http, store, owner, make_annotator):
    a = create_project(store, {**SPAM_SCHEMA, "slug": "a"})
    create_project(store, {**SPAM_SCHEMA, "slug": "b"})
    _, tok = make_annotator("ann", member=False)
    assert http.get("/api/v1/projects", headers=bearer(tok)).json() == []
    access.set_member(store, a, "ann", "annotator")
    assert [p["slug"] for p in http.get("/api/v1/projects", headers=bearer(tok)).json()] == ["a"]
    r = http.post("/api/v1/projects/b/next", headers=bearer(tok))
    assert r.status_code == 403 and "not a member of project 'b'" in r.json()["error"]
    assert [p["slug"] for p in http.get("/api/v1/projects", headers=bearer(owner[1])).json()] == ["a", "b"]


def test_blocking_releases_leases_and_hides_the_project(http, store, owner, make_annotator):
    p = create_project(store, SPAM_SCHEMA)
    add_items(store, p, [{"id": "x", "text": "t"}])
    _, tok = make_annotator("ann")
    item = http.post("/api/v1/projects/spam/next", headers=bearer(tok)).json()
    r = http.post("/api/v1/projects/spam/members/ann/block", json={"reason": "copying answers"},
                  headers=bearer(owner[1]))
    assert r.json() == {"user": "ann", "status": "blocked", "leases_released": 1}
    assert http.get("/api/v1/projects", headers=bearer(tok)).json() == []
    assert http.post("/api/v1/projects/spam/next", headers=bearer(tok)).status_code == 403
    sub = http.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": {"spam": "ham"}}, headers=bearer(tok))
    assert sub.status_code == 404 and "spam" not in sub.text  # the project is not named
    members = {m["user"]: m for m in http.get("/api/v1/projects/spam/members", headers=bearer(owner[1])).json()}
    assert members["ann"]["status"] == "blocked"
    assert http.post("/api/v1/projects/spam/members/ann/unblock", headers=bearer(owner[1])).json()["was_blocked"]
    assert http.post("/api/v1/projects/spam/next", headers=bearer(tok)).status_code == 200
    log = http.get("/api/v1/audit", headers=bearer(owner[1])).json()
    assert [e["action"] for e in log[:2]] == ["member.unblock", "member.block"]
    assert log[1]["details"] == {"reason": "copying answers", "leases_released": 1} and log[1]["actor"] == "olive"


def test_a_manager_runs_their_project_and_no_other(http, store, owner, make_annotator):
    _, mtok = make_annotator("maya", role="manager", member=False)
    r = http.post("/api/v1/projects", json={**SPAM_SCHEMA, "slug": "mine"}, headers=bearer(mtok))
    assert r.status_code == 201
    create_project(store, {**SPAM_SCHEMA, "slug": "theirs"})
    assert http.get("/api/v1/projects/mine/status", headers=bearer(mtok)).status_code == 200
    assert http.get("/api/v1/projects/theirs/status", headers=bearer(mtok)).status_code == 403
    make_annotator("ann", member=False)
    assert http.put("/api/v1/projects/mine/members/ann", json={"role": "annotator"},
                    headers=bearer(mtok)).status_code == 200
    r = http.put("/api/v1/projects/mine/members/ann", json={"role": "manager"}, headers=bearer(mtok))
    assert r.status_code == 422 and "cannot be a manager" in r.json()["error"]
    # managers invite reviewers and annotators to their projects, not managers, and not elsewhere
    ok = http.post("/api/v1/invites", json={"project": "mine", "role": "reviewer", "project_role": "reviewer"},
                   headers=bearer(mtok))
    assert ok.status_code == 201 and "/invite/" in ok.json()["url"]
    assert http.post("/api/v1/invites", json={"project": "mine", "role": "manager"},
                     headers=bearer(mtok)).status_code == 403
    assert http.post("/api/v1/invites", json={"project": "theirs"}, headers=bearer(mtok)).status_code == 403
    assert http.get("/api/v1/audit?project=mine", headers=bearer(mtok)).status_code == 200
    assert http.get("/api/v1/audit?project=theirs", headers=bearer(mtok)).status_code == 403


def test_invite_link_creates_an_account_and_expires(http, store, owner):
    p = create_project(store, SPAM_SCHEMA)
    add_items(store, p, [{"id": "x", "text": "t"}])
    r = http.post("/api/v1/invites", json={"project": "spam", "role": "annotator", "max_uses": 1},
                  headers=bearer(owner[1]))
    url = r.json()["url"]
    path = url[url.index("/invite/"):]
    page = http.get(path)
    assert page.status_code == 200 and "spam" in page.text
    bad = http.post(path, data={"name": "newbie", "password": "long-enough-1", "confirm": "different-1"})
    assert bad.status_code == 422 and "differ" in bad.text
    ok = http.post(path, data={"name": "newbie", "password": "long-enough-1", "confirm": "long-enough-1"},
                   follow_redirects=False)
    assert ok.status_code == 303
    assert "Spam test" in http.get("/").text  # signed in, and a member of the project
    assert http.get("/projects/spam/label").status_code == 200
    http.cookies.clear()
    again = http.post(path, data={"name": "second", "password": "long-enough-1", "confirm": "long-enough-1"})
    assert again.status_code == 401 and "used up" in again.text  # one use only
    secret, expired = invites.create_invite(store, owner[0], hours=0.0001)
    time.sleep(0.5)
    assert http.get(f"/invite/{secret}").status_code == 401
    secret, inv = invites.create_invite(store, owner[0])
    assert http.delete(f"/api/v1/invites/{inv['id']}", headers=bearer(owner[1])).status_code == 204
    assert http.get(f"/invite/{secret}").status_code == 401
    listed = {i["id"]: i for i in http.get("/api/v1/invites", headers=bearer(owner[1])).json()}
    assert listed[inv["id"]]["usable"] is False and listed[r.json()["id"]]["uses"] == 1


def test_tokens_are_listed_and_revoked(http, store, owner, make_annotator):
    _, tok = make_annotator("ann")
    new = http.post("/api/v1/tokens", json={"label": "laptop"}, headers=bearer(tok)).json()
    listed = http.get("/api/v1/tokens", headers=bearer(tok)).json()
    assert [t["label"] for t in listed] == [None, "laptop"] and "token" not in listed[1]
    assert http.get("/api/v1/me", headers=bearer(new["token"])).status_code == 200
    assert http.delete(f"/api/v1/tokens/{new['id']}", headers=bearer(tok)).status_code == 204
    assert http.get("/api/v1/me", headers=bearer(new["token"])).status_code == 401  # from the next request
    # someone else's token is not found; an owner may revoke anyone's
    _, other = make_annotator("bob")
    bob_id = http.get("/api/v1/tokens", headers=bearer(other)).json()[0]["id"]
    assert http.delete(f"/api/v1/tokens/{bob_id}", headers=bearer(tok)).status_code == 404
    assert http.get("/api/v1/users/bob/tokens", headers=bearer(owner[1])).json()[0]["active"]
    assert http.delete(f"/api/v1/tokens/{bob_id}", headers=bearer(owner[1])).status_code == 204
    assert http.get("/api/v1/me", headers=bearer(other)).status_code == 401


def test_password_change_and_reset_link(http, store, owner, make_annotator, db_url):
    user, tok = make_annotator("ann", "first-password")
    r = http.post("/api/v1/me/password", json={"current": "wrong", "new": "second-password"}, headers=bearer(tok))
    assert r.status_code == 401
    r = http.post("/api/v1/me/password", json={"current": "first-password", "new": "short"}, headers=bearer(tok))
    assert r.status_code == 422 and r.json()["field"] == "password"
    other = users_svc.start_session(store, user, 1)[0]  # a session elsewhere, ended by the change
    assert http.post("/api/v1/me/password", json={"current": "first-password", "new": "second-password"},
                     headers=bearer(tok)).status_code == 204
    assert users_svc.session_for_cookie(store, other) is None
    users_svc.check_password(store, "ann", "second-password")
    res = CliRunner().invoke(main, ["--db", db_url, "users", "reset-link", "ann"])
    assert res.exit_code == 0, res.output
    link = res.output.strip()
    path = link[link.index("/reset/"):]
    assert http.get(path).status_code == 200
    assert http.post(path, data={"password": "third-password", "confirm": "third-password"},
                     follow_redirects=False).status_code == 303
    users_svc.check_password(store, "ann", "third-password")
    assert http.get(path).status_code == 401  # one use


def test_roles_and_disabling(http, store, owner, make_annotator):
    _, tok = make_annotator("ann")
    r = http.patch("/api/v1/users/ann", json={"role": "manager"}, headers=bearer(owner[1]))
    assert r.json()["role"] == "manager"
    assert http.post("/api/v1/projects", json={**SPAM_SCHEMA, "slug": "by-ann"}, headers=bearer(tok)).status_code == 201
    http.patch("/api/v1/users/ann", json={"role": "annotator"}, headers=bearer(owner[1]))
    # their manager role in by-ann was lowered with the organisation role
    assert http.get("/api/v1/projects/by-ann/status", headers=bearer(tok)).status_code == 403
    assert http.patch("/api/v1/users/ann", json={"disabled": True}, headers=bearer(owner[1])).status_code == 200
    assert http.get("/api/v1/me", headers=bearer(tok)).status_code == 401
    r = http.patch("/api/v1/users/olive", json={"role": "annotator"}, headers=bearer(owner[1]))
    assert r.status_code == 409 and "only owner" in r.json()["error"]
    actions = [e["action"] for e in audit.entries(store)]
    assert actions.count("user.update") == 3
