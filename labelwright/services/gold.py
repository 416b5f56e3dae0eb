"""Gold items: items whose answers the owner knows, mixed into annotators' queues to measure them.

A gold item is an ordinary item with ``items.is_gold = 1`` and a row in ``gold`` holding its answers.
Nothing that serves an item to an annotator reads the ``gold`` table, and the flag is never part of an
item's payload, so a gold item looks like any other. Each annotator may answer a gold item once (its
target is :data:`GOLD_TARGET`, far above any overlap); the queue serves gold items at the project's
``gold.rate`` (see :func:`labelwright.services.queue.claim_next`).

Gold answers reach the server two ways: a column of the import (``gold.field``, default ``gold``;
:func:`split_gold`) or :func:`set_gold` (the API and the owner's item page).
"""

from __future__ import annotations

import time

import orjson
from sqlalchemy import text

from labelwright.errors import NotFound, ValidationError
from labelwright.schema import FreeText, MultipleChoice, ProjectSchema, answer_label
from labelwright.services.projects import Project
from labelwright.store import dumps, loads
from labelwright.store.slots import open_flag

# SQL for an annotation's first answers (alias ``a``): what gold accuracy is measured on wherever an
# annotator can see it or be paid for it, so amending an answer never changes the verdict on it.
FIRST_ANSWERS = ("COALESCE((SELECT r.answers FROM annotation_revisions r WHERE r.annotation_id = a.id "
                 "AND r.revision = 1), a.answers)")
GOLD_TARGET = 1_000_000_000  # "every annotator may answer it once": above any number of annotators


def split_gold(schema: ProjectSchema, record: dict, *, file: str | None = None,
               line: int | None = None) -> dict | None:
    """Take the gold answers out of an import record (in place) and return them checked, or None.

    Accepted shapes: ``gold: {question: answer, ...}`` (JSONL, Parquet, a DataFrame), the same object as
    JSON text (a CSV cell), a bare answer when the project asks one question, or one
    ``gold.<question>`` column per question (CSV).
    """
    name = schema.gold.field
    value = record.pop(name, None)
    prefix = name + "."
    dotted = [k for k in record if k.startswith(prefix)]
    if dotted:
        if value is not None:
            raise ValidationError(f"give gold answers either as {name!r} or as {prefix}<question> columns, "
                                  "not both", field=name, file=file, line=line)
        value = {k[len(prefix):]: record.pop(k) for k in dotted}
        value = {k: v for k, v in value.items() if v is not None and v != ""}
        if not value:
            return None
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            value = parsed
        elif len(schema.questions) == 1:
            value = {schema.questions[0].name: value if parsed is None else parsed}
    elif not isinstance(value, dict) and len(schema.questions) == 1:
        value = {schema.questions[0].name: value}
    return schema.validate_gold(value, file=file, line=line)


def store_gold(conn, project_id: int, pairs: list[tuple[int, str]], user_id: int | None, now: float) -> None:
    """Mark items gold with their answers (JSON text), in the caller's transaction. Re-marking replaces
    the answers."""
    if not pairs:
        return
    conn.execute(text(
        "INSERT INTO gold (item_id, project_id, answers, created_by, created_at) VALUES (:i, :p, :a, :u, :now) "
        "ON CONFLICT (item_id) DO UPDATE SET answers = excluded.answers, created_by = excluded.created_by, "
        "created_at = excluded.created_at"),
        [{"i": i, "p": project_id, "a": a, "u": user_id, "now": now} for i, a in pairs])
    conn.execute(text(
        "UPDATE items SET is_gold = 1, target = :t, is_open = " + open_flag("n_assigned", ":t", ":t")
        + " WHERE id IN (SELECT item_id FROM gold WHERE project_id = :p) AND is_gold = 0"),
        {"t": GOLD_TARGET, "p": project_id})


def set_gold(store, project: Project, item_id: int, answers, user=None) -> dict:
    """Mark one item of ``project`` as gold with ``answers`` (a subset of its questions)."""
    from labelwright.services import audit

    clean = project.schema.validate_gold(answers)
    with store.write() as conn:
        _item_of(conn, project, item_id)
        store_gold(conn, project.id, [(item_id, dumps(clean))], getattr(user, "id", None), time.time())
        audit.record(conn, user, "gold.set", project.id, str(item_id))
    return {"item_id": item_id, "gold": clean}


def unset_gold(store, project: Project, item_id: int, user=None) -> bool:
    """Make a gold item ordinary again (its target back to the project's overlap). Returns whether it was gold."""
    from labelwright.services import audit

    with store.write() as conn:
        _item_of(conn, project, item_id)
        gone = conn.execute(text("DELETE FROM gold WHERE item_id = :i RETURNING item_id"), {"i": item_id}).first()
        conn.execute(text(
            "UPDATE items SET is_gold = 0, target = NULL, is_open = " + open_flag("n_assigned", "NULL")
            + " WHERE id = :i"),
            {"i": item_id, "o": project.overlap})
        if gone is not None:
            audit.record(conn, user, "gold.unset", project.id, str(item_id))
    return gone is not None


def _item_of(conn, project: Project, item_id: int) -> None:
    found = conn.execute(text("SELECT 1 FROM items WHERE id = :i AND project_id = :p"),
                         {"i": item_id, "p": project.id}).first()
    if found is None:
        raise NotFound(f"no item {item_id} in project {project.slug!r}")


def gold_answers(store, project: Project, conn=None) -> dict[int, dict]:
    """``{item_id: gold answers}`` for the project (owner-side code only: never served to annotators)."""
    def read(c):
        return {r[0]: loads(r[1]) for r in c.execute(
            text("SELECT item_id, answers FROM gold WHERE project_id = :p"), {"p": project.id})}
    if conn is not None:
        return read(conn)
    with store.read() as c:
        return read(c)


def answer_matches(question, answer, gold) -> bool | None:
    """Whether one answer matches the gold answer; None when the question is not checked against gold
    (free text) or either is missing. Pairwise answers are compared on their choice."""
    if answer is None or gold is None or isinstance(question, FreeText):
        return None
    return answer_label(question, answer) == answer_label(question, gold)


def matches_label(question, answer, label) -> bool | None:
    """Whether one answer agrees with an aggregated label (a consensus or majority ``label``, already in
    label form: a choice, a rating, a pairwise choice such as ``"A"``, a list for multiple choice); None
    for free text or when either is missing."""
    if answer is None or label is None or isinstance(question, FreeText):
        return None
    if isinstance(question, MultipleChoice):
        return set(answer) == set(label)
    return answer_label(question, answer) == label


def score(questions: dict, answers: dict, gold: dict) -> tuple[int, int]:
    """``(right, checked)`` for one submission's ``answers`` against an item's ``gold`` answers:
    each gold question the project asks and that can be checked (see :func:`answer_matches`) counts once.
    ``questions`` maps question name to question."""
    right = checked = 0
    for name, want in gold.items():
        ok = answer_matches(questions[name], answers.get(name), want) if name in questions else None
        if ok is not None:
            checked += 1
            right += int(ok)
    return right, checked


def gold_accuracy(schema: ProjectSchema, rows, gold: dict[int, dict]) -> dict:
    """Per annotator ``{"checked": n, "correct": k}`` over their answers to gold items.

    ``rows`` yields ``(item_id, annotator, answers)``; each gold question answered counts once."""
    questions = {q.name: q for q in schema.questions}
    out: dict = {}
    for item_id, annotator, answers in rows:
        known = gold.get(item_id)
        if not known:
            continue
        right, checked = score(questions, answers, known)
        if checked:
            entry = out.setdefault(annotator, {"checked": 0, "correct": 0})
            entry["checked"] += checked
            entry["correct"] += right
    return out


def items_in_doubt(store, project: Project, labels: dict | None = None) -> list[dict]:
    """The project's ordinary items with answers, least sure first: the candidates for gold (the owner
    settles them) or for more answers.

    Each item's doubt is its lowest consensus confidence over the categorical questions (single choice,
    rating, pairwise; over every labelled question when the project has none of those), taken from
    :func:`labelwright.services.labels.project_labels` on people's answers, so it is the confidence the
    quality page and the export show. Gold items and items nobody answered are left out. Rows:
    ``{item_id, external_id, confidence, question, label}``, ties in item order."""
    from labelwright.schema import is_categorical
    from labelwright.services.labels import project_labels

    if labels is None:
        labels = project_labels(store, project, machine=False)
    categorical = {q.name for q in project.schema.questions if is_categorical(q)}
    names = [n for n in labels if n in categorical] or list(labels)
    worst: dict[int, tuple[float, str, object]] = {}
    for name in names:
        ql = labels[name]
        for item_id, label, confidence in ql.items():
            if confidence is None or item_id in ql.special:  # gold, or a label that came another way
                continue
            if item_id not in worst or confidence < worst[item_id][0]:
                worst[item_id] = (confidence, name, label)
    if not worst:
        return []
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT id, external_id FROM items WHERE project_id = :p AND is_gold = 0"), {"p": project.id}).all()
    external = {r[0]: r[1] for r in rows}
    out = [{"item_id": i, "external_id": external[i], "confidence": round(float(c), 4), "question": q, "label": v}
           for i, (c, q, v) in worst.items() if i in external]
    out.sort(key=lambda d: (d["confidence"], d["item_id"]))
    return out


def doubt_neighbours(doubt: list[dict], item_id: int, position: int | None = None) -> dict:
    """Where ``item_id`` stands in :func:`items_in_doubt`'s list and the items before and after it:
    ``{position, of, previous, next}`` (``previous``/``next``: a row with its ``position``, or None).

    An item no longer in the list (just marked gold) keeps the ``position`` it had, so "next" is the
    item that came after it."""
    ids = [d["item_id"] for d in doubt]
    if item_id in ids:
        here = ids.index(item_id)
        before, after = here - 1, here + 1
    elif position is not None:
        here = None
        before, after = position - 1, position
    else:
        return {"position": None, "of": len(doubt), "previous": None,
                "next": {**doubt[0], "position": 0} if doubt else None}

    def at(k):
        return {**doubt[k], "position": k} if 0 <= k < len(doubt) else None
    return {"position": here, "of": len(doubt), "previous": at(before), "next": at(after)}
