"""Shared fixtures. Every store-touching test runs on SQLite and on PostgreSQL.

PostgreSQL: ``LABELWRIGHT_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``). Each test
gets its own schema, dropped afterwards. When the server is unreachable the PostgreSQL tests are
skipped and the run says so at the end; with ``CI`` set, an unreachable server is an error instead.

Under pytest-xdist (``scripts/test.sh`` runs two workers) each worker uses a database of its own, named
after the test database and the worker (``test_gw0``, ``test_gw1``), created on first use: advisory locks
and ``pg_stat_activity`` are per database, so one worker's tests cannot take another's locks.
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
from sqlalchemy.engine import make_url

from labelwright import cli_db
from labelwright.app import create_app
from labelwright.services import access, queue, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, list_projects
from labelwright.settings import Settings
from labelwright.store import Store
from labelwright.store.slots import PROJECT_OVERLAP, open_flag

# rich fixes a console's width from COLUMNS when the console is made, and reads COLUMNS afresh at each print
# otherwise. The CLI's consoles are made when labelwright.cli_db is first imported: were that inside a test's
# CliRunner(env={"COLUMNS": "80"}), every later test in the worker would get 80-column tables. So they are
# made here, before any test, and told to read COLUMNS at each print.
for _console in (cli_db.out, cli_db.console):
    _console.size = (None, None)  # type: ignore[assignment]

BASE_PG_URL = os.environ.get("LABELWRIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ... in a pytest-xdist worker, else None


def _worker_database_url(base: str, worker: str | None) -> str:
    """``base`` with its database named after the xdist ``worker`` (``test`` -> ``test_gw0``); ``base`` itself
    outside xdist."""
    if not worker:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database or 'postgres'}_{worker}").render_as_string(hide_password=False)


PG_URL = _worker_database_url(BASE_PG_URL, XDIST_WORKER)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
_pg_state: dict = {}
PG_SKIP = "PostgreSQL not reachable"


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    if "reason" not in _pg_state:
        try:
            if PG_URL != BASE_PG_URL:
                _create_worker_database()
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as e:  # noqa: BLE001 - any failure means "not available"
            _pg_state["reason"] = f"{type(e).__name__}: {e}".strip()
    return _pg_state["reason"]


def _create_worker_database() -> None:
    """Create this xdist worker's database (see the module's docstring) unless it exists."""
    name = make_url(PG_URL).database
    with psycopg.connect(BASE_PG_URL, connect_timeout=3, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:  # template0: nobody is ever connected to it, which CREATE DATABASE requires of its template
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        except psycopg.errors.DuplicateDatabase:
            pass  # another run on this machine with the same worker names made it first


def require_pg() -> None:
    reason = pg_available()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL at {PG_URL} is required in CI and is not reachable: {reason}")
    pytest.skip(f"{PG_SKIP} at {PG_URL}: {reason}")


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
    # Counted from the skip reports, which xdist's workers send to the process that prints the summary.
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if PG_SKIP in str(r.longrepr)]
    if skipped:
        first = skipped[0].longrepr
        reason = str(first[2]).removeprefix("Skipped: ") if isinstance(first, tuple) else PG_SKIP
        terminalreporter.write_sep("!", f"{len(skipped)} PostgreSQL tests were SKIPPED: {reason}", yellow=True)


# The slowest test modules and their seconds in one serial run of the suite (measured for issue 11 on a loaded
# 2-core machine; refresh from `--durations=0` when they change a lot). In a pytest-xdist worker the modules are
# ordered slowest first, the others keeping their order after them: scripts/test.sh hands whole modules to the
# workers in that order (--dist loadscope --no-loadscope-reorder), so the long ones start at once and the short
# ones even out the end, instead of one worker still running a long module alone after the other has finished.
SLOW_MODULES = {
    "cli/test_cli_newcomer.py": 258, "services/test_assist_service.py": 179, "services/test_concurrency.py": 154,
    "web/test_web_assist.py": 127, "web/test_web_owner_pages.py": 110, "services/test_crash.py": 110,
    "services/test_signin.py": 103, "deploy/test_multi_server.py": 100, "services/test_trust.py": 93,
    "web/test_web.py": 92, "deploy/test_serving_workers.py": 90, "web/test_web_review_gold.py": 89,
    "services/test_machines.py": 73, "api/test_limits.py": 73, "services/test_webhooks.py": 67,
    "services/test_workforce.py": 62, "browser/test_browser_label_instant.py": 55, "web/test_label_instant.py": 52,
    "browser/test_browser_owner.py": 45, "services/test_quality_service.py": 43, "browser/test_browser_review.py": 42,
    "services/test_next_fields.py": 41, "api/test_fuzz_api.py": 39, "services/test_policy.py": 37,
    "api/test_ids.py": 36, "api/test_access.py": 36, "web/test_quality_consensus_pages.py": 36,
    "services/test_redundancy_queue.py": 35, "deploy/test_deploy_backup.py": 35, "services/test_labels.py": 35,
    "test_code_checks.py": 34, "deploy/test_deploy_nginx.py": 30, "deploy/test_deploy_caddy.py": 30,
    "services/test_annotator_home.py": 30,
}


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist worker; every worker sorts the same collection the same way
        items.sort(key=lambda item: -SLOW_MODULES.get(item.nodeid.split("::", 1)[0].removeprefix("tests/"), 0))


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


def label_until_done(client, slug: str, who: dict[str, str], answer) -> tuple[dict[str, str], dict[str, int]]:
    """Each of ``who`` (name -> API token) in turn asks ``client`` (the test client or an ``httpx.Client``
    on a real server) for an item of project ``slug`` and answers the first question ``answer(name, item)``
    (``{question: answer}``), until no one gets work; returns ``({name: error} for those refused with 403,
    {name: answers given})``."""
    answered: dict[str, int] = dict.fromkeys(who, 0)
    refused: dict[str, str] = {}
    while True:
        worked = False
        for name, tok in who.items():
            if name in refused:
                continue
            r = client.post(f"/api/v1/projects/{slug}/next", headers=bearer(tok))
            if r.status_code == 403:
                refused[name] = r.json()["error"]
                continue
            if r.status_code == 204:
                continue
            assert r.status_code == 200, r.text
            item = r.json()
            s = client.post(f"/api/v1/items/{item['id']}/annotations", json={"answers": answer(name, item)},
                            headers=bearer(tok))
            if s.status_code == 403:  # paused while holding this item
                refused[name] = s.json()["error"]
                continue
            assert s.status_code == 201, s.text
            answered[name] += 1
            worked = True
        if not worked:
            return refused, answered


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
