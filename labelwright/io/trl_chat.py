"""TRL training sets from a chat question (:mod:`labelwright.questions.chat`), in TRL's conversational format.

* **Demonstrations** (``SFTTrainer``): one row per answered item, ``{"messages": [...]}``: the conversation
  with every rewritten assistant turn replaced by its best rewrite (rate mode), or the conversation before
  the candidates followed by the best-ranked candidate (rank mode).
* **Preferences** (``DPOTrainer``): ``{"prompt", "chosen", "rejected"}``, ``prompt`` the turns before the
  reply and ``chosen`` / ``rejected`` one assistant message each: in rank mode the aggregated ranking's
  first candidate against its last; in either mode, for every rewritten turn, the best rewrite against
  the turn as it was.

The best rewrite of a turn is, in order: the gold answer's, a reviewer's fix or accepted answer's, the
earliest answer's (as :mod:`labelwright.io.trl` picks a demonstration). Rejected answers never count.
:mod:`labelwright.io.trl` calls these when the question it is asked about is a chat question.
"""

from __future__ import annotations

from labelwright.questions.chat import Chat
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, loads

ACCEPTED = ("accepted", "fixed")


def _answers(q: Chat, anns, gold: dict | None) -> list[dict]:
    """The item's answers to ``q``, best first: gold, reviewed, the rest in the order they came."""
    kept = []  # (rank, order, answer)
    if gold is not None and isinstance(gold.get(q.name), dict):
        kept.append((0, -1, gold[q.name]))
    for order, (_who, _ms, _c, _u, _rev, status, answers, fixed, _seen) in enumerate(anns):
        if status == "rejected":
            continue
        answer = (loads(fixed) if fixed is not None else answers).get(q.name)
        if isinstance(answer, dict):
            kept.append((1 if status in ACCEPTED else 2, order, answer))
    return [a for _, _, a in sorted(kept, key=lambda k: (k[0], k[1]))]


def _best_rewrites(answers: list[dict]) -> dict[int, str]:
    best: dict[int, str] = {}
    for a in answers:  # best first: the first rewrite of a turn wins
        for turn, text in (a.get("rewrites") or {}).items():
            best.setdefault(int(turn), text)
    return best


def _items(store: Store, project: Project, q: Chat):
    """``(item_id, turns shown, data, answers best first)`` for every item with an answer or gold."""
    gold = gold_answers(store, project)
    for item_id, _ext, data_json, anns, _key, _gold in iter_items(store, project):
        answers = _answers(q, anns, gold.get(item_id))
        if not answers:
            continue
        data = loads(data_json)
        yield item_id, q.context(q.conversation(data)), data, answers


def _ranking(label) -> list[int] | None:
    ranking = label.get("ranking") if isinstance(label, dict) else None
    return ranking if isinstance(ranking, list) and len(ranking) >= 2 else None


def demonstration_rows(store: Store, project: Project, q: Chat, *, system: str | None = None) -> list[dict]:
    """``{"messages": [...]}`` rows for supervised fine-tuning (see the module's docstring)."""
    labels = project_labels(store, project).get(q.name) if q.mode == "rank" else None
    ranked = {i: label for i, label, _ in labels.items()} if labels is not None else {}
    rows = []
    for item_id, turns, data, answers in _items(store, project, q):
        rewrites = _best_rewrites(answers)
        messages = [{"role": t["role"], "content": rewrites.get(i, t["content"])} for i, t in enumerate(turns)]
        if q.mode == "rank":
            ranking = _ranking(ranked.get(item_id))
            if ranking is None:
                continue
            messages.append({"role": "assistant", "content": q.candidate_replies(data)[ranking[0]]})
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        rows.append({"messages": messages})
    return rows


def preference_rows(store: Store, project: Project, q: Chat) -> list[dict]:
    """``{"prompt", "chosen", "rejected"}`` rows for DPO (see the module's docstring)."""
    labels = project_labels(store, project).get(q.name) if q.mode == "rank" else None
    ranked = {i: label for i, label, _ in labels.items()} if labels is not None else {}
    rows = []
    for item_id, turns, data, answers in _items(store, project, q):
        plain = [{"role": t["role"], "content": t["content"]} for t in turns]
        ranking = _ranking(ranked.get(item_id))
        if ranking is not None:
            replies = q.candidate_replies(data)
            rows.append({"prompt": plain, "chosen": [{"role": "assistant", "content": replies[ranking[0]]}],
                         "rejected": [{"role": "assistant", "content": replies[ranking[-1]]}]})
        for turn, text in sorted(_best_rewrites(answers).items()):
            if turn == 0:  # no prompt before it
                continue
            rows.append({"prompt": plain[:turn], "chosen": [{"role": "assistant", "content": text}],
                         "rejected": [{"role": "assistant", "content": plain[turn]["content"]}]})
    return rows
