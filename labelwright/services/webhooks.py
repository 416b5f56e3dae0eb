"""Webhooks: URLs that receive events, how each request is signed, and the delivery log.

A webhook receives the events (:mod:`labelwright.services.events`) of one project, or of every project
when its ``project_id`` is NULL, of every kind (``"*"``) or of the kinds it lists. Owners manage every
webhook; a project's managers manage their project's. :func:`labelwright.services.events.emit` queues
one delivery per webhook that wants an event; :class:`labelwright.services.webhook_worker.WebhookWorker`
sends it, retrying with back-off (:data:`BACKOFF`).

**The secret** is generated at creation and returned once. The database keeps it as it is (it has to,
to sign with it), so whoever can read the database or its backups can sign requests too: protect them,
and delete a webhook and make a new one to change a secret.

**Destinations.** A webhook may not point at this machine or into a private network: loopback,
private, link-local (cloud metadata services), unspecified, multicast, reserved and carrier-grade NAT
addresses are refused (:func:`refused_because`), unless the owner sets ``webhook_allow_private``. The
URL is checked when the webhook is added (:func:`check_url`: IP literals and ``localhost`` names,
without DNS), and every address its host resolves to is checked again at each delivery, by the
worker, which connects only to the address it checked (DNS can change in between).

**Signing.** The body is the event's JSON. Each request carries ``X-Labelwright-Event`` (the kind),
``X-Labelwright-Delivery`` (the delivery id, the same on every retry: receivers use it to ignore
repeats), ``X-Labelwright-Timestamp`` (unix seconds) and ``X-Labelwright-Signature: sha256=<hex>``,
the HMAC-SHA256 with the secret of ``f"{delivery_id}.{timestamp}.".encode() + body``: the delivery id
and the timestamp cannot be changed without breaking the signature. A receiver checks it with
:func:`verify_signature`::

    from labelwright.services.webhooks import verify_signature

    def handle(headers, body: bytes):
        if not verify_signature(SECRET, headers["X-Labelwright-Delivery"], headers["X-Labelwright-Timestamp"],
                                body, headers["X-Labelwright-Signature"]):
            return 401  # not from us, altered, or older than 5 minutes (a replay)
        ...  # a delivery id already handled: answer 2xx and do nothing
        return 204  # any 2xx: delivered; anything else: sent again later
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, ScalarSelect, Select, delete, func, insert, or_, select, update

from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.services import audit, events
from labelwright.services.events import KINDS
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t

# Seconds to wait after a failed attempt before the next one: after the 1st, the 2nd... A delivery
# that fails its last attempt (MAX_ATTEMPTS) is marked failed (about 7 hours after the first).
BACKOFF = (10, 30, 120, 600, 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF) + 1
STATUSES = ("pending", "delivered", "failed")
SIGNATURE_PREFIX = "sha256="


# ---- signing --------------------------------------------------------------------------------------


def signature(secret: str, delivery_id: int | str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Labelwright-Signature`` value of delivery ``delivery_id`` of ``body``, sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signed_headers(secret: str, kind: str, delivery_id: int, body: bytes, timestamp: int | None = None) -> dict:
    """Every header of one delivery request."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"Content-Type": "application/json", "User-Agent": "labelwright-webhooks",
            "X-Labelwright-Event": kind, "X-Labelwright-Delivery": str(delivery_id),
            "X-Labelwright-Timestamp": str(ts),
            "X-Labelwright-Signature": signature(secret, delivery_id, ts, body)}


def verify_signature(secret: str, delivery_id: int | str | None, timestamp: int | str | None, body: bytes,
                     header: str | None, tolerance: float = 300, now: float | None = None) -> bool:
    """True when ``header`` is the signature of delivery ``delivery_id`` of ``body`` at ``timestamp``
    with ``secret``, and the timestamp is within ``tolerance`` seconds of ``now`` (default: the
    clock), which stops replays of an old request. Compares in constant time."""
    if not header or timestamp is None or delivery_id is None:
        return False
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, str(delivery_id).strip(), ts, body), header.strip())


# ---- destinations ---------------------------------------------------------------------------------

CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")  # not "private" to ipaddress, not public either
# What makes an address refused, checked in this order (the first that applies names it).
_REFUSED = (("is_loopback", "a loopback address (this machine)"),
            ("is_link_local", "a link-local address (where cloud metadata services answer)"),
            ("is_unspecified", "the unspecified address (this machine)"),
            ("is_multicast", "a multicast address"),
            ("is_private", "a private address"),
            ("is_reserved", "a reserved address"))
ALLOW_PRIVATE_HINT = ("private, loopback and link-local destinations are refused unless an owner sets "
                      "webhook_allow_private (LABELWRIGHT_WEBHOOK_ALLOW_PRIVATE=1)")


def refused_because(address) -> str | None:
    """What ``address`` (an IP address or its text) is when webhooks may not be delivered there, such
    as ``"a loopback address (this machine)"``; None for a public address. An IPv6 address that
    carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``) is judged by both."""
    ip = ipaddress.ip_address(address)
    inner = (ip.ipv4_mapped or ip.sixtofour) if ip.version == 6 else None
    if inner is not None and (why := _refused_kind(inner)):
        return f"{inner} in IPv6 form, {why}"
    return _refused_kind(ip)


def _refused_kind(ip) -> str | None:
    if ip.version == 4 and ip in CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    return next((kind for attr, kind in _REFUSED if getattr(ip, attr)), None)


def _literal_address(host: str):
    """The IP address ``host`` spells, if it is one: standard forms, and the old IPv4 ones that
    resolvers accept too (``127.1``, ``0x7f000001``, ``2130706433``); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            pass
    return None


# ---- webhooks -------------------------------------------------------------------------------------


def check_url(url: str, allow_private: bool = False) -> str:
    """``url`` if it is an absolute http(s) URL to a destination webhooks may reach; a
    :class:`ValidationError` on field ``url`` if not.

    Without ``allow_private``, a host that is an IP literal must be public (:func:`refused_because`)
    and ``localhost`` names are refused. Names are not resolved here (DNS can change, and adding a
    webhook should not wait on it): the worker checks every resolved address at each delivery."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError as e:
        raise ValidationError(f"not a URL: {url!r} ({e})", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(f"a webhook URL starts with http:// or https://, not {url!r}", field="url")
    if not host:
        raise ValidationError(f"a webhook URL needs a host name: {url!r}", field="url")
    if allow_private:
        return url
    name = host.rstrip(".")
    why: str | None
    if name == "localhost" or name.endswith(".localhost"):
        why = "this machine"
    else:
        address = _literal_address(host)
        why = refused_because(address) if address is not None else None
    if why:
        raise ValidationError(f"a webhook URL may not point at {host}, {why}: {ALLOW_PRIVATE_HINT}", field="url")
    return url


def check_kinds(kinds) -> str:
    """The stored form of ``kinds``: ``'*'`` or a JSON list of known event kinds."""
    if kinds in ("*", None):
        return "*"
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValidationError(f"kinds is '*' or a list of event kinds from {list(KINDS)}"
                              + (f"; unknown: {unknown}" if unknown else ""), field="kinds")
    return dumps(sorted(set(kinds)))


def create_webhook(store: Store, url: str, project=None, kinds="*", by=None,
                   allow_private: bool = False) -> tuple[str, dict]:
    """A webhook for ``project`` (None: every project). Returns ``(secret, webhook)``; the secret is
    not shown again. Authorisation is the caller's (owners for every project, managers for theirs);
    ``allow_private`` is ``Settings.webhook_allow_private`` (see :func:`check_url`)."""
    url, stored_kinds = check_url(url, allow_private), check_kinds(kinds)
    secret = "lwhs_" + secrets.token_urlsafe(32)
    project_id = getattr(project, "id", None)
    with store.write() as conn:
        hook_id = conn.execute(insert(t.webhooks).values(
            project_id=project_id, url=url, secret=secret, kinds=stored_kinds, active=1,
            created_by=getattr(by, "id", None), created_at=time.time()).returning(t.webhooks.c.id)).scalar_one()
        audit.record(conn, by, "webhook.create", project_id, str(hook_id),
                     {"url": url, "kinds": loads_kinds(stored_kinds)})
        events.touch(conn, project_id)  # every server process sees the new webhook from the next submission
    return secret, get_webhook(store, hook_id)


def loads_kinds(stored: str):
    return "*" if stored == "*" else loads(stored)


def _webhooks() -> Select:
    """The webhooks with their project's slug, their creator's name and their delivery counts."""
    w, p, u, d = t.webhooks, t.projects, t.users, t.deliveries
    d2 = d.alias("d2")

    def count(*where) -> ScalarSelect:
        return select(func.count()).select_from(d).where(d.c.webhook_id == w.c.id, *where).scalar_subquery()
    last_delivered = (select(func.max(d2.c.id)).where(d2.c.webhook_id == w.c.id, d2.c.status == "delivered")
                      .scalar_subquery())
    return (select(w.c.id, w.c.project_id, p.c.slug, w.c.url, w.c.kinds, w.c.active, u.c.name, w.c.created_at,
                   count(d.c.status == "pending").label("pending"), count(d.c.status == "failed").label("failed"),
                   # failures in a row: deliveries newer than the last one delivered whose latest attempt failed
                   count(d.c.status != "delivered", d.c.last_error.is_not(None),
                         d.c.id > func.coalesce(last_delivered, 0)).label("in_a_row"))
            .select_from(w.outerjoin(p, p.c.id == w.c.project_id).outerjoin(u, u.c.id == w.c.created_by)))


def _webhook(r: Row) -> dict:
    return {"id": r.id, "project_id": r.project_id, "project": r.slug, "url": r.url, "kinds": loads_kinds(r.kinds),
            "active": bool(r.active), "created_by": r.name, "created_at": r.created_at, "pending": r.pending,
            "failed": r.failed, "failures_in_a_row": r.in_a_row, "failing": r.in_a_row > 0}


def get_webhook(store: Store, webhook_id: int) -> dict:
    with store.read() as conn:
        row = conn.execute(_webhooks().where(t.webhooks.c.id == webhook_id)).first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return _webhook(row)


def list_webhooks(store: Store, project_ids=None, include_global: bool = True) -> list[dict]:
    """Webhooks in id order: all of them (``project_ids`` None), or those of ``project_ids`` plus, with
    ``include_global``, the ones for every project."""
    w = t.webhooks
    stmt = _webhooks().order_by(w.c.id)
    if project_ids is not None:
        mine = w.c.project_id.in_(sorted(project_ids))
        stmt = stmt.where(or_(mine, w.c.project_id.is_(None)) if include_global else mine)
    with store.read() as conn:
        return [_webhook(r) for r in conn.execute(stmt)]


def managed_project_ids(store: Store, user) -> set[int] | None:
    """Projects whose webhooks ``user`` manages (as an active project manager); None: every one (owners)."""
    if user.role == "owner":
        return None
    ms = t.memberships
    with store.read() as conn:
        return set(conn.execute(select(ms.c.project_id).where(ms.c.user_id == user.id, ms.c.role == "manager",
                                                              ms.c.status == "active")).scalars())


def set_active(store: Store, webhook_id: int, active: bool, by=None) -> dict:
    """Deactivate (no new deliveries; pending ones wait) or reactivate a webhook."""
    w = t.webhooks
    with store.write() as conn:
        row = conn.execute(update(w).where(w.c.id == webhook_id).values(active=int(active))
                           .returning(w.c.project_id)).first()
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        audit.record(conn, by, "webhook.activate" if active else "webhook.deactivate", row.project_id,
                     str(webhook_id))
        events.touch(conn, row.project_id)
    return get_webhook(store, webhook_id)


def delete_webhook(store: Store, webhook_id: int, by=None) -> bool:
    """Delete a webhook and its delivery log (the events stay)."""
    w, d = t.webhooks, t.deliveries
    with store.write() as conn:
        conn.execute(delete(d).where(d.c.webhook_id == webhook_id))
        row = conn.execute(delete(w).where(w.c.id == webhook_id).returning(w.c.project_id, w.c.url)).first()
        if row is not None:
            audit.record(conn, by, "webhook.delete", row.project_id, str(webhook_id), {"url": row.url})
            events.touch(conn, row.project_id)
    return row is not None


def _hook(conn: Connection, webhook_id: int) -> Row:
    """``(active, project_id)`` of a webhook (:class:`NotFound` when there is none)."""
    w = t.webhooks
    hook = conn.execute(select(w.c.active, w.c.project_id).where(w.c.id == webhook_id)).first()
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook


TEST_KIND = "webhook.test"  # the kind of a test delivery (never emitted by the services)


def send_test(store: Store, webhook_id: int, by=None, project=None, now: float | None = None) -> dict:
    """Queue one test delivery to the webhook (sent by the worker like any other, signed, retried on
    failure), of an event of kind :data:`TEST_KIND`; returns the delivery. The event belongs to the
    webhook's project, or to ``project`` (where the test was asked from) for a webhook of every project."""
    now = time.time() if now is None else now
    e, d = t.events, t.deliveries
    with store.write() as conn:
        hook = _hook(conn, webhook_id)
        if not hook.active:
            raise Conflict(f"webhook {webhook_id} is deactivated: activate it first")
        project_id = hook.project_id if hook.project_id is not None else getattr(project, "id", None)
        slug = conn.execute(select(t.projects.c.slug).where(t.projects.c.id == project_id)).scalar()
        payload = {"kind": TEST_KIND, "project": slug, "webhook_id": webhook_id,
                   "sent_by": getattr(by, "name", None), "message": "a test delivery from labelwright"}
        event_id = conn.execute(insert(e).values(at=now, kind=TEST_KIND, project_id=project_id,
                                                 payload=dumps(payload)).returning(e.c.id)).scalar_one()
        delivery_id = conn.execute(insert(d).values(webhook_id=webhook_id, event_id=event_id, status="pending",
                                                    attempts=0, next_attempt_at=now, created_at=now)
                                   .returning(d.c.id)).scalar_one()
        audit.record(conn, by, "webhook.test", hook.project_id, str(webhook_id), {"delivery": delivery_id})
    return delivery_log(store, delivery_id=delivery_id)[0]


# ---- the delivery log -----------------------------------------------------------------------------


def delivery_log(store: Store, *, webhook_ids=None, project_id: int | None = None, status: str | None = None,
                 delivery_id: int | None = None, limit: int = 100) -> list[dict]:
    """Deliveries, newest first: of ``webhook_ids`` (None: all), of events of ``project_id``, with
    ``status``, or the one ``delivery_id``."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status is one of {list(STATUSES)}", field="status")
    d, e, p = t.deliveries, t.events, t.projects
    stmt = (select(d.c.id, d.c.webhook_id, d.c.event_id, e.c.kind, p.c.slug, e.c.at, d.c.status, d.c.attempts,
                   d.c.next_attempt_at, d.c.last_status_code, d.c.last_error, d.c.created_at, d.c.delivered_at)
            .select_from(d.join(e, e.c.id == d.c.event_id).outerjoin(p, p.c.id == e.c.project_id))
            .order_by(d.c.id.desc()).limit(limit))
    if webhook_ids is not None:
        stmt = stmt.where(d.c.webhook_id.in_(sorted(webhook_ids)))
    if project_id is not None:
        stmt = stmt.where(e.c.project_id == project_id)
    if status is not None:
        stmt = stmt.where(d.c.status == status)
    if delivery_id is not None:
        stmt = stmt.where(d.c.id == delivery_id)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [{"id": r.id, "webhook_id": r.webhook_id, "event_id": r.event_id, "event": r.kind, "project": r.slug,
             "event_at": r.at, "status": r.status, "attempts": r.attempts,
             "next_attempt_at": r.next_attempt_at if r.status == "pending" else None,
             "last_status_code": r.last_status_code, "last_error": r.last_error, "created_at": r.created_at,
             "delivered_at": r.delivered_at} for r in rows]


def redeliver(store: Store, webhook_id: int, delivery_id: int, by=None, now: float | None = None) -> dict:
    """Send a delivery again now (the worker picks it up within its poll interval): a failed one gets
    one more attempt, a pending one stops waiting for its back-off, a delivered one is sent again."""
    now = time.time() if now is None else now
    d = t.deliveries
    with store.write() as conn:
        hook = _hook(conn, webhook_id)
        if not hook.active:
            raise Conflict(f"webhook {webhook_id} is deactivated: activate it first (PATCH active=true)")
        done = conn.execute(update(d).where(d.c.id == delivery_id, d.c.webhook_id == webhook_id)
                            .values(status="pending", next_attempt_at=now).returning(d.c.id)).first()
        if done is None:
            raise NotFound(f"no delivery {delivery_id} of webhook {webhook_id}")
        audit.record(conn, by, "webhook.redeliver", hook.project_id, str(webhook_id), {"delivery": delivery_id})
    return delivery_log(store, delivery_id=delivery_id)[0]
