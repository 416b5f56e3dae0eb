"""``labelwright llm``: LLMs as annotators in a project (add, list, enable or disable, run once).

A click group of its own, registered on the main command in :mod:`labelwright.cli`. It runs on the services
(:mod:`labelwright.services.machines`) with the database of ``--db``, as whoever holds it: recorded in the
audit log as "(command line)". See docs/assist.md.
"""

from __future__ import annotations

import json
import os

import click
from rich.table import Table

from labelwright.cli_db import console, out
from labelwright.services import machines
from labelwright.services.projects import get_project


@click.group()
def llm():
    """LLMs as annotators: an OpenAI-compatible chat-completions endpoint answering a project's queue."""


@llm.command("add")
@click.argument("project")
@click.option("--name", required=True, help="Its name in the project; its user is llm:NAME.")
@click.option("--base-url", required=True,
              help="The API root, ending in /v1, e.g. http://127.0.0.1:8080/v1 (vLLM, llama-server, Ollama).")
@click.option("--model", required=True, help="The model name the server knows.")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="NAME of the environment variable holding the API key, read when the model is called "
                   "(the key itself is never stored).")
@click.option("--price-input", default="0", show_default=True, metavar="P",
              help="Price per million prompt tokens, a decimal such as 0.15.")
@click.option("--price-output", default="0", show_default=True, metavar="P",
              help="Price per million completion tokens, a decimal such as 0.60.")
@click.option("--send-image-urls", is_flag=True,
              help="Send http(s) image fields to the model as image_url parts (vision models).")
@click.pass_obj
def add(obj, project, name, base_url, model, api_key_env, price_input, price_output, send_image_urls):
    """Add an LLM to PROJECT as an annotator (a member of the project, answering through its queue)."""
    store = obj.store()
    m = machines.add_llm_annotator(store, get_project(store, project), name=name, base_url=base_url, model=model,
                                   api_key_env=api_key_env, price_input_per_million=price_input,
                                   price_output_per_million=price_output, send_image_urls=send_image_urls)
    out.print(f"added machine annotator [bold]{m['user']}[/] to {project}: {m['model']} at {m['base_url']}",
              highlight=False)
    if api_key_env and not os.environ.get(api_key_env):
        console.print(f"[yellow]note:[/] {api_key_env} is not set here; set it in the environment of the "
                      "process that runs the model (the server, or `labelwright llm run`)", highlight=False)


@llm.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_(obj, project, as_json):
    """List PROJECT's machine annotators: model, calls, errors, tokens, cost, items answered."""
    store = obj.store()
    rows = machines.list_machine_annotators(store, get_project(store, project))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("name", "model", "base URL", "enabled", "calls", "errors", "tokens in/out", "cost", "answered")
    for m in rows:
        table.add_row(m["name"], m["model"], m["base_url"], "yes" if m["enabled"] else "no", str(m["calls"]),
                      str(m["errors"]), f"{m['prompt_tokens']:,}/{m['completion_tokens']:,}", m["cost"],
                      str(m["items_answered"]))
    out.print(table)
    for m in rows:
        if m["last_error"]:
            out.print(f"{m['name']}: last error: {m['last_error']}", highlight=False, soft_wrap=True)


def _set(obj, project: str, name: str, enabled: bool) -> None:
    store = obj.store()
    machines.set_enabled(store, get_project(store, project), name, enabled)
    out.print(f"{name} is {'enabled' if enabled else 'disabled'} in {project}", highlight=False)


@llm.command("enable")
@click.argument("project")
@click.argument("name")
@click.pass_obj
def enable(obj, project, name):
    """Let machine annotator NAME of PROJECT work again."""
    _set(obj, project, name, True)


@llm.command("disable")
@click.argument("project")
@click.argument("name")
@click.pass_obj
def disable(obj, project, name):
    """Stop machine annotator NAME of PROJECT (its leases are given back; its answers stay)."""
    _set(obj, project, name, False)


@llm.command("run")
@click.argument("project")
@click.option("--max-items", default=50, show_default=True, type=click.IntRange(1, 1_000_000),
              help="At most this many items per machine annotator.")
@click.pass_obj
def run(obj, project, max_items):
    """Let PROJECT's enabled LLM annotators answer items now, in the foreground, then print what it cost."""
    store = obj.store()
    p = get_project(store, project)
    with console.status("asking the model...") as status:
        def progress(e: dict) -> None:
            status.update(f"{e['annotator']}: {e['answered']} answered, {e['failed']} failed, cost {e['cost']}")

        result = machines.run_llm_annotators(store, p, max_items=max_items, on_progress=progress)
    for a in result["annotators"]:
        line = f"{a['name']}: {a['answered']} answered, {a['failed']} failed, cost {a['cost']}"
        out.print(line + (f" (stopped: {a['stopped']})" if a["stopped"] else ""), highlight=False, soft_wrap=True)
    if not result["annotators"]:
        out.print(f"{p.slug} has no enabled LLM annotator (see `labelwright llm add`)", highlight=False)
    out.print(f"answered {result['answered']}, failed {result['failed']}, cost {result['cost']}", highlight=False)
