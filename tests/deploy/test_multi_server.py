"""Two real ``labelwright serve`` processes on one database (a SQLite file, a PostgreSQL schema): what is
changed through server A holds on server B from the next request. Nothing the servers remember between
requests may make B act on an older state: settings, expiry, paused and blocked annotators, webhooks, and
sign-in failures (the rate limit counts in the database)."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sqlalchemy import text

from labelwright.services import users
from labelwright.store import Store
from tests.conftest import SPAM_SCHEMA
from tests.server import ServerProcess, seed

pytestmark = pytest.mark.slow

ENV = {"LABELWRIGHT_WEBHOOK_WORKER": "0", "LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0",
       "LABELWRIGHT_WEBHOOK_ALLOW_PRIVATE": "1", "LABELWRIGHT_LOGIN_FAILURES_PER_ACCOUNT": "3"}


@pytest.fixture
def pair(db_url):
    """``(A, B, seeded)``: two servers on one database with a project of 20 items and annotators ann0..ann2."""
    seeded = seed(db_url, SPAM_SCHEMA, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(20)],
                  ["ann0", "ann1", "ann2"])
    with ServerProcess(db_url, extra_env=ENV) as a, ServerProcess(db_url, extra_env=ENV) as b:
        assert a.port != b.port
        yield a, b, seeded


def client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_settings_expiry_pause_and_block_through_a_hold_on_b(pair):
    a, b, s = pair
    slug = s["project"]
    owner_a, owner_b = client(a, s["owner"]), client(b, s["owner"])
    ann = {n: client(b, t) for n, t in s["annotators"].items()}
    try:
        assert owner_b.get(f"/projects/{slug}").json()["schema"]["instructions"] == ""  # B has the schema cached
        r = owner_a.patch(f"/projects/{slug}/settings", json={"instructions": "Is it spam?", "lease_seconds": 120})
        assert r.status_code == 200, r.text
        got = owner_b.get(f"/projects/{slug}").json()
        assert (got["schema"]["instructions"], got["lease_seconds"]) == ("Is it spam?", 120)
        # a lease B hands out now lasts the new 120 s
        before = time.time()
        item = ann["ann0"].post(f"/projects/{slug}/next").json()
        assert before + 110 < item["lease_expires_at"] < time.time() + 121

        r = owner_a.post(f"/projects/{slug}/annotators/ann1/pause", json={"reason": "check your answers"})
        assert r.status_code in (200, 201), r.text
        assert ann["ann1"].post(f"/projects/{slug}/next").status_code == 403
        r = owner_a.post(f"/projects/{slug}/annotators/ann1/resume")
        assert r.status_code == 200, r.text
        assert ann["ann1"].post(f"/projects/{slug}/next").status_code == 200

        assert ann["ann2"].post(f"/projects/{slug}/next").status_code == 200
        r = owner_a.post(f"/projects/{slug}/members/ann2/block", json={"reason": "spam"})
        assert r.status_code == 200 and r.json()["leases_released"] == 1, r.text
        assert ann["ann2"].post(f"/projects/{slug}/next").status_code == 403

        r = owner_a.post(f"/projects/{slug}/expire")
        assert r.status_code == 200, r.text
        r = ann["ann1"].post(f"/projects/{slug}/next")  # an expired project hands out nothing
        assert r.status_code == 204, r.text
        got = owner_b.get(f"/projects/{slug}").json()["schema"]
        assert got["expires_at"] is not None and got["instructions"] == "Is it spam?"  # both changes kept
    finally:
        for c in (owner_a, owner_b, *ann.values()):
            c.close()


def _events(db_url: str, project_id: int) -> list[str]:
    store = Store(db_url, pool_size=1)
    try:
        with store.read() as conn:
            return [r[0] for r in conn.execute(text("SELECT kind FROM events WHERE project_id = :p ORDER BY id"),
                                               {"p": project_id})]
    finally:
        store.close()


def _annotate_one(c: httpx.Client, slug: str) -> None:
    item = c.post(f"/projects/{slug}/next")
    assert item.status_code == 200, item.text
    r = c.post(f"/items/{item.json()['id']}/annotations", json={"answers": {"spam": "ham"}})
    assert r.status_code == 201, r.text


def test_a_webhook_added_through_a_gets_the_next_submission_through_b(pair, db_url):
    a, b, s = pair
    slug, pid = s["project"], s["project_id"]
    owner_a = client(a, s["owner"])
    ann_b = client(b, s["annotators"]["ann0"])
    try:
        _annotate_one(ann_b, slug)  # B has now read (and cached) "no webhook listens"
        assert _events(db_url, pid) == []
        r = owner_a.post("/webhooks", json={"url": "http://127.0.0.1:9/hook", "project": slug,
                                            "kinds": ["annotation.submitted"]})
        assert r.status_code == 201, r.text
        _annotate_one(ann_b, slug)
        assert _events(db_url, pid) == ["annotation.submitted"]
        assert owner_a.patch(f"/webhooks/{r.json()['id']}", json={"active": False}).status_code == 200
        _annotate_one(ann_b, slug)
        assert _events(db_url, pid) == ["annotation.submitted"]  # B stopped at once too
    finally:
        owner_a.close()
        ann_b.close()


def _login(base: str, name: str, password: str) -> int:
    with httpx.Client(base_url=base, timeout=30) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        return c.post("/login", data={"name": name, "password": password, "next": "/", "csrf": token}).status_code


def test_sign_in_failures_through_a_count_on_b(pair, db_url):
    a, b, _s = pair
    store = Store(db_url, pool_size=1)
    try:
        users.create_user(store, "dora", "annotator", "dora-password-1")
    finally:
        store.close()
    assert _login(b.url, "dora", "dora-password-1") == 303  # right password: signed in through B
    for _ in range(3):
        assert _login(a.url, "dora", "wrong guess") == 401
    assert _login(b.url, "dora", "dora-password-1") == 429  # B refuses, even the right password
    assert _login(a.url, "dora", "dora-password-1") == 429
