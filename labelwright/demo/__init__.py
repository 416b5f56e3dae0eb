"""The demo: two projects built from small real datasets shipped in the package (see ATTRIBUTION.md)."""

from __future__ import annotations

from importlib import resources

from labelwright.errors import Conflict, NotFound
from labelwright.io.readers import read_jsonl
from labelwright.schema import parse_schema
from labelwright.services import users as users_svc
from labelwright.services.items import import_items
from labelwright.services.projects import create_project, get_project, progress

DEMO_PROJECTS = (("youtube_spam.yaml", "youtube_spam_300.jsonl"), ("pandalm.yaml", "pandalm_200.jsonl"))
OWNER = "owner"


def build_demo(store, settings) -> dict:
    """Create (or top up) the demo owner and projects; return a fresh owner sign-in URL and a summary.

    Safe to run again on the same database: nothing is duplicated.
    """
    pkg = resources.files("labelwright.demo")
    try:
        owner = users_svc.get_user(store, OWNER)
    except NotFound:
        owner = users_svc.create_user(store, OWNER, "owner")
    summary = []
    for schema_name, data_name in DEMO_PROJECTS:
        schema = parse_schema(pkg.joinpath(schema_name).read_text(encoding="utf-8"), file=schema_name)
        try:
            project = create_project(store, schema, created_by=owner.id)
        except Conflict:
            project = get_project(store, schema.slugified())
        with pkg.joinpath("data", data_name).open("rb") as f:
            import_items(store, project, read_jsonl(f, data_name), file=data_name)
        summary.append({"slug": project.slug, "items": progress(store, project)["items"]["total"],
                        "overlap": project.overlap})
    link = users_svc.create_signin_link_token(store, owner, settings.signin_link_hours)
    return {"projects": summary, "signin_url": f"{settings.public_url}/signin/{link}"}
