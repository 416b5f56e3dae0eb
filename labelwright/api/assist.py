"""REST routes for the project assistant (issue 9): its report, running a step now, resuming auto-labelling,
and the check queue (audits of machine labels, suspected label errors) for reviewers. See docs/assist.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from labelwright.api import _managed, _store, current_user, path_id
from labelwright.errors import ValidationError
from labelwright.services import access, assist_report, assistant, autolabel, checks
from labelwright.services.users import User

Caller = Annotated[User, Depends(current_user)]
CheckId = path_id("check")


class CheckIn(BaseModel):
    label: Any = Field(description="the label the reviewer gives (one of the question's labels)")


def _assisted(request: Request, project: str, user: User, at_least: str = "manager"):
    store, p = _managed(request, project, user, at_least)
    if p.schema.assist is None:
        raise ValidationError("this project has no assist block in its schema; see docs/assist.md", field="assist")
    return store, p


def build_router() -> APIRouter:
    r = APIRouter()  # included by labelwright.api.build_router, under /api/v1

    @r.get("/projects/{project}/assist",
           summary="The assistant's report: state, models, thresholds, machine labels, audit, suggestions, LLM cost "
                   "(manager)")
    def get_assist(project: str, request: Request, user: Caller):
        store, p = _assisted(request, project, user)
        return assist_report.report(store, p)

    @r.post("/projects/{project}/assist/run",
            summary="Run one assistant step now: features, training, predictions, order, auto-labelling (manager)")
    def run_assist(project: str, request: Request, user: Caller):
        store, p = _assisted(request, project, user)
        settings = request.app.state.settings
        report = assistant.step_now(store, p, media_root=settings.media_root,
                                python_models=settings.python_models).to_dict()
        public = report.pop("public_error")
        if not user.is_owner:  # a model URL may point anywhere: its answer's text is for owners (and the log)
            report["error"] = public
        return report

    @r.post("/projects/{project}/assist/resume",
            summary="Turn auto-labelling on again after its audit stopped it (manager)")
    def resume_assist(project: str, request: Request, user: Caller):
        store, p = _assisted(request, project, user)
        autolabel.resume(store, p)
        return {"auto_label": "on"}

    @r.get("/projects/{project}/checks",
           summary="The check queue's latest entries, open and decided (manager)")
    def list_checks(project: str, request: Request, user: Caller):
        store, p = _assisted(request, project, user)
        return checks.list_checks(store, p)

    @r.post("/projects/{project}/checks/next",
            summary="The caller's next check under a lease, or 204 when none is open (reviewer)")
    def next_check(project: str, request: Request, user: Caller):
        store, p = _assisted(request, project, user, "reviewer")
        got = checks.next_check(store, p, user)
        return Response(status_code=204) if got is None else got

    @r.post("/checks/{check_id}",
            summary="Decide a check the caller holds: the label they give (reviewer)")
    def decide_check(check_id: CheckId, body: CheckIn, request: Request, user: Caller):
        store = _store(request)
        access.project_for(store, checks.project_of(store, check_id), user, "reviewer")
        return checks.decide(store, check_id, user, body.label)

    return r
