"""Owner pages for quality work: one item with every answer (and marking it gold, with the previous and
next item in doubt a key away: see :mod:`labelwright.web.doubt`), pausing annotators.

Handlers check that the session is an owner's and carries the CSRF token, call the gold, pause and
items services, and redirect back (post/redirect/get).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api import ItemId
from labelwright.errors import ValidationError
from labelwright.services import gold as gold_svc
from labelwright.services import items as items_svc
from labelwright.services import labels as labels_svc
from labelwright.services import pauses
from labelwright.services import users as users_svc
from labelwright.web import project_for_page, render
from labelwright.web.doubt import Asked, Position, doubt_nav
from labelwright.web.pages import (_media_enabled, errors_by_question, layout, parse_answers, question_views,
                                   state_from_answers)
from labelwright.web.words import confidence_text


def _render_item(request: Request, project, item: dict, *, status: int = 200, state=None, errors=None,
                 form_error: str | None = None, position: int | None = None, asked: int | None = None):
    schema = project.schema
    if state is None:
        state = state_from_answers(schema, item["gold"] or {})
    return render(request, "item.html", status=status, project=project, item=item,
                  blocks=layout(schema, item["data"], _media_enabled(request)),
                  questions=question_views(schema, item["data"], state, errors or {}),
                  consensus=labels_svc.item_consensus(request.app.state.store, project, item["id"]),
                  confidence_text=confidence_text,
                  doubt=doubt_nav(request.app.state.store, project, item["id"], position), asked=asked,
                  form_error=form_error)


def item_page(slug: str, item_id: ItemId, request: Request, doubt: Position = None, asked: Asked = None):
    """One item; ``?doubt=<n>`` is its place among the items in doubt (for previous / next)."""
    _, store, project = project_for_page(slug, request, "manager")
    return _render_item(request, project, items_svc.item_detail(store, project, item_id), position=doubt,
                        asked=asked)


def _position(form) -> int | None:
    """The item's place among the items in doubt, as the page had it (a hidden field)."""
    raw = str(form.get("doubt") or "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _item_url(project, item_id: int, position: int | None) -> str:
    return f"/projects/{project.slug}/items/{item_id}" + ("" if position is None else f"?doubt={position}")


def save_gold(slug: str, item_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, "manager", form)
    parsed = parse_answers(project.schema, form)
    errors, form_error = parsed.errors, None
    if not errors:
        try:
            # From the page, gold is a complete answer (the API and imports may give a subset).
            project.schema.validate_answers(parsed.answers)
            gold_svc.set_gold(store, project, item_id, parsed.answers, session.user)
        except ValidationError as e:
            errors, form_error = errors_by_question(project.schema, e)
        else:
            return RedirectResponse(_item_url(project, item_id, _position(form)), status_code=303)
    return _render_item(request, project, items_svc.item_detail(store, project, item_id), status=422,
                        state=parsed.state, errors=errors, form_error=form_error, position=_position(form))


def remove_gold(slug: str, item_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, "manager", form)
    gold_svc.unset_gold(store, project, item_id, session.user)
    return RedirectResponse(_item_url(project, item_id, _position(form)), status_code=303)


def set_paused(slug: str, name: str, request: Request, form, pause: bool):
    session, store, project = project_for_page(slug, request, "manager", form)
    annotator = users_svc.get_user(store, name)
    if pause:
        pauses.pause(store, project, annotator, by=session.user, reason=str(form.get("reason") or "") or None)
    else:
        pauses.resume(store, project, annotator, by=session.user)
    return RedirectResponse(f"/projects/{project.slug}/quality#annotators-h", status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/items/{item_id}", item_page, methods=["GET"])

    @r.post("/projects/{slug}/items/{item_id}/gold")
    async def gold(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(save_gold, slug, item_id, request, form)

    @r.post("/projects/{slug}/items/{item_id}/gold/remove")
    async def gold_remove(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(remove_gold, slug, item_id, request, form)

    @r.post("/projects/{slug}/annotators/{name}/pause")
    async def pause(slug: str, name: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_paused, slug, name, request, form, True)

    @r.post("/projects/{slug}/annotators/{name}/resume")
    async def resume(slug: str, name: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(set_paused, slug, name, request, form, False)
    return r
