"""A project's people (manager): its members and their roles, blocks, and paused annotators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labelwright.api.deps import Caller, store_of
from labelwright.api.models import MemberIn, PauseIn
from labelwright.services import access, pauses, policy
from labelwright.services import users as users_svc


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/projects/{project}/members", summary="The project's members and their roles (manager)")
    def list_members(project: str, request: Request, user: Caller):
        store = store_of(request)
        return access.members(store, policy.manage_project(store, user, project).project)

    @r.put("/projects/{project}/members/{name}", summary="Add a member or change their role (manager)")
    def put_member(project: str, name: str, body: MemberIn, request: Request, user: Caller):
        store = store_of(request)
        return access.set_member(store, policy.manage_project(store, user, project).project, name, body.role, by=user)

    @r.delete("/projects/{project}/members/{name}", status_code=204,
              summary="Remove a member (their leases are released; their answers stay) (manager)")
    def delete_member(project: str, name: str, request: Request, user: Caller):
        store = store_of(request)
        access.remove_member(store, policy.manage_project(store, user, project).project, name, by=user)
        return Response(status_code=204)

    @r.post("/projects/{project}/members/{name}/block",
            summary="Block someone from the project: they see nothing of it, their leases are released (manager)")
    def block_member(project: str, name: str, request: Request, user: Caller, body: PauseIn | None = None):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        released = access.block(store, p, name, by=user, reason=body.reason if body else None)
        return {"user": name, "status": "blocked", "leases_released": released}

    @r.post("/projects/{project}/members/{name}/unblock", summary="Lift a block (manager)")
    def unblock_member(project: str, name: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return {"user": name, "was_blocked": access.unblock(store, p, name, by=user)}

    @r.get("/projects/{project}/paused", summary="Annotators paused in the project (manager)")
    def list_paused(project: str, request: Request, user: Caller):
        store = store_of(request)
        return pauses.paused(store, policy.manage_project(store, user, project).project)

    @r.post("/projects/{project}/annotators/{name}/pause",
            summary="Pause an annotator in the project: no new items, no submissions, leases released (manager)")
    def pause(project: str, name: str, request: Request, user: Caller, body: PauseIn | None = None):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        released = pauses.pause(store, p, users_svc.get_user(store, name), by=user,
                                reason=body.reason if body else None)
        return {"annotator": name, "paused": True, "leases_released": released}

    @r.post("/projects/{project}/annotators/{name}/resume", summary="Let a paused annotator work again (manager)")
    def resume(project: str, name: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        was = pauses.resume(store, p, users_svc.get_user(store, name), by=user)
        return {"annotator": name, "paused": False, "was_paused": was}

    return r
