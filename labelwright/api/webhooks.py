"""REST routes for webhooks and their delivery log (``/api/v1/webhooks``).

Owners manage every webhook, including those for all projects; a project's managers manage their
project's. See docs/webhooks.md for the events, the signature and the retry schedule.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from labelwright.api import DeliveryId, WebhookId, current_user
from labelwright.errors import Forbidden
from labelwright.services import access
from labelwright.services import webhooks as svc
from labelwright.services.users import User


class WebhookIn(BaseModel):
    url: str = Field(description="where events are POSTed: an http:// or https:// URL to a public address "
                                 "(private ones only with the setting webhook_allow_private)")
    project: str | None = Field(default=None, description="a project (slug or id); none: every project (owners)")
    kinds: list[str] | str = Field(default="*", description="event kinds to send (a list), or '*' for all")


class WebhookPatch(BaseModel):
    active: bool = Field(description="false: no new deliveries (pending ones wait); true: resume")


def _store(request: Request):
    return request.app.state.store


def _webhook_for(store, webhook_id: int, user: User) -> dict:
    """The webhook, once the caller may manage it (owners: all; a project's managers: their project's).
    Anyone else learns neither its project nor whether it is one for every project."""
    hook = svc.get_webhook(store, webhook_id)
    managed = svc.managed_project_ids(store, user)
    if managed is not None and hook["project_id"] not in managed:
        raise Forbidden(f"only an owner or a manager of its project can manage webhook {webhook_id}")
    return hook


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.post("/webhooks", status_code=201,
            summary="Add a webhook (owner; a manager for a project they manage); the secret is shown once")
    def create_webhook(body: WebhookIn, request: Request, user: User = Depends(current_user)):
        store = _store(request)
        project = None
        if body.project is not None:
            project = access.project_for(store, body.project, user, "manager")[0]
        elif not user.is_owner:
            raise Forbidden("only an owner can add a webhook for every project: name a project you manage")
        secret, hook = svc.create_webhook(store, body.url, project, body.kinds, by=user,
                                          allow_private=request.app.state.settings.webhook_allow_private)
        return {**hook, "secret": secret}

    @r.get("/webhooks", summary="Webhooks the caller manages (owner: all; a manager: their projects')")
    def list_webhooks(request: Request, project: str | None = Query(None, description="only this project's"),
                      user: User = Depends(current_user)):
        store = _store(request)
        if project is not None:
            p = access.project_for(store, project, user, "manager")[0]
            return svc.list_webhooks(store, {p.id}, include_global=False)
        managed = svc.managed_project_ids(store, user)
        if managed is not None and not managed:
            raise Forbidden("webhooks are managed by owners and project managers; you manage no project")
        return svc.list_webhooks(store, managed, include_global=managed is None)

    @r.patch("/webhooks/{webhook_id}", summary="Deactivate or reactivate a webhook")
    def patch_webhook(webhook_id: WebhookId, body: WebhookPatch, request: Request, user: User = Depends(current_user)):
        store = _store(request)
        _webhook_for(store, webhook_id, user)
        return svc.set_active(store, webhook_id, body.active, by=user)

    @r.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook and its delivery log")
    def delete_webhook(webhook_id: WebhookId, request: Request, user: User = Depends(current_user)):
        store = _store(request)
        _webhook_for(store, webhook_id, user)
        svc.delete_webhook(store, webhook_id, by=user)
        return Response(status_code=204)

    @r.get("/webhooks/{webhook_id}/deliveries", summary="A webhook's delivery log, newest first")
    def deliveries(webhook_id: WebhookId, request: Request,
                   status: Literal["pending", "delivered", "failed"] | None = Query(None),
                   limit: int = Query(100, ge=1, le=1000), user: User = Depends(current_user)):
        store = _store(request)
        _webhook_for(store, webhook_id, user)
        return svc.delivery_log(store, webhook_ids=[webhook_id], status=status, limit=limit)

    @r.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202,
            summary="Send a delivery again now (the worker sends it within a second or so)")
    def retry(webhook_id: WebhookId, delivery_id: DeliveryId, request: Request, user: User = Depends(current_user)):
        store = _store(request)
        _webhook_for(store, webhook_id, user)
        return svc.redeliver(store, webhook_id, delivery_id, by=user)

    return r
