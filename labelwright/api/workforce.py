"""REST routes for the workforce: qualification, review, pay, messages, project controls, the caller's
own work. Thin handlers: check access, call the service (see the services' docstrings for the rules)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from labelwright.api import AnnotationId, ItemId, _managed, current_user
from labelwright.errors import ValidationError
from labelwright.services import home, messages, pay, qualification, review
from labelwright.services.users import User


class AnswersIn(BaseModel):
    answers: dict[str, Any] = Field(description="answers keyed by question name")


class DecisionIn(BaseModel):
    decision: str = Field(description="accepted, fixed or rejected")
    answers: dict[str, Any] | None = Field(default=None, description="the corrected answers (for 'fixed')")
    feedback: str | None = Field(default=None, description="for the annotator; required for 'rejected'")
    revision: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                 description="the revision you reviewed; 409 if the annotator changed it since")


class MessageIn(BaseModel):
    body: str
    to: str | None = Field(default=None, description="one member's name; default: every member")


class QuestionIn(BaseModel):
    body: str = Field(description="the question, or the answer to it (at most 2,000 characters)")


class MoreAnswersIn(BaseModel):
    items: list[str] = Field(description="external ids of the items")
    answers: int = Field(default=1, description="how many more answers each item needs")


def _day(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ValidationError("a day as YYYY-MM-DD", field=field) from None


def build_router() -> APIRouter:
    r = APIRouter()  # included by labelwright.api.build_router, under /api/v1

    @r.get("/me/work", summary="The caller's own work: projects, queue, today and this week, gold accuracy, "
                               "agreement, feedback, messages, earnings and effective hourly rate")
    def my_work(request: Request, user: User = Depends(current_user)):
        return home.my_work(request.app.state.store, user)

    @r.get("/me/feedback", summary="Review decisions and feedback on the caller's submissions")
    def my_feedback(request: Request, user: User = Depends(current_user)):
        return review.feedback_for(request.app.state.store, user)

    @r.get("/me/messages", summary="Messages to the caller from their projects' managers")
    def my_messages(request: Request, user: User = Depends(current_user)):
        return messages.for_user(request.app.state.store, user)

    @r.post("/me/questions/{annotation_id}", status_code=201,
            summary="Question the latest decision (rejected or fixed) on one of the caller's submissions")
    def ask_question(annotation_id: AnnotationId, body: QuestionIn, request: Request, user: User = Depends(current_user)):
        from labelwright.services import appeals

        return appeals.ask(request.app.state.store, user, annotation_id, body.body)

    # ---- qualification ---------------------------------------------------------------------------

    @r.get("/projects/{project}/qualification", summary="The caller's qualification status in the project")
    def qualification_status(project: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "annotator")
        return qualification.status(store, p, user)

    @r.post("/projects/{project}/qualification/{item_id}",
            summary="Answer one item of the qualification test; returns the status (graded after the last)")
    def qualification_answer(project: str, item_id: ItemId, body: AnswersIn, request: Request,
                             user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "annotator")
        return qualification.answer(store, p, user, item_id, body.answers)

    # ---- review ----------------------------------------------------------------------------------

    @r.post("/projects/{project}/review/next", summary="The next submission to review (204: none waiting)",
            responses={204: {"description": "nothing to review"}})
    def review_next(project: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "reviewer")
        got = review.next_for_review(store, p, user)
        return Response(status_code=204) if got is None else got

    @r.post("/projects/{project}/review/{annotation_id}",
            summary="Accept, fix (with corrected answers) or reject (with feedback) a submission")
    def review_decide(project: str, annotation_id: AnnotationId, body: DecisionIn, request: Request,
                      user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "reviewer")
        return review.decide(store, p, user, annotation_id, body.decision, fixed_answers=body.answers,
                             feedback=body.feedback, revision=body.revision)

    @r.get("/projects/{project}/questions", summary="Open questions about review decisions (reviewer)")
    def open_questions(project: str, request: Request, user: User = Depends(current_user)):
        from labelwright.services import appeals

        store, p = _managed(request, project, user, "reviewer")
        return appeals.open_for_review(store, p, user)

    @r.post("/projects/{project}/questions/{question_id}", summary="Answer a question about a decision (reviewer)")
    def answer_question(project: str, question_id: AnnotationId, body: QuestionIn, request: Request,
                        user: User = Depends(current_user)):
        from labelwright.services import appeals

        store, p = _managed(request, project, user, "reviewer")
        return appeals.reply(store, p, user, question_id, body.body)

    @r.get("/projects/{project}/review", summary="Submissions by review status (reviewer)")
    def review_counts(project: str, request: Request, user: User = Depends(current_user)):
        return review.counts(*_managed(request, project, user, "reviewer"))

    # ---- pay -------------------------------------------------------------------------------------

    @r.post("/projects/{project}/pay/settle", summary="Bring the ledger up to date (manager)")
    def pay_settle(project: str, request: Request, user: User = Depends(current_user)):
        return pay.settle(*_managed(request, project, user, "manager"))

    @r.get("/projects/{project}/pay", summary="Per annotator: items, active hours, earnings, effective "
                                               "hourly rate, below the fair rate (manager)")
    def pay_summary(project: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "manager")
        pay.settle(store, p)
        return pay.summary(store, p)

    @r.get("/projects/{project}/ledger", summary="Ledger entries, JSON or CSV, by period and annotator (manager)")
    def ledger(project: str, request: Request, start: str | None = Query(None, description="YYYY-MM-DD, inclusive"),
               end: str | None = Query(None, description="YYYY-MM-DD, exclusive"), annotator: str | None = None,
               format: str = Query("json", pattern="^(json|csv)$"), user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "manager")
        pay.settle(store, p)
        rows = pay.ledger_rows(store, p, start=_day(start, "start"), end=_day(end, "end"), annotator=annotator)
        if format == "csv":
            name = f"{p.slug}-ledger" + (f"-{annotator}" if annotator else "") + (f"-{start}" if start else "") + ".csv"
            return Response(pay.ledger_csv(rows), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return rows

    # ---- messages and controls -----------------------------------------------------------------------

    @r.post("/projects/{project}/messages", status_code=201, summary="Message the project's annotators (manager)")
    def send_message(project: str, body: MessageIn, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "manager")
        return messages.send(store, p, user, body.body, body.to)

    @r.post("/projects/{project}/items/more-answers", summary="Ask for more answers on chosen items (manager)")
    def more_answers(project: str, body: MoreAnswersIn, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "manager")
        return messages.more_answers(store, p, body.items, body.answers, by=user)

    @r.patch("/projects/{project}/settings",
             summary="Change settings of a running project: instructions, description, gold, qualification, "
                     "review, pay, expires_at, lease_seconds, history_size (manager; audited)")
    def settings(project: str, body: dict[str, Any], request: Request, user: User = Depends(current_user)):
        from labelwright.services.projects import update_settings

        store, p = _managed(request, project, user, "manager")
        return update_settings(store, p, body, by=user).to_dict()

    @r.post("/projects/{project}/expire", summary="Expire the project: no new work is handed out (manager)")
    def expire(project: str, request: Request, user: User = Depends(current_user)):
        store, p = _managed(request, project, user, "manager")
        return messages.expire(store, p, by=user).to_dict()

    return r
