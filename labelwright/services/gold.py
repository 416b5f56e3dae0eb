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
from sqlalchemy import ColumnElement, Connection, FromClause, delete, func, null, select

from labelwright.errors import NotFound, ValidationError
from labelwright.schema import ProjectSchema
from labelwright.services import audit
from labelwright.services.projects import Project
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t
from labelwright.store.slots import retarget
from labelwright.store.sql import upsert


def first_answers(a: FromClause = t.annotations) -> ColumnElement:
    """An annotation's first answers (``a``: the annotations table or an alias of it), labelled ``answers``:
    what gold accuracy is measured on wherever an annotator can see it or be paid for it, so amending an
    answer never changes the verdict on it."""
    r = t.annotation_revisions
    first = select(r.c.answers).where(r.c.annotation_id == a.c.id, r.c.revision == 1).scalar_subquery()
    return func.coalesce(first, a.c.answers).label("answers")

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
    return schema.validate_gold(value, file=file, line=line, item=record)


def store_gold(conn: Connection, project_id: int, pairs: list[tuple[int, str]], user_id: int | None,
               now: float) -> None:
    """Mark items gold with their answers (JSON text), in the caller's transaction. Re-marking replaces
    the answers."""
    if not pairs:
        return
    g, i = t.gold, t.items
    add = upsert(conn, g)
    conn.execute(add.on_conflict_do_update(index_elements=["item_id"], set_={
        "answers": add.excluded.answers, "created_by": add.excluded.created_by, "created_at": add.excluded.created_at}),
        [{"item_id": k, "project_id": project_id, "answers": a, "created_by": user_id, "created_at": now}
         for k, a in pairs])
    conn.execute(retarget(GOLD_TARGET, i.c.id.in_(select(g.c.item_id).where(g.c.project_id == project_id)),
                          i.c.is_gold == 0, overlap=GOLD_TARGET).values(is_gold=1))


def set_gold(store: Store, project: Project, item_id: int, answers, user=None) -> dict:
    """Mark one item of ``project`` as gold with ``answers`` (a subset of its questions)."""
    clean = project.schema.validate_gold(answers)
    with store.write() as conn:
        data = _item_of(conn, project, item_id)
        if project.schema.checks_items():
            project.schema.validate_gold(answers, item=loads(data))
        store_gold(conn, project.id, [(item_id, dumps(clean))], getattr(user, "id", None), time.time())
        audit.record(conn, user, "gold.set", project.id, str(item_id))
    return {"item_id": item_id, "gold": clean}


def unset_gold(store: Store, project: Project, item_id: int, user=None) -> bool:
    """Make a gold item ordinary again (its target back to the project's overlap). Returns whether it was gold."""
    g, i = t.gold, t.items
    with store.write() as conn:
        _item_of(conn, project, item_id)
        gone = conn.execute(delete(g).where(g.c.item_id == item_id).returning(g.c.item_id)).first()
        conn.execute(retarget(null(), i.c.id == item_id, overlap=project.overlap).values(is_gold=0))
        if gone is not None:
            audit.record(conn, user, "gold.unset", project.id, str(item_id))
    return gone is not None


def _item_of(conn: Connection, project: Project, item_id: int) -> str:
    """The item's data (JSON text); NotFound when the project has no such item."""
    i = t.items
    found = conn.execute(select(i.c.data).where(i.c.id == item_id, i.c.project_id == project.id)).first()
    if found is None:
        raise NotFound(f"no item {item_id} in project {project.slug!r}")
    return found.data


def gold_answers(store: Store, project: Project, conn: Connection | None = None) -> dict[int, dict]:
    """``{item_id: gold answers}`` for the project (owner-side code only: never served to annotators)."""
    g = t.gold

    def read(c: Connection) -> dict[int, dict]:
        return {r.item_id: loads(r.answers) for r in c.execute(
            select(g.c.item_id, g.c.answers).where(g.c.project_id == project.id))}
    if conn is not None:
        return read(conn)
    with store.read() as c:
        return read(c)


def answer_matches(question, answer, gold) -> bool | None:
    """Whether one answer matches the gold answer (its type's :meth:`~labelwright.questions.QuestionType.
    gold_score` is 1); None when the question is not checked against gold (free text) or either is
    missing. Pairwise answers are compared on their choice."""
    got = question.gold_score(answer, gold)
    return None if got is None else got >= 1.0


def matches_label(question, answer, label) -> bool | None:
    """Whether one answer agrees with an aggregated label (a consensus or majority ``label``, already in
    label form: a choice, a rating, a pairwise choice such as ``"A"``, a list for multiple choice); None
    for free text or when either is missing. Each type decides (``matches_label``)."""
    return question.matches_label(answer, label)


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
