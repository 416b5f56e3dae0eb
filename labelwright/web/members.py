"""A project's members and invite links, from the browser (the project's managers and owners).

The same services as the API (:mod:`labelwright.services.access`, :mod:`labelwright.services.invites`),
so the same rules and the same audit entries: add an existing user with a role, change it, remove,
block and unblock; create an invite link to the project (its URL is shown once, on the page that
answers the form: only its hash is stored), list the project's invites and revoke them.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import InviteId
from labelwright.errors import Forbidden, LabelwrightError, ValidationError
from labelwright.services import access, invites, policy
from labelwright.store import Store
from labelwright.timefmt import utc_time
from labelwright.web import project_for_page, render


def _page(request: Request, project, *, status: int = 200, error: str | None = None, invite_url: str | None = None,
          message: str | None = None):
    store = request.app.state.store
    user = request.state.session.user
    rows = access.members(store, project)
    for m in rows:
        m["added"], m["blocked"] = utc_time(m["added_at"], missing=""), utc_time(m["blocked_at"], missing="")
    links = invites.list_invites(store, project=project)
    for i in links:
        i["created"], i["expires"] = utc_time(i["created_at"], missing=""), utc_time(i["expires_at"], missing="")
    return render(request, "members.html", status=status, project=project, members=rows, invites=links,
                  roles=access.PROJECT_ROLES,
                  invite_roles=access.PROJECT_ROLES if user.is_owner else ("annotator", "reviewer"),
                  error=error, invite_url=invite_url, message=message)


def members_page(slug: str, request: Request, done: str | None = None):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return _page(request, project, message=DONE.get(done or ""))


DONE = {"added": "Member saved.", "removed": "Member removed; their answers stay.", "blocked": "Blocked.",
        "unblocked": "Block lifted.", "revoked": "Invite revoked."}


def _back(project, done: str) -> RedirectResponse:
    return RedirectResponse(f"/projects/{project.slug}/members?done={done}", status_code=303)


def _act(slug: str, request: Request, form, action):
    """Check the form (CSRF, a manager of the project), run ``action(store, project, user)`` and go back to
    the page; a refusal by the service (an unknown user, a role too high) shows the page with the reason."""
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    try:
        done = action(store, project, session.user)
    except Forbidden:
        raise
    except LabelwrightError as e:
        return _page(request, project, status=e.status, error=e.message)
    return _back(project, done)


def _field(form, name: str) -> str:
    return str(form.get(name) or "").strip()


def add_member(slug: str, request: Request, form):
    def run(store: Store, project, user):
        name = _field(form, "name")
        if not name:
            raise ValidationError("write the user's name", field="name")
        access.set_member(store, project, name, _field(form, "role") or "annotator", by=user)
        return "added"
    return _act(slug, request, form, run)


def set_role(slug: str, name: str, request: Request, form):
    def run(store: Store, project, user):
        if not any(m["user"] == name for m in access.members(store, project)):
            raise ValidationError(f"{name!r} is not a member of this project; add them first", field="name")
        access.set_member(store, project, name, _field(form, "role"), by=user)
        return "added"
    return _act(slug, request, form, run)


def remove(slug: str, name: str, request: Request, form):
    def run(store: Store, project, user):
        if not access.remove_member(store, project, name, by=user):
            raise ValidationError(f"{name!r} is not a member of this project", field="name")
        return "removed"
    return _act(slug, request, form, run)


def block(slug: str, name: str, request: Request, form):
    def run(store: Store, project, user):
        access.block(store, project, name, by=user, reason=_field(form, "reason")[:1000] or None)
        return "blocked"
    return _act(slug, request, form, run)


def unblock(slug: str, name: str, request: Request, form):
    def run(store: Store, project, user):
        access.unblock(store, project, name, by=user)
        return "unblocked"
    return _act(slug, request, form, run)


def _number(form, name: str, default, cast):
    value = _field(form, name)
    if not value:
        return default
    try:
        return cast(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number", field=name) from None


def create_invite(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    role = _field(form, "role") or "annotator"
    try:
        hours = _number(form, "hours", 72.0, float)
        max_uses = _number(form, "max_uses", 1, int)
        if not 1 <= max_uses <= 10_000:
            raise ValidationError("an invite works 1 to 10,000 times", field="max_uses")
        # The account's organisation role is the project role it is invited to.
        secret, _ = invites.create_invite(store, session.user, role=role, project=project, project_role=role,
                                          hours=hours, max_uses=max_uses)
    except Forbidden as e:
        return _page(request, project, status=403, error=e.message)
    except LabelwrightError as e:
        return _page(request, project, status=e.status, error=e.message)
    url = f"{request.app.state.settings.public_url}/invite/{secret}"
    resp = _page(request, project, status=201, invite_url=url)
    resp.headers["Cache-Control"] = "no-store"  # the link is shown once: keep it out of caches and history
    return resp


def revoke(slug: str, invite_id: int, request: Request, form):
    def run(store: Store, project, user):
        invites.revoke_invite(store, invite_id, user, project=project)
        return "revoked"
    return _act(slug, request, form, run)


def _post(path: str, handler, r, *, with_name: bool = False):
    async def named(slug: str, name: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(handler, slug, name, request, form)

    async def unnamed(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(handler, slug, request, form)
    r.add_api_route(path, named if with_name else unnamed, methods=["POST"])


def add_routes(r):
    r.add_api_route("/projects/{slug}/members", members_page, methods=["GET"])
    _post("/projects/{slug}/members", add_member, r)
    _post("/projects/{slug}/members/{name}/role", set_role, r, with_name=True)
    _post("/projects/{slug}/members/{name}/remove", remove, r, with_name=True)
    _post("/projects/{slug}/members/{name}/block", block, r, with_name=True)
    _post("/projects/{slug}/members/{name}/unblock", unblock, r, with_name=True)
    _post("/projects/{slug}/invites", create_invite, r)

    @r.post("/projects/{slug}/invites/{invite_id}/revoke")
    async def revoke_route(slug: str, invite_id: InviteId, request: Request):
        form = await request.form()
        return await run_in_threadpool(revoke, slug, invite_id, request, form)
    return r
