"""The labelling page: claim the next item, submit, skip, amend a recent answer; and the prefetch and
release that show the next item without a reload (see :mod:`labelwright.web.instant`).

Handlers parse the form, check the session and its CSRF token, call the queue service and render.
Answers travel as ordinary form fields (:func:`labelwright.web.forms.parse_answers`), so the page works
without JavaScript; ``static/label.js`` adds the keyboard, the active-time count and instant items on top.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import AnnotationId, ItemId
from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import policy, second_opinions
from labelwright.services import queue as queue_svc
from labelwright.web import check_csrf, current_session, instant, render
from labelwright.web.forms import active_ms, errors_by_question, form_id, form_text, parse_answers, state_from_answers
from labelwright.web.views import history_url, item_context, label_url


def _render_item(request: Request, project, item: dict, *, mode: str, status: int = 200, **kwargs):
    context = item_context(request, project, item, mode=mode, **kwargs)
    return render(request, "label.html", status=status, instructions=project.schema.instructions,
                  counts=queue_svc.counts_for_user(request.app.state.store, project, request.state.session.user),
                  **context)


def label_page(slug: str, request: Request, item: str | None = None):
    """Claim the next item (or get the one already held) and show it.

    ``?item=N`` is where the page's own history (label.js swaps items in without a reload) points:
    for an item the user has answered recently it opens that answer to change it; otherwise the current item.
    """
    session = current_session(request)
    store = request.app.state.store
    project = policy.annotate(store, session.user, slug).project
    if item is not None and item.isascii() and item.isdigit() and len(item) < 19:
        wanted = int(item)
        answered = next((e for e in queue_svc.history(store, project, session.user) if e["item_id"] == wanted), None)
        if answered is not None:
            return RedirectResponse(history_url(project, answered) or label_url(project), status_code=303)
    recent = queue_svc.history(store, project, session.user, limit=1)
    back_url = history_url(project, recent[0] if recent else None)
    claimed = queue_svc.claim_next(store, project, session.user)
    if claimed is None:
        return render(request, "done.html", project=project, back_url=back_url,
                      counts=queue_svc.counts_for_user(store, project, session.user),
                      held_back=second_opinions.held_back(store, project, session.user.id))
    return _render_item(request, project, claimed, mode="label", back_url=back_url)


def _conflict(request: Request, project, error: Conflict):
    return render(request, "conflict.html", status=409, project=project, error=error,
                  continue_url=label_url(project))


def _item_form(slug: str, item_id: int, request: Request, form):
    """The checks every form about one item makes: signed in, CSRF token, the item is in the project."""
    session = current_session(request)
    check_csrf(session, form_text(form.get("csrf")))
    store = request.app.state.store
    project = policy.annotate(store, session.user, slug).project
    try:
        elsewhere = queue_svc.project_of_item(store, item_id).id != project.id
    except NotFound:
        elsewhere = True
    if elsewhere:  # one answer for a missing item and another project's: the page says nothing of which
        raise NotFound(f"no item {item_id} in project {project.slug!r}")
    return session, store, project


def submit_answers(slug: str, item_id: int, request: Request, form):
    """Save the answers, then show the next item (a redirect), or this one again with the errors.

    label.js sends the form with ``Accept: application/json`` and ``promote`` (the prefetched item it
    now shows): the answer is then JSON (see :mod:`labelwright.web.instant`)."""
    session, store, project = _item_form(slug, item_id, request, form)
    parsed = parse_answers(project.schema, form)
    key = form_text(form.get("idempotency_key")).strip() or None
    fetched = instant.wants_json(request)
    error: ValidationError | None = None
    if not parsed.errors:
        try:
            queue_svc.submit(store, item_id, session.user, parsed.answers, active_ms=active_ms(form),
                             idempotency_key=key)
        except ValidationError as e:
            error = e
        except Conflict as e:
            return instant.not_saved(e) if fetched else _conflict(request, project, e)
        else:
            if fetched:
                return instant.saved(request, store, project, session.user, form)
            return RedirectResponse(label_url(project), status_code=303)
    # Show the same item again with the answers given so far and the error next to its question.
    item = queue_svc.claim_next(store, project, session.user)
    if item is None or item["id"] != item_id:
        lapsed = Conflict("your lease on this item expired while you were answering; nothing was saved")
        return instant.not_saved(lapsed) if fetched else _conflict(request, project, lapsed)
    errors, form_error = errors_by_question(project.schema, error) if error else (parsed.errors, None)
    recent = queue_svc.history(store, project, session.user, limit=1)
    shown: dict[str, Any] = {"mode": "label", "state": parsed.state, "errors": errors, "form_error": form_error,
             "idempotency_key": key, "back_url": history_url(project, recent[0] if recent else None)}
    if fetched:
        return instant.invalid(request, project, item, shown)
    return _render_item(request, project, item, status=422, **shown)


def skip_item(slug: str, item_id: int, request: Request, form):
    session, store, project = _item_form(slug, item_id, request, form)
    queue_svc.skip(store, item_id, session.user)
    if instant.wants_json(request):
        return instant.saved(request, store, project, session.user, form)
    return RedirectResponse(label_url(project), status_code=303)


def _amendable(request: Request, project, annotation_id: int) -> tuple[dict, dict | None]:
    """The annotation (with its item) from the user's history, and the one before it."""
    recent = queue_svc.history(request.app.state.store, project, request.state.session.user)
    for i, entry in enumerate(recent):
        if entry["id"] == annotation_id:
            return entry, recent[i + 1] if i + 1 < len(recent) else None
    raise Forbidden(f"only your last {project.schema.history_size} answers in this project can be amended")


def _render_amend(request: Request, project, entry: dict, older: dict | None, **kwargs):
    item = {"id": entry["item_id"], "external_id": entry["external_id"], "data": entry["data"]}
    kwargs.setdefault("state", state_from_answers(project.schema, entry["answers"]))
    return _render_item(request, project, item, mode="amend", annotation=entry,
                        back_url=history_url(project, older), **kwargs)


def amend_page(slug: str, annotation_id: AnnotationId, request: Request):
    session = current_session(request)
    project = policy.annotate(request.app.state.store, session.user, slug).project
    entry, older = _amendable(request, project, annotation_id)
    if not entry["amendable"]:  # reviewed work is frozen: say so instead of a form that would be refused
        return render(request, "conflict.html", status=409, project=project,
                      heading="This answer can no longer be changed",
                      error=Conflict(f"a reviewer has decided on it ({entry['review_status']}); see the feedback "
                                     "on your home page, where you can question the decision"),
                      continue_url=label_url(project))
    return _render_amend(request, project, entry, older)


def amend_answers(slug: str, annotation_id: int, request: Request, form):
    session = current_session(request)
    check_csrf(session, form_text(form.get("csrf")))
    store = request.app.state.store
    project = policy.annotate(store, session.user, slug).project
    entry, older = _amendable(request, project, annotation_id)
    parsed = parse_answers(project.schema, form)
    errors, form_error = parsed.errors, None
    if not errors:
        try:
            queue_svc.amend(store, annotation_id, session.user, parsed.answers, active_ms=active_ms(form))
        except ValidationError as e:
            errors, form_error = errors_by_question(project.schema, e)
        else:
            return RedirectResponse(label_url(project), status_code=303)
    return _render_amend(request, project, entry, older, status=422, state=parsed.state, errors=errors,
                         form_error=form_error)


def prefetch(slug: str, request: Request, form) -> Response:
    """The next item, claimed under a short lease and rendered (``current``: the item on screen; ``have``:
    the prefetched item the page holds, whose lease this renews)."""
    session = current_session(request)
    check_csrf(session, None if form.get("csrf") is None else str(form.get("csrf")))
    store = request.app.state.store
    project = policy.annotate(store, session.user, slug).project
    current = form_id(form, "current")
    if current is None:
        return instant.json_response({"next": None})
    return instant.json_response(
        {"next": instant.next_item(request, store, project, session.user, current, form_id(form, "have"))})


def release(slug: str, item_id: int, request: Request, form) -> Response:
    """Give back a prefetched item the annotator will not see (never the item on screen)."""
    session = current_session(request)
    check_csrf(session, None if form.get("csrf") is None else str(form.get("csrf")))
    store = request.app.state.store
    project = policy.annotate(store, session.user, slug).project
    queue_svc.release_prefetched(store, project, session.user, item_id)
    return Response(status_code=204)


def add_routes(r):
    r.add_api_route("/projects/{slug}/label", label_page, methods=["GET"])

    @r.post("/projects/{slug}/label/prefetch")
    async def prefetch_route(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(prefetch, slug, request, form)

    @r.post("/projects/{slug}/items/{item_id}/release")
    async def release_route(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(release, slug, item_id, request, form)

    @r.post("/projects/{slug}/items/{item_id}/submit")
    async def submit(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(submit_answers, slug, item_id, request, form)

    @r.post("/projects/{slug}/items/{item_id}/skip")
    async def skip(slug: str, item_id: ItemId, request: Request):
        form = await request.form()
        return await run_in_threadpool(skip_item, slug, item_id, request, form)

    r.add_api_route("/projects/{slug}/history/{annotation_id}", amend_page, methods=["GET"])

    @r.post("/projects/{slug}/history/{annotation_id}")
    async def amend(slug: str, annotation_id: AnnotationId, request: Request):
        form = await request.form()
        return await run_in_threadpool(amend_answers, slug, annotation_id, request, form)
    return r
