"""The webhooks page of a project (managers and owners): its webhooks, their delivery log, and the forms
to add one (the secret is shown once), send a test delivery, retry a delivery, deactivate or reactivate.

Everything goes through :mod:`labelwright.services.webhooks`, as the API does: the same destination
rules (no private, loopback or link-local address unless the owner allows them), the same audit
entries. A webhook is reached through its project's page only: a manager of another project, or a
webhook of another project in the path, gets a 404 (owners also manage the webhooks for every project
here). A webhook whose latest deliveries failed (since the last one delivered) is marked failing.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import DeliveryId, WebhookId
from labelwright.errors import LabelwrightError, NotFound
from labelwright.services import policy
from labelwright.services import webhooks as svc
from labelwright.services.events import KINDS
from labelwright.store import Store
from labelwright.timefmt import utc_time
from labelwright.web import project_for_page, render

LOG_ROWS = 50
DONE = {"tested": "Test delivery queued: the worker sends it within a few seconds (reload to see it).",
        "retried": "Delivery queued again.", "activated": "Webhook reactivated.",
        "deactivated": "Webhook deactivated: no new deliveries; pending ones wait."}


def _page(request: Request, project, *, status: int = 200, error: str | None = None, secret: str | None = None,
          created: dict | None = None, message: str | None = None, url: str = ""):
    store = request.app.state.store
    user = request.state.session.user
    # Owners also see the webhooks for every project, which receive this project's events too.
    hooks = svc.list_webhooks(store, {project.id}, include_global=policy.allows(policy.manage_global_webhooks, user))
    log = svc.delivery_log(store, webhook_ids=[h["id"] for h in hooks], project_id=project.id, limit=LOG_ROWS)
    for d in log:
        for shown, at in (("when", "created_at"), ("next", "next_attempt_at"), ("delivered", "delivered_at")):
            d[shown] = utc_time(d[at], seconds=True, missing="")
    return render(request, "webhooks.html", status=status, project=project, hooks=hooks, log=log, limit=LOG_ROWS,
                  kinds=KINDS, error=error, secret=secret, created=created, message=message, url=url)


def webhooks_page(slug: str, request: Request, done: str | None = None):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return _page(request, project, message=DONE.get(done or ""))


def _hook_here(store: Store, project, user, webhook_id: int) -> dict:
    """The webhook, when this project's page manages it: the project's own, or (owners) one for every project."""
    try:
        hook = svc.get_webhook(store, webhook_id)
    except NotFound:
        hook = None
    everywhere = hook is not None and hook["project_id"] is None and policy.allows(policy.manage_global_webhooks, user)
    if hook is None or not (hook["project_id"] == project.id or everywhere):
        raise NotFound(f"no webhook {webhook_id} in project {project.slug!r}")
    return hook


def add(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    url = str(form.get("url") or "").strip()
    kinds = [str(k) for k in form.getlist("kinds")] or "*"
    everywhere = form.get("scope") == "all" and policy.allows(policy.manage_global_webhooks, session.user)
    try:
        secret, hook = svc.create_webhook(store, url, None if everywhere else project, kinds, by=session.user,
                                          allow_private=request.app.state.settings.webhook_allow_private)
    except LabelwrightError as e:
        return _page(request, project, status=e.status, error=e.message, url=url)
    resp = _page(request, project, status=201, secret=secret, created=hook)
    resp.headers["Cache-Control"] = "no-store"  # the secret is shown once: keep it out of caches
    return resp


def _act(slug: str, webhook_id: int, request: Request, form, action):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    _hook_here(store, project, session.user, webhook_id)
    try:
        done = action(store, project, session.user)
    except LabelwrightError as e:
        if isinstance(e, NotFound):
            raise
        return _page(request, project, status=e.status, error=e.message)
    return RedirectResponse(f"/projects/{project.slug}/webhooks?done={done}", status_code=303)


def send_test(slug: str, webhook_id: int, request: Request, form):
    def run(store: Store, project, user):
        svc.send_test(store, webhook_id, by=user, project=project)
        return "tested"
    return _act(slug, webhook_id, request, form, run)


def set_active(slug: str, webhook_id: int, request: Request, form):
    active = form.get("active") == "1"

    def run(store: Store, project, user):
        svc.set_active(store, webhook_id, active, by=user)
        return "activated" if active else "deactivated"
    return _act(slug, webhook_id, request, form, run)


def retry(slug: str, webhook_id: int, delivery_id: int, request: Request, form):
    def run(store: Store, project, user):
        svc.redeliver(store, webhook_id, delivery_id, by=user)
        return "retried"
    return _act(slug, webhook_id, request, form, run)


def add_routes(r):
    r.add_api_route("/projects/{slug}/webhooks", webhooks_page, methods=["GET"])

    @r.post("/projects/{slug}/webhooks")
    async def add_route(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(add, slug, request, form)

    @r.post("/projects/{slug}/webhooks/{webhook_id}/test")
    async def test_route(slug: str, webhook_id: WebhookId, request: Request):
        form = await request.form()
        return await run_in_threadpool(send_test, slug, webhook_id, request, form)

    @r.post("/projects/{slug}/webhooks/{webhook_id}/active")
    async def active_route(slug: str, webhook_id: WebhookId, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_active, slug, webhook_id, request, form)

    @r.post("/projects/{slug}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
    async def retry_route(slug: str, webhook_id: WebhookId, delivery_id: DeliveryId, request: Request):
        form = await request.form()
        return await run_in_threadpool(retry, slug, webhook_id, delivery_id, request, form)
    return r
