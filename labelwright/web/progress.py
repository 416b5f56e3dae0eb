"""A project's progress page (``/projects/{slug}``) and quality page (``/projects/{slug}/quality``), for its
managers (the quality page also for its reviewers): counts, pace and the charts that explain them."""

from __future__ import annotations

from datetime import date

from fastapi import Request

from labelwright.errors import Forbidden
from labelwright.services import export_formats, policy
from labelwright.services import projects as projects_svc
from labelwright.services.quality import project_quality
from labelwright.services.throughput import throughput
from labelwright.timefmt import utc_time
from labelwright.web import charts, project_for_page, render, words
from labelwright.web.words import duration


def _managed_project(slug: str, request: Request, what: str, action=policy.manage_project):
    """The project for a manager's page (owners and the project's managers; ``action`` may lower it)."""
    try:
        _, store, project = project_for_page(slug, request, action)
    except Forbidden:
        raise Forbidden(f"only the project's managers can see its {what}") from None
    return store, project


def project_page(slug: str, request: Request):
    store, project = _managed_project(slug, request, "progress")
    stats = projects_svc.progress(store, project)
    pace = throughput(store, project)
    annotators = [{**a, "active": duration(a["active_seconds"]),
                   "per_item": duration(a["active_seconds"] / a["annotations"]) if a["annotations"] else "–",
                   "last": utc_time(a["last_at"])} for a in stats["annotators"]]
    return render(request, "project.html", project=project, stats=stats, annotators=annotators,
                  export_formats=export_formats.formats_for(project),
                  chart=charts.throughput_chart(stats["last_hour"]["per_minute"]),
                  chart_max=max(stats["last_hour"]["per_minute"], default=0), pace=pace, words=words,
                  pace_charts=charts.finish_charts(pace["per_day"], done=pace["done"], total=pace["total"],
                                                   finish=pace["finish"]))


def quality_page(slug: str, request: Request):
    store, project = _managed_project(slug, request, "quality", policy.view_quality)
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
        days = [(date.fromisoformat(d["day"]), d["agreement"]) for d in e["agreement_by_day"]]
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
        if a["median_seconds"] is None:
            continue  # paused before answering: nothing to place
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


def add_routes(r):
    r.add_api_route("/projects/{slug}/quality", quality_page, methods=["GET"])
    r.add_api_route("/projects/{slug}", project_page, methods=["GET"])
    return r
