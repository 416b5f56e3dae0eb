"""REST routes for a project's rules (labelling functions as annotators), for its managers.

``GET`` lists the rules, whether the label model is on and the analysis table; ``POST`` adds a rule (and runs
it over every item); ``PATCH .../{rule_id}`` changes one (run again, or its votes removed when disabled);
``DELETE`` removes one with its votes; ``POST .../label-model`` switches the label model. See docs/quality.md,
"Rules as annotators".
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from labelwright.api.deps import Caller, RuleId, store_of
from labelwright.api.models import LabelModelIn, RuleChangeIn, RuleIn
from labelwright.services import policy, rules


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/projects/{project}/rules",
           summary="The project's rules, the label model setting and the analysis table (manager)")
    def list_rules(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return {"label_model": rules.label_model_on(store, p), "rules": rules.list_rules(store, p),
                "analysis": rules.analysis(store, p)}

    @r.post("/projects/{project}/rules", status_code=201,
            summary="Add a rule (keyword, regex or Python labelling function); it votes on every item (manager)")
    def add_rule(project: str, body: RuleIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return rules.create_rule(store, p, **body.model_dump(), by=user)

    @r.patch("/projects/{project}/rules/{rule_id}",
             summary="Change a rule or switch it on or off; it votes again on every item (manager)")
    def change_rule(project: str, rule_id: RuleId, body: RuleChangeIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return rules.update_rule(store, p, rule_id, body.model_dump(exclude_none=True), by=user)

    @r.delete("/projects/{project}/rules/{rule_id}", status_code=204,
              summary="Remove a rule and its votes (manager)")
    def delete_rule(project: str, rule_id: RuleId, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        rules.delete_rule(store, p, rule_id, by=user)
        return Response(status_code=204)

    @r.post("/projects/{project}/rules/label-model",
            summary="Aggregate with the label model over people and rules, or not (manager)")
    def set_label_model(project: str, body: LabelModelIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return {"label_model": rules.set_label_model(store, p, body.enabled, by=user)}

    return r
