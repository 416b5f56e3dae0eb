"""Webhooks: signing, retries with back-off, giving up, redelivery, scoping, the API, the page, the CLI,
and the app's own background worker, against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from labelwright.services import audit, events
from labelwright.services import webhooks as svc
from labelwright.services.projects import create_project
from labelwright.services.webhook_worker import WebhookWorker
from labelwright.services.webhooks import BACKOFF, MAX_ATTEMPTS, signature, verify_signature
from tests.conftest import SPAM_SCHEMA, bearer, join


class Receiver:
    """An HTTP server that checks each request's signature with one of ``secrets`` and answers 401
    when it is wrong, 500 to the first ``fail_first`` signed requests, 204 after that."""

    def __init__(self, fail_first: int = 0):
        self.secrets: list[str] = []
        self.fail_first = fail_first
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = any(verify_signature(secret, self.headers.get("X-Labelwright-Timestamp"), body,
                                          self.headers.get("X-Labelwright-Signature")) for secret in receiver.secrets)
                receiver.requests.append({"headers": dict(self.headers), "body": body, "verified": ok})
                signed = sum(r["verified"] for r in receiver.requests)
                code = 401 if not ok else 500 if signed <= receiver.fail_first else 204
                self.send_response(code)
                reply = b"" if code == 204 else b"bad signature" if code == 401 else b"receiver down"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/labelwright"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def worker(store):
    w = WebhookWorker(store, timeout=5)
    yield w
    w.stop()


@pytest.fixture
def quiet_http(settings, store):
    """An app without the background worker: the test drives ``run_once`` itself."""
    from labelwright.app import create_app

    with TestClient(create_app(settings.with_(webhook_worker=False), store=store),
                    base_url="http://127.0.0.1:8000") as c:
        yield c


def emit(store, kind, project_id, payload, now):
    with store.write() as conn:
        return events.emit(conn, kind, project_id, payload, now=now)


def log_of(store, hook_id):
    return svc.delivery_log(store, webhook_ids=[hook_id])


def test_signature_checks():
    body = b'{"kind":"item.completed","item":"c1"}'
    ts = int(time.time())
    good = signature("s3cret", ts, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify_signature("s3cret", ts, body, good)
    assert verify_signature("s3cret", str(ts), body, good)
    assert not verify_signature("wrong", ts, body, good)
    assert not verify_signature("s3cret", ts, body + b" ", good)  # altered body
    assert not verify_signature("s3cret", ts + 1, body, good)  # altered timestamp
    assert not verify_signature("s3cret", ts, body, signature("s3cret", ts - 600, body))
    assert not verify_signature("s3cret", ts - 600, body, signature("s3cret", ts - 600, body))  # a replay
    assert verify_signature("s3cret", ts - 600, body, signature("s3cret", ts - 600, body), tolerance=900)
    assert not verify_signature("s3cret", "soon", body, good)
    assert not verify_signature("s3cret", ts, body, None)


def test_signed_delivery_after_retries_with_backoff(store, spam_project, receiver, worker):
    receiver.fail_first = 2
    secret, hook = svc.create_webhook(store, receiver.url, spam_project)
    receiver.secrets = [secret]
    t0 = time.time()
    event_id = emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t0)
    assert worker.run_once(now=t0) == 1
    [d] = log_of(store, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 500)
    assert d["next_attempt_at"] == pytest.approx(t0 + BACKOFF[0]) and "receiver down" in d["last_error"]
    assert worker.run_once(now=t0 + BACKOFF[0] - 1) == 0  # not due yet
    assert worker.run_once(now=t0 + BACKOFF[0]) == 1
    [d] = log_of(store, hook["id"])
    assert (d["attempts"], d["next_attempt_at"]) == (2, pytest.approx(t0 + BACKOFF[0] + BACKOFF[1]))
    t3 = t0 + BACKOFF[0] + BACKOFF[1]
    assert worker.run_once(now=t3) == 1
    [d] = log_of(store, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("delivered", 3, 204, None)
    assert d["delivered_at"] == pytest.approx(t3) and d["next_attempt_at"] is None and d["event_id"] == event_id
    assert worker.run_once(now=t3 + 10**6) == 0  # delivered: never sent again
    assert len(receiver.requests) == 3 and all(r["verified"] for r in receiver.requests)
    headers = receiver.requests[0]["headers"]
    assert headers["X-Labelwright-Event"] == "item.completed"
    assert {r["headers"]["X-Labelwright-Delivery"] for r in receiver.requests} == {str(d["id"])}
    assert json.loads(receiver.requests[0]["body"]) == {"kind": "item.completed", "item": "c0"}


def test_a_wrong_secret_fails_verification(store, spam_project, receiver, worker):
    svc.create_webhook(store, receiver.url, spam_project)
    receiver.secrets = ["lwhs_not-the-secret"]
    t0 = time.time()
    emit(store, "annotation.submitted", spam_project.id, {"item": "c0"}, now=t0)
    worker.run_once(now=t0)
    assert [r["verified"] for r in receiver.requests] == [False]
    [d] = svc.delivery_log(store)
    assert (d["status"], d["last_status_code"]) == ("pending", 401) and d["last_error"].startswith("HTTP 401")


def test_gives_up_after_the_last_attempt_then_redelivers(store, spam_project, receiver, worker, owner):
    receiver.fail_first = 10**6
    secret, hook = svc.create_webhook(store, receiver.url, spam_project)
    receiver.secrets = [secret]
    t = time.time()
    emit(store, "project.completed", spam_project.id, {"project": "spam"}, now=t)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert worker.run_once(now=t) == 1, attempt
        [d] = log_of(store, hook["id"])
        assert d["attempts"] == attempt
        if attempt < MAX_ATTEMPTS:
            assert d["status"] == "pending"
            t += BACKOFF[attempt - 1]
    assert (d["status"], d["next_attempt_at"], d["last_status_code"]) == ("failed", None, 500)
    assert worker.run_once(now=t + 10**7) == 0 and len(receiver.requests) == MAX_ATTEMPTS
    assert svc.get_webhook(store, hook["id"])["failed"] == 1
    # redeliver: one more attempt, now
    receiver.fail_first = 0
    again = svc.redeliver(store, hook["id"], d["id"], by=owner[0], now=t + 100)
    assert again["status"] == "pending"
    assert worker.run_once(now=t + 100) == 1
    [d] = log_of(store, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", MAX_ATTEMPTS + 1, 204)
    assert audit.entries(store)[0]["action"] == "webhook.redeliver"


def test_an_unreachable_receiver_is_an_error_without_a_code(store, spam_project, worker):
    from tests.server import free_port

    _, hook = svc.create_webhook(store, f"http://127.0.0.1:{free_port()}/nobody", spam_project)
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    worker.run_once(now=t)
    [d] = log_of(store, hook["id"])
    assert d["status"] == "pending" and d["last_status_code"] is None and "ConnectError" in d["last_error"]


def test_scoping_kinds_and_deactivation(store, spam_project, receiver, worker):
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other"})

    def add(project, kinds="*"):
        secret, hook = svc.create_webhook(store, receiver.url, project, kinds)
        receiver.secrets.append(secret)
        return hook["id"]
    spam_all, other_all, global_completed, spam_off = (add(spam_project), add(other), add(None, ["item.completed"]),
                                                       add(spam_project))
    svc.set_active(store, spam_off, False)
    t = time.time()
    emit(store, "annotation.submitted", spam_project.id, {"item": "c0"}, now=t)
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    emit(store, "item.completed", other.id, {"item": "o0"}, now=t)

    def kinds(hook_id):
        return sorted((d["event"], d["project"]) for d in log_of(store, hook_id))
    assert kinds(spam_all) == [("annotation.submitted", "spam"), ("item.completed", "spam")]
    assert kinds(other_all) == [("item.completed", "other")]
    assert kinds(global_completed) == [("item.completed", "other"), ("item.completed", "spam")]
    assert kinds(spam_off) == []
    # deactivating holds pending deliveries back; reactivating sends them
    svc.set_active(store, other_all, False)
    assert worker.run_once(now=t) == 4
    assert [d["status"] for d in log_of(store, other_all)] == ["pending"]
    svc.set_active(store, other_all, True)
    assert worker.run_once(now=t) == 1
    assert {d["status"] for d in svc.delivery_log(store)} == {"delivered"}
    assert len(receiver.requests) == 5


def test_svc_validates_urls_and_kinds(store, spam_project):
    from labelwright.errors import ValidationError

    for url in ("ftp://example.org/x", "example.org/hook", "http:///nohost", ""):
        with pytest.raises(ValidationError) as e:
            svc.create_webhook(store, url, spam_project)
        assert e.value.field == "url"
    with pytest.raises(ValidationError) as e:
        svc.create_webhook(store, "https://example.org", spam_project, ["item.done"])
    assert e.value.field == "kinds" and "item.done" in e.value.message
    assert svc.create_webhook(store, "https://example.org", spam_project, "item.completed")[1]["kinds"] == [
        "item.completed"]


def test_a_claim_is_a_lease_and_workers_never_send_twice(store, spam_project, receiver):
    secret, hook = svc.create_webhook(store, receiver.url, spam_project)
    receiver.secrets = [secret]
    t = time.time()
    for i in range(12):
        emit(store, "annotation.submitted", spam_project.id, {"item": f"c{i}"}, now=t)
    a, b = WebhookWorker(store, batch=3), WebhookWorker(store, batch=3)
    try:
        claimed = a._claim(t)  # a worker that claims and then dies
        assert len(claimed) == 3
        start = threading.Barrier(2)

        def drain(w):
            start.wait()
            while w.run_once(now=t + 1):
                pass
        threads = [threading.Thread(target=drain, args=(w,)) for w in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        ids = [r["headers"]["X-Labelwright-Delivery"] for r in receiver.requests]
        assert len(ids) == len(set(ids)) == 9  # each once; the 3 leased ones wait for their lease
        assert a.run_once(now=t + a.lease - 1) == 0
        assert a.run_once(now=t + a.lease + 1) == 3
        log = log_of(store, hook["id"])
        assert {d["status"] for d in log} == {"delivered"} and len(receiver.requests) == 12
        assert sorted(d["attempts"] for d in log) == [1] * 9 + [2] * 3  # the lost claim counts as an attempt
    finally:
        a.stop()
        b.stop()


# ---- through the API ------------------------------------------------------------------------------


def test_api_access_and_delivery_log(quiet_http, store, owner, spam_project, make_annotator, receiver):
    http, own = quiet_http, bearer(owner[1])
    _, mtok = make_annotator("maya", role="manager", member=False)
    join(store, "maya", [spam_project], role="manager")
    _, atok = make_annotator("ann")
    create_project(store, {**SPAM_SCHEMA, "slug": "other"})
    r = http.post("/api/v1/webhooks", json={"url": receiver.url, "project": "spam", "kinds": ["item.completed"]},
                  headers=bearer(mtok))
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("lwhs_") and hook["project"] == "spam" and hook["kinds"] == ["item.completed"]
    receiver.secrets = [hook["secret"]]
    # a manager cannot add one for every project or for a project they do not manage; annotators none
    assert http.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(mtok)).status_code == 403
    assert http.post("/api/v1/webhooks", json={"url": receiver.url, "project": "other"},
                     headers=bearer(mtok)).status_code == 403
    assert http.post("/api/v1/webhooks", json={"url": receiver.url, "project": "spam"},
                     headers=bearer(atok)).status_code == 403
    assert http.get("/api/v1/webhooks", headers=bearer(atok)).status_code == 403
    bad = http.post("/api/v1/webhooks", json={"url": "file:///etc/passwd"}, headers=own)
    assert bad.status_code == 422 and bad.json()["field"] == "url" and "http" in bad.json()["error"]
    bad = http.post("/api/v1/webhooks", json={"url": receiver.url, "kinds": ["nope"]}, headers=own)
    assert bad.status_code == 422 and bad.json()["field"] == "kinds"
    assert http.post("/api/v1/webhooks", json={"kinds": "*"}, headers=own).json()["field"] == "url"
    glob = http.post("/api/v1/webhooks", json={"url": "https://example.org/all"}, headers=own).json()
    # listing: the secret is never shown again; a manager sees their projects' webhooks only
    mine = http.get("/api/v1/webhooks", headers=bearer(mtok)).json()
    assert [h["id"] for h in mine] == [hook["id"]] and "secret" not in mine[0]
    assert [h["id"] for h in http.get("/api/v1/webhooks", headers=own).json()] == [hook["id"], glob["id"]]
    assert [h["id"] for h in http.get("/api/v1/webhooks?project=spam", headers=own).json()] == [hook["id"]]
    assert http.get(f"/api/v1/webhooks/{glob['id']}/deliveries", headers=bearer(mtok)).status_code == 403
    assert http.patch(f"/api/v1/webhooks/{glob['id']}", json={"active": False},
                      headers=bearer(mtok)).status_code == 403
    # the delivery log
    receiver.fail_first = 1
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c1"}, now=t)
    WebhookWorker(store).run_once(now=t)
    log = http.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(mtok)).json()
    assert [(d["event"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("item.completed", "pending", 1, 500)]
    assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=delivered", headers=bearer(mtok)).json() == []
    assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=lost",
                    headers=bearer(mtok)).json()["field"] == "status"
    r = http.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/retry", headers=bearer(mtok))
    assert r.status_code == 202 and r.json()["next_attempt_at"] <= time.time()
    WebhookWorker(store).run_once()
    log = http.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(mtok)).json()
    assert (log[0]["status"], log[0]["attempts"], log[0]["last_status_code"]) == ("delivered", 2, 204)
    assert http.post(f"/api/v1/webhooks/{hook['id']}/deliveries/999999/retry",
                     headers=bearer(mtok)).status_code == 404
    # deactivate, delete; each in the audit log
    r = http.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=bearer(mtok))
    assert r.status_code == 200 and r.json()["active"] is False
    assert http.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/retry",
                     headers=bearer(mtok)).status_code == 409
    assert http.delete(f"/api/v1/webhooks/{hook['id']}", headers=bearer(mtok)).status_code == 204
    assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(mtok)).status_code == 404
    actions = [(e["action"], e["actor"]) for e in audit.entries(store) if e["action"].startswith("webhook.")]
    assert actions == [("webhook.delete", "maya"), ("webhook.deactivate", "maya"), ("webhook.redeliver", "maya"),
                       ("webhook.create", "olive"), ("webhook.create", "maya")]


def test_the_page_shows_webhooks_and_deliveries(quiet_http, store, owner, spam_project, make_annotator):
    from labelwright.api import SESSION_COOKIE
    from labelwright.services import users as users_svc

    _, hook = svc.create_webhook(store, "https://example.org/hook", spam_project)
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    ann, _ = make_annotator("ann")
    quiet_http.cookies.set(SESSION_COOKIE, users_svc.start_session(store, ann, 1)[0])
    assert quiet_http.get("/projects/spam/webhooks").status_code == 403
    quiet_http.cookies.set(SESSION_COOKIE, users_svc.start_session(store, owner[0], 1)[0])
    page = quiet_http.get("/projects/spam/webhooks")
    assert page.status_code == 200
    assert "https://example.org/hook" in page.text and "item.completed" in page.text and "pending" in page.text
    assert 'href="/projects/spam/webhooks"' in quiet_http.get("/projects/spam").text


# ---- the app's own worker, end to end ------------------------------------------------------------


def test_the_apps_background_worker_delivers(http, store, owner, spam_project, receiver):
    assert http.app.state.webhook_worker is not None
    r = http.post("/api/v1/webhooks", json={"url": receiver.url, "project": "spam"}, headers=bearer(owner[1]))
    receiver.secrets = [r.json()["secret"]]
    emit(store, "annotation.submitted", spam_project.id, {"item": "c3", "annotator": "ann"}, now=time.time())
    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [rq["verified"] for rq in receiver.requests] == [True]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = http.get(f"/api/v1/webhooks/{r.json()['id']}/deliveries", headers=bearer(owner[1])).json()
        if log[0]["status"] == "delivered":
            break
        time.sleep(0.05)
    assert (log[0]["status"], log[0]["attempts"]) == ("delivered", 1)


def test_the_worker_can_be_turned_off(monkeypatch, settings, store):
    from labelwright.app import create_app
    from labelwright.settings import Settings

    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "0")
    assert Settings.from_env().webhook_worker is False
    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "1")
    assert Settings.from_env().webhook_worker is True
    with TestClient(create_app(settings.with_(webhook_worker=False), store=store)) as c:
        assert c.app.state.webhook_worker is None


# ---- the command line -----------------------------------------------------------------------------


def test_cli(db_url, store, spam_project):
    import click
    from click.testing import CliRunner

    from labelwright.cli import Ctx
    from labelwright.cli_webhooks import webhooks

    @click.group()
    @click.pass_context
    def cli(ctx):
        ctx.obj = Ctx(db_url)
    cli.add_command(webhooks)

    def run(*args):
        res = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        return res.output
    out = run("webhooks", "add", "https://example.org/x", "--project", "spam", "--kind", "item.completed")
    assert "signing secret (shown once): lwhs_" in out
    listed = json.loads(run("webhooks", "list", "--json"))
    assert [(h["project"], h["kinds"]) for h in listed] == [("spam", ["item.completed"])]
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=time.time())
    log = json.loads(run("webhooks", "deliveries", str(listed[0]["id"]), "--json"))
    assert [(d["event"], d["status"]) for d in log] == [("item.completed", "pending")]
    assert "item.completed" in run("webhooks", "deliveries", str(listed[0]["id"]))
