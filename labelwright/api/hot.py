"""The two routes every annotator calls twice per item, served without FastAPI's per-request machinery.

``POST /api/v1/projects/{project}/next`` and ``POST /api/v1/items/{item_id}/annotations`` are most
of the server's traffic. FastAPI's routing, dependency solving, body validation and middleware layers
cost more CPU than the database work of these two requests, so :class:`HotRoutes`, part of the app's
front door (:class:`labelwright.app.LabelwrightApp`, in front of all of FastAPI's own layers), answers
the plain form of them itself: an ``Authorization: Bearer`` token, a numeric item
id and a JSON body whose fields have exactly the documented types. It calls the same functions as
the FastAPI handlers (:func:`labelwright.api.annotate.next_item`,
:func:`labelwright.api.annotate.record_answers`), in one :meth:`labelwright.store.Store.run` call with the
token's lookup, and answers errors the same way (``{"error": ..., "field": ...}`` with the error's status;
an unexpected one, a bug, as the app's handler does: 500, logged under a reference the answer gives).

Anything else (a browser session with its CSRF header, a body the fast path does not take as it is,
another route) goes on to FastAPI unchanged, which answers it as before; the routes stay declared
there, so they are documented in the OpenAPI schema as usual. The body is read whole before it is
looked at: :class:`labelwright.api.limits.BodyLimit`, outside this middleware, bounds its size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import orjson

from labelwright.api.annotate import next_item, record_answers
from labelwright.errors import INTERNAL_ERROR, LabelwrightError, log_unexpected
from labelwright.services import users as users_svc
from labelwright.store import TIMED_OUT, Store, timed_out

_NEXT = re.compile(r"/api/v1/projects/([^/]+)/next")
_SUBMIT = re.compile(r"/api/v1/items/([0-9]{1,18})/annotations")
_BODY_FIELDS = frozenset(("answers", "active_ms", "idempotency_key"))
_JSON = [(b"content-type", b"application/json")]
log = logging.getLogger("labelwright")


class HotRoutes:
    """ASGI middleware: serve the plain form of the next / submit requests directly (see module doc)."""

    def __init__(self, app, store: Store):
        self.app = app
        self.store = store

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        nxt = _NEXT.fullmatch(path)
        sub = None if nxt else _SUBMIT.fullmatch(path)
        if nxt is None and sub is None:
            return await self.app(scope, receive, send)
        auth = content_type = key_header = token = None
        for name, value in scope["headers"]:  # a repeated header counts once, as its first value (as in Starlette)
            if name == b"authorization":
                auth = value if auth is None else auth
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"idempotency-key":
                key_header = value.decode("latin-1") if key_header is None else key_header
        if auth is not None:  # decoded before stripping, as FastAPI's str.strip() takes non-ASCII spaces too
            scheme, _, rest = auth.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                token = rest.strip()
        if token is None:  # a browser session (cookie + CSRF) or a malformed header: FastAPI's job
            return await self.app(scope, receive, send)
        if nxt is not None:
            return await self._answer(send, self._next(token, nxt.group(1)), path)
        assert sub is not None  # not the next route, so the submit route matched
        body = await _read_body(receive)
        if body is None:  # the client went away before sending all of it: nobody to answer
            return
        parsed = _submission(body, content_type)
        if parsed is None:
            return await self.app(scope, _replay(body, receive), send)
        return await self._answer(send, self._submit(token, int(sub.group(1)), parsed, key_header), path)

    async def _next(self, token: str, project: str):
        # scope["path"] is already percent-decoded
        return await self.store.run(_with_token, self.store, token, next_item, project)

    async def _submit(self, token: str, item_id: int, parsed: dict, key_header: str | None):
        return await self.store.run(_with_token, self.store, token, record_answers, item_id, parsed["answers"],
                                    parsed.get("active_ms", 0), parsed.get("idempotency_key") or key_header,
                                    items=(item_id,))

    @staticmethod
    async def _answer(send, work, path: str) -> None:
        try:
            status, body = await work
        except LabelwrightError as e:
            status, body = e.status, orjson.dumps(e.to_dict())
        except Exception as e:
            if timed_out(e):
                status, body = 503, orjson.dumps({"error": TIMED_OUT})
            else:  # a bug: as the app's handler of unexpected errors answers it
                ref = log_unexpected(log, e, "POST", path)
                status, body = 500, orjson.dumps({"error": INTERNAL_ERROR, "reference": ref})
        if body is None:
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": _JSON + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _with_token(store: Store, token: str, work: Callable[..., tuple], target, *rest) -> tuple:
    """``work(store, target, user, *rest)`` for the holder of API token ``token`` (``target``: the project
    or the item). The token is looked up in the same :meth:`Store.run` call as the work, so on PostgreSQL
    its lookup shares the batch's round trips (see :mod:`labelwright.store.pg_batch`)."""
    return work(store, target, users_svc.user_for_api_token(store, token), *rest)


async def _read_body(receive) -> bytes | None:
    """The whole request body, or None if the client disconnected before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """A ``receive`` that hands the already-read body to the next app, then carries on as before."""
    done = False

    async def replay():
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


def _submission(body: bytes, content_type: bytes | None) -> dict | None:
    """The body as a dict when it is exactly what AnnotationIn takes without converting anything; else None."""
    if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json":
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= _BODY_FIELDS or type(data.get("answers")) is not dict:
        return None
    ms = data.get("active_ms", 0)
    if type(ms) is not int or ms < 0:
        return None
    key = data.get("idempotency_key")
    if key is not None and (type(key) is not str or len(key) > 200):
        return None
    return data
