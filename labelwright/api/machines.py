"""REST routes for a project's machine annotators (LLMs answering its queue), for its managers.

``GET`` lists them with their calls, tokens and cost; ``POST`` adds one; ``POST .../{name}/enabled`` switches
one on or off. The API key never passes through here: ``api_key_env`` names the environment variable of the
server process that holds it. See docs/assist.md.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from labelwright.api.deps import Caller, store_of
from labelwright.api.models import EnabledIn, MachineAnnotatorIn
from labelwright.services import machines, policy
from labelwright.services.users import User


def _shown(entry: dict, user: User) -> dict:
    """What a caller sees: an endpoint's error text (the start of what the server answered) only to owners."""
    return entry if policy.allows(policy.see_model_errors, user) else {**entry, "last_error": None}


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/projects/{project}/machine-annotators",
           summary="The project's machine annotators: model, calls, errors, tokens, cost, items answered (manager)")
    def list_machine_annotators(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return [_shown(m, user) for m in machines.list_machine_annotators(store, p)]

    @r.post("/projects/{project}/machine-annotators", status_code=201,
            summary="Add an LLM (OpenAI-compatible chat completions) to the project as an annotator (manager)")
    def add_machine_annotator(project: str, body: MachineAnnotatorIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return _shown(machines.add_llm_annotator(store, p, **body.model_dump(), by=user), user)

    @r.post("/projects/{project}/machine-annotators/{name}/enabled",
            summary="Switch a machine annotator on or off (manager)")
    def set_enabled(project: str, name: str, body: EnabledIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return _shown(machines.set_enabled(store, p, name, body.enabled, by=user), user)

    return r
