"""Creating a project from the browser: ``/projects/new``, a schema in a text box and a live preview.

The preview is the labelling page's own partial (``_item.html``) rendered on the server for a sample
item: the one the person pasted (JSON), or every display field filled with a placeholder. Two ways
ask for it: the form's "Preview" button (no JavaScript needed), and ``static/preview.js``, which posts
the form to ``/projects/new/preview`` a moment after each keystroke and puts the HTML it gets in place.

Errors name their line: YAML/JSON syntax errors come with one from the parser, and a schema error
(a field path such as ``questions[1] (spam).options``) is looked up in the text (:func:`line_of`).
Owners and organisation managers only; a manager becomes the new project's manager (as through the API).
"""

from __future__ import annotations

import json
import re

import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.errors import LabelwrightError, ValidationError
from labelwright.schema import ProjectSchema, parse_schema
from labelwright.services import access, policy
from labelwright.web import check_csrf, current_session, render
from labelwright.web.views import layout, question_views

MAX_SCHEMA_CHARS = 200_000  # a schema is a page of YAML; anything near this is a mistake
RESERVED_SLUGS = {"new"}  # /projects/new is this page

EXAMPLE = """\
name: Comment spam
slug: comment-spam
overlap: 2
instructions: |
  Decide whether each comment is **spam**: advertising, links to
  unrelated sites, or text copied from elsewhere.
fields:
  - {name: text, type: text, label: Comment}
questions:
  - name: spam
    type: single_choice
    prompt: Is this comment spam?
    options:
      - {value: spam, hint: advertising or a scam}
      - {value: ham, hint: a real comment}
  - name: tone
    type: rating
    prompt: How friendly is it?
    min: 1
    max: 5
    min_label: hostile
    max_label: friendly
"""

PLACEHOLDER_IMAGE = "/static/preview-image.svg"


def _placeholder(f) -> object:
    title = f.title
    if f.type == "markdown":
        return f"**{title}**: a sample of what an item shows here, with *Markdown*."
    if f.type == "chat":
        return [{"role": "user", "content": f"A sample question ({title})."},
                {"role": "assistant", "content": "A sample answer."}]
    if f.type == "image":
        return PLACEHOLDER_IMAGE
    return f"A sample {title.lower()}: what an item shows in this field."


_PATH_PART = re.compile(r"\.?([^.\[\]\s]+)|\[(\d+)\](?: \([^)]*\))?")


def line_of(source: str, field_path: str | None) -> int | None:
    """The line (1-based) of ``field_path`` (as :func:`labelwright.schema.parse_schema` names fields, e.g.
    ``questions[1] (spam).options``) in the YAML/JSON ``source``: the deepest part of the path found."""
    if not field_path:
        return None
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    pos = 0
    while node is not None and pos < len(field_path):
        m = _PATH_PART.match(field_path, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        key, index = m.group(1), m.group(2)
        if index is not None and isinstance(node, yaml.SequenceNode):
            i = int(index)
            node = node.value[i] if i < len(node.value) else None
        elif key is not None and isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
            continue
        else:
            break
        if node is not None:
            line = node.start_mark.line + 1
    return line


def check_schema(source: str) -> tuple[ProjectSchema | None, dict | None]:
    """``(schema, None)``, or ``(None, error)`` with the error's message, field and line."""
    if len(source) > MAX_SCHEMA_CHARS:
        return None, {"message": f"a schema has at most {MAX_SCHEMA_CHARS:,} characters", "field": None,
                      "line": None}
    if not source.strip():
        return None, {"message": "write the schema (YAML or JSON): name, fields and questions", "field": None,
                      "line": 1}
    try:
        schema = parse_schema(source)
    except ValidationError as e:
        return None, {"message": e.message, "field": e.field, "line": e.line or line_of(source, e.field)}
    if schema.slugified() in RESERVED_SLUGS:
        return None, {"message": f"the slug {schema.slugified()!r} is reserved for this page: set another `slug:`",
                      "field": "slug", "line": line_of(source, "slug") or line_of(source, "name")}
    return schema, None


def sample_item(schema: ProjectSchema, sample: str) -> tuple[dict, str | None]:
    """The item the preview shows: the pasted one (a JSON object) when it fits the schema, else placeholders
    (and the reason the pasted one was not used)."""
    placeholders = {f.name: _placeholder(f) for f in schema.fields}
    if not sample.strip():
        return placeholders, None
    try:
        data = json.loads(sample)
        schema.validate_item(data)
    except json.JSONDecodeError as e:
        return placeholders, f"the sample item is not JSON (line {e.lineno}): {e.msg}"
    except ValidationError as e:
        return placeholders, f"the sample item does not fit the schema: {e}"
    if not isinstance(data, dict):
        return placeholders, "the sample item must be a JSON object"
    return data, None


def preview(request: Request, source: str, sample: str) -> dict:
    """What ``_preview.html`` needs: the error, or the page's blocks and questions for a sample item."""
    schema, error = check_schema(source)
    if schema is None:
        return {"error": error}
    data, sample_error = sample_item(schema, sample)
    media = request.app.state.settings.media_root is not None
    blocks = layout(schema, data, media)
    for b in blocks:  # the placeholder picture is this server's own file, whatever serves the media
        for f in b["fields"]:
            if f["type"] == "image" and f["value"] == PLACEHOLDER_IMAGE:
                f["src"] = PLACEHOLDER_IMAGE
    return {"error": None, "schema": schema, "slug": schema.slugified(), "blocks": blocks,
            "questions": question_views(schema, data, {}, {}), "sample_error": sample_error}


def _creator(request: Request, form=None):
    session = current_session(request)
    if form is not None:
        check_csrf(session, None if form.get("csrf") is None else str(form.get("csrf")))
    policy.create_project(session.user)
    return session


def _text(form, name: str) -> str:
    return str(form.get(name) or "").replace("\r\n", "\n")


def new_page(request: Request):
    _creator(request)
    return render(request, "project_new.html", source=EXAMPLE, sample="", p=preview(request, EXAMPLE, ""),
                  create_error=None)


def create(request: Request, form):
    session = _creator(request, form)
    source, sample = _text(form, "schema"), _text(form, "sample")
    p = preview(request, source, sample)
    create_error = None
    if form.get("action") != "preview" and p["error"] is None:
        try:
            project = access.create_project_for(request.app.state.store, p["schema"], session.user)
        except LabelwrightError as e:  # the slug is taken
            create_error = {"message": e.message, "field": e.field, "line": line_of(source, e.field)}
        else:
            return RedirectResponse(f"/projects/{project.slug}", status_code=303)
    status = 422 if (p["error"] or create_error) and form.get("action") != "preview" else 200
    return render(request, "project_new.html", status=status, source=source, sample=sample, p=p,
                  create_error=create_error)


def preview_fragment(request: Request, form):
    """The preview alone, as HTML for ``preview.js`` (200 even for a schema with errors: they are the content)."""
    _creator(request, form)
    p = preview(request, _text(form, "schema"), _text(form, "sample"))
    html = request.app.state.jinja.get_template("_preview.html").render(p=p)
    return HTMLResponse(html, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                                       "Content-Security-Policy": "default-src 'none'"})


def add_routes(r):
    r.add_api_route("/projects/new", new_page, methods=["GET"])

    @r.post("/projects/new")
    async def create_project(request: Request):
        form = await request.form()
        return await run_in_threadpool(create, request, form)

    @r.post("/projects/new/preview")
    async def preview_project(request: Request):
        form = await request.form()
        return await run_in_threadpool(preview_fragment, request, form)
    return r
