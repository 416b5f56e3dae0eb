"""REST routes for the project assistant (issue 9): its report, running a step now, resuming auto-labelling,
and the check queue (audits of machine labels, suspected label errors). See docs/assist.md.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from labelwright.api.deps import Caller, store_of
from labelwright.errors import ValidationError
from labelwright.services import assist_report, assistant, autolabel, checks, policy
from labelwright.services.projects import Project


def _assisted(grant: policy.Grant) -> Project:
    """The project of ``grant``, once it has an assistant."""
    if grant.project.schema.assist is None:
        raise ValidationError("this project has no assist block in its schema; see docs/assist.md", field="assist")
    return grant.project


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/projects/{project}/assist",
           summary="The assistant's report: state, models, thresholds, machine labels, audit, suggestions, LLM cost "
                   "(manager)")
    def get_assist(project: str, request: Request, user: Caller):
        store = store_of(request)
        return assist_report.report(store, _assisted(policy.manage_project(store, user, project)))

    @r.post("/projects/{project}/assist/run",
            summary="Run one assistant step now: features, training, predictions, order, auto-labelling (manager)")
    def run_assist(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = _assisted(policy.manage_project(store, user, project))
        settings = request.app.state.settings
        report = assistant.step_now(store, p, media_root=settings.media_root,
                                    python_models=settings.python_models).to_dict()
        public = report.pop("public_error")
        if not policy.allows(policy.see_model_errors, user):
            report["error"] = public
        return report

    @r.post("/projects/{project}/assist/resume",
            summary="Turn auto-labelling on again after its audit stopped it (manager)")
    def resume_assist(project: str, request: Request, user: Caller):
        store = store_of(request)
        autolabel.resume(store, _assisted(policy.manage_project(store, user, project)))
        return {"auto_label": "on"}

    @r.get("/projects/{project}/checks",
           summary="The check queue's latest entries, open and decided (manager)")
    def list_checks(project: str, request: Request, user: Caller):
        store = store_of(request)
        return checks.list_checks(store, _assisted(policy.manage_project(store, user, project)))

    @r.post("/projects/{project}/checks/next",
            summary="The caller's next check under a lease, or 204 when none is open (reviewer)")
    def next_check(project: str, request: Request, user: Caller):
        store = store_of(request)
        got = checks.next_check(store, _assisted(policy.review(store, user, project)), user)
        return Response(status_code=204) if got is None else got

    return r
