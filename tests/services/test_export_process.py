"""The server's large exports made by ``labelwright export -o -`` in a child process
(labelwright.services.export_process), on SQLite and PostgreSQL: the same bytes as the export made in the
server process, for each flat format; a child that fails is a 500 with a reference and its standard error
in the server's log, never its text in the answer; small projects stay in the server process; and a
client that goes away mid-download leaves no child process behind (a real server, a real socket)."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from fastapi.testclient import TestClient

from labelwright.app import create_app
from labelwright.errors import INTERNAL_ERROR
from labelwright.services import export_process, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.settings import Settings
from labelwright.store import Store
from tests.conftest import SPAM_SCHEMA, bearer
from tests.procs import descendants
from tests.server import ServerProcess
from tests.services.test_export_flat import relevance  # noqa: F401 - the fixture: real S_Rel answers


@pytest.fixture
def started(monkeypatch):
    """The argv of every child process the server starts."""
    calls: list[list[str]] = []
    real = export_process.stream_output

    def spy(argv, env, **kwargs):
        calls.append(list(argv))
        return real(argv, env, **kwargs)

    monkeypatch.setattr(export_process, "stream_output", spy)
    return calls


def client(store, db_url: str, raise_server_exceptions: bool = True, **settings):
    app = create_app(Settings(db_url=db_url, assist_worker=False, machine_worker=False, **settings), store=store)
    return TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=raise_server_exceptions)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_child_makes_the_same_file_as_the_server(store, db_url, owner, relevance, started, fmt):  # noqa: F811
    url = f"/api/v1/projects/{relevance.slug}/export?format={fmt}"
    with client(store, db_url) as http:
        in_server = http.get(url, headers=bearer(owner[1]))
    assert started == []  # 27 items: under the default 200,000
    with client(store, db_url, export_process_items=0) as http:
        in_child = http.get(url, headers=bearer(owner[1]))
    assert len(started) == 1 and started[0][-6:] == ["export", str(relevance.id), "--format", fmt, "-o", "-"]
    assert in_child.status_code == in_server.status_code == 200
    assert in_child.headers["content-type"] == in_server.headers["content-type"]
    assert in_child.headers["content-disposition"] == in_server.headers["content-disposition"]
    assert len(in_server.content) > 1000 and in_child.content == in_server.content


def test_a_failing_child_is_a_500_with_a_reference_and_its_error_in_the_log(store, db_url, owner, relevance,  # noqa: F811
                                                                            tmp_path, caplog):
    """The server's store works, but the child is sent to a database it cannot open."""
    missing = f"sqlite:///{tmp_path / 'no-such-folder' / 'lw.db'}"
    with client(store, missing, False, export_process_items=0) as http, caplog.at_level(logging.ERROR):
        r = http.get(f"/api/v1/projects/{relevance.slug}/export?format=csv", headers=bearer(owner[1]))
    assert r.status_code == 500
    assert r.json()["error"] == INTERNAL_ERROR and r.json()["reference"]
    assert "no-such-folder" not in r.text  # the child's message names paths: only the log has it
    logged = "\n".join(str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)
    assert "the export process failed (exit status 2): error: no database at" in logged
    assert "no-such-folder" in logged


def test_a_server_runs_two_child_exports_at_once_and_refuses_a_third(store, db_url, owner, relevance,  # noqa: F811
                                                                      tmp_path):
    url = f"/api/v1/projects/{relevance.slug}/export?format=csv"
    with client(store, db_url, export_process_items=0) as http:
        slots = http.app.state.export_slots
        assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # two downloads running
        r = http.get(url, headers=bearer(owner[1]))
        assert r.status_code == 503 and "2 large exports are being made by this server already" in r.json()["error"]
        slots.release()
        assert http.get(url, headers=bearer(owner[1])).status_code == 200  # one free again
        slots.release()
        assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # both back after a download
        slots.release()
        slots.release()
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'lw.db'}"
    with client(store, missing, False, export_process_items=0) as http:
        for _ in range(3):  # a child that fails gives its slot back
            assert http.get(url, headers=bearer(owner[1])).status_code == 500


def test_an_annotator_is_refused_before_any_child_starts(store, db_url, relevance, make_annotator,  # noqa: F811
                                                         started):
    _, token = make_annotator("ann")
    with client(store, db_url, export_process_items=0) as http:
        r = http.get(f"/api/v1/projects/{relevance.slug}/export?format=jsonl", headers=bearer(token))
    assert r.status_code == 403 and started == []


def test_the_threshold_counts_the_projects_items(store, owner):
    p = create_project(store, SPAM_SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"c{i}", "text": str(i)} for i in range(5)])
    assert export_process.item_count(store, p) == 5
    assert export_process.in_child(store, p, Settings(export_process_items=5))
    assert not export_process.in_child(store, p, Settings(export_process_items=6))


def test_a_client_gone_mid_download_leaves_no_child_behind(db_url):
    """A real server with every export in a child; 20,000 items of 1.5 kB, so the export (30 MB) outlasts
    the socket's and the pipe's buffers and the client, who reads the first bytes and hangs up."""
    store = Store(db_url)
    store.migrate()
    owner = users.create_user(store, "olive", "owner", "owner-password")
    token = users.create_api_token(store, owner)
    p = create_project(store, {**SPAM_SCHEMA, "slug": "big", "name": "big"}, created_by=owner.id)
    add_items(store, p, [{"id": f"c{i}", "text": f"comment {i} " * 120} for i in range(20_000)])
    store.close()
    with ServerProcess(db_url, extra_env={"LABELWRIGHT_EXPORT_PROCESS_ITEMS": "0"}) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(f"GET /api/v1/projects/big/export?format=jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n".encode())
            head = s.recv(4096)
            assert head.startswith(b"HTTP/1.1 200"), head[:300]
            assert descendants(server.pid), "the export should run in a child process"
        deadline = time.monotonic() + 30
        while descendants(server.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert descendants(server.pid) == set(), server.log_tail()
