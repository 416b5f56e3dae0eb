"""The assistant in the browser: the managers' assist page and the
reviewers' check queue (see docs/assist.md, "In the browser").

Same shape as the other page modules: handlers check the session, the CSRF token of a form and the caller's
role in the project, call the services (:mod:`labelwright.services.assist_report`, ``assistant``,
``autolabel``, ``checks``) and render, redirecting after a change (post/redirect/get). The labelling page
itself is :mod:`labelwright.web.label_pages`; it shows the assistant's answer pre-selected with
:func:`labelwright.web.views.suggest`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import CheckId
from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.questions.choice import option_key
from labelwright.services import assist_report, assist_state, assistant, autolabel, policy
from labelwright.services import checks as checks_svc
from labelwright.timefmt import utc_time
from labelwright.web import project_for_page, render
from labelwright.web.forms import form_text
from labelwright.web.views import item_media_url, layout, media_enabled
from labelwright.web.words import duration

CHART_DAYS = 60  # the chart shows at most this many days, the latest


# ---- the assist page (managers) -------------------------------------------------------------------------


def _pct(v) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.0%}"  # NaN: an audit with nothing audited yet


def _model_spec(spec: str) -> str:
    """The model setting as shown: an http(s) URL without credentials or query string."""
    if not spec.startswith(("http://", "https://")):
        return spec
    parts = urlsplit(spec)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def label_texts(question) -> dict[str, str]:
    """``{label as text: what people see}``: an option's text, a pairwise choice's words, a rating's point
    (each type's ``label_text``)."""
    return {str(v): question.label_text(v) for v in question.label_values()}


def _thresholds(model: dict, labels: list, texts: dict) -> list[dict]:
    th = model.get("thresholds")
    if not th:
        return []
    out = []
    for c, label in enumerate(labels):
        at = th["thresholds"][c] if c < len(th["thresholds"]) else None
        out.append({"label": texts.get(str(label), str(label)), "threshold": at,
                    "lower_bound": th["lower_bound"][c] if c < len(th["lower_bound"]) else None,
                    "support": th["support"][c] if c < len(th["support"]) else 0,
                    "correct": th["correct"][c] if c < len(th["correct"]) else 0})
    return out


def labels_chart(over_time: list[dict], width: int = 960, height: int = 160, days: int = CHART_DAYS) -> dict:
    """Stacked bars for an inline SVG, one per day (days without labels included), oldest on the left: the
    items people labelled, the answers of LLM annotators and the items the assistant labelled."""
    if not over_time:
        return {"width": width, "height": height, "bars": [], "max": 0, "first": None, "last": None}
    by_day = {d["day"]: d for d in over_time}
    last = date.fromisoformat(over_time[-1]["day"])
    first = max(date.fromisoformat(over_time[0]["day"]), last - timedelta(days=days - 1))
    span = [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    rows = [by_day.get(d, {"day": d, "people": 0, "llm": 0, "machine": 0}) for d in span]
    top = max(r["people"] + r["llm"] + r["machine"] for r in rows)
    step = width / len(rows)
    bar = min(step - 2, 48)
    bars = []
    for i, r in enumerate(rows):
        x = round(i * step + (step - bar) / 2, 1)
        y = float(height)
        parts = []
        for kind in ("people", "llm", "machine"):
            h = 0.0 if top == 0 else round(r[kind] / top * (height - 6), 1)
            if r[kind]:
                y = round(y - h, 1)
                parts.append({"kind": kind, "y": y, "h": h, "count": r[kind]})
        bars.append({"x": x, "w": round(bar, 1), "day": r["day"], "parts": parts,
                     "people": r["people"], "llm": r["llm"], "machine": r["machine"]})
    return {"width": width, "height": height, "bars": bars, "max": top, "first": span[0], "last": span[-1]}


def _render_assist(request: Request, project, *, status: int = 200, step: dict | None = None, user=None):
    store = request.app.state.store
    if project.schema.assist is None:
        return render(request, "assist.html", status=status, project=project, rep=None)
    rep = assist_report.report(store, project)
    question = project.schema.assist_question()
    texts = label_texts(question)
    models = [{**m, "when": utc_time(m["created_at"]), "accuracy": _pct(m["accuracy"]),
               "per_class": _thresholds(m, rep["labels"], texts)} for m in reversed(rep["models"])]
    arms = rep["suggestions"]["arms"]
    arms_view = [{"arm": name, **arms[name],
                  "acceptance": _pct(arms[name]["acceptance"]),
                  "median": "–" if arms[name]["median_active_seconds"] is None
                  else duration(arms[name]["median_active_seconds"]),
                  "gold_accuracy": _pct(arms[name]["gold_accuracy"])}
                 for name in ("shown", "hidden", "none") if name in arms]
    diff = rep["suggestions"]["gold_accuracy_difference"]
    audit = rep["audit"]
    worker = getattr(request.app.state, "assist_worker", None)  # this process's (None: turned off)
    # the last background step of this project, whichever server process ran it (kept in assist_state)
    worker_last = assist_state.worker_outcome(assist_state.get_state(store, project))
    if worker_last is not None and user is not None:
        worker_last = _shown_report(worker_last, user)
    return render(request, "assist.html", status=status, project=project, rep=rep, question=question,
                  settings=project.schema.assist, model_spec=_model_spec(project.schema.assist.model),
                  models=models, arms=arms_view, step=step, chart=labels_chart(rep["over_time"]),
                  worker_on=worker is not None, worker_last=worker_last,
                  worker_when=None if worker_last is None else utc_time(worker_last["at"]),
                  diff=None if diff is None else f"{diff * 100:+.1f} points",
                  machine_by_label=[(texts.get(str(k), str(k)), n) for k, n in rep["machine_by_label"].items()],
                  audit_accuracy=None if audit is None else _pct(audit["accuracy"]),
                  open_checks=sum(rep["checks"]["open"].values()), done_checks=sum(rep["checks"]["done"].values()),
                  pct=_pct)


def assist_page(slug: str, request: Request):
    session, _, project = project_for_page(slug, request, policy.manage_project)
    return _render_assist(request, project, user=session.user)


def run_step(slug: str, request: Request, form):
    """Run one assistant step now and show the page with what it did (a step may take a while: the page is
    rendered, not redirected to, so that what it did can be shown)."""
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    if project.schema.assist is None:
        return RedirectResponse(f"/projects/{project.slug}/assist", status_code=303)
    settings = request.app.state.settings
    try:
        report = assistant.step_now(store, project, media_root=settings.media_root,
                                    python_models=settings.python_models).to_dict()
    except Conflict as e:  # a step of this project is running already (the worker's, or someone's)
        return _render_assist(request, project, status=409, step={"busy": e.message}, user=session.user)
    return _render_assist(request, project, step=_shown_report(report, session.user), user=session.user)


def _shown_report(report: dict | None, user) -> dict | None:
    """A step's report as the caller may see it: the text a model server answered is for owners only (a
    manager may point the model URL anywhere, an internal page included)."""
    if report is None:
        return None
    report = dict(report)
    public = report.pop("public_error", None)
    if not policy.allows(policy.see_model_errors, user) and report.get("error"):
        report["error"] = public or "the model failed (its answer is in the server's log)"
    return report


def resume(slug: str, request: Request, form):
    _, store, project = project_for_page(slug, request, policy.manage_project, form)
    if project.schema.assist is not None and project.schema.assist.auto_label is not None:
        autolabel.resume(store, project)
    return RedirectResponse(f"/projects/{project.slug}/assist", status_code=303)


# ---- the check queue (reviewers) --------------------------------------------------------------------------


def _check_view(project, check: dict, texts: dict) -> dict:
    def shown(value) -> str:
        return texts.get(str(value), str(value))

    view = {**check, "choices": [{"value": str(v), "label": shown(v), "key": option_key(i)}
                                 for i, v in enumerate(check["labels"])]}
    if check["kind"] == "label_error":
        view["current"] = shown(check.get("current_label"))
        suggested = check.get("suggested")
        view["suggested_text"] = None if not suggested else shown(suggested["label"])
        view["suggested_confidence"] = None if not suggested else _pct(suggested["confidence"])
    return view


def _render_checks(request: Request, project, user, *, status: int = 200, error: str | None = None,
                   saved: bool = False):
    if project.schema.assist is None:
        return render(request, "checks.html", status=status, project=project, assisted=False, check=None,
                      error=error, saved=False)
    store = request.app.state.store
    check = checks_svc.next_check(store, project, user)
    if check is None:
        return render(request, "checks.html", status=status, project=project, assisted=True, check=None,
                      error=error, saved=saved)
    question = project.schema.question(check["question"])
    return render(request, "checks.html", status=status, project=project, assisted=True, error=error, saved=saved,
                  check=_check_view(project, check, label_texts(question)), question=question,
                  blocks=layout(project.schema, check["item"]["data"], media_enabled(request),
                                   item_media_url(project, check["item"]["id"])))


def checks_page(slug: str, request: Request, saved: str = ""):
    session, _, project = project_for_page(slug, request, policy.review)
    return _render_checks(request, project, session.user, saved=bool(saved))


def decide_check(slug: str, check_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.review, form)
    if project.schema.assist is None or checks_svc.project_of(store, check_id) != project.id:
        raise NotFound(f"no check {check_id} in project {project.slug!r}")
    label = form_text(form.get("label"))
    if not label:
        return _render_checks(request, project, session.user, status=422,
                              error="choose a label (press its number or click it), then Submit")
    try:
        checks_svc.decide(store, check_id, session.user, label)
    except ValidationError as e:
        return _render_checks(request, project, session.user, status=422, error=e.message)
    except Conflict as e:
        return _render_checks(request, project, session.user, status=409,
                              error=f"Nothing was saved: {e.message}.")
    return RedirectResponse(f"/projects/{project.slug}/checks?saved=true", status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/assist", assist_page, methods=["GET"])

    @r.post("/projects/{slug}/assist/run")
    async def run(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(run_step, slug, request, form)

    @r.post("/projects/{slug}/assist/resume")
    async def resume_auto_labelling(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(resume, slug, request, form)

    r.add_api_route("/projects/{slug}/checks", checks_page, methods=["GET"])

    @r.post("/projects/{slug}/checks/{check_id}")
    async def decide(slug: str, check_id: CheckId, request: Request):
        form = await request.form()
        return await run_in_threadpool(decide_check, slug, check_id, request, form)
    return r
