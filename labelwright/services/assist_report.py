"""What the assistant has done in a project, for the assist page and ``GET /projects/{p}/assist``.

:func:`report` gathers: the state (auto-labelling on or stopped and why; feature progress), every model with
its validation accuracy and thresholds, people's and machine labels per day, the estimated accuracy of the
machine-labelled share (the thresholds' lower bounds, weighted by how many items each class labelled) beside
the audited accuracy, the suggestions report, the check queue's counts and the LLM annotators' cost.
"""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import case, func, select

from labelwright.errors import ValidationError
from labelwright.schema import label_values
from labelwright.services import assistant, autolabel, suggestions
from labelwright.services.projects import Project
from labelwright.store import Store
from labelwright.store import tables as t
from labelwright.timefmt import utc_day


def labels_over_time(store: Store, project: Project) -> list[dict]:
    """Per UTC day: items labelled by people (their first answer from a person that day), answers from
    machine annotators (LLMs), and items labelled by the assistant."""
    days: dict[str, dict] = {}
    a, ma, ml = t.annotations, t.machine_annotators, t.machine_labels
    with store.read() as conn:
        people = list(conn.execute(select(func.min(a.c.created_at))
                                   .where(a.c.project_id == project.id, a.c.user_id.not_in(select(ma.c.user_id)))
                                   .group_by(a.c.item_id)).scalars())
        llm = list(conn.execute(select(a.c.created_at).select_from(a.join(ma, ma.c.user_id == a.c.user_id))
                                .where(a.c.project_id == project.id)).scalars())
        machine = list(conn.execute(select(ml.c.created_at).where(ml.c.project_id == project.id)).scalars())
    for key, rows in (("people", people), ("llm", llm), ("machine", machine)):
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


def report(store: Store, project: Project, *, now: float | None = None) -> dict:
    now = now or time.time()
    a = project.schema.assist
    if a is None:
        raise ValidationError(f"project {project.slug!r} has no assistant (add `assist:` to its schema)")
    q = project.schema.assist_question()
    state = assistant.get_state(store, project)
    models = assistant.list_models(store, project)
    machine = autolabel.machine_labels(store, project)
    by_class: dict = {}
    for m in machine.values():
        by_class[m["label"]] = by_class.get(m["label"], 0) + 1
    audited = [m for m in machine.values() if m["audit"] in ("correct", "wrong")]
    audit = autolabel.evaluate(store, project, now=now).to_dict() if a.auto_label is not None else None
    i, ch, c, u = t.items, t.assist_checks, t.llm_calls, t.users
    kinds = select(ch.c.kind, func.count().label("n")).where(ch.c.project_id == project.id).group_by(ch.c.kind)
    with store.read() as conn:
        n_items = int(conn.execute(select(func.count()).select_from(i).where(i.c.project_id == project.id))
                      .scalar_one() or 0)
        checks_open = {r.kind: r.n for r in conn.execute(kinds.where(ch.c.checked_at.is_(None)))}
        checks_done = {r.kind: r.n for r in conn.execute(kinds.where(ch.c.checked_at.is_not(None)))}
        llm = conn.execute(select(u.c.name, func.count().label("calls"),
                                  func.sum(case((c.c.error.is_(None), 0), else_=1)).label("errors"),
                                  func.sum(c.c.prompt_tokens).label("prompt_tokens"),
                                  func.sum(c.c.completion_tokens).label("completion_tokens"))
                           .select_from(c.join(u, u.c.id == c.c.user_id)).where(c.c.project_id == project.id)
                           .group_by(u.c.name).order_by(u.c.name)).all()
        costs: dict[str, Decimal] = {}
        for r in conn.execute(select(u.c.name, c.c.cost).select_from(c.join(u, u.c.id == c.c.user_id))
                              .where(c.c.project_id == project.id, c.c.cost.is_not(None))):
            costs[r.name] = costs.get(r.name, Decimal(0)) + Decimal(r.cost)
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
        "llm": [{"annotator": r.name, "calls": r.calls, "errors": int(r.errors or 0),
                 "prompt_tokens": int(r.prompt_tokens or 0), "completion_tokens": int(r.completion_tokens or 0),
                 "cost": str(costs.get(r.name, Decimal(0)))} for r in llm],
    }

