"""Request body limits (labelwright.api.limits), and the fast path (labelwright.api.hot) answering exactly
as the FastAPI handlers do, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from fastapi.testclient import TestClient

import labelwright.api.hot as hot
from labelwright.app import create_app
from labelwright.services import queue as queue_svc
from tests.conftest import bearer

MIB = 1 << 20
VALID = b'{"answers": {"spam": "ham"}, "active_ms": 900}'
# A valid submission of about 1.5 MB: whitespace between its fields.
PADDED = b'{"answers": {"spam": "ham"},' + b" " * 1_500_000 + b'"active_ms": 5}'
# Valid JSON, 2 MiB of spaces, then garbage: cut anywhere in the spaces it would parse.
TRAILING_GARBAGE = b'{"answers": {"spam": "ham"}}' + b" " * (2 * MIB) + b"garbage"


def build_app(settings, store, *, fast: bool = True):
    """The app for ``settings``; with ``fast=False`` without HotRoutes, so every request takes the
    FastAPI path (the body limit stays the outermost layer all the same)."""
    return create_app(settings, store=store, hot_routes=fast)


@contextlib.contextmanager
def both_paths(settings, store):
    """``{"fast": client, "fastapi": client}``: the app with and without its fast path."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(TestClient(build_app(settings, store, fast=fast),
                                                    base_url="http://127.0.0.1:8000"))
               for name, fast in (("fast", True), ("fastapi", False))}


def claimed(client, token: str) -> int:
    r = client.post("/api/v1/projects/spam/next", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["id"]


def submit(client, token: str, item_id: int, body: bytes, **headers):
    return client.post(f"/api/v1/items/{item_id}/annotations", content=body,
                       headers={**bearer(token), "Content-Type": "application/json", **headers})


def call_asgi(app, path: str, headers: list[tuple[bytes, bytes]], chunks, method: str = "POST"):
    """Call ``app`` directly with a body sent as ``chunks``; (status, body, bytes the app received)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), *headers], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000)}
    chunks = iter(chunks)
    pending = next(chunks, None)
    consumed = 0
    sent = []

    async def receive():
        nonlocal pending, consumed
        if pending is None:
            await asyncio.sleep(3600)  # as a server does once the body is done: wait for a disconnect
        chunk, pending = pending, next(chunks, None)
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pending is not None}

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), consumed


NO_AUTH: list[tuple[bytes, bytes]] = []
BOGUS_BEARER = [(b"authorization", b"Bearer not-a-token")]


@pytest.mark.parametrize("auth", [NO_AUTH, BOGUS_BEARER], ids=["no-auth", "bearer"])
def test_declared_oversize_body_is_refused_before_any_of_it_is_read(app, auth):
    headers = [*auth, (b"content-type", b"application/json"), (b"content-length", str(200 * MIB).encode())]
    status, body, consumed = call_asgi(app, "/api/v1/items/1/annotations", headers, [b'{"answers": {}}'])
    assert (status, consumed) == (413, 0)
    error = json.loads(body)
    assert error["field"] is None and "at most 1048576 bytes" in error["error"]


@pytest.mark.parametrize("auth", [NO_AUTH, BOGUS_BEARER], ids=["no-auth", "bearer"])
def test_chunked_oversize_body_is_refused_once_past_the_limit(app, auth):
    chunk = b"x" * (64 << 10)
    headers = [*auth, (b"content-type", b"application/json")]  # no Content-Length: chunked
    status, body, consumed = call_asgi(app, "/api/v1/items/1/annotations", headers, [chunk] * 128)  # 8 MiB
    assert status == 413 and json.loads(body)["field"] is None
    assert MIB < consumed <= MIB + len(chunk)


def test_pages_get_a_plain_text_413(http):
    r = http.post("/login", content=b"name=" + b"x" * (2 * MIB),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/plain")
    assert "at most 1048576 bytes" in r.text
    r = http.post("/login", content=iter([b"name=", b"x" * (2 * MIB)]),  # chunked
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/plain")


def submit_as_a_server_would(app, store, project, user, token: str, body: bytes):
    """Claim an item for ``user`` and submit ``body`` for it, handed to ``app`` in 64 KiB chunks as
    uvicorn does; (status, response body)."""
    item = queue_svc.claim_next(store, project, user)
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    chunks = [body[i:i + (64 << 10)] for i in range(0, len(body), 64 << 10)]
    status, out, _ = call_asgi(app, f"/api/v1/items/{item['id']}/annotations", headers, chunks)
    return status, out


def test_padded_valid_submission_under_a_raised_limit_is_created_on_both_paths(settings, store, spam_project,
                                                                                 make_annotator):
    raised = settings.with_(max_body_bytes=2 * MIB)
    for fast in (True, False):
        user, token = make_annotator(f"ann-{fast}")
        status, out = submit_as_a_server_would(build_app(raised, store, fast=fast), store, spam_project, user,
                                               token, PADDED)
        assert status == 201, (fast, out)
        assert json.loads(out)["answers"] == {"spam": "ham"}


def test_trailing_garbage_is_never_taken_as_a_submission(settings, store, spam_project, make_annotator):
    for limit, expected in ((MIB, 413), (4 * MIB, 422)):
        for fast in (True, False):
            user, token = make_annotator(f"ann-{fast}-{limit}")
            status, out = submit_as_a_server_would(build_app(settings.with_(max_body_bytes=limit), store, fast=fast),
                                                   store, spam_project, user, token, TRAILING_GARBAGE)
            assert status == expected, (fast, limit, out)
            assert queue_svc.counts_for_user(store, spam_project, user)["done"] == 0


def test_item_imports_take_up_to_max_import_bytes(settings, store, owner, spam_project):
    def items(n: int, size: int) -> bytes:
        return json.dumps({"items": [{"id": f"big{n}-{i}", "text": "x" * 1000} for i in range(size // 1024)]}).encode()

    h = {**bearer(owner[1]), "Content-Type": "application/json"}
    with TestClient(create_app(settings, store=store)) as client:  # the defaults: 1 MiB, 64 MiB for imports
        r = client.post("/api/v1/projects/spam/items", content=items(0, 2 * MIB), headers=h)
        assert r.status_code == 200 and r.json()["inserted"] == 2048
    small = settings.with_(max_body_bytes=64 << 10, max_import_bytes=256 << 10)
    with TestClient(create_app(small, store=store)) as client:
        r = client.post("/api/v1/projects/spam/items", content=items(1, 200 << 10), headers=h)
        assert r.status_code == 200 and r.json()["inserted"] == 200
        r = client.post("/api/v1/projects/spam/items", content=items(2, 300 << 10), headers=h)
        assert r.status_code == 413 and "max_import_bytes" in r.json()["error"]
        # Every other route keeps max_body_bytes, the other items routes too.
        big = json.dumps({"name": "x" * (100 << 10)}).encode()
        for path in ("/api/v1/projects", "/api/v1/projects/spam/items/1/gold", "/api/v1/projects/spam/items/x"):
            r = client.post(path, content=big, headers=h)
            assert r.status_code == 413 and "max_body_bytes" in r.json()["error"], path


SUBMISSIONS = {
    "valid": [(VALID, {})],
    "bad-json": [(b'{"answers": {"spam": "ham"', {})],
    "not-an-object": [(b'["ham"]', {})],
    "answers-not-an-object": [(b'{"answers": ["ham"]}', {})],
    "wrong-answer-type": [(b'{"answers": {"spam": 5}}', {})],
    "active-ms-as-text": [(b'{"answers": {"spam": "ham"}, "active_ms": "900"}', {})],
    "active-ms-fraction": [(b'{"answers": {"spam": "ham"}, "active_ms": 1.5}', {})],
    "key-not-text": [(b'{"answers": {"spam": "ham"}, "idempotency_key": 7}', {})],
    "key-too-long": [(b'{"answers": {"spam": "ham"}, "idempotency_key": "' + b"k" * 201 + b'"}', {})],
    "unknown-field": [(b'{"answers": {"spam": "ham"}, "colour": "blue"}', {})],
    "unknown-question": [(b'{"answers": {"spam": "ham", "eggs": 1}}', {})],
    "too-large": [(b'{"answers": {"spam": "ham"}}' + b" " * MIB, {})],
    "missing-answers": [(b'{"active_ms": 5}', {})],
    "empty-body": [(b"", {})],
    "negative-active-ms": [(b'{"answers": {"spam": "ham"}, "active_ms": -1}', {})],
    "not-json-content-type": [(VALID, {"Content-Type": "text/plain"})],
    "replay-body-key": [(b'{"answers": {"spam": "ham"}, "idempotency_key": "k1"}', {})] * 2,
    "replay-header-key": [(VALID, {"Idempotency-Key": "k2"})] * 2,
    "replay-key-other-answers": [(VALID, {"Idempotency-Key": "k3"}),
                                 (b'{"answers": {"spam": "spam"}}', {"Idempotency-Key": "k3"})],
}


def comparable(response, item_id: int):
    """Status and JSON body, with what differs between two annotators' annotations taken out: ids,
    times, and ``active_ms``, which the server may bound by the time since the claim."""
    body = response.json() if response.content else None
    if isinstance(body, dict) and "item_id" in body:
        assert body["item_id"] == item_id
        body = {k: v for k, v in body.items() if k not in ("id", "item_id", "created_at", "updated_at", "active_ms")}
    return response.status_code, body


@pytest.mark.parametrize("case", SUBMISSIONS)
def test_fast_path_and_fastapi_answer_alike(case, settings, store, spam_project, make_annotator, monkeypatch):
    taken = []  # the bodies the fast path took as they were
    submission = hot._submission

    def spy(*args):
        parsed = submission(*args)
        if parsed is not None:
            taken.append(parsed)
        return parsed
    monkeypatch.setattr(hot, "_submission", spy)
    answers = {}
    with both_paths(settings, store) as clients:
        for name, client in clients.items():
            _, token = make_annotator(f"ann-{name}")
            item_id = claimed(client, token)
            answers[name] = [comparable(submit(client, token, item_id, body, **headers), item_id)
                             for body, headers in SUBMISSIONS[case]]
    assert answers["fast"] == answers["fastapi"]
    if case == "valid" or case.startswith("replay"):
        assert taken and answers["fast"][0][0] == 201  # the fast path did answer it
    if case == "too-large":
        assert answers["fast"][0][0] == 413
