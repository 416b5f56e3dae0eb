"""Running an item's code (a ``code`` question) in the sandbox, for the person judging it.

:func:`run_item` is the whole path from a request to :mod:`labelwright.sandbox`: it finds the item and its
project, checks the caller may run it, picks the question, builds the program (the item's code or the
caller's edit, and the item's tests), and runs it under the question's limits, through a :class:`Runner`
that caps how many runs go at once and how often one person may run.

Who may run an item: a member of its project who holds a lease on it or has answered it (an annotator
runs the items handed to them), or a reviewer, manager or owner of the project (the review and item
pages). Anyone else gets 404 "no item N", as for an item that does not exist (a blocked member, a
stranger) or 403 (a member running an item never handed to them).

Nothing is stored: a run's output is for the person who asked, and the answer they give is what is saved.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import delete, func, insert, literal_column, select, union_all

from labelwright import sandbox
from labelwright.errors import Busy, Forbidden, NotFound, TooManyAttempts, ValidationError
from labelwright.questions.code import MAX_CODE, CodeTask
from labelwright.services import policy
from labelwright.services.access import require
from labelwright.services.projects import get_project
from labelwright.services.users import User
from labelwright.store import Store, loads, locks
from labelwright.store import tables as t
from labelwright.store.sql import window_wait

RUNS_PER_MINUTE = 20  # runs one person may start in a minute (counted in the database: all processes together)
CONCURRENT_RUNS = 2  # runs at once in one server process (the sandbox's CPU is the machine's)
WAIT_FOR_SLOT_S = 10.0  # how long a run waits for a free slot before the answer is 503


class Runner:
    """The limits around the sandbox: at most ``concurrent`` runs at once in this server process (a run
    waits up to ``wait_s`` for a slot, then :class:`Busy`: the runs use this machine's CPU), and at most
    ``per_minute`` runs started by one person in any minute, counted in the database (``code_runs``), so
    that several server processes share one allowance (then :class:`TooManyAttempts` with the seconds to
    wait)."""

    def __init__(self, *, per_minute: int = RUNS_PER_MINUTE, concurrent: int = CONCURRENT_RUNS,
                 wait_s: float = WAIT_FOR_SLOT_S, clock=time.time) -> None:
        if per_minute < 1 or concurrent < 1:
            raise ValueError("per_minute and concurrent must be at least 1")
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.wait_s = wait_s
        self._clock = clock
        self._slots = threading.BoundedSemaphore(concurrent)

    def admit(self, store: Store, user_id: int) -> None:
        """Count a run for ``user_id`` or refuse it (429) when they started ``per_minute`` in the last
        minute, through any server process. Counting and recording are one write transaction (SQLite
        serialises writes; PostgreSQL also takes the person's advisory lock), so parallel runs cannot slip
        past the limit together."""
        now = self._clock()
        c = t.code_runs
        with store.write() as conn:
            if store.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(literal_column(locks.CODE_RUNS), user_id)))
            conn.execute(delete(c).where(c.c.created_at <= now - 60))
            wait = window_wait(conn, c, c.c.user_id == user_id, self.per_minute, 60, now)
            if not wait:
                conn.execute(insert(c).values(user_id=user_id, created_at=now))
                return
        raise TooManyAttempts(f"at most {self.per_minute} code runs a minute: try again in {wait} s",
                              retry_after=wait)

    def run(self, store: Store, user_id: int, files: dict[str, str], main: str,
            question: CodeTask) -> sandbox.RunResult:
        self.admit(store, user_id)
        if not self._slots.acquire(timeout=self.wait_s):
            raise Busy(f"all {self.concurrent} code runs of this server are busy: try again in a moment")
        try:
            return sandbox.run_language(question.language, files, main, **question.limits())
        finally:
            self._slots.release()


def _item(store: Store, item_id: int):
    with store.read() as conn:
        i = t.items
        row = conn.execute(select(i.c.id, i.c.project_id, i.c.data).where(i.c.id == item_id)).first()
        if row is None:
            raise NotFound(f"no item {item_id}")
        return row, get_project(store, row.project_id, conn=conn)


def _handed_to(store: Store, item_id: int, user: User) -> bool:
    with store.read() as conn:
        held = [select(tbl.c.item_id).where(tbl.c.item_id == item_id, tbl.c.user_id == user.id)
                for tbl in (t.leases, t.annotations)]
        return conn.execute(union_all(*held)).first() is not None


def _question(project, name: str | None) -> CodeTask:
    codes = [q for q in project.schema.questions if isinstance(q, CodeTask)]
    if name is None:
        if not codes:
            raise ValidationError("this item's project has no code question: there is nothing to run",
                                  field="question")
        return codes[0]
    for q in codes:
        if q.name == name:
            return q
    raise ValidationError(f"{name!r} is not a code question of this item's project; code questions: "
                          f"{[q.name for q in codes]}", field="question")


def run_item(store: Store, runner: Runner, item_id: int, user: User, *, question: str | None = None,
             code: str | None = None) -> dict:
    """Run item ``item_id``'s code question (``question``, default: the first) with the item's code, or
    ``code`` (the caller's edit) when given, and its tests; the result as JSON (``RunResult`` plus the
    ``question`` and whether the code was ``edited``)."""
    row, project = _item(store, item_id)
    role = require(store, user, project, missing=f"no item {item_id}")
    if not policy.role_allows(role, policy.review) and not _handed_to(store, item_id, user):
        raise Forbidden(f"item {item_id} was not handed to you: run the items you are labelling")
    q = _question(project, question)
    if code is not None and not q.editable:
        raise ValidationError("this question does not take edited code: run the item's own", field="code")
    if code is not None and len(code) > MAX_CODE:
        raise ValidationError(f"at most {MAX_CODE} characters of code", field="code")
    data = loads(row.data) if isinstance(row.data, (str, bytes)) else row.data
    files, main = q.program(data, code)
    try:
        result = runner.run(store, user.id, files, main, q)
    except sandbox.SandboxUnavailable as e:
        raise Busy(f"code cannot be run on this server: {e}") from None
    except sandbox.SandboxInputError as e:
        raise ValidationError(str(e), field="code") from None
    original = data.get(q.code)
    return {"question": q.name, "item_id": item_id, "edited": code is not None and code != original,
            **result.to_dict()}


__all__ = ["CONCURRENT_RUNS", "RUNS_PER_MINUTE", "Runner", "run_item"]
