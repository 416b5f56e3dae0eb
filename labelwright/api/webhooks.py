"""REST routes for webhooks and their delivery log (``/api/v1/webhooks``).

Owners manage every webhook, including those for all projects; a project's managers manage their
project's (:func:`labelwright.services.policy.manage_webhook`). See docs/webhooks.md for the events, the
signature and the retry schedule.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from labelwright.api.deps import Caller, DeliveryId, WebhookId, store_of
from labelwright.api.models import DeliveryStatus, WebhookIn, WebhookPatch
from labelwright.services import policy
from labelwright.services import webhooks as svc


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/webhooks", status_code=201,
            summary="Add a webhook (owner; a manager for a project they manage); the secret is shown once")
    def create_webhook(body: WebhookIn, request: Request, user: Caller):
        store = store_of(request)
        if body.project is not None:
            project = policy.manage_project(store, user, body.project).project
        else:
            project = None
            policy.manage_global_webhooks(user)
        secret, hook = svc.create_webhook(store, body.url, project, body.kinds, by=user,
                                          allow_private=request.app.state.settings.webhook_allow_private)
        return {**hook, "secret": secret}

    @r.get("/webhooks", summary="Webhooks the caller manages (owner: all; a manager: their projects')")
    def list_webhooks(request: Request, user: Caller,
                      project: str | None = Query(None, description="only this project's")):
        store = store_of(request)
        if project is not None:
            p = policy.manage_project(store, user, project).project
            return svc.list_webhooks(store, {p.id}, include_global=False)
        managed = policy.manage_webhooks(store, user)
        return svc.list_webhooks(store, managed, include_global=managed is None)

    @r.patch("/webhooks/{webhook_id}", summary="Deactivate or reactivate a webhook")
    def patch_webhook(webhook_id: WebhookId, body: WebhookPatch, request: Request, user: Caller):
        store = store_of(request)
        policy.manage_webhook(store, user, webhook_id)
        return svc.set_active(store, webhook_id, body.active, by=user)

    @r.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook and its delivery log")
    def delete_webhook(webhook_id: WebhookId, request: Request, user: Caller):
        store = store_of(request)
        policy.manage_webhook(store, user, webhook_id)
        svc.delete_webhook(store, webhook_id, by=user)
        return Response(status_code=204)

    @r.get("/webhooks/{webhook_id}/deliveries", summary="A webhook's delivery log, newest first")
    def deliveries(webhook_id: WebhookId, request: Request, user: Caller,
                   status: DeliveryStatus | None = Query(None), limit: int = Query(100, ge=1, le=1000)):
        store = store_of(request)
        policy.manage_webhook(store, user, webhook_id)
        return svc.delivery_log(store, webhook_ids=[webhook_id], status=status, limit=limit)

    @r.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202,
            summary="Send a delivery again now (the worker sends it within a second or so)")
    def retry(webhook_id: WebhookId, delivery_id: DeliveryId, request: Request, user: Caller):
        store = store_of(request)
        policy.manage_webhook(store, user, webhook_id)
        return svc.redeliver(store, webhook_id, delivery_id, by=user)

    return r
