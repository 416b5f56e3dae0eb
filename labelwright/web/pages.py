"""Project pages: the labelling page (claim, submit, skip, amend), the owner's progress page, media files.

Handlers parse the form, check the session and its CSRF token, call the queue service and render.
Answers travel as ordinary form fields (one per question, see :func:`parse_answers`), so the page works
without JavaScript; ``static/label.js`` adds the keyboard and the active-time count on top.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api import AnnotationId, ItemId
from labelwright.errors import Conflict, Forbidden, NotFound, ValidationError
from labelwright.schema import ProjectSchema
from labelwright.services import access
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.services.throughput import throughput
from labelwright.web import check_csrf, current_session, project_for_page, render
from labelwright.web import charts, words
from labelwright.web.charts import throughput_chart

PAIRWISE_LABELS = (("A", "A is better"), ("B", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad"))
CHAT_ROLES = ("user", "assistant", "system", "tool")


# ---- answers <-> form fields ----------------------------------------------------------------------


@dataclass
class FormAnswers:
    """A submitted form read back: the answers for the service, what to show again, and form errors."""

    answers: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)


def _text(value) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n")


def parse_answers(schema: ProjectSchema, form) -> FormAnswers:
    """Read the answers out of a labelling form.

    Field names: ``<question>`` for every question's main value (repeated for multiple choice),
    ``<question>.rationale`` for a pairwise rationale, ``<question>.rank.<candidate>`` (1 = best) for
    a ranking. Unanswered questions are left out so the schema reports them as missing.
    """
    out = FormAnswers()
    for q in schema.questions:
        name = q.name
        if q.type == "multiple_choice":
            values = [_text(v) for v in form.getlist(name)]
            out.answers[name] = out.state[name] = values
        elif q.type in ("single_choice", "rating", "text"):
            value = form.get(name)
            if value is None:
                continue
            out.state[name] = _text(value)
            if out.state[name] != "":
                out.answers[name] = out.state[name]
        elif q.type == "pairwise":
            choice = _text(form.get(name))
            rationale = _text(form.get(f"{name}.rationale")) if q.rationale != "none" else ""
            out.state[name] = {"choice": choice, "rationale": rationale}
            if choice or rationale.strip():
                out.answers[name] = {"choice": choice or None}
                if rationale.strip():
                    out.answers[name]["rationale"] = rationale
        elif q.type == "ranking":
            ranks = {c: _text(form.get(f"{name}.rank.{c}")).strip() for c in q.candidates}
            out.state[name] = ranks
            given = {c: int(r) for c, r in ranks.items() if r.isascii() and r.isdigit() and len(r) < 10}
            if not given:
                continue
            if len(set(given.values())) != len(given):
                out.errors[name] = "each place can be given to one candidate only"
            order = sorted(given, key=given.__getitem__)
            out.answers[name] = order  # the schema refuses a partial ranking, naming the question
    return out


def state_from_answers(schema: ProjectSchema, answers: dict) -> dict:
    """The form state that shows saved ``answers`` again (for amending)."""
    state: dict = {}
    for q in schema.questions:
        value = answers.get(q.name)
        if value is None:
            continue
        if q.type == "pairwise":
            state[q.name] = {"choice": value.get("choice", ""), "rationale": value.get("rationale", "")}
        elif q.type == "ranking":
            state[q.name] = {c: str(i + 1) for i, c in enumerate(value)}
        elif q.type == "multiple_choice":
            state[q.name] = list(value)
        else:
            state[q.name] = str(value)
    return state


def _active_ms(form) -> int:
    try:
        return max(0, min(int(str(form.get("active_ms") or 0)), queue_svc.MAX_ACTIVE_MS))
    except ValueError:
        return 0


# ---- what the page shows ------------------------------------------------------------------------


def _key(index: int) -> str | None:
    """The number key that picks the option at ``index`` (only the first nine have one)."""
    return str(index + 1) if index < 9 else None


def image_src(value, media_enabled: bool) -> str | None:
    """Where the browser loads an image field from; None means show the value as text."""
    if not isinstance(value, str) or not value:
        return None
    lower = value.lower()
    if lower.startswith(("http://", "https://")):
        return value
    if ":" in value.split("/", 1)[0] or value.startswith(("/", "\\")) or not media_enabled:
        return None  # another scheme, an absolute path, or nowhere to serve files from
    return "/media/" + quote(value)


def _field_view(f, data: dict, media_enabled: bool, badge: str | None = None) -> dict:
    value = data.get(f.name)
    view = {"name": f.name, "type": f.type, "title": f.title, "value": value, "badge": badge}
    if f.type == "image":
        view["src"] = image_src(value, media_enabled)
    elif f.type == "chat":
        turns = value if isinstance(value, list) else []
        view["turns"] = [{"role": str(t.get("role", "")), "content": str(t.get("content", "")),
                          "css": t.get("role") if t.get("role") in CHAT_ROLES else "other"}
                         for t in turns if isinstance(t, dict)]
    return view


def layout(schema: ProjectSchema, data: dict, media_enabled: bool) -> list[dict]:
    """Display fields in schema order, with pairwise candidates side by side and ranked ones numbered."""
    groups: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for q in schema.questions:
        if q.type == "pairwise":
            members = [(q.a, "A"), (q.b, "B")]
            kind = "pair"
        elif q.type == "ranking":
            members = [(c, str(i + 1)) for i, c in enumerate(q.candidates)]
            kind = "candidates"
        else:
            continue
        for name, _ in members:
            groups.setdefault(name, (kind, members))
    blocks, placed = [], set()
    for f in schema.fields:
        if f.name in placed:
            continue
        if f.name in groups:
            kind, members = groups[f.name]
            placed.update(n for n, _ in members)
            blocks.append({"kind": kind, "fields": [_field_view(schema.field(n), data, media_enabled, badge)
                                                    for n, badge in members]})
        elif data.get(f.name) not in (None, "", []):
            placed.add(f.name)
            blocks.append({"kind": "single", "fields": [_field_view(f, data, media_enabled)]})
    return blocks


def question_views(schema: ProjectSchema, data: dict, state: dict, errors: dict) -> list[dict]:
    views = []
    for q in schema.questions:
        view = {"q": q, "name": q.name, "type": q.type, "title": q.title, "hint": q.hint,
                "required": q.required, "error": errors.get(q.name), "state": state.get(q.name)}
        if q.type in ("single_choice", "multiple_choice"):
            view["choices"] = [{"value": o.value, "label": o.text, "hint": o.hint, "key": _key(i)}
                               for i, o in enumerate(q.options)]
            if q.type == "multiple_choice" and view["state"] is None:
                view["state"] = []
        elif q.type == "rating":
            points = range(q.min, q.max + 1)
            # Scales from 0 or 1: the key is the value itself (0..9); other scales number their points.
            direct = 0 <= q.min <= 1
            view["choices"] = [{"value": str(p), "label": str(p),
                                "key": (str(p) if p <= 9 else None) if direct else _key(i)}
                               for i, p in enumerate(points)]
        elif q.type == "pairwise":
            view["choices"] = [{"value": v, "label": label, "key": _key(i)}
                               for i, (v, label) in enumerate(PAIRWISE_LABELS)]
            view["state"] = view["state"] or {"choice": "", "rationale": ""}
        elif q.type == "ranking":
            view["candidates"] = [{"name": c, "title": schema.field(c).title, "key": _key(i)}
                                  for i, c in enumerate(q.candidates)]
            view["places"] = [str(i + 1) for i in range(len(q.candidates))]
            view["state"] = view["state"] or {}
        elif q.type == "text":
            if view["state"] is None:
                prefill = data.get(q.prefill) if q.prefill else None
                view["state"] = prefill if isinstance(prefill, str) else ""
        views.append(view)
    return views


def errors_by_question(schema: ProjectSchema, error: ValidationError) -> tuple[dict, str | None]:
    """Place a service error next to its question (``pref.rationale`` belongs to ``pref``)."""
    head = (error.field or "").split(".", 1)[0].split("[", 1)[0]
    if head in {q.name for q in schema.questions}:
        return {head: error.message}, None
    return {}, error.message


# ---- handlers -----------------------------------------------------------------------------------


def _store(request: Request):
    return request.app.state.store


def _media_enabled(request: Request) -> bool:
    return request.app.state.settings.media_root is not None


def _label_url(project) -> str:
    return f"/projects/{project.slug}/label"


def item_context(request: Request, project, item: dict, *, mode: str, state=None, errors=None,
                 form_error: str | None = None, idempotency_key: str | None = None,
                 annotation: dict | None = None, back_url: str | None = None) -> dict:
    """What ``_label_region.html`` (one item and its form) needs: for the page, and for a prefetched item."""
    schema = project.schema
    data = item["data"]
    questions = question_views(schema, data, state or {}, errors or {})
    labelling = mode == "label" and item.get("stage") != "qualification"
    if labelling:  # a test item never shows the assistant's answer
        from labelwright.web.assist import suggest

        suggest(questions, item.get("suggestion"))
    expires = item.get("lease_expires_at")
    return dict(
        project=project, item=item, mode=mode, blocks=layout(schema, data, _media_enabled(request)),
        questions=questions, form_error=form_error,
        idempotency_key=idempotency_key or str(uuid.uuid4()), annotation=annotation, back_url=back_url,
        lease_left=int(max(0, expires - time.time())) if mode == "label" and expires else None,
        instant=f"/projects/{project.slug}/label/prefetch" if labelling else None,
        action=(f"/projects/{project.slug}/history/{annotation['id']}" if mode == "amend"
                else f"/projects/{project.slug}/qualification/{item['id']}" if item.get("stage") == "qualification"
                else f"/projects/{project.slug}/items/{item['id']}/submit"),
        skip_action=(f"/projects/{project.slug}/items/{item['id']}/skip"
                     if labelling else None),
    )


def _render_item(request: Request, project, item: dict, *, mode: str, status: int = 200, **kwargs):
    context = item_context(request, project, item, mode=mode, **kwargs)
    return render(request, "label.html", status=status, instructions=project.schema.instructions,
                  counts=queue_svc.counts_for_user(_store(request), project, request.state.session.user),
                  **context)


def _history_url(project, entry: dict | None) -> str | None:
    return f"/projects/{project.slug}/history/{entry['id']}" if entry else None


def label_page(slug: str, request: Request, item: str | None = None):
    """Claim the next item (or get the one already held) and show it.

    ``?item=N`` is where the page's own history (label.js swaps items in without a reload) points:
    for an item the user has answered recently it opens that answer to change it; otherwise the current item.
    """
    session = current_session(request)
    store = _store(request)
    project = access.project_for(store, slug, session.user)[0]
    if item is not None and item.isascii() and item.isdigit() and len(item) < 19:
        wanted = int(item)
        answered = next((e for e in queue_svc.history(store, project, session.user) if e["item_id"] == wanted), None)
        if answered is not None:
            return RedirectResponse(_history_url(project, answered), status_code=303)
    recent = queue_svc.history(store, project, session.user, limit=1)
    back_url = _history_url(project, recent[0] if recent else None)
    item = queue_svc.claim_next(store, project, session.user)
    if item is None:
        return render(request, "done.html", project=project, back_url=back_url,
                      counts=queue_svc.counts_for_user(store, project, session.user))
    return _render_item(request, project, item, mode="label", back_url=back_url)


def _conflict(request: Request, project, error: Conflict):
    return render(request, "conflict.html", status=409, project=project, error=error,
                  continue_url=_label_url(project))


def _item_form(slug: str, item_id: int, request: Request, form):
    """The checks every form about one item makes: signed in, CSRF token, the item is in the project."""
    session = current_session(request)
    check_csrf(session, _text(form.get("csrf")))
    store = _store(request)
    project = access.project_for(store, slug, session.user)[0]
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
    from labelwright.web import instant

    session, store, project = _item_form(slug, item_id, request, form)
    parsed = parse_answers(project.schema, form)
    key = _text(form.get("idempotency_key")).strip() or None
    fetched = instant.wants_json(request)
    error: ValidationError | None = None
    if not parsed.errors:
        try:
            queue_svc.submit(store, item_id, session.user, parsed.answers, active_ms=_active_ms(form),
                             idempotency_key=key)
        except ValidationError as e:
            error = e
        except Conflict as e:
            return instant.not_saved(e) if fetched else _conflict(request, project, e)
        else:
            if fetched:
                return instant.saved(request, store, project, session.user, form)
            return RedirectResponse(_label_url(project), status_code=303)
    # Show the same item again with the answers given so far and the error next to its question.
    item = queue_svc.claim_next(store, project, session.user)
    if item is None or item["id"] != item_id:
        lapsed = Conflict("your lease on this item expired while you were answering; nothing was saved")
        return instant.not_saved(lapsed) if fetched else _conflict(request, project, lapsed)
    errors, form_error = errors_by_question(project.schema, error) if error else (parsed.errors, None)
    recent = queue_svc.history(store, project, session.user, limit=1)
    shown = {"mode": "label", "state": parsed.state, "errors": errors, "form_error": form_error,
             "idempotency_key": key, "back_url": _history_url(project, recent[0] if recent else None)}
    if fetched:
        return instant.invalid(request, project, item, shown)
    return _render_item(request, project, item, status=422, **shown)


def skip_item(slug: str, item_id: int, request: Request, form):
    from labelwright.web import instant

    session, store, project = _item_form(slug, item_id, request, form)
    queue_svc.skip(store, item_id, session.user)
    if instant.wants_json(request):
        return instant.saved(request, store, project, session.user, form)
    return RedirectResponse(_label_url(project), status_code=303)


def _amendable(request: Request, project, annotation_id: int) -> tuple[dict, dict | None]:
    """The annotation (with its item) from the user's history, and the one before it."""
    recent = queue_svc.history(_store(request), project, request.state.session.user)
    for i, entry in enumerate(recent):
        if entry["id"] == annotation_id:
            return entry, recent[i + 1] if i + 1 < len(recent) else None
    raise Forbidden(f"only your last {project.schema.history_size} answers in this project can be amended")


def _render_amend(request: Request, project, entry: dict, older: dict | None, **kwargs):
    item = {"id": entry["item_id"], "external_id": entry["external_id"], "data": entry["data"]}
    kwargs.setdefault("state", state_from_answers(project.schema, entry["answers"]))
    return _render_item(request, project, item, mode="amend", annotation=entry,
                        back_url=_history_url(project, older), **kwargs)


def amend_page(slug: str, annotation_id: AnnotationId, request: Request):
    session = current_session(request)
    project = access.project_for(_store(request), slug, session.user)[0]
    entry, older = _amendable(request, project, annotation_id)
    if not entry["amendable"]:  # reviewed work is frozen: say so instead of a form that would be refused
        return render(request, "conflict.html", status=409, project=project, heading="This answer can no longer be changed",
                      error=Conflict(f"a reviewer has decided on it ({entry['review_status']}); see the feedback "
                                     "on your home page, where you can question the decision"),
                      continue_url=_label_url(project))
    return _render_amend(request, project, entry, older)


def amend_answers(slug: str, annotation_id: int, request: Request, form):
    session = current_session(request)
    check_csrf(session, _text(form.get("csrf")))
    store = _store(request)
    project = access.project_for(store, slug, session.user)[0]
    entry, older = _amendable(request, project, annotation_id)
    parsed = parse_answers(project.schema, form)
    errors, form_error = parsed.errors, None
    if not errors:
        try:
            queue_svc.amend(store, annotation_id, session.user, parsed.answers, active_ms=_active_ms(form))
        except ValidationError as e:
            errors, form_error = errors_by_question(project.schema, e)
        else:
            return RedirectResponse(_label_url(project), status_code=303)
    return _render_amend(request, project, entry, older, status=422, state=parsed.state, errors=errors,
                         form_error=form_error)


def _owner_project(slug: str, request: Request, what: str, at_least: str = "manager"):
    """The project for a manager's page (owners and the project's managers; ``at_least`` may lower it)."""
    try:
        _, store, project = project_for_page(slug, request, at_least)
    except Forbidden:
        raise Forbidden(f"only the project's managers can see its {what}") from None
    return store, project


def project_page(slug: str, request: Request):
    store, project = _owner_project(slug, request, "progress")
    stats = projects_svc.progress(store, project)
    pace = throughput(store, project)
    annotators = [{**a, "active": duration(a["active_seconds"]),
                   "per_item": duration(a["active_seconds"] / a["annotations"]) if a["annotations"] else "–",
                   "last": _when(a["last_at"])} for a in stats["annotators"]]
    return render(request, "project.html", project=project, stats=stats, annotators=annotators,
                  chart=throughput_chart(stats["last_hour"]["per_minute"]),
                  chart_max=max(stats["last_hour"]["per_minute"], default=0), pace=pace, words=words,
                  pace_charts=charts.finish_charts(pace["per_day"], done=pace["done"], total=pace["total"],
                                                   finish=pace["finish"]))


def quality_page(slug: str, request: Request):
    from labelwright.services.quality import project_quality

    store, project = _owner_project(slug, request, "quality", "reviewer")
    q = project_quality(store, project, doubt_limit=20)
    return render(request, "quality.html", project=project, q=q, charts=quality_charts(q), words=words,
                  fmt=lambda v: "–" if v is None else f"{v:.3f}",
                  pct=lambda v: "–" if v is None else f"{v:.0%}")


def quality_charts(q: dict) -> dict:
    """The quality page's pictures: per question a confusion heatmap and its agreement per day; speed
    against accuracy per annotator (gold accuracy where they answered gold items, else estimated skill)."""
    per_question = {}
    for e in q["questions"]:
        if not e.get("summarised"):
            continue
        c = e["confusion"]
        days = [(datetime.strptime(d["day"], "%Y-%m-%d").date(), d["agreement"]) for d in e["agreement_by_day"]]
        per_question[e["name"]] = {
            "heatmap": charts.heatmap(c["labels"], c["labels"], c["counts"], title=f"Confusion: {e['name']}",
                                      desc="Rows: the consensus label; columns: the answer given. Each cell "
                                           "counts answers and gives their share of the row.",
                                      row_title="consensus", col_title="answer"),
            "over_time": charts.line_chart({e["name"]: days}, title=f"Agreement with the consensus per day: "
                                           f"{e['name']}", y_min=0, y_max=1, value_format=lambda v: f"{v:.0%}",
                                           desc="The share of each day's answers that agree with the consensus.",
                                           height=170),
        }
    points = []
    for a in q["annotators"]:
        y = a["gold_accuracy"] if a["gold_checked"] else a["skill"]
        points.append({"label": a["annotator"], "x": a["median_seconds"], "y": y,
                       "flag": "likely spammer" if a["likely_spammer"] else None})
    uses_gold = any(a["gold_checked"] for a in q["annotators"])
    scatter = charts.scatter(points, title="Time per item against accuracy, per annotator",
                             desc="Each point is an annotator: median seconds per item across, "
                                  + ("gold accuracy" if uses_gold else "estimated skill")
                                  + " up. Likely spammers are crosses, named with their flag.",
                             x_label="median seconds per item (log scale)",
                             y_label="gold accuracy (else skill)" if uses_gold else "estimated skill",
                             x_log=True, y_min=0, y_max=1, x_format=lambda v: f"{v:g} s",
                             y_format=lambda v: f"{v:.0%}")
    return {"questions": per_question, "speed_accuracy": scatter}


def duration(seconds: float) -> str:
    """A short human duration: ``42.5 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _when(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def index_rows(store, user, projects) -> list[dict]:
    """What the project list shows: progress for an owner, the user's own counts for everyone."""
    rows = []
    for p in projects:
        role = access.role_in(store, user, p)
        row = {"project": p, "mine": queue_svc.counts_for_user(store, p, user), "progress": None, "role": role}
        if role in ("owner", "manager"):
            row["progress"] = projects_svc.progress(store, p)
        rows.append(row)
    return rows


def media_file(path: str, request: Request):
    """An image from ``settings.media_root``; never a file outside it, and only images."""
    current_session(request)
    root = request.app.state.settings.media_root
    if root is None:
        raise NotFound("this server serves no media files (start it with --media-root)")
    base = Path(root).resolve()
    target = (base / path).resolve()
    kind = mimetypes.guess_type(target.name)[0] or ""
    if not target.is_relative_to(base) or not target.is_file() or not kind.startswith("image/"):
        raise NotFound(f"no image {path!r}")
    return FileResponse(target, media_type=kind, headers={
        # An SVG opened on its own must not run script in this origin.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "X-Content-Type-Options": "nosniff",
    })


def add_routes(r):
    r.add_api_route("/projects/{slug}/label", label_page, methods=["GET"])

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

    r.add_api_route("/projects/{slug}/quality", quality_page, methods=["GET"])
    r.add_api_route("/projects/{slug}", project_page, methods=["GET"])
    r.add_api_route("/media/{path:path}", media_file, methods=["GET"])
    return r
