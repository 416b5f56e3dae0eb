"""Workforce pages: answering the qualification test, the review queue, and the pay page.

Same shape as :mod:`labelwright.web.label_pages`: handlers check the session, the CSRF token and the caller's
role in the project, call the services, and redirect after a change (post/redirect/get).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import AnnotationId, Before, ItemId
from labelwright.errors import ValidationError
from labelwright.services import access, audit, pay, policy, qualification, review
from labelwright.timefmt import utc_time
from labelwright.web import current_session, project_for_page, render
from labelwright.web.answers import answer_views, item_view
from labelwright.web.forms import errors_by_question, form_text, parse_answers, state_from_answers
from labelwright.web.views import item_media_url, layout, media_enabled, question_views


def qualification_answer(slug: str, item_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.annotate, form)
    parsed = parse_answers(project.schema, form)
    if not parsed.errors:
        try:
            state = qualification.answer(store, project, session.user, item_id, parsed.answers)
        except ValidationError:
            state = None  # an incomplete answer: the label page hands out the same test item again
        if state is not None and state["state"] != "in_progress":
            return render(request, "qualified.html", project=project, state=state)  # graded
    return RedirectResponse(f"/projects/{project.slug}/label", status_code=303)


Skip = Annotated[int | None, Query(ge=1, le=access.MAX_ID, description="pass over this submission")]


def _render_review(request: Request, project, sub: dict | None, *, status: int = 200, state=None, errors=None,
                   form_error: str | None = None, mode: str | None = None):
    """The review page. ``mode`` ("fix" or "reject") opens the page in that step again after an error."""
    counts = review.counts(request.app.state.store, project, request.state.session.user)
    if sub is None:
        return render(request, "review.html", project=project, sub=None, counts=counts)
    schema = project.schema
    media_url = item_media_url(project, sub["item"]["id"])
    view = item_view(schema, sub["item"]["data"], media_enabled(request), media_url, sub["item"]["id"])
    return render(request, "review.html", status=status, project=project, sub=sub,
                  blocks=layout(schema, sub["item"]["data"], media_enabled(request), media_url),
                  questions=question_views(schema, sub["item"]["data"],
                                           state if state is not None else state_from_answers(schema, sub["answers"]),
                                           errors or {}),
                  answer=answer_views(schema, sub["answers"], view),
                  others=[{"annotator": o["annotator"], "answers": answer_views(schema, o["answers"], view)}
                          for o in sub["other_answers"]],
                  instructions=schema.instructions, mode=mode, form_error=form_error, counts=counts)


def review_page(slug: str, request: Request, skip: Skip = None):
    """The submission to review; ``?skip=<id>`` passes over that one to the next (the Next link, N/J)."""
    session, store, project = project_for_page(slug, request, policy.review)
    return _render_review(request, project, review.next_for_review(store, project, session.user, skip=skip))


def _revision(form) -> int | None:
    """The revision the reviewer saw (a hidden field of the review form)."""
    raw = form_text(form.get("revision"))
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def review_decide(slug: str, annotation_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.review, form)
    decision = form_text(form.get("decision"))
    parsed = parse_answers(project.schema, form) if decision == "fixed" else None
    try:
        review.decide(store, project, session.user, annotation_id, decision,
                      fixed_answers=parsed.answers if parsed else None, feedback=form_text(form.get("feedback")),
                      revision=_revision(form))
    except ValidationError as e:
        sub = review.next_for_review(store, project, session.user)
        errors, form_error = errors_by_question(project.schema, e)
        return _render_review(request, project, sub, status=422, state=parsed.state if parsed else None,
                              errors=errors, form_error=form_error,
                              mode={"fixed": "fix", "rejected": "reject"}.get(decision))
    return RedirectResponse(f"/projects/{project.slug}/review", status_code=303)


def pay_page(slug: str, request: Request):
    _, store, project = project_for_page(slug, request, policy.manage_project)
    if project.schema.pay is not None:
        pay.settle(store, project)
    return render(request, "pay.html", project=project, rows=pay.summary(store, project),
                  settings=project.schema.pay)


def audit_page(request: Request, before: Before = None):
    session = current_session(request)
    policy.read_audit(session.user)
    limit = 200
    return render(request, "audit.html", entries=audit.entries(request.app.state.store, None, limit, before),
                  limit=limit, when=utc_time)


def add_routes(r):
    r.add_api_route("/audit", audit_page, methods=["GET"])
    @r.post("/projects/{slug}/qualification/{item_id}")
    async def answer(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(qualification_answer, slug, item_id, request, form)

    r.add_api_route("/projects/{slug}/review", review_page, methods=["GET"])

    @r.post("/projects/{slug}/review/{annotation_id}")
    async def decide(slug: str, annotation_id: AnnotationId, request: Request):
        form = await request.form()
        return await run_in_threadpool(review_decide, slug, annotation_id, request, form)

    r.add_api_route("/projects/{slug}/pay", pay_page, methods=["GET"])
    return r
