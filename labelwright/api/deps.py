"""What every API route takes: the caller (an API token, or the session cookie with its CSRF header), the
store, typed path ids and the client's address.

Authentication: ``Authorization: Bearer <token>`` (API tokens), or the browser's session cookie plus an
``X-CSRF-Token`` header on every request that changes something (checked by
:func:`labelwright.services.access.check_csrf`, the pages' check too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator

from labelwright.errors import NotFound, Unauthorized
from labelwright.services import access
from labelwright.services import users as users_svc
from labelwright.services.users import User
from labelwright.store import Store

SESSION_COOKIE = "lw_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def path_id(what: str):
    """The type of an id in a route's path (API and pages alike): an integer. One no database can hold
    (below 1 or above 2**63 - 1) answers ``404 no <what> N``, exactly as an id that names nothing does."""
    def in_range(value: int) -> int:
        if not 1 <= value <= access.MAX_ID:
            # NotFound is no ValueError, so pydantic passes it on: the route answers it as it answers a
            # missing id (a rendered page for the UI), never a 422 about its parameters.
            raise NotFound(f"no {what} {value}")
        return value
    return Annotated[int, Path(description=f"the {what}'s id"), AfterValidator(in_range)]


ItemId = path_id("item")
AnnotationId = path_id("annotation")
TokenId = path_id("API token")
InviteId = path_id("invite")
WebhookId = path_id("webhook")
DeliveryId = path_id("delivery")
CheckId = path_id("check")
RuleId = path_id("rule")
# ?before=<id>, paging back through a log: out of range is a 422 like any bad query parameter.
Before = Annotated[int | None, Query(ge=1, le=access.MAX_ID, description="only entries older than this id")]


async def current_user(request: Request) -> User:
    # A coroutine, so FastAPI calls it on the event loop instead of a worker thread: the lookups are
    # single indexed statements (see Store.lookup), cheaper than the hop to a thread and back.
    store = request.app.state.store
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        return users_svc.user_for_api_token(store, token.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    session = users_svc.session_for_cookie(store, cookie) if cookie else None
    if session is None:
        raise Unauthorized("sign in, or send 'Authorization: Bearer <token>'")
    if request.method not in SAFE_METHODS:
        access.check_csrf(session, request.headers.get("x-csrf-token"), "the X-CSRF-Token header")
    return session.user


Caller = Annotated[User, Depends(current_user)]


def store_of(request: Request) -> Store:
    return request.app.state.store


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn takes it from X-Forwarded-For when the proxy is trusted)."""
    return request.client.host if request.client else "unknown"
