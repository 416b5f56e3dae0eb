"""Group commit for PostgreSQL: the hot calls of one server process share transactions and round trips.

:meth:`labelwright.store.Store.run` hands each call (claim the next item, submit an answer, with the
lookups of the caller's token and project) to one of this process's :class:`PgBatcher` threads (there are
``pg_batches`` of them, sharing one queue), which takes a connection of the store's hot pool for each
batch and sends statements on it together (:mod:`labelwright.store.pg_wire`: libpq's pipeline mode,
prepared statements). It takes every call that is waiting and runs them together, each in a greenlet of
its own, inside one transaction:

1. ``BEGIN``, and a lock on the item rows the batch's submissions will update, taken in order of id
   (:data:`LOCK_ITEMS`), so that two batches never deadlock (a call's user lock is only tried in a batch:
   see :class:`BatchTx`); every call runs until it needs the result
   of a statement it sent (through
   :meth:`Store.lookup <labelwright.store.Store.lookup>` or the :class:`BatchTx` that
   :meth:`Store.pipeline <labelwright.store.Store.pipeline>` gives it);
2. one round trip sends what all of them queued and fetches the results; the calls go on, and this
   repeats until each call has finished or reached the end of its transaction
   (:meth:`BatchTx.commit_with`);
3. one ``COMMIT`` (synchronous: durable before anyone is answered); the calls then finish what they do
   after their commit, outside the batch (as they would alone), and the callers get their answers.

So a batch of N calls costs a few round trips and one commit, instead of several round trips and a
commit for each. The calls of one batch see each other's writes (one transaction), which is how the
SQLite writer runs them too: a claim and its lease, or an answer, are visible to the next call at once,
and the queue's invariants (``items.n_assigned``, one lease per user and item) hold as they do there.
Other server processes are other transactions, kept apart by row locks and advisory locks as before.

If any statement of a batch fails (a deadlock with another process, a lost connection, a constraint),
the batch is rolled back and each of its calls runs again on its own, outside any batch: nothing was
committed, and nobody was answered.
"""

from __future__ import annotations

import asyncio
import logging
import queue as _queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import greenlet
import psycopg

from labelwright.store.futures import deliver, take_batch
from labelwright.store.pg_wire import Result, Wire
from labelwright.store.queue_sql import LOCK_CLAIMER, LOCK_USER, TRY_LOCK_USER, fetch_value

if TYPE_CHECKING:
    from labelwright.store import Store

log = logging.getLogger("labelwright.store")

MAX_BATCH = 64  # most calls in one transaction
ALONE_TRIES = 4  # runs of a call on its own before a deadlock reaches its caller
# The item rows a batch's submissions will update, locked first, in one global order (by id): two batches
# (of this process or another) then never hold one row each while waiting for the other's. After this
# statement a batch waits for no row lock: claims skip the rows others hold (SKIP LOCKED).
LOCK_ITEMS = "SELECT id FROM items WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"


@dataclass
class _Call:
    fn: Callable
    args: tuple
    kwargs: dict
    loop: asyncio.AbstractEventLoop
    fut: asyncio.Future
    items: tuple = ()          # the item rows the call will update (locked first, see LOCK_ITEMS)
    green: greenlet.greenlet | None = None
    open: bool = True          # still inside the batch's transaction (not past its commit point)
    state: str = "new"         # new | sync (waits for results) | commit (waits for COMMIT) | done
    ok: bool = False
    value: Any = None
    cursors: list = field(default_factory=list)


class PendingCursor:
    """A statement sent in a batch; its rows can be read once the batch has synced (fetching waits for it)."""

    def __init__(self, batcher: PgBatcher, call: _Call, result: Result):
        self._batcher, self._call, self._result = batcher, call, result

    def fetchone(self):
        self._batcher.wait_sync(self._call)
        return self._result.fetchone()

    def fetchall(self):
        self._batcher.wait_sync(self._call)
        return self._result.fetchall()


class PgPipeline:
    """The statements of one PostgreSQL transaction, sent together (:class:`labelwright.store.pg_wire.Wire`):
    each :meth:`execute` queues its statement, and the first read of a result (or :meth:`commit`) sends
    everything queued in one round trip."""

    def __init__(self, store: Store, conn: psycopg.Connection):
        self.store = store
        self.conn = conn
        self.wire = Wire(conn)
        self.committed = False

    def execute(self, statement: str, params: dict | None = None) -> Result:
        """Queue a statement (``:name`` parameters); reading its result sends it."""
        return self.wire.execute(statement, params)

    def flush(self) -> None:
        """Send what is queued and wait for the results (one round trip)."""
        self.wire.flush()

    def lock_user(self, params: dict, durable: bool = True, then: str | None = None) -> Result | None:
        """Serialise the transactions of user ``params["u"]`` (a transaction-scoped advisory lock).
        ``durable=False``: the transaction writes nothing worth a flush of the WAL (a claim's lease), so
        it commits without waiting for one. ``then``: a statement to send right after the lock (what the
        transaction reads first under it); returns its result."""
        self.execute(LOCK_USER if durable else LOCK_CLAIMER, params)
        return None if then is None else self.execute(then, params)

    def commit_with(self, statement: str, params: dict | None = None) -> Result:
        """Queue the last statement and ``COMMIT``, and send them (and everything queued before): one
        round trip. Returns the statement's result."""
        result = self.execute(statement, params)
        self.commit()
        return result

    def commit(self) -> None:
        """``COMMIT``, sent with everything queued before (one round trip)."""
        self.execute("COMMIT")
        self.committed = True
        self.wire.flush()

    def leave(self) -> None:
        """Drop what was queued and never sent (the block ended with an error before its commit)."""
        self.wire.clear()


class BatchTx:
    """One call's transaction inside a batch (the methods of :class:`labelwright.store.PgPipeline`).

    The transactions of one user are serialised (:meth:`lock_user`): a second call of the same user in a
    batch, or a call whose user's lock another transaction holds (the same person's request in another
    batch or server process), waits for the batch to commit and then runs its transaction on its own, as
    it would behind that advisory lock. A batch therefore never waits for an advisory lock: it waits only
    for the item rows it locks first, in order of id (:data:`LOCK_ITEMS`), and two batches cannot deadlock."""

    def __init__(self, batcher: PgBatcher, call: _Call):
        self._batcher, self._call = batcher, call
        self.committed = False
        self.alone: Any = None     # the transaction, when it runs on its own after the batch
        self.alone_cm: Any = None

    def execute(self, statement: str, params: dict | None = None):
        if self.alone is not None:
            return self.alone.execute(statement, params)
        return self._batcher.send(self._call, statement, params)

    def lock_user(self, params: dict, durable: bool = True, then: str | None = None):
        """The caller's advisory lock. In the batch it is only tried (one round trip, shared by the batch's
        calls, which also carries ``then``: see :meth:`PgPipeline.lock_user`); the transaction then always
        commits durably (the batch may hold submissions). When the lock is held elsewhere, ``then``'s
        result is dropped and the statement is sent again in the call's own transaction, under the lock."""
        if self.alone is None and self._batcher.lock_in_batch(params["u"]):
            locked = self._batcher.send(self._call, TRY_LOCK_USER, params)
            after = None if then is None else self._batcher.send(self._call, then, params)
            if fetch_value(locked):
                return after
        if self.alone is None:  # someone holds the lock: run past the batch, in the call's own transaction
            self._batcher.wait_commit(self._call)
            self.alone_cm = self._batcher.store.pipeline()
            self.alone = self.alone_cm.__enter__()
        return self.alone.lock_user(params, durable, then)

    def commit_with(self, statement: str, params: dict | None = None):
        if self.alone is not None:
            self.committed = True
            return self.alone.commit_with(statement, params)
        cur = self.execute(statement, params)
        self.committed = True
        self._batcher.wait_commit(self._call)
        return cur


class PgBatcher(threading.Thread):
    """Runs :meth:`Store.run` calls in shared transactions (see the module docstring). Several batchers
    may share one queue of ``jobs``: while one waits for the database, the next takes what is waiting."""

    def __init__(self, store: Store, jobs: _queue.SimpleQueue, number: int = 0):
        super().__init__(name=f"labelwright-pg-batcher-{number}", daemon=True)
        self.store = store
        self.queue = jobs
        self._calls: dict[greenlet.greenlet, _Call] = {}
        self._users: set[int] = set()  # the users whose transactions this batch holds
        self.shared = 0    # calls committed in a shared transaction so far
        self.commits = 0   # shared transactions committed so far
        self.failed = 0    # batches that failed (their calls then ran one by one)
        self._tx: PgPipeline | None = None  # the running batch's transaction

    # ---- the callers' side (in a call's greenlet) ----------------------------------------------------

    def current(self) -> _Call | None:
        """The call running in this greenlet, while it is inside its batch's transaction."""
        call = self._calls.get(greenlet.getcurrent())
        return call if call is not None and call.open else None

    def send(self, call: _Call, statement: str, params: dict | None) -> PendingCursor:
        assert self._tx is not None
        result = self._tx.execute(statement, params)
        call.cursors.append(result)
        return PendingCursor(self, call, result)

    def wait_sync(self, call: _Call) -> None:
        """Wait (let the other calls run) until what ``call`` sent has its results."""
        if call.open and call.cursors:
            call.state = "sync"
            self._to_scheduler()

    def wait_commit(self, call: _Call) -> None:
        """Wait until the batch has committed; the call then goes on outside the batch."""
        call.state = "commit"
        self._to_scheduler()

    def _to_scheduler(self) -> None:
        parent = greenlet.getcurrent().parent
        assert parent is not None
        parent.switch()

    def lock_in_batch(self, user_id: int) -> bool:
        """Take user ``user_id``'s place in this batch; False when another call of theirs holds it."""
        if user_id in self._users:
            return False
        self._users.add(user_id)
        return True

    @contextmanager
    def transaction(self, call: _Call) -> Iterator[BatchTx]:
        tx = BatchTx(self, call)
        try:
            yield tx
        except BaseException as e:
            if tx.alone_cm is not None:
                tx.alone_cm.__exit__(type(e), e, e.__traceback__)
            raise
        if tx.alone_cm is not None:
            tx.alone_cm.__exit__(None, None, None)
        elif not tx.committed:  # the block ended without its commit: commit with the batch
            tx.committed = True
            self.wait_commit(call)

    # ---- the thread --------------------------------------------------------------------------------

    def run(self) -> None:
        self.store.in_batcher(self)
        while (batch := take_batch(self.queue, MAX_BATCH)) is not None:
            self._run_batch([_Call(*job) for job in batch])

    def _run_batch(self, calls: list[_Call]) -> None:
        if len(calls) == 1:  # nothing to share: the call's own transaction costs the same
            self._alone(calls[0])
            self._deliver(calls)
            return
        self._users.clear()
        try:
            # A connection of the hot pool for this batch: health-checked as it is handed out, and back
            # in the pool before the calls go on past their commit (which may need one of their own).
            with self.store.hot_connection() as conn:
                tx = self._tx = PgPipeline(self.store, conn)
                try:
                    tx.execute("BEGIN")
                    items = sorted({i for call in calls for i in call.items})
                    if items:
                        tx.execute(LOCK_ITEMS, {"ids": items})
                    for call in calls:
                        call.green = greenlet.greenlet(self._call_body(call))
                        self._calls[call.green] = call
                        call.green.switch()
                    while any(call.state == "sync" for call in calls):
                        tx.flush()
                        for call in calls:
                            if call.state == "sync" and call.green is not None:
                                call.cursors.clear()
                                call.state = "running"
                                call.green.switch()
                    tx.commit()  # COMMIT, with the last statements: one round trip
                finally:
                    self._tx = None
                    tx.leave()
            self.commits += 1
            self.shared += len(calls)
        except Exception as e:  # noqa: BLE001 - the batch failed: run each call on its own
            self.failed += 1
            log.info("a batch of %d calls failed (%s: %s); running them one by one", len(calls),
                     type(e).__name__, e)
            self._abandon(calls)
            for call in calls:
                self._alone(call)
            self._deliver(calls)
            return
        for call in calls:  # committed: each call finishes outside the batch
            call.open = False
            if call.state == "commit" and call.green is not None:
                call.green.switch()
        for call in calls:
            self._calls.pop(call.green, None)
        self._deliver(calls)

    def _call_body(self, call: _Call) -> Callable[[], None]:
        def body() -> None:
            try:
                call.value, call.ok = call.fn(*call.args, **call.kwargs), True
            except Exception as e:  # noqa: BLE001 - handed to the caller
                call.value, call.ok = e, False
            call.state = "done"
            call.open = False
        return body

    def _abandon(self, calls: list[_Call]) -> None:
        """End the failed batch's greenlets (none was committed or answered; its transaction was rolled
        back as its connection went back to the pool)."""
        for call in calls:
            self._calls.pop(call.green, None)
            call.open = False
            if call.green is not None and not call.green.dead:
                call.green.throw(greenlet.GreenletExit)
            call.state, call.value, call.ok, call.green = "new", None, False, None
            call.cursors.clear()

    @staticmethod
    def _alone(call: _Call) -> None:
        """Run ``call`` outside any batch (its own transactions, as without a batcher). If PostgreSQL aborts
        its transaction to break a deadlock (one user's simultaneous requests, one running alone while a
        batch holds the item its other request updates), it runs again: the aborted transaction kept
        nothing, and the queue's calls may be run again (a claim renews the lease it took)."""
        for attempt in range(ALONE_TRIES):
            try:
                call.value, call.ok = call.fn(*call.args, **call.kwargs), True
                return
            except Exception as e:  # noqa: BLE001 - handed to the caller
                call.value, call.ok = e, False
                if not isinstance(getattr(e, "orig", e), psycopg.errors.DeadlockDetected):
                    return
                time.sleep(0.005 * (attempt + 1))

    @staticmethod
    def _deliver(calls: list[_Call]) -> None:
        deliver((call.loop, call.fut, call.ok, call.value) for call in calls)
