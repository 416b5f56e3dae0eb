"""Multi-turn chat: rate each assistant turn of a conversation, rank candidate replies, write a better turn.

Settings: ``field`` (a ``chat`` display field holding the conversation, default ``messages``: a list of
``{"role": "system" | "user" | "assistant", "content": "..."}``, the OpenAI / TRL chat format), ``mode``
(``rate`` or ``rank``), the scale ``min``..``max`` with optional ``labels`` (a word per point), ``rewrite``
(the annotator may write a better version of any assistant turn) and ``candidates`` (rank mode: the item
field holding the candidate replies, a list of 2 to 9 strings).

Answers (turn indices are positions in the conversation, from 0, written as JSON object keys):

* rate: ``{"ratings": {"1": 4, "3": 2}, "rewrites": {"3": "a better reply"}}``: every assistant turn
  rated (when the question is required), ``rewrites`` only with ``rewrite: true``;
* rank: ``{"ranking": [2, 0, 1]}``: the candidates' indices, best first, every one once (and
  ``rewrites`` of the conversation's assistant turns with ``rewrite: true``). The candidates are
  alternatives for the conversation's last assistant turn: when the conversation ends with an assistant
  turn, that turn is left out and the candidates take its place.

:meth:`Chat.validate_answer` checks an answer's shape and scale; :meth:`Chat.check_item` checks it against
the item's conversation (a rating of a user turn or of turn 9 of 4 is refused, naming
``<question>.ratings.<turn>``). Aggregated per turn (mean and median rating, agreement; see
:mod:`labelwright.quality.turns`), rankings by Borda count, every rewrite kept with its author. Gold scores
one minus the mean rating distance over the gold's turns, or (Kendall's tau + 1) / 2 for a ranking.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from labelwright.errors import ValidationError
from labelwright.quality.turns import borda, kendall_tau, rating_distance, rating_stats
from labelwright.questions.base import Aggregate, Form, FormValue, QuestionType, form_text, kind_of
from labelwright.questions.choice import option_key

ROLES = ("system", "user", "assistant")
MAX_CANDIDATES = 9
MAX_REWRITE = 20_000
MAX_TURNS = 500


class Chat(QuestionType):
    type: Literal["chat"]
    field: str = Field(default="messages", description="the chat display field holding the conversation")
    mode: Literal["rate", "rank"] = "rate"
    min: int = 1
    max: int = 5
    labels: list[str] | None = Field(default=None, description="a word for each point of the scale, min first")
    rewrite: bool = Field(default=False, description="the annotator may write a better version of a turn")
    candidates: str = Field(default="candidates", description="rank mode: the item field holding the "
                                                              "candidate replies (a list of strings)")

    answer_display: ClassVar[Literal["label", "list", "block"]] = "list"
    template: ClassVar[str] = "templates/chat.html"

    @model_validator(mode="after")
    def _scale(self):
        if self.max <= self.min:
            raise ValueError(f"question {self.name!r}: max ({self.max}) must be greater than min ({self.min})")
        if self.max - self.min > 9:
            raise ValueError(f"question {self.name!r}: a turn's scale has at most 10 points (one key each)")
        if self.labels is not None and len(self.labels) != self.max - self.min + 1:
            raise ValueError(f"question {self.name!r}: labels has {len(self.labels)} words for "
                             f"{self.max - self.min + 1} points ({self.min}..{self.max})")
        return self

    def field_refs(self) -> list[str]:
        return [self.field]

    def check_fields(self, fields: Collection[str]) -> None:
        super().check_fields(fields)
        f = fields.get(self.field) if isinstance(fields, Mapping) else None
        if f is not None and getattr(f, "type", "chat") != "chat":
            raise ValueError(f"question {self.name!r}: field {self.field!r} must be a chat field (type: chat), "
                             f"not {f.type}")

    def field_groups(self) -> tuple[str, list[tuple[str, str]]] | None:
        # The form partial shows the conversation with its controls; chat.css hides this copy on the form.
        return "chat-question", [(self.field, "")]

    # ---- the scale --------------------------------------------------------------------------------

    def points(self) -> list[dict]:
        """The scale's points: ``{value, label, key}`` (the key is the value on scales from 0 or 1)."""
        direct = 0 <= self.min <= 1 and self.max <= 9
        return [{"value": p, "label": self.labels[i] if self.labels else str(p),
                 "key": str(p) if direct else option_key(i)}
                for i, p in enumerate(range(self.min, self.max + 1))]

    def point_text(self, value: Any) -> str:
        if self.labels and isinstance(value, int) and self.min <= value <= self.max:
            return f"{value} ({self.labels[value - self.min]})"
        return str(value)

    # ---- answers ----------------------------------------------------------------------------------

    def validate_answer(self, value: Any) -> Any:
        main = "ratings" if self.mode == "rate" else "ranking"
        if not isinstance(value, dict):
            raise self.fail(f"expected an object {{{main}, rewrites}}, got {kind_of(value)}")
        extra = set(value) - {main, "rewrites"}
        if extra:
            raise self.fail(f"unknown keys {sorted(extra)}; a {self.mode} answer has {main}"
                            f"{' and rewrites' if self.rewrite else ''}")
        out: dict[str, Any] = {}
        if self.mode == "rate":
            out["ratings"] = self._ratings(value.get("ratings"))
        else:
            out["ranking"] = self._ranking(value.get("ranking"))
        rewrites = value.get("rewrites")
        if rewrites not in (None, {}):
            if not self.rewrite:
                raise self.fail("this question does not take rewrites (set rewrite: true in the schema)", "rewrites")
            out["rewrites"] = self._rewrites(rewrites)
        return out

    def _turn(self, key: Any, part: str) -> str:
        text = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(text, str) or not text.isascii() or not text.isdigit() or int(text) >= MAX_TURNS:
            raise self.fail(f"a turn is named by its position in the conversation (0, 1, ...), got {key!r}", part)
        return str(int(text))

    def _ratings(self, ratings: Any) -> dict:
        if not isinstance(ratings, dict) or not ratings:
            raise self.fail("rate the assistant turns: an object {turn: rating}, e.g. {\"1\": 4}, got "
                            f"{kind_of(ratings) if ratings != {} else 'no rating'}", "ratings")
        out = {}
        for key, v in ratings.items():
            turn = self._turn(key, f"ratings.{key}")
            if isinstance(v, str) and v.strip().lstrip("-").isdigit():
                v = int(v)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.fail(f"expected an integer from {self.min} to {self.max}, got {v!r}", f"ratings.{turn}")
            if not self.min <= v <= self.max:
                raise self.fail(f"{v} is outside the scale {self.min}..{self.max}", f"ratings.{turn}")
            out[turn] = v
        return dict(sorted(out.items(), key=lambda kv: int(kv[0])))

    def _ranking(self, ranking: Any) -> list[int]:
        if not isinstance(ranking, list) or len(ranking) < 2:
            raise self.fail("expected the candidates' indices best first, e.g. [2, 0, 1], got "
                            f"{kind_of(ranking)}", "ranking")
        order = [int(c) if not isinstance(c, bool) and str(c).isascii() and str(c).isdigit() else -1
                 for c in ranking]
        if sorted(order) != list(range(len(ranking))) or len(ranking) > MAX_CANDIDATES:
            raise self.fail(f"rank every candidate exactly once by its index (0 to {len(ranking) - 1}), "
                            f"got {ranking!r}", "ranking")
        return order

    def _rewrites(self, rewrites: Any) -> dict:
        if not isinstance(rewrites, dict):
            raise self.fail(f"expected an object {{turn: better text}}, got {kind_of(rewrites)}", "rewrites")
        out = {}
        for key, text in rewrites.items():
            turn = self._turn(key, f"rewrites.{key}")
            if not isinstance(text, str):
                raise self.fail(f"a rewrite is text, got {kind_of(text)}", f"rewrites.{turn}")
            text = text.replace("\r\n", "\n").strip()
            if len(text) > MAX_REWRITE:
                raise self.fail(f"a rewrite has at most {MAX_REWRITE:,} characters", f"rewrites.{turn}")
            if text:
                out[turn] = text
        return dict(sorted(out.items(), key=lambda kv: int(kv[0])))

    # ---- the item ---------------------------------------------------------------------------------

    def conversation(self, data: Mapping[str, Any]) -> list[dict]:
        """The item's turns, checked: raises :class:`ValidationError` naming ``<field>[i]`` where a turn is
        not ``{role: system|user|assistant, content: text}``."""
        turns = data.get(self.field)
        if not isinstance(turns, list) or not turns:
            raise ValidationError(f"the conversation must be a non-empty list of {{role, content}} turns, got "
                                  f"{kind_of(turns)}", field=self.field)
        if len(turns) > MAX_TURNS:
            raise ValidationError(f"a conversation has at most {MAX_TURNS} turns", field=self.field)
        for i, t in enumerate(turns):
            if not isinstance(t, dict) or t.get("role") not in ROLES or not isinstance(t.get("content"), str):
                got = t.get("role") if isinstance(t, dict) else kind_of(t)
                raise ValidationError(f"turn {i} must be {{role, content}} with role one of {list(ROLES)} and "
                                      f"content text, got role {got!r}", field=f"{self.field}[{i}]")
        return [{"role": t["role"], "content": t["content"]} for t in turns]

    def check_data(self, data: Mapping[str, Any]) -> None:
        if data.get(self.field) is None:
            return  # an optional field left out: the schema's field check has the say
        self.conversation(data)
        if self.mode == "rank":
            self.candidate_replies(data)

    def context(self, turns: list[dict]) -> list[dict]:
        """The turns shown and answered: all of them when rating; when ranking, the turns before the
        candidates (a final assistant turn is the one the candidates replace)."""
        if self.mode == "rank" and turns and turns[-1]["role"] == "assistant":
            return turns[:-1]
        return turns

    def candidate_replies(self, data: Mapping[str, Any]) -> list[str]:
        """Rank mode: the item's candidate replies, checked (``ValidationError`` naming the field)."""
        c = data.get(self.candidates)
        if not isinstance(c, list) or not 2 <= len(c) <= MAX_CANDIDATES or not all(isinstance(x, str) for x in c):
            raise ValidationError(f"the candidates must be a list of 2 to {MAX_CANDIDATES} strings, got "
                                  f"{kind_of(c)}{f' of {len(c)}' if isinstance(c, list) else ''}",
                                  field=self.candidates)
        return list(c)

    def check_item(self, answer: Any, data: Mapping[str, Any]) -> None:
        answer = self.validate_answer(answer)  # as submitted: turn keys may be numbers, "03"...
        turns = self.context(self.conversation(data))
        if self.mode == "rank":
            n = len(self.candidate_replies(data))
            if len(answer["ranking"]) != n:
                raise self.fail(f"rank all {n} candidates (indices 0 to {n - 1})", "ranking")
        for kind in ("ratings", "rewrites"):
            for key in answer.get(kind, {}):
                i = int(key)
                if i >= len(turns):
                    raise self.fail(f"turn {i} is not in the conversation, which has {len(turns)} turns "
                                    f"(0 to {len(turns) - 1})", f"{kind}.{key}")
                if turns[i]["role"] != "assistant":
                    raise self.fail(f"turn {i} is a {turns[i]['role']} turn; only assistant turns are "
                                    f"{'rated' if kind == 'ratings' else 'rewritten'}", f"{kind}.{key}")
                if kind == "rewrites" and answer[kind][key].strip() == turns[i]["content"].strip():
                    raise self.fail(f"the rewrite of turn {i} is the turn as it was; change it or leave it out",
                                    f"{kind}.{key}")
        if self.mode == "rate" and self.required:
            missing = [str(i) for i, t in enumerate(turns)
                       if t["role"] == "assistant" and str(i) not in answer["ratings"]]
            if missing:
                raise self.fail(f"rate every assistant turn: turn{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)} {'have' if len(missing) > 1 else 'has'} no rating", "ratings")

    # ---- vote, aggregation, gold ------------------------------------------------------------------

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        n = len(answers)
        if self.mode == "rank":
            order = borda([a["ranking"] for a in answers], max(len(a["ranking"]) for a in answers))
            agree = sum(1 for a in answers if a["ranking"][0] == order[0]) / n
            return {"label": {"ranking": order}, "agreement": round(agree, 4), "n": n}
        by_turn: dict[str, list[int]] = {}
        for a in answers:
            for turn, r in a.get("ratings", {}).items():
                by_turn.setdefault(turn, []).append(r)
        stats = {t: rating_stats(by_turn[t], self.min, self.max) for t in sorted(by_turn, key=int)}
        shared = [s["agreement"] for s in stats.values() if s["agreement"] is not None]
        return {"label": {"ratings": stats}, "agreement": round(sum(shared) / len(shared), 4) if shared else 1.0,
                "n": n}

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        by_item: dict[int, list[tuple[int, dict]]] = {}
        for task, worker, value in zip(tasks.tolist(), workers.tolist(), values):
            by_item.setdefault(task, []).append((worker, value))
        items = sorted(by_item)
        labels, confidence = [], []
        for i in items:
            v = self.vote([a for _, a in by_item[i]])
            assert v is not None
            label = dict(v["label"])
            rewrites: dict[str, list[dict]] = {}
            for worker, a in by_item[i]:
                for turn, text in a.get("rewrites", {}).items():
                    rewrites.setdefault(turn, []).append({"text": text, "by": worker})
            if rewrites:
                label["rewrites"] = dict(sorted(rewrites.items(), key=lambda kv: int(kv[0])))
            labels.append(label)
            confidence.append(v["agreement"])
        method = ("Borda count (confidence: share agreeing on the first place)" if self.mode == "rank" else
                  "mean and median rating per turn (confidence: mean rating agreement over turns)")
        return Aggregate(method=method, tasks=np.array(items, dtype=np.int64), values=labels,
                         confidence=np.array(confidence, dtype=float))

    def gold_score(self, answer: Any, truth: Any) -> float | None:
        if answer is None or truth is None:
            return None
        if self.mode == "rank":
            a, t = answer.get("ranking"), truth.get("ranking")
            if not a or not t or sorted(a) != sorted(t):
                return 0.0
            return round((kendall_tau(a, t) + 1) / 2, 4)
        gold = truth.get("ratings") or {}
        if not gold:
            return None
        given = answer.get("ratings") or {}
        close = [1 - rating_distance(given[t], r, self.min, self.max) if t in given else 0.0
                 for t, r in gold.items()]
        return round(sum(close) / len(close), 4)

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        if answer is None or label is None:
            return None
        if self.mode == "rank":
            return bool(answer.get("ranking")) and answer["ranking"][:1] == (label.get("ranking") or [])[:1]
        wanted = {t: (s["median"] if isinstance(s, dict) else s) for t, s in (label.get("ratings") or {}).items()}
        given = answer.get("ratings") or {}
        return bool(wanted) and all(t in given and abs(given[t] - m) < 1 for t, m in wanted.items())

    # ---- the form ---------------------------------------------------------------------------------

    def parse_form(self, form: Form) -> FormValue | None:
        # The partial sends how many turns and candidates it showed (<name>.turns, <name>.candidates).
        counts = [form_text(form.get(f"{self.name}.{k}")).strip() for k in ("turns", "candidates")]
        if not all(c.isascii() and c.isdigit() for c in counts):
            return None
        turns, candidates = min(int(counts[0]), MAX_TURNS), min(int(counts[1]), MAX_CANDIDATES)
        state: dict[str, Any] = {"ratings": {}, "rewrites": {}, "ranks": {}}
        for n in range(turns):
            rating = form_text(form.get(f"{self.name}.rate.{n}")).strip()
            if rating:
                state["ratings"][str(n)] = rating
            text = form_text(form.get(f"{self.name}.rewrite.{n}"))
            if text.strip():
                state["rewrites"][str(n)] = text
        for c in range(candidates):
            state["ranks"][str(c)] = form_text(form.get(f"{self.name}.rank.{c}")).strip()
        out = FormValue(state=state)
        answer: dict[str, Any] = {}
        if self.mode == "rate" and state["ratings"]:
            answer["ratings"] = dict(state["ratings"])
        if self.mode == "rank":
            given = {int(c): int(p) for c, p in state["ranks"].items() if p.isascii() and p.isdigit() and len(p) < 4}
            if given:
                if len(set(given.values())) != len(given):
                    out.error = "each place can be given to one candidate only"
                answer["ranking"] = sorted(given, key=given.__getitem__)
        if state["rewrites"]:
            answer["rewrites"] = dict(state["rewrites"])
        if answer:
            out.answer = answer
        return out

    def form_state(self, answer: Any) -> Any:
        return {"ratings": {t: str(r) for t, r in answer.get("ratings", {}).items()},
                "rewrites": dict(answer.get("rewrites", {})),
                "ranks": {str(c): str(p + 1) for p, c in enumerate(answer.get("ranking", []))}}

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        state = state or {"ratings": {}, "rewrites": {}, "ranks": {}}
        problem, turns, candidates = None, [], []
        try:
            turns = self.context(self.conversation(data))
            if self.mode == "rank":
                candidates = self.candidate_replies(data)
        except ValidationError as e:  # an item imported before the question's checks: say what is wrong
            problem = f"This item cannot be answered here: {e.field}: {e.message}"
        return {"state": state, "problem": problem, "points": self.points(),
                "turns": [{"index": str(i), "role": t["role"], "content": t["content"],
                           "rating": state["ratings"].get(str(i), ""),
                           "rewrite": state["rewrites"].get(str(i))} for i, t in enumerate(turns)],
                "candidates": [{"index": str(c), "content": text, "key": option_key(c),
                                "title": f"Reply {c + 1}"} for c, text in enumerate(candidates)],
                "places": [str(p + 1) for p in range(len(candidates))],
                "field_title": titles.get(self.field, self.field)}

    # ---- showing ----------------------------------------------------------------------------------

    def label_text(self, label: Any) -> str:
        """An aggregated label in words: ``turn 2: median 2.5, mean 2.5 (agreement 0.25 of 2); ...``, or the
        ranking (``reply 2 > reply 1``); a gold answer as :meth:`answer_text` reads it."""
        if not isinstance(label, dict):
            return str(label)
        parts = []
        if isinstance(label.get("ranking"), list):
            parts.append(" > ".join(f"reply {c + 1}" for c in label["ranking"]))
        for turn, r in (label.get("ratings") or {}).items():
            if isinstance(r, dict):
                agree = "" if r.get("agreement") is None else f", agreement {r['agreement']}"
                parts.append(f"turn {turn}: median {r.get('median')}, mean {r.get('mean')} "
                             f"({r.get('n')} ratings{agree})")
            else:
                parts.append(f"turn {turn}: {self.point_text(r)}")
        for turn, texts in (label.get("rewrites") or {}).items():
            n = len(texts) if isinstance(texts, list) else 1
            parts.append(f"turn {turn}: {n} rewrite{'s' if n != 1 else ''}")
        return "; ".join(parts)

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        parts = []
        if "ranking" in answer:
            parts.append(" > ".join(f"reply {c + 1}" for c in answer["ranking"]))
        for turn, r in answer.get("ratings", {}).items():
            parts.append(f"turn {turn}: {self.point_text(r)}")
        for turn, text in answer.get("rewrites", {}).items():
            short = text if len(text) <= 120 else text[:119] + "…"
            parts.append(f"turn {turn} rewritten: {short}")
        return {"text": "; ".join(parts), "parts": parts, "rationale": None}


__all__ = ["ROLES", "Chat"]
