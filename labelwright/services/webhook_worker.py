"""The webhook worker: sends queued deliveries, outside any request, and retries failures with back-off.

Each pass (:meth:`WebhookWorker.run_once`) does three things, never holding a transaction open over
the network:

1. **Claim** due deliveries in one short write transaction: ``attempts`` goes up by one and
   ``next_attempt_at`` moves forward by a lease, so no other worker takes them meanwhile. On
   PostgreSQL, where every server process runs a worker, the rows are picked ``FOR UPDATE SKIP
   LOCKED``; on SQLite the transaction is the store's single writer (``BEGIN IMMEDIATE``).
2. **Send** each one: an HTTP POST of the event's JSON, signed (:mod:`labelwright.services.webhooks`),
   with a short timeout. Any 2xx answer means delivered; redirects are not followed (a 3xx is a
   failed attempt, like any other status).
3. **Record** the outcome: delivered, or pending again after the next back-off step, or failed after
   the last attempt; with the status code and the error. A process that dies mid-send loses nothing:
   the lease runs out and the delivery is claimed again.

**Destinations.** Unless ``allow_private`` (``Settings.webhook_allow_private``) is on, requests go
through :class:`GuardedTransport`: it resolves the host itself, refuses the delivery when *any* of
its addresses is loopback, private, link-local... (:func:`~labelwright.services.webhooks.refused_because`),
and then connects to the very address it checked, so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot slip through. A refused delivery is marked ``failed`` at once,
with the reason as its error: the destination is a configuration mistake that retrying will not
mend (fix the URL or the setting, then retry the delivery).

**The delivery log** keeps the receiver's status code and at most :data:`EXCERPT_CHARS` characters
of its answer (printable text, whitespace folded), read from at most :data:`EXCERPT_BYTES` bytes: enough
to tell why a receiver said no, too little to make the log a way to read other services' pages.

:meth:`WebhookWorker.start` runs passes in a daemon thread every ``interval`` seconds (the app starts
one in its lifespan unless ``Settings.webhook_worker`` is off); :meth:`WebhookWorker.stop` ends it.
Tests call ``run_once(now=...)`` with the clock they want.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpcore
import httpx
from sqlalchemy import Row, Update, select, update

from labelwright.services.webhooks import ALLOW_PRIVATE_HINT, BACKOFF, MAX_ATTEMPTS, refused_because, signed_headers
from labelwright.store import Store, lookups
from labelwright.store import tables as t

log = logging.getLogger("labelwright.webhooks")

ERROR_CHARS = 500  # the longest last_error kept (connection errors)
EXCERPT_CHARS = 200  # the most of a receiver's answer kept in last_error, after "HTTP <code>: "
EXCERPT_BYTES = 1024  # the most of a receiver's answer read




def _claim_due(now: float, lease_until: float, batch: int, skip_locked: bool) -> Update:
    """Take up to ``batch`` due deliveries of active webhooks (an attempt counted, leased until ``lease_until``);
    with ``skip_locked`` (PostgreSQL), rows another worker is claiming right now are passed over."""
    d, w = t.deliveries, t.webhooks
    due = (select(d.c.id).select_from(d.join(w, w.c.id == d.c.webhook_id))
           .where(d.c.status == "pending", d.c.next_attempt_at <= now, w.c.active == 1)
           .order_by(d.c.next_attempt_at, d.c.id).limit(batch))
    if skip_locked:
        due = due.with_for_update(of=d, skip_locked=True)
    return (update(d).where(d.c.id.in_(due)).values(attempts=d.c.attempts + 1, next_attempt_at=lease_until)
            .returning(d.c.id))



def _excerpt(response: httpx.Response) -> str:
    """The start of ``response``'s body as one line of printable text, at most :data:`EXCERPT_CHARS`."""
    raw = b""
    for chunk in response.iter_raw():
        raw += chunk
        if len(raw) >= EXCERPT_BYTES:
            break
    line = "".join(c if c.isprintable() else " " for c in raw[:EXCERPT_BYTES].decode("utf-8", "replace"))
    line = " ".join(line.split())
    return line if len(line) <= EXCERPT_CHARS else line[:EXCERPT_CHARS - 1] + "…"


class DestinationRefused(Exception):
    """A delivery's host is, or resolves to, an address webhooks may not reach."""


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, but it resolves the host itself, refuses it when any of its
    addresses is refused, and connects to the addresses it checked (never to the name, which the
    system would resolve again, perhaps to another address)."""

    def __init__(self):
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:  # a name that does not resolve (now): a connection error, tried again later
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            why = refused_because(address)
            if why:
                raise DestinationRefused(f"{host}, {why}" if address == host else
                                         f"{host} resolves to {address}, {why}")
        # Like socket.create_connection: each address in turn, within one connect timeout in all.
        deadline = None if timeout is None else time.monotonic() + timeout
        error: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                return self._backend.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        raise error

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_GuardedBackend`. The URL, and so the ``Host`` header, TLS's
    server name (SNI) and the certificate check, keep the host name: only the TCP connection is made
    to the checked address. Connections are pooled per host name as usual; each was checked when made."""

    def __init__(self):
        super().__init__()
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):  # httpx's internals moved
            raise RuntimeError("httpx.HTTPTransport has no _pool to guard: update GuardedTransport")
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), keepalive_expiry=5.0,
                                             network_backend=_GuardedBackend())


class WebhookWorker:
    """Sends due deliveries of ``store``: ``run_once()`` for one pass, ``start()``/``stop()`` for a thread.

    ``interval``: seconds between passes when there is nothing more to do; ``batch``: deliveries
    claimed per pass; ``timeout``: seconds one request may take; ``allow_private``: deliver to
    private, loopback and link-local addresses too (``Settings.webhook_allow_private``; off:
    requests go through :class:`GuardedTransport`); ``transport``: an httpx transport that replaces
    the guarded one (tests)."""

    def __init__(self, store: Store, *, interval: float = 1.0, batch: int = 10, timeout: float = 10.0,
                 allow_private: bool = False, transport: httpx.BaseTransport | None = None):
        self.store = store
        self.interval = interval
        self.batch = batch
        self.timeout = timeout
        self.allow_private = allow_private
        # Long enough to send a whole batch to receivers that all time out.
        self.lease = batch * (timeout + 5) + 60
        if transport is None:
            transport = httpx.HTTPTransport() if allow_private else GuardedTransport()
        # trust_env=False: no HTTP(S)_PROXY from the environment, which would connect for us, unchecked
        # (the transports still read SSL_CERT_FILE and SSL_CERT_DIR).
        # Accept-Encoding identity: the excerpt of an error answer is read as it comes, never inflated.
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport,
                                    headers={"Accept-Encoding": "identity"})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one pass -------------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Claim, send and record the deliveries due at ``now`` (default: the clock), at most
        ``batch``; returns how many were sent."""
        claimed = self._claim(time.time() if now is None else now)
        for i, c in enumerate(claimed):
            delivery_id, attempt, url, secret, kind, payload = c.id, c.attempts, c.url, c.secret, c.kind, c.payload
            if self._stop.is_set():  # shutting down: hand the rest back rather than make it wait a lease
                self._release(claimed[i:])
                return i
            code, error, final = self._send(url, secret, kind, delivery_id, payload.encode())
            self._record(delivery_id, attempt, code, error, time.time() if now is None else now, final)
        return len(claimed)

    def _claim(self, now: float) -> list[Row]:
        store = self.store
        if store.lookup(lookups.DELIVERY_DUE, {"now": now}) is None:  # the usual case: one cheap read, no write
            return []
        d, w, e = t.deliveries, t.webhooks, t.events
        with store.write() as conn:
            ids = conn.execute(_claim_due(now, now + self.lease, self.batch, store.dialect == "postgresql")
                               ).scalars().all()
            if not ids:
                return []
            return list(conn.execute(
                select(d.c.id, d.c.attempts, w.c.url, w.c.secret, e.c.kind, e.c.payload)
                .select_from(d.join(w, w.c.id == d.c.webhook_id).join(e, e.c.id == d.c.event_id))
                .where(d.c.id.in_(ids)).order_by(d.c.id)).all())

    def _send(self, url: str, secret: str, kind: str, delivery_id: int, body: bytes):
        """(status code or None, error or None, whether the failure is final: no retry can mend it)."""
        headers = signed_headers(secret, kind, delivery_id, body)
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as r:
                if 200 <= r.status_code < 300:
                    return r.status_code, None, False
                excerpt = _excerpt(r)
        except DestinationRefused as e:
            return None, f"refused: {e}: {ALLOW_PRIVATE_HINT}"[:ERROR_CHARS], True
        except httpx.InvalidURL as e:  # stored before the URL checks knew better
            return None, f"InvalidURL: {e}"[:ERROR_CHARS], True
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:ERROR_CHARS], False
        return r.status_code, f"HTTP {r.status_code}" + (f": {excerpt}" if excerpt else ""), False

    def _record(self, delivery_id: int, attempt: int, code: int | None, error: str | None, now: float,
                final: bool = False) -> None:
        d = t.deliveries
        values: dict[str, object] = {"last_status_code": code, "last_error": error}
        if error is None:
            values.update(status="delivered", next_attempt_at=now, delivered_at=now)
        elif final or attempt >= MAX_ATTEMPTS:
            values.update(status="failed", next_attempt_at=now)
            log.warning("webhook delivery %s failed after %s attempts: %s", delivery_id, attempt, error)
        else:
            values.update(status="pending", next_attempt_at=now + BACKOFF[attempt - 1])
        with self.store.write() as conn:
            # attempts = attempt: a result is only kept by the claim it belongs to (not after a lease ran out
            # and another worker claimed the delivery again).
            conn.execute(update(d).where(d.c.id == delivery_id, d.c.attempts == attempt).values(**values))

    def _release(self, claimed: list[Row]) -> None:
        d = t.deliveries
        with self.store.write() as conn:
            for c in claimed:
                conn.execute(update(d).where(d.c.id == c.id, d.c.attempts == c.attempts, d.c.status == "pending")
                             .values(attempts=d.c.attempts - 1, next_attempt_at=time.time()))

    # ---- the thread ---------------------------------------------------------------------------

    def start(self) -> WebhookWorker:
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
