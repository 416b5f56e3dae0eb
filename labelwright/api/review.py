"""Review (reviewers of a project): the next submission to review and the decision on it, questions about
decisions, and the assistant's check queue's decisions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labelwright.api.deps import AnnotationId, Caller, CheckId, store_of
from labelwright.api.models import CheckIn, DecisionIn, QuestionIn
from labelwright.services import appeals, checks, policy, review


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/projects/{project}/review/next", summary="The next submission to review (204: none waiting)",
            responses={204: {"description": "nothing to review"}})
    def review_next(project: str, request: Request, user: Caller):
        store = store_of(request)
        got = review.next_for_review(store, policy.review(store, user, project).project, user)
        return Response(status_code=204) if got is None else got

    @r.post("/projects/{project}/review/{annotation_id}",
            summary="Accept, fix (with corrected answers) or reject (with feedback) a submission")
    def review_decide(project: str, annotation_id: AnnotationId, body: DecisionIn, request: Request, user: Caller):
        store = store_of(request)
        return review.decide(store, policy.review(store, user, project).project, user, annotation_id, body.decision,
                             fixed_answers=body.answers, feedback=body.feedback, revision=body.revision)

    @r.get("/projects/{project}/review", summary="Submissions by review status (reviewer)")
    def review_counts(project: str, request: Request, user: Caller):
        store = store_of(request)
        return review.counts(store, policy.review(store, user, project).project)

    @r.get("/projects/{project}/questions", summary="Open questions about review decisions (reviewer)")
    def open_questions(project: str, request: Request, user: Caller):
        store = store_of(request)
        return appeals.open_for_review(store, policy.review(store, user, project).project, user)

    @r.post("/projects/{project}/questions/{question_id}", summary="Answer a question about a decision (reviewer)")
    def answer_question(project: str, question_id: AnnotationId, body: QuestionIn, request: Request, user: Caller):
        store = store_of(request)
        return appeals.reply(store, policy.review(store, user, project).project, user, question_id, body.body)

    @r.post("/checks/{check_id}", summary="Decide a check the caller holds: the label they give (reviewer)")
    def decide_check(check_id: CheckId, body: CheckIn, request: Request, user: Caller):
        store = store_of(request)
        policy.review(store, user, checks.project_of(store, check_id))
        return checks.decide(store, check_id, user, body.label)

    return r
