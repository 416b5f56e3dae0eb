"""REST API under ``/api/v1``: thin handlers that check access and call the services.

Authentication: ``Authorization: Bearer <token>`` (API tokens), or the browser's session cookie plus
an ``X-CSRF-Token`` header on every request that changes something.
"""

from __future__ import annotations

import hmac
import tempfile
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, Field

from labelwright.errors import Forbidden, NotFound, Unauthorized, ValidationError
from labelwright.services import access
from labelwright.services import audit
from labelwright.services import export as export_svc
from labelwright.services import items as items_svc
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.services import users as users_svc
from labelwright.services.users import User

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
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
            (request.headers.get("x-csrf-token") or "").encode(), session.csrf.encode()):
        raise Forbidden("missing or wrong X-CSRF-Token header")
    return session.user


def owner(user: User = Depends(current_user)) -> User:
    if not user.is_owner:
        raise Forbidden("only an owner can do this")
    return user


def _managed(request: Request, project: str, user: User, at_least: str = "manager"):
    """The store and the project, once the caller is checked to be at least ``at_least`` in it."""
    store = _store(request)
    return store, access.project_for(store, project, user, at_least)[0]


def _store(request: Request):
    return request.app.state.store


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn takes it from X-Forwarded-For when the proxy is trusted)."""
    return request.client.host if request.client else "unknown"


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
    projects: list[str] = Field(default_factory=list, description="projects (slugs or ids) they join")
    project_role: str = Field(default="annotator", description="their role in those projects")


class UserPatch(BaseModel):
    role: str | None = Field(default=None, description="owner, manager, reviewer or annotator")
    disabled: bool | None = Field(default=None, description="a disabled user cannot sign in or use tokens")


class MemberIn(BaseModel):
    role: str = Field(default="annotator", description="annotator, reviewer or manager")


class TokenIn(BaseModel):
    label: str | None = Field(default=None, max_length=200)


class PasswordIn(BaseModel):
    current: str = Field(description="the caller's password now (wrong ones count toward the sign-in limits)")
    new: str = Field(description="8 characters or more")
    keep_tokens: bool = Field(default=False, description="keep the caller's API tokens; by default a new "
                                                          "password revokes them all, this request's included")


class InviteIn(BaseModel):
    role: str = Field(default="annotator", description="the organisation role of whoever accepts it")
    project: str | None = Field(default=None, description="a project to join (slug or id)")
    project_role: str = Field(default="annotator", description="their role in that project")
    hours: float = Field(default=72, gt=0, le=24 * 90, description="how long the link works")
    max_uses: int = Field(default=1, ge=1, le=10_000, description="how many accounts it can create")


# ---- the two hot routes: shared by their FastAPI handlers and labelwright.api.hot ----------------


async def claim(store, project_ref: str, user: User) -> tuple[int, bytes | None]:
    """``POST /projects/{project}/next``: (200, the item as JSON) or (204, None)."""
    project, _ = access.project_for(store, project_ref, user, "annotator")
    item = await store.run(queue_svc.claim_next, store, project, user)
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

    @r.patch("/users/{name}", summary="Change a user's organisation role, or disable / enable them (owner)")
    def patch_user(name: str, body: UserPatch, request: Request, user: User = Depends(owner)):
        return users_svc.update_user(_store(request), name, role=body.role, disabled=body.disabled, by=user)

    @r.get("/users/{name}/tokens", summary="A user's API tokens, without their secrets (owner)")
    def user_tokens(name: str, request: Request, _: User = Depends(owner)):
        store = _store(request)
        return users_svc.list_tokens(store, users_svc.get_user(store, name))

    @r.get("/tokens", summary="The caller's API tokens, without their secrets")
    def my_tokens(request: Request, user: User = Depends(current_user)):
        return users_svc.list_tokens(_store(request), user)

    @r.post("/tokens", status_code=201, summary="A new API token for the caller (the secret is shown once)")
    def new_token(request: Request, body: TokenIn | None = None, user: User = Depends(current_user)):
        store = _store(request)
        secret = users_svc.create_api_token(store, user, label=body.label if body else None)
        return {"token": secret, **users_svc.list_tokens(store, user)[-1]}

    @r.delete("/tokens/{token_id}", status_code=204,
              summary="Revoke an API token (the caller's own; owners: anyone's)")
    def revoke_token(token_id: TokenId, request: Request, user: User = Depends(current_user)):
        users_svc.revoke_token(_store(request), token_id, user)
        return Response(status_code=204)

    @r.post("/me/password", status_code=204,
            summary="Change the caller's password (signs out every session; revokes API tokens unless keep_tokens)")
    def change_password(body: PasswordIn, request: Request, user: User = Depends(current_user)):
        # a plain def: FastAPI runs it in a worker thread, so argon2 never holds up the event loop
        from labelwright.services import signin

        signin.change_password(_store(request), user, body.current, body.new, client_address(request),
                               signin.Limits.from_settings(request.app.state.settings),
                               keep_tokens=body.keep_tokens)
        return Response(status_code=204)

    # ---- invites and the audit log -------------------------------------------------------------

    @r.post("/invites", status_code=201,
            summary="An invite link that creates an account (owner; a manager for the projects they manage)")
    def create_invite(body: InviteIn, request: Request, user: User = Depends(current_user)):
        from labelwright.services import invites

        store = _store(request)
        project = None
        if body.project is not None:
            project = access.project_for(store, body.project, user, "manager")[0]
        secret, invite = invites.create_invite(store, user, role=body.role, project=project,
                                               project_role=body.project_role, hours=body.hours,
                                               max_uses=body.max_uses)
        return {**invite, "url": f"{request.app.state.settings.public_url}/invite/{secret}"}

    @r.get("/invites", summary="Invites: all (owner) or the caller's own (manager)")
    def list_invites(request: Request, user: User = Depends(current_user)):
        from labelwright.services import invites

        access.require_org(user, "manager")
        return invites.list_invites(_store(request), None if user.is_owner else user)

    @r.delete("/invites/{invite_id}", status_code=204, summary="Revoke an invite (owner, or its creator)")
    def revoke_invite(invite_id: InviteId, request: Request, user: User = Depends(current_user)):
        from labelwright.services import invites

        invites.revoke_invite(_store(request), invite_id, user)
        return Response(status_code=204)

    @r.get("/audit", summary="The audit log, newest first (owner; a project's managers with ?project=)")
    def audit_log(request: Request, project: str | None = None, limit: int = Query(200, ge=1, le=5000),
                  before: Before = None, user: User = Depends(current_user)):
        store = _store(request)
        if project is None:
            access.require_org(user, "owner")
            return audit.entries(store, None, limit, before)
        return audit.entries(store, _managed(request, project, user)[1].id, limit, before)

    @r.post("/users", status_code=201, summary="Create a user; returns an API token and a sign-in link (owner)")
    def create_user(body: UserIn, request: Request, _: User = Depends(owner)):
        store = _store(request)
        projects = [access.project_for(store, ref, _)[0] for ref in body.projects]
        user = users_svc.create_user(store, body.name, body.role, body.password)
        for p in projects:
            access.set_member(store, p, user.name, body.project_role, by=_)
        token = users_svc.create_api_token(store, user, label="created by API")
        link = users_svc.create_signin_link_token(store, user, request.app.state.settings.signin_link_hours)
        return {"id": user.id, "name": user.name, "role": user.role, "token": token,
                "signin_url": f"{request.app.state.settings.public_url}/signin/{link}"}

    # ---- projects ------------------------------------------------------------------------------

    @r.get("/projects", summary="List the projects the caller is a member of (owners: all)")
    def list_projects(request: Request, user: User = Depends(current_user)):
        store = _store(request)
        visible = access.visible_project_ids(store, user)
        return [p.to_dict(owner=user.is_owner or access.role_in(store, user, p) == "manager")
                for p in projects_svc.list_projects(store) if visible is None or p.id in visible]

    @r.post("/projects", status_code=201,
            summary="Create a project from a schema (owner or manager; a manager becomes its manager)")
    def create_project(schema: dict[str, Any], request: Request, user: User = Depends(current_user)):
        access.require_org(user, "manager")
        store = _store(request)
        p = projects_svc.create_project(store, schema, created_by=user.id)
        if not user.is_owner:
            access.set_member(store, p, user.name, "manager", by=user)
        return p.to_dict()

    @r.get("/projects/{project}", summary="Read a project (by slug or id; members)")
    def get_project(project: str, request: Request, user: User = Depends(current_user)):
        p, role = access.project_for(_store(request), project, user)
        return p.to_dict(owner=role in ("owner", "manager"))

    @r.get("/projects/{project}/status", summary="Progress: items done / in progress / waiting (manager)")
    def status(project: str, request: Request, user: User = Depends(current_user)):
        return projects_svc.progress(*_managed(request, project, user))

    @r.get("/projects/{project}/quality",
           summary="Quality: agreement, consensus confusion, annotator table, items in doubt (reviewer)")
    def quality(project: str, request: Request, doubt: int = Query(20, ge=0, le=500),
                user: User = Depends(current_user)):
        from labelwright.services.quality import project_quality

        store, p = _managed(request, project, user, "reviewer")
        return project_quality(store, p, doubt_limit=doubt)

    # ---- members ----------------------------------------------------------------------------------

    @r.get("/projects/{project}/members", summary="The project's members and their roles (manager)")
    def list_members(project: str, request: Request, user: User = Depends(current_user)):
        return access.members(*_managed(request, project, user))

    @r.put("/projects/{project}/members/{name}", summary="Add a member or change their role (manager)")
    def put_member(project: str, name: str, body: MemberIn, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
        return access.set_member(store, p, name, body.role, by=user)

    @r.delete("/projects/{project}/members/{name}", status_code=204,
              summary="Remove a member (their leases are released; their answers stay) (manager)")
    def delete_member(project: str, name: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
        access.remove_member(store, p, name, by=user)
        return Response(status_code=204)

    @r.post("/projects/{project}/members/{name}/block",
            summary="Block someone from the project: they see nothing of it, their leases are released (manager)")
    def block_member(project: str, name: str, request: Request, body: PauseIn | None = None,
                     user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
        released = access.block(store, p, name, by=user, reason=body.reason if body else None)
        return {"user": name, "status": "blocked", "leases_released": released}

    @r.post("/projects/{project}/members/{name}/unblock", summary="Lift a block (manager)")
    def unblock_member(project: str, name: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
        return {"user": name, "was_blocked": access.unblock(store, p, name, by=user)}

    # ---- gold items and paused annotators (owner) ------------------------------------------------

    @r.get("/projects/{project}/gold", summary="Gold items with their answers (manager)")
    def list_gold(project: str, request: Request, user: User = Depends(current_user)):
        from labelwright.services import gold as gold_svc

        return [{"item_id": i, "gold": g}
                for i, g in sorted(gold_svc.gold_answers(*_managed(request, project, user)).items())]

    @r.put("/projects/{project}/items/{item_id}/gold", summary="Mark an item as gold with its answers (manager)")
    def set_gold(project: str, item_id: ItemId, body: GoldIn, request: Request, user: User = Depends(current_user)):
        from labelwright.services import gold as gold_svc

        store, p = _managed(request, project, user)
        return gold_svc.set_gold(store, p, item_id, body.answers, user)

    @r.delete("/projects/{project}/items/{item_id}/gold", status_code=204,
              summary="Make a gold item an ordinary one again (manager)")
    def unset_gold(project: str, item_id: ItemId, request: Request, user: User = Depends(current_user)):
        from labelwright.services import gold as gold_svc

        store, p = _managed(request, project, user)
        gold_svc.unset_gold(store, p, item_id, user)
        return Response(status_code=204)

    @r.get("/projects/{project}/paused", summary="Annotators paused in the project (manager)")
    def list_paused(project: str, request: Request, user: User = Depends(current_user)):
        from labelwright.services import pauses

        return pauses.paused(*_managed(request, project, user))

    @r.post("/projects/{project}/annotators/{name}/pause",
            summary="Pause an annotator in the project: no new items, no submissions, leases released (manager)")
    def pause(project: str, name: str, request: Request, body: PauseIn | None = None,
              user: User = Depends(current_user)):
        from labelwright.services import pauses

        store, p = _managed(request, project, user)
        released = pauses.pause(store, p, users_svc.get_user(store, name), by=user,
                                reason=body.reason if body else None)
        return {"annotator": name, "paused": True, "leases_released": released}

    @r.post("/projects/{project}/annotators/{name}/resume", summary="Let a paused annotator work again (manager)")
    def resume(project: str, name: str, request: Request, user: User = Depends(current_user)):
        from labelwright.services import pauses

        store, p = _managed(request, project, user)
        was = pauses.resume(store, p, users_svc.get_user(store, name), by=user)
        return {"annotator": name, "paused": False, "was_paused": was}

    @r.post("/projects/{project}/items", summary="Add a batch of items, atomically (manager)")
    def add_items(project: str, body: ItemsIn, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
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
        store, p = _managed(request, project, user, "annotator")
        return queue_svc.history(store, p, user, limit)

    @r.get("/projects/{project}/mine", summary="The caller's done / left counts in a project")
    def mine(project: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "annotator")
        return queue_svc.counts_for_user(store, p, user)

    @r.get("/projects/{project}/export", summary="Stream the export: jsonl, csv or parquet (manager)")
    def export(project: str, request: Request, format: str = Query("jsonl", pattern="^(jsonl|csv|parquet)$"),
               user: User = Depends(current_user)):
        store, p = _managed(request, project, user)
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
    async def submit(item_id: ItemId, body: AnnotationIn, request: Request, user: User = Depends(current_user),
                     idempotency_key: str | None = Header(default=None)):
        status, out = await submit_answers(_store(request), item_id, user, body.answers, body.active_ms,
                                           body.idempotency_key or idempotency_key)
        return Response(out, status_code=status, media_type="application/json")

    @r.put("/annotations/{annotation_id}", summary="Amend one of the caller's recent annotations")
    def amend(annotation_id: AnnotationId, body: AmendIn, request: Request, user: User = Depends(current_user)):
        return queue_svc.amend(_store(request), annotation_id, user, body.answers, active_ms=body.active_ms)

    @r.post("/items/{item_id}/skip", status_code=204, summary="Skip an item (never offered to the caller again)")
    def skip(item_id: ItemId, request: Request, user: User = Depends(current_user)):
        queue_svc.skip(_store(request), item_id, user)
        return Response(status_code=204)

    @r.post("/items/{item_id}/release", status_code=204, summary="Give back the caller's lease on an item")
    def release(item_id: ItemId, request: Request, user: User = Depends(current_user)):
        queue_svc.release(_store(request), item_id, user)
        return Response(status_code=204)

    from labelwright.api import assist, machines, workforce

    r.include_router(workforce.build_router())
    r.include_router(machines.build_router())
    r.include_router(assist.build_router())
    return r
