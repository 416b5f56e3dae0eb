"""Run labelwright as a real server process for system tests.

``serve(db_url)`` is a context manager that starts ``python -m labelwright --db URL serve --port P`` on a
free port (with ``LABELWRIGHT_DB`` set as well), waits until ``GET /healthz`` answers, yields the
base URL and stops the server afterwards. :class:`ServerProcess` is the same thing as an object, for
tests that need the process itself: :meth:`ServerProcess.kill9` sends SIGKILL to the server.

With one worker (the default of ``serve``) uvicorn runs the app inside the process we start, so the
pid of our ``subprocess.Popen`` *is* the server: there is no wrapper or supervisor in between.
:meth:`ServerProcess.kill9` checks that before killing, and checks afterwards that the port is closed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy import text

from labelwright.services import access, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.store import Store

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0  # an upper bound: a busy machine (two test workers) starts a server slowly


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    """One ``labelwright serve`` process on ``db_url``."""

    def __init__(self, db_url: str, *, port: int | None = None, extra_env: dict | None = None):
        self.db_url = db_url
        self.fixed_port = port  # None: a fresh free port on every start
        self.port = port
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def log_excerpt(self, n: int = 6000) -> str:
        """The first unexpected error the server logged (with its traceback) and the log's last lines."""
        if self._log is None:
            return ""
        try:
            text = Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""
        at = text.find("unexpected error")
        first = f"--- the server's first unexpected error ---\n{text[at:at + n]}\n" if at >= 0 else ""
        return f"{first}--- the server's log, last lines ---\n{text[-2000:]}"

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        last_error = None
        assert self.proc is None, "already running"
        for _attempt in range(3):  # a free port can be taken by someone else before we bind it
            port = self.fixed_port or free_port()
            try:
                self._start_once(port, timeout)
                return self
            except _PortTaken as e:
                last_error = e
                if self.fixed_port:
                    break
        raise RuntimeError(f"could not start the server: {last_error}")

    def _start_once(self, port: int, timeout: float) -> None:
        env = dict(os.environ)
        env["LABELWRIGHT_DB"] = self.db_url
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        self._log = tempfile.NamedTemporaryFile(prefix="lw-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labelwright", "--db", self.db_url, "serve", "--port", str(port)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.port = port
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                tail = self.log_tail()
                self.proc = None
                if "address already in use" in tail.lower():
                    raise _PortTaken(tail)
                raise RuntimeError(f"server exited with code {code} before it was ready:\n{tail}")
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def _children(self) -> list[int]:
        kids = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                kids += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
        return kids

    def kill9(self) -> None:
        """SIGKILL the server process itself (no graceful shutdown), and make sure it is gone."""
        assert self.proc is not None and self.proc.poll() is None, "server is not running"
        cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        assert b"labelwright" in cmdline and b"serve" in cmdline, cmdline
        kids = self._children()
        assert not kids, f"the server process has children {kids}: we would not be killing the server"
        os.kill(self.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=30)
        assert code == -signal.SIGKILL, code
        self.proc = None
        deadline = time.monotonic() + 10
        while port_open(self.port):
            assert time.monotonic() < deadline, f"port {self.port} still open after killing the server"
            time.sleep(0.05)

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate gracefully (SIGTERM), SIGKILL the process group if it does not exit."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def cleanup_log(self) -> None:
        if self._log is not None:
            try:
                os.unlink(self._log.name)
            except OSError:
                pass

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
        if exc[0] is None:
            self.cleanup_log()


class _PortTaken(Exception):
    pass


@contextmanager
def serve(db_url: str, *, timeout: float = START_TIMEOUT):
    """Start a server on ``db_url``, yield its base URL (``http://127.0.0.1:PORT``), stop it after."""
    with ServerProcess(db_url).start(timeout) as server:
        try:
            yield server.url
        except AssertionError as e:  # show what the server logged (an unexpected error's traceback first)
            e.args = (f"{e.args[0] if e.args else ''}\n{server.log_excerpt()}",) + e.args[1:]
            raise


def kill9(server: ServerProcess) -> None:
    """``kill -9`` the server process (see :meth:`ServerProcess.kill9`)."""
    server.kill9()


# ---- seeding and reading a database for system tests -------------------------------------------


def seed(db_url: str, schema: dict, items: list[dict], annotators: list[str]) -> dict:
    """Create an owner, ``annotators`` (each with an API token), a project and its items, directly on
    the database (before a server starts). Returns tokens and the project's slug and id."""
    store = Store(db_url, pool_size=2)
    try:
        store.migrate()
        owner = users.create_user(store, "owner", "owner")
        out = {"owner": users.create_api_token(store, owner), "annotators": {}, "user_ids": {}}
        for name in annotators:
            u = users.create_user(store, name, "annotator")
            out["annotators"][name] = users.create_api_token(store, u)
            out["user_ids"][name] = u.id
        p = create_project(store, schema, created_by=owner.id)
        add_items(store, p, items)
        for name in annotators:
            access.set_member(store, p, name, "annotator")
        out["project"], out["project_id"] = p.slug, p.id
        return out
    finally:
        store.close()


def export_jsonl(url: str, owner_token: str, project: str) -> list[dict]:
    """The project's JSONL export through the API, parsed."""
    r = httpx.get(f"{url}/api/v1/projects/{project}/export", params={"format": "jsonl"},
                  headers={"Authorization": f"Bearer {owner_token}"}, timeout=120)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


ITEM_STATE_SQL = """
SELECT i.id, i.n_assigned, i.n_done, i.is_open, i.target,
       (SELECT count(*) FROM leases l WHERE l.item_id = i.id) AS n_leases,
       (SELECT count(*) FROM annotations a WHERE a.item_id = i.id) AS n_annotations
FROM items i WHERE i.project_id = :p ORDER BY i.id
"""


def item_state_violations(conn, project_id: int, overlap: int, strict: bool = True) -> list[str]:
    """The queue invariants of labelwright.services.queue, checked on one consistent snapshot, where an
    item wants ``want = COALESCE(target, overlap)`` answers: n_assigned = annotations + lease rows,
    n_done = annotations, is_open = n_assigned < want, and no lease beyond want (an item may hold more
    answers than it now wants, e.g. a gold item made ordinary, but is then handed to nobody). ``strict``
    False allows a lease taken before the item's target went down."""
    bad = []
    for r in conn.execute(text(ITEM_STATE_SQL), {"p": project_id}):
        want = overlap if r.target is None else r.target
        if r.n_assigned != r.n_leases + r.n_annotations:
            bad.append(f"item {r.id}: n_assigned {r.n_assigned} != leases {r.n_leases} + annotations {r.n_annotations}")
        if strict and r.n_leases and r.n_leases + r.n_annotations > want:
            bad.append(f"item {r.id}: leases {r.n_leases} + annotations {r.n_annotations} > want {want}")
        if r.n_done != r.n_annotations:
            bad.append(f"item {r.id}: n_done {r.n_done} != annotations {r.n_annotations}")
        if bool(r.is_open) != (r.n_assigned < want):
            bad.append(f"item {r.id}: is_open {r.is_open} but n_assigned {r.n_assigned}, want {want}")
    return bad


class internal_page:
    """A local HTTP server that answers every POST with 500 and ``body``: a stand-in for an internal page a
    model URL might point at. ``with internal_page(b"...") as port:``."""

    def __init__(self, body: bytes):
        self.body = body

    def __enter__(self) -> int:
        body = self.body

        class Internal(BaseHTTPRequestHandler):
            def do_POST(self):
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Internal)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_port

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
