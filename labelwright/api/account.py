"""The caller's own things: who they are, their API tokens and password, their work, feedback and messages,
and questions about decisions on their submissions. Open to anyone signed in: each route reads or changes
only the caller's own rows (someone else's token or submission is not found, 404)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labelwright.api.deps import AnnotationId, Caller, TokenId, client_address, store_of
from labelwright.api.models import PasswordIn, QuestionIn, TokenIn
from labelwright.services import appeals, home, messages, review, signin
from labelwright.services import users as users_svc


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/me", summary="Who the token or session belongs to")
    def me(user: Caller):
        return {"id": user.id, "name": user.name, "role": user.role}

    @r.get("/tokens", summary="The caller's API tokens, without their secrets")
    def my_tokens(request: Request, user: Caller):
        return users_svc.list_tokens(store_of(request), user)

    @r.post("/tokens", status_code=201, summary="A new API token for the caller (the secret is shown once)")
    def new_token(request: Request, user: Caller, body: TokenIn | None = None):
        store = store_of(request)
        secret = users_svc.create_api_token(store, user, label=body.label if body else None)
        return {"token": secret, **users_svc.list_tokens(store, user)[-1]}

    @r.delete("/tokens/{token_id}", status_code=204,
              summary="Revoke an API token (the caller's own; owners: anyone's)")
    def revoke_token(token_id: TokenId, request: Request, user: Caller):
        users_svc.revoke_token(store_of(request), token_id, user)
        return Response(status_code=204)

    @r.post("/me/password", status_code=204,
            summary="Change the caller's password (signs out every session; revokes API tokens unless keep_tokens)")
    def change_password(body: PasswordIn, request: Request, user: Caller):
        # a plain def: FastAPI runs it in a worker thread, so argon2 never holds up the event loop
        signin.change_password(store_of(request), user, body.current, body.new, client_address(request),
                               signin.Limits.from_settings(request.app.state.settings),
                               keep_tokens=body.keep_tokens)
        return Response(status_code=204)

    @r.get("/me/work", summary="The caller's own work: projects, queue, today and this week, gold accuracy, "
                               "agreement, feedback, messages, earnings and effective hourly rate")
    def my_work(request: Request, user: Caller):
        return home.my_work(store_of(request), user)

    @r.get("/me/feedback", summary="Review decisions and feedback on the caller's submissions")
    def my_feedback(request: Request, user: Caller):
        return review.feedback_for(store_of(request), user)

    @r.get("/me/messages", summary="Messages to the caller from their projects' managers")
    def my_messages(request: Request, user: Caller):
        return messages.for_user(store_of(request), user)

    @r.post("/me/questions/{annotation_id}", status_code=201,
            summary="Question the latest decision (rejected or fixed) on one of the caller's submissions")
    def ask_question(annotation_id: AnnotationId, body: QuestionIn, request: Request, user: Caller):
        return appeals.ask(store_of(request), user, annotation_id, body.body)

    return r
