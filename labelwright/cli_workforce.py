"""A requester's commands: the audit log, pay, messages, more answers, expiring a project.

Registered on ``labelwright`` by :mod:`labelwright.cli` (loaded when one of its commands runs).
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from labelwright.cli_db import Ctx, out
from labelwright.services import audit as audit_log
from labelwright.services import messages, queue_controls
from labelwright.services import pay as ledger
from labelwright.services.projects import expire as expire_project
from labelwright.services.projects import get_project
from labelwright.timefmt import day_start, utc_time


@click.command()
@click.option("--project", default=None, help="Only this project's entries.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def audit(obj: Ctx, project, limit, as_json):
    """Who changed what: roles, members, blocks, pauses, gold, tokens, invites (newest first)."""
    store = obj.store()
    rows = audit_log.entries(store, get_project(store, project).id if project else None, limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("when", "who", "action", "project", "target", "details")
    for e in rows:
        table.add_row(utc_time(e["at"], seconds=True, missing=""), e["actor"], e["action"], e["project"] or "",
                      e["target"] or "", json.dumps(e["details"]) if e["details"] else "")
    out.print(table)


@click.command()
@click.argument("project")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the ledger as CSV to this file.")
@click.option("--start", default=None, help="Ledger from this day (YYYY-MM-DD, UTC).")
@click.option("--end", default=None, help="Ledger up to this day, exclusive (YYYY-MM-DD, UTC).")
@click.option("--annotator", default=None, help="Ledger of this annotator only.")
@click.pass_obj
def pay(obj: Ctx, project, ledger_file, start, end, annotator):
    """Settle PROJECT's ledger and show, per annotator: items, active hours, earnings, effective hourly rate."""
    store = obj.store()
    p = get_project(store, project)
    written = ledger.settle(store, p)
    out.print(f"ledger settled: {sum(written.values())} new entr{'y' if sum(written.values()) == 1 else 'ies'}",
              highlight=False)
    table = Table("annotator", "items", "active hours", "earnings", "effective hourly", "")
    for r in ledger.summary(store, p):
        table.add_row(r["annotator"], str(r["items"]), f"{r['active_hours']:.2f}", f"{r['earnings']} {r['currency']}",
                      r["effective_hourly"] or "-", "[red]below the fair rate[/]" if r["below_fair_rate"] else "")
    out.print(table)
    if ledger_file:
        def day(v):
            return None if v is None else day_start(v)
        rows = ledger.ledger_rows(store, p, start=day(start), end=day(end), annotator=annotator)
        with open(ledger_file, "w", encoding="utf-8", newline="") as f:
            f.write(ledger.ledger_csv(rows))
        out.print(f"wrote {len(rows)} ledger entries to {ledger_file}", highlight=False, markup=False)


@click.command()
@click.argument("project")
@click.argument("text")
@click.option("--to", default=None, help="One member's name (default: every member).")
@click.pass_obj
def message(obj: Ctx, project, text, to):
    """Send TEXT to PROJECT's annotators (they see it on their home page)."""
    store = obj.store()
    messages.send(store, get_project(store, project), None, text, to)
    out.print(f"sent to {to or 'every member of ' + project}", highlight=False)


@click.command("more-answers")
@click.argument("project")
@click.argument("items", nargs=-1, required=True)
@click.option("--answers", default=1, show_default=True, type=click.IntRange(1, 20), help="How many more each.")
@click.pass_obj
def more_answers(obj: Ctx, project, items, answers):
    """Ask for more answers on ITEMS (external ids) of PROJECT; they reopen in the queue."""
    store = obj.store()
    res = queue_controls.more_answers(store, get_project(store, project), list(items), answers)
    out.print(f"{res['items']} item(s) reopened for {answers} more answer(s) each", highlight=False)


@click.command()
@click.argument("project")
@click.pass_obj
def expire(obj: Ctx, project):
    """Expire PROJECT: no new work is handed out (answers already given stay)."""
    store = obj.store()
    expire_project(store, get_project(store, project))
    out.print(f"{project} has expired: no new work", highlight=False)
