"""Instant items: the labelling page shows the next item the moment the annotator submits, without a reload.

How it works (``static/label.js`` is the other half; without JavaScript none of this is used and every
item is a full page load, as before):

1. The page asks ``POST /projects/{p}/label/prefetch`` (``csrf``, ``current``: the item on screen) for the
   next item. The queue claims it under a short lease (:func:`labelwright.services.queue.prefetch`) and this
   module answers ``{"next": {"item_id", "html"}}``: the item and its form, rendered by the same template
   as a loaded page (``_label_region.html``), or ``{"next": null}``. Asking again with ``have`` = that item
   renews its short lease (the page does so every minute) and answers ``html: null``.
2. On Enter the page swaps the prefetched item in at once and sends the answered form to its usual action
   with ``Accept: application/json`` and ``promote`` = the item now shown. The answer (:func:`saved`):
   ``{"saved": true, "counts", "back_url", "promoted", "lease_left", "next"}``: the promoted item's lease
   now runs the project's full time from the moment it was shown, and ``next`` is the item after it.
   A form with errors answers 422 ``{"saved": false, "html"}``: the page swaps the answered item back in,
   errors next to their questions, and keeps the prefetched one for later (:func:`invalid`). A conflict
   (the lease lapsed and others finished the item) answers 409 ``{"saved": false, "error"}``.
3. A prefetched item the annotator will not see is given back: ``navigator.sendBeacon`` to
   ``POST /projects/{p}/items/{id}/release`` when the page goes away (a tab closed, Backspace, a reload),
   and, if that is lost, its short lease runs out. Release only ever lets go of a *prefetched* lease (one
   younger than the user's current item), so a late beacon cannot drop the item on screen.

The routes (prefetch, release, and the submit and skip that answer JSON) are in
:mod:`labelwright.web.label_pages`; this module builds their JSON answers.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from labelwright.errors import LabelwrightError
from labelwright.services import queue as queue_svc
from labelwright.store import Store
from labelwright.web.forms import form_id
from labelwright.web.views import history_url, item_context


def wants_json(request: Request) -> bool:
    return "application/json" in (request.headers.get("accept") or "")


def json_response(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def region_html(request: Request, project, item: dict, **shown) -> str:
    """One item and its form, as ``_label_region.html`` renders it on the page."""
    context = item_context(request, project, item, **shown)
    template = request.app.state.jinja.get_template("_label_region.html")
    return template.render(request=request, session=request.state.session, **context)


def next_item(request: Request, store: Store, project, user, current: int, have: int | None = None) -> dict | None:
    """The prefetched item after ``current``: rendered, or ``html: None`` when it is ``have`` (renewed)."""
    item = queue_svc.prefetch(store, project, user, current)
    if item is None:
        return None
    if item["id"] == have:
        return {"item_id": have, "html": None}
    recent = queue_svc.history(store, project, user, limit=1)
    html = region_html(request, project, item, mode="label",
                       back_url=history_url(project, recent[0] if recent else None))
    return {"item_id": item["id"], "html": html}


def saved(request: Request, store: Store, project, user, form) -> Response:
    """The answer to a submit or skip sent by label.js: saved; the item it shows now (``promote``) becomes
    the user's current item, and the one after it is prefetched."""
    recent = queue_svc.history(store, project, user, limit=1)
    body: dict[str, Any] = {"saved": True, "back_url": history_url(project, recent[0] if recent else None),
            "promoted": None, "lease_left": None, "next": None}
    promote = form_id(form, "promote")
    if promote is not None:
        expires = queue_svc.promote(store, project, user, promote)
        body["promoted"] = expires is not None
        if expires is not None:
            body["lease_left"] = int(max(0, expires - time.time()))
            body["next"] = next_item(request, store, project, user, promote)
    body["counts"] = queue_svc.counts_for_user(store, project, user)
    return json_response(body)


def not_saved(error: LabelwrightError) -> Response:
    return json_response({"saved": False, "error": error.message}, error.status)


def invalid(request: Request, project, item: dict, shown: dict) -> Response:
    html = region_html(request, project, item, **shown)
    return json_response({"saved": False, "item_id": item["id"], "html": html}, 422)
