"""The labelling queue under concurrent annotators, against a real server process, on SQLite and PostgreSQL.

What is checked (see the invariants in labelwright/services/queue.py):

* overlap 3, 8 annotators x 4 threads sharing each token, with and without skips: no item gets more
  than 3 annotations, nobody answers an item twice, every acknowledged submission (201, or the 200
  replay of its idempotency key) is in the database and in the JSONL export with the same answers,
  nothing is stored that was not acknowledged, idempotent retries (sequential and simultaneous)
  never create a second annotation, a 204 from ``next`` means the annotator really has nothing
  left (with skips: unless another annotator's skip gave a slot back after they left), and (with no
  skips) every item ends with exactly 3 annotations. A sampler reads the
  database all through the run and checks ``n_assigned = annotations + leases <= overlap``.
* the same submission sent 4 times at once: one 201, three 200 replays of it, one annotation.
* overlap 1 with 8 concurrent annotators (2 threads each): no item is ever handed to two annotators.
* ``next`` does not answer 204 ("nothing left") while an item is open to the caller and merely busy
  with another annotator's write (fails on PostgreSQL: FOR UPDATE SKIP LOCKED; see that test).
* lease expiry: an expired lease puts the item back in the queue; a late submit after the item was
  given to someone else is refused with 409 and saves nothing (real server, 10 s lease; and the
  same through the service with a fake clock).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict

import httpx
import pytest
from sqlalchemy import text

from labelwright.errors import Conflict
from labelwright.services import users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.services.queue import claim_next, submit
from labelwright.store import Store, loads
from tests.conftest import join
from tests.server import export_jsonl, item_state_violations, seed, serve

RUN_DEADLINE_S = 45  # a run that takes longer than this is a failure (hung claim loop)


def schema(slug: str, overlap: int, lease_seconds: int = 600) -> dict:
    return {
        "name": f"Concurrency {slug}", "slug": slug, "overlap": overlap, "lease_seconds": lease_seconds,
        "id_field": "id",
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]},
                      {"name": "note", "type": "text", "required": False}],
    }


def make_items(n: int) -> list[dict]:
    return [{"id": f"it{i:04d}", "text": f"comment number {i}"} for i in range(n)]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Recorder:
    """What the clients saw, collected from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acks: dict[int, dict] = {}  # annotation id -> {annotator, item_id, answers}
        self.claims: list[tuple[str, int]] = []
        self.skips: list[tuple[str, int]] = []
        self.conflicts: list[tuple[str, int, str]] = []
        self.errors: list[str] = []
        self.replays = 0
        self.simultaneous = 0
        self.done: Counter = Counter()
        self.pair_codes: Counter = Counter()
        self.events: list[tuple] = []  # (monotonic time, thread, annotator, item, what)

    def event(self, name: str, item_id: int, what: str) -> None:
        with self.lock:
            self.events.append((round(time.monotonic(), 4), threading.current_thread().name, name, item_id, what))

    def story_item(self, item_id: int) -> str:
        return "\n".join(map(str, (e for e in self.events if e[3] == item_id)))

    def story(self, name: str, item_id: int) -> str:
        return "\n".join(map(str, (e for e in self.events if e[2:4] == (name, item_id))))

    def ack(self, name: str, item_id: int, ann: dict, answers: dict) -> None:
        with self.lock:
            prev = self.acks.get(ann["id"])
            if prev is not None and (prev["annotator"], prev["item_id"], prev["answers"]) != (name, item_id, answers):
                self.errors.append(f"annotation id {ann['id']} acknowledged twice for different submissions: "
                                   f"{prev} / {(name, item_id, answers)}")
            self.acks[ann["id"]] = {"annotator": name, "item_id": item_id, "answers": answers}

    def error(self, msg: str) -> None:
        with self.lock:
            self.errors.append(msg)


def _post(client: httpx.Client, path: str, **kw) -> httpx.Response:
    return client.post(path, **kw)


def annotator_thread(url: str, slug: str, name: str, token: str, seed_: int, skip_rate: float,
                     deadline: float, rec: Recorder) -> None:
    rng = random.Random(seed_)
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=bearer(token), timeout=60) as c:
            while True:
                if time.monotonic() > deadline:
                    rec.error(f"{name}: still claiming items at the deadline")
                    return
                r = c.post(f"/projects/{slug}/next")
                if r.status_code == 204:
                    with rec.lock:
                        rec.done[name] += 1
                    rec.event(name, None, "told nothing left (204)")
                    return
                if r.status_code != 200:
                    rec.error(f"{name}: next -> {r.status_code} {r.text}")
                    return
                item_id = r.json()["id"]
                with rec.lock:
                    rec.claims.append((name, item_id))
                rec.event(name, item_id, "claimed")
                if rng.random() < skip_rate:
                    rec.event(name, item_id, "skipping")
                    r = c.post(f"/items/{item_id}/skip")
                    if r.status_code != 204:
                        rec.error(f"{name}: skip {item_id} -> {r.status_code} {r.text}")
                        return
                    with rec.lock:
                        rec.skips.append((name, item_id))
                    rec.event(name, item_id, "skipped")
                    continue
                rec.event(name, item_id, "submitting")
                key = str(uuid.uuid4())
                answers = {"spam": rng.choice(["spam", "ham"]), "note": f"{name}/{item_id}/{key[:8]}"}
                body = {"answers": answers, "active_ms": rng.randint(0, 5000), "idempotency_key": key}
                mode = rng.random()
                if mode < 0.1:
                    _simultaneous_pair(url, token, name, item_id, body, rec)
                    continue
                r = c.post(f"/items/{item_id}/annotations", json=body)
                if r.status_code == 409:
                    # Another thread with the same token got the same (held) item and answered first;
                    # checked against the database afterwards.
                    with rec.lock:
                        rec.conflicts.append((name, item_id, r.json().get("error", "")))
                    rec.event(name, item_id, f"409 {r.json().get('error', '')[:30]}")
                    continue
                if r.status_code != 201:
                    rec.error(f"{name}: submit {item_id} -> {r.status_code} {r.text}")
                    return
                ann = r.json()
                if ann["answers"] != answers or ann["item_id"] != item_id:
                    rec.error(f"{name}: submit {item_id} answered {ann}, sent {answers}")
                rec.ack(name, item_id, ann, answers)
                rec.event(name, item_id, f"201 id {ann['id']}")
                if mode < 0.35:
                    # The response was "lost": send the very same request again.
                    again = c.post(f"/items/{item_id}/annotations", json=body)
                    _check_replay(again, ann, answers, name, item_id, rec)
                elif mode < 0.45:
                    # A retry with the same key but other answers gets the first annotation back.
                    other = {**body, "answers": {"spam": "spam" if answers["spam"] == "ham" else "ham",
                                                 "note": "changed on retry"}}
                    again = c.post(f"/items/{item_id}/annotations", json=other)
                    _check_replay(again, ann, answers, name, item_id, rec)
    except Exception as e:  # noqa: BLE001 - report it from the main thread
        rec.error(f"{name}: {type(e).__name__}: {e}")


def _check_replay(r: httpx.Response, ann: dict, answers: dict, name: str, item_id: int, rec: Recorder) -> None:
    if r.status_code != 200:
        rec.error(f"{name}: idempotent resubmit of item {item_id} -> {r.status_code} {r.text} (want 200)")
        return
    body = r.json()
    if body["id"] != ann["id"] or body["answers"] != answers:
        rec.error(f"{name}: idempotent resubmit of item {item_id} gave {body}, first answer was {ann}")
    with rec.lock:
        rec.replays += 1


def _simultaneous_pair(url: str, token: str, name: str, item_id: int, body: dict, rec: Recorder) -> None:
    """Send the same submission twice at the same moment: one 201 and one 200, one annotation."""
    results: list[httpx.Response | Exception] = [None, None]  # type: ignore[list-item]
    go = threading.Barrier(2)

    def send(i: int) -> None:
        try:
            with httpx.Client(base_url=f"{url}/api/v1", headers=bearer(token), timeout=60) as c:
                go.wait()
                results[i] = c.post(f"/items/{item_id}/annotations", json=body)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    ts = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if any(isinstance(r, Exception) for r in results):
        rec.error(f"{name}: simultaneous submit of {item_id}: {results}")
        return
    codes = sorted(r.status_code for r in results)
    with rec.lock:
        rec.pair_codes[tuple(codes)] += 1
    rec.event(name, item_id, f"simultaneous pair {codes}")
    if codes == [409, 409] or codes == [201, 409]:
        # The item was already answered by another thread with this token, or another thread skipped
        # it and the item filled up; with [201, 409] the refused copy ran first and a slot came free
        # before the other. Checked against what the annotator did, after the run.
        for r in results:
            if r.status_code == 409:
                with rec.lock:
                    rec.conflicts.append((name, item_id, r.json().get("error", "")))
        if codes == [409, 409]:
            return
        a = next(r.json() for r in results if r.status_code == 201)
        if a["answers"] != body["answers"]:
            rec.error(f"{name}: simultaneous submit of item {item_id} gave {a}")
        rec.ack(name, item_id, a, body["answers"])
        return
    if codes != [200, 201]:
        rec.error(f"{name}: simultaneous identical submits of item {item_id} -> {codes} "
                  f"{[r.text for r in results]} (want one 201 and one 200)\n" + rec.story_item(item_id))
        return
    a, b = (r.json() for r in results)
    if a["id"] != b["id"] or a["answers"] != body["answers"] or b["answers"] != body["answers"]:
        rec.error(f"{name}: simultaneous identical submits of item {item_id} gave {a} and {b}")
        return
    rec.ack(name, item_id, a, body["answers"])
    with rec.lock:
        rec.simultaneous += 1


class Sampler(threading.Thread):
    """Reads the item counters all through the run and records any broken invariant."""

    def __init__(self, db_url: str, project_id: int, overlap: int):
        super().__init__(daemon=True)
        self.db_url, self.project_id, self.overlap = db_url, project_id, overlap
        self.stop = threading.Event()
        self.violations: list[str] = []
        self.samples = 0
        self.failure: str | None = None

    def run(self) -> None:
        store = Store(self.db_url, pool_size=1)
        try:
            while not self.stop.is_set():
                with store.read() as conn:
                    bad = item_state_violations(conn, self.project_id, self.overlap)
                self.samples += 1
                self.violations += bad[:5]
                self.stop.wait(0.05)
        except Exception as e:  # noqa: BLE001
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            store.close()


def run_annotators(url: str, seeded: dict, threads_per_annotator: int, skip_rate: float,
                   rec: Recorder) -> float:
    deadline = time.monotonic() + RUN_DEADLINE_S
    threads = []
    for a, (name, token) in enumerate(seeded["annotators"].items()):
        for k in range(threads_per_annotator):
            threads.append(threading.Thread(
                target=annotator_thread, name=f"{name}-{k}",
                args=(url, seeded["project"], name, token, 1000 * a + k, skip_rate, deadline, rec)))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_DEADLINE_S + 60)
        assert not t.is_alive(), f"thread {t.name} hung"
    return time.monotonic() - t0


def db_annotations(db_url: str, project_id: int) -> list:
    store = Store(db_url, pool_size=1)
    try:
        with store.read() as conn:
            return conn.execute(text(
                "SELECT a.id, a.item_id, u.name, a.answers, a.revision FROM annotations a "
                "JOIN users u ON u.id = a.user_id WHERE a.project_id = :p ORDER BY a.id"),
                {"p": project_id}).all()
    finally:
        store.close()


def db_rows(db_url: str, sql: str, **params) -> list:
    store = Store(db_url, pool_size=1)
    try:
        with store.read() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        store.close()


def _freed_after_they_left(rec: Recorder, item_id: int, name: str, shortfall: int) -> bool:
    """Whether every slot item ``item_id`` ends without may have been given back after ``name`` was told
    "nothing left": the item's last ``shortfall`` skips (by anyone; only a skip frees a slot here, leases last
    600 s) all started after ``name``'s last 204 arrived. Then every slot could have been held when
    ``name`` left, and the 204 was true when it was sent; a skip that started earlier leaves it a miss."""
    told = [e[0] for e in rec.events if e[2] == name and e[4] == "told nothing left (204)"]
    skips = sorted(e[0] for e in rec.events if e[3] == item_id and e[4] == "skipping")
    return bool(told) and len(skips) >= shortfall and all(t > max(told) for t in skips[-shortfall:])


def check_final_state(db_url: str, url: str, seeded: dict, overlap: int, rec: Recorder,
                      *, expect_complete: bool) -> None:
    """Everything the clients were told must be true in the database and in the export."""
    pid = seeded["project_id"]
    names = list(seeded["annotators"])
    assert not rec.errors, "\n".join(rec.errors[:20])

    # --- database -------------------------------------------------------------------------
    anns = db_annotations(db_url, pid)
    per_item = Counter(r.item_id for r in anns)
    pairs = Counter((r.item_id, r.name) for r in anns)
    assert max(per_item.values(), default=0) <= overlap, \
        f"items with more than {overlap} annotations: {[i for i, n in per_item.items() if n > overlap]}"
    assert all(n == 1 for n in pairs.values()), f"answered twice: {[p for p, n in pairs.items() if n > 1]}"
    by_id = {r.id: r for r in anns}
    for ann_id, a in rec.acks.items():
        row = by_id.get(ann_id)
        assert row is not None, f"acknowledged annotation {ann_id} {a} is not in the database"
        assert (row.item_id, row.name, loads(row.answers)) == (a["item_id"], a["annotator"], a["answers"]), \
            (ann_id, a, row)
    assert set(by_id) == set(rec.acks), \
        f"annotations stored but never acknowledged: {sorted(set(by_id) - set(rec.acks))[:10]}"
    store = Store(db_url, pool_size=1)
    try:
        with store.read() as conn:
            bad = item_state_violations(conn, pid, overlap)
            live = conn.execute(text("SELECT count(*) FROM leases WHERE project_id = :p"), {"p": pid}).scalar_one()
            skipped = {(r.item_id, r.name) for r in conn.execute(text(
                "SELECT s.item_id, u.name FROM skips s JOIN users u ON u.id = s.user_id "
                "WHERE s.project_id = :p"), {"p": pid})}
            item_ids = [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p"), {"p": pid})]
    finally:
        store.close()
    assert not bad, "\n".join(bad[:20])
    # A 409 is right only where another thread with the same token answered the item first, or
    # skipped it (which gives the lease back: leases last 600 s here) and then the item filled up.
    client_skips = set(rec.skips)
    for name, item_id, msg in rec.conflicts:
        if "already answered" in msg:
            assert (item_id, name) in pairs, f"{name} got 409 ({msg}) on item {item_id} but never answered it"
        else:
            assert (name, item_id) in client_skips, \
                f"{name} got 409 ({msg}) on item {item_id}, which they never skipped:\n" + rec.story(name, item_id)
    assert live == 0, f"{live} leases left after every annotator was told there is nothing left"

    # --- a 204 meant "nothing left for you" -------------------------------------------------
    # Every item still short of `overlap` annotations must have been answered or skipped by every
    # annotator: otherwise someone was sent away while there was still work for them.
    missed = [(i, n) for i in item_ids if per_item[i] < overlap for n in names
              if (i, n) not in pairs and (i, n) not in skipped and not _freed_after_they_left(rec, i, n,
                                                                                           overlap - per_item[i])]
    assert not missed, (f"annotators were told 'nothing left' (204) while these (item, annotator) pairs "
                        f"were still open: {missed[:20]} ({len(missed)} in all)\n"
                        + "\n".join(map(str, (e for e in rec.events if e[4] == "told nothing left (204)"
                                               and e[2] in {n for _, n in missed})))
                        + "\n" + "\n".join(rec.story_item(i) for i in sorted({i for i, _ in missed})))
    if expect_complete:
        assert all(per_item[i] == overlap for i in item_ids), \
            f"items short of {overlap} annotations: {[(i, per_item[i]) for i in item_ids if per_item[i] < overlap]}"
        assert len(anns) == overlap * len(item_ids)
    for name, token in seeded["annotators"].items():
        r = httpx.post(f"{url}/api/v1/projects/{seeded['project']}/next", headers=bearer(token), timeout=60)
        assert r.status_code == 204, f"{name} was done but now gets {r.status_code} {r.text}"

    # --- export ----------------------------------------------------------------------------
    lines = export_jsonl(url, seeded["owner"], seeded["project"])
    assert sorted(line["item_id"] for line in lines) == sorted(item_ids)
    exported = {}
    for line in lines:
        annotators = [a["annotator"] for a in line["annotations"]]
        assert len(annotators) <= overlap, line
        assert len(set(annotators)) == len(annotators), line
        assert len(annotators) == per_item[line["item_id"]], line
        for a in line["annotations"]:
            exported[(line["item_id"], a["annotator"])] = a
            assert a["revision"] == 1
    for ann_id, a in rec.acks.items():
        e = exported.get((a["item_id"], a["annotator"]))
        assert e is not None, f"acknowledged annotation {ann_id} {a} is missing from the export"
        assert e["answers"] == a["answers"], (ann_id, a, e)
    assert len(exported) == len(rec.acks)


@pytest.mark.slow
@pytest.mark.parametrize("skip_rate", [0.0, 0.2], ids=["no-skips", "skips"])
def test_overlap3_many_annotators(db_url, skip_rate):
    n_items, overlap = 60, 3
    names = [f"ann{i}" for i in range(8)]
    seeded = seed(db_url, schema("conc", overlap), make_items(n_items), names)
    rec = Recorder()
    with serve(db_url) as url:
        sampler = Sampler(db_url, seeded["project_id"], overlap)
        sampler.start()
        try:
            elapsed = run_annotators(url, seeded, threads_per_annotator=4, skip_rate=skip_rate, rec=rec)
        finally:
            sampler.stop.set()
            sampler.join(30)
        assert sampler.failure is None, sampler.failure
        assert not sampler.violations, "invariants broken during the run:\n" + "\n".join(sampler.violations[:20])
        check_final_state(db_url, url, seeded, overlap, rec, expect_complete=skip_rate == 0)
    print(f"\n{len(rec.acks)} annotations, {len(rec.claims)} claims, {len(rec.skips)} skips, "
          f"{len(rec.conflicts)} 409s, {rec.replays} replays, "
          f"{rec.simultaneous} simultaneous pairs {dict(rec.pair_codes)}, "
          f"{sampler.samples} invariant samples, {elapsed:.1f} s")
    assert rec.replays > 0 and sum(rec.pair_codes.values()) > 0
    assert skip_rate == 0 or rec.skips


@pytest.mark.slow
def test_simultaneous_identical_submits(db_url):
    """The same submission sent 4 times at the same moment: one 201, three 200 replays, one annotation."""
    n_items, copies = 15, 4
    seeded = seed(db_url, schema("twins", overlap=1), make_items(n_items), ["tess"])
    token = seeded["annotators"]["tess"]
    barrier = threading.Barrier(copies + 1)
    bodies: list[tuple[int, dict]] = []
    results: list[list] = [[] for _ in range(copies)]

    def sender(k: int, url: str) -> None:
        with httpx.Client(base_url=f"{url}/api/v1", headers=bearer(token), timeout=60) as c:
            c.get("/me")  # open the connection before the race
            for i in range(n_items):
                barrier.wait(60)
                item_id, body = bodies[i]
                try:
                    results[k].append(c.post(f"/items/{item_id}/annotations", json=body))
                except Exception as e:  # noqa: BLE001
                    results[k].append(e)
                barrier.wait(60)

    with serve(db_url) as url, httpx.Client(base_url=f"{url}/api/v1", headers=bearer(token), timeout=60) as c:
        ts = [threading.Thread(target=sender, args=(k, url)) for k in range(copies)]
        for t in ts:
            t.start()
        for _ in range(n_items):
            r = c.post(f"/projects/{seeded['project']}/next")
            assert r.status_code == 200, r.text
            key = str(uuid.uuid4())
            bodies.append((r.json()["id"], {"answers": {"spam": "ham", "note": key}, "idempotency_key": key}))
            barrier.wait(60)  # go
            barrier.wait(60)  # all answered
        for t in ts:
            t.join(60)
        for i, (_item_id, body) in enumerate(bodies):
            got = [results[k][i] for k in range(copies)]
            assert not any(isinstance(r, Exception) for r in got), got
            assert sorted(r.status_code for r in got) == [200] * (copies - 1) + [201], [r.text for r in got]
            assert len({r.json()["id"] for r in got}) == 1
            assert all(r.json()["answers"] == body["answers"] for r in got)
        r = c.post(f"/projects/{seeded['project']}/next")
        assert r.status_code == 204, r.text
        anns = db_annotations(db_url, seeded["project_id"])
        assert len(anns) == n_items
        assert sorted((r.item_id, loads(r.answers)["note"]) for r in anns) == \
            sorted((item_id, body["answers"]["note"]) for item_id, body in bodies)
        export = export_jsonl(url, seeded["owner"], seeded["project"])
        assert all(len(line["annotations"]) == 1 for line in export)


@pytest.mark.slow
def test_overlap1_never_two_annotators(db_url):
    n_items, overlap = 40, 1
    names = [f"solo{i}" for i in range(8)]
    seeded = seed(db_url, schema("solo", overlap), make_items(n_items), names)
    rec = Recorder()
    with serve(db_url) as url:
        sampler = Sampler(db_url, seeded["project_id"], overlap)
        sampler.start()
        try:
            run_annotators(url, seeded, threads_per_annotator=2, skip_rate=0.0, rec=rec)
        finally:
            sampler.stop.set()
            sampler.join(30)
        assert sampler.failure is None, sampler.failure
        assert not sampler.violations, "invariants broken during the run:\n" + "\n".join(sampler.violations[:20])
        holders = defaultdict(set)
        for name, item_id in rec.claims:
            holders[item_id].add(name)
        shared = {i: sorted(n) for i, n in holders.items() if len(n) > 1}
        assert not shared, f"items handed to two annotators: {shared}"
        check_final_state(db_url, url, seeded, overlap, rec, expect_complete=True)
    # Everyone got work (the queue is shared, not handed to one annotator).
    assert len({n for n, _ in rec.claims}) >= 4


@pytest.mark.slow
def test_lease_expiry_on_real_server(db_url):
    """A 10 s lease runs out: the item goes back to the queue, and the late submit is refused."""
    seeded = seed(db_url, schema("lease", overlap=1, lease_seconds=10), make_items(2), ["ana", "bob", "cid"])
    tok = seeded["annotators"]
    slug = seeded["project"]
    with serve(db_url) as url, httpx.Client(base_url=f"{url}/api/v1", timeout=60) as c:
        def next_(who):
            return c.post(f"/projects/{slug}/next", headers=bearer(tok[who]))

        def submit(who, item_id, spam):
            return c.post(f"/items/{item_id}/annotations", headers=bearer(tok[who]),
                          json={"answers": {"spam": spam}, "idempotency_key": f"{who}-{item_id}"})

        r = next_("ana")
        assert r.status_code == 200, r.text
        first = r.json()["id"]
        r = next_("bob")
        assert r.status_code == 200
        second = r.json()["id"]
        assert second != first
        assert next_("cid").status_code == 204  # both items are out under a lease
        assert next_("ana").json()["id"] == first  # asking again returns the held item (renewed)
        t_renewed = time.time()

        # Let the leases run out (ana's was renewed by her second call).
        time.sleep(max(0.0, t_renewed + 10.5 - time.time()))
        r = next_("cid")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == first, "the expired lease did not put the item back in the queue"

        r = submit("ana", first, "spam")
        assert r.status_code == 409, r.text
        assert "expired" in r.json()["error"]
        # bob's lease expired too, but nobody has taken his item since: his late answer still fits.
        r = submit("bob", second, "ham")
        assert r.status_code == 201, r.text
        r = submit("cid", first, "ham")
        assert r.status_code == 201, r.text
        assert next_("ana").status_code == 204

        anns = db_annotations(db_url, seeded["project_id"])
        assert sorted((r.item_id, r.name) for r in anns) == sorted([(first, "cid"), (second, "bob")])
        export = {line["item_id"]: line for line in export_jsonl(url, seeded["owner"], slug)}
        assert [a["annotator"] for a in export[first]["annotations"]] == ["cid"]
        assert [a["annotator"] for a in export[second]["annotations"]] == ["bob"]
        store = Store(db_url, pool_size=1)
        try:
            with store.read() as conn:
                assert item_state_violations(conn, seeded["project_id"], 1) == []
        finally:
            store.close()


def test_lease_expiry_with_fake_clock(store):
    """The same through the service, with the clock passed in: no waiting."""
    p = create_project(store, schema("clock", overlap=2, lease_seconds=60))
    add_items(store, p, make_items(1))
    ana, bob, cid = (users.create_user(store, n) for n in ("ana", "bob", "cid"))

    for n in ("ana", "bob", "cid"):
        join(store, n)
    t0 = 1_000_000.0
    item = claim_next(store, p, ana, now=t0)["id"]
    assert claim_next(store, p, bob, now=t0 + 1)["id"] == item
    assert claim_next(store, p, cid, now=t0 + 2) is None  # full: two leases for overlap 2
    assert claim_next(store, p, cid, now=t0 + 59) is None
    # ana's lease ends at t0 + 60, bob's at t0 + 61.
    assert claim_next(store, p, cid, now=t0 + 60.5)["id"] == item, "expired lease did not free the slot"
    with pytest.raises(Conflict, match="expired"):
        submit(store, item, ana, {"spam": "spam"}, idempotency_key="late", now=t0 + 61)
    ann, created = submit(store, item, bob, {"spam": "ham"}, now=t0 + 60.9)  # bob's lease still live
    assert created
    ann, created = submit(store, item, cid, {"spam": "ham"}, now=t0 + 70)
    assert created
    with store.read() as conn:
        rows = conn.execute(text("SELECT user_id FROM annotations WHERE item_id = :i"), {"i": item}).all()
        assert sorted(r[0] for r in rows) == sorted([bob.id, cid.id])
        assert conn.execute(text("SELECT count(*) FROM annotations WHERE idempotency_key = 'late'")).scalar_one() == 0
        assert item_state_violations(conn, p.id, 2) == []


@pytest.mark.slow
def test_next_does_not_send_annotator_away_while_another_submit_is_committing(db_url):
    """``next`` answers 204 only when nothing is left for the caller, even if another annotator's
    write on the item is in flight at that moment.

    An item of an overlap-2 project is leased by ulla, so it still has a slot for vera. While a
    transaction on the item row is open (what ulla's submit does for a few milliseconds:
    ``UPDATE items SET n_done = n_done + 1``), vera asks for work. On PostgreSQL the claim scans
    with ``FOR UPDATE SKIP LOCKED``, skips the busy row, finds nothing else and answers 204
    ("nothing left for you"), although the item is open to her: the UI tells her she is done and the
    item waits for someone else. Under load this happens at the end of every project.
    """
    seeded = seed(db_url, schema("busy", overlap=2), make_items(1), ["ulla", "vera"])
    tok = seeded["annotators"]
    holding, release = threading.Event(), threading.Event()
    failure: list[str] = []

    def hold_item_row(item_id: int) -> None:
        store = Store(db_url, pool_size=1)
        try:
            with store.write() as conn:
                # The statement ulla's submit runs on the item (a no-op update here, but it locks the row).
                conn.execute(text("UPDATE items SET n_done = n_done WHERE id = :i"), {"i": item_id})
                holding.set()
                release.wait(30)
        except Exception as e:  # noqa: BLE001
            failure.append(f"{type(e).__name__}: {e}")
            holding.set()
        finally:
            store.close()

    with serve(db_url) as url, httpx.Client(base_url=f"{url}/api/v1", timeout=60) as c:
        r = c.post(f"/projects/{seeded['project']}/next", headers=bearer(tok["ulla"]))
        assert r.status_code == 200, r.text
        item_id = r.json()["id"]
        holder = threading.Thread(target=hold_item_row, args=(item_id,))
        holder.start()
        assert holding.wait(30) and not failure, failure
        # Commit the "submit" 1.5 s from now, whatever the claim does meanwhile.
        threading.Timer(1.5, release.set).start()
        t0 = time.monotonic()
        during = c.post(f"/projects/{seeded['project']}/next", headers=bearer(tok["vera"]))
        waited = time.monotonic() - t0
        release.set()
        holder.join(30)
        after = c.post(f"/projects/{seeded['project']}/next", headers=bearer(tok["vera"]))
        assert after.status_code == 200 and after.json()["id"] == item_id, after.text
        assert during.status_code == 200, (
            f"vera was told 'nothing left' ({during.status_code} after {waited:.2f} s) while the item "
            f"was open to her; asked again once the other transaction ended she gets it ({after.status_code})")
        assert during.json()["id"] == item_id
