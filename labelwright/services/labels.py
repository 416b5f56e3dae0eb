"""Aggregated labels for a whole project: for every item and question, a label, its confidence and the
method that produced it. The export carries them; the quality summary is built on them.

* categorical questions (single choice, rating, pairwise on the choice):
  :func:`labelwright.quality.aggregate_proba`, the default truth inference (fitted on every answer to the
  question, anchored and calibrated on gold); ``confidence`` is the probability that the label is right.
* every other question type aggregates its own answers
  (:meth:`labelwright.questions.QuestionType.aggregate`); the built-ins:
* multiple choice: each option is a yes/no question aggregated the same way; the label is the options
  more likely chosen than not, and ``confidence`` the product of the per-option probabilities (the
  chance that the whole set is right, were the options independent).
* ranking: candidates ordered by mean position (Borda count); ``confidence`` is the share of annotators
  whose first choice is the label's first (an agreement, not a probability: the method says so).
* free text: no label.

Gold items get their gold answer, confidence 1, method ``gold``, for the questions gold covers. A
reviewer's fix replaces the annotator's answers here; rejected submissions are left out.
Rules (:mod:`labelwright.services.rules`) vote as annotators; their votes are left out here unless the project
turns the label model on, and then each categorical question rules answer is aggregated by
:class:`labelwright.quality.LabelModel` over people and rules together (method ``label_model``), with every
item of the project a task (an item only rules voted on gets a label too).
Truth inference needs every answer at once, so this reads the whole project's answers first, keeping only
integer codes (task, worker, label: 24 bytes an answer) of categorical answers, and what each other type
keeps of an answer (:meth:`~labelwright.questions.QuestionType.compact`: a bit mask for several choices).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from labelwright.consensus import vote
from labelwright.quality import LabelModel, aggregate_proba, select_proba
from labelwright.questions.base import QuestionType
from labelwright.schema import answer_label
from labelwright.services.autolabel import machine_labels
from labelwright.services.checks import checked_labels
from labelwright.services.gold import gold_answers
from labelwright.services.projects import Project
from labelwright.services.rules import STATUS as RULE_STATUS
from labelwright.services.rules import label_model_on, rule_user_ids
from labelwright.store import Store, loads
from labelwright.store import tables as t

GOLD_METHOD = "gold"
CHECK_METHOD = "check"  # a reviewer's label from the check queue (a suspected label error)
PEOPLE, MACHINE = "people", "machine"
LABEL_MODEL_METHOD = "label_model"  # rules and people aggregated together (docs/quality.md, "Rules as annotators")


def _entry(label, confidence: float, method: str, special: tuple | None) -> dict:
    """One item's aggregate as the export gives it: label, confidence, method and source (people/machine)."""
    if special is not None:
        return {"label": label, "confidence": confidence, "method": special[0], "source": special[1]}
    if confidence != confidence:
        return {"label": label, "confidence": 1.0, "method": GOLD_METHOD, "source": PEOPLE}
    return {"label": label, "confidence": confidence, "method": method, "source": PEOPLE}


@dataclass
class QuestionLabels:
    """One question's aggregate, as arrays sorted by item id: ``tasks[i]`` has label ``values[i]`` with
    ``confidence[i]`` (NaN for a gold item, whose label is its gold answer)."""

    method: str
    tasks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: list = field(default_factory=list)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # categorical questions, when asked for (the quality summary): the long table (task, worker, label)
    # and the posterior per task and label
    answers: pd.DataFrame | None = None
    probas: pd.DataFrame | None = None
    # items whose label came another way (a machine label, a reviewer's check): {item_id: (method, source)}
    special: dict = field(default_factory=dict)
    # why this method (truth_inference: auto), for people; None for the default
    reason: str | None = None

    def get(self, item_id: int) -> dict | None:
        i = int(np.searchsorted(self.tasks, item_id))
        if i >= len(self.tasks) or self.tasks[i] != item_id:
            return None
        return _entry(self.values[i], float(self.confidence[i]), self.method, self.special.get(item_id))

    def items(self):
        """``(item_id, label, confidence or None for gold)`` in item order."""
        for task, v, c in zip(self.tasks.tolist(), self.values, self.confidence.tolist()):
            yield task, v, (None if c != c else c)

    def with_gold(self, gold: dict) -> QuestionLabels:
        """The same labels with gold items' answers put in (confidence NaN)."""
        return self.with_labels({item_id: (label, float("nan")) for item_id, label in gold.items()})

    def with_labels(self, labels: dict, method: str | None = None, source: str = PEOPLE) -> QuestionLabels:
        """The same labels with ``{item_id: (label, confidence)}`` put in; unless ``method`` is None, those
        items are reported with that method and source."""
        if not labels:
            return self
        merged = dict(zip(self.tasks.tolist(), zip(self.values, self.confidence.tolist())))
        for item_id, value in labels.items():
            merged[item_id] = value
            if method is not None:
                self.special[item_id] = (method if isinstance(method, str) else method[item_id], source)
            else:
                self.special.pop(item_id, None)
        tasks = np.fromiter(sorted(merged), dtype=np.int64, count=len(merged))
        self.values = [merged[t][0] for t in tasks.tolist()]
        self.confidence = np.array([merged[t][1] for t in tasks.tolist()], dtype=float)
        self.tasks = tasks
        return self


class _Collected:
    """The answers one pass over the project's annotations keeps: per categorical question the integer
    codes (task, worker, label index), per other aggregated question (task, worker, the type's compact
    form of the answer). Answer dicts are not kept."""

    def __init__(self, schema):
        self.categorical = {q.name: (q, {v: i for i, v in enumerate(q.label_values())},
                                     array("q"), array("q"), array("q"))
                            for q in schema.questions if q.categorical}
        self.other: dict[str, tuple[QuestionType, array, array, list]] = {
            q.name: (q, array("q"), array("q"), []) for q in schema.questions
            if q.aggregated and not q.categorical}

    def add(self, item_id: int, user_id: int, answers: dict) -> None:
        for name, (q, codes, tasks, workers, labels) in self.categorical.items():
            code = codes.get(answer_label(q, answers.get(name)))
            if code is not None:
                tasks.append(item_id)
                workers.append(user_id)
                labels.append(code)
        self.add_slow(item_id, user_id, answers)

    def add_slow(self, item_id: int, user_id: int, answers: dict) -> None:
        """The answers of one annotation to the questions that are not categorical."""
        for name, (q, tasks, workers, values) in self.other.items():
            answer = answers.get(name)
            if answer is not None:
                tasks.append(item_id)
                workers.append(user_id)
                values.append(q.compact(answer))


def _coded(dialect: str, q, k: int, params: dict) -> str:
    """SQL giving one categorical answer's label index (-1 when missing or unknown): the database takes it
    out of the stored JSON and codes it, so only integers come back."""
    path = q.label_path()
    if dialect == "sqlite":
        value = "json_extract(COALESCE(reviewed_answers, answers), '$" + "".join(f'."{p}"' for p in path) + "')"
    else:
        value = "(COALESCE(reviewed_answers, answers)::jsonb #>> '{" + ",".join(f'"{p}"' for p in path) + "}')"
    whens = []
    for i, v in enumerate(q.label_values()):
        key = f"q{k}_{i}"
        params[key] = str(v) if dialect == "postgresql" else v  # PostgreSQL's #>> gives text
        whens.append(f"WHEN :{key} THEN {i}")
    return f"CASE {value} {' '.join(whens)} ELSE -1 END"


def _scan_hint(store: Store, cur, project_id: int) -> str:
    """``"+"`` (read the whole table in its order) when the project holds at least half of the annotations
    on SQLite, else ``""``. Through the ``project_id`` index SQLite visits the rows in the index's order
    (project, time), one random table lookup each: on a 1,000,000-answer project whose answers were not
    stored in time order that took 2 s, reading the whole table 0.1 s. PostgreSQL's planner chooses for
    itself from its statistics."""
    if store.dialect != "sqlite":
        return ""
    mine, every = cur.execute(store.sql("SELECT (SELECT count(*) FROM annotations WHERE project_id = :p), "
                                        "(SELECT count(*) FROM annotations)"), {"p": project_id}).fetchone()
    return "+" if 2 * mine >= every else ""


def collect(store: Store, project: Project, rows=None, batch: int = 100_000, *, rules: bool = True) -> _Collected:
    """One pass over the project's annotations (or over ``rows`` of ``(item_id, user_id, answers)``);
    ``rules=False`` leaves rules' votes out.

    Categorical answers are taken out of the JSON and coded by the database, so a batch arrives as one
    integer matrix; the answer JSON is parsed in Python only for the questions that are not categorical."""
    out = _Collected(project.schema)
    if rows is not None:
        left_out = set() if rules else set(rule_user_ids(store, project))
        for i, u, a in rows:
            if u not in left_out:
                out.add(i, u, a)
        return out
    cat = list(out.categorical.values())
    slow = bool(out.other)
    params: dict = {"p": project.id}
    cols = ["item_id", "user_id"] + [_coded(store.dialect, e[0], k, params) for k, e in enumerate(cat)]
    with store.read() as conn:
        cur = store.cursor(conn)
        final = "COALESCE(reviewed_answers, answers)"
        cur.execute(store.sql(f"SELECT {', '.join(cols + ([final] if slow else []))} FROM annotations "
                              f"WHERE {_scan_hint(store, cur, project.id)}project_id = :p "
                              "AND review_status <> 'rejected'"
                              + ("" if rules else f" AND review_status <> '{RULE_STATUS}'")), params)
        while chunk := cur.fetchmany(batch):
            if slow:
                for row in chunk:
                    out.add_slow(row[0], row[1], loads(row[-1]))
                chunk = [row[:-1] for row in chunk]
            m = np.array(chunk, dtype=np.int64).reshape(len(chunk), len(cols))
            for k, (_, _, tasks, workers, labels) in enumerate(cat):
                keep = m[:, 2 + k] >= 0
                tasks.frombytes(m[keep, 0].tobytes())
                workers.frombytes(m[keep, 1].tobytes())
                labels.frombytes(m[keep, 2 + k].copy().tobytes())
    return out


def _arrays(tasks, workers, labels) -> pd.DataFrame:
    return pd.DataFrame({"task": np.frombuffer(tasks, dtype=np.int64), "worker": np.frombuffer(workers, dtype=np.int64),
                         "label": np.frombuffer(labels, dtype=np.int64)})


def _from_probas(probas: pd.DataFrame, classes: list) -> QuestionLabels:
    values = probas.to_numpy()
    top = values.argmax(axis=1)
    order = np.argsort(probas.index.to_numpy(dtype=np.int64), kind="stable")
    codes = probas.columns.to_numpy()[top][order]
    return QuestionLabels(method=probas.attrs["method"], tasks=probas.index.to_numpy(dtype=np.int64)[order],
                          values=[classes[int(c)] for c in codes],
                          confidence=np.round(values[np.arange(len(top)), top], 4)[order])


def _label_model(long: pd.DataFrame, gold: dict, rules: set, all_items: list, k: int) -> pd.DataFrame:
    """The label model's posteriors over every item, people and rules (``rules``: their user ids) together."""
    people = set(long["worker"].unique().tolist()) - rules
    # the votes' share, people or not: with a few lone answers by people (the usual weak-supervision project)
    # an estimated balance drifted and overruled them (docs/quality.md, "Mixing people and rules")
    model = LabelModel(class_balance="votes")
    probas = model.fit_predict_proba(long, pd.Series(gold, dtype=object) if gold else None, tasks=all_items,
                                     people=people, classes=list(range(k)))
    probas.attrs["method"] = LABEL_MODEL_METHOD
    return probas


def _categorical(entry, gold: dict, keep: bool, rules: tuple[set, list] | None = None,
                 auto: bool = False) -> QuestionLabels:
    q, codes, tasks, workers, labels = entry
    classes = q.label_values()
    g = {i: codes[answer_label(q, ans[q.name])] for i, ans in gold.items()
         if q.name in ans and answer_label(q, ans[q.name]) in codes}
    long = _arrays(tasks, workers, labels)
    if long.empty:
        out = QuestionLabels(method="")
    else:
        if rules is not None and long["worker"].isin(rules[0]).any():
            probas = _label_model(long, g, rules[0], rules[1], len(classes))
        else:  # auto: the schema's truth_inference (quality.AutoSelect picks the method and says why)
            probas = (select_proba if auto else aggregate_proba)(long, pd.Series(g, dtype=object) if g else None)
        out = _from_probas(probas, classes)
        out.reason = probas.attrs.get("reason")
        if keep:
            named = probas.rename(columns=lambda c: classes[int(c)])
            named.attrs.update(probas.attrs)
            out.answers = long.assign(label=[classes[c] for c in long["label"].tolist()])
            out.probas = named
    return out.with_gold({i: classes[c] for i, c in g.items()})


def _item_ids(store: Store, project: Project) -> list[int]:
    i = t.items
    with store.read() as conn:
        return list(conn.execute(select(i.c.id).where(i.c.project_id == project.id).order_by(i.c.id)).scalars())


def _aggregated(entry, gold: dict) -> QuestionLabels:
    """A question that is not categorical, aggregated by its type."""
    q, tasks, workers, values = entry
    g = {i: ans[q.name] for i, ans in gold.items() if q.name in ans}
    if not values:
        return QuestionLabels(method="").with_gold(g)
    agg = q.aggregate(np.frombuffer(tasks, dtype=np.int64), np.frombuffer(workers, dtype=np.int64), values, g)
    out = QuestionLabels(method=agg.method, tasks=agg.tasks, values=agg.values, confidence=agg.confidence)
    return out.with_gold(g)


def project_labels(store: Store, project: Project, rows=None, *, keep_answers: bool = False,
                   machine: bool = True) -> dict[str, QuestionLabels]:
    """``{question name: QuestionLabels}`` for every question with a label (all but free text: every
    aggregated type).

    ``rows`` (``(item_id, user_id, answers)``) saves reading the annotations again; ``keep_answers``
    keeps each categorical question's long table and posterior (for the quality summary). A reviewer's
    label from the check queue replaces the aggregate (method ``check``); with ``machine``, the assistant's
    machine labels are put in too (source ``machine``, method the model version). Rules' votes count only
    where the project turned the label model on (then method ``label_model``)."""
    rule_ids = set(rule_user_ids(store, project))
    use_rules = bool(rule_ids) and label_model_on(store, project)
    collected = collect(store, project, rows, rules=use_rules)
    gold = gold_answers(store, project)
    rules = (rule_ids, _item_ids(store, project)) if use_rules else None
    out: dict[str, QuestionLabels] = {}
    for q in project.schema.questions:
        if q.name in collected.categorical:
            out[q.name] = _categorical(collected.categorical[q.name], gold, keep_answers, rules,
                                       auto=project.schema.truth_inference == "auto")
        elif q.name in collected.other:
            out[q.name] = _aggregated(collected.other[q.name], gold)
    if project.schema.assist is not None:
        _with_assist(store, project, out, machine)
    return out


def _with_assist(store: Store, project: Project, out: dict, machine: bool) -> None:
    q = project.schema.assist_question()
    ql = out.setdefault(q.name, QuestionLabels(method=""))
    if machine:
        got = machine_labels(store, project)
        by_machine = {i: (m["label"], m["confidence"]) for i, m in got.items() if m["audit"] != "wrong"}
        ql.with_labels(by_machine, {i: m["model"] + (", audited" if m["audit"] == "correct" else "")
                                    for i, m in got.items()}, MACHINE)
        ql.with_labels({i: (m["audited_label"], 1.0) for i, m in got.items() if m["audit"] == "wrong"},
                       "audit", PEOPLE)
    for name, labels in checked_labels(store, project).items():
        if name in out:
            out[name].with_labels({i: (v, 1.0) for i, v in labels.items()}, CHECK_METHOD, PEOPLE)


def item_labels(labels: dict[str, QuestionLabels], item_id: int) -> dict:
    """``{question: {label, confidence, method}}`` for one item (questions without a label left out)."""
    out = {}
    for name, ql in labels.items():
        got = ql.get(item_id)
        if got is not None:
            out[name] = got
    return out


class LabelWalker:
    """:func:`item_labels` for item ids asked in increasing order (the export's order), by walking each
    question's sorted arrays once instead of searching them for every item."""

    def __init__(self, labels: dict[str, QuestionLabels]):
        self.columns = [(name, ql.tasks.tolist(), ql.values, ql.confidence.tolist(), ql.method, ql.special)
                        for name, ql in labels.items()]
        self.pos = [0] * len(self.columns)

    def __call__(self, item_id: int) -> dict:
        out = {}
        for k, (name, tasks, values, conf, method, special) in enumerate(self.columns):
            i = self.pos[k]
            n = len(tasks)
            while i < n and tasks[i] < item_id:
                i += 1
            self.pos[k] = i
            if i < n and tasks[i] == item_id:
                out[name] = _entry(values[i], conf[i], method, special.get(item_id) if special else None)
        return out


def majority_of(q, answers: list) -> dict | None:
    """The plain majority of ``answers`` to ``q`` with its count: ``{label, count, n, tie}``."""
    v = vote(q, answers)
    if v is None:
        return None
    return {"label": v["label"], "count": int(round(v["agreement"] * v["n"])), "n": v["n"],
            "agreement": v["agreement"], "tie": bool(v.get("tie"))}


def item_consensus(store: Store, project: Project, item_id: int,
                   labels: dict[str, QuestionLabels] | None = None) -> dict:
    """One item's consensus per question, the same the export and the quality page give, with the plain
    majority second: ``{question: {label, confidence, method, source, majority: {label, count, n} | None}}``.

    The majority counts the answers the consensus counts (a reviewer's fix in place, rejected ones out)."""
    labels = project_labels(store, project) if labels is None else labels
    a = t.annotations
    with store.read() as conn:
        rows = conn.execute(select(func.coalesce(a.c.reviewed_answers, a.c.answers))
                            .where(a.c.item_id == item_id, a.c.project_id == project.id,
                                   a.c.review_status != "rejected").order_by(a.c.id)).scalars().all()
    answers = [loads(r) for r in rows]
    out = {}
    for q in project.schema.questions:
        ql = labels.get(q.name)
        got = ql.get(item_id) if ql is not None else None
        if got is None:
            continue
        out[q.name] = {**got, "majority": majority_of(q, [a.get(q.name) for a in answers])}
    return out
