"""LLMs as annotators in a project (labelwright.services.machines), on both databases, against a real local
fake OpenAI-compatible endpoint: a tiny HTTP server in a thread on 127.0.0.1 that answers
``POST /v1/chat/completions`` from a ground-truth table keyed by the item's text (wrong on purpose on some
items), reports usage tokens, and can be told to fail (HTTP 500) or talk nonsense. Nothing else is called.
"""

from __future__ import annotations

import json
import re
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from labelwright.cli import main
from labelwright.errors import Conflict, ValidationError
from labelwright.services import audit, machines, pay, qualification, queue
from labelwright.services.items import add_items
from labelwright.services.machine_worker import MachineWorker
from labelwright.services.machines import _exclusive
from labelwright.services.projects import create_project
from labelwright.services.quality import project_quality
from labelwright.services.users import User
from labelwright.store import Store
from tests.conftest import PgSchema, bearer, join

PROMPT_TOKENS, COMPLETION_TOKENS = 120, 7
KEY = "sk-test-0123456789abcdef-never-stored"
KEY_ENV = "LW_TEST_LLM_KEY"
FAST = {"backoff_s": 0, "max_retries": 1, "timeout_s": 5}  # failures come back at once


def truth(i: int) -> str:
    return "spam" if i % 2 == 0 else "ham"


class FakeLLM:
    """The endpoint's behaviour (``mode``: truth, error, garbage), its answers and what it was sent."""

    def __init__(self):
        self.mode = "truth"
        self.answers: dict[str, str] = {}
        self.requests: list[dict] = []

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                      "body": body})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "no such route"})
                if fake.mode == "error":  # Retry-After 0: the client's retries come at once
                    return self._send(500, {"error": {"message": "the model is overloaded"}}, retry_after="0")
                if fake.mode == "garbage":
                    return self._send(200, b"<html>not json</html>")
                item = body["messages"][-1]["content"]
                found = re.search(r"<<<FIELD text \w+>>>\n(.*?)\n<<<END FIELD", item, re.DOTALL)
                label = fake.answers.get(found.group(1) if found else "", "I am not sure")
                return self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": json.dumps({"spam": label})}}],
                    "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                              "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})

            def _send(self, status, payload, retry_after=None):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture(scope="module")
def fake_server():
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(fake_server, monkeypatch):
    fake, url = fake_server
    fake.mode = "truth"
    fake.requests.clear()
    fake.url = url
    # right on every item but the ones ending in 3 and 7 (item 3 is ordinary, 7 is gold: see project())
    fake.answers = {f"comment {i}": truth(i) if i % 10 not in (3, 7) else ("ham" if truth(i) == "spam" else "spam")
                    for i in range(40)}
    monkeypatch.setenv(KEY_ENV, KEY)
    return fake


def project(store, owner, *, slug="spam", n=10, gold_items=(6, 7, 8, 9), overlap=2, **extra):
    """Items "comment 0".."comment n-1"; those in ``gold_items`` are gold items with the true answer, served
    first (gold rate 1) unless ``extra`` says otherwise."""
    schema = {"name": "Spam", "slug": slug, "overlap": overlap, "id_field": "text",
              "fields": [{"name": "text", "type": "text"}],
              "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
              "gold": {"rate": 1.0}, **extra}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"text": f"comment {i}", **({"gold": truth(i)} if i in gold_items else {})}
                         for i in range(n)])
    return p


def add(store, p, fake, name="gpt", **kw):
    kw = {"api_key_env": KEY_ENV, "price_input_per_million": "0.15", "price_output_per_million": "0.60",
          "options": FAST, **kw}
    return machines.add_llm_annotator(store, p, name=name, base_url=fake.url, model="fake-model", **kw)


def rows(store, sql, **params):
    with store.read() as conn:
        return conn.execute(text(sql), params).all()


def leases(store, p):
    return rows(store, "SELECT item_id, user_id FROM leases WHERE project_id = :p", p=p.id)


CALL_COST = (PROMPT_TOKENS * Decimal("0.15") + COMPLETION_TOKENS * Decimal("0.60")) / Decimal(1_000_000)


def test_the_llm_answers_items_and_gold_through_the_queue(store, owner, fake, make_annotator):
    p = project(store, owner)
    m = add(store, p, fake, by=owner[0])
    assert m["user"] == "llm:gpt" and m["enabled"] and m["cost"] == "0"
    result = machines.run_llm_annotators(store, p, max_items=100)
    assert result["answered"] == 10 and result["failed"] == 0  # 6 ordinary + 4 gold items, each once
    assert Decimal(result["cost"]) == 10 * CALL_COST
    uid = rows(store, "SELECT id FROM users WHERE name = 'llm:gpt'")[0][0]
    answered = dict(rows(store, "SELECT i.external_id, a.answers FROM annotations a JOIN items i ON i.id = a.item_id "
                                "WHERE a.user_id = :u", u=uid))
    assert len(answered) == 10
    # the queue's invariants: one slot taken per item (overlap 2 leaves room for a person), no lease left
    assert rows(store, "SELECT count(*) FROM items WHERE project_id = :p AND is_gold = 0 AND n_assigned = 1 "
                       "AND n_done = 1 AND is_open = 1", p=p.id)[0][0] == 6
    assert leases(store, p) == []
    # every call recorded, tokens and exact cost; the key went out as a bearer token
    calls = rows(store, "SELECT prompt_tokens, completion_tokens, cost, latency_ms, error FROM llm_calls "
                        "WHERE user_id = :u", u=uid)
    assert len(calls) == 10 and all(c[4] is None and c[3] >= 0 for c in calls)
    assert all((c[0], c[1], Decimal(c[2])) == (PROMPT_TOKENS, COMPLETION_TOKENS, CALL_COST) for c in calls)
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {KEY}"}
    [listed] = machines.list_machine_annotators(store, p)
    assert (listed["calls"], listed["errors"], listed["items_answered"]) == (10, 0, 10)
    assert (listed["prompt_tokens"], listed["completion_tokens"]) == (10 * PROMPT_TOKENS, 10 * COMPLETION_TOKENS)
    assert Decimal(listed["cost"]) == 10 * CALL_COST and "E" not in listed["cost"]
    assert machines.machine_user_ids(store, p) == {uid} and uid in machines.machine_user_ids(store)
    # a second run finds nothing more for it
    assert machines.run_llm_annotators(store, p)["answered"] == 0
    # people still get every ordinary item (the LLM took one of two slots)
    ann, _ = make_annotator("ann")
    got = []
    while (item := queue.claim_next(store, p, ann)) is not None:
        got.append(item["data"]["text"])
        queue.submit(store, item["id"], ann, {"spam": truth(int(item["data"]["text"].split()[1]))})
    assert sorted(got) == sorted(f"comment {i}" for i in range(10))
    # audit: who added it
    assert any(e["action"] == "machine.add" and e["target"] == "llm:gpt" and e["actor"] == "olive"
               for e in audit.entries(store, p.id))


def test_quality_shows_the_machine_annotator_like_a_worker(store, owner, fake, make_annotator):
    p = project(store, owner, n=20, gold_items=(6, 7, 8, 9), overlap=3)
    add(store, p, fake)
    machines.run_llm_annotators(store, p, max_items=100)  # wrong on 3, 13, 17 (ordinary) and 7 (gold)
    people = [make_annotator(name)[0] for name in ("ann", "bob")]
    for person in people:
        while (item := queue.claim_next(store, p, person)) is not None:
            queue.submit(store, item["id"], person, {"spam": truth(int(item["data"]["text"].split()[1]))})
    q = project_quality(store, p)
    table = {a["annotator"]: a for a in q["annotators"]}
    llm = table["llm:gpt"]
    assert llm["machine"] is True and not table["ann"]["machine"] and not table["bob"]["machine"]
    assert (llm["gold_checked"], llm["gold_accuracy"]) == (4, 0.75)  # right on 6, 8, 9; wrong on 7
    assert llm["annotations"] == 20
    assert llm["agreement_with_consensus"] == pytest.approx(16 / 20)  # two people outvote it on 3, 7, 13, 17
    assert table["ann"]["gold_accuracy"] == 1.0
    assert not llm["likely_spammer"]  # fast, as machines are: speed is no mark against it
    spam = next(e for e in q["questions"] if e["name"] == "spam")
    assert spam["answers"] == 60 and sum(map(sum, spam["confusion"]["counts"])) == 60


def test_a_failing_endpoint_gives_the_items_back(store, owner, fake, make_annotator):
    p = project(store, owner, gold_items=())
    add(store, p, fake)
    uid = rows(store, "SELECT id FROM users WHERE name = 'llm:gpt'")[0][0]
    for mode in ("error", "garbage"):
        fake.mode = mode
        result = machines.run_llm_annotators(store, p, max_items=100)
        assert (result["answered"], result["failed"]) == (0, 3)
        assert "3 failures in a row" in result["annotators"][0]["stopped"]
        assert leases(store, p) == []
        assert rows(store, "SELECT sum(n_assigned) FROM items WHERE project_id = :p", p=p.id)[0][0] == 0
    errors = [r[0] for r in rows(store, "SELECT error FROM llm_calls WHERE user_id = :u ORDER BY id", u=uid)]
    assert len(errors) == 6 and all(errors)
    assert "HTTP 500" in errors[0] and "chat-completions format" in errors[-1]
    # an item it failed on three times is left to people; it moves on to the next
    skipped = {r[0] for r in rows(store, "SELECT i.external_id FROM skips s JOIN items i ON i.id = s.item_id "
                                         "WHERE s.user_id = :u", u=uid)}
    assert len(skipped) == 2
    # people get every item, the failed ones included
    ann, _ = make_annotator("ann")
    got = []
    while (item := queue.claim_next(store, p, ann)) is not None:
        got.append(item["external_id"])
        queue.submit(store, item["id"], ann, {"spam": "ham"})
    assert len(got) == 10 and skipped <= set(got)
    # the endpoint is back: the LLM answers what it did not skip
    fake.mode = "truth"
    assert machines.run_llm_annotators(store, p, max_items=100)["answered"] == 8


def _all_stored_text(store, db_url) -> str:
    """Everything the database holds, as text: the SQLite files' bytes, or every PostgreSQL row."""
    if store.dialect == "sqlite":
        path = Path(db_url.removeprefix("sqlite:///"))
        return "".join(f.read_bytes().decode("latin-1") for f in path.parent.glob(path.name + "*"))
    tables = [r[0] for r in rows(store, "SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = current_schema()")]
    return "".join(str(r[0]) for t in tables for r in rows(store, f"SELECT CAST(x AS text) FROM {t} x"))


def test_the_api_key_comes_from_the_environment_and_is_never_stored(store, owner, fake, db_url, monkeypatch):
    p = project(store, owner, gold_items=())
    add(store, p, fake)
    fake.mode = "error"
    machines.run_llm_annotators(store, p)  # errors are recorded: the key must not be in them either
    fake.mode = "truth"
    assert machines.run_llm_annotators(store, p, max_items=3)["answered"] == 3
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {KEY}"}
    stored = _all_stored_text(store, db_url)
    assert KEY_ENV in stored and KEY not in stored
    # without the variable it asks nothing and says why
    monkeypatch.delenv(KEY_ENV)
    fake.requests.clear()
    result = machines.run_llm_annotators(store, p)
    assert result["answered"] == 0 and f"{KEY_ENV} (its API key) is not set" in result["annotators"][0]["stopped"]
    assert fake.requests == [] and leases(store, p) == []


def test_adding_checks_everything_first(store, owner, fake):
    p = project(store, owner, gold_items=())
    with pytest.raises(ValidationError) as e:
        add(store, p, fake, price_input_per_million="cheap")
    assert e.value.field == "price_input_per_million"
    with pytest.raises(ValidationError) as e:
        machines.add_llm_annotator(store, p, name="gpt", base_url="ftp://example.org", model="m")
    assert e.value.field == "base_url"
    with pytest.raises(ValidationError, match="never the key itself"):
        add(store, p, fake, api_key_env=KEY)
    with pytest.raises(ValidationError):
        add(store, p, fake, name="llm:gpt")
    with pytest.raises(ValidationError, match="unknown option"):
        add(store, p, fake, options={"api_key": KEY})
    assert machines.list_machine_annotators(store, p) == []
    add(store, p, fake)
    with pytest.raises(Conflict):
        add(store, p, fake)


def test_disabled_annotators_do_not_work(store, owner, fake):
    p = project(store, owner, gold_items=())
    add(store, p, fake)
    assert machines.set_enabled(store, p, "gpt", False)["enabled"] is False
    assert machines.run_llm_annotators(store, p)["annotators"] == []
    assert machines.projects_with_machine_annotators(store) == []
    assert machines.set_enabled(store, p, "gpt", True)["enabled"] is True
    assert machines.run_llm_annotators(store, p, max_items=2)["answered"] == 2
    actions = [e["action"] for e in audit.entries(store, p.id)]
    assert "machine.disable" in actions and "machine.enable" in actions


def test_llm_first_ranks_the_items_it_answered_first(store, owner, fake, make_annotator):
    p = project(store, owner, gold_items=(8, 9), redundancy={"min": 2, "max": 3}, assist={"llm_first": True},
                gold={"rate": 0})
    state = "SELECT id, n_assigned, n_done, target, is_open FROM items WHERE project_id = :p ORDER BY id"
    before = rows(store, state, p=p.id)
    add(store, p, fake)
    ranks = dict(rows(store, "SELECT external_id, queue_rank FROM items WHERE project_id = :p", p=p.id))
    assert all(ranks[f"comment {i}"] == (0 if i in (8, 9) else 1) for i in range(10))  # gold stays 0
    assert rows(store, state, p=p.id) == before  # ranking writes the rank and nothing else
    assert machines.rank_for_llm_first(store, p) == 0  # nothing left to change
    # the LLM passes on the first two items and answers the next four: those move ahead for people
    uid = rows(store, "SELECT id FROM users WHERE name = 'llm:gpt'")[0][0]
    ids = {e: i for i, e in rows(store, "SELECT id, external_id FROM items WHERE project_id = :p", p=p.id)}
    for e in ("comment 0", "comment 1"):
        queue.skip(store, ids[e], User(uid, "llm:gpt", "annotator"))
    assert machines.run_llm_annotators(store, p, max_items=4)["answered"] == 4
    ranks = dict(rows(store, "SELECT external_id, queue_rank FROM items WHERE project_id = :p", p=p.id))
    assert {k for k, v in ranks.items() if v == 0} == {f"comment {i}" for i in (2, 3, 4, 5, 8, 9)}
    # an item imported later waits behind them too
    add_items(store, p, [{"text": "comment 30"}])
    machines.run_llm_annotators(store, p, max_items=0)
    assert rows(store, "SELECT queue_rank FROM items WHERE external_id = 'comment 30' AND project_id = :p",
                p=p.id)[0][0] == 1
    # a person gets what the LLM answered first (adaptive redundancy wants a second answer), then the rest
    person, _ = make_annotator("ann")
    served = []
    while (item := queue.claim_next(store, p, person)) is not None:
        served.append(item["external_id"])
        queue.submit(store, item["id"], person, {"spam": truth(int(item["external_id"].split()[1]))})
    assert served[:4] == [f"comment {i}" for i in (2, 3, 4, 5)]
    assert served[4:] == [f"comment {i}" for i in (0, 1, 6, 7, 30)]


def test_machine_annotators_are_never_paid(store, owner, fake, make_annotator):
    p = project(store, owner, gold_items=(), pay={"reward_per_item": "0.10", "auto_approve_hours": 0})
    add(store, p, fake)
    machines.run_llm_annotators(store, p, max_items=4)
    ann, _ = make_annotator("ann")
    for _ in range(3):
        item = queue.claim_next(store, p, ann)
        queue.submit(store, item["id"], ann, {"spam": "ham"})
    written = pay.settle(store, p, now=2e9)
    assert written["reward"] == 3
    assert {r["annotator"] for r in pay.ledger_rows(store, p)} == {"ann"}
    summary = pay.summary(store, p)
    assert [r["annotator"] for r in summary] == ["ann"] and summary[0]["earnings"] == "0.30"


def test_the_worker_runs_every_project_with_an_enabled_llm(store, owner, fake):
    p1 = project(store, owner, slug="one", gold_items=())
    p2 = project(store, owner, slug="two", gold_items=())
    add(store, p1, fake, name="a")
    add(store, p2, fake, name="b")
    worker = MachineWorker(store, interval=30, batch=3)
    assert worker.run_once() == {"answered": 6, "failed": 0}
    fake.mode = "error"
    assert worker.run_once() == {"answered": 0, "failed": 6}
    assert worker.run_once() == {"answered": 0, "failed": 0}  # both projects wait a while before trying again
    fake.mode = "truth"
    worker = MachineWorker(store, interval=0.05, batch=3).start()
    try:
        deadline = time.monotonic() + 20
        while rows(store, "SELECT count(*) FROM annotations")[0][0] < 20 - 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert rows(store, "SELECT count(*) FROM annotations")[0][0] == 18  # all but the two it skipped


def test_the_cli_adds_lists_runs_and_disables(store, owner, fake, db_url):
    p = project(store, owner, gold_items=())

    def run(*args):
        res = CliRunner().invoke(main, ["--db", db_url, "llm", *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    out = run("add", p.slug, "--name", "gpt", "--base-url", fake.url, "--model", "fake-model",
              "--api-key-env", KEY_ENV, "--price-input", "0.15", "--price-output", "0.60")
    assert "llm:gpt" in out
    assert "answered 3, failed 0" in run("run", p.slug, "--max-items", "3")
    assert "gpt" in run("list", p.slug)
    listed = json.loads(run("list", p.slug, "--json"))
    assert listed[0]["items_answered"] == 3 and Decimal(listed[0]["cost"]) == 3 * CALL_COST
    assert "disabled" in run("disable", p.slug, "gpt")
    assert "no enabled LLM annotator" in run("run", p.slug)
    assert "enabled" in run("enable", p.slug, "gpt")
    res = CliRunner().invoke(main, ["--db", db_url, "llm", "add", p.slug, "--name", "x", "--base-url", "nope",
                                    "--model", "m"])
    assert res.exit_code == 2 and "base_url" in res.output


def test_the_api_adds_lists_and_switches(http, store, owner, fake, make_annotator):
    p = project(store, owner, gold_items=())
    _, manager_token = make_annotator("maya", role="manager", member=False)
    join(store, "maya", [p], role="manager")
    _, ann_token = make_annotator("ann")
    url = f"/api/v1/projects/{p.slug}/machine-annotators"
    body = {"name": "gpt", "base_url": fake.url, "model": "fake-model", "api_key_env": KEY_ENV,
            "price_input_per_million": "0.15", "price_output_per_million": "0.60"}
    assert http.post(url, json=body, headers=bearer(ann_token)).status_code == 403
    r = http.post(url, json=body, headers=bearer(manager_token))
    assert r.status_code == 201, r.text
    assert r.json()["user"] == "llm:gpt" and r.json()["api_key_env"] == KEY_ENV
    assert http.post(url, json=body, headers=bearer(manager_token)).status_code == 409
    r = http.post(url, json={**body, "name": "x", "price_output_per_million": "-1"}, headers=bearer(owner[1]))
    assert r.status_code == 422 and r.json()["field"] == "price_output_per_million"
    fake.mode = "error"
    machines.run_llm_annotators(store, p)
    listed = http.get(url, headers=bearer(manager_token)).json()
    assert listed[0]["errors"] == 3 and listed[0]["last_error"] is None  # what the endpoint said: owners only
    assert "HTTP 500" in http.get(url, headers=bearer(owner[1])).json()[0]["last_error"]
    assert http.get(url, headers=bearer(ann_token)).status_code == 403
    r = http.post(f"{url}/gpt/enabled", json={"enabled": False}, headers=bearer(manager_token))
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert http.post(f"{url}/nobody/enabled", json={"enabled": False}, headers=bearer(manager_token)).status_code == 404


def test_a_person_and_the_llm_never_share_a_slot_they_should_not(store, owner, fake, make_annotator):
    """overlap 1: an item a person holds is not given to the LLM, and the other way round."""
    p = project(store, owner, gold_items=(), overlap=1)
    ann, _ = make_annotator("ann")
    held = queue.claim_next(store, p, ann)
    add(store, p, fake)
    assert machines.run_llm_annotators(store, p, max_items=100)["answered"] == 9
    queue.submit(store, held["id"], ann, {"spam": "ham"})
    assert rows(store, "SELECT count(*) FROM items WHERE project_id = :p AND n_done = 1 AND is_open = 0",
                p=p.id)[0][0] == 10


def test_it_takes_the_qualification_test_like_a_person(store, owner, fake):
    passes = project(store, owner, slug="easy", gold_items=(0, 1), gold={"rate": 0},
                     qualification={"size": 2, "pass_mark": 1.0})
    add(store, passes, fake, name="a")
    assert machines.run_llm_annotators(store, passes, max_items=100)["answered"] == 10  # the test, then 8 items
    assert qualification.status(store, passes, User(*rows(store, "SELECT id, name, role FROM users "
                                                                 "WHERE name = 'llm:a'")[0]))["state"] == "passed"
    fails = project(store, owner, slug="hard", gold_items=(3, 7), gold={"rate": 0},
                    qualification={"size": 2, "pass_mark": 1.0, "retakes": 0})
    add(store, fails, fake, name="b")
    result = machines.run_llm_annotators(store, fails, max_items=100)
    assert result["answered"] == 2 and "did not pass" in result["annotators"][0]["stopped"]
    assert rows(store, "SELECT count(*) FROM annotations WHERE project_id = :p", p=fails.id)[0][0] == 0


@pytest.mark.parametrize("wrong_share", [0.0, 0.4])
def test_llm_first_people_only_where_it_is_in_doubt(store, owner, fake, make_annotator, wrong_share):
    """``assist.llm_first`` with adaptive redundancy from 1 answer: the LLM answers first (gold too, so its
    skill is measured like a person's); an item its answer settles needs nobody else; where it is in doubt,
    adaptive redundancy asks people. A reliable LLM leaves people (almost) nothing; an unreliable one, most."""
    slug = f"first{int(wrong_share * 10)}"
    p = project(store, owner, slug=slug, n=40, gold_items=tuple(range(20)), overlap=1,
                redundancy={"min": 1, "max": 3, "confidence": 0.9}, assist={"llm_first": True})
    fake.answers = {f"comment {i}": (truth(i) if (i * 7) % 10 >= wrong_share * 10 else
                                     ("ham" if truth(i) == "spam" else "spam")) for i in range(40)}
    add(store, p, fake, name=f"llm-{slug}")
    assert machines.run_llm_annotators(store, p, max_items=40)["answered"] == 40  # 20 gold + 20 ordinary
    person, _ = make_annotator(f"pat-{slug}", member=False)
    join(store, person.name, [p])
    asked = 0
    while (item := queue.claim_next(store, p, person)) is not None:
        i = int(item["data"]["text"].split()[1])
        queue.submit(store, item["id"], person, {"spam": truth(i)})
        asked += i >= 20  # ordinary items (the gold ones come first: gold rate 1)
    if wrong_share == 0:
        assert asked <= 2, f"a reliable LLM left people {asked} of 20 items"
    else:
        assert asked >= 10, f"an unreliable LLM left people only {asked} of 20 items"


def test_one_run_per_machine_annotator_but_schemas_do_not_block_each_other(store):
    """Two runs of one machine annotator exclude each other; on PostgreSQL the advisory lock is database-wide
    and user ids repeat across schemas, so another labelwright instance's annotator with the same id (here: a
    second schema in the same database) must not be blocked (it was: a flaky "answered 0" in CI)."""
    with _exclusive(store, 1) as first:
        with _exclusive(store, 1) as second:
            assert first and not second
        with _exclusive(store, 2) as other_user:
            assert other_user
        if store.dialect == "postgresql":
            schema = PgSchema()
            other = Store(schema.url)
            try:
                other.migrate()
                with _exclusive(other, 1) as elsewhere:
                    assert elsewhere
            finally:
                other.close()
                schema.drop()
    with _exclusive(store, 1) as again:
        assert again
