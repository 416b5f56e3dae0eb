"""Webhooks: signing, retries with back-off, giving up, redelivery, scoping, the API, the page, the CLI,
and the app's own background worker, against a real HTTP receiver on 127.0.0.1 (so these tests allow
private destinations, webhook_allow_private, except those that check that they are refused)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click
import httpcore
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from labelwright.api.deps import SESSION_COOKIE
from labelwright.app import create_app
from labelwright.cli import Ctx, Group
from labelwright.cli_webhooks import webhooks
from labelwright.errors import ValidationError
from labelwright.services import audit, events
from labelwright.services import users as users_svc
from labelwright.services import webhooks as svc
from labelwright.services.projects import create_project
from labelwright.services.webhook_worker import EXCERPT_CHARS, GuardedTransport, WebhookWorker
from labelwright.services.webhooks import BACKOFF, MAX_ATTEMPTS, signature, verify_signature
from labelwright.settings import Settings
from tests.conftest import SPAM_SCHEMA, bearer, join
from tests.server import free_port


class Receiver:
    """An HTTP server that checks each request's signature with one of ``secrets`` and answers 401
    when it is wrong, 500 to the first ``fail_first`` signed requests, 204 after that; or, when
    ``answer`` is set, ``(status, body, headers)`` to every signed request."""

    def __init__(self, fail_first: int = 0):
        self.secrets: list[str] = []
        self.fail_first = fail_first
        self.answer: tuple[int, bytes, dict] | None = None
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = any(verify_signature(secret, self.headers.get("X-Labelwright-Delivery"),
                                          self.headers.get("X-Labelwright-Timestamp"), body,
                                          self.headers.get("X-Labelwright-Signature")) for secret in receiver.secrets)
                receiver.requests.append({"headers": dict(self.headers), "body": body, "verified": ok})
                signed = sum(r["verified"] for r in receiver.requests)
                code = 401 if not ok else 500 if signed <= receiver.fail_first else 204
                reply = b"" if code == 204 else b"bad signature" if code == 401 else b"receiver down"
                headers = {}
                if ok and receiver.answer is not None:
                    code, reply, headers = receiver.answer
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
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
    """A worker that may deliver to the receiver on 127.0.0.1."""
    w = WebhookWorker(store, timeout=5, allow_private=True)
    yield w
    w.stop()


@pytest.fixture
def strict_worker(store):
    """A worker with the default settings: private destinations refused."""
    w = WebhookWorker(store, timeout=5)
    yield w
    w.stop()


@pytest.fixture
def quiet_http(settings, store):
    """An app without the background worker (the test drives ``run_once`` itself), that allows
    webhooks to the receiver on 127.0.0.1."""
    with TestClient(create_app(settings.with_(webhook_worker=False, webhook_allow_private=True), store=store),
                    base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def fake_dns(monkeypatch):
    """``fake_dns({"hooks.example.test": ["127.0.0.1"]})``: socket.getaddrinfo answers these names
    with these addresses (no real DNS), every other name as usual. A list of lists answers each call
    with the next list (the last one repeats): a name that changes its address. Returns the names asked."""
    real, asked = socket.getaddrinfo, []

    def install(names: dict):
        def getaddrinfo(host, port, *args, **kwargs):
            if host not in names:
                return real(host, port, *args, **kwargs)
            asked.append(host)
            answers = names[host]
            if answers and isinstance(answers[0], list):
                answers = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a else
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return asked
    return install


def emit(store, kind, project_id, payload, now):
    with store.write() as conn:
        return events.emit(conn, kind, project_id, payload, now=now)


def log_of(store, hook_id):
    return svc.delivery_log(store, webhook_ids=[hook_id])


def test_signature_checks():
    body = b'{"kind":"item.completed","item":"c1"}'
    ts = int(time.time())
    good = signature("s3cret", 41, ts, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify_signature("s3cret", 41, ts, body, good)
    assert verify_signature("s3cret", "41", str(ts), body, good)
    assert not verify_signature("wrong", 41, ts, body, good)
    assert not verify_signature("s3cret", 41, ts, body + b" ", good)  # altered body
    assert not verify_signature("s3cret", 41, ts + 1, body, good)  # altered timestamp
    assert not verify_signature("s3cret", 42, ts, body, good)  # another delivery id
    assert not verify_signature("s3cret", None, ts, body, good)
    assert not verify_signature("s3cret", 41, ts, body, signature("s3cret", 41, ts - 600, body))
    old = signature("s3cret", 41, ts - 600, body)
    assert not verify_signature("s3cret", 41, ts - 600, body, old)  # a replay
    assert verify_signature("s3cret", 41, ts - 600, body, old, tolerance=900)
    assert not verify_signature("s3cret", 41, "soon", body, good)
    assert not verify_signature("s3cret", 41, ts, body, None)


def test_the_signature_covers_the_delivery_id_the_timestamp_and_the_body(store, spam_project, receiver, worker):
    secret, hook = svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
    receiver.secrets = [secret]
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=time.time())
    worker.run_once()
    [request] = receiver.requests
    h, body = request["headers"], request["body"]
    # what docs/webhooks.md tells a receiver to compute, without labelwright
    signed = f"{h['X-Labelwright-Delivery']}.{h['X-Labelwright-Timestamp']}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert request["verified"] and h["X-Labelwright-Signature"] == expected
    assert h["X-Labelwright-Delivery"] == str(log_of(store, hook["id"])[0]["id"])
    # the same body and timestamp under another delivery id (to slip past a receiver's repeat check): refused
    assert not verify_signature(secret, int(h["X-Labelwright-Delivery"]) + 1, h["X-Labelwright-Timestamp"], body,
                                h["X-Labelwright-Signature"])


def test_signed_delivery_after_retries_with_backoff(store, spam_project, receiver, worker):
    receiver.fail_first = 2
    secret, hook = svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
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
    svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
    receiver.secrets = ["lwhs_not-the-secret"]
    t0 = time.time()
    emit(store, "annotation.submitted", spam_project.id, {"item": "c0"}, now=t0)
    worker.run_once(now=t0)
    assert [r["verified"] for r in receiver.requests] == [False]
    [d] = svc.delivery_log(store)
    assert (d["status"], d["last_status_code"]) == ("pending", 401) and d["last_error"].startswith("HTTP 401")


def test_gives_up_after_the_last_attempt_then_redelivers(store, spam_project, receiver, worker, owner):
    receiver.fail_first = 10**6
    secret, hook = svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
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
    _, hook = svc.create_webhook(store, f"http://127.0.0.1:{free_port()}/nobody", spam_project, allow_private=True)
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    worker.run_once(now=t)
    [d] = log_of(store, hook["id"])
    assert d["status"] == "pending" and d["last_status_code"] is None and "ConnectError" in d["last_error"]


def test_scoping_kinds_and_deactivation(store, spam_project, receiver, worker):
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other"})

    def add(project, kinds="*"):
        secret, hook = svc.create_webhook(store, receiver.url, project, kinds, allow_private=True)
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
    for url in ("ftp://example.org/x", "example.org/hook", "http:///nohost", ""):
        with pytest.raises(ValidationError) as e:
            svc.create_webhook(store, url, spam_project)
        assert e.value.field == "url"
    with pytest.raises(ValidationError) as e:
        svc.create_webhook(store, "https://example.org", spam_project, ["item.done"])
    assert e.value.field == "kinds" and "item.done" in e.value.message
    assert svc.create_webhook(store, "https://example.org", spam_project, "item.completed")[1]["kinds"] == [
        "item.completed"]


# ---- destinations ---------------------------------------------------------------------------------

REFUSED_URLS = {
    "http://127.0.0.1/hook": "loopback",
    "http://127.0.0.1:8000/api": "loopback",
    "http://[::1]/hook": "loopback",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://localhost/hook": "this machine",
    "http://LocalHost.:9000/hook": "this machine",
    "http://api.localhost/hook": "this machine",
    "http://10.0.0.1/hook": "private",
    "http://192.168.1.20/hook": "private",
    "http://[::ffff:127.0.0.1]/hook": "127.0.0.1 in IPv6 form, a loopback",
    "http://[::ffff:a9fe:a9fe]/hook": "169.254.169.254 in IPv6 form, a link-local",
    "http://[fe80::1]/hook": "link-local",
    "http://[fd00::1]/hook": "private",
    "http://0.0.0.0:8000/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://100.64.0.1/": "carrier-grade NAT",
    "http://240.0.0.1/": "private",
    "http://127.1/": "loopback",
    "http://2130706433/": "loopback",
    "http://0x7f000001/": "loopback",
}


def test_private_destinations_are_refused_when_added(store, spam_project):
    for url, why in REFUSED_URLS.items():
        with pytest.raises(ValidationError) as e:
            svc.create_webhook(store, url, spam_project)
        assert e.value.field == "url" and why in e.value.message, (url, e.value.message)
        assert "webhook_allow_private" in e.value.message
    assert svc.list_webhooks(store) == []
    # public destinations, and names (resolved at each delivery, not here)
    for url in ("https://example.org/hook", "http://93.184.216.34:8080/x", "https://[2606:4700::1111]/x",
                "https://hooks.example.test/x", "https://localhost.example.org/x"):
        assert svc.create_webhook(store, url, spam_project)[1]["url"] == url
    # the owner's opt-in
    for url in REFUSED_URLS:
        svc.create_webhook(store, url, spam_project, allow_private=True)
    assert len(svc.list_webhooks(store)) == 5 + len(REFUSED_URLS)


def test_the_api_refuses_private_destinations(http, owner):
    for url in ("http://127.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/", "http://localhost:8000/",
                "http://10.0.0.1/", "http://[::ffff:127.0.0.1]/"):
        r = http.post("/api/v1/webhooks", json={"url": url}, headers=bearer(owner[1]))
        assert r.status_code == 422, (url, r.text)
        assert r.json()["field"] == "url" and "may not point at" in r.json()["error"]
        assert "webhook_allow_private" in r.json()["error"]
    r = http.post("/api/v1/webhooks", json={"url": "http://169.254.169.254/"}, headers=bearer(owner[1]))
    assert "link-local" in r.json()["error"]
    assert http.get("/api/v1/webhooks", headers=bearer(owner[1])).json() == []


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(store, spam_project, receiver,
                                                                         strict_worker, fake_dns, owner):
    port = receiver.server.server_address[1]
    asked = fake_dns({"hooks.example.test": ["127.0.0.1"], "mixed.example.test": ["93.184.216.34", "10.1.2.3"],
                      "mapped.example.test": ["::ffff:127.0.0.1"]})
    hooks = {}
    for name in ("hooks", "mixed", "mapped"):
        secret, hook = svc.create_webhook(store, f"http://{name}.example.test:{port}/hook", spam_project)
        receiver.secrets.append(secret)
        hooks[name] = hook["id"]
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    assert strict_worker.run_once(now=t) == 3
    assert receiver.requests == [] and set(asked) == {"hooks.example.test", "mixed.example.test",
                                                       "mapped.example.test"}
    errors = {}
    for name, hook_id in hooks.items():
        [d] = log_of(store, hook_id)
        # refused for good: failed at the first attempt, no code, no retry storm
        assert (d["status"], d["attempts"], d["last_status_code"], d["next_attempt_at"]) == ("failed", 1, None, None)
        assert d["last_error"].startswith("refused: ") and "webhook_allow_private" in d["last_error"]
        errors[name] = d["last_error"]
    assert errors["hooks"].startswith("refused: hooks.example.test resolves to 127.0.0.1, a loopback address")
    assert "resolves to 10.1.2.3, a private address" in errors["mixed"]  # every address is checked
    assert "resolves to ::ffff:127.0.0.1, 127.0.0.1 in IPv6 form, a loopback address" in errors["mapped"]
    assert strict_worker.run_once(now=t + 10**6) == 0
    # an owner who allows private destinations: the same delivery goes to the same name, with its Host
    allowing = WebhookWorker(store, timeout=5, allow_private=True)
    try:
        [d] = log_of(store, hooks["hooks"])
        svc.redeliver(store, hooks["hooks"], d["id"], by=owner[0], now=t + 1)
        assert allowing.run_once(now=t + 1) == 1
    finally:
        allowing.stop()
    [d] = log_of(store, hooks["hooks"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 2, 204)
    [request] = receiver.requests
    assert request["verified"] and request["headers"]["Host"] == f"hooks.example.test:{port}"


def test_the_worker_connects_to_the_address_it_checked(store, spam_project, strict_worker, fake_dns, monkeypatch):
    # DNS rebinding: a public address for the check, then loopback for whoever resolves the name again
    asked = fake_dns({"hooks.example.test": [["93.184.216.34"], ["127.0.0.1"]]})
    connects = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        connects.append((host, port))
        raise httpcore.ConnectError("no network in tests")
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    _, hook = svc.create_webhook(store, "http://hooks.example.test:8080/hook", spam_project)
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    assert strict_worker.run_once(now=t) == 1
    assert connects == [("93.184.216.34", 8080)] and asked == ["hooks.example.test"]
    [d] = log_of(store, hook["id"])
    assert (d["status"], d["last_status_code"]) == ("pending", None) and "ConnectError" in d["last_error"]
    assert isinstance(strict_worker._client._transport, GuardedTransport)


def test_the_apps_worker_follows_the_setting(settings, store):
    for allow in (False, True):
        with TestClient(create_app(settings.with_(webhook_allow_private=allow), store=store)) as c:
            assert c.app.state.webhook_worker.allow_private is allow


def test_the_log_keeps_a_short_excerpt_and_redirects_are_not_followed(store, spam_project, receiver, worker):
    secret, hook = svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
    receiver.secrets = [secret]
    page = b"<html>\n<title>internal admin</title>\x00\x1b[31m" + b"secret row; " * 2000 + b"</html>"
    receiver.answer = (500, page, {"Content-Type": "text/html"})
    t = time.time()
    emit(store, "item.completed", spam_project.id, {"item": "c0"}, now=t)
    worker.run_once(now=t)
    [d] = log_of(store, hook["id"])
    assert d["last_status_code"] == 500 and d["last_error"].startswith("HTTP 500: <html> <title>internal admin")
    excerpt = d["last_error"].removeprefix("HTTP 500: ")
    assert len(excerpt) == EXCERPT_CHARS and excerpt.endswith("…") and excerpt.isprintable()
    # a redirect is a failed attempt: never followed, to the metadata service or anywhere
    receiver.answer = (302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    worker.run_once(now=t + BACKOFF[0])
    [d] = log_of(store, hook["id"])
    assert (d["status"], d["last_status_code"], d["last_error"]) == ("pending", 302, "HTTP 302")
    assert len(receiver.requests) == 2


def test_a_claim_is_a_lease_and_workers_never_send_twice(store, spam_project, receiver):
    secret, hook = svc.create_webhook(store, receiver.url, spam_project, allow_private=True)
    receiver.secrets = [secret]
    t = time.time()
    for i in range(12):
        emit(store, "annotation.submitted", spam_project.id, {"item": f"c{i}"}, now=t)
    a, b = WebhookWorker(store, batch=3, allow_private=True), WebhookWorker(store, batch=3, allow_private=True)
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
    WebhookWorker(store, allow_private=True).run_once(now=t)
    log = http.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(mtok)).json()
    assert [(d["event"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("item.completed", "pending", 1, 500)]
    assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=delivered", headers=bearer(mtok)).json() == []
    assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=lost",
                    headers=bearer(mtok)).json()["field"] == "status"
    r = http.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/retry", headers=bearer(mtok))
    assert r.status_code == 202 and r.json()["next_attempt_at"] <= time.time()
    WebhookWorker(store, allow_private=True).run_once()
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


def test_the_apps_background_worker_delivers(settings, store, owner, spam_project, receiver):
    with TestClient(create_app(settings.with_(webhook_allow_private=True), store=store),
                    base_url="http://127.0.0.1:8000") as http:
        _background_delivery(http, store, owner, spam_project, receiver)


def _background_delivery(http, store, owner, spam_project, receiver):
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
    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "0")
    assert Settings.load().webhook_worker is False
    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "1")
    assert Settings.load().webhook_worker is True
    with TestClient(create_app(settings.with_(webhook_worker=False), store=store)) as c:
        assert c.app.state.webhook_worker is None


# ---- the command line -----------------------------------------------------------------------------


def test_cli(db_url, store, spam_project):

    @click.group()
    @click.pass_context
    def cli(ctx):
        ctx.obj = Ctx(db_url=db_url)
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


def test_cli_refuses_private_destinations_unless_allowed(db_url, store):

    @click.group(cls=Group)
    @click.pass_context
    def cli(ctx):
        ctx.obj = Ctx(db_url=db_url)
    cli.add_command(webhooks)

    for url in ("http://127.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/", "http://localhost/x",
                "http://10.0.0.1/", "http://[::ffff:127.0.0.1]/"):
        res = CliRunner().invoke(cli, ["webhooks", "add", url], env={"COLUMNS": "300"})
        assert res.exit_code == 2, res.output
        assert "may not point at" in res.output and "LABELWRIGHT_WEBHOOK_ALLOW_PRIVATE=1" in res.output
    assert svc.list_webhooks(store) == []
    res = CliRunner().invoke(cli, ["webhooks", "add", "http://127.0.0.1:9000/x"],
                             env={"COLUMNS": "300", "LABELWRIGHT_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert res.exit_code == 0, res.output
    assert [h["url"] for h in svc.list_webhooks(store)] == ["http://127.0.0.1:9000/x"]
