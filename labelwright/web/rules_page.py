"""The rules page of a project (its managers): the rules (keyword lists, regular expressions, installed Python
labelling functions) that vote as annotators, the forms to add, change, switch on or off and delete them, the
label model switch, and the analysis table (also on the quality page).

Everything goes through :mod:`labelwright.services.rules`, as the API does. Every form carries the session's
CSRF token (:func:`labelwright.web.project_for_page` checks it). See docs/quality.md, "Rules as annotators".
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import RuleId
from labelwright.errors import LabelwrightError, NotFound
from labelwright.services import labelling_functions, policy, rules
from labelwright.store import Store
from labelwright.web import project_for_page, render

DONE = {"added": "Rule added: it has voted on every item.", "changed": "Rule changed: it has voted again.",
        "disabled": "Rule switched off: its votes are gone.",
        "enabled": "Rule switched on: it has voted on every item.",
        "deleted": "Rule deleted with its votes.", "lm-on": "The label model now aggregates people and rules.",
        "lm-off": "Rules' votes are left out of the consensus again."}


def _page(request: Request, project, *, status: int = 200, error: str | None = None, message: str | None = None,
          form: dict | None = None):
    store = request.app.state.store
    return render(request, "rules.html", status=status, project=project, rules=rules.list_rules(store, project),
                  analysis=rules.analysis(store, project), label_model=rules.label_model_on(store, project),
                  questions=rules.rule_questions(project), fields=rules.rule_fields(project),
                  functions=sorted(labelling_functions.python_functions()), error=error, message=message,
                  form=form or {}, pct=lambda v: "–" if v is None else f"{v:.0%}")


def rules_page(slug: str, request: Request, done: str | None = None):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return _page(request, project, message=DONE.get(done or ""))


def _values(form) -> dict:
    return {k: str(form.get(k) or "").strip() or None for k in rules.FIELDS if k in form}


def _act(slug: str, request: Request, form, action):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    try:
        done = action(store, project, session.user)
    except LabelwrightError as e:
        if isinstance(e, NotFound):
            raise
        where = f" ({e.field})" if getattr(e, "field", None) else ""
        return _page(request, project, status=e.status, error=e.message + where, form=_values(form))
    return RedirectResponse(f"/projects/{project.slug}/rules?done={done}#rules-h", status_code=303)


def add(slug: str, request: Request, form):
    def run(store: Store, project, user):
        values = _values(form)
        values["pattern"] = values.get("pattern") or ""
        rules.create_rule(store, project, **{"name": "", "kind": "", **values}, by=user)
        return "added"
    return _act(slug, request, form, run)


def change(slug: str, rule_id: int, request: Request, form):
    def run(store: Store, project, user):
        rules.update_rule(store, project, rule_id, _values(form), by=user)
        return "changed"
    return _act(slug, request, form, run)


def set_enabled(slug: str, rule_id: int, request: Request, form):
    on = form.get("enabled") == "1"

    def run(store: Store, project, user):
        rules.update_rule(store, project, rule_id, {"enabled": on}, by=user)
        return "enabled" if on else "disabled"
    return _act(slug, request, form, run)


def delete(slug: str, rule_id: int, request: Request, form):
    def run(store: Store, project, user):
        rules.delete_rule(store, project, rule_id, by=user)
        return "deleted"
    return _act(slug, request, form, run)


def label_model(slug: str, request: Request, form):
    on = form.get("enabled") == "1"

    def run(store: Store, project, user):
        rules.set_label_model(store, project, on, by=user)
        return "lm-on" if on else "lm-off"
    return _act(slug, request, form, run)


def add_routes(r):
    r.add_api_route("/projects/{slug}/rules", rules_page, methods=["GET"])

    @r.post("/projects/{slug}/rules")
    async def add_route(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(add, slug, request, form)

    @r.post("/projects/{slug}/rules/label-model")
    async def label_model_route(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(label_model, slug, request, form)

    @r.post("/projects/{slug}/rules/{rule_id}")
    async def change_route(slug: str, rule_id: RuleId, request: Request):
        form = await request.form()
        return await run_in_threadpool(change, slug, rule_id, request, form)

    @r.post("/projects/{slug}/rules/{rule_id}/enabled")
    async def enabled_route(slug: str, rule_id: RuleId, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_enabled, slug, rule_id, request, form)

    @r.post("/projects/{slug}/rules/{rule_id}/delete")
    async def delete_route(slug: str, rule_id: RuleId, request: Request):
        form = await request.form()
        return await run_in_threadpool(delete, slug, rule_id, request, form)
    return r
