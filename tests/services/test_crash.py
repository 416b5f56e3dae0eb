"""Durability across a hard crash: ``kill -9`` the server while annotators are submitting.

Annotator threads claim and submit continuously against a real server process and record every
submission the server acknowledged (201). The server process itself is SIGKILLed mid-stream (no
graceful shutdown), restarted on the same database, and killed again, a few times. Afterwards every
acknowledged submission must be in the database and in the JSONL export with the same answers, the
requests that were in flight at the kill, retried with their idempotency keys, must create at most
one annotation, and the queue counters must still add up. On SQLite (a file, WAL, synchronous=FULL)
and on PostgreSQL.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from labelwright.store import Store, loads
from tests.server import ServerProcess, export_jsonl, item_state_violations, seed

CYCLES = 3
ACKS_PER_CYCLE = 40
ANNOTATORS = ["crash0", "crash1", "crash2", "crash3"]
SCHEMA = {
    "name": "Crash test", "slug": "crash", "overlap": 2, "id_field": "id",
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
                  {"name": "note", "type": "text", "required": False}],
}


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.acks: dict[int, dict] = {}  # annotation id -> {annotator, item_id, answers, key}
        self.in_flight: list[dict] = []  # submissions whose answer never came (server died)
        self.errors: list[str] = []


def submitter(url: str, name: str, token: str, seed_: int, stop: threading.Event, log: Log) -> None:
    """Claim and submit until the server dies (or ``stop``); record acknowledged and unanswered submits."""
    rng = random.Random(seed_)
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        while not stop.is_set():
            try:
                r = c.post(f"/projects/{SCHEMA['slug']}/next")
            except httpx.TransportError:
                return  # the server is gone; nothing was being submitted
            if r.status_code == 204:
                with log.lock:
                    log.errors.append(f"{name}: ran out of items; make the project bigger")
                return
            if r.status_code != 200:
                with log.lock:
                    log.errors.append(f"{name}: next -> {r.status_code} {r.text}")
                return
            item_id = r.json()["id"]
            key = str(uuid.uuid4())
            sub = {"annotator": name, "item_id": item_id, "key": key,
                   "answers": {"spam": rng.choice(["spam", "ham"]), "note": f"{name}/{item_id}/{key[:8]}"}}
            try:
                r = c.post(f"/items/{item_id}/annotations",
                           json={"answers": sub["answers"], "idempotency_key": key, "active_ms": 100})
            except httpx.TransportError:
                with log.lock:
                    log.in_flight.append(sub)
                return
            if r.status_code != 201:
                with log.lock:
                    log.errors.append(f"{name}: submit {item_id} -> {r.status_code} {r.text}")
                return
            body = r.json()
            with log.lock:
                if body["answers"] != sub["answers"] or body["item_id"] != item_id:
                    log.errors.append(f"{name}: submit answered {body}, sent {sub}")
                log.acks[body["id"]] = sub


def retry_in_flight(url: str, seeded: dict, log: Log, retried: dict) -> None:
    """Resend the submissions cut off by the last kill, as a client would after reconnecting: with the
    same idempotency key it either replays the stored annotation (200: it was committed before the kill)
    or stores it now (201: it was not). Never a second annotation, never an error."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as c:
        for sub in log.in_flight:
            r = c.post(f"/items/{sub['item_id']}/annotations",
                       headers={"Authorization": f"Bearer {seeded['annotators'][sub['annotator']]}"},
                       json={"answers": sub["answers"], "idempotency_key": sub["key"], "active_ms": 100})
            assert r.status_code in (200, 201), (sub, r.status_code, r.text)
            assert r.json()["answers"] == sub["answers"] and r.json()["item_id"] == sub["item_id"]
            retried[r.json()["id"]] = {**sub, "status": r.status_code}
    log.in_flight.clear()


@pytest.mark.slow
def test_acknowledged_submissions_survive_kill9(db_url):
    seeded = seed(db_url, SCHEMA, [{"id": f"c{i:05d}", "text": f"comment {i}"} for i in range(1500)], ANNOTATORS)
    log = Log()
    server = ServerProcess(db_url)
    kills = []
    retried: dict[int, dict] = {}
    try:
        for cycle in range(CYCLES):
            server.start()
            retry_in_flight(server.url, seeded, log, retried)
            stop = threading.Event()
            threads = [threading.Thread(target=submitter, name=f"{name}-{cycle}",
                                        args=(server.url, name, seeded["annotators"][name], 100 * cycle + k,
                                              stop, log))
                       for k, name in enumerate(ANNOTATORS)]
            before = len(log.acks)
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while len(log.acks) < before + ACKS_PER_CYCLE and time.monotonic() < deadline \
                    and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            time.sleep(random.uniform(0, 0.05))
            assert all(t.is_alive() for t in threads), f"clients stopped before the kill: {log.errors}"
            server.kill9()  # mid-stream: every client thread is in a request loop right now
            kills.append(len(log.acks) - before)
            stop.set()
            for t in threads:
                t.join(60)
                assert not t.is_alive()
            assert not log.errors, log.errors

        assert len(log.acks) >= CYCLES * ACKS_PER_CYCLE, kills
        server.start()
        url = server.url

        retry_in_flight(url, seeded, log, retried)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as c:
            # Every annotator can carry on after the crash.
            for name in ANNOTATORS:
                tok = {"Authorization": f"Bearer {seeded['annotators'][name]}"}
                r = c.post(f"/projects/{SCHEMA['slug']}/next", headers=tok)
                assert r.status_code == 200, r.text
                r = c.post(f"/items/{r.json()['id']}/annotations", headers=tok,
                           json={"answers": {"spam": "ham"}, "idempotency_key": f"after-{name}"})
                assert r.status_code == 201, r.text
                retried[r.json()["id"]] = {"annotator": name, "item_id": r.json()["item_id"],
                                           "answers": {"spam": "ham"}}
        assert not set(retried) & set(log.acks)

        # Database: every acknowledged annotation, with its answers; nothing else but the retries.
        store = Store(db_url, pool_size=1)
        try:
            with store.read() as conn:
                rows = conn.execute(text(
                    "SELECT a.id, a.item_id, u.name, a.answers, a.idempotency_key FROM annotations a "
                    "JOIN users u ON u.id = a.user_id WHERE a.project_id = :p"), {"p": seeded["project_id"]}).all()
                bad = item_state_violations(conn, seeded["project_id"], SCHEMA["overlap"])
        finally:
            store.close()
        by_id = {r.id: r for r in rows}
        for ann_id, sub in log.acks.items():
            row = by_id.get(ann_id)
            assert row is not None, f"acknowledged annotation {ann_id} ({sub}) lost in the crash"
            assert (row.item_id, row.name, loads(row.answers), row.idempotency_key) == \
                (sub["item_id"], sub["annotator"], sub["answers"], sub["key"]), (row, sub)
        assert set(by_id) == set(log.acks) | set(retried), \
            f"unexpected annotations: {sorted(set(by_id) - set(log.acks) - set(retried))}"
        assert len({(r.item_id, r.name) for r in rows}) == len(rows), "an annotator answered an item twice"
        assert not bad, "\n".join(bad[:20])

        # Export: the same annotations with the same answers.
        exported = {}
        for line in export_jsonl(url, seeded["owner"], SCHEMA["slug"]):
            assert len(line["annotations"]) <= SCHEMA["overlap"]
            for a in line["annotations"]:
                exported[(line["item_id"], a["annotator"])] = a["answers"]
        for ann_id, sub in {**log.acks, **retried}.items():
            assert exported.get((sub["item_id"], sub["annotator"])) == sub["answers"], \
                f"annotation {ann_id} ({sub}) missing or different in the export"
        assert len(exported) == len(by_id)
        statuses = [sub.get("status") for sub in retried.values() if "status" in sub]
        print(f"\n{len(log.acks)} acknowledged before {CYCLES} kills ({kills} per cycle), "
              f"{len(statuses)} in flight at a kill, retried: {statuses.count(200)} had been stored, "
              f"{statuses.count(201)} had not")
    finally:
        server.stop()
