"""Signing in and out, and the account: the sign-in form, one-time sign-in links, invite and password
reset links, sign-out, and the account page (a password of one's own).

The sign-in form, which has no session yet, carries the token of a pre-session cookie (``lw_login_csrf``)
as its CSRF token; every other form carries the session's. The handlers that hash or check a password
(sign-in, invite, reset, the account's password) run that work in a worker thread: argon2 takes tenths
of a second of CPU and must not hold up the event loop.
"""

from __future__ import annotations

import asyncio
import re
import secrets

from fastapi import Request
from fastapi.responses import RedirectResponse

from labelwright.api.deps import SESSION_COOKIE, client_address
from labelwright.errors import LabelwrightError, TooManyAttempts, Unauthorized
from labelwright.services import access, invites
from labelwright.services import signin as signin_svc
from labelwright.services import users as users_svc
from labelwright.web import check_csrf, current_session, render

LOGIN_CSRF_COOKIE = "lw_login_csrf"
_LOGIN_CSRF = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def _set_session_cookie(response, request: Request, secret: str) -> None:
    s = request.app.state.settings
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", secure=s.secure_cookies,
                        max_age=s.session_days * 86400, path="/")


def _login_page(request: Request, status: int = 200, *, next: str = "/", error: str | None = None,
                name: str = "", retry_after: int | None = None):
    """The sign-in form with its CSRF token: the ``lw_login_csrf`` cookie's, or a new one (the cookie
    is set either way). The POST must send it back in the ``csrf`` field (login CSRF)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not _LOGIN_CSRF.match(token):
        token = secrets.token_urlsafe(32)
    resp = render(request, "login.html", status=status, next=next, error=error, name=name, login_csrf=token)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax",
                    secure=request.app.state.settings.secure_cookies, path="/login")
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _login_csrf_ok(request: Request, field) -> bool:
    return access.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), field)  # the one comparison, the API's too


def _safe_next(target: object) -> str:
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def add_routes(r):
    @r.get("/login")
    def login_page(request: Request, next: str = "/"):
        return _login_page(request, next=_safe_next(next))

    @r.post("/login")
    async def login(request: Request):
        form = await request.form()
        store = request.app.state.store
        nxt = _safe_next(form.get("next"))
        name = str(form.get("name", ""))
        if not _login_csrf_ok(request, form.get("csrf")):
            return _login_page(request, 403, next=nxt, name=name, error=(
                "the sign-in form's security token is missing or stale (this browser must accept cookies "
                "from this site): sign in again on this page"))
        try:
            user = await asyncio.to_thread(signin_svc.sign_in, store, name, str(form.get("password", "")),
                                           client_address(request),
                                           signin_svc.Limits.from_settings(request.app.state.settings))
        except TooManyAttempts as e:
            return _login_page(request, 429, next=nxt, name=name, error=e.message, retry_after=e.retry_after)
        except Unauthorized as e:
            return _login_page(request, 401, next=nxt, name=name, error=e.message)
        secret, _ = users_svc.start_session(store, user, request.app.state.settings.session_days)
        resp = RedirectResponse(nxt, status_code=303)
        _set_session_cookie(resp, request, secret)
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return resp

    @r.get("/signin/{token}")
    def signin(token: str, request: Request):
        store = request.app.state.store
        try:
            secret, session = users_svc.redeem_signin_link(store, token, request.app.state.settings.session_days)
        except Unauthorized as e:
            return render(request, "error.html", status=401, error=e)
        resp = RedirectResponse("/account" if session.user.role != "owner" else "/", status_code=303)
        _set_session_cookie(resp, request, secret)
        return resp

    @r.get("/invite/{token}")
    def invite_page(token: str, request: Request):
        try:
            invite = invites.describe(request.app.state.store, token)
        except Unauthorized as e:
            return render(request, "error.html", status=401, error=e)
        return render(request, "invite.html", invite=invite, error=None)

    @r.post("/invite/{token}")
    async def accept_invite(token: str, request: Request):
        store = request.app.state.store
        form = await request.form()
        name = str(form.get("name", ""))
        try:
            invite = invites.describe(store, token)
        except Unauthorized as e:
            return render(request, "error.html", status=401, error=e)
        if str(form.get("password", "")) != str(form.get("confirm", "")):
            return render(request, "invite.html", status=422, invite=invite, name=name, error="the passwords differ")
        try:
            secret, _ = await asyncio.to_thread(invites.accept, store, token, name, str(form.get("password", "")),
                                                request.app.state.settings.session_days)
        except Unauthorized as e:
            return render(request, "error.html", status=401, error=e)
        except LabelwrightError as e:
            return render(request, "invite.html", status=422, invite=invite, name=name, error=e.message)
        resp = RedirectResponse("/", status_code=303)
        _set_session_cookie(resp, request, secret)
        return resp

    @r.get("/reset/{token}")
    def reset_page(token: str, request: Request):
        if not users_svc.reset_link_is_valid(request.app.state.store, token):
            return render(request, "error.html", status=401, error=Unauthorized(
                "this reset link is invalid, used or expired: ask the owner for a new one"))
        return render(request, "reset.html", error=None)

    @r.post("/reset/{token}")
    async def reset(token: str, request: Request):
        form = await request.form()
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            return render(request, "reset.html", status=422, error="the passwords differ")
        try:
            secret, _ = await asyncio.to_thread(users_svc.reset_password, request.app.state.store, token, password,
                                                request.app.state.settings.session_days,
                                                keep_tokens=form.get("keep_tokens") is not None)
        except Unauthorized as e:
            return render(request, "error.html", status=401, error=e)
        except LabelwrightError as e:
            return render(request, "reset.html", status=422, error=e.message)
        resp = RedirectResponse("/", status_code=303)
        _set_session_cookie(resp, request, secret)
        return resp

    @r.post("/logout")
    async def logout(request: Request):
        session = current_session(request)
        form = await request.form()
        check_csrf(session, form.get("csrf"))
        users_svc.end_session(request.app.state.store, request.cookies.get(SESSION_COOKIE, ""))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    def account_page(request: Request, status: int = 200, message: str | None = None, error: str | None = None,
                     retry_after: int | None = None):
        session = request.state.session
        resp = render(request, "account.html", status=status, message=message, error=error,
                      has_password=users_svc.has_password(request.app.state.store, session.user))
        if retry_after is not None:
            resp.headers["Retry-After"] = str(retry_after)
        return resp

    @r.get("/account")
    def account(request: Request):
        current_session(request)
        return account_page(request)

    @r.post("/account/password")
    async def change_password(request: Request):
        session = current_session(request)
        form = await request.form()
        check_csrf(session, form.get("csrf"))
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            return account_page(request, 422, error="the passwords differ")
        keep_tokens = form.get("keep_tokens") is not None
        try:
            # the current password is checked (and counted) like a sign-in; a first password needs none.
            # A new password ends every other session (a stolen cookie stops working) and, unless kept,
            # revokes the API tokens.
            await asyncio.to_thread(signin_svc.change_password, request.app.state.store, session.user,
                                    str(form.get("current") or "") or None, password, client_address(request),
                                    signin_svc.Limits.from_settings(request.app.state.settings),
                                    keep_session=request.cookies.get(SESSION_COOKIE), keep_tokens=keep_tokens)
        except TooManyAttempts as e:
            return account_page(request, 429, error=e.message, retry_after=e.retry_after)
        except LabelwrightError as e:
            return account_page(request, 401 if isinstance(e, Unauthorized) else 422, error=e.message)
        return account_page(request, message="Password saved. Your other sessions are signed out"
                                              + ("." if keep_tokens else " and your API tokens are revoked."))
    return r
