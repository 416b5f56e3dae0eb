"""Running a project from the browser: creating one (with the preview), its settings, members and invites,
messages and webhooks, through the in-process client on SQLite and PostgreSQL; and the attacks on them:
other roles, another project's manager, missing and forged CSRF tokens, hostile text."""

from __future__ import annotations

import html
import re
import time
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from labelwright.app import create_app
from labelwright.errors import NotFound
from labelwright.services import access, audit, invites, messages, queue, users
from labelwright.services import webhooks as webhooks_svc
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from labelwright.services.webhook_worker import WebhookWorker
from labelwright.settings import Settings
from labelwright.web.project_setup import EXAMPLE, line_of
from tests.conftest import SPAM_SCHEMA, bearer, post_login, seed_answer
from tests.services.test_webhooks import Receiver

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def settings(db_url):
    # No background webhook worker: the tests send deliveries themselves (run_once), to 127.0.0.1 only.
    return Settings(db_url=db_url, assist_worker=False, machine_worker=False, webhook_worker=False)


@pytest.fixture
def world(store, owner):
    """Projects "spam" (10 items) and "other"; maya manages spam, max manages other; ana annotates and rex
    reviews in spam; otto is an annotator outside both."""
    spam = create_project(store, SPAM_SCHEMA, created_by=owner[0].id)
    add_items(store, spam, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(10)])
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other", "name": "Other"}, created_by=owner[0].id)
    for name, role in (("maya", "manager"), ("max", "manager"), ("ana", "annotator"), ("rex", "reviewer"),
                       ("otto", "annotator")):
        users.create_user(store, name, role, f"{name}-password")
    access.set_member(store, spam, "maya", "manager")
    access.set_member(store, other, "max", "manager")
    access.set_member(store, spam, "ana", "annotator")
    access.set_member(store, spam, "rex", "reviewer")
    users.set_password(store, owner[0], "owner-password")
    return {"spam": spam, "other": other}


def sign_in(http, name: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    http.cookies.clear()
    r = post_login(http, name, "owner-password" if name == "olive" else f"{name}-password", follow_redirects=False)
    assert r.status_code == 303, r.text
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def errors(page: str) -> list[str]:
    found = re.findall(r'class="error"[^>]*>(.*?)</p>', page, re.DOTALL)
    return [html.unescape(re.sub(r"<[^>]+>", "", e)) for e in found]


def actions(store, project_id=None) -> list[str]:
    return [e["action"] for e in audit.entries(store, project_id)]


# ---- creating a project ---------------------------------------------------------------------------


def test_the_new_project_page_shows_the_example_and_its_preview(http, store, world):
    sign_in(http, "olive")
    page = http.get("/projects/new")
    assert page.status_code == 200
    assert "Is this comment spam?" in page.text and 'id="q-spam"' in page.text  # the labelling page's partial
    assert html.escape("name: Comment spam") in page.text or "name: Comment spam" in page.text
    assert re.search(r'src="/static/[0-9a-f]{12}/preview\.js"', page.text)
    assert "<script>" not in page.text  # no inline script (CSP)
    assert "Content-Security-Policy" in page.headers


def test_a_manager_creates_a_project_and_becomes_its_manager(http, store, world):
    csrf = sign_in(http, "maya")
    schema = EXAMPLE.replace("slug: comment-spam", "slug: made-here")
    r = http.post("/projects/new", data={"csrf": csrf, "schema": schema, "action": "create"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/made-here"
    p = get_project(store, "made-here")
    assert [q.name for q in p.schema.questions] == ["spam", "tone"] and p.overlap == 2
    assert access.role_in(store, users.get_user(store, "maya"), p) == "manager"
    entry = next(e for e in audit.entries(store, p.id) if e["action"] == "project.create")
    assert entry["actor"] == "maya" and entry["target"] == "made-here"
    assert http.get("/projects/made-here").status_code == 200
    # the same slug again: refused with the reason, nothing created
    r = http.post("/projects/new", data={"csrf": csrf, "schema": schema, "action": "create"})
    assert r.status_code == 409 or r.status_code == 422
    assert any("already exists" in e for e in errors(r.text))


def test_the_preview_button_renders_without_creating(http, store, world):
    csrf = sign_in(http, "olive")
    schema = EXAMPLE.replace("slug: comment-spam", "slug: only-preview").replace("How friendly is it?", "Tone now?")
    r = http.post("/projects/new", data={"csrf": csrf, "schema": schema, "action": "preview"})
    assert r.status_code == 200 and "Tone now?" in r.text
    with pytest.raises(NotFound):
        get_project(store, "only-preview")


def test_schema_errors_name_the_line_and_the_field(http, store, world):
    csrf = sign_in(http, "olive")
    bad_option = EXAMPLE.replace("      - {value: ham, hint: a real comment}\n", "")
    r = http.post("/projects/new/preview", data={"csrf": csrf, "schema": bad_option})
    assert r.status_code == 200  # the fragment: the error is its content
    (message,) = errors(r.text)
    assert message.startswith("Line 13, field questions[0] (spam).options:"), message
    r = http.post("/projects/new", data={"csrf": csrf, "schema": "name: x\nfields: [\n", "action": "create"})
    assert r.status_code == 422 and errors(r.text)[0].startswith("Line 3")  # YAML syntax: the parser's line
    r = http.post("/projects/new", data={"csrf": csrf, "schema": "", "action": "create"})
    assert r.status_code == 422
    r = http.post("/projects/new", data={"csrf": csrf, "schema": EXAMPLE.replace("comment-spam", "new")})
    assert r.status_code == 422 and "reserved" in errors(r.text)[0]  # /projects/new is this page
    assert line_of('{"name": "x",\n "questions": [\n  {"name": "q"}]}', "questions[0] (q).options") == 3  # JSON too


def test_the_preview_uses_a_pasted_sample_item_and_escapes_everything(http, store, world):
    csrf = sign_in(http, "olive")
    hostile = (f"name: '{XSS}'\ninstructions: '{XSS}'\nfields:\n  - {{name: text, type: markdown}}\nquestions:\n"
               f"  - name: q\n    type: single_choice\n    prompt: '{XSS}'\n    options: [a, b]\n")
    r = http.post("/projects/new/preview", data={"csrf": csrf, "schema": hostile,
                                                 "sample": '{"text": "<b>bold</b> **strong**"}'})
    assert r.status_code == 200
    assert "<script" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;" in r.text and "<strong>strong</strong>" in r.text  # the sample item, as Markdown
    assert "<b>bold</b>" not in r.text
    r = http.post("/projects/new/preview", data={"csrf": csrf, "schema": EXAMPLE, "sample": '{"nope": 1'})
    assert "not JSON" in errors(r.text)[0] and "A sample comment" in r.text  # placeholders instead


@pytest.mark.parametrize("name", ["ana", "rex", "otto"])
def test_only_owners_and_managers_create_projects(http, store, world, name):
    csrf = sign_in(http, name)
    assert http.get("/projects/new").status_code == 403
    r = http.post("/projects/new", data={"csrf": csrf, "schema": EXAMPLE, "action": "create"})
    assert r.status_code == 403
    assert http.post("/projects/new/preview", data={"csrf": csrf, "schema": EXAMPLE}).status_code == 403
    with pytest.raises(NotFound):
        get_project(store, "comment-spam")


def test_creating_needs_the_csrf_token(http, store, world):
    sign_in(http, "olive")
    for data in ({}, {"csrf": "forged"}, {"csrf": "é"}):
        r = http.post("/projects/new", data={**data, "schema": EXAMPLE, "action": "create"})
        assert r.status_code == 403 and "security token" in r.text
        assert http.post("/projects/new/preview", data={**data, "schema": EXAMPLE}).status_code == 403
    with pytest.raises(NotFound):
        get_project(store, "comment-spam")
    http.cookies.clear()
    r = http.get("/projects/new", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/projects/new"


# ---- settings -------------------------------------------------------------------------------------


def _save(http, csrf, group: str, **fields):
    data = {"csrf": csrf, **{k.replace("__", "."): v for k, v in fields.items()}}
    return http.post(f"/projects/spam/settings/{group}", data=data, follow_redirects=False)


def test_each_settings_group_is_saved_validated_and_audited(http, store, world):
    csrf = sign_in(http, "maya")
    page = http.get("/projects/spam/settings")
    assert page.status_code == 200 and page.text.count('class="card settings-group"') == 8
    assert "Work already done:" in page.text
    assert _save(http, csrf, "instructions", instructions="Read **twice**.", description="Spam").status_code == 303
    assert _save(http, csrf, "pay", enabled="1", pay__reward_per_item="0.10", pay__hourly_rate="12.00",
                 pay__bonus__amount="5.00", pay__bonus__gold_accuracy_above="0.9").status_code == 303
    assert _save(http, csrf, "review", enabled="1", review__mode="sample", review__rate="0.25").status_code == 303
    assert _save(http, csrf, "gold", gold__rate="0.2").status_code == 303
    assert _save(http, csrf, "qualification", enabled="1", qualification__size="3").status_code == 303
    assert _save(http, csrf, "lease", lease_seconds="120", history_size="5").status_code == 303
    assert _save(http, csrf, "expiry", expires_at="2031-01-02 03:04").status_code == 303
    s = get_project(store, "spam").schema
    assert s.instructions == "Read **twice**." and s.description == "Spam"
    assert (s.pay.reward_per_item, s.pay.hourly_rate, s.pay.bonus.amount) == ("0.10", "12.00", "5.00")
    assert (s.review.mode, s.review.rate, s.gold.rate, s.qualification.size) == ("sample", 0.25, 0.2, 3)
    assert (s.lease_seconds, s.history_size) == (120, 5) and get_project(store, "spam").lease_seconds == 120
    assert s.expires_at == datetime(2031, 1, 2, 3, 4, tzinfo=timezone.utc).timestamp()
    entries = [e for e in audit.entries(store, world["spam"].id) if e["action"] == "project.settings"]
    assert len(entries) == 7 and {e["actor"] for e in entries} == {"maya"}
    assert entries[-1]["details"]["after"] == {"description": "Spam", "instructions": "Read **twice**."}
    # unticking an optional section removes it; the page shows the current values
    assert _save(http, csrf, "review").status_code == 303
    assert get_project(store, "spam").schema.review is None
    page = http.get("/projects/spam/settings").text
    assert 'name="pay.reward_per_item" type="text" inputmode="decimal" value="0.10"' not in page  # a text field
    assert 'value="0.10"' in page and 'value="2031-01-02 03:04"' in page


def test_invalid_settings_change_nothing(http, store, world):
    csrf = sign_in(http, "maya")
    before = get_project(store, "spam")
    for group, fields, field in (("pay", {"enabled": "1", "pay__reward_per_item": "-1"}, "pay.reward_per_item"),
                                 ("pay", {"enabled": "1", "pay__currency": "dollars"}, "pay.currency"),
                                 ("gold", {"gold__rate": "1.5"}, "gold.rate"),
                                 ("lease", {"lease_seconds": "1"}, "lease_seconds"),
                                 ("redundancy", {"overlap": "12"}, "overlap"),
                                 ("redundancy", {"enabled": "1", "overlap": "3", "redundancy__max": "2"}, "redundancy"),
                                 ("redundancy", {"enabled": "1", "overlap": "2", "redundancy__budget": "3",
                                                 "redundancy__accuracy": "0.9"}, "redundancy"),
                                 ("redundancy", {"enabled": "1", "redundancy__accuracy": "1.2"},
                                  "redundancy.accuracy"),
                                 ("expiry", {"expires_at": "tomorrow"}, "expires_at"),
                                 ("instructions", {"instructions": "x" * 10}, None)):
        r = _save(http, csrf, group, **fields)
        if field is None:
            continue
        assert r.status_code == 422, (group, fields)
        assert errors(r.text), (group, fields)
        assert f'<code>{field}</code>' in r.text, (group, fields, errors(r.text))
    after = get_project(store, "spam")
    assert after.schema.pay is None and after.schema.gold.rate == before.schema.gold.rate
    assert after.overlap == 2 and after.lease_seconds == before.lease_seconds
    assert _save(http, csrf, "fields", name="x").status_code == 404  # no such group: the questions stay


def _open_items(store, project) -> int:
    with store.read() as conn:
        return conn.execute(text("SELECT count(*) FROM items WHERE project_id = :p AND is_open = 1"),
                            {"p": project.id}).scalar_one()


def test_redundancy_changes_reopen_and_close_items_at_once(http, store, world):
    csrf = sign_in(http, "olive")
    spam = world["spam"]
    ana, rex = users.get_user(store, "ana"), users.get_user(store, "rex")
    with store.read() as conn:
        first = conn.execute(text("SELECT min(id) FROM items WHERE project_id = :p"), {"p": spam.id}).scalar_one()
    seed_answer(store, first, ana, {"spam": "spam"})
    seed_answer(store, first, rex, {"spam": "spam"})
    assert _open_items(store, spam) == 9  # the answered item has its 2 answers
    assert _save(http, csrf, "redundancy", overlap="3").status_code == 303
    assert get_project(store, "spam").overlap == 3 and _open_items(store, spam) == 10
    assert _save(http, csrf, "redundancy", enabled="1", overlap="2", redundancy__max="5",
                 redundancy__confidence="0.9", redundancy__question="spam").status_code == 303
    p = get_project(store, "spam")
    assert p.overlap == 2 and (p.schema.redundancy.min, p.schema.redundancy.max) == (2, 5)
    assert _open_items(store, spam) == 9
    page = http.get("/projects/spam/quality").text
    assert "Adaptive redundancy" in page and "below <strong>0.9</strong>" in page
    # the confidence tuned on gold for an accuracy: until there is gold to tune on, the configured one
    assert _save(http, csrf, "redundancy", enabled="1", overlap="2", redundancy__max="5",
                 redundancy__confidence="0.9", redundancy__accuracy="0.92").status_code == 303
    assert get_project(store, "spam").schema.redundancy.accuracy == 0.92
    page = http.get("/projects/spam/quality").text
    assert "the configured value: not tuned yet" in page and "Needs 20 answers before skills" in page
    assert 'name="redundancy.accuracy"' in http.get("/projects/spam/settings").text
    assert _save(http, csrf, "redundancy", overlap="1").status_code == 303  # unticked: fixed overlap again
    assert get_project(store, "spam").schema.redundancy is None and get_project(store, "spam").overlap == 1


def test_expire_asks_for_confirmation_and_can_be_undone(http, store, world):
    csrf = sign_in(http, "maya")
    assert "Expire the project" in http.get("/projects/spam/expire").text
    r = http.post("/projects/spam/expire", data={"csrf": csrf})
    assert r.status_code == 422 and get_project(store, "spam").schema.expires_at is None
    r = http.post("/projects/spam/expire", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert get_project(store, "spam").schema.expires_at <= time.time()
    assert "project.expire" in actions(store, world["spam"].id)
    assert "This project has expired" in http.get("/projects/spam/settings").text
    assert queue.claim_next(store, get_project(store, "spam"), users.get_user(store, "ana")) is None
    assert _save(http, csrf, "expiry", expires_at="").status_code == 303
    assert get_project(store, "spam").schema.expires_at is None
    assert queue.claim_next(store, get_project(store, "spam"), users.get_user(store, "ana")) is not None


# ---- members and invites --------------------------------------------------------------------------


def test_members_are_added_changed_blocked_and_removed(http, store, world):
    csrf = sign_in(http, "maya")
    page = http.get("/projects/spam/members").text
    assert "ana" in page and "rex" in page

    def post(path, **data):
        return http.post(f"/projects/spam{path}", data={"csrf": csrf, **data}, follow_redirects=False)

    assert post("/members", name="otto", role="annotator").status_code == 303
    assert access.role_in(store, users.get_user(store, "otto"), world["spam"]) == "annotator"
    r = post("/members", name="otto", role="manager")  # an annotator cannot manage a project
    assert r.status_code == 422 and "cannot be a manager" in errors(r.text)[0]
    r = post("/members", name="nobody", role="annotator")
    assert r.status_code == 404 and "no user named" in errors(r.text)[0]
    assert post("/members/rex/role", role="annotator").status_code == 303
    assert access.role_in(store, users.get_user(store, "rex"), world["spam"]) == "annotator"
    assert post("/members/max/role", role="annotator").status_code == 422  # not a member here
    assert post("/members/ana/block", reason="copying answers").status_code == 303
    assert access.role_in(store, users.get_user(store, "ana"), world["spam"]) is None
    assert "blocked" in http.get("/projects/spam/members").text
    assert post("/members/ana/unblock").status_code == 303
    assert access.role_in(store, users.get_user(store, "ana"), world["spam"]) == "annotator"
    assert post("/members/otto/remove").status_code == 303
    assert access.role_in(store, users.get_user(store, "otto"), world["spam"]) is None
    log = audit.entries(store, world["spam"].id)
    assert [e["action"] for e in log[:5]] == ["member.remove", "member.unblock", "member.block", "member.set",
                                              "member.set"]
    assert log[2]["details"]["reason"] == "copying answers" and {e["actor"] for e in log[:5]} == {"maya"}


def test_invite_links_are_shown_once_listed_and_revoked(http, store, world):
    csrf = sign_in(http, "maya")
    r = http.post("/projects/spam/invites", data={"csrf": csrf, "role": "reviewer", "hours": "24", "max_uses": "3"})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    url = re.search(r'value="(http[^"]+/invite/([\w-]+))"', r.text)
    secret = url.group(2)
    page = http.get("/projects/spam/members").text
    assert secret not in page and "usable" in page  # listed, but the link itself never again
    (invite,) = invites.list_invites(store, project=world["spam"])
    assert (invite["project_role"], invite["max_uses"], invite["created_by"]) == ("reviewer", 3, "maya")
    r = http.post("/projects/spam/invites", data={"csrf": csrf, "role": "manager"})  # only owners invite managers
    assert r.status_code == 403 and len(invites.list_invites(store, project=world["spam"])) == 1
    r = http.post("/projects/spam/invites", data={"csrf": csrf, "role": "annotator", "max_uses": "lots"})
    assert r.status_code == 422
    # an invite to another project cannot be revoked through this one
    _, elsewhere = invites.create_invite(store, users.get_user(store, "max"), project=world["other"])
    r = http.post(f"/projects/spam/invites/{elsewhere['id']}/revoke", data={"csrf": csrf})
    assert r.status_code == 404 and invites.list_invites(store, project=world["other"])[0]["usable"]
    r = http.post(f"/projects/spam/invites/{invite['id']}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and not invites.list_invites(store, project=world["spam"])[0]["usable"]
    assert {"invite.create", "invite.revoke"} <= set(actions(store, world["spam"].id))
    http.cookies.clear()
    assert http.get(f"/invite/{secret}").status_code == 401  # revoked


# ---- messages ---------------------------------------------------------------------------------------


def test_messages_to_everyone_and_to_one_member(http, store, world):
    csrf = sign_in(http, "maya")
    r = http.post("/projects/spam/messages", data={"csrf": csrf, "body": XSS}, follow_redirects=False)
    assert r.status_code == 303
    assert http.post("/projects/spam/messages", data={"csrf": csrf, "body": "Hi Ana", "to": "ana"},
                     follow_redirects=False).status_code == 303
    page = http.get("/projects/spam/messages").text
    assert "<script>window" not in page and html.escape(XSS, quote=False)[:30] in page
    assert "to ana" in page and "to every member" in page
    assert [m["body"] for m in messages.for_user(store, users.get_user(store, "ana"))] == ["Hi Ana", XSS]
    assert [m["body"] for m in messages.for_user(store, users.get_user(store, "rex"))] == [XSS]
    r = http.post("/projects/spam/messages", data={"csrf": csrf, "body": "  "})
    assert r.status_code == 422 and "needs some text" in errors(r.text)[0]


def test_a_message_reaches_only_members_of_the_project(http, store, world):
    """A manager cannot write to someone outside their project (nor learn who has an account): before the
    fix, a message "to" any user name was stored and shown to them."""
    with pytest.raises(NotFound):
        messages.send(store, world["spam"], users.get_user(store, "maya"), "hello", "otto")
    csrf = sign_in(http, "maya")
    r = http.post("/projects/spam/messages", data={"csrf": csrf, "body": "hello", "to": "otto"})
    assert r.status_code == 422 and "no member named 'otto'" in errors(r.text)[0]
    assert messages.for_user(store, users.get_user(store, "otto")) == []


# ---- webhooks ---------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def private_http(settings, store):
    """The app allowing webhooks to 127.0.0.1 (the receiver), without the background worker."""
    with TestClient(create_app(settings.with_(webhook_allow_private=True), store=store),
                    base_url="http://127.0.0.1:8000") as c:
        yield c


def test_webhook_destinations_are_checked_and_the_secret_shown_once(http, store, world):
    csrf = sign_in(http, "maya")
    for url in ("http://127.0.0.1:8000/x", "http://169.254.169.254/latest", "http://localhost/x",
                "http://10.0.0.7/", "http://[::ffff:127.0.0.1]/", "ftp://example.org/x"):
        r = http.post("/projects/spam/webhooks", data={"csrf": csrf, "url": url})
        assert r.status_code == 422, url
    assert webhooks_svc.list_webhooks(store) == []
    hostile = 'https://example.org/h?q="><script>window.__xss=1</script>'
    r = http.post("/projects/spam/webhooks", data={"csrf": csrf, "url": hostile, "kinds": ["item.completed"]})
    assert r.status_code == 201 and "<script>window" not in r.text
    secret = re.search(r'id="webhook-secret"[^>]*value="(lwhs_[\w-]+)"', r.text).group(1)
    (hook,) = webhooks_svc.list_webhooks(store)
    assert hook["kinds"] == ["item.completed"] and hook["project_id"] == world["spam"].id
    assert secret not in http.get("/projects/spam/webhooks").text
    # a manager cannot add a webhook for every project; the scope field is ignored for them
    http.post("/projects/spam/webhooks", data={"csrf": csrf, "url": "https://example.org/all", "scope": "all"})
    assert all(h["project_id"] == world["spam"].id for h in webhooks_svc.list_webhooks(store))


def test_test_delivery_failing_marker_retry_and_deactivation(private_http, store, world, receiver):
    http = private_http
    csrf = sign_in(http, "maya")
    r = http.post("/projects/spam/webhooks", data={"csrf": csrf, "url": receiver.url})
    assert r.status_code == 201
    receiver.secrets.append(re.search(r'value="(lwhs_[\w-]+)"', r.text).group(1))
    hook = webhooks_svc.list_webhooks(store)[0]["id"]
    worker = WebhookWorker(store, timeout=5, allow_private=True)
    receiver.answer = (500, b"down for maintenance", {})
    r = http.post(f"/projects/spam/webhooks/{hook}/test", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert worker.run_once() == 1
    assert receiver.requests[-1]["verified"]
    assert b'"kind":"webhook.test"' in receiver.requests[-1]["body"].replace(b" ", b"")
    page = http.get("/projects/spam/webhooks").text
    assert "failing" in page and "1 in a row" in page and "HTTP 500" in page
    (delivery,) = webhooks_svc.delivery_log(store, webhook_ids=[hook])
    # retry now: sent again at once, and this time the receiver answers
    receiver.answer = None
    r = http.post(f"/projects/spam/webhooks/{hook}/deliveries/{delivery['id']}/retry", data={"csrf": csrf},
                  follow_redirects=False)
    assert r.status_code == 303
    assert worker.run_once() == 1
    assert webhooks_svc.get_webhook(store, hook)["failing"] is False
    assert webhooks_svc.delivery_log(store, webhook_ids=[hook])[0]["status"] == "delivered"
    page = http.get("/projects/spam/webhooks").text
    assert "1 in a row" not in page and "delivered" in page
    # deactivate: a test is refused (409) until it is reactivated
    r = http.post(f"/projects/spam/webhooks/{hook}/active", data={"csrf": csrf, "active": "0"}, follow_redirects=False)
    assert r.status_code == 303 and not webhooks_svc.get_webhook(store, hook)["active"]
    assert http.post(f"/projects/spam/webhooks/{hook}/test", data={"csrf": csrf}).status_code == 409
    r = http.post(f"/projects/spam/webhooks/{hook}/active", data={"csrf": csrf, "active": "1"}, follow_redirects=False)
    assert r.status_code == 303 and webhooks_svc.get_webhook(store, hook)["active"]
    acts = actions(store, world["spam"].id)
    for a in ("webhook.create", "webhook.test", "webhook.redeliver", "webhook.deactivate", "webhook.activate"):
        assert a in acts
    worker.stop()


def test_failures_in_a_row_count_since_the_last_delivery(store, world, receiver):
    secret, hook = webhooks_svc.create_webhook(store, receiver.url, world["spam"], allow_private=True)
    receiver.secrets.append(secret)
    worker = WebhookWorker(store, timeout=5, allow_private=True)
    for status, expected in ((500, 1), (204, 0), (500, 1), (500, 2)):
        receiver.answer = (status, b"", {})
        webhooks_svc.send_test(store, hook["id"])
        worker.run_once()
        assert webhooks_svc.get_webhook(store, hook["id"])["failures_in_a_row"] == expected
    worker.stop()


def test_webhooks_of_another_project_are_out_of_reach(http, store, world):
    _, theirs = webhooks_svc.create_webhook(store, "https://example.org/theirs", world["other"])
    _, everywhere = webhooks_svc.create_webhook(store, "https://example.org/all", None)
    csrf = sign_in(http, "maya")
    page = http.get("/projects/spam/webhooks").text
    assert "example.org/theirs" not in page and "example.org/all" not in page  # owners only see global hooks
    for hook in (theirs["id"], everywhere["id"], 99999):
        for path, data in (("test", {}), ("active", {"active": "0"})):
            r = http.post(f"/projects/spam/webhooks/{hook}/{path}", data={"csrf": csrf, **data})
            assert r.status_code == 404, (hook, path)
    assert webhooks_svc.get_webhook(store, theirs["id"])["active"] and webhooks_svc.delivery_log(store) == []
    # an owner manages the webhook for every project from any project's page
    csrf = sign_in(http, "olive")
    assert "example.org/all" in http.get("/projects/spam/webhooks").text
    r = http.post(f"/projects/spam/webhooks/{everywhere['id']}/active", data={"csrf": csrf, "active": "0"},
                  follow_redirects=False)
    assert r.status_code == 303 and not webhooks_svc.get_webhook(store, everywhere["id"])["active"]


# ---- the attacks, on every page and form ------------------------------------------------------------

PAGES = ["/projects/spam/settings", "/projects/spam/expire", "/projects/spam/members", "/projects/spam/messages",
         "/projects/spam/webhooks"]
FORMS = {
    "/projects/spam/settings/instructions": {"instructions": "changed"},
    "/projects/spam/expire": {"confirm": "yes"},
    "/projects/spam/members": {"name": "otto", "role": "annotator"},
    "/projects/spam/members/ana/role": {"role": "annotator"},
    "/projects/spam/members/ana/remove": {},
    "/projects/spam/members/ana/block": {},
    "/projects/spam/members/rex/unblock": {},
    "/projects/spam/invites": {"role": "annotator"},
    "/projects/spam/invites/{invite}/revoke": {},
    "/projects/spam/messages": {"body": "hello"},
    "/projects/spam/webhooks": {"url": "https://example.org/x"},
    "/projects/spam/webhooks/{hook}/test": {},
    "/projects/spam/webhooks/{hook}/deliveries/{delivery}/retry": {},
    "/projects/spam/webhooks/{hook}/active": {"active": "0"},
}


def _state(store, world) -> tuple:
    """Everything the forms could change."""
    p = get_project(store, "spam")
    return (p.schema.to_json(), p.overlap, tuple(sorted((m["user"], m["role"], m["status"])
                                                        for m in access.members(store, p))),
            tuple((i["id"], i["usable"]) for i in invites.list_invites(store)),
            len(messages.sent(store, p)), tuple((h["id"], h["active"]) for h in webhooks_svc.list_webhooks(store)),
            tuple((d["id"], d["status"]) for d in webhooks_svc.delivery_log(store)))


@pytest.fixture
def targets(store, world, owner):
    access.block(store, world["spam"], "rex")
    _, invite = invites.create_invite(store, owner[0], project=world["spam"])
    _, hook = webhooks_svc.create_webhook(store, "https://example.org/hook", world["spam"])
    delivery = webhooks_svc.send_test(store, hook["id"])
    return {"invite": invite["id"], "hook": hook["id"], "delivery": delivery["id"]}


def _url(path: str, t: dict) -> str:
    return path.format(**t)


@pytest.mark.parametrize("name", ["ana", "otto", "max"])
def test_other_roles_and_other_managers_are_refused_everywhere(http, store, world, targets, name):
    """Annotators, non-members and the manager of another project: 403 on every page and form; nothing changes."""
    csrf = sign_in(http, name)
    before = _state(store, world)
    for path in PAGES:
        assert http.get(path).status_code == 403, path
    for path, data in FORMS.items():
        r = http.post(_url(path, targets), data={"csrf": csrf, **data}, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert _state(store, world) == before


def test_a_reviewer_is_refused_everywhere(http, store, world, targets):
    access.unblock(store, world["spam"], "rex")
    csrf = sign_in(http, "rex")
    before = _state(store, world)
    for path in PAGES:
        assert http.get(path).status_code == 403, path
    for path, data in FORMS.items():
        assert http.post(_url(path, targets), data={"csrf": csrf, **data}).status_code == 403, path
    assert _state(store, world) == before


def test_missing_or_forged_csrf_tokens_are_refused_everywhere(http, store, world, targets):
    sign_in(http, "olive")
    before = _state(store, world)
    for path, data in FORMS.items():
        for token in ({}, {"csrf": "forged"}, {"csrf": "ünïcode"}):
            r = http.post(_url(path, targets), data={**token, **data})
            assert r.status_code == 403 and "security token" in r.text, (path, token)
    assert _state(store, world) == before
    http.cookies.clear()  # signed out: to the sign-in form
    for path in PAGES:
        assert http.get(path, follow_redirects=False).headers["location"].startswith("/login")


def test_the_forms_work_for_an_owner(http, store, world, targets):
    """The same forms with a good token do what they say (so the refusals above are not a broken form)."""
    csrf = sign_in(http, "olive")
    for path in PAGES:
        assert http.get(path).status_code == 200, path
    before = _state(store, world)
    for path, data in FORMS.items():
        r = http.post(_url(path, targets), data={"csrf": csrf, **data}, follow_redirects=False)
        assert r.status_code in (201, 303), (path, r.status_code, errors(r.text))
    assert _state(store, world) != before


def test_a_project_created_through_the_api_is_audited_as_its_creator(http, store, world):
    token = users.create_api_token(store, users.get_user(store, "maya"))
    r = http.post("/api/v1/projects", json={**SPAM_SCHEMA, "slug": "by-api"}, headers=bearer(token))
    assert r.status_code == 201
    (entry,) = [e for e in audit.entries(store) if e["action"] == "project.create" and e["target"] == "by-api"]
    assert entry["actor"] == "maya"
