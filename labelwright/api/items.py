"""A project's items (manager): adding a batch, and gold items with their known answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labelwright.api.deps import Caller, ItemId, store_of
from labelwright.api.models import GoldIn, ItemsIn
from labelwright.errors import ValidationError
from labelwright.services import gold as gold_svc
from labelwright.services import items as items_svc
from labelwright.services import policy


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/projects/{project}/items", summary="Add a batch of items, atomically (manager)")
    def add_items(project: str, body: ItemsIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        try:
            return items_svc.add_items(store, p, body.items)
        except ValidationError as e:
            # Point at the item in the request body rather than at a "line".
            index = (e.line or 1) - 1
            field = f"items[{index}]" + (f".{e.field}" if e.field else "")
            raise ValidationError(e.message, field=field) from None

    @r.get("/projects/{project}/gold", summary="Gold items with their answers (manager)")
    def list_gold(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.see_gold(store, user, project).project
        return [{"item_id": i, "gold": g} for i, g in sorted(gold_svc.gold_answers(store, p).items())]

    @r.put("/projects/{project}/items/{item_id}/gold", summary="Mark an item as gold with its answers (manager)")
    def set_gold(project: str, item_id: ItemId, body: GoldIn, request: Request, user: Caller):
        store = store_of(request)
        return gold_svc.set_gold(store, policy.see_gold(store, user, project).project, item_id, body.answers, user)

    @r.delete("/projects/{project}/items/{item_id}/gold", status_code=204,
              summary="Make a gold item an ordinary one again (manager)")
    def unset_gold(project: str, item_id: ItemId, request: Request, user: Caller):
        store = store_of(request)
        gold_svc.unset_gold(store, policy.see_gold(store, user, project).project, item_id, user)
        return Response(status_code=204)

    return r
