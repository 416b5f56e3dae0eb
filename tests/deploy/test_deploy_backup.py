"""The backup and restore commands of docs/deploy.md, run as documented while a server takes submissions:
SQLite's ``.backup`` and ``VACUUM INTO`` through the sqlite3 shell, PostgreSQL's ``pg_dump -Fc`` and
``pg_restore`` into a fresh database. Each copy is a consistent database labelwright opens and serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid

import httpx
import psycopg
import pytest
from sqlalchemy import text

from labelwright.store import Store
from tests.conftest import PG_URL, SPAM_SCHEMA, PgSchema, require_pg
from tests.server import ServerProcess, item_state_violations, seed

pytestmark = pytest.mark.slow

ENV = {"LABELWRIGHT_WEBHOOK_WORKER": "0", "LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"}


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is needed in CI")
        pytest.skip(f"no {binary} here")
    return path


class Writer(threading.Thread):
    """Annotators submitting through the server until stopped; counts what was acknowledged."""

    def __init__(self, url: str, seeded: dict):
        super().__init__(daemon=True)
        self.url, self.seeded = url, seeded
        self.stop = threading.Event()
        self.acknowledged = 0
        self.errors: list[str] = []

    def run(self) -> None:
        clients = [httpx.Client(base_url=f"{self.url}/api/v1", timeout=30, headers={"Authorization": f"Bearer {t}"})
                   for t in self.seeded["annotators"].values()]
        slug = self.seeded["project"]
        try:
            while not self.stop.is_set():
                for c in clients:
                    item = c.post(f"/projects/{slug}/next")
                    if item.status_code == 204:
                        return
                    r = c.post(f"/items/{item.json()['id']}/annotations", json={"answers": {"spam": "ham"}})
                    if r.status_code != 201:
                        self.errors.append(f"{r.status_code} {r.text}")
                        return
                    self.acknowledged += 1
        finally:
            for c in clients:
                c.close()


def check_copy(url: str, project_id: int) -> int:
    """Opens the copy as labelwright does, checks the queue's invariants on it; returns its annotations."""
    store = Store(url, pool_size=1)
    try:
        store.check_ready()  # at the schema version this labelwright needs
        with store.read() as conn:
            assert item_state_violations(conn, project_id, SPAM_SCHEMA["overlap"], strict=False) == []
            return conn.execute(text("SELECT count(*) FROM annotations")).scalar_one()
    finally:
        store.close()


def test_sqlite_online_backup_while_a_server_writes(tmp_path):
    sqlite3 = need("sqlite3")
    db = tmp_path / "labelwright.db"
    url = f"sqlite:///{db}"
    seeded = seed(url, SPAM_SCHEMA, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(300)],
                  [f"ann{i}" for i in range(3)])
    with ServerProcess(url, extra_env=ENV) as server:
        writer = Writer(server.url, seeded)
        writer.start()
        copies = []
        try:
            while writer.acknowledged < 20 and writer.is_alive():
                writer.stop.wait(0.05)
            for i in range(3):  # the two documented commands, while submissions go on
                dot = tmp_path / f"backup-{i}.db"
                subprocess.run([sqlite3, str(db), f".backup '{dot}'"], check=True, timeout=60)
                vac = tmp_path / f"vacuum-{i}.db"
                subprocess.run([sqlite3, str(db), f"VACUUM INTO '{vac}'"], check=True, timeout=60)
                copies += [dot, vac]
        finally:
            writer.stop.set()
            writer.join(60)
        assert not writer.errors, writer.errors
        during = writer.acknowledged
    assert during >= 20
    counts = []
    for copy in copies:
        check = subprocess.run([sqlite3, str(copy), "PRAGMA integrity_check"], capture_output=True, text=True,
                               check=True, timeout=60)
        assert check.stdout.strip() == "ok", check.stdout
        counts.append(check_copy(f"sqlite:///{copy}", seeded["project_id"]))
    assert all(0 < c <= during for c in counts), (counts, during)
    assert counts == sorted(counts)  # later copies hold at least what earlier ones did

    # restore as documented: servers stopped, the copy put in place of the database, served again
    db.unlink()
    for extra in (tmp_path / "labelwright.db-wal", tmp_path / "labelwright.db-shm"):
        extra.unlink(missing_ok=True)
    shutil.copy(copies[-1], db)
    with ServerProcess(url, extra_env=ENV) as server:
        owner = {"Authorization": f"Bearer {seeded['owner']}"}
        r = httpx.get(f"{server.url}/api/v1/projects/{seeded['project']}/status", headers=owner, timeout=30)
        assert r.status_code == 200 and r.json()["annotations"] == counts[-1], r.text


def test_postgresql_pg_dump_and_pg_restore_into_a_fresh_database(tmp_path):
    require_pg()
    pg_dump, pg_restore = need("pg_dump"), need("pg_restore")
    schema = PgSchema()
    fresh = "lw_restore_" + uuid.uuid4().hex[:10]
    try:
        seeded = seed(schema.url, SPAM_SCHEMA, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(300)],
                      [f"ann{i}" for i in range(3)])
        dump = tmp_path / "labelwright.dump"
        with ServerProcess(schema.url, extra_env=ENV) as server:
            writer = Writer(server.url, seeded)
            writer.start()
            try:
                while writer.acknowledged < 20 and writer.is_alive():
                    writer.stop.wait(0.05)
                # documented: pg_dump -Fc -d DB -f FILE (here one schema of the test database: -n)
                subprocess.run([pg_dump, "-Fc", "-d", PG_URL, "-n", schema.name, "-f", str(dump)], check=True,
                               timeout=120)
            finally:
                writer.stop.set()
                writer.join(60)
            assert not writer.errors, writer.errors
            during = writer.acknowledged
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {fresh}")
        fresh_url = PG_URL.rsplit("/", 1)[0] + "/" + fresh
        subprocess.run([pg_restore, "--no-owner", "-d", fresh_url, str(dump)], check=True, timeout=120)
        restored = (fresh_url.replace("postgresql://", "postgresql+psycopg://", 1)
                    + f"?options=-csearch_path%3D{schema.name}")
        n = check_copy(restored, seeded["project_id"])
        assert 0 < n <= during
        with ServerProcess(restored, extra_env=ENV) as server:  # the restored database serves
            owner = {"Authorization": f"Bearer {seeded['owner']}"}
            r = httpx.get(f"{server.url}/api/v1/projects/{seeded['project']}/status", headers=owner, timeout=30)
            assert r.status_code == 200 and r.json()["annotations"] == n, r.text
    finally:
        schema.drop()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)")
