"""Labelling (members of a project): claim the next item, answer it, skip it or give it back, see and amend
one's recent answers, take the project's qualification test.

:func:`claim` and :func:`submit_answers` are the two hot routes' work, shared by their FastAPI handlers here
and by :class:`labelwright.api.hot.HotRoutes`, which answers their plain form without FastAPI.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from labelwright.api.deps import AnnotationId, Caller, ItemId, store_of
from labelwright.api.models import AmendIn, AnnotationIn, AnswersIn
from labelwright.services import policy, qualification, second_opinions
from labelwright.services import queue as queue_svc
from labelwright.services.users import User
from labelwright.store import Store


def next_item(store: Store, project_ref: str, user: User) -> tuple[int, bytes | None]:
    """The work of ``POST /projects/{project}/next``: (200, the item as JSON) or (204, None). Run it
    through :meth:`Store.run` (:func:`claim`), which on PostgreSQL batches it, lookups included, with
    the other calls waiting (see :mod:`labelwright.store.pg_batch`)."""
    project = policy.annotate(store, user, project_ref).project
    item = queue_svc.claim_next(store, project, user)
    return (204, None) if item is None else (200, orjson.dumps(item))


async def claim(store: Store, project_ref: str, user: User) -> tuple[int, bytes | None]:
    """``POST /projects/{project}/next``: (200, the item as JSON) or (204, None)."""
    return await store.run(next_item, store, project_ref, user)


def record_answers(store: Store, item_id: int, user: User, answers, active_ms: int,
                   idempotency_key: str | None) -> tuple[int, bytes]:
    """The work of ``POST /items/{item_id}/annotations`` (run it through :meth:`Store.run`)."""
    ann, created = queue_svc.submit(store, item_id, user, answers, active_ms=active_ms,
                                    idempotency_key=idempotency_key)
    return 201 if created else 200, orjson.dumps(ann)


async def submit_answers(store: Store, item_id: int, user: User, answers, active_ms: int,
                         idempotency_key: str | None) -> tuple[int, bytes]:
    """``POST /items/{item_id}/annotations``: (201, the annotation) or (200, the replayed one). The item
    is reached by its id: the submission's own statement reads the caller's membership of its project and
    answers 404 to a non-member (see :func:`labelwright.services.access.require`)."""
    return await store.run(record_answers, store, item_id, user, answers, active_ms, idempotency_key,
                           items=(item_id,))


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/projects/{project}/next", summary="Claim the next item for the caller (204: nothing left)",
            responses={204: {"description": "nothing left for this annotator"}})
    async def next_item(project: str, request: Request, user: Caller):
        status, body = await claim(store_of(request), project, user)
        return Response(body, status_code=status, media_type="application/json" if body else None)

    @r.get("/projects/{project}/history", summary="The caller's recent annotations (the amendable ones)")
    def history(project: str, request: Request, user: Caller, limit: int = Query(20, ge=1, le=1000)):
        store = store_of(request)
        return queue_svc.history(store, policy.annotate(store, user, project).project, user, limit)

    @r.get("/projects/{project}/mine", summary="The caller's done / left counts in a project, and whether items in "
                                               "doubt wait for others because the caller is held back")
    def mine(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.annotate(store, user, project).project
        return {**queue_svc.counts_for_user(store, p, user), "held_back": second_opinions.held_back(store, p, user.id)}

    @r.get("/projects/{project}/qualification", summary="The caller's qualification status in the project")
    def qualification_status(project: str, request: Request, user: Caller):
        store = store_of(request)
        return qualification.status(store, policy.annotate(store, user, project).project, user)

    @r.post("/projects/{project}/qualification/{item_id}",
            summary="Answer one item of the qualification test; returns the status (graded after the last)")
    def qualification_answer(project: str, item_id: ItemId, body: AnswersIn, request: Request, user: Caller):
        store = store_of(request)
        return qualification.answer(store, policy.annotate(store, user, project).project, user, item_id,
                                    body.answers)

    @r.post("/items/{item_id}/annotations", status_code=201,
            summary="Submit answers for an item (201 created, 200 replay of the same idempotency key)")
    async def submit(item_id: ItemId, body: AnnotationIn, request: Request, user: Caller,
                     idempotency_key: str | None = Header(default=None)):
        status, out = await submit_answers(store_of(request), item_id, user, body.answers, body.active_ms,
                                           body.idempotency_key or idempotency_key)
        return Response(out, status_code=status, media_type="application/json")

    @r.put("/annotations/{annotation_id}", summary="Amend one of the caller's recent annotations")
    def amend(annotation_id: AnnotationId, body: AmendIn, request: Request, user: Caller):
        return queue_svc.amend(store_of(request), annotation_id, user, body.answers, active_ms=body.active_ms)

    @r.post("/items/{item_id}/skip", status_code=204, summary="Skip an item (never offered to the caller again)")
    def skip(item_id: ItemId, request: Request, user: Caller):
        queue_svc.skip(store_of(request), item_id, user)
        return Response(status_code=204)

    @r.post("/items/{item_id}/release", status_code=204, summary="Give back the caller's lease on an item")
    def release(item_id: ItemId, request: Request, user: Caller):
        queue_svc.release(store_of(request), item_id, user)
        return Response(status_code=204)

    return r
