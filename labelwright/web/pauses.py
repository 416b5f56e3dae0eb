"""Pausing an annotator in a project and letting them resume (managers; the buttons are on the quality
page). A paused annotator is handed no new work there (:mod:`labelwright.services.pauses`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.services import pauses, policy
from labelwright.services import users as users_svc
from labelwright.web import project_for_page


def set_paused(slug: str, name: str, request: Request, form, pause: bool):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    annotator = users_svc.get_user(store, name)
    if pause:
        pauses.pause(store, project, annotator, by=session.user, reason=str(form.get("reason") or "") or None)
    else:
        pauses.resume(store, project, annotator, by=session.user)
    return RedirectResponse(f"/projects/{project.slug}/quality#annotators-h", status_code=303)


def add_routes(r):
    @r.post("/projects/{slug}/annotators/{name}/pause")
    async def pause(slug: str, name: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_paused, slug, name, request, form, True)

    @r.post("/projects/{slug}/annotators/{name}/resume")
    async def resume(slug: str, name: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_paused, slug, name, request, form, False)
    return r
