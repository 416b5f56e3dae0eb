"""Training sets in TRL's formats, built from a project's aggregated labels.

* **Preference** (``DPOTrainer``, ``RewardTrainer``): one row per item of a pairwise question whose
  aggregated label (:func:`labelwright.services.labels.project_labels`: truth inference over every answer,
  gold where known) prefers A or B: ``{"prompt", "chosen", "rejected"}``. Ties, "both bad" and items without
  a label are left out. A text prompt gives TRL's *standard* format (strings); a ``chat`` prompt gives its
  *conversational* format (``prompt`` a list of messages, ``chosen``/``rejected`` one assistant message each).
* **Demonstrations** (``SFTTrainer``): one row per item answered on a free-text question,
  ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`` (a ``chat`` prompt gives its turns,
  ``system`` a first system message). Free text has no vote, so the answer is, in order: the gold answer, a
  reviewer's fix or accepted answer, the earliest answer (``every_answer=True``: one row per answer instead).

A project asked with a **chat** question (rate each assistant turn, rank candidate replies, rewrite a
turn) gives both sets from it instead (:mod:`labelwright.io.trl_chat`): the question named, or, with none
named, the project's one chat question when it has no pairwise (preference) or free-text (demonstration)
question.

Both are lists of plain dicts: :func:`to_jsonl` writes them (``datasets.load_dataset("json", ...)`` reads the
file back), ``datasets.Dataset.from_list`` makes a dataset of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from labelwright.errors import ValidationError
from labelwright.io import trl_chat
from labelwright.questions.chat import Chat
from labelwright.schema import ProjectSchema
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, loads

ACCEPTED = ("accepted", "fixed")


def _question(schema: ProjectSchema, qtype: str, name: str | None, what: str):
    qs = [q for q in schema.questions if q.type == qtype]
    if name is not None:
        got = [q for q in qs if q.name == name]
        if not got:
            raise ValidationError(f"no {qtype} question named {name!r}; the project's {qtype} questions: "
                                  f"{[q.name for q in qs]}", field="question")
        return got[0]
    if len(qs) != 1:
        raise ValidationError(f"{what} needs one {qtype} question; the project has {len(qs)} "
                              f"({[q.name for q in qs]}): name one with question=", field="question")
    return qs[0]


def _chat_question(schema: ProjectSchema, name: str | None, other: str) -> Chat | None:
    """The chat question a set is made from: the one named, or with none named the project's one chat
    question when it has no ``other`` (pairwise, text) question; None otherwise."""
    if name is not None:
        q = next((q for q in schema.questions if q.name == name), None)
        return q if isinstance(q, Chat) else None
    chats = [q for q in schema.questions if isinstance(q, Chat)]
    if len(chats) == 1 and not any(q.type == other for q in schema.questions):
        return chats[0]
    return None


def _prompt_field(schema: ProjectSchema, taken: set[str], name: str | None):
    if name is not None:
        try:
            return schema.field(name)
        except KeyError:
            raise ValidationError(f"no field {name!r}; fields: {[f.name for f in schema.fields]}",
                                  field="prompt") from None
    rest = [f for f in schema.fields if f.name not in taken and f.type in ("text", "markdown", "chat")]
    if len(rest) != 1:
        raise ValidationError(f"cannot tell which field is the prompt among {[f.name for f in rest]}: name it with "
                              "prompt=", field="prompt")
    return rest[0]


def _messages(value, kind: str) -> list[dict]:
    if kind == "chat":
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return [{"role": "user", "content": value}]


def preference_rows(store: Store, project: Project, *, question: str | None = None,
                    prompt: str | None = None) -> list[dict]:
    """``{"prompt", "chosen", "rejected"}`` rows for DPO and reward modelling (see the module's docstring)."""
    schema = project.schema
    chat = _chat_question(schema, question, "pairwise")
    if chat is not None:
        return trl_chat.preference_rows(store, project, chat)
    q = _question(schema, "pairwise", question, "a preference set")
    field = _prompt_field(schema, {q.a, q.b}, prompt)
    labels = project_labels(store, project).get(q.name)
    chosen_side = {item_id: label for item_id, label, _ in labels.items()} if labels is not None else {}
    rows = []
    for item_id, _ext, data_json, _anns, _key, _gold in iter_items(store, project):
        side = chosen_side.get(item_id)
        if side not in ("A", "B"):
            continue
        data = loads(data_json)
        a, b = data.get(q.a), data.get(q.b)
        chosen, rejected = (a, b) if side == "A" else (b, a)
        if field.type == "chat":
            rows.append({"prompt": _messages(data.get(field.name) or [], "chat"),
                         "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}]})
        else:
            rows.append({"prompt": data.get(field.name), "chosen": chosen, "rejected": rejected})
    return rows


def demonstration_rows(store: Store, project: Project, *, question: str | None = None, prompt: str | None = None,
                       system: str | None = None, every_answer: bool = False) -> list[dict]:
    """``{"messages": [...]}`` rows for supervised fine-tuning (see the module's docstring)."""
    schema = project.schema
    chat = _chat_question(schema, question, "text")
    if chat is not None:
        return trl_chat.demonstration_rows(store, project, chat, system=system)
    q = _question(schema, "text", question, "a demonstration set")
    field = _prompt_field(schema, {q.prefill} if q.prefill else set(), prompt)
    gold = gold_answers(store, project)
    rows = []
    for item_id, _ext, data_json, anns, _key, _gold in iter_items(store, project):
        answers = _demonstrations(q.name, anns, gold.get(item_id), every_answer)
        if not answers:
            continue
        data = loads(data_json)
        head = ([{"role": "system", "content": system}] if system else []) + _messages(data.get(field.name),
                                                                                      field.type)
        rows += [{"messages": head + [{"role": "assistant", "content": text}]} for text in answers]
    return rows


def _demonstrations(name: str, anns, gold: dict | None, every: bool) -> list[str]:
    kept = []  # (rank, order, text): gold 0, reviewed 1, any other 2
    for order, (_who, _ms, _c, _u, _rev, status, answers, fixed, _seen) in enumerate(anns):
        if status == "rejected":
            continue
        text = (loads(fixed) if fixed is not None else answers).get(name)
        if isinstance(text, str) and text.strip():
            kept.append((1 if status in ACCEPTED else 2, order, text))
    if every:
        return [text for _, _, text in sorted(kept, key=lambda k: k[1])]
    if gold is not None and isinstance(gold.get(name), str):
        return [gold[name]]
    return [min(kept)[2]] if kept else []


def to_jsonl(rows: Iterable[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)
