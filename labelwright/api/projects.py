"""Projects: list, create, read, progress, quality, export, and the controls of a running one (settings,
expiry, more answers, messages to its members)."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Query, Request

from labelwright.api.deps import Caller, store_of
from labelwright.api.models import MessageIn, MoreAnswersIn
from labelwright.api.streaming import ClosingStream
from labelwright.services import access, export_formats, export_process, messages, policy, queue_controls
from labelwright.services import export as export_svc
from labelwright.services import projects as projects_svc
from labelwright.services.quality import project_quality


def build_router() -> APIRouter:
    r = APIRouter()

    @r.get("/projects", summary="List the projects the caller is a member of (owners: all)")
    def list_projects(request: Request, user: Caller):
        # every signed-in caller: the list holds only the projects they may see
        store = store_of(request)
        visible = access.visible_project_ids(store, user)
        return [p.to_dict(owner=policy.allows(policy.see_gold, store, user, p.id))
                for p in projects_svc.list_projects(store) if visible is None or p.id in visible]

    @r.post("/projects", status_code=201,
            summary="Create a project from a schema (owner or manager; a manager becomes its manager)")
    def create_project(schema: dict[str, Any], request: Request, user: Caller):
        policy.create_project(user)
        store = store_of(request)
        return access.create_project_for(store, schema, user).to_dict()

    @r.get("/projects/{project}", summary="Read a project (by slug or id; members)")
    def get_project(project: str, request: Request, user: Caller):
        grant = policy.view_project(store_of(request), user, project)
        return grant.project.to_dict(owner=grant.allows(policy.see_gold))

    @r.get("/projects/{project}/status", summary="Progress: items done / in progress / waiting (manager)")
    def status(project: str, request: Request, user: Caller):
        store = store_of(request)
        return projects_svc.progress(store, policy.manage_project(store, user, project).project)

    @r.get("/projects/{project}/quality",
           summary="Quality: agreement, consensus confusion, annotator table, items in doubt (reviewer)")
    def quality(project: str, request: Request, user: Caller, doubt: int = Query(20, ge=0, le=500)):
        store = store_of(request)
        return project_quality(store, policy.view_quality(store, user, project).project, doubt_limit=doubt)

    @r.get("/projects/{project}/export",
           summary="Download the export in any format: jsonl, csv, parquet (streamed), labelstudio, hf, coco, yolo, "
                   "voc, conll, spacy, dpo, sft (manager)")
    def export(project: str, request: Request, user: Caller,
               format: str = Query("jsonl", pattern=f"^({'|'.join(export_formats.FORMATS)})$")):
        store = store_of(request)
        p = policy.export(store, user, project).project
        fmt = export_formats.check_applies(p, format)
        headers = {"Content-Disposition": f'attachment; filename="{fmt.file_name.format(p.slug)}"'}
        settings = request.app.state.settings
        if format in export_svc.FORMATS and export_process.in_child(store, p, settings):
            # a large project: made on several cores by `labelwright export -o -`, relayed as it comes
            made = export_process.child_export(settings, p, format, request.app.state.export_slots)
            return ClosingStream(made, media_type=fmt.media_type, headers=headers)
        if format == "jsonl":
            return ClosingStream(export_svc.jsonl_lines(store, p), media_type=fmt.media_type, headers=headers)
        if format == "csv":
            return ClosingStream(export_svc.csv_chunks(store, p), media_type=fmt.media_type, headers=headers)
        if format == "parquet":
            spool = tempfile.TemporaryFile()
            export_svc.write_parquet(store, p, spool)
            spool.seek(0)

            def chunks():
                with spool:
                    while block := spool.read(1 << 20):
                        yield block
            return ClosingStream(chunks(), media_type=fmt.media_type, headers=headers)
        done = export_formats.export_file(store, p, format, settings.media_root)
        return ClosingStream(done.chunks(), media_type=done.media_type,
                             headers={**headers, "Content-Length": str(done.size)})

    @r.patch("/projects/{project}/settings",
             summary="Change settings of a running project: instructions, description, gold, qualification, "
                     "review, pay, expires_at, lease_seconds, history_size (manager; audited)")
    def settings(project: str, body: dict[str, Any], request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return projects_svc.update_settings(store, p, body, by=user).to_dict()

    @r.post("/projects/{project}/expire", summary="Expire the project: no new work is handed out (manager)")
    def expire(project: str, request: Request, user: Caller):
        store = store_of(request)
        return projects_svc.expire(store, policy.manage_project(store, user, project).project, by=user).to_dict()

    @r.post("/projects/{project}/items/more-answers", summary="Ask for more answers on chosen items (manager)")
    def more_answers(project: str, body: MoreAnswersIn, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        return queue_controls.more_answers(store, p, body.items, body.answers, by=user)

    @r.post("/projects/{project}/messages", status_code=201, summary="Message the project's annotators (manager)")
    def send_message(project: str, body: MessageIn, request: Request, user: Caller):
        store = store_of(request)
        return messages.send(store, policy.manage_project(store, user, project).project, user, body.body, body.to)

    return r
