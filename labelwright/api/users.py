"""The organisation: users (owners), invite links (owners; managers for the projects they manage) and the
audit log."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from labelwright.api.deps import Before, Caller, InviteId, store_of
from labelwright.api.models import InviteIn, UserIn, UserPatch
from labelwright.services import access, audit, invites, policy
from labelwright.services import users as users_svc


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/users", summary="List users (owner)")
    def list_users(request: Request, user: Caller):
        policy.manage_users(user)
        return users_svc.list_users(store_of(request))

    @r.patch("/users/{name}", summary="Change a user's organisation role, or disable / enable them (owner)")
    def patch_user(name: str, body: UserPatch, request: Request, user: Caller):
        policy.manage_users(user)
        return users_svc.update_user(store_of(request), name, role=body.role, disabled=body.disabled, by=user)

    @r.get("/users/{name}/tokens", summary="A user's API tokens, without their secrets (owner)")
    def user_tokens(name: str, request: Request, user: Caller):
        policy.manage_users(user)
        store = store_of(request)
        return users_svc.list_tokens(store, users_svc.get_user(store, name))

    @r.post("/users", status_code=201, summary="Create a user; returns an API token and a sign-in link (owner)")
    def create_user(body: UserIn, request: Request, user: Caller):
        policy.manage_users(user)
        store = store_of(request)
        settings = request.app.state.settings
        projects = [policy.manage_project(store, user, ref).project for ref in body.projects]
        created = users_svc.create_user(store, body.name, body.role, body.password)
        for p in projects:
            access.set_member(store, p, created.name, body.project_role, by=user)
        token = users_svc.create_api_token(store, created, label="created by API")
        link = users_svc.create_signin_link_token(store, created, settings.signin_link_hours)
        return {"id": created.id, "name": created.name, "role": created.role, "token": token,
                "signin_url": f"{settings.public_url}/signin/{link}"}

    @r.post("/invites", status_code=201,
            summary="An invite link that creates an account (owner; a manager for the projects they manage)")
    def create_invite(body: InviteIn, request: Request, user: Caller):
        store = store_of(request)
        if body.project is not None:
            project = policy.manage_project(store, user, body.project).project
        else:
            project = None
            policy.invite(user)
        secret, invite = invites.create_invite(store, user, role=body.role, project=project,
                                               project_role=body.project_role, hours=body.hours,
                                               max_uses=body.max_uses)
        return {**invite, "url": f"{request.app.state.settings.public_url}/invite/{secret}"}

    @r.get("/invites", summary="Invites: all (owner) or the caller's own (manager)")
    def list_invites(request: Request, user: Caller):
        policy.invite(user)
        return invites.list_invites(store_of(request), None if user.is_owner else user)

    @r.delete("/invites/{invite_id}", status_code=204, summary="Revoke an invite (owner, or its creator)")
    def revoke_invite(invite_id: InviteId, request: Request, user: Caller):
        # the caller's own invites (owners: any): the service finds no one else's
        invites.revoke_invite(store_of(request), invite_id, user)
        return Response(status_code=204)

    @r.get("/audit", summary="The audit log, newest first (owner; a project's managers with ?project=)")
    def audit_log(request: Request, user: Caller, project: str | None = None,
                  limit: int = Query(200, ge=1, le=5000), before: Before = None):
        store = store_of(request)
        if project is None:
            policy.read_audit(user)
            return audit.entries(store, None, limit, before)
        return audit.entries(store, policy.manage_project(store, user, project).project.id, limit, before)

    return r
