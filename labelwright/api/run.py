"""Running an item's code (a ``code`` question) in the server's sandbox: the annotator's Run button."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from labelwright.api.deps import Caller, ItemId, store_of
from labelwright.questions.code import MAX_CODE
from labelwright.services import runs


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(default=None, max_length=64,
                                 description="the code question (default: the project's first)")
    code: str | None = Field(default=None, max_length=MAX_CODE,
                             description="the code to run instead of the item's (the annotator's edit)")


def build_router() -> APIRouter:
    r = APIRouter()
    runner = runs.Runner()  # this app's limits: runs at once, runs per person a minute

    @r.post("/items/{item_id}/run",
            summary="Run an item's code and tests in the sandbox (member it was handed to; reviewer)")
    def run_item(item_id: ItemId, request: Request, user: Caller, body: RunIn | None = None):
        body = body or RunIn()
        return runs.run_item(store_of(request), runner, item_id, user, question=body.question, code=body.code)

    return r
