"""Shared fixtures. Every store-touching test runs on SQLite and on PostgreSQL.

PostgreSQL: ``LABELWRIGHT_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``). Each test
gets its own schema, dropped afterwards. When the server is unreachable the PostgreSQL tests are
skipped and the run says so at the end; with ``CI`` set, an unreachable server is an error instead.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import text

from labelwright.app import create_app
from labelwright.services import access, queue, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, list_projects
from labelwright.settings import Settings
from labelwright.store import Store
from labelwright.store.slots import PROJECT_OVERLAP, open_flag

PG_URL = os.environ.get("LABELWRIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
_pg_state: dict = {}


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    if "reason" not in _pg_state:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as e:  # noqa: BLE001 - any failure means "not available"
            _pg_state["reason"] = f"{type(e).__name__}: {e}".strip()
    return _pg_state["reason"]


def require_pg() -> None:
    reason = pg_available()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL at {PG_URL} is required in CI and is not reachable: {reason}")
    _pg_state["skipped"] = _pg_state.get("skipped", 0) + 1
    pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {reason}")


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing():
    """argon2id with its cheapest parameters in the tests: the production cost (a quarter of a second of CPU
    per hash and per check) is a defence against stolen hashes, not something the tests exercise, and it
    was minutes of the suite. Hashes carry their parameters, so server processes the tests start check these
    cheaply too. tests/services/test_users_hashing.py checks that the real setting is the library's default."""
    real = users._hasher
    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    users._hasher = real


def pytest_terminal_summary(terminalreporter):
    if _pg_state.get("skipped"):
        terminalreporter.write_sep("!", f"{_pg_state['skipped']} PostgreSQL tests were SKIPPED: "
                                        f"no server at {PG_URL} ({_pg_state['reason']})", yellow=True)


class PgSchema:
    """A throw-away PostgreSQL schema and a URL whose connections use it."""

    def __init__(self):
        self.name = "lw_" + uuid.uuid4().hex[:12]
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        sep = "&" if "?" in base else "?"
        self.url = f"{base}{sep}options=-csearch_path%3D{self.name}"

    def drop(self):
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lw.db'}"
        return
    require_pg()
    schema = PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def store(db_url):
    s = Store(db_url, pool_size=5)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def settings(db_url):
    # The assist and machine-annotator workers stay off in tests, which run their steps themselves (with the
    # clock they want); tests/services/test_assist_service.py starts them on purpose.
    return Settings(db_url=db_url, assist_worker=False, machine_worker=False)


@pytest.fixture
def app(settings, store):
    return create_app(settings, store=store)


@pytest.fixture
def http(app):
    """An in-process HTTP client (httpx, through Starlette's TestClient)."""
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def owner(store):
    user = users.create_user(store, "olive", "owner", "owner-password")
    return user, users.create_api_token(store, user)


@pytest.fixture
def make_annotator(store):
    """``make(name, password=None, role="annotator", member=True)``: a user and an API token. With
    ``member`` they join, with their role, every project that exists at that moment (projects made
    later need :func:`join`)."""
    def make(name: str, password: str | None = None, role: str = "annotator", member: bool = True):
        user = users.create_user(store, name, role, password)
        if member and role != "owner":
            join(store, name, role="annotator" if role == "annotator" else role)
        return user, users.create_api_token(store, user)
    return make


def join(store, name: str, projects=None, role: str = "annotator") -> None:
    """Make user ``name`` a member of ``projects`` (default: every project) with ``role``."""
    for p in projects if projects is not None else list_projects(store):
        access.set_member(store, p, name, role)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def post_login(http, name: str, password: str, next: str = "/", **kwargs):
    """Sign in through the form as a browser does: ``GET /login`` (which sets the form's CSRF cookie), then
    ``POST /login`` with the form's ``csrf`` field. Returns the POST's response."""
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
    return http.post("/login", data={"name": name, "password": password, "next": next, "csrf": token}, **kwargs)


SPAM_SCHEMA = {
    "name": "Spam test",
    "slug": "spam",
    "overlap": 2,
    "id_field": "id",
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}


@pytest.fixture
def spam_project(store, owner):
    p = create_project(store, SPAM_SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(10)])
    return p


def hand_out(store, item_id: int, user, now: float | None = None, seconds: float = 600) -> None:
    """Give ``user`` a lease on one chosen item, as a claim would (for tests that replay real datasets
    answer by answer, where the queue's order is not the data's): the slot is taken the same way."""
    now = time.time() if now is None else now
    with store.write() as conn:
        project_id = conn.execute(text(
            "UPDATE items SET n_assigned = n_assigned + 1, is_open = "
            + open_flag("n_assigned + 1", "target", PROJECT_OVERLAP) + " WHERE id = :i RETURNING project_id"),
            {"i": item_id}).scalar_one()
        conn.execute(text("INSERT INTO leases (item_id, user_id, project_id, created_at, expires_at) "
                          "VALUES (:i, :u, :p, :now, :e)"),
                     {"i": item_id, "u": user.id, "p": project_id, "now": now - seconds / 2, "e": now + seconds / 2})


def seed_answer(store, item_id: int, user, answers: dict, **kwargs):
    """Hand ``item_id`` to ``user`` and submit ``answers`` through the queue (see :func:`hand_out`)."""
    hand_out(store, item_id, user, now=kwargs.get("now"))
    return queue.submit(store, item_id, user, answers, **kwargs)


def held_for(store, item_id: int, user_id: int, seconds: float) -> None:
    """Make ``user_id``'s lease on ``item_id`` look handed out ``seconds`` ago (and live): for tests of
    pay and time, whose answers would otherwise come milliseconds after the claim."""
    now = time.time()
    with store.write() as conn:
        conn.execute(text("UPDATE leases SET created_at = :s, expires_at = :e WHERE item_id = :i AND user_id = :u"),
                     {"s": now - seconds, "e": now + 600, "i": item_id, "u": user_id})


def saved_ago(store, annotation_id: int, seconds: float) -> None:
    """Make an annotation look last saved ``seconds`` ago (an amend may claim at most that much time)."""
    with store.write() as conn:
        conn.execute(text("UPDATE annotations SET updated_at = :t WHERE id = :a"),
                     {"t": time.time() - seconds, "a": annotation_id})
