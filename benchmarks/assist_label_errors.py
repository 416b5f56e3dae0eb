"""How many suspected label errors reach reviewers when every label is right (false alarms), by the bar on the
model's probability for the other label (labelwright.services.checks.MIN_SUGGESTED_PROBA).

    .venv/bin/python benchmarks/assist_label_errors.py [--sets youtube_spam,trec_question_classification]
        [--items 3000] [--bars 0,0.7]

For each set and bar, on a fresh SQLite file, through the services in process: a single-choice project with
``assist: {retrain_every: 200}`` (builtin model, TF-IDF), the first ``--items`` items, one annotator answering 300
items a round from the ground truth, then an assistant step, 8 rounds. Every label-error check is a false alarm
(the people's label is the dataset's own truth, whose errors, if any, count against the bar too).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelwright.services import access, assistant, checks, queue, users  # noqa: E402
from labelwright.services.items import add_items  # noqa: E402
from labelwright.services.projects import create_project  # noqa: E402
from labelwright.store import Store  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def run(name: str, bar: float, n_items: int, rounds: int = 8, per_round: int = 300) -> tuple[int, int]:
    checks.MIN_SUGGESTED_PROBA = bar
    items = pd.read_csv(SHARED / name / "items.csv", dtype={"item": str})
    if "label" not in items:
        items = items.merge(pd.read_csv(SHARED / name / "truth.csv", dtype={"item": str}), on="item")
    items = items.head(n_items)
    truth = dict(zip(items.text, items.label.astype(str)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{os.path.join(tmp, 'le.db')}")
        store.migrate()
        owner = users.create_user(store, "owner", "owner")
        p = create_project(store, {
            "name": name, "slug": "le", "overlap": 1, "id_field": "id", "fields": [{"name": "text"}],
            "questions": [{"name": "c", "type": "single_choice", "options": sorted(set(truth.values()))}],
            "assist": {"retrain_every": 200, "features": "tfidf"}}, created_by=owner.id)
        add_items(store, p, [{"id": r.item, "text": r.text} for r in items.itertuples()])
        annotator = users.create_user(store, "a")
        access.set_member(store, p, "a", "annotator")
        assistant.step(store, p)
        flagged = labelled = 0
        for _ in range(rounds):
            for _ in range(per_round):
                item = queue.claim_next(store, p, annotator)
                if item is None:
                    break
                queue.submit(store, item["id"], annotator, {"c": truth[item["data"]["text"]]})
                labelled += 1
            flagged += assistant.step(store, p).label_errors
        store.close()
    return flagged, labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="youtube_spam,trec_question_classification", help="shared datasets")
    parser.add_argument("--items", type=int, default=3000, help="first N items of each set")
    parser.add_argument("--bars", default="0,0.7", help="comma-separated values of MIN_SUGGESTED_PROBA")
    args = parser.parse_args()
    print("| Set | Bar | False alarms | Labels |\n|---|---:|---:|---:|")
    for name in args.sets.split(","):
        for bar in (float(b) for b in args.bars.split(",")):
            flagged, labelled = run(name, bar, args.items)
            print(f"| {name} | {bar:g} | {flagged} | {labelled:,} |", flush=True)


if __name__ == "__main__":
    main()
