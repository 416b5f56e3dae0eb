"""A project's quality summary: agreement per question, consensus labels with confidence, a confusion
matrix per question, an annotator table with likely spammers, and the items in most doubt.

It reads the project's annotations and hands them to :mod:`labelwright.quality` (the pure library); the
CLI (``labelwright quality``) and the API (``GET /api/v1/projects/{p}/quality``) print and serve it.
Questions with categorical answers are summarised: single choice, rating (agreement as ordinal
Krippendorff's alpha) and pairwise (on the choice). Free text, multiple choice and rankings are listed
as not summarised.
"""

from __future__ import annotations

import statistics

import pandas as pd
from sqlalchemy import text

from labelwright.quality import aggregate, fleiss_kappa, krippendorff_alpha, percent_agreement
from labelwright.quality.errors import QualityInputError
from labelwright.schema import Pairwise, PAIRWISE_CHOICES, Rating, SingleChoice, MultipleChoice
from labelwright.services.projects import Project
from labelwright.store import loads

# An annotator is flagged when, over at least MIN_ANSWERS answers, their agreement with the consensus is
# within CHANCE_MARGIN of chance, or their median time per item is under FAST_SHARE of the annotators'
# median.
MIN_ANSWERS = 10
CHANCE_MARGIN = 0.1
FAST_SHARE = 0.25


def _categorical(question) -> tuple[list, str] | None:
    """(label order, Krippendorff level) for a question the library can aggregate, else None."""
    if isinstance(question, MultipleChoice):
        return None
    if isinstance(question, SingleChoice):
        return question.values, "nominal"
    if isinstance(question, Rating):
        return list(range(question.min, question.max + 1)), "ordinal"
    if isinstance(question, Pairwise):
        return list(PAIRWISE_CHOICES), "nominal"
    return None


def _answer_value(question, answer):
    return answer["choice"] if isinstance(question, Pairwise) else answer


def load_answers(store, project: Project) -> pd.DataFrame:
    """One row per annotation: item_id, external_id, annotator, answers (dict), active_ms."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT a.item_id, i.external_id, u.name, a.answers, a.active_ms FROM annotations a "
            "JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.user_id "
            "WHERE a.project_id = :p ORDER BY a.item_id, a.id"), {"p": project.id}).all()
    return pd.DataFrame([(r[0], r[1], r[2], loads(r[3]), r[4]) for r in rows],
                        columns=["item_id", "external_id", "annotator", "answers", "active_ms"])


def project_quality(store, project: Project, *, doubt_limit: int = 20) -> dict:
    ann = load_answers(store, project)
    out = {"project": project.slug, "annotations": len(ann), "questions": [], "annotators": [],
           "items_in_doubt": []}
    if ann.empty:
        return out
    per_worker: dict[str, dict] = {}
    doubt_rows = []
    for q in project.schema.questions:
        cat = _categorical(q)
        if cat is None:
            out["questions"].append({"name": q.name, "type": q.type, "summarised": False,
                                     "reason": f"{q.type} answers are not aggregated"})
            continue
        order, level = cat
        long = pd.DataFrame({
            "task": ann["item_id"],
            "worker": ann["annotator"],
            "label": [_answer_value(q, a[q.name]) if a.get(q.name) is not None else None for a in ann["answers"]],
        }).dropna(subset=["label"])
        entry = {"name": q.name, "type": q.type, "summarised": True, "answers": len(long),
                 "items": int(long["task"].nunique())}
        if long.empty:
            entry.update(summarised=False, reason="no answers yet")
            out["questions"].append(entry)
            continue
        result = aggregate(long, kind="categorical")
        entry["method"] = result.attrs.get("method", "")
        entry["mean_confidence"] = round(float(result["confidence"].mean()), 4)
        multi = long.groupby("task")["label"].transform("size") >= 2
        try:
            entry["percent_agreement"] = round(percent_agreement(long[multi]), 4) if multi.any() else None
            entry["fleiss_kappa"] = _num(fleiss_kappa(long[multi])) if multi.any() else None
            entry["krippendorff_alpha"] = _num(krippendorff_alpha(long, level=level, order=order)) \
                if multi.any() else None
            entry["alpha_level"] = level
        except QualityInputError as e:
            entry["agreement_note"] = str(e)
        consensus = result["label"]
        merged = long.assign(consensus=long["task"].map(consensus))
        labels = [v for v in order if v in set(merged["label"]) | set(merged["consensus"])]
        matrix = pd.crosstab(merged["consensus"], merged["label"]).reindex(index=labels, columns=labels,
                                                                           fill_value=0)
        entry["confusion"] = {"labels": labels, "rows": "consensus", "columns": "answer",
                              "counts": matrix.astype(int).to_numpy().tolist()}
        out["questions"].append(entry)
        agree = (merged["label"] == merged["consensus"]).groupby(merged["worker"]).agg(["sum", "size"])
        for worker, row in agree.iterrows():
            w = per_worker.setdefault(worker, {"agree": 0, "compared": 0, "chance": []})
            w["agree"] += int(row["sum"])
            w["compared"] += int(row["size"])
            w["chance"].append(1 / max(len(order), 1))
        worst = result.sort_values("confidence").head(doubt_limit)
        for task, r in worst.iterrows():
            rows = ann[ann["item_id"] == task]
            doubt_rows.append({
                "item_id": int(task), "external_id": rows["external_id"].iloc[0], "question": q.name,
                "label": _plain(r["label"]), "confidence": round(float(r["confidence"]), 4),
                "answers": [{"annotator": a, "answer": ans.get(q.name)}
                            for a, ans in zip(rows["annotator"], rows["answers"])],
            })
    out["items_in_doubt"] = sorted(doubt_rows, key=lambda d: d["confidence"])[:doubt_limit]
    out["annotators"] = _annotator_table(ann, per_worker)
    return out


def _annotator_table(ann: pd.DataFrame, per_worker: dict) -> list[dict]:
    seconds = ann.groupby("annotator")["active_ms"].median() / 1000
    overall = statistics.median(seconds.tolist()) if len(seconds) else 0
    table = []
    for name, group in ann.groupby("annotator"):
        w = per_worker.get(name, {"agree": 0, "compared": 0, "chance": []})
        agreement = w["agree"] / w["compared"] if w["compared"] else None
        chance = statistics.mean(w["chance"]) if w["chance"] else None
        reasons = []
        if len(group) >= MIN_ANSWERS and agreement is not None and chance is not None \
                and agreement <= chance + CHANCE_MARGIN:
            reasons.append(f"agrees with the consensus {agreement:.0%} of the time (chance {chance:.0%})")
        med = float(seconds.get(name, 0))
        if len(group) >= MIN_ANSWERS and overall > 0 and med < FAST_SHARE * overall:
            reasons.append(f"median {med:.1f} s per item against {overall:.1f} s for the team")
        table.append({"annotator": name, "annotations": len(group),
                      "agreement_with_consensus": None if agreement is None else round(agreement, 4),
                      "median_seconds": round(med, 2), "likely_spammer": bool(reasons), "reasons": reasons})
    table.sort(key=lambda r: (not r["likely_spammer"], -(r["annotations"])))
    return table


def _num(x):
    x = float(x)
    return None if x != x else round(x, 4)


def _plain(v):
    return v.item() if hasattr(v, "item") else v
