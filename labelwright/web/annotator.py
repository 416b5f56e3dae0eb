"""The annotator's own pages: a project's briefing before starting, the history of their recent answers,
questioning a review decision, and the reviewers' answers to those questions.

Same shape as :mod:`labelwright.web.label_pages`: handlers check the session, the CSRF token of a form and the
caller's role in the project, call the services (:mod:`labelwright.services.home`,
:mod:`labelwright.services.appeals`) and redirect after a change. Everything works without JavaScript
(the rejected rows on the home page are ``<details>``).

Times on the annotator's screens are hours and minutes (:func:`hours_minutes`, the template filter
``hours_minutes``); the earnings per week are a server-rendered SVG (:func:`earnings_chart`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.api.deps import AnnotationId
from labelwright.errors import Forbidden
from labelwright.services import appeals, home, policy
from labelwright.timefmt import utc_time
from labelwright.web import charts, check_csrf, current_session, project_for_page, render
from labelwright.web.forms import form_text

WEEKS_SHOWN = 12


def hours_minutes(ms: float | None) -> str:
    """Active time as hours and minutes: ``0 h 00 min``, ``3 h 07 min`` (from milliseconds)."""
    minutes = int(((ms or 0) + 30_000) // 60_000)  # to the nearest minute, half up
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _week_start(period: str) -> date:
    year, week = period.split("-W")
    return date.fromisocalendar(int(year), int(week), 1)


def earnings_chart(weeks: list[dict], currency: str, today: date | None = None):
    """Bars of earnings per ISO week (the week the work was done), the last :data:`WEEKS_SHOWN` weeks up to
    this one, weeks without earnings shown as zero."""
    today = today or datetime.now(timezone.utc).date()
    by_week = {w["period"]: float(w["amount"]) for w in weeks}
    if not by_week:
        return None
    first = min(_week_start(p) for p in by_week)
    start = max(first, today - timedelta(weeks=WEEKS_SHOWN - 1))
    start -= timedelta(days=start.weekday())
    bars, day = [], start
    while day <= today:
        y, w, _ = day.isocalendar()
        period = f"{y}-W{w:02d}"
        bars.append((period, max(by_week.get(period, 0.0), 0.0)))
        day += timedelta(weeks=1)
    return charts.bar_chart(bars, title=f"Your earnings per week ({currency})",
                            desc="What your approved work earned, by the week you did it; bonuses included.",
                            unit=currency, value_format=lambda v: f"{v:.2f}")


def open_review_questions(request: Request, project) -> list[dict]:
    """The open questions about decisions that the signed-in reviewer may answer (the template global
    ``open_review_questions``, called by ``_review_questions.html`` on the review page, whose handler
    belongs to :mod:`labelwright.web.work`). Empty for someone below reviewer in the project."""
    session = getattr(request.state, "session", None)
    store = request.app.state.store
    if session is None:
        return []
    try:
        policy.review(store, session.user, project.id)
    except Forbidden:
        return []
    return appeals.open_for_review(store, project, session.user)


def briefing_page(slug: str, request: Request):
    session, store, project = project_for_page(slug, request, policy.annotate)
    return render(request, "briefing.html", project=project, b=home.briefing(store, project, session.user),
                  when=utc_time)


def history_page(slug: str, request: Request):
    session, store, project = project_for_page(slug, request, policy.annotate)
    return render(request, "history.html", project=project, rows=home.history(store, project, session.user),
                  when=utc_time)


def ask_question(annotation_id: int, request: Request, form):
    session = current_session(request)
    check_csrf(session, None if form.get("csrf") is None else str(form.get("csrf")))
    appeals.ask(request.app.state.store, session.user, annotation_id, form_text(form.get("body")))
    return RedirectResponse(f"/#decision-{annotation_id}", status_code=303)


def answer_question(slug: str, question_id: int, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.review, form)
    appeals.reply(store, project, session.user, question_id, form_text(form.get("body")))
    return RedirectResponse(f"/projects/{project.slug}/review#questions", status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/start", briefing_page, methods=["GET"])
    r.add_api_route("/projects/{slug}/history", history_page, methods=["GET"])

    @r.post("/me/questions/{annotation_id}")
    async def ask(annotation_id: AnnotationId, request: Request):
        form = await request.form()
        return await run_in_threadpool(ask_question, annotation_id, request, form)

    @r.post("/projects/{slug}/questions/{question_id}")
    async def answer(slug: str, question_id: AnnotationId, request: Request):
        form = await request.form()
        return await run_in_threadpool(answer_question, slug, question_id, request, form)

    return r
