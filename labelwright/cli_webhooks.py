"""``labelwright webhooks``: add webhooks, list them, read a delivery log, run the delivery worker.

A click group of its own, registered on the main command in :mod:`labelwright.cli`. It runs on the
services directly (never on HTTP to a server), with the database of ``--db``, as whoever holds it:
an owner's powers, recorded in the audit log as "(command line)".
"""

from __future__ import annotations

import json
import threading

import click
from rich.table import Table

from labelwright.cli_db import console, out
from labelwright.services import webhooks as svc
from labelwright.services.events import KINDS
from labelwright.services.projects import get_project
from labelwright.services.webhook_worker import WebhookWorker
from labelwright.services.webhooks import STATUSES
from labelwright.timefmt import utc_time


def _when(ts) -> str:
    return utc_time(ts, seconds=True, missing="")


@click.group()
def webhooks():
    """Send signed events (item completed, annotation submitted...) to other systems' URLs."""


@webhooks.command("add")
@click.argument("url")
@click.option("--project", default=None, help="The project (slug or id) whose events it receives; "
                                              "without it: every project's.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
              help="An event kind to send; repeat for several. Without it: every kind.")
@click.pass_obj
def add(obj, url, project, kinds):
    """Add a webhook that receives events at URL, and print its signing secret (shown once).

    URL must reach a public address: private, loopback and link-local ones are refused unless
    LABELWRIGHT_WEBHOOK_ALLOW_PRIVATE=1."""
    store = obj.store()
    p = get_project(store, project) if project else None
    secret, hook = svc.create_webhook(store, url, p, list(kinds) or "*",
                                      allow_private=obj.settings.webhook_allow_private)
    out.print(f"added webhook {hook['id']} for {p.slug if p else 'every project'}: {hook['url']}", highlight=False)
    out.print(f"signing secret (shown once): {secret}", highlight=False, soft_wrap=True)


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj, as_json):
    """List webhooks, with how many deliveries of each are pending or failed."""
    rows = svc.list_webhooks(obj.store())
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "project", "url", "events", "active", "pending", "failed")
    for h in rows:
        table.add_row(str(h["id"]), h["project"] or "(every project)", h["url"],
                      "*" if h["kinds"] == "*" else ", ".join(h["kinds"]), "yes" if h["active"] else "no",
                      str(h["pending"]), str(h["failed"]))
    out.print(table)


@webhooks.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def deliveries(obj, webhook_id, status, limit, as_json):
    """The delivery log of webhook WEBHOOK_ID: event, status, attempts, last status code and error."""
    store = obj.store()
    svc.get_webhook(store, webhook_id)  # a clear error for a wrong id
    rows = svc.delivery_log(store, webhook_ids=[webhook_id], status=status, limit=limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "event", "project", "queued", "status", "attempts", "code", "last error",
                  "delivered / next attempt")
    for d in rows:
        table.add_row(str(d["id"]), d["event"], d["project"] or "", _when(d["created_at"]), d["status"],
                      str(d["attempts"]), "" if d["last_status_code"] is None else str(d["last_status_code"]),
                      d["last_error"] or "", _when(d["delivered_at"] or d["next_attempt_at"]))
    out.print(table)


@webhooks.command("worker")
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=1.0, show_default=True,
              help="Seconds between polls for due deliveries.")
@click.pass_obj
def worker(obj, interval):
    """Run the delivery worker in the foreground (for servers started with LABELWRIGHT_WEBHOOK_WORKER=0)."""
    w = WebhookWorker(obj.store(), interval=interval,
                      allow_private=obj.settings.webhook_allow_private).start()
    console.print("sending webhook deliveries; Ctrl-C stops", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        w.stop()
