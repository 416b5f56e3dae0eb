"""The webhook worker: sends queued deliveries, outside any request, and retries failures with back-off.

Each pass (:meth:`WebhookWorker.run_once`) does three things, never holding a transaction open over
the network:

1. **Claim** due deliveries in one short write transaction: ``attempts`` goes up by one and
   ``next_attempt_at`` moves forward by a lease, so no other worker takes them meanwhile. On
   PostgreSQL, where every server process runs a worker, the rows are picked ``FOR UPDATE SKIP
   LOCKED``; on SQLite the transaction is the store's single writer (``BEGIN IMMEDIATE``).
2. **Send** each one: an HTTP POST of the event's JSON, signed (:mod:`labelwright.services.webhooks`),
   with a short timeout. Any 2xx answer means delivered.
3. **Record** the outcome: delivered, or pending again after the next back-off step, or failed after
   the last attempt; with the status code and the error. A process that dies mid-send loses nothing:
   the lease runs out and the delivery is claimed again.

:meth:`WebhookWorker.start` runs passes in a daemon thread every ``interval`` seconds (the app starts
one in its lifespan unless ``Settings.webhook_worker`` is off); :meth:`WebhookWorker.stop` ends it.
Tests call ``run_once(now=...)`` with the clock they want.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx
from sqlalchemy import text

from labelwright.services.webhooks import BACKOFF, MAX_ATTEMPTS, signed_headers

log = logging.getLogger("labelwright.webhooks")

ERROR_CHARS = 500  # the longest last_error kept

_DUE = ("SELECT 1 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
        "WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.active = 1 LIMIT 1")

_CLAIM = ("UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = :lease WHERE id IN ("
          "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
          "WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.active = 1 "
          "ORDER BY d.next_attempt_at, d.id LIMIT :n{lock}) RETURNING id")

_CLAIMED = ("SELECT d.id, d.attempts, w.url, w.secret, e.kind, e.payload FROM deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id WHERE d.id IN ({ids}) "
            "ORDER BY d.id")

_RECORD = ("UPDATE deliveries SET status = :s, next_attempt_at = :next, last_status_code = :code, "
           "last_error = :err, delivered_at = COALESCE(:at, delivered_at) WHERE id = :id AND attempts = :n")

_RELEASE = ("UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = :now "
            "WHERE id = :id AND attempts = :n AND status = 'pending'")


class WebhookWorker:
    """Sends due deliveries of ``store``: ``run_once()`` for one pass, ``start()``/``stop()`` for a thread.

    ``interval``: seconds between passes when there is nothing more to do; ``batch``: deliveries
    claimed per pass; ``timeout``: seconds one request may take; ``transport``: an httpx transport
    (tests)."""

    def __init__(self, store, *, interval: float = 1.0, batch: int = 10, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self.store = store
        self.interval = interval
        self.batch = batch
        self.timeout = timeout
        # Long enough to send a whole batch to receivers that all time out.
        self.lease = batch * (timeout + 5) + 60
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one pass -------------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Claim, send and record the deliveries due at ``now`` (default: the clock), at most
        ``batch``; returns how many were sent."""
        claimed = self._claim(time.time() if now is None else now)
        for i, (delivery_id, attempt, url, secret, kind, payload) in enumerate(claimed):
            if self._stop.is_set():  # shutting down: hand the rest back rather than make it wait a lease
                self._release(claimed[i:])
                return i
            code, error = self._send(url, secret, kind, delivery_id, payload.encode())
            self._record(delivery_id, attempt, code, error, time.time() if now is None else now)
        return len(claimed)

    def _claim(self, now: float) -> list[tuple]:
        store = self.store
        if store.lookup(_DUE, {"now": now}) is None:  # the usual case: one cheap read, no write
            return []
        lock = " FOR UPDATE OF d SKIP LOCKED" if store.dialect == "postgresql" else ""
        with store.write() as conn:
            ids = conn.execute(text(_CLAIM.format(lock=lock)),
                               {"now": now, "lease": now + self.lease, "n": self.batch}).scalars().all()
            if not ids:
                return []
            keys = {f"d{i}": d for i, d in enumerate(ids)}
            return [tuple(r) for r in conn.execute(
                text(_CLAIMED.format(ids=", ".join(":" + k for k in keys))), keys)]

    def _send(self, url: str, secret: str, kind: str, delivery_id: int, body: bytes):
        """(status code or None, error or None)."""
        try:
            r = self._client.post(url, content=body, headers=signed_headers(secret, kind, delivery_id, body))
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:ERROR_CHARS]
        if 200 <= r.status_code < 300:
            return r.status_code, None
        return r.status_code, f"HTTP {r.status_code}: {r.text.strip()}"[:ERROR_CHARS]

    def _record(self, delivery_id: int, attempt: int, code: int | None, error: str | None, now: float) -> None:
        if error is None:
            values = {"s": "delivered", "next": now, "at": now}
        elif attempt >= MAX_ATTEMPTS:
            values = {"s": "failed", "next": now, "at": None}
            log.warning("webhook delivery %s failed after %s attempts: %s", delivery_id, attempt, error)
        else:
            values = {"s": "pending", "next": now + BACKOFF[attempt - 1], "at": None}
        with self.store.write() as conn:
            # attempts = :n: a result is only kept by the claim it belongs to (not after a lease ran out
            # and another worker claimed the delivery again).
            conn.execute(text(_RECORD), {**values, "code": code, "err": error, "id": delivery_id, "n": attempt})

    def _release(self, claimed: list[tuple]) -> None:
        with self.store.write() as conn:
            for delivery_id, attempt, *_ in claimed:
                conn.execute(text(_RELEASE), {"id": delivery_id, "n": attempt, "now": time.time()})

    # ---- the thread ---------------------------------------------------------------------------

    def start(self) -> "WebhookWorker":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="labelwright-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the request in flight, if any (waits at most ``timeout``, default one request's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5 if timeout is None else timeout)
            self._thread = None
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() >= self.batch  # a full batch: there may be more, go again
            except Exception:  # noqa: BLE001 - a bad pass (database restarting...) must not end the thread
                log.exception("webhook worker pass failed")
                busy = False
            if not busy:
                self._stop.wait(self.interval)
