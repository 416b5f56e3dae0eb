"""The hot path answers exactly as the FastAPI pipeline does.

:class:`labelwright.api.hot.HotRoutes` serves the plain form of ``POST /projects/{p}/next`` and
``POST /items/{id}/annotations`` without FastAPI. Here two apps are built by the same factory on two fresh,
identically seeded databases; one is built without HotRoutes (``create_app(..., hot_routes=False)``),
so every request goes down FastAPI's pipeline. The same requests (good ones, wrong tokens, other
projects, unknown items, malformed and mistyped bodies, idempotency replays, duplicate answers, leases
that are not held or were reclaimed, paused and blocked annotators, full and expired projects...) go to
both, in the same order, and must get the same status, the same content type and the same JSON body
(timestamps aside, which differ by when each ran; ids agree, the databases being seeded alike). Every
answer is also checked against the status the scenario expects, and the hot app must have answered a good
share of the requests itself, so the comparison cannot pass by both sides taking the same road.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from labelwright.api.hot import HotRoutes
from labelwright.app import create_app
from labelwright.services import access, pauses, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, expire, get_project
from labelwright.settings import Settings
from labelwright.store import Store
from tests.conftest import SPAM_SCHEMA, PgSchema, require_pg

_VOLATILE = {"lease_expires_at", "created_at", "updated_at", "reference"}
GOOD = {"answers": {"spam": "spam"}}


@dataclass
class Step:
    """One request (``who`` is a user name or a literal Authorization header) or, with ``do``, a change made
    on the store beside the API (the same on both sides). ``path`` may name ``{p}`` (the scenario's project),
    ``{item}`` (the item the last 200 ``next`` returned) and ``{i0}``, ``{i1}``... (its items by position)."""
    path: str = ""
    who: str | bytes | None = "ann"
    json: Any = None
    content: bytes | None = None
    headers: list = field(default_factory=list)
    expect: int | None = None
    do: Callable | None = None


Who = str | bytes | None


def nxt(who: Who = "ann", expect: int | None = 200, path: str = "/api/v1/projects/{p}/next", **kw) -> Step:
    return Step(path=path, who=who, expect=expect, **kw)


def sub(body: Any = GOOD, who: Who = "ann", expect: int | None = 201, item: str = "{item}", **kw) -> Step:
    raw = kw.pop("raw", None)
    headers = kw.pop("headers", [])
    if raw is not None:
        return Step(path=f"/api/v1/items/{item}/annotations", who=who, content=raw, expect=expect,
                    headers=headers or [("content-type", "application/json")], **kw)
    return Step(path=f"/api/v1/items/{item}/annotations", who=who, json=body, expect=expect, headers=headers, **kw)


def do(fn: Callable) -> Step:
    return Step(do=fn)


def _lapse_leases(store: Store, project, names: dict) -> None:
    with store.write() as conn:
        conn.execute(text("UPDATE leases SET created_at = created_at - 1000, expires_at = :t WHERE project_id = :p"),
                     {"t": time.time() - 1, "p": project.id})


def _pause(name):
    return lambda store, project, names: pauses.pause(store, project, users.get_user(store, name))


def _block(name):
    return lambda store, project, names: access.block(store, project, name)


def _expire(store, project, names):
    expire(store, project)


def _revoke_tokens(name):
    def revoke(store, project, names):
        user = users.get_user(store, name)
        with store.write() as conn:
            conn.execute(text("UPDATE tokens SET revoked_at = :t WHERE user_id = :u AND kind = 'api'"),
                         {"t": time.time(), "u": user.id})
    return revoke


def _disable(name):
    return lambda store, project, names: users.update_user(store, name, disabled=True)


LONG_KEY = "k" * 200
# (name, schema changes, number of items, steps)
SCENARIOS: list[tuple[str, dict, int, list[Step]]] = [
    ("claim and answer", {}, 3, [
        nxt(), nxt(), sub(), sub(expect=409), nxt(), sub({"answers": {"spam": "ham"}, "active_ms": 1500}),
        nxt("bob"), sub(who="bob"), nxt("bob"), sub({"answers": {"spam": "spam"}, "active_ms": 0}, who="bob"),
    ]),
    ("idempotency", {}, 6, [
        nxt(), sub({**GOOD, "idempotency_key": "k1"}), sub({**GOOD, "idempotency_key": "k1"}, expect=200),
        sub({"answers": {"spam": "ham"}, "idempotency_key": "k1"}, expect=200),
        sub(GOOD, headers=[("idempotency-key", "k1")], expect=200),
        nxt(), sub({**GOOD, "idempotency_key": "k1"}, expect=409),
        sub(GOOD, headers=[("idempotency-key", "h1")]), sub(GOOD, headers=[("idempotency-key", "h1")], expect=200),
        nxt(), sub({**GOOD, "idempotency_key": "b2"}, headers=[("idempotency-key", "h2")]),
        sub(GOOD, headers=[("idempotency-key", "b2")], expect=200),
        nxt(), sub({**GOOD, "idempotency_key": LONG_KEY + "x"}, expect=422),
        sub({**GOOD, "idempotency_key": 12}, expect=422), sub({**GOOD, "idempotency_key": ""}),
        nxt(), sub({**GOOD, "idempotency_key": LONG_KEY}), sub({**GOOD, "idempotency_key": LONG_KEY}, expect=200),
        sub({**GOOD, "idempotency_key": None}, expect=409),
    ]),
    ("credentials", {}, 3, [
        nxt(None, expect=401), nxt("Bearer nope", expect=401), nxt("Bearer", expect=401), nxt("Bearer  ", expect=401),
        nxt("Basic YW5uOnB3", expect=401), nxt("Token abc", expect=401), nxt("bearer {ann}"),
        nxt("BEARER   {ann}  "), nxt("Bearer {ann}x", expect=401),
        nxt("eve", expect=403), nxt("olive"), sub(who="olive"),
        nxt(), sub(who=None, expect=401), sub(who="Bearer nope", expect=401), sub(who="eve", expect=404),
        sub(who="bob", expect=409), sub(who="Bearer {ann} extra", expect=401), sub(),
        nxt(headers=[("authorization", "Bearer nope")], expect=401),  # two headers: the first one counts
        nxt(headers=[("authorization", "Basic YW5uOnB3")], expect=401),
        nxt(headers=[("authorization", "Bearer")], expect=401),
        nxt(b"Bearer {ann}\xa0", expect=None), nxt(b"Bearer \xa0{ann}", expect=None), nxt("Bearer\t{ann}", expect=401),
        sub(who=b"Bearer {ann}\x85", expect=None),
        nxt("dan"), do(_revoke_tokens("dan")), nxt("dan", expect=401), sub(who="dan", expect=401),
        nxt("fay"), do(_disable("fay")), nxt("fay", expect=401), sub(who="fay", expect=401),
    ]),
    ("bodies", {}, 3, [
        nxt(), sub(raw=b"{", expect=422), sub(raw=b"", expect=422), sub(raw=b"[]", expect=422),
        sub(raw=b"null", expect=422), sub(raw=b'"answers"', expect=422), sub({}, expect=422),
        sub({"answers": []}, expect=422), sub({"answers": "spam"}, expect=422), sub({"answers": None}, expect=422),
        sub({"answers": {}}, expect=422), sub({"answers": {"spam": "eggs"}}, expect=422),
        sub({"answers": {"spam": 1}}, expect=422), sub({"answers": {"spam": ["spam"]}}, expect=422),
        sub({"answers": {"spam": "spam", "other": 1}}, expect=422),
        sub({"answers": {"spam": {"deep": [[[[[]]]]]}}}, expect=422),
        sub({**GOOD, "active_ms": -1}, expect=422), sub({**GOOD, "active_ms": "5"}, expect=None),
        sub({**GOOD, "active_ms": 5.5}, expect=422), sub({**GOOD, "active_ms": None}, expect=422),
        sub({**GOOD, "active_ms": True}, expect=None),
        sub(raw=b'{"answers": {"spam": "spam"}, "active_ms": NaN}', expect=422),
        sub(raw=b'{"answers": {"spam": "spam"}, "active_ms": 1e400}', expect=422),
        sub(raw=b'{"answers": {"spam": "spam"}, "active_ms": 123456789012345678901234567890}', expect=None),
        sub(raw=b'{"answers": {"spam": "spam"}, "active_ms": 5.0}', expect=None),
        nxt(), sub(raw=b'{"answers": {"spam": "eggs"}, "answers": {"spam": "spam"}}', expect=201),
        nxt(), sub(raw=b'\xef\xbb\xbf{"answers": {"spam": "spam"}}', expect=None),
    ]),
    ("content types", {}, 5, [
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', headers=[("content-type", "text/plain")], expect=None),
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', expect=None,
                   headers=[("content-type", "application/x-www-form-urlencoded")]),
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', headers=[("content-type", "APPLICATION/JSON; charset=utf-8")]),
        nxt(), sub(raw='{"answers": {"spam": "spam"}}'.encode("utf-16"),
                   headers=[("content-type", "application/json")], expect=None),
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', headers=[("content-type", "application/merge-patch+json")],
                   expect=None),
    ]),
    ("repeated headers", {}, 4, [
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', expect=None,
                   headers=[("content-type", "text/plain"), ("content-type", "application/json")]),
        nxt(), sub(raw=b'{"answers": {"spam": "spam"}}', expect=None,
                   headers=[("content-type", "application/json"), ("content-type", "text/plain")]),
        nxt(), sub(GOOD, headers=[("idempotency-key", "r1"), ("idempotency-key", "r2")]),
        sub(GOOD, headers=[("idempotency-key", "r1")], expect=None),
        sub(GOOD, headers=[("idempotency-key", "r2")], expect=None),
    ]),
    ("extra fields", {}, 3, [
        nxt(), sub({**GOOD, "extra": 1}, expect=None), nxt(), sub({**GOOD, "user_id": 1, "item_id": 2}, expect=None),
        nxt(), sub({**GOOD, "active_ms": 10, "idempotency_key": "e1", "project": "x"}, expect=None),
    ]),
    ("items", {}, 3, [
        sub(item="{i0}", expect=409), sub(item="999999", expect=404), sub(item="0", expect=404),
        sub(item="000", expect=404), sub(item="-1", expect=None), sub(item="abc", expect=422),
        sub(item="999999999999999999", expect=404), sub(item="9223372036854775807", expect=404),
        sub(item="9223372036854775808", expect=404), sub(item="1" * 40, expect=404),
        sub(item="{i0}/", expect=None), sub(item="{other}", expect=404),
        nxt(), sub(item="{i1}", expect=409), sub(item="{i0}", who="bob", expect=409), sub(),
        nxt(path="/api/v1/projects/nope/next", expect=404), nxt(path="/api/v1/projects/{pid}/next", expect=None),
        nxt(path="/api/v1/projects/%70{p}/next", expect=404), nxt(path="/api/v1/projects/" + "x" * 3000 + "/next",
                                                                  expect=404),
        nxt(path="/api/v1/projects/{p}/next/", expect=None), nxt(path="/api/v1/projects/{p}/next?x=1"),
        nxt(path="/api/v1/projects/%E2%9C%93/next", expect=404),
        nxt(path="/api/v1/projects/{other_p}/next", expect=403),
        nxt(json={"ignored": True}),
    ]),
    ("paused and blocked", {}, 4, [
        nxt(), nxt("bob"), do(_pause("ann")), nxt(expect=403), sub(expect=403),
        do(_block("bob")), nxt("bob", expect=None), sub(who="bob", expect=None),
    ]),
    ("lapsed leases and full items", {"overlap": 1}, 2, [
        nxt(), do(_lapse_leases), nxt("bob"), sub(item="{i0}", expect=409), sub(who="bob"),
        nxt(), do(_lapse_leases), sub(expect=201), nxt("bob", expect=204), nxt(expect=204),
        sub(item="{i1}", who="carl", expect=409), nxt("carl", expect=204),
    ]),
    ("expired project", {}, 2, [nxt(), do(_expire), nxt("bob", expect=204), sub()]),
    ("qualification", {"qualification": {"size": 1, "pass_mark": 1.0}, "gold": {"rate": 0}}, 3, [
        nxt(), sub(expect=None), nxt(expect=None), sub(item="{i2}", expect=None),
    ]),
    ("adaptive redundancy", {"overlap": None, "redundancy": {"min": 1, "max": 3, "confidence": 0.9}}, 2, [
        nxt(), sub(), nxt("bob"), sub({"answers": {"spam": "ham"}}, who="bob"), nxt("carl", expect=None),
    ]),
]


def _seed_users(store: Store) -> dict[str, str]:
    tokens = {}
    for name, role in (("olive", "owner"), ("ann", "annotator"), ("bob", "annotator"), ("carl", "annotator"),
                       ("dan", "annotator"), ("eve", "annotator"), ("fay", "annotator")):
        tokens[name] = users.create_api_token(store, users.create_user(store, name, role, None))
    return tokens


def _project(store: Store, n: int, changes: dict, n_items: int, members=("ann", "bob", "carl", "dan", "fay")):
    schema = {k: v for k, v in {**SPAM_SCHEMA, "slug": f"s{n}", **changes}.items() if v is not None}
    project = create_project(store, schema, created_by=1)
    records = [{"id": f"c{i}", "text": f"comment {i}"} for i in range(n_items)]
    if "qualification" in changes:  # the first item is the test's one gold item
        records[0]["gold"] = "spam"
    add_items(store, project, records)
    for name in members:
        access.set_member(store, project, name, "annotator")
    return get_project(store, project.id)


class Side:
    """One app, its store, its tokens and what the scenario has seen so far."""

    def __init__(self, url: str, hot: bool):
        self.store = Store(url, pool_size=3)
        self.store.migrate()
        self.tokens = _seed_users(self.store)
        app = create_app(Settings(db_url=url, assist_worker=False, machine_worker=False, webhook_worker=False),
                         store=self.store, hot_routes=hot)
        assert isinstance(app.front.app, HotRoutes) == hot
        self.client = TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)
        self.other = _project(self.store, 0, {}, 1, members=())  # a project ann is no member of
        self.other_item = _items(self.store, self.other)[0]

    def begin(self, n: int, changes: dict, n_items: int):
        self.project = _project(self.store, n, changes, n_items)
        self.items = _items(self.store, self.project)
        self.last_item = None

    def send(self, step: Step):
        if step.do is not None:
            step.do(self.store, self.project, self.tokens)
            return None
        with self.store.write() as conn:  # the lease held 300 s: active_ms is what was sent, on both sides
            conn.execute(text("UPDATE leases SET created_at = created_at - 300 WHERE created_at > :t"),
                         {"t": time.time() - 300})
        values = {"p": self.project.slug, "pid": self.project.id, "item": self.last_item,
                  "other": self.other_item, "other_p": self.other.slug,
                  **{f"i{k}": i for k, i in enumerate(self.items)}}
        headers = list(step.headers)
        if isinstance(step.who, bytes):  # a literal header, bytes beyond ASCII and all
            headers.append((b"authorization", step.who.replace(b"{ann}", self.tokens["ann"].encode())))
        elif step.who is not None:
            auth = step.who if " " in step.who or step.who[0].isupper() else f"Bearer {self.tokens[step.who]}"
            headers.append(("authorization", auth.format(**self.tokens)))
        kw: dict = {"headers": headers}
        if step.content is not None:
            kw["content"] = step.content
        elif step.json is not None:
            kw["json"] = step.json
        r = self.client.post(step.path.format(**values), **kw)
        if r.status_code == 200 and step.path.endswith("/next"):
            self.last_item = r.json()["id"]
        return r


def _items(store: Store, project) -> list[int]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p ORDER BY id"),
                                           {"p": project.id})]


def _seen(r) -> tuple:
    try:
        body: Any = _scrub(r.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = r.content
    return r.status_code, r.headers.get("content-type"), body


def _scrub(value):
    if isinstance(value, dict):
        return {k: "<t>" if k in _VOLATILE else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


@pytest.fixture(params=["sqlite", "postgresql"])
def twin_urls(request, tmp_path):
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / 'hot.db'}", f"sqlite:///{tmp_path / 'pipeline.db'}"]
        return
    require_pg()
    schemas = [PgSchema(), PgSchema()]
    try:
        yield [s.url for s in schemas]
    finally:
        for s in schemas:
            s.drop()


def test_hot_path_answers_like_the_pipeline(twin_urls, monkeypatch):
    served = []
    answer = HotRoutes._answer

    async def counting(send, work, path):
        served.append(True)
        return await answer(send, work, path)
    monkeypatch.setattr(HotRoutes, "_answer", staticmethod(counting))

    hot, pipeline = Side(twin_urls[0], hot=True), Side(twin_urls[1], hot=False)
    differences, unexpected, requests, by_hot = [], [], 0, 0
    try:
        for n, (name, changes, n_items, steps) in enumerate(SCENARIOS, start=1):
            hot.begin(n, changes, n_items)
            pipeline.begin(n, changes, n_items)
            for k, step in enumerate(steps):
                before = len(served)
                a = hot.send(step)
                b = pipeline.send(step)
                if a is None:
                    continue
                requests += 1
                by_hot += len(served) > before
                where = f"{name} #{k} ({step.path or step.do}, who={step.who})"
                if _seen(a) != _seen(b):
                    differences.append(f"{where}:\n  hot:      {_seen(a)}\n  pipeline: {_seen(b)}")
                if step.expect is not None and b.status_code != step.expect:
                    unexpected.append(f"{where}: expected {step.expect}, got {b.status_code} {b.text[:300]}")
    finally:
        for side in (hot, pipeline):
            side.client.close()
            side.store.close()
    assert not differences, f"{len(differences)} of {requests} answers differ:\n" + "\n".join(differences)
    assert not unexpected, "\n".join(unexpected)
    assert by_hot >= requests // 3, f"the hot path answered only {by_hot} of {requests} requests itself"


def test_a_bug_is_answered_alike_on_both_paths(tmp_path, monkeypatch, caplog):
    """An unexpected error (a bug) in the work of a hot route: HotRoutes, in front of FastAPI's error
    middleware, answers it as the app's handler does (500, the API's JSON with a reference to quote, the
    traceback logged under that reference and not sent)."""
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of a bug")
    monkeypatch.setattr("labelwright.services.queue.claim_next", broken)
    answers = {}
    for hot in (True, False):
        side = Side(f"sqlite:///{tmp_path / f'bug-{hot}.db'}", hot=hot)
        side.begin(1, {}, 3)
        caplog.clear()
        r = side.client.post(f"/api/v1/projects/{side.project.slug}/next",
                             headers={"Authorization": f"Bearer {side.tokens['ann']}"})
        assert r.status_code == 500, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert "secret detail" not in r.text
        ref = body.pop("reference")
        assert len(ref) == 8 and int(ref, 16) >= 0
        logged = [rec for rec in caplog.records if ref in rec.getMessage()]
        assert logged and logged[0].exc_info[0] is RuntimeError
        answers[hot] = body
        side.store.close()
    assert answers[True] == answers[False] == {"error": "internal error: the server's log has the details"}
