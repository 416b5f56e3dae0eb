"""The request body limit: one bound on every route, enforced before a body is read past it.

:class:`BodyLimit` is an ASGI middleware and the outermost layer of the app (outside
:class:`labelwright.api.hot.HotRoutes`), so no handler, form parser or fast path ever holds more than the
limit of one request body. Two settings bound it (docs/operations.md, "Security"): ``max_body_bytes`` on
every route, and ``max_import_bytes`` on item imports through the API
(``POST /api/v1/projects/{project}/items``).

A request whose ``Content-Length`` is over the limit is answered 413 at once, before any of its body is
read (and before authentication). A body sent without one (``Transfer-Encoding: chunked``) is counted as
it arrives: the chunk that takes it past the limit is not handed on, the app's ``receive`` raises
:class:`BodyTooLarge` instead, whatever the app answers to that is dropped, and the client gets the 413.
API paths answer the API's JSON error (``{"error": ..., "field": null}``), pages a line of plain text.
"""

from __future__ import annotations

import re

import orjson

_IMPORT = re.compile(r"/api/v1/projects/[^/]+/items")


class BodyTooLarge(Exception):
    """The request body went past ``limit`` bytes (raised to the app by the limited ``receive``)."""

    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """ASGI middleware: answer 413 to a request body over its route's limit, before reading past it."""

    def __init__(self, app, settings):
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.max_import_bytes = settings.max_import_bytes

    def limit_for(self, scope) -> tuple[int, str]:
        """The route's limit in bytes, and the name of the setting it comes from."""
        path = scope["path"]
        if scope["method"] == "POST" and path.endswith("/items") and _IMPORT.fullmatch(path):
            return self.max_import_bytes, "max_import_bytes"
        return self.max_body_bytes, "max_body_bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, setting = self.limit_for(scope)
        declared = _declared_length(scope["headers"])
        if declared > limit:
            return await _too_large(scope, send, limit, setting)
        if declared >= 0:
            # The server hands the app at most Content-Length bytes (what follows is the next request on
            # the connection), so a declared body within the limit needs no counting: the common case
            # costs one header scan.
            return await self.app(scope, receive, send)
        received = 0
        exceeded = started = False

        async def receive_within_limit():
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def send_unless_cut(message):
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it never got whole: the 413 below goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_cut)
        except Exception:
            # BodyTooLarge itself, or whatever the app made of it (FastAPI wraps errors reading a body).
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _too_large(scope, send, limit, setting)


def _declared_length(headers) -> int:
    """The request's ``Content-Length``, or -1 when it has none (the server rejects a malformed one)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


async def _too_large(scope, send, limit: int, setting: str) -> None:
    message = f"request body too large: this server takes at most {limit} bytes here (its {setting} setting)"
    if scope["path"].startswith("/api/"):
        body = orjson.dumps({"error": message, "field": None})
        content_type = b"application/json"
    else:
        body = f"413 {message[0].upper()}{message[1:]}.\n".encode()
        content_type = b"text/plain; charset=utf-8"
    # Connection: close, as the rest of the body is never read.
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
