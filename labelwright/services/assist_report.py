"""What the assistant has done in a project, for the assist page and ``GET /projects/{p}/assist``.

:func:`report` gathers: the state (auto-labelling on or stopped and why; feature progress), every model with
its validation accuracy and thresholds, people's and machine labels per day, the estimated accuracy of the
machine-labelled share (the thresholds' lower bounds, weighted by how many items each class labelled) beside
the audited accuracy, the suggestions report, the check queue's counts and the LLM annotators' cost.
"""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import text

from labelwright.schema import label_values
from labelwright.services import assistant, autolabel, suggestions
from labelwright.services.projects import Project
from labelwright.timefmt import utc_day


def labels_over_time(store, project: Project) -> list[dict]:
    """Per UTC day: items labelled by people (their first answer from a person that day), answers from
    machine annotators (LLMs), and items labelled by the assistant."""
    days: dict[str, dict] = {}
    with store.read() as conn:
        people = conn.execute(text(
            "SELECT a.item_id, min(a.created_at) FROM annotations a WHERE a.project_id = :p "
            "AND a.user_id NOT IN (SELECT user_id FROM machine_annotators) GROUP BY a.item_id"),
            {"p": project.id}).all()
        llm = conn.execute(text(
            "SELECT a.created_at FROM annotations a JOIN machine_annotators m ON m.user_id = a.user_id "
            "WHERE a.project_id = :p"), {"p": project.id}).all()
        machine = conn.execute(text("SELECT created_at FROM machine_labels WHERE project_id = :p"),
                               {"p": project.id}).all()
    for key, rows in (("people", [r[1] for r in people]), ("llm", [r[0] for r in llm]),
                      ("machine", [r[0] for r in machine])):
        for ts in rows:
            d = days.setdefault(utc_day(ts), {"day": utc_day(ts), "people": 0, "llm": 0, "machine": 0})
            d[key] += 1
    return [days[k] for k in sorted(days)]


def estimated_accuracy(models: list[dict], machine: dict[int, dict]) -> float | None:
    """The thresholds' lower bound for the machine-labelled share: each machine label counts the lower bound of
    its class's threshold in the model that made it (labels from an earlier model keep that model's bound)."""
    by_version = {m["version"]: m for m in models}
    total = weight = 0.0
    for m in machine.values():
        model = by_version.get(m["model"])
        if model is None or not model.get("thresholds"):
            continue
        th = model["thresholds"]
        classes = model["details"].get("classes") or []
        if m["label"] not in classes:
            continue
        c = classes.index(m["label"])
        if th["thresholds"][c] is not None:
            total += th["lower_bound"][c]
            weight += 1
    return round(total / weight, 4) if weight else None


def report(store, project: Project, *, now: float | None = None) -> dict:
    now = now or time.time()
    a = project.schema.assist
    q = project.schema.assist_question()
    state = assistant.get_state(store, project)
    models = assistant.list_models(store, project)
    machine = autolabel.machine_labels(store, project)
    by_class: dict = {}
    for m in machine.values():
        by_class[m["label"]] = by_class.get(m["label"], 0) + 1
    audited = [m for m in machine.values() if m["audit"] in ("correct", "wrong")]
    audit = autolabel.evaluate(store, project, now=now).to_dict() if a.auto_label is not None else None
    with store.read() as conn:
        items = conn.execute(text("SELECT count(*), sum(CASE WHEN is_gold = 1 THEN 1 ELSE 0 END) FROM items "
                                  "WHERE project_id = :p"), {"p": project.id}).first()
        checks_open = {r[0]: r[1] for r in conn.execute(text(
            "SELECT kind, count(*) FROM assist_checks WHERE project_id = :p AND checked_at IS NULL GROUP BY kind"),
            {"p": project.id})}
        checks_done = {r[0]: r[1] for r in conn.execute(text(
            "SELECT kind, count(*) FROM assist_checks WHERE project_id = :p AND checked_at IS NOT NULL "
            "GROUP BY kind"), {"p": project.id})}
        llm = conn.execute(text(
            "SELECT u.name, count(*), sum(CASE WHEN c.error IS NULL THEN 0 ELSE 1 END), sum(c.prompt_tokens), "
            "sum(c.completion_tokens) FROM llm_calls c JOIN users u ON u.id = c.user_id WHERE c.project_id = :p "
            "GROUP BY u.name ORDER BY u.name"), {"p": project.id}).all()
        costs: dict[str, Decimal] = {}
        for name, cost in conn.execute(text(
                "SELECT u.name, c.cost FROM llm_calls c JOIN users u ON u.id = c.user_id "
                "WHERE c.project_id = :p AND c.cost IS NOT NULL"), {"p": project.id}):
            costs[name] = costs.get(name, Decimal(0)) + Decimal(cost)
    n_items = int(items[0] or 0)
    return {
        "question": q.name,
        "labels": label_values(q),
        "settings": a.model_dump(),
        "state": {"auto_label": state["auto_label"], "reason": state["reason"],
                  "features_done": state["features_done"], "features_total": state["features_total"],
                  "labels_at_train": state["labels_at_train"]},
        "items": n_items,
        "models": [{"version": m["version"], "created_at": m["created_at"], "n_train": m["n_train"],
                    "n_validation": m["n_validation"], "accuracy": m["accuracy"],
                    "thresholds": m["thresholds"]} for m in models],
        "machine_labelled": len(machine),
        "machine_share": round(len(machine) / n_items, 4) if n_items else 0.0,
        "machine_by_label": by_class,
        "estimated_accuracy": estimated_accuracy(models, machine),
        "audited": len(audited),
        "audit": audit,
        "over_time": labels_over_time(store, project),
        "suggestions": suggestions.report(store, project),
        "checks": {"open": checks_open, "done": checks_done},
        "llm": [{"annotator": r[0], "calls": r[1], "errors": int(r[2] or 0), "prompt_tokens": int(r[3] or 0),
                 "completion_tokens": int(r[4] or 0), "cost": str(costs.get(r[0], Decimal(0)))} for r in llm],
    }

