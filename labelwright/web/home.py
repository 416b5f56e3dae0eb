"""The home page (``/``): the projects the user may see, with progress for their managers, and an
annotator's own work (:func:`labelwright.services.home.my_work`)."""

from __future__ import annotations

from fastapi import Request

from labelwright.services import access, home, policy
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.store import Store
from labelwright.timefmt import utc_time
from labelwright.web import current_session, render


def index_rows(store: Store, user, projects) -> list[dict]:
    """What the project list shows: progress for an owner, the user's own counts for everyone."""
    rows = []
    for p in projects:
        role = access.role_in(store, user, p)
        row = {"project": p, "mine": queue_svc.counts_for_user(store, p, user), "progress": None, "role": role,
               "reviews": policy.role_allows(role, policy.review)}
        if policy.role_allows(role, policy.manage_project):
            row["progress"] = projects_svc.progress(store, p)
        rows.append(row)
    return rows


def index(request: Request):
    session = current_session(request)
    store = request.app.state.store
    visible = access.visible_project_ids(store, session.user)
    projects = [p for p in projects_svc.list_projects(store) if visible is None or p.id in visible]
    mine = None if session.user.is_owner else home.my_work(store, session.user)
    return render(request, "index.html", rows=index_rows(store, session.user, projects), work=mine,
                  can_create=policy.allows(policy.create_project, session.user),
                  work_by={w["project"]: w for w in mine["projects"]} if mine else {},
                  pct=lambda v: "–" if v is None else f"{v:.0%}", when=utc_time)


def add_routes(r):
    r.add_api_route("/", index, methods=["GET"])
    return r
