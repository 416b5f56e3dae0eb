"""The items in doubt, one item with every answer (and marking it gold), and asking for more answers on
chosen ones (managers' pages).

``GET /projects/{p}/doubt`` lists the project's ordinary items with answers, least sure first
(:func:`labelwright.services.doubt.items_in_doubt`), each with a checkbox; the form under it asks for
more answers on the ones ticked (``POST /projects/{p}/more-answers``, which the owner's item page uses
too, for its one item). Both need a manager of the project; the POST carries the session's CSRF token,
calls :func:`labelwright.services.queue_controls.more_answers` (audited as ``items.more_answers``) and
redirects back (post/redirect/get).

``GET /projects/{p}/items/{id}`` shows one item with every answer, the consensus and a form for its gold
answer (``POST .../gold``, ``.../gold/remove``); reached from the items in doubt (``?doubt=<n>``, its
place among them), it links to the previous and next item in doubt (:func:`doubt_nav`), a key away.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import ItemId
from labelwright.errors import ValidationError
from labelwright.services import access, policy, queue_controls
from labelwright.services import doubt as doubt_svc
from labelwright.services import gold as gold_svc
from labelwright.services import items as items_svc
from labelwright.services import labels as labels_svc
from labelwright.services import media as media_svc
from labelwright.store import Store
from labelwright.web import project_for_page, render
from labelwright.web.answers import answer_table, item_view, label_html
from labelwright.web.forms import errors_by_question, parse_answers, state_from_answers
from labelwright.web.views import item_media_url, layout, media_enabled, question_views
from labelwright.web.words import confidence_text

SHOWN = 200  # rows on the page; the rest wait until these are settled
Position = Annotated[int | None, Query(ge=0, le=access.MAX_ID, description="the item's place among those in doubt")]
Asked = Annotated[int | None, Query(ge=0, le=1_000_000)]


def doubt_nav(store: Store, project, item_id: int, position: int | None) -> dict:
    """The item page's place in the items in doubt, with links to the previous and next one."""
    nav = doubt_svc.doubt_neighbours(doubt_svc.items_in_doubt(store, project), item_id, position)
    for side in ("previous", "next"):
        row = nav[side]
        if row is not None:
            row["url"] = f"/projects/{project.slug}/items/{row['item_id']}?doubt={row['position']}"
    return nav


def _render_doubt(request: Request, store: Store, project, *, status: int = 200, error: str | None = None,
                  asked: int | None = None, asked_items: int | None = None, chosen=()):
    rows = doubt_svc.items_in_doubt(store, project)
    questions = {q.name: q for q in project.schema.questions}
    shown = [{**r, "position": k, "shown": questions[r["question"]].label_text(r["label"]),
              "question_title": questions[r["question"]].title}
             for k, r in enumerate(rows[:SHOWN])]
    images = media_svc.images_of(store, project, [r["item_id"] for r in shown])
    for r in shown:  # a thumbnail where the item references an image
        field = images.get(r["item_id"])
        r["thumb"] = f"{item_media_url(project, r['item_id'])}/{quote(field, safe='')}?thumb=1" if field else None
    return render(request, "doubt.html", status=status, project=project, rows=shown, total=len(rows),
                  asked=asked, asked_items=asked_items, error=error, chosen=set(chosen))


def doubt_page(slug: str, request: Request, asked: Asked = None, items: Asked = None):
    _, store, project = project_for_page(slug, request, policy.manage_project)
    return _render_doubt(request, store, project, asked=asked, asked_items=items)


def _answers(form) -> int:
    raw = str(form.get("answers") or "1").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) < 4):
        raise ValidationError("ask for 1 to 20 more answers", field="answers")
    return int(raw)


def ask_more(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    chosen = list(dict.fromkeys(str(v) for v in form.getlist("items") if str(v).strip()))  # each item once
    back_item = str(form.get("item_id") or "")
    from_item = back_item.isascii() and back_item.isdigit() and len(back_item) < 19
    try:
        extra = _answers(form)
        got = queue_controls.more_answers(store, project, chosen, extra, by=session.user)
    except ValidationError as e:
        if from_item:
            raise
        return _render_doubt(request, store, project, status=422, error=e.message, chosen=chosen)
    if from_item:
        return RedirectResponse(f"/projects/{project.slug}/items/{int(back_item)}?asked={extra}", status_code=303)
    return RedirectResponse(f"/projects/{project.slug}/doubt?asked={extra}&items={got['items']}", status_code=303)


# ---- one item -----------------------------------------------------------------------------------------


def _render_item(request: Request, project, item: dict, *, status: int = 200, state=None, errors=None,
                 form_error: str | None = None, position: int | None = None, asked: int | None = None):
    schema = project.schema
    if state is None:
        state = state_from_answers(schema, item["gold"] or {})
    media_url = item_media_url(project, item["id"])
    view = item_view(schema, item["data"], media_enabled(request), media_url, item["id"])
    return render(request, "item.html", status=status, project=project, item=item,
                  blocks=layout(schema, item["data"], media_enabled(request), media_url),
                  answer_rows=answer_table(schema, item, view), item_view=view, label_html=label_html,
                  questions=question_views(schema, item["data"], state, errors or {}),
                  consensus=labels_svc.item_consensus(request.app.state.store, project, item["id"]),
                  confidence_text=confidence_text,
                  doubt=doubt_nav(request.app.state.store, project, item["id"], position), asked=asked,
                  form_error=form_error)


def item_page(slug: str, item_id: ItemId, request: Request, doubt: Position = None, asked: Asked = None):
    """One item; ``?doubt=<n>`` is its place among the items in doubt (for previous / next)."""
    _, store, project = project_for_page(slug, request, policy.manage_project)
    return _render_item(request, project, items_svc.item_detail(store, project, item_id), position=doubt,
                        asked=asked)


def _position(form) -> int | None:
    """The item's place among the items in doubt, as the page had it (a hidden field)."""
    raw = str(form.get("doubt") or "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _item_url(project, item_id: int, position: int | None) -> str:
    return f"/projects/{project.slug}/items/{item_id}" + ("" if position is None else f"?doubt={position}")


def save_gold(slug: str, item_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.see_gold, form)
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
    session, store, project = project_for_page(slug, request, policy.see_gold, form)
    gold_svc.unset_gold(store, project, item_id, session.user)
    return RedirectResponse(_item_url(project, item_id, _position(form)), status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/doubt", doubt_page, methods=["GET"])

    @r.post("/projects/{slug}/more-answers")
    async def more_answers(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(ask_more, slug, request, form)

    r.add_api_route("/projects/{slug}/items/{item_id}", item_page, methods=["GET"])

    @r.post("/projects/{slug}/items/{item_id}/gold")
    async def gold(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(save_gold, slug, item_id, request, form)

    @r.post("/projects/{slug}/items/{item_id}/gold/remove")
    async def gold_remove(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(remove_gold, slug, item_id, request, form)
    return r
