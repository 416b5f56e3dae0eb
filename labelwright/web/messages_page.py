"""Messages from a project's managers to its annotators, from the browser: send to every member or to one,
and the list of messages sent in the project (through :mod:`labelwright.services.messages`, as the API)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.errors import LabelwrightError
from labelwright.services import access, messages, policy
from labelwright.timefmt import utc_time
from labelwright.web import project_for_page, render

SHOWN = 100


def _page(request: Request, project, *, status: int = 200, error: str | None = None, body: str = "",
          to: str = "", sent: bool = False):
    store = request.app.state.store
    rows = messages.sent(store, project, limit=SHOWN)
    for m in rows:
        m["when"] = utc_time(m["created_at"])
    members = [m["user"] for m in access.members(store, project) if m["status"] == "active"]
    return render(request, "messages.html", status=status, project=project, sent_messages=rows, members=members,
                  error=error, body=body, to=to, sent=sent, shown=SHOWN)


def messages_page(slug: str, request: Request, sent: str | None = None):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return _page(request, project, sent=sent == "1")


def send(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    body = str(form.get("body") or "").replace("\r\n", "\n")
    to = str(form.get("to") or "").strip()
    try:
        messages.send(store, project, session.user, body, to or None)
    except LabelwrightError as e:
        return _page(request, project, status=e.status if e.status != 404 else 422, error=e.message, body=body, to=to)
    return RedirectResponse(f"/projects/{project.slug}/messages?sent=1", status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/messages", messages_page, methods=["GET"])

    @r.post("/projects/{slug}/messages")
    async def send_message(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(send, slug, request, form)
    return r
