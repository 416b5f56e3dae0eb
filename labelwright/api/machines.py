"""REST routes for a project's machine annotators (LLMs answering its queue), for its managers.

``GET`` lists them with their calls, tokens and cost; ``POST`` adds one; ``POST .../{name}/enabled`` switches
one on or off. The API key never passes through here: ``api_key_env`` names the environment variable of the
server process that holds it. See docs/assist.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from labelwright.api import _managed, current_user
from labelwright.services import machines
from labelwright.services.users import User


class MachineAnnotatorIn(BaseModel):
    name: str = Field(description="its name in the project; its user is llm:<name>")
    base_url: str = Field(description="the API root, ending in /v1, e.g. http://127.0.0.1:8080/v1")
    model: str = Field(description="the model name the server knows")
    api_key_env: str | None = Field(default=None, description="NAME of the server's environment variable holding "
                                                               "the API key (never the key itself)")
    price_input_per_million: str = Field(default="0", description="price per million prompt tokens, e.g. '0.15'")
    price_output_per_million: str = Field(default="0", description="price per million completion tokens")
    send_image_urls: bool = Field(default=False, description="send http(s) image fields as image_url parts")


class EnabledIn(BaseModel):
    enabled: bool = Field(description="false: it takes no more items (its leases are given back); true: it works again")


Caller = Annotated[User, Depends(current_user)]


def _shown(entry: dict, user: User) -> dict:
    """What a caller sees: an endpoint's error text (the start of what the server answered) only to owners."""
    return entry if user.is_owner else {**entry, "last_error": None}


def build_router() -> APIRouter:
    r = APIRouter()  # included by labelwright.api.build_router, under /api/v1

    @r.get("/projects/{project}/machine-annotators",
           summary="The project's machine annotators: model, calls, errors, tokens, cost, items answered (manager)")
    def list_machine_annotators(project: str, request: Request, user: Caller):
        store, p = _managed(request, project, user)
        return [_shown(m, user) for m in machines.list_machine_annotators(store, p)]

    @r.post("/projects/{project}/machine-annotators", status_code=201,
            summary="Add an LLM (OpenAI-compatible chat completions) to the project as an annotator (manager)")
    def add_machine_annotator(project: str, body: MachineAnnotatorIn, request: Request, user: Caller):
        store, p = _managed(request, project, user)
        return _shown(machines.add_llm_annotator(store, p, **body.model_dump(), by=user), user)

    @r.post("/projects/{project}/machine-annotators/{name}/enabled",
            summary="Switch a machine annotator on or off (manager)")
    def set_enabled(project: str, name: str, body: EnabledIn, request: Request, user: Caller):
        store, p = _managed(request, project, user)
        return _shown(machines.set_enabled(store, p, name, body.enabled, by=user), user)

    return r
