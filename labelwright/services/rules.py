"""Rules as annotators (weak supervision): a project's keyword, regex and Python labelling functions, their
votes, and the table that says how far to trust them.

A rule is a machine annotator: a user of its own (``rule:<project id>:<rule name>``, no password, no
membership, so it is never handed work) and a ``machine_annotators`` row of kind ``rule`` (so pay and the
annotators' hourly estimates leave it out, and the quality page marks it a machine). Its votes are
annotations of that user with ``review_status`` ``rule`` (never in a reviewer's queue; adaptive redundancy
does not count them); an abstention is no row. Annotators never see them: they see their own answers only.

:func:`apply_rule` runs one rule over the project's items in batches of :data:`BATCH` items: each batch is
read, voted on outside any transaction, and written in one short transaction that first deletes the rule's
votes on that batch's range of items, so running a rule again replaces its votes (idempotent), and the
SQLite writer is held for one batch at a time. Creating or changing a rule runs it over every item;
:func:`apply_new_items` (after an import) runs each enabled rule over the items above ``applied_through``;
disabling or deleting a rule removes its votes.

Unless the project turns the label model on (:func:`set_label_model`), rules' votes stay out of the
consensus (:mod:`labelwright.services.labels`), which remains the people's. See docs/quality.md,
"Rules as annotators".
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, update

from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.quality import lf_analysis
from labelwright.schema import answer_label
from labelwright.services import audit
from labelwright.services.gold import gold_answers
from labelwright.services.labelling_functions import KINDS, RuleSpec, RuleTimeout, check, make_function
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t

KIND = "rule"  # machine_annotators.kind of a rule's user
STATUS = "rule"  # annotations.review_status of a rule's vote: not reviewed, not an answer to the queue
USER_PREFIX = "rule:"
BATCH = 1000  # items per read and per write transaction
MAX_TIMEOUTS = 10  # items on which a pattern timed out before the rule is switched off
FIELDS = ("name", "kind", "question", "field", "pattern", "label")


def rule_questions(project: Project) -> dict[str, Any]:
    """The questions a rule can answer: categorical, one label per answer (single choice, rating)."""
    return {q.name: q for q in project.schema.questions if q.categorical and q.suggestible}


def rule_fields(project: Project) -> list[str]:
    """The item fields a keyword or regex rule can read: the project's display fields."""
    return [f.name for f in project.schema.fields]


def _user_name(project: Project, name: str) -> str:
    return f"{USER_PREFIX}{project.id}:{name}"


def _entry(r) -> dict:
    return {"id": r.id, "name": r.name, "kind": r.kind, "question": r.question, "field": r.field,
            "pattern": r.pattern, "label": r.label, "enabled": bool(r.enabled), "votes": int(r.votes),
            "errors": int(r.errors), "last_error": r.last_error, "user": r.user_name,
            "created_at": r.created_at, "updated_at": r.updated_at}


def _select():
    r, u = t.rules, t.users
    return select(*r.c, u.c.name.label("user_name")).select_from(r.join(u, u.c.id == r.c.user_id))


def list_rules(store: Store, project: Project) -> list[dict]:
    """The project's rules, in the order they were made, with how many votes each has stored."""
    with store.read() as conn:
        rows = conn.execute(_select().where(t.rules.c.project_id == project.id).order_by(t.rules.c.id)).all()
    return [_entry(r) for r in rows]


def get_rule(store: Store, project: Project, rule_id: int) -> dict:
    with store.read() as conn:
        row = conn.execute(_select().where(t.rules.c.project_id == project.id, t.rules.c.id == rule_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id} in project {project.slug!r}")
    return _entry(row)


def rule_user_ids(store: Store, project: Project) -> dict[int, str]:
    """``{user id: rule name}`` of the project's rules (enabled or not)."""
    r = t.rules
    with store.read() as conn:
        return dict(conn.execute(select(r.c.user_id, r.c.name).where(r.c.project_id == project.id)).all())


def _checked(project: Project, values: dict) -> RuleSpec:
    kind = values.get("kind")
    questions = rule_questions(project)
    question = values.get("question") or (next(iter(questions)) if len(questions) == 1 else None)
    spec = RuleSpec(name=str(values.get("name") or ""), kind=str(kind or ""), question=str(question or ""),
                    field=values.get("field") or None, pattern=str(values.get("pattern") or ""),
                    label=None if values.get("label") in (None, "") else str(values["label"]))
    if spec.kind not in KINDS:
        raise ValidationError(f"kind is one of {list(KINDS)}, not {kind!r}", field="kind")
    return check(spec, questions, set(rule_fields(project)))


# ---- making, changing, removing --------------------------------------------------------------------------


def create_rule(store: Store, project: Project, *, name: str, kind: str, pattern: str, question: str | None = None,
                field: str | None = None, label: str | None = None, enabled: bool = True,
                by: User | None = None) -> dict:
    """Add a rule to ``project`` and (when enabled) run it over every item; returns its entry.

    ``pattern``: the keywords (one per line or comma-separated), the regular expression, or the entry point's
    name (``kind`` ``python``). ``question`` may be left out when the project has one question rules can
    answer. Recorded in the audit log."""
    spec = _checked(project, {"name": name, "kind": kind, "pattern": pattern, "question": question,
                              "field": field, "label": label})
    now = time.time()
    by_id = getattr(by, "id", None)
    r, u = t.rules, t.users
    with store.write() as conn:
        if conn.execute(select(r.c.id).where(r.c.project_id == project.id, r.c.name == spec.name)).first():
            raise Conflict(f"project {project.slug!r} already has a rule named {spec.name!r}", field="name")
        uid = conn.execute(insert(u).values(name=_user_name(project, spec.name), role="annotator", password_hash=None,
                                            disabled=0, created_at=now).returning(u.c.id)).scalar_one()
        rule_id = conn.execute(insert(r).values(
            project_id=project.id, user_id=uid, name=spec.name, kind=spec.kind, question=spec.question,
            field=spec.field, pattern=spec.pattern, label=spec.label, enabled=int(enabled), applied_through=0,
            votes=0, errors=0, created_by=by_id, created_at=now, updated_at=now).returning(r.c.id)).scalar_one()
        conn.execute(insert(t.machine_annotators).values(user_id=uid, project_id=project.id, kind=KIND,
                                                         config=dumps({"rule_id": rule_id}), enabled=int(enabled),
                                                         created_by=by_id, created_at=now))
        audit.record(conn, by, "rule.add", project.id, spec.name,
                     {"kind": spec.kind, "question": spec.question, "field": spec.field, "label": spec.label})
    if enabled:
        apply_rule(store, project, rule_id)
    return get_rule(store, project, rule_id)


def update_rule(store: Store, project: Project, rule_id: int, changes: dict, *, by: User | None = None) -> dict:
    """Change a rule (any of its fields and ``enabled``). A changed rule runs again over every item (its
    votes replaced); a disabled one loses its votes; a rule enabled again runs over every item."""
    old = get_rule(store, project, rule_id)
    unknown = sorted(set(changes) - set(FIELDS) - {"enabled"})
    if unknown:
        raise ValidationError(f"unknown field(s) {unknown}; a rule has {[*FIELDS, 'enabled']}", field=unknown[0])
    pattern = changes.get("pattern", old["pattern"])
    spec = _checked(project, {**{k: old[k] for k in FIELDS}, **{k: v for k, v in changes.items() if k in FIELDS},
                              "pattern": pattern})
    enabled = bool(changes.get("enabled", old["enabled"]))
    new = {"name": spec.name, "kind": spec.kind, "question": spec.question, "field": spec.field,
           "pattern": spec.pattern, "label": spec.label}
    what_changed = {k for k in new if new[k] != old[k]}
    r = t.rules
    with store.write() as conn:
        if "name" in what_changed:
            if conn.execute(select(r.c.id).where(r.c.project_id == project.id, r.c.name == spec.name)).first():
                raise Conflict(f"project {project.slug!r} already has a rule named {spec.name!r}", field="name")
            conn.execute(update(t.users).where(t.users.c.id == select(r.c.user_id).where(r.c.id == rule_id)
                                               .scalar_subquery()).values(name=_user_name(project, spec.name)))
        conn.execute(update(r).where(r.c.id == rule_id).values(**new, enabled=int(enabled), updated_at=time.time(),
                                                               **({"errors": 0, "last_error": None}
                                                                  if what_changed - {"name"} else {})))
        conn.execute(update(t.machine_annotators).where(t.machine_annotators.c.user_id == select(r.c.user_id).where(
            r.c.id == rule_id).scalar_subquery()).values(enabled=int(enabled)))
        if what_changed or enabled != old["enabled"]:
            audit.record(conn, by, "rule.change", project.id, spec.name,
                         {"changed": sorted(what_changed), "enabled": enabled})
    if not enabled:
        if old["enabled"]:
            remove_votes(store, project, rule_id)
    elif (what_changed - {"name"}) or not old["enabled"]:
        apply_rule(store, project, rule_id)
    return get_rule(store, project, rule_id)


def delete_rule(store: Store, project: Project, rule_id: int, *, by: User | None = None) -> None:
    """Remove a rule, its votes and its user."""
    rule = get_rule(store, project, rule_id)
    remove_votes(store, project, rule_id)
    r = t.rules
    with store.write() as conn:
        uid = conn.execute(select(r.c.user_id).where(r.c.id == rule_id)).scalar_one()
        conn.execute(delete(t.annotations).where(t.annotations.c.user_id == uid))  # any that came in meanwhile
        conn.execute(delete(r).where(r.c.id == rule_id))
        conn.execute(delete(t.machine_annotators).where(t.machine_annotators.c.user_id == uid))
        conn.execute(delete(t.users).where(t.users.c.id == uid))
        audit.record(conn, by, "rule.delete", project.id, rule["name"], {"votes": rule["votes"]})


def remove_votes(store: Store, project: Project, rule_id: int) -> int:
    """Delete a rule's votes, :data:`BATCH` items' worth per transaction; returns how many."""
    r, a = t.rules, t.annotations
    with store.read() as conn:
        uid = conn.execute(select(r.c.user_id).where(r.c.id == rule_id, r.c.project_id == project.id)).scalar_one()
        ids = list(conn.execute(select(a.c.item_id).where(a.c.user_id == uid).order_by(a.c.item_id)).scalars())
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        with store.write() as conn:
            conn.execute(delete(a).where(a.c.user_id == uid, a.c.item_id >= chunk[0], a.c.item_id <= chunk[-1]))
    with store.write() as conn:
        conn.execute(update(r).where(r.c.id == rule_id).values(votes=0, applied_through=0))
    return len(ids)


# ---- running -----------------------------------------------------------------------------------------------


def _spec(row) -> RuleSpec:
    return RuleSpec(row.name, row.kind, row.question, row.field, row.pattern, row.label)


def apply_rule(store: Store, project: Project, rule_id: int, *, new_only: bool = False) -> dict:
    """Run rule ``rule_id`` over the project's items (``new_only``: those above its ``applied_through``)
    and store its votes in place of the ones it had on those items. Returns ``{"items", "votes", "errors"}``.

    An item on which the function raises (or a pattern times out) is an abstention and counts as an error;
    the last error is kept on the rule. After :data:`MAX_TIMEOUTS` timeouts the rule is switched off, its
    votes removed."""
    r, i, a = t.rules, t.items, t.annotations
    with store.read() as conn:
        row = conn.execute(select(r).where(r.c.id == rule_id, r.c.project_id == project.id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id} in project {project.slug!r}")
    if not row.enabled:
        return {"items": 0, "votes": 0, "errors": 0}
    question = rule_questions(project).get(row.question)
    if question is None:
        raise ValidationError(f"rule {row.name!r} answers question {row.question!r}, which the project no longer "
                              "has as a categorical question", field="question")
    fn = make_function(_spec(row), question)
    answers_of: dict[Any, str] = {}
    cursor = row.applied_through if new_only else 0
    seen = votes = errors = timeouts = 0
    last_error = None
    while True:
        with store.read() as conn:
            batch = conn.execute(select(i.c.id, i.c.data).where(i.c.project_id == project.id, i.c.id > cursor)
                                 .order_by(i.c.id).limit(BATCH)).all()
        if not batch:
            break
        now = time.time()
        rows = []
        for item_id, data in batch:
            try:
                label = fn(loads(data))
            except RuleTimeout as e:
                timeouts += 1
                errors += 1
                last_error = f"item {item_id}: {e}"
                continue
            except Exception as e:  # a labelling function's own failure on one item: an abstention, reported
                errors += 1
                last_error = f"item {item_id}: {type(e).__name__}: {e}"[:2000]
                continue
            if label is None:
                continue
            if label not in answers_of:
                answers_of[label] = dumps(project.schema.validate_answers({question.name: label}))
            rows.append({"item_id": item_id, "project_id": project.id, "user_id": row.user_id,
                         "answers": answers_of[label], "active_ms": 0, "revision": 1, "created_at": now,
                         "updated_at": now, "review_status": STATUS, "reported_ms": 0, "bound_ms": 0})
        first, last = batch[0][0], batch[-1][0]
        with store.write() as conn:
            conn.execute(delete(a).where(a.c.user_id == row.user_id, a.c.item_id >= first, a.c.item_id <= last))
            if rows:
                conn.execute(insert(a), rows)
            conn.execute(update(r).where(r.c.id == rule_id).values(applied_through=last))
        seen += len(batch)
        votes += len(rows)
        cursor = last
        if timeouts >= MAX_TIMEOUTS:
            break
    stopped = timeouts >= MAX_TIMEOUTS
    if stopped:
        last_error = (f"switched off: the pattern timed out on {timeouts} items (it backtracks too much on "
                      f"long texts); last: {last_error}")
    with store.write() as conn:
        total = conn.execute(select(func.count()).select_from(a).where(a.c.user_id == row.user_id)).scalar_one()
        values: dict[str, Any] = {"votes": total, "updated_at": time.time()}
        if errors or not new_only:
            values.update(errors=errors if not new_only else r.c.errors + errors,
                          last_error=last_error if errors or not new_only else r.c.last_error)
        if stopped:
            values["enabled"] = 0
        conn.execute(update(r).where(r.c.id == rule_id).values(**values))
        if stopped:
            conn.execute(update(t.machine_annotators).where(t.machine_annotators.c.user_id == row.user_id)
                         .values(enabled=0))
    if stopped:
        remove_votes(store, project, rule_id)
    return {"items": seen, "votes": votes, "errors": errors}


def apply_new_items(store: Store, project: Project) -> int:
    """Run each enabled rule over the items imported since it last ran; returns the votes added."""
    r = t.rules
    with store.read() as conn:
        ids = list(conn.execute(select(r.c.id).where(r.c.project_id == project.id, r.c.enabled == 1)
                                .order_by(r.c.id)).scalars())
    return sum(apply_rule(store, project, rule_id, new_only=True)["votes"] for rule_id in ids)


# ---- the label model setting -----------------------------------------------------------------------------


def label_model_on(store: Store, project: Project) -> bool:
    """Whether the project aggregates its rules' questions with the label model over people and rules."""
    s = t.rule_settings
    with store.read() as conn:
        return bool(conn.execute(select(s.c.label_model).where(s.c.project_id == project.id)).scalar())


def set_label_model(store: Store, project: Project, on: bool, *, by: User | None = None) -> bool:
    """Switch the label model on or off for ``project`` (off by default); recorded in the audit log."""
    s = t.rule_settings
    now = time.time()
    with store.write() as conn:
        if conn.execute(select(s.c.project_id).where(s.c.project_id == project.id)).first():
            conn.execute(update(s).where(s.c.project_id == project.id).values(label_model=int(on), updated_at=now))
        else:
            conn.execute(insert(s).values(project_id=project.id, label_model=int(on), updated_at=now))
        audit.record(conn, by, "rule.label_model", project.id, project.slug, {"on": on})
    return on


# ---- the analysis table ----------------------------------------------------------------------------------


def analysis(store: Store, project: Project) -> list[dict]:
    """Per question rules answer: each rule's polarity, votes, coverage, overlap and conflict (with the other
    rules), accuracy on gold items and against the people's majority label (ties left out), from
    :func:`labelwright.quality.lf_analysis`. ``[{"question", "n_items", "coverage", "rules": [...]}]``."""
    rules = list_rules(store, project)
    if not rules:
        return []
    questions = rule_questions(project)
    by_user = {r["user"]: r for r in rules}
    rule_uids = rule_user_ids(store, project)
    a, i, u = t.annotations, t.items, t.users
    with store.read() as conn:
        tasks = list(conn.execute(select(i.c.id).where(i.c.project_id == project.id).order_by(i.c.id)).scalars())
        rows = conn.execute(select(a.c.item_id, a.c.user_id, u.c.name,
                                   func.coalesce(a.c.reviewed_answers, a.c.answers).label("answers"))
                            .select_from(a.join(u, u.c.id == a.c.user_id))
                            .where(a.c.project_id == project.id, a.c.review_status != "rejected")).all()
    gold = gold_answers(store, project)
    out = []
    for name, q in questions.items():
        mine = [r for r in rules if r["question"] == name]
        if not mine:
            continue
        rule_votes: list[tuple] = []
        people: dict[int, list] = {}
        for item_id, user_id, user_name, answers in rows:
            label = answer_label(q, loads(answers).get(name))
            if label is None:
                continue
            if user_id in rule_uids:
                rule_votes.append((item_id, by_user[user_name]["name"], label))
            else:
                people.setdefault(item_id, []).append(label)
        majority = {}
        for item_id, labels in people.items():
            top = Counter(labels).most_common(2)
            if len(top) == 1 or top[0][1] > top[1][1]:
                majority[item_id] = top[0][0]
        g = {item_id: answer_label(q, ans[name]) for item_id, ans in gold.items() if name in ans}
        table = lf_analysis(pd.DataFrame(rule_votes, columns=["task", "worker", "label"]), gold=g or None,
                            reference=majority or None, tasks=tasks) if rule_votes else None
        entries = []
        for r in mine:
            got = table.loc[r["name"]] if table is not None and r["name"] in table.index else None
            entries.append({"rule": r["name"], "kind": r["kind"], "enabled": r["enabled"],
                            "polarity": [] if got is None else list(got["polarity"]),
                            "votes": 0 if got is None else int(got["votes"]),
                            "coverage": 0.0 if got is None else float(got["coverage"]),
                            "overlap": 0.0 if got is None else float(got["overlap"]),
                            "conflict": 0.0 if got is None else float(got["conflict"]),
                            "gold_votes": _int(got, "gold_votes"), "gold_accuracy": _share(got, "gold_accuracy"),
                            "people_votes": _int(got, "reference_votes"),
                            "people_accuracy": _share(got, "reference_accuracy")})
        out.append({"question": name, "n_items": len(tasks),
                    "coverage": float(table.attrs["coverage"]) if table is not None else 0.0, "rules": entries})
    return out


def _int(row, column: str) -> int:
    return 0 if row is None or column not in row.index else int(row[column])


def _share(row, column: str) -> float | None:
    if row is None or column not in row.index or pd.isna(row[column]):
        return None
    return float(row[column])
