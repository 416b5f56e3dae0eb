"""What an item's page shows: its display fields laid out, its questions as form controls, and the context
of ``_label_region.html`` (one item and its form) for the labelling page and a prefetched item.

Pure functions of the schema, the item and the form state (plus the request for the server's settings);
the page modules (:mod:`labelwright.web.label_pages`, ``work``, ``doubt``, ``assist``, ``project_setup``)
render with them.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

from fastapi import Request
from jinja2 import BaseLoader, Environment, TemplateNotFound

from labelwright.questions import registry
from labelwright.schema import ProjectSchema
from labelwright.services import media as media_svc

CHAT_ROLES = ("user", "assistant", "system", "tool")
QUESTION_TEMPLATES = "question/"  # a question type's form partial: question/<type>.html


def media_enabled(request: Request) -> bool:
    """Whether this server serves media files (``/media/...``, from ``settings.media_root``)."""
    return request.app.state.settings.media_root is not None


def label_url(project) -> str:
    return f"/projects/{project.slug}/label"


def history_url(project, entry: dict | None) -> str | None:
    """The page that amends ``entry`` of the user's history (None: no entry)."""
    return f"/projects/{project.slug}/history/{entry['id']}" if entry else None


def item_media_url(project, item_id: int) -> str:
    """The start of an item's media URLs: ``{this}/{field}`` (:mod:`labelwright.web.media`)."""
    return f"/projects/{project.slug}/items/{int(item_id)}/media"


def image_src(value, media_enabled: bool, item_media: str | None = None) -> str | None:
    """Where the browser loads an image field from; None means show the value as text. ``item_media``: the
    field's URL on the item's media route, which resolves any scheme a resolver knows (``s3://``; a path
    under the media root) for those who may see the item; without it, only http(s) URLs and media-root paths."""
    if not isinstance(value, str) or not value:
        return None
    lower = value.lower()
    if lower.startswith(("http://", "https://")):
        return value
    scheme = media_svc.scheme_of(value)
    if scheme != media_svc.LOCAL:
        return item_media if item_media and scheme in media_svc.known_schemes() else None
    if value.startswith(("/", "\\")) or not media_enabled:
        return None  # an absolute path, or nowhere to serve files from
    return item_media or "/media/" + quote(value)


def _field_view(f, data: dict, media_enabled: bool, badge: str | None = None, media_url: str | None = None) -> dict:
    value = data.get(f.name)
    view = {"name": f.name, "type": f.type, "title": f.title, "value": value, "badge": badge}
    if f.type == "image":
        item_media = f"{media_url}/{quote(f.name, safe='')}" if media_url else None
        view["src"] = image_src(value, media_enabled, item_media)
        view["thumb"] = f"{item_media}?thumb=1" if item_media and view["src"] else None
    elif f.type == "chat":
        turns = value if isinstance(value, list) else []
        view["turns"] = [{"role": str(t.get("role", "")), "content": str(t.get("content", "")),
                          "css": t.get("role") if t.get("role") in CHAT_ROLES else "other"}
                         for t in turns if isinstance(t, dict)]
    return view


def layout(schema: ProjectSchema, data: dict, media_enabled: bool, media_url: str | None = None) -> list[dict]:
    """Display fields in schema order, with pairwise candidates side by side and ranked ones numbered.
    ``media_url``: the item's media URLs (:func:`item_media_url`), for its images (and their thumbnails)."""
    groups: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for q in schema.questions:
        group = q.field_groups()
        if group is None:
            continue
        kind, members = group
        for name, _ in members:
            groups.setdefault(name, (kind, members))
    blocks: list[dict] = []
    placed: set[str] = set()
    for f in schema.fields:
        if f.name in placed:
            continue
        if f.name in groups:
            kind, members = groups[f.name]
            placed.update(n for n, _ in members)
            blocks.append({"kind": kind, "fields": [_field_view(schema.field(n), data, media_enabled, badge, media_url)
                                                    for n, badge in members]})
        elif data.get(f.name) not in (None, "", []):
            placed.add(f.name)
            blocks.append({"kind": "single", "fields": [_field_view(f, data, media_enabled, None, media_url)]})
    return blocks


def question_views(schema: ProjectSchema, data: dict, state: dict, errors: dict) -> list[dict]:
    """Each question as its form partial (``v.template``) wants it: the question's own context
    (:meth:`labelwright.questions.QuestionType.view_context`) over the common part."""
    titles = {f.name: f.title for f in schema.fields}
    views = []
    for q in schema.questions:
        view = {"q": q, "name": q.name, "type": q.type, "title": q.title, "hint": q.hint,
                "required": q.required, "error": errors.get(q.name), "state": state.get(q.name),
                "template": f"{QUESTION_TEMPLATES}{q.type}.html"}
        view.update(q.view_context(view["state"], data, titles))
        views.append(view)
    return views


def suggest(questions: list[dict], suggestion: dict | None) -> None:
    """Show ``suggestion`` (``{question, label, confidence, model}`` from the queue) in the question views of
    the labelling page: its option is marked, and pre-selected when the person has chosen nothing there yet.
    ``pending`` (the mark the page shows until the person chooses) holds while the choice is the suggestion."""
    if not suggestion:
        return
    for v in questions:
        q = v["q"]
        if v["name"] != suggestion.get("question") or not q.suggestible:
            continue
        value = str(suggestion["label"])
        if not any(c["value"] == value for c in v["choices"]):
            return  # a label the question no longer has (the schema changed since the prediction)
        v["state"], current = q.suggestion_state(v["state"], value)
        confidence = suggestion.get("confidence")
        v["suggestion"] = {"value": value, "model": str(suggestion.get("model") or ""),
                           "confidence": None if confidence is None else f"{float(confidence):.0%}",
                           "pending": current == value}
        return


class QuestionTemplates(BaseLoader):
    """Finds ``question/<type>.html``: the form partial of a registered question type, a file next to the
    module that defines it (built-ins and plugins alike)."""

    def get_source(self, environment: Environment, template: str):
        if not template.startswith(QUESTION_TEMPLATES) or not template.endswith(".html"):
            raise TemplateNotFound(template)
        tag = template[len(QUESTION_TEMPLATES):-len(".html")]
        cls = registry.question_types().get(tag)
        if cls is None:
            raise TemplateNotFound(template)
        path = cls.template_path()
        try:
            source = path.read_text(encoding="utf-8")
            mtime = path.stat().st_mtime
        except OSError:
            raise TemplateNotFound(template) from None

        def uptodate() -> bool:
            try:
                return registry.question_types().get(tag) is cls and path.stat().st_mtime == mtime
            except OSError:
                return False
        return source, str(path), uptodate


def item_context(request: Request, project, item: dict, *, mode: str, state=None, errors=None,
                 form_error: str | None = None, idempotency_key: str | None = None,
                 annotation: dict | None = None, back_url: str | None = None) -> dict:
    """What ``_label_region.html`` (one item and its form) needs: for the page, and for a prefetched item."""
    schema = project.schema
    data = item["data"]
    questions = question_views(schema, data, state or {}, errors or {})
    labelling = mode == "label" and item.get("stage") != "qualification"
    if labelling:  # a test item never shows the assistant's answer
        suggest(questions, item.get("suggestion"))
    expires = item.get("lease_expires_at")
    return dict(
        project=project, item=item, mode=mode,
        blocks=layout(schema, data, media_enabled(request), item_media_url(project, item["id"])),
        questions=questions, form_error=form_error,
        idempotency_key=idempotency_key or str(uuid.uuid4()), annotation=annotation, back_url=back_url,
        lease_left=int(max(0, expires - time.time())) if mode == "label" and expires else None,
        instant=f"/projects/{project.slug}/label/prefetch" if labelling else None,
        action=(f"/projects/{project.slug}/history/{annotation['id']}" if mode == "amend" and annotation
                else f"/projects/{project.slug}/qualification/{item['id']}" if item.get("stage") == "qualification"
                else f"/projects/{project.slug}/items/{item['id']}/submit"),
        skip_action=(f"/projects/{project.slug}/items/{item['id']}/skip"
                     if labelling else None),
    )
