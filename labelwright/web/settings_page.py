"""The settings of a running project, from the browser: one form per group, and expiring the project.

Each group's form is read into the part of the schema it covers (``GROUPS``) and goes through
:func:`labelwright.services.projects.update_settings`, the API's own path: validated like a new schema,
written in one transaction, recorded in the audit log with the values before and after. A field left
empty takes the schema's default; an optional section (pay, review, qualification, adaptive
redundancy) is removed by unticking it. Fields and questions cannot be changed here (answers already
given depend on them). Each group says what a change does to work already done (``EFFECTS``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from labelwright.errors import NotFound, ValidationError
from labelwright.schema import is_categorical
from labelwright.services import audit, policy
from labelwright.services import projects as projects_svc
from labelwright.services.projects import update_settings
from labelwright.timefmt import parse_utc_time, utc_time
from labelwright.web import project_for_page, render

# (input name = the setting's path in the schema, label, input kind, hint)
FIELDS = {
    "instructions": [("description", "Description", "text", "one line on the project list"),
                     ("instructions", "Instructions (Markdown)", "textarea", "shown above every item")],
    "pay": [("pay.currency", "Currency", "text", "three letters, e.g. USD"),
            ("pay.reward_per_item", "Reward per accepted item", "text", "a decimal amount, e.g. 0.10"),
            ("pay.hourly_rate", "Hourly rate for active time", "text", "e.g. 15.00"),
            ("pay.auto_approve_hours", "Approved automatically after (hours)", "number", "unless rejected"),
            ("pay.min_fair_hourly", "Fair hourly rate", "text", "annotators earning less are flagged"),
            ("pay.bonus.gold_accuracy_above", "Weekly bonus: gold accuracy above", "number", "0 to 1; empty: no bonus"),
            ("pay.bonus.min_gold_answers", "Weekly bonus: gold answers needed", "number", ""),
            ("pay.bonus.amount", "Weekly bonus: amount", "text", "e.g. 5.00")],
    "review": [("review.mode", "Which submissions", "select:all,sample,disagreement",
                "all, a random sample, or those that disagree with the majority or gold"),
               ("review.rate", "Sample share", "number", "0 to 1 (mode sample)"),
               ("review.lease_seconds", "Review lease (seconds)", "number", "")],
    "gold": [("gold.rate", "Share of gold items served", "number", "0 to 1, while an annotator has gold left"),
             ("gold.field", "Import column with gold answers", "text", "")],
    "qualification": [("qualification.size", "Test size (gold items)", "number", "the first gold items imported"),
                      ("qualification.pass_mark", "Pass mark", "number", "share right, 0 to 1"),
                      ("qualification.retakes", "Retakes allowed", "number", ""),
                      ("qualification.retake_after_hours", "Wait before a retake (hours)", "number", "")],
    "redundancy": [("overlap", "Answers per item", "number", "1 to 9 (with adaptive redundancy: its minimum)"),
                   ("redundancy.max", "Adaptive: at most", "number", "answers while the item is in doubt"),
                   ("redundancy.confidence", "Adaptive: stop at confidence", "number", "0.5 to 0.99"),
                   ("redundancy.accuracy", "Adaptive: tune the confidence on gold for accuracy", "number",
                    "0 to 1, e.g. 0.9; empty: use the confidence above as it is"),
                   ("redundancy.budget", "Adaptive: or a budget (answers per item on average)", "number",
                    "between the minimum and the maximum; empty: stop at the confidence"),
                   ("redundancy.question", "Adaptive: deciding question", "question", ""),
                   ("redundancy.pause_below", "Adaptive: pause weak annotators below", "number",
                    "0 to 1 of the way from chance to the crowd's accuracy, e.g. 0.25; empty: never"),
                   ("redundancy.second_opinions", "Adaptive: answers beyond the minimum come from",
                    "select:anyone,stronger_half",
                    "anyone, or the stronger half (annotators estimated at or above the median accuracy)")],
    "lease": [("lease_seconds", "Lease (seconds)", "number", "how long an item stays with the annotator who opened it"),
              ("history_size", "Answers an annotator can amend", "number", "their latest ones")],
    "expiry": [("expires_at", "Expires at (UTC)", "datetime", "YYYY-MM-DD HH:MM; empty: never")],
}
CHANGES_SHOWN = 20  # the latest entries of the project's audit log, under the forms
OPTIONAL = {"pay", "review", "qualification", "redundancy"}  # sections removed by unticking them
TITLES = {"instructions": "Instructions", "pay": "Pay", "review": "Review", "gold": "Gold items",
          "qualification": "Qualification test", "redundancy": "Redundancy", "lease": "Leases and amending",
          "expiry": "Expiry"}
EFFECTS = {
    "instructions": "Annotators see the new text on their next item. Answers already given are kept as they are.",
    "pay": "The ledger is recomputed with the new amounts for every submission, past ones included, the next "
           "time it is settled: differences are added as new entries (nothing is edited). Removing pay stops "
           "new entries.",
    "review": "The review queue follows the new rule at once, for submissions not decided yet; decisions "
              "already made stay.",
    "gold": "The share applies to items handed out from now on. The import column matters for the next import.",
    "qualification": "Annotators who passed stay qualified; attempts in progress are graded against the new "
                     "pass mark. A new test size applies to attempts started from now on.",
    "redundancy": "Items re-open or close at once to match the new number of answers; answers already given "
                  "are kept. Adaptive limits apply to the next decision on each item; a bar for pausing weak "
                  "annotators, and who gives second opinions, at the next refit of their skills (annotators already "
                  "paused stay paused).",
    "lease": "Items open now keep their lease until it runs out; new leases get the new length.",
    "expiry": "From then on no new work is handed out; answers already given stay and leases end as they would.",
}
_SETTABLE_KEYS = {"instructions": ("description", "instructions"), "lease": ("lease_seconds", "history_size"),
                  "redundancy": ("overlap", "redundancy"), "expiry": ("expires_at",)}


def _dig(data: Any, path: str):
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _day(ts) -> str:
    """A time as the form's field shows it (and reads it back): ``YYYY-MM-DD HH:MM``, UTC."""
    return utc_time(ts, zone=False, missing="")


def current_values(schema) -> dict:
    """Every form field's value now, as text."""
    data = schema.model_dump(exclude_none=True)
    out = {}
    for fields in FIELDS.values():
        for name, _, kind, _ in fields:
            value = _dig(data, name)
            out[name] = _day(value) if kind == "datetime" else "" if value is None else str(value)
    return out


def _set(target: dict, path: list[str], value) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def changes_from_form(group: str, form, schema) -> dict:
    """The ``update_settings`` changes a group's form asks for (values as text: the schema converts them)."""
    built: dict = {}
    for name, _, kind, _ in FIELDS[group]:
        value = str(form.get(name) or "").replace("\r\n", "\n")
        if kind == "datetime":
            built[name] = _timestamp(value.strip(), name)
        elif kind == "textarea" or name == "description":
            built[name] = value
        elif value.strip():
            _set(built, name.split("."), value.strip())
    if group in _SETTABLE_KEYS:
        changes: dict[str, Any] = {k: built.get(k) for k in _SETTABLE_KEYS[group]}
    else:
        changes = {group: built.get(group, {})}
    if group == "pay" and "bonus" in changes["pay"] and not changes["pay"]["bonus"].get("amount") \
            and not changes["pay"]["bonus"].get("gold_accuracy_above"):
        changes["pay"].pop("bonus")  # only the default of gold answers left: no bonus
    if group == "redundancy":
        adaptive = form.get("enabled") is not None
        if adaptive:
            changes["redundancy"] = dict(changes.get("redundancy") or {})
            if changes.get("overlap") is not None:
                changes["redundancy"]["min"] = changes["overlap"]
            if changes["redundancy"].get("min") is None:
                changes.pop("overlap", None)
                changes["redundancy"]["min"] = schema.overlap
            changes["overlap"] = changes["redundancy"]["min"]
        else:
            changes["redundancy"] = None
            if changes.get("overlap") is None:
                changes["overlap"] = schema.overlap
    elif group in OPTIONAL and form.get("enabled") is None:
        changes = {group: None}
    return changes


def _timestamp(value: str, field: str) -> float | None:
    if not value:
        return None
    try:
        return parse_utc_time(value)
    except ValueError:
        raise ValidationError("a time as YYYY-MM-DD HH:MM (UTC)", field=field) from None


def _page(request: Request, project, *, status: int = 200, values=None, group=None, error=None, saved=None):
    schema = project.schema
    changes = audit.entries(request.app.state.store, project.id, limit=CHANGES_SHOWN)
    for c in changes:
        c["when"] = utc_time(c["at"])
    return render(request, "settings.html", status=status, project=project, fields=FIELDS, titles=TITLES,
                  effects=EFFECTS, optional=OPTIONAL, values=values or current_values(schema),
                  enabled={g: (getattr(schema, g) is not None) for g in OPTIONAL},
                  questions=[q.name for q in schema.questions if is_categorical(q)],
                  error_group=group, error=error, saved=saved, expired=_expired(schema), changes=changes)


def _expired(schema) -> bool:
    return schema.expires_at is not None and schema.expires_at <= time.time()


def settings_page(slug: str, request: Request, saved: str | None = None):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return _page(request, project, saved=saved if saved in FIELDS else None)


def save_group(slug: str, group: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    if group not in FIELDS:
        raise NotFound(f"no settings group {group!r}; the groups are {list(FIELDS)}")
    try:
        update_settings(store, project, changes_from_form(group, form, project.schema), by=session.user)
    except ValidationError as e:
        values = current_values(project.schema)
        values.update({name: str(form.get(name) or "") for name, *_ in FIELDS[group]})
        field = e.field
        named = [name for name, *_ in FIELDS[group] if e.message.startswith(name + " ")]
        if named and (field is None or field == named[0].split(".")[0]):
            field = named[0]  # a section's own check names the field in its message ("pay.hourly_rate must...")
        return _page(request, project, status=422, values=values, group=group,
                     error={"message": e.message, "field": field})
    return RedirectResponse(f"/projects/{project.slug}/settings?saved={group}#{group}", status_code=303)


def expire_page(slug: str, request: Request):
    _, _, project = project_for_page(slug, request, policy.manage_project)
    return render(request, "settings_expire.html", project=project, expired=_expired(project.schema))


def expire(slug: str, request: Request, form):
    session, store, project = project_for_page(slug, request, policy.manage_project, form)
    if form.get("confirm") != "yes":
        return render(request, "settings_expire.html", status=422, project=project, expired=_expired(project.schema),
                      error="tick the box to confirm: no new work will be handed out")
    projects_svc.expire(store, project, by=session.user)
    return RedirectResponse(f"/projects/{project.slug}/settings?saved=expiry#expiry", status_code=303)


def add_routes(r):
    r.add_api_route("/projects/{slug}/settings", settings_page, methods=["GET"])

    @r.post("/projects/{slug}/settings/{group}")
    async def save(slug: str, group: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(save_group, slug, group, request, form)

    r.add_api_route("/projects/{slug}/expire", expire_page, methods=["GET"])

    @r.post("/projects/{slug}/expire")
    async def expire_now(slug: str, request: Request):
        form = await request.form()
        return await run_in_threadpool(expire, slug, request, form)
    return r
