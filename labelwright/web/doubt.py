"""The items in doubt and asking for more answers on chosen ones (managers' pages).

``GET /projects/{p}/doubt`` lists the project's ordinary items with answers, least sure first
(:func:`labelwright.services.gold.items_in_doubt`), each with a checkbox; the form under it asks for
more answers on the ones ticked (``POST /projects/{p}/more-answers``, which the owner's item page uses
too, for its one item). Both need a manager of the project; the POST carries the session's CSRF token,
calls :func:`labelwright.services.queue_controls.more_answers` (audited as ``items.more_answers``) and
redirects back (post/redirect/get). :func:`doubt_nav` gives the item page its previous / next item in
doubt.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.errors import ValidationError
from labelwright.services import access, queue_controls
from labelwright.services import gold as gold_svc
from labelwright.web import project_for_page, render
from labelwright.web.answers import answer_view

SHOWN = 200  # rows on the page; the rest wait until these are settled
Position = Annotated[int | None, Query(ge=0, le=access.MAX_ID, description="the item's place among those in doubt")]
Asked = Annotated[int | None, Query(ge=0, le=1_000_000)]


def doubt_nav(store, project, item_id: int, position: int | None) -> dict:
    """The item page's place in the items in doubt, with links to the previous and next one."""
    nav = gold_svc.doubt_neighbours(gold_svc.items_in_doubt(store, project), item_id, position)
    for side in ("previous", "next"):
        row = nav[side]
        if row is not None:
            row["url"] = f"/projects/{project.slug}/items/{row['item_id']}?doubt={row['position']}"
    return nav


def _render_doubt(request: Request, store, project, *, status: int = 200, error: str | None = None,
                  asked: int | None = None, asked_items: int | None = None, chosen=()):
    rows = gold_svc.items_in_doubt(store, project)
    questions = {q.name: q for q in project.schema.questions}
    shown = [{**r, "position": k, "shown": answer_view(project.schema, questions[r["question"]], r["label"])["text"],
              "question_title": questions[r["question"]].title}
             for k, r in enumerate(rows[:SHOWN])]
    return render(request, "doubt.html", status=status, project=project, rows=shown, total=len(rows),
                  asked=asked, asked_items=asked_items, error=error, chosen=set(chosen))


def doubt_page(slug: str, request: Request, asked: Asked = None, items: Asked = None):
    _, store, project = project_for_page(slug, request, "manager")
    return _render_doubt(request, store, project, asked=asked, asked_items=items)


def _answers(form) -> int:
    raw = str(form.get("answers") or "1").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) < 4):
        raise ValidationError("ask for 1 to 20 more answers", field="answers")
    return int(raw)


def ask_more(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, "manager", form)
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


def add_routes(r):
    r.add_api_route("/projects/{slug}/doubt", doubt_page, methods=["GET"])

    @r.post("/projects/{slug}/more-answers")
    async def more_answers(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(ask_more, slug, request, form)
    return r
