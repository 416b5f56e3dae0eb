"""Commands on projects: create and list them, their progress and quality, pausing an annotator.

Registered on ``labelwright`` by :mod:`labelwright.cli` (loaded when one of its commands runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from labelwright.cli_db import Ctx, out
from labelwright.schema import parse_schema
from labelwright.services import pauses
from labelwright.services.projects import create_project, get_project, list_projects, progress
from labelwright.services.quality import project_quality
from labelwright.services.users import get_user


@click.group()
def projects():
    """Create and list projects."""


@projects.command("create")
@click.option("--schema", "schema_file", required=True, type=click.Path(dir_okay=False),
              help="YAML or JSON project schema file.")
@click.pass_obj
def projects_create(obj: Ctx, schema_file):
    """Create a project from a schema file."""
    schema = parse_schema(Path(schema_file))
    p = create_project(obj.store(create=True), schema)
    out.print(f"created project [bold]{p.slug}[/] (id {p.id}, overlap {p.overlap})", highlight=False)


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def projects_list(obj: Ctx, as_json):
    """List projects with their progress."""
    store = obj.store()
    rows = [(p, progress(store, p)) for p in list_projects(store)]
    if as_json:
        out.print_json(json.dumps([{**p.to_dict(), "status": s} for p, s in rows]))
        return
    table = Table("slug", "name", "overlap", "items", "done", "in progress", "waiting", "annotations")
    for p, s in rows:
        i = s["items"]
        table.add_row(p.slug, p.name, str(p.overlap), str(i["total"]), str(i["done"]), str(i["in_progress"]),
                      str(i["waiting"]), str(s["annotations"]))
    out.print(table)


@click.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def status(obj: Ctx, project, as_json):
    """Show PROJECT's progress: items done / in progress / waiting, per annotator, last hour."""
    store = obj.store()
    s = progress(store, get_project(store, project))
    if as_json:
        out.print_json(json.dumps(s))
        return
    i = s["items"]
    out.print(f"[bold]{s['project']}[/]  overlap {s['overlap']}  items {i['total']:,}: done {i['done']:,}, "
              f"in progress {i['in_progress']:,}, waiting {i['waiting']:,}", highlight=False)
    out.print(f"annotations {s['annotations']:,} of {s['annotations_needed']:,} needed; "
              f"last hour {s['last_hour']['annotations']:,}", highlight=False)
    table = Table("annotator", "annotations", "active time (s)")
    for a in s["annotators"]:
        table.add_row(a["name"], str(a["annotations"]), f"{a['active_seconds']:.0f}")
    out.print(table)


@click.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--doubt", default=10, show_default=True, type=click.IntRange(0, 500),
              help="How many of the items in most doubt to list.")
@click.pass_obj
def quality(obj: Ctx, project, as_json, doubt):
    """Show PROJECT's quality: agreement per question, annotators (likely spammers first), items in doubt."""
    store = obj.store()
    q = project_quality(store, get_project(store, project), doubt_limit=doubt)
    if as_json:
        out.print_json(json.dumps(q))
        return
    out.print(f"[bold]{q['project']}[/]: {q['annotations']:,} annotations", highlight=False)
    table = Table("question", "method", "agreement", "Fleiss kappa", "Krippendorff alpha", "mean confidence")
    for entry in q["questions"]:
        if not entry["summarised"]:
            table.add_row(entry["name"], "-", entry.get("reason", ""), "", "", "")
            continue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(entry["name"], entry["method"], fmt(entry.get("percent_agreement")),
                      fmt(entry.get("fleiss_kappa")),
                      f"{fmt(entry.get('krippendorff_alpha'))} ({entry.get('alpha_level', '')})",
                      fmt(entry["mean_confidence"]))
    out.print(table)
    table = Table("annotator", "annotations", "gold accuracy", "skill", "agreement with consensus",
                  "median s/item", "flag")
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    for a in q["annotators"]:
        gold = f"{pct(a['gold_accuracy'])} of {a['gold_checked']}" if a["gold_checked"] else "-"
        paused = [f"paused ({a['pause_reason']})" if a["pause_reason"] else "paused"] if a["paused"] else []
        flags = paused + (a["reasons"] if a["likely_spammer"] else [])
        table.add_row(a["annotator"], str(a["annotations"]), gold, pct(a["skill"]),
                      pct(a["agreement_with_consensus"]),
                      "-" if a["median_seconds"] is None else f"{a['median_seconds']:.1f}", "; ".join(flags))
    out.print(table)
    if q["items_in_doubt"]:
        table = Table("item", "question", "consensus", "confidence", "answers")
        for d in q["items_in_doubt"]:
            answers = ", ".join(f"{x['annotator']}: {x['answer']}" for x in d["answers"])
            table.add_row(str(d["external_id"]), d["question"], str(d["label"]), f"{d['confidence']:.2f}", answers)
        out.print(table)


@click.command()
@click.argument("project")
@click.argument("name")
@click.option("--reason", default=None, help="Why (kept for the owners' records).")
@click.pass_obj
def pause(obj: Ctx, project, name, reason):
    """Pause annotator NAME in PROJECT: no new items, no submissions; their leases are released."""
    store = obj.store()
    released = pauses.pause(store, get_project(store, project), get_user(store, name), reason=reason)
    out.print(f"paused {name} in {project} ({released} lease{'s' if released != 1 else ''} released)",
              highlight=False)


@click.command()
@click.argument("project")
@click.argument("name")
@click.pass_obj
def resume(obj: Ctx, project, name):
    """Let annotator NAME work in PROJECT again."""
    store = obj.store()
    was = pauses.resume(store, get_project(store, project), get_user(store, name))
    out.print(f"resumed {name} in {project}" if was else f"{name} was not paused in {project}", highlight=False)
