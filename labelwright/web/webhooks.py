"""The webhooks page of a project: its webhooks and their recent delivery log (managers and owners).

Read-only: webhooks are added, deactivated and retried through the API or the CLI (docs/webhooks.md).
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import Request

from labelwright.services import access
from labelwright.services import webhooks as svc
from labelwright.web import current_session, render

LOG_ROWS = 50


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def webhooks_page(slug: str, request: Request):
    session = current_session(request)
    store = request.app.state.store
    project = access.project_for(store, slug, session.user, "manager")[0]
    # Owners also see the webhooks for every project, which receive this project's events too.
    hooks = svc.list_webhooks(store, {project.id}, include_global=session.user.is_owner)
    log = svc.delivery_log(store, webhook_ids=[h["id"] for h in hooks], project_id=project.id, limit=LOG_ROWS)
    for d in log:
        d["when"], d["next"] = _when(d["created_at"]), _when(d["next_attempt_at"])
        d["delivered"] = _when(d["delivered_at"])
    return render(request, "webhooks.html", project=project, hooks=hooks, log=log, limit=LOG_ROWS)


def add_routes(r):
    r.add_api_route("/projects/{slug}/webhooks", webhooks_page, methods=["GET"])
    return r
