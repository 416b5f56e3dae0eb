"""Sign-in attempts and passwords: limits per account and per address (shared by every server process),
argon2 off the event loop and outside write transactions, the current password for a change, API tokens
revoked by a new password, and the sign-in form's CSRF token. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from labelwright.app import create_app
from labelwright.errors import TooManyAttempts, Unauthorized
from labelwright.services import invites, signin
from labelwright.services import users as users_svc
from labelwright.settings import Settings
from labelwright.store import Store
from tests.conftest import bearer, post_login
from tests.server import ServerProcess


class SpyHasher(PasswordHasher):
    """Cheap argon2 parameters (tests only), recording where each hash and verify ran."""

    def __init__(self, writes: threading.local):
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.writes = writes
        self.calls: list[dict] = []

    def _record(self, what: str) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append({"what": what, "on_loop": on_loop, "in_write": getattr(self.writes, "depth", 0)})

    def hash(self, password, *, salt=None):
        self._record("hash")
        return super().hash(password, salt=salt)

    def verify(self, hash, password):
        self._record("verify")
        return super().verify(hash, password)


@pytest.fixture
def writes(store, monkeypatch):
    """Counts the write transactions open in each thread (``writes.depth``)."""
    depth = threading.local()
    real = store.write

    @contextmanager
    def write():
        depth.depth = getattr(depth, "depth", 0) + 1
        try:
            with real() as conn:
                yield conn
        finally:
            depth.depth -= 1

    monkeypatch.setattr(store, "write", write)
    return depth


@pytest.fixture(autouse=True)
def hasher(request, monkeypatch):
    if "server_db" in request.fixturenames:  # the real server hashes with the production parameters
        return None
    spy = SpyHasher(request.getfixturevalue("writes") if "store" in request.fixturenames else threading.local())
    monkeypatch.setattr(users_svc, "_hasher", spy)
    return spy


@pytest.fixture
def ana(store):
    user = users_svc.create_user(store, "ana", "annotator", "ana-password")
    return user, users_svc.create_api_token(store, user)


def client(app, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8000", client=(address, 50000))


def app_with(store, db_url, **limits):
    return create_app(Settings(db_url=db_url, webhook_worker=False, **limits), store=store)


def failures(store) -> int:
    with store.read() as conn:
        return conn.execute(text("SELECT count(*) FROM signin_failures")).scalar_one()


# ---- limits ---------------------------------------------------------------------------------------


def test_eleventh_attempt_is_refused_even_with_the_right_password(http, store, ana, hasher):
    for _ in range(10):
        r = post_login(http, "ana", "wrong-password", follow_redirects=False)
        assert r.status_code == 401, r.text
    checks = sum(c["what"] == "verify" for c in hasher.calls)
    r = post_login(http, "ana", "wrong-password", follow_redirects=False)
    assert r.status_code == 429 and "too many failed sign-ins" in r.text
    assert 800 <= int(r.headers["Retry-After"]) <= 900
    r = post_login(http, "ana", "ana-password", follow_redirects=False)
    assert r.status_code == 429 and "lw_session" not in r.cookies
    assert sum(c["what"] == "verify" for c in hasher.calls) == checks  # refused without looking
    assert http.get("/api/v1/me").status_code == 401


def test_per_address_limit_spans_accounts_and_spares_other_addresses(store, db_url, ana):
    users_svc.create_user(store, "bob", "annotator", "bob-password")
    app = app_with(store, db_url, login_failures_per_address=5)
    with client(app, "10.0.0.1") as a, client(app, "10.0.0.2") as b:
        for name in ("bob", "carl", "dora", "eve", "fred"):  # five accounts, three that do not exist
            assert post_login(a, name, "wrong-password", follow_redirects=False).status_code == 401
        r = post_login(a, "ana", "ana-password", follow_redirects=False)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert post_login(b, "ana", "ana-password", follow_redirects=False).status_code == 303


def test_the_limit_is_shared_by_two_server_processes(db_url, store, ana):
    """Two apps over two Store objects on one database: how two server processes look."""
    other = Store(db_url, pool_size=2)
    try:
        with client(app_with(store, db_url)) as one, client(app_with(other, db_url)) as two:
            for i in range(10):
                assert post_login(one if i % 2 else two, "ana", "wrong-password").status_code == 401
            assert post_login(one, "ana", "ana-password", follow_redirects=False).status_code == 429
            assert post_login(two, "ana", "ana-password", follow_redirects=False).status_code == 429
    finally:
        other.close()


def test_success_clears_the_accounts_failures_and_old_ones_are_pruned(store, ana):
    limits = signin.Limits(per_account=3, per_address=0, window_seconds=60)
    t0 = 1_000_000.0
    for i in range(2):
        with pytest.raises(Unauthorized):
            signin.sign_in(store, "ana", "wrong-password", "10.0.0.1", limits, now=t0 + i)
    assert signin.sign_in(store, "ana", "ana-password", "10.0.0.1", limits, now=t0 + 2).name == "ana"
    assert failures(store) == 0  # cleared by the right password
    for i in range(3):
        with pytest.raises(Unauthorized):
            signin.sign_in(store, "ana", "wrong-password", "10.0.0.9", limits, now=t0 + 10 + i)
    with pytest.raises(TooManyAttempts) as refused:
        signin.sign_in(store, "ana", "ana-password", "10.0.0.9", limits, now=t0 + 20)
    assert refused.value.retry_after == 50  # the oldest of the three leaves the window at t0 + 70

    with store.read() as conn:
        rows = conn.execute(text("SELECT account, user_id, address FROM signin_failures")).all()
    assert [tuple(r) for r in rows] == [("ana", users_svc.get_user(store, "ana").id, "10.0.0.9")] * 3
    with pytest.raises(Unauthorized):  # a name that does not exist counts as well (no user id)
        signin.sign_in(store, "bob", "wrong-password", "10.0.0.9", limits, now=t0 + 15)
    assert signin.sign_in(store, "ana", "ana-password", "10.0.0.9", limits, now=t0 + 71).name == "ana"
    with store.read() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT account, user_id FROM signin_failures"))] == [("bob", None)]
    with pytest.raises(Unauthorized):
        signin.sign_in(store, "nobody", "wrong-password", "10.0.0.9", limits, now=t0 + 500)
    with store.read() as conn:  # everything older than the window went with the next attempt
        assert [r[0] for r in conn.execute(text("SELECT account FROM signin_failures"))] == ["nobody"]


def test_api_password_change_counts_against_the_account(http, store, ana):
    _, tok = ana
    for _ in range(5):
        assert post_login(http, "ana", "wrong-password").status_code == 401
    for _ in range(5):
        r = http.post("/api/v1/me/password", json={"current": "wrong", "new": "new-password"}, headers=bearer(tok))
        assert r.status_code == 401 and r.json()["field"] == "current"
    r = http.post("/api/v1/me/password", json={"current": "ana-password", "new": "new-password"},
                  headers=bearer(tok))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and "too many" in r.json()["error"]
    users_svc.check_password(store, "ana", "ana-password")  # unchanged
    assert post_login(http, "ana", "ana-password").status_code == 429


# ---- argon2 off the event loop, outside write transactions ----------------------------------------


def test_argon2_runs_off_the_event_loop_and_outside_write_transactions(http, store, owner, hasher, db_url):
    ana = users_svc.create_user(store, "ana", "annotator", "ana-password")
    tok = users_svc.create_api_token(store, ana)
    assert post_login(http, "ana", "wrong-password").status_code == 401
    assert post_login(http, "nobody", "wrong-password").status_code == 401
    assert post_login(http, "ana", "ana-password", follow_redirects=False).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)
    r = http.post("/account/password", data={"csrf": csrf, "current": "ana-password", "password": "ana-password-2",
                                            "confirm": "ana-password-2", "keep_tokens": "1"})
    assert r.status_code == 200, r.text
    assert http.post("/api/v1/me/password", json={"current": "ana-password-2", "new": "ana-password-3",
                                                  "keep_tokens": True}, headers=bearer(tok)).status_code == 204
    secret, _ = invites.create_invite(store, owner[0])
    http.cookies.clear()
    r = http.post(f"/invite/{secret}", data={"name": "ivy", "password": "ivy-password", "confirm": "ivy-password"},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    reset = users_svc.create_reset_link_token(store, ana)
    r = http.post(f"/reset/{reset}", data={"password": "ana-password-4", "confirm": "ana-password-4"},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    users_svc.set_password(store, ana, "ana-password-5")
    r = http.post("/api/v1/users", json={"name": "una", "password": "una-password"}, headers=bearer(owner[1]))
    assert r.status_code == 201
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE password_hash IS NOT NULL")).scalar_one() == 4
    assert {c["what"] for c in hasher.calls} == {"hash", "verify"} and len(hasher.calls) >= 10
    assert not [c for c in hasher.calls if c["on_loop"]], "argon2 ran on the event loop"
    assert not [c for c in hasher.calls if c["in_write"]], "argon2 ran inside a write transaction"


@pytest.fixture
def server_db(db_url):
    """A database for a real server, with a user whose password hash has the production parameters."""
    store = Store(db_url, pool_size=2)
    try:
        store.migrate()
        user = users_svc.create_user(store, "ana", "annotator")
        with store.write() as conn:
            conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :i"),
                         {"h": PasswordHasher().hash("ana-password"), "i": user.id})
    finally:
        store.close()
    return db_url


def test_healthz_stays_fast_during_parallel_wrong_sign_ins(server_db):
    # no limits, so that every attempt costs a full argon2 check
    env = {"LABELWRIGHT_LOGIN_FAILURES_PER_ACCOUNT": "0", "LABELWRIGHT_LOGIN_FAILURES_PER_ADDRESS": "0",
           "LABELWRIGHT_WEBHOOK_WORKER": "0"}
    with ServerProcess(server_db, extra_env=env) as server:
        statuses: list[int] = []

        def guess():
            with httpx.Client(base_url=server.url, timeout=120) as c:
                token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
                for _ in range(2):
                    r = c.post("/login", data={"name": "ana", "password": "wrong-password", "csrf": token})
                    statuses.append(r.status_code)

        threads = [threading.Thread(target=guess) for _ in range(8)]
        for th in threads:
            th.start()
        latencies = []
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while any(th.is_alive() for th in threads):
                start = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
        for th in threads:
            th.join()
    assert statuses == [401] * 16
    assert len(latencies) >= 3, latencies
    # argon2 on the event loop held every request up for seconds (16 guesses: a 22 s median)
    assert statistics.median(latencies) < 1.0 and max(latencies) < 2.5, sorted(latencies)


# ---- passwords: the current one for a change, tokens revoked by a new one -------------------------


def _account_csrf(http) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/account").text).group(1)


def test_web_password_change_needs_the_current_password(http, store, ana):
    assert post_login(http, "ana", "ana-password", follow_redirects=False).status_code == 303
    page = http.get("/account").text
    assert 'name="current"' in page and 'name="keep_tokens"' in page
    new = {"csrf": _account_csrf(http), "password": "new-password", "confirm": "new-password"}
    r = http.post("/account/password", data=new)
    assert r.status_code == 422 and "current password" in r.text
    r = http.post("/account/password", data={**new, "current": "wrong-password"})
    assert r.status_code == 401 and "current password is wrong" in r.text
    assert failures(store) == 1  # counted like a sign-in
    users_svc.check_password(store, "ana", "ana-password")
    r = http.post("/account/password", data={**new, "current": "ana-password"})
    assert r.status_code == 200 and "Password saved" in r.text
    users_svc.check_password(store, "ana", "new-password")
    assert failures(store) == 0


def test_first_password_after_a_signin_link_needs_no_current_one(http, store):
    user = users_svc.create_user(store, "newbie", "annotator")
    link = users_svc.create_signin_link_token(store, user)
    assert http.get(f"/signin/{link}", follow_redirects=False).status_code == 303
    page = http.get("/account").text
    assert 'name="current"' not in page
    r = http.post("/account/password", data={"csrf": _account_csrf(http), "password": "first-password",
                                             "confirm": "first-password"})
    assert r.status_code == 200, r.text
    users_svc.check_password(store, "newbie", "first-password")
    assert 'name="current"' in http.get("/account").text  # from now on it asks


def test_api_change_revokes_tokens_unless_kept(http, store, ana):
    user, tok = ana
    spare = users_svc.create_api_token(store, user, label="script")
    r = http.post("/api/v1/me/password", json={"current": "ana-password", "new": "second-password",
                                               "keep_tokens": True}, headers=bearer(tok))
    assert r.status_code == 204
    assert http.get("/api/v1/me", headers=bearer(spare)).status_code == 200
    r = http.post("/api/v1/me/password", json={"current": "second-password", "new": "third-password"},
                  headers=bearer(tok))
    assert r.status_code == 204
    assert http.get("/api/v1/me", headers=bearer(tok)).status_code == 401  # this request's token too
    assert http.get("/api/v1/me", headers=bearer(spare)).status_code == 401
    assert not [t for t in users_svc.list_tokens(store, user) if t["active"]]


def test_web_change_revokes_tokens_unless_kept(http, store, ana):
    user, tok = ana
    other = users_svc.start_session(store, user, 1)[0]
    post_login(http, "ana", "ana-password")
    r = http.post("/account/password", data={"csrf": _account_csrf(http), "current": "ana-password",
                                             "password": "second-password", "confirm": "second-password",
                                             "keep_tokens": "1"})
    assert r.status_code == 200 and "revoked" not in r.text
    assert http.get("/api/v1/me", headers=bearer(tok)).status_code == 200
    assert users_svc.session_for_cookie(store, other) is None  # other sessions end, as before
    r = http.post("/account/password", data={"csrf": _account_csrf(http), "current": "second-password",
                                             "password": "third-password", "confirm": "third-password"})
    assert r.status_code == 200 and "API tokens are revoked" in r.text
    assert http.get("/api/v1/me", headers=bearer(tok)).status_code == 401
    assert http.get("/account").status_code == 200  # this session goes on


@pytest.mark.parametrize("keep", [False, True])
def test_reset_link_revokes_tokens_unless_kept(http, store, ana, keep):
    user, tok = ana
    link = users_svc.create_reset_link_token(store, user)
    assert 'name="keep_tokens"' in http.get(f"/reset/{link}").text
    form = {"password": "reset-password", "confirm": "reset-password", **({"keep_tokens": "1"} if keep else {})}
    assert http.post(f"/reset/{link}", data=form, follow_redirects=False).status_code == 303
    assert (http.get("/api/v1/me", headers=bearer(tok)).status_code == 200) == keep
    users_svc.check_password(store, "ana", "reset-password")


# ---- the sign-in form's CSRF token ----------------------------------------------------------------


def test_login_post_without_its_csrf_token_is_refused(http, store, ana):
    r = http.post("/login", data={"name": "ana", "password": "ana-password"}, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text and "lw_session" not in r.cookies
    page = http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert page.cookies.get("lw_login_csrf") == token
    r = http.post("/login", data={"name": "ana", "password": "ana-password", "csrf": token + "x"},
                  follow_redirects=False)
    assert r.status_code == 403
    http.cookies.clear()  # a forged form: the right field, but not this browser's cookie
    r = http.post("/login", data={"name": "ana", "password": "ana-password", "csrf": token},
                  follow_redirects=False)
    assert r.status_code == 403
    assert failures(store) == 0  # refused before any password check
    assert post_login(http, "ana", "ana-password", follow_redirects=False).status_code == 303
