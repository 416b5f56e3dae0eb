"""The access policy (labelwright.services.policy) and the one CSRF check (labelwright.services.access).

* Every route of the app that needs a role calls a policy action of exactly the level its entry in
  tests/api/test_access.py's matrix names (read from the handlers' code, so a new route cannot skip it); the
  matrix itself checks what each role gets back.
* Each action against each kind of caller, called directly.
* The CSRF check on a page form and on an API call: missing, wrong, non-ASCII, a file instead of a field,
  and another session's token are all refused with 403, never a 500; the right token passes.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from labelwright.errors import Forbidden, NotFound
from labelwright.services import access, messages, policy, projects, webhooks
from labelwright.services import users as users_svc
from labelwright.services.projects import create_project
from tests.api.test_access import BY_ID, EXPECTED
from tests.conftest import SPAM_SCHEMA, bearer, post_login

# Routes that need no role: "public" ones check a link or nothing, "anyone" and "author" ones act only on
# the caller's own things (the queries find no one else's). Routes in BY_ID reach a thing by its own id,
# and the service that finds its project checks the membership (access.require: a refusal is a 404).
NO_ROLE = {"public", "anyone", "author"}


def _endpoints(app) -> dict[tuple[str, str], object]:
    found = {}

    def walk(routes, prefix=""):
        for r in routes:
            if hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
            elif isinstance(r, APIRoute):
                path = r.path if r.path.startswith(prefix) else prefix + r.path
                for m in r.methods - {"HEAD"}:
                    found[m, path] = r.endpoint
    walk(app.routes)
    return found


def _actions_used(fn, depth: int = 0) -> set[str]:
    """The policy actions ``fn`` names (``policy.<action>``), and those of the labelwright functions it
    names (calls, or hands to ``run_in_threadpool``), two levels deep (a handler calling a shared helper
    such as ``claim``)."""
    actions = policy.actions()
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    names = {**fn.__globals__, **inspect.getclosurevars(fn).nonlocals}  # a route made in a loop names its page
    used = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr in actions
                and fn.__globals__.get(node.value.id) is policy):
            used.add(node.attr)
        elif depth < 2 and isinstance(node, ast.Name):  # called, or handed on (run_in_threadpool(page, ...))
            target = names.get(node.id)
            if inspect.isfunction(target) and target.__module__.startswith("labelwright.") and target is not fn:
                used |= _actions_used(target, depth + 1)
    return used


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_route_that_needs_a_role_calls_a_policy_action_of_that_level(app):
    actions = policy.actions()
    endpoints = _endpoints(app)
    assert set(endpoints) == set(EXPECTED), "tests/api/test_access.py's matrix must list every route"
    problems = []
    for route, endpoint in sorted(endpoints.items()):
        need = EXPECTED[route]
        used = _actions_used(endpoint)
        if need in NO_ROLE or route in BY_ID:
            continue
        if not used:
            problems.append(f"{route}: calls no policy action (needs {need})")
        elif need not in {actions[a] for a in used}:
            problems.append(f"{route}: calls {sorted(used)}, none of which needs {need!r}")
    assert not problems, "\n".join(problems)


def test_actions_are_marked_with_a_known_level():
    actions = policy.actions()
    assert {"annotate", "review", "view_quality", "manage_project", "see_gold", "export", "manage_users",
            "create_project", "invite", "read_audit", "manage_webhook"} <= set(actions)
    assert set(actions.values()) <= {"member", "reviewer", "manager", "org-manager", "owner"}


# ---- each action against each caller ---------------------------------------------------------------


@pytest.fixture
def people(store, owner, make_annotator):
    """Project "spam"; a member of each role, a blocked annotator, a non-member, an org manager of nothing."""
    create_project(store, SPAM_SCHEMA, created_by=owner[0].id)
    made = {"olive": owner[0]}
    for name, org, project_role, blocked in [("otto", "annotator", None, False),
                                             ("bea", "annotator", "annotator", True),
                                             ("ann", "annotator", "annotator", False),
                                             ("rex", "reviewer", "reviewer", False),
                                             ("mo", "manager", None, False), ("maya", "manager", "manager", False)]:
        made[name] = make_annotator(name, role=org, member=False)[0]
        p = policy.view_project(store, owner[0], "spam").project
        if project_role:
            access.set_member(store, p, name, project_role)
        if blocked:
            access.block(store, p, name)
    return made


PROJECT_ACTIONS = {"view_project": "annotator", "annotate": "annotator", "review": "reviewer",
                   "view_quality": "reviewer", "manage_project": "manager", "see_gold": "manager", "export": "manager"}
ROLE_IN_SPAM = {"olive": "owner", "otto": None, "bea": None, "ann": "annotator", "rex": "reviewer", "mo": None,
                "maya": "manager"}


@pytest.mark.parametrize("action", sorted(PROJECT_ACTIONS))
def test_project_actions_by_role(store, people, action):
    fn = getattr(policy, action)
    for name, user in people.items():
        role = ROLE_IN_SPAM[name]
        allowed = role is not None and access.RANK[role] >= access.RANK[PROJECT_ACTIONS[action]]
        if allowed:
            grant = fn(store, user, "spam")
            assert grant.project.slug == "spam" and grant.role == role, name
            assert fn(store, user, str(grant.project.id)).project.id == grant.project.id  # by id too
        else:
            with pytest.raises(Forbidden) as e:
                fn(store, user, "spam")
            assert "'spam'" in e.value.message, name  # named as the caller named it
            with pytest.raises(Forbidden) as e:
                fn(store, user, "1")
            assert "spam" not in e.value.message, name  # an id stays an id: trying ids teaches no names
        # a project that does not exist (or an id no database holds) is not found, for everyone
        for ref in ("nope", "999999", str(2**63), "-1"):
            with pytest.raises(NotFound):
                fn(store, user, ref)


def test_org_actions_by_role(store, people):
    expected = {"create_project": {"olive", "mo", "maya"}, "invite": {"olive", "mo", "maya"},
                "manage_users": {"olive"}, "read_audit": {"olive"}, "manage_global_webhooks": {"olive"}}
    for action, allowed in expected.items():
        for name, user in people.items():
            if name in allowed:
                assert getattr(policy, action)(user) is user
            else:
                with pytest.raises(Forbidden):
                    getattr(policy, action)(user)


def test_what_a_grant_shows(store, people):
    """Grant.allows and allows(): what an answer shows (gold settings, a model's error text) follows the
    same levels as the actions."""
    for name, user in people.items():
        role = ROLE_IN_SPAM[name]
        if role is None:
            assert not policy.allows(policy.view_project, store, user, "spam")
            continue
        grant = policy.view_project(store, user, "spam")
        manager = role in ("manager", "owner")
        assert grant.allows(policy.see_gold) is manager and grant.allows(policy.annotate), name
        assert grant.allows(policy.review) is (role != "annotator"), name
        assert policy.allows(policy.see_gold, store, user, "spam") is manager, name
    assert [n for n, u in people.items() if policy.allows(policy.see_model_errors, u)] == ["olive"]
    with pytest.raises(NotFound):  # allows() answers for refusals only: a missing project is still an error
        policy.allows(policy.annotate, store, people["ann"], "nope")


def test_only_managers_see_the_gold_settings_of_a_project(http, store, people):
    """The project's description leaves out how gold items are mixed in for those below manager, in the
    list and in the project itself (an annotator who knew the rate could guess which items are gold)."""
    projects.update_settings(store, policy.view_project(store, people["olive"], "spam").project,
                             {"gold": {"rate": 0.2}}, by=people["olive"])
    for name in ("ann", "rex", "maya", "olive"):
        h = bearer(users_svc.create_api_token(store, people[name]))
        one = http.get("/api/v1/projects/spam", headers=h).json()
        listed = [p for p in http.get("/api/v1/projects", headers=h).json() if p["slug"] == "spam"]
        shown = name in ("maya", "olive")
        assert ("gold" in one["schema"]) is shown and ("gold" in listed[0]["schema"]) is shown, name


def test_webhook_actions(store, people):
    p = policy.view_project(store, people["olive"], "spam").project
    _, mine = webhooks.create_webhook(store, "http://127.0.0.1:9/h", p, allow_private=True)
    _, everywhere = webhooks.create_webhook(store, "http://127.0.0.1:9/all", None, allow_private=True)
    assert policy.manage_webhooks(store, people["olive"]) is None  # all of them
    assert policy.manage_webhooks(store, people["maya"]) == {p.id}
    assert policy.manage_webhook(store, people["maya"], mine["id"])["id"] == mine["id"]
    for name in ("otto", "bea", "ann", "rex", "mo"):
        with pytest.raises(Forbidden):
            policy.manage_webhooks(store, people[name])
        with pytest.raises(Forbidden):
            policy.manage_webhook(store, people[name], mine["id"])
    with pytest.raises(Forbidden) as e:  # a project's manager learns nothing of a webhook for every project
        policy.manage_webhook(store, people["maya"], everywhere["id"])
    assert "every project" not in e.value.message
    with pytest.raises(NotFound):
        policy.manage_webhook(store, people["olive"], 999999)


# ---- one CSRF check ----------------------------------------------------------------------------------


def test_csrf_matches_takes_anything_and_compares_bytes():
    token = "A" * 43
    assert access.csrf_matches(token, token)
    for sent in (None, "", "B" * 43, token + "x", token[:-1], "é" * 43, "\udcff" * 43, 43, b"A" * 43, ["A" * 43]):
        assert not access.csrf_matches(token, sent), sent
    assert not access.csrf_matches(None, token) and not access.csrf_matches("", "")


def _signed_in(http, make_annotator, name: str) -> str:
    """Sign ``name`` in through the form; their session's CSRF token (as the account page shows it)."""
    make_annotator(name, password=f"{name}-password", role="manager")
    assert post_login(http, name, f"{name}-password", follow_redirects=False).status_code == 303
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def test_csrf_on_a_page_form_and_an_api_call(http, app, store, owner, make_annotator):
    create_project(store, {**SPAM_SCHEMA, "slug": "spam"}, created_by=owner[0].id)
    # another session's token: a second browser, signed in as someone else
    theirs = _signed_in(TestClient(app, base_url="http://127.0.0.1:8000"), make_annotator, "mallory")
    mine = _signed_in(http, make_annotator, "maya")
    access.set_member(store, policy.view_project(store, owner[0], "spam").project, "maya", "manager")
    assert theirs != mine

    page = "/projects/spam/messages"  # a manager's form: sends a message to the project's members
    api = "/api/v1/projects/spam/messages"
    bad = {"missing": None, "wrong": "x" * len(mine), "prefix": mine[:-1], "longer": mine + "A", "non-ascii": "é" * 43,
           "another session's": theirs}
    for what, token in bad.items():
        data = {"body": "hello"} | ({} if token is None else {"csrf": token})
        r = http.post(page, data=data, follow_redirects=False)
        assert r.status_code == 403 and "security token" in r.text, (what, r.status_code)
        headers = {} if token is None else {"X-CSRF-Token": token.encode()}
        r = http.post(api, json={"body": "hello"}, headers=headers)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"], (what, r.status_code, r.text)
    # raw bytes that are no UTF-8 in the header, and a file upload where the form field should be
    r = http.post(api, json={"body": "hello"}, headers={"X-CSRF-Token": b"\xff\xfe" * 20})
    assert r.status_code == 403
    r = http.post(page, data={"body": "hello"}, files={"csrf": ("csrf.txt", mine.encode())}, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text
    # reading needs no token; the right token passes on both
    assert http.get("/api/v1/projects/spam").status_code == 200
    assert http.post(page, data={"body": "hello", "csrf": mine}, follow_redirects=False).status_code in (200, 303)
    r = http.post(api, json={"body": "hello again"}, headers={"X-CSRF-Token": mine})
    assert r.status_code == 201, r.text
    # only the two with the right token were sent
    assert [m["body"] for m in messages.sent(store, policy.view_project(store, owner[0], "spam").project)] == [
        "hello again", "hello"]


def test_a_project_and_its_makers_membership_land_together(http, store, people, monkeypatch):
    """A manager's new project and their manager membership are one transaction: when the membership
    cannot be written, no project is left that nobody but the owners could manage (before, the API and
    the page wrote them in two)."""
    mo = people["mo"]
    token = users_svc.create_api_token(store, mo)
    schema = {**SPAM_SCHEMA, "slug": "made-by-mo", "name": "Made by mo"}
    r = http.post("/api/v1/projects", json=schema, headers=bearer(token))
    assert r.status_code == 201, r.text
    assert access.role_in(store, mo, projects.get_project(store, "made-by-mo")) == "manager"

    def broken(*args, **kwargs):
        raise RuntimeError("the membership write failed")

    monkeypatch.setattr(access, "_set_member", broken)
    with pytest.raises(RuntimeError, match="membership write failed"):
        access.create_project_for(store, {**schema, "slug": "half-made"}, mo)
    with pytest.raises(NotFound):
        projects.get_project(store, "half-made")
    # an owner's project needs no membership: the failing write is never reached
    made = access.create_project_for(store, {**schema, "slug": "owners"}, people["olive"])
    assert made.slug == "owners"
