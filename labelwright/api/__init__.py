"""REST API under ``/api/v1``: thin handlers that check access and call the services.

Authentication: ``Authorization: Bearer <token>`` (API tokens), or the browser's session cookie plus
an ``X-CSRF-Token`` header on every request that changes something.
"""

from __future__ import annotations

import tempfile
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from labelwright.errors import Forbidden, Unauthorized, ValidationError
from labelwright.services import export as export_svc
from labelwright.services import items as items_svc
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.services import users as users_svc
from labelwright.services.users import User

SESSION_COOKIE = "lw_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


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
    if request.method not in SAFE_METHODS and request.headers.get("x-csrf-token") != session.csrf:
        raise Forbidden("missing or wrong X-CSRF-Token header")
    return session.user


def owner(user: User = Depends(current_user)) -> User:
    if not user.is_owner:
        raise Forbidden("only an owner can do this")
    return user


def _store(request: Request):
    return request.app.state.store


class ItemsIn(BaseModel):
    items: list[dict[str, Any]] = Field(description="item objects with the project's display fields")


class AnnotationIn(BaseModel):
    answers: dict[str, Any] = Field(description="answers keyed by question name")
    active_ms: int = Field(default=0, ge=0, description="time the item was visible and active, in ms")
    idempotency_key: str | None = Field(default=None, max_length=200,
                                        description="a retry with the same key never creates a second annotation")


class AmendIn(BaseModel):
    answers: dict[str, Any]
    active_ms: int = Field(default=0, ge=0, description="extra active time spent amending, in ms")


class GoldIn(BaseModel):
    answers: dict[str, Any] = Field(description="the item's known answers, keyed by question name (a subset)")


class PauseIn(BaseModel):
    reason: str | None = Field(default=None, max_length=1000, description="kept for the owner's records")


class UserIn(BaseModel):
    name: str
    role: str = "annotator"
    password: str | None = None


# ---- the two hot routes: shared by their FastAPI handlers and labelwright.api.hot ----------------


async def claim(store, project_ref: str, user: User) -> tuple[int, bytes | None]:
    """``POST /projects/{project}/next``: (200, the item as JSON) or (204, None)."""
    item = await store.run(queue_svc.claim_next, store, projects_svc.get_project(store, project_ref), user)
    return (204, None) if item is None else (200, orjson.dumps(item))


async def submit_answers(store, item_id: int, user: User, answers, active_ms: int,
                         idempotency_key: str | None) -> tuple[int, bytes]:
    """``POST /items/{item_id}/annotations``: (201, the annotation) or (200, the replayed one)."""
    ann, created = await store.run(queue_svc.submit, store, item_id, user, answers, active_ms=active_ms,
                                   idempotency_key=idempotency_key)
    return 201 if created else 200, orjson.dumps(ann)


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/me", summary="Who the token or session belongs to")
    def me(user: User = Depends(current_user)):
        return {"id": user.id, "name": user.name, "role": user.role}

    # ---- users ---------------------------------------------------------------------------------

    @r.get("/users", summary="List users (owner)")
    def list_users(request: Request, _: User = Depends(owner)):
        return users_svc.list_users(_store(request))

    @r.post("/users", status_code=201, summary="Create a user; returns an API token and a sign-in link (owner)")
    def create_user(body: UserIn, request: Request, _: User = Depends(owner)):
        store = _store(request)
        user = users_svc.create_user(store, body.name, body.role, body.password)
        token = users_svc.create_api_token(store, user, label="created by API")
        link = users_svc.create_signin_link_token(store, user, request.app.state.settings.signin_link_hours)
        return {"id": user.id, "name": user.name, "role": user.role, "token": token,
                "signin_url": f"{request.app.state.settings.public_url}/signin/{link}"}

    # ---- projects ------------------------------------------------------------------------------

    @r.get("/projects", summary="List projects")
    def list_projects(request: Request, user: User = Depends(current_user)):
        return [p.to_dict(owner=user.is_owner) for p in projects_svc.list_projects(_store(request))]

    @r.post("/projects", status_code=201, summary="Create a project from a schema (owner)")
    def create_project(schema: dict[str, Any], request: Request, user: User = Depends(owner)):
        return projects_svc.create_project(_store(request), schema, created_by=user.id).to_dict()

    @r.get("/projects/{project}", summary="Read a project (by slug or id)")
    def get_project(project: str, request: Request, user: User = Depends(current_user)):
        return projects_svc.get_project(_store(request), project).to_dict(owner=user.is_owner)

    @r.get("/projects/{project}/status", summary="Progress: items done / in progress / waiting (owner)")
    def status(project: str, request: Request, _: User = Depends(owner)):
        store = _store(request)
        return projects_svc.progress(store, projects_svc.get_project(store, project))

    @r.get("/projects/{project}/quality",
           summary="Quality: agreement, consensus confusion, annotator table, items in doubt (owner)")
    def quality(project: str, request: Request, doubt: int = Query(20, ge=0, le=500), _: User = Depends(owner)):
        from labelwright.services.quality import project_quality

        store = _store(request)
        return project_quality(store, projects_svc.get_project(store, project), doubt_limit=doubt)

    # ---- gold items and paused annotators (owner) ------------------------------------------------

    @r.get("/projects/{project}/gold", summary="Gold items with their answers (owner)")
    def list_gold(project: str, request: Request, _: User = Depends(owner)):
        from labelwright.services import gold as gold_svc

        store = _store(request)
        return [{"item_id": i, "gold": g}
                for i, g in sorted(gold_svc.gold_answers(store, projects_svc.get_project(store, project)).items())]

    @r.put("/projects/{project}/items/{item_id}/gold", summary="Mark an item as gold with its answers (owner)")
    def set_gold(project: str, item_id: int, body: GoldIn, request: Request, user: User = Depends(owner)):
        from labelwright.services import gold as gold_svc

        store = _store(request)
        return gold_svc.set_gold(store, projects_svc.get_project(store, project), item_id, body.answers, user)

    @r.delete("/projects/{project}/items/{item_id}/gold", status_code=204,
              summary="Make a gold item an ordinary one again (owner)")
    def unset_gold(project: str, item_id: int, request: Request, _: User = Depends(owner)):
        from labelwright.services import gold as gold_svc

        store = _store(request)
        gold_svc.unset_gold(store, projects_svc.get_project(store, project), item_id)
        return Response(status_code=204)

    @r.get("/projects/{project}/paused", summary="Annotators paused in the project (owner)")
    def list_paused(project: str, request: Request, _: User = Depends(owner)):
        from labelwright.services import pauses

        store = _store(request)
        return pauses.paused(store, projects_svc.get_project(store, project))

    @r.post("/projects/{project}/annotators/{name}/pause",
            summary="Pause an annotator in the project: no new items, no submissions, leases released (owner)")
    def pause(project: str, name: str, request: Request, body: PauseIn | None = None, user: User = Depends(owner)):
        from labelwright.services import pauses

        store = _store(request)
        released = pauses.pause(store, projects_svc.get_project(store, project), users_svc.get_user(store, name),
                                by=user, reason=body.reason if body else None)
        return {"annotator": name, "paused": True, "leases_released": released}

    @r.post("/projects/{project}/annotators/{name}/resume", summary="Let a paused annotator work again (owner)")
    def resume(project: str, name: str, request: Request, _: User = Depends(owner)):
        from labelwright.services import pauses

        store = _store(request)
        was = pauses.resume(store, projects_svc.get_project(store, project), users_svc.get_user(store, name))
        return {"annotator": name, "paused": False, "was_paused": was}

    @r.post("/projects/{project}/items", summary="Add a batch of items, atomically (owner)")
    def add_items(project: str, body: ItemsIn, request: Request, _: User = Depends(owner)):
        store = _store(request)
        p = projects_svc.get_project(store, project)
        try:
            return items_svc.add_items(store, p, body.items)
        except ValidationError as e:
            # Point at the item in the request body rather than at a "line".
            index = (e.line or 1) - 1
            field = f"items[{index}]" + (f".{e.field}" if e.field else "")
            raise ValidationError(e.message, field=field) from None

    @r.post("/projects/{project}/next", summary="Claim the next item for the caller (204: nothing left)",
            responses={204: {"description": "nothing left for this annotator"}})
    async def next_item(project: str, request: Request, user: User = Depends(current_user)):
        status, body = await claim(_store(request), project, user)
        return Response(body, status_code=status, media_type="application/json" if body else None)

    @r.get("/projects/{project}/history", summary="The caller's recent annotations (the amendable ones)")
    def history(project: str, request: Request, limit: int = Query(20, ge=1, le=1000),
                user: User = Depends(current_user)):
        store = _store(request)
        return queue_svc.history(store, projects_svc.get_project(store, project), user, limit)

    @r.get("/projects/{project}/mine", summary="The caller's done / left counts in a project")
    def mine(project: str, request: Request, user: User = Depends(current_user)):
        store = _store(request)
        return queue_svc.counts_for_user(store, projects_svc.get_project(store, project), user)

    @r.get("/projects/{project}/export", summary="Stream the export: jsonl, csv or parquet (owner)")
    def export(project: str, request: Request, format: str = Query("jsonl", pattern="^(jsonl|csv|parquet)$"),
               _: User = Depends(owner)):
        store = _store(request)
        p = projects_svc.get_project(store, project)
        filename = f"{p.slug}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if format == "jsonl":
            return StreamingResponse(export_svc.jsonl_lines(store, p), media_type="application/x-ndjson",
                                     headers=headers)
        if format == "csv":
            return StreamingResponse(export_svc.csv_chunks(store, p), media_type="text/csv", headers=headers)
        spool = tempfile.TemporaryFile()
        export_svc.write_parquet(store, p, spool)
        spool.seek(0)

        def chunks():
            with spool:
                while block := spool.read(1 << 20):
                    yield block
        return StreamingResponse(chunks(), media_type="application/vnd.apache.parquet", headers=headers)

    # ---- items and annotations -----------------------------------------------------------------

    @r.post("/items/{item_id}/annotations", status_code=201,
            summary="Submit answers for an item (201 created, 200 replay of the same idempotency key)")
    async def submit(item_id: int, body: AnnotationIn, request: Request, user: User = Depends(current_user),
                     idempotency_key: str | None = Header(default=None)):
        status, out = await submit_answers(_store(request), item_id, user, body.answers, body.active_ms,
                                           body.idempotency_key or idempotency_key)
        return Response(out, status_code=status, media_type="application/json")

    @r.put("/annotations/{annotation_id}", summary="Amend one of the caller's recent annotations")
    def amend(annotation_id: int, body: AmendIn, request: Request, user: User = Depends(current_user)):
        return queue_svc.amend(_store(request), annotation_id, user, body.answers, active_ms=body.active_ms)

    @r.post("/items/{item_id}/skip", status_code=204, summary="Skip an item (never offered to the caller again)")
    def skip(item_id: int, request: Request, user: User = Depends(current_user)):
        queue_svc.skip(_store(request), item_id, user)
        return Response(status_code=204)

    @r.post("/items/{item_id}/release", status_code=204, summary="Give back the caller's lease on an item")
    def release(item_id: int, request: Request, user: User = Depends(current_user)):
        queue_svc.release(_store(request), item_id, user)
        return Response(status_code=204)

    return r
