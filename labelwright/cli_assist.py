"""``labelwright assist``: run the project assistant in the foreground, show what it has done, resume
auto-labelling after a failed audit.

A click group of its own, registered on the main command in :mod:`labelwright.cli`. It runs on the services
(:mod:`labelwright.services.assistant`, :mod:`labelwright.services.assist_report`) with the database of
``--db``. The server's assist worker does the same steps in the background; see docs/assist.md.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from labelwright.cli_db import console, out
from labelwright.services import assistant, autolabel
from labelwright.services.assist_report import report
from labelwright.services.projects import get_project


@click.group()
def assist():
    """The project assistant: features, model, suggestions, queue order, auto-labelling, label errors."""


def _assisted(obj, project):
    store = obj.store()
    p = get_project(store, project)
    if p.schema.assist is None:
        raise click.ClickException(f"project {p.slug} has no assist block in its schema (see docs/assist.md)")
    return store, p


@assist.command("run")
@click.argument("project")
@click.option("--steps", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="How many steps to run, one after another (each does what is due).")
@click.option("--retrain", is_flag=True, help="Train the builtin model now, even if it is not due.")
@click.option("--json", "as_json", is_flag=True, help="Print each step's report as JSON.")
@click.pass_obj
def run(obj, project, steps, retrain, as_json):
    """Run the assistant's steps for PROJECT now: features, training, predictions, order, auto-labelling."""
    store, p = _assisted(obj, project)
    for n in range(steps):
        with console.status(f"assist step {n + 1} of {steps} for {p.slug}..."):
            report = assistant.step_now(store, p, force_train=retrain and n == 0,
                                    media_root=obj.settings.media_root,
                                    python_models=obj.settings.python_models).to_dict()
        if as_json:
            out.print_json(json.dumps(report, default=str))
            continue
        parts = [f"{report['featurised']} featurised"]
        if report["trained"]:
            parts.append(f"trained {report['trained']}")
        parts += [f"{report['predicted']} predicted", f"{report['ranked']} ranked",
                  f"{report['auto_labelled']} machine-labelled", f"{report['label_errors']} label errors to check"]
        out.print(f"step {n + 1}: " + ", ".join(parts), highlight=False)
        if report["audit"]:
            out.print(f"  audit: {report['audit']['reason']}", highlight=False)
        if report["error"]:
            console.print(f"[red]model error:[/red] {report['error']}", highlight=False)


@assist.command("status")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.pass_obj
def status(obj, project, as_json):
    """What the assistant has done in PROJECT: models, thresholds, machine labels, audit, suggestions, cost."""
    store, p = _assisted(obj, project)
    rep = report(store, p)
    if as_json:
        out.print_json(json.dumps(rep, default=str))
        return
    st = rep["state"]
    out.print(f"{p.slug}: question {rep['question']!r}, model {rep['settings']['model']}; "
              f"features {st['features_done']}/{st['features_total']}; auto-labelling {st['auto_label']}"
              + (f" ({st['reason']})" if st["reason"] else ""), highlight=False)
    table = Table("model", "trained on", "validated on", "accuracy", "thresholds")
    for m in rep["models"]:
        th = m["thresholds"]["thresholds"] if m["thresholds"] else None
        table.add_row(m["version"], str(m["n_train"]), str(m["n_validation"]),
                      "" if m["accuracy"] is None else f"{m['accuracy']:.1%}",
                      "" if th is None else ", ".join(f"{lab}: {'-' if t is None else f'{t:.3f}'}"
                                                      for lab, t in zip(rep["labels"], th)))
    out.print(table)
    est = rep["estimated_accuracy"]
    out.print(f"machine-labelled: {rep['machine_labelled']} of {rep['items']} items ({rep['machine_share']:.1%}); "
              f"estimated accuracy >= {'-' if est is None else f'{est:.1%}'}; audited: {rep['audited']}"
              + (f"; {rep['audit']['reason']}" if rep["audit"] else ""), highlight=False)
    for arm, a in rep["suggestions"]["arms"].items():
        out.print(f"suggestions {arm}: {a['submissions']} submissions"
                  + (f", {a['acceptance']:.0%} accepted" if a["acceptance"] is not None else "")
                  + (f", gold accuracy {a['gold_accuracy']:.1%} on {a['gold_answers']}" if a["gold_accuracy"]
                     is not None else ""), highlight=False)
    for c in rep["llm"]:
        out.print(f"{c['annotator']}: {c['calls']} calls, {c['errors']} errors, cost {c['cost']}", highlight=False)


@assist.command("resume")
@click.argument("project")
@click.pass_obj
def resume(obj, project):
    """Turn auto-labelling on again in PROJECT after a failed audit stopped it (audits count from now)."""
    store, p = _assisted(obj, project)
    autolabel.resume(store, p)
    out.print(f"auto-labelling is on again in {p.slug}", highlight=False)
