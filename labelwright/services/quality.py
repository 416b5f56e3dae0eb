"""A project's quality summary: agreement per question, consensus labels with confidence, a confusion
matrix per question, an annotator table (gold accuracy, estimated skill, agreement, speed, likely
spammers, paused), and the items in most doubt.

The consensus is :func:`labelwright.services.labels.project_labels` (the export's aggregated labels:
truth inference from :mod:`labelwright.quality`, anchored on gold). The CLI (``labelwright quality``), the
API (``GET /api/v1/projects/{p}/quality``) and the owner's quality page show it. Questions with
categorical answers are summarised: single choice, rating (agreement as ordinal Krippendorff's alpha) and
pairwise (on the choice). Multiple choice and rankings are aggregated in the export only; free text is
not aggregated.

An annotator's *skill* is the mean posterior probability of the labels they gave (what the aggregate
believes their answers are worth); *gold accuracy* counts their answers to gold items that match the
gold answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Set
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from labelwright.quality import fleiss_kappa, krippendorff_alpha, percent_agreement
from labelwright.quality.errors import QualityInputError
from labelwright.services import pauses, redundancy
from labelwright.services.gold import gold_accuracy, gold_answers
from labelwright.services.labels import majority_of, project_labels
from labelwright.services.machines import machine_user_ids
from labelwright.services.projects import Project
from labelwright.services.rules import analysis as rules_analysis
from labelwright.services.rules import rule_user_ids
from labelwright.services.suggestions import per_annotator, rubber_stamping
from labelwright.services.suggestions import report as suggestions_report
from labelwright.store import Store, loads
from labelwright.store import tables as t
from labelwright.timefmt import DAY

# An annotator is flagged when, over at least MIN_ANSWERS answers, their estimated skill is within
# CHANCE_MARGIN of chance, or over at least MIN_GOLD_CHECKS gold answers their gold accuracy is, or their
# median time per item is under FAST_SHARE of the annotators' median.
MIN_ANSWERS = 10
MIN_GOLD_CHECKS = 5
CHANCE_MARGIN = 0.1
FAST_SHARE = 0.25


def load_answers(store: Store, project: Project) -> pd.DataFrame:
    """One row per annotation that counts (rejected ones left out; a reviewer's fix in place of the
    answers): item_id, external_id, user_id, annotator, answers (dict), active_ms."""
    a, i, u = t.annotations, t.items, t.users
    with store.read() as conn:
        rows = conn.execute(select(a.c.item_id, i.c.external_id, a.c.user_id, u.c.name,
                                   func.coalesce(a.c.reviewed_answers, a.c.answers).label("answers"),
                                   a.c.active_ms, a.c.created_at)
                            .select_from(a.join(i, i.c.id == a.c.item_id).join(u, u.c.id == a.c.user_id))
                            .where(a.c.project_id == project.id, a.c.review_status != "rejected")
                            .order_by(a.c.item_id, a.c.id)).all()
    return pd.DataFrame([(r.item_id, r.external_id, r.user_id, r.name, loads(r.answers), r.active_ms, r.created_at)
                         for r in rows],
                        columns=["item_id", "external_id", "user_id", "annotator", "answers", "active_ms",
                                 "created_at"])


def project_quality(store: Store, project: Project, *, doubt_limit: int = 20) -> dict:
    ann = load_answers(store, project)
    gold = gold_answers(store, project)
    out: dict[str, Any] = {"project": project.slug, "annotations": len(ann), "gold_items": len(gold), "questions": [],
           "annotators": [], "items_in_doubt": []}
    if project.schema.assist is not None and project.schema.assist.suggestions:
        out["suggestions"] = suggestions_report(store, project)  # the anchoring control's gold accuracy per arm
    rule_ids = set(rule_user_ids(store, project))
    if rule_ids:
        out["rules"] = rules_analysis(store, project)  # the rules' analysis table (services/rules.py)
    if project.schema.redundancy is not None:
        out["redundancy"] = redundancy.report(store, project)  # the stopping rule in use (services/redundancy.py)
    if ann.empty:
        out["annotators"] = _paused_rows([], pauses.paused(store, project))
        return out
    # People's answers only: machine labels (items nobody answered) are the assist page's business.
    labels = project_labels(store, project, rows=zip(ann["item_id"], ann["user_id"], ann["answers"]), machine=False,
                            keep_answers=True)
    names = dict(zip(ann["user_id"], ann["annotator"]))
    per_worker: dict[str, dict] = {}
    doubt_rows = []
    for q in project.schema.questions:
        if not q.categorical:
            out["questions"].append({"name": q.name, "type": q.type, "summarised": False,
                                     "reason": f"{q.type} answers are not aggregated"
                                     if not q.aggregated else
                                     f"{q.type} answers are aggregated in the export, not summarised here"})
            continue
        ql = labels[q.name]
        long, probas = ql.answers, ql.probas
        if long is None or probas is None or long.empty:  # None: nobody answered it (an optional question)
            out["questions"].append({"name": q.name, "type": q.type, "summarised": False, "answers": 0,
                                     "items": 0, "reason": "no answers yet"})
            continue
        entry: dict[str, Any] = {"name": q.name, "type": q.type, "summarised": True, "answers": len(long),
                                 "items": int(long["task"].nunique())}
        order = q.label_values()
        level: Literal["ordinal", "nominal"] = q.agreement_level
        # items nobody answered or voted on: the label model labels them too, from the class balance and the
        # rules' silence; they are no one's answers to summarise or to settle (the queue serves them anyway)
        answered = set(long["task"].tolist())
        conf = pd.Series({t: c for t, _, c in ql.items() if c is not None and t in answered}, dtype=float)
        entry["method"] = ql.method
        entry["method_reason"] = ql.reason  # truth_inference: auto says why it chose the method
        entry["mean_confidence"] = round(float(conf.mean()), 4) if len(conf) else None
        multi = long.groupby("task")["label"].transform("size") >= 2
        try:
            entry["percent_agreement"] = round(percent_agreement(long[multi]), 4) if multi.any() else None
            entry["fleiss_kappa"] = _num(fleiss_kappa(long[multi])) if multi.any() else None
            entry["krippendorff_alpha"] = _num(krippendorff_alpha(long, level=level, order=order)) \
                if multi.any() else None
            entry["alpha_level"] = level
        except QualityInputError as e:
            entry["agreement_note"] = str(e)
        consensus = pd.Series(ql.values, index=ql.tasks, dtype=object)
        merged = long.assign(consensus=long["task"].map(consensus))
        shown = [v for v in order if v in set(merged["label"]) | set(merged["consensus"])]
        matrix = pd.crosstab(merged["consensus"], merged["label"]).reindex(index=shown, columns=shown,
                                                                           fill_value=0)
        entry["confusion"] = {"labels": shown, "rows": "consensus", "columns": "answer",
                              "counts": matrix.astype(int).to_numpy().tolist()}
        entry["agreement_by_day"] = _agreement_by_day(ann, long, merged)
        out["questions"].append(entry)
        # a worker's skill: the mean posterior probability of the labels they gave
        rows = probas.index.get_indexer(long["task"])
        cols = probas.columns.get_indexer(long["label"])
        ok = (rows >= 0) & (cols >= 0)
        p_right = np.zeros(len(long))
        p_right[ok] = probas.to_numpy()[rows[ok], cols[ok]]
        stats = pd.DataFrame({"worker": long["worker"].to_numpy(), "p": p_right,
                              "agree": (merged["label"] == merged["consensus"]).to_numpy()})
        for worker, g in stats.groupby("worker"):
            w = per_worker.setdefault(names[worker], {"agree": 0, "compared": 0, "p": 0.0, "chance": []})
            w["agree"] += int(g["agree"].sum())
            w["compared"] += len(g)
            w["p"] += float(g["p"].sum())
            w["chance"].append(1 / max(len(order), 1))
        open_items = conf[~conf.index.isin(list(gold))].sort_values().head(doubt_limit)
        by_item = ann.groupby("item_id")
        for task, c in open_items.items():
            rows_i = by_item.get_group(task)
            label = ql.get(task)  # there is one: conf's items are ql's
            doubt_rows.append({
                "item_id": int(task), "external_id": rows_i["external_id"].iloc[0], "question": q.name,
                "label": label["label"] if label is not None else None, "confidence": round(float(c), 4),
                "majority": majority_of(q, [ans.get(q.name) for uid, ans in zip(rows_i["user_id"], rows_i["answers"])
                                            if uid not in rule_ids]),  # people's: a rule's vote is no answer
                "answers": [{"annotator": a, "answer": ans.get(q.name)}
                            for a, ans in zip(rows_i["annotator"], rows_i["answers"])],
            })
    out["items_in_doubt"] = sorted(doubt_rows, key=lambda d: d["confidence"])[:doubt_limit]
    checked = gold_accuracy(project.schema, zip(ann["item_id"], ann["annotator"], ann["answers"]), gold)
    machine_ids = machine_user_ids(store, project)
    machines = {name for uid, name in names.items() if uid in machine_ids}
    stamps = {}
    if project.schema.assist is not None and project.schema.assist.suggestions:
        stamps = {names[uid]: c for uid, c in per_annotator(store, project).items() if uid in names}
    paused = pauses.paused(store, project)
    table = _annotator_table(ann, per_worker, checked, paused, machines, stamps)
    out["annotators"] = table + _paused_rows(table, paused, machines)
    return out


def _paused_rows(table: list[dict], paused: dict, machines: Set[str] = frozenset()) -> list[dict]:
    """Rows for the paused annotators who have no answer in the project (paused from the API or the command
    line before answering): listed, so that a manager can see them and resume them from the page."""
    listed = {row["annotator"] for row in table}
    return [{"annotator": name, "annotations": 0, "suggestions_accepted": None, "gold_checked": 0,
             "gold_accuracy": None, "skill": None, "agreement_with_consensus": None, "median_seconds": None,
             "likely_spammer": False, "reasons": [], "paused": True, "pause_reason": info.get("reason"),
             "machine": name in machines} for name, info in paused.items() if name not in listed]


def _annotator_table(ann: pd.DataFrame, per_worker: dict, gold: dict, paused: dict,
                     machines: Set[str] = frozenset(), stamps: dict | None = None) -> list[dict]:
    seconds = ann.groupby("annotator")["active_ms"].median() / 1000
    people = [v for k, v in seconds.items() if k not in machines]  # a machine's speed is no yardstick
    overall = statistics.median(people) if people else 0
    table = []
    for name, group in ann.groupby("annotator"):
        w = per_worker.get(name, {"agree": 0, "compared": 0, "p": 0.0, "chance": []})
        agreement = w["agree"] / w["compared"] if w["compared"] else None
        skill = w["p"] / w["compared"] if w["compared"] else None
        chance = statistics.mean(w["chance"]) if w["chance"] else None
        g = gold.get(name)
        gold_acc = g["correct"] / g["checked"] if g else None
        reasons = []
        if len(group) >= MIN_ANSWERS and skill is not None and chance is not None \
                and skill <= chance + CHANCE_MARGIN:
            reasons.append(f"estimated skill {skill:.0%}, near chance ({chance:.0%})")
        if g and g["checked"] >= MIN_GOLD_CHECKS and chance is not None and gold_acc <= chance + CHANCE_MARGIN:
            reasons.append(f"right on {gold_acc:.0%} of {g['checked']} gold answers (chance {chance:.0%})")
        med = float(seconds.get(name, 0))
        if name not in machines and len(group) >= MIN_ANSWERS and overall > 0 and med < FAST_SHARE * overall:
            reasons.append(f"median {med:.1f} s per item against {overall:.1f} s for the team")
        stamp = (stamps or {}).get(name)
        if (why := rubber_stamping(stamp)) is not None:
            reasons.append(why)
        table.append({"annotator": name, "annotations": len(group),
                      "suggestions_accepted": None if not stamp else round(stamp["accepted"] / stamp["shown"], 4),
                      "gold_checked": g["checked"] if g else 0,
                      "gold_accuracy": None if gold_acc is None else round(gold_acc, 4),
                      "skill": None if skill is None else round(skill, 4),
                      "agreement_with_consensus": None if agreement is None else round(agreement, 4),
                      "median_seconds": round(med, 2), "likely_spammer": bool(reasons), "reasons": reasons,
                      "paused": name in paused, "pause_reason": (paused.get(name) or {}).get("reason"),
                      "machine": name in machines})
    table.sort(key=lambda r: (not r["likely_spammer"], -(r["annotations"])))
    return table


def _agreement_by_day(ann: pd.DataFrame, long: pd.DataFrame, merged: pd.DataFrame) -> list[dict]:
    """Per UTC day the answers were given: how many, and the share that agrees with the consensus."""
    when = ann.drop_duplicates(["item_id", "user_id"]).set_index(["item_id", "user_id"])["created_at"]
    keys = pd.MultiIndex.from_arrays([long["task"].to_numpy(), long["worker"].to_numpy()])
    at = pd.to_numeric(when.reindex(keys).to_numpy(), errors="coerce")
    day = pd.to_datetime(at, unit="s", utc=True).strftime(DAY)
    frame = pd.DataFrame({"day": day, "agree": (merged["label"] == merged["consensus"]).to_numpy()})
    frame = frame[frame["day"].notna()]
    return [{"day": d, "answers": int(len(g)), "agreement": round(float(g["agree"].mean()), 4)}
            for d, g in frame.groupby("day")]


def _num(x):
    x = float(x)
    return None if x != x else round(x, 4)
