"""Server-rendered web UI: what every page module shares (rendering, the session, the CSRF check).

Pages are Jinja2 templates with autoescaping on; item data is untrusted and is only ever inserted
escaped (Markdown goes through :mod:`labelwright.web.markdown`, which allows no raw HTML). Every form
that changes something carries the session's CSRF token (the sign-in form, which has no session yet,
carries a pre-session cookie's: see :mod:`labelwright.web.account`).

The modules below this package (see docs/architecture.md, "The pages"): the building blocks
(``forms``, ``views``, ``instant``, ``answers``, ``charts``, ``words``, ``markdown``, ``assets``) import
this module and each other; the page modules (``account``, ``home``, ``label_pages``, ...) import those and
never each other; :mod:`labelwright.web.router` assembles the pages and the template environment. This
module imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from labelwright.api.deps import SESSION_COOKIE
from labelwright.errors import LabelwrightError, Unauthorized
from labelwright.services import policy
from labelwright.services import users as users_svc
from labelwright.services.access import check_csrf  # the one CSRF check, the API's too
from labelwright.services.users import Session


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    env: Environment = request.app.state.jinja
    context.setdefault("session", getattr(request.state, "session", None))
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": "default-src 'self'; img-src 'self' https: http: data:; "
                                   "style-src 'self'; script-src 'self'; object-src 'none'; "
                                   "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    })


def render_error(request: Request, exc: LabelwrightError):
    if isinstance(exc, Unauthorized):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return render(request, "error.html", status=exc.status, error=exc)


def render_server_error(request: Request, reference: str) -> HTMLResponse:
    """The styled page for an unexpected error (a bug): what happened, the log reference, what to do."""
    if getattr(request.state, "session", None) is None:
        try:  # the header shows who is signed in, when the database still answers
            current_session(request)
        except Exception:  # noqa: BLE001 - signed out, or the database is what failed
            request.state.session = None
    return render(request, "server_error.html", status=500, reference=reference)


def current_session(request: Request) -> Session:
    cookie = request.cookies.get(SESSION_COOKIE)
    session = users_svc.session_for_cookie(request.app.state.store, cookie) if cookie else None
    if session is None:
        raise Unauthorized("please sign in")
    request.state.session = session
    return session


def project_for_page(slug: str, request: Request, action: Callable[..., policy.Grant], form=None):
    """``(session, store, project)`` for a project page or form: signed in, the form's CSRF token when
    there is a form, and allowed ``action`` (a :mod:`labelwright.services.policy` action) in the project."""
    session = current_session(request)
    if form is not None:
        check_csrf(session, form.get("csrf"))
    store = request.app.state.store
    return session, store, action(store, session.user, slug).project
