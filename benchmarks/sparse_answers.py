"""The default consensus and the label model when answers are sparse: one answer per item, or a few.

    .venv/bin/python benchmarks/sparse_answers.py            # both sections, about 3 minutes on 2 cores

Sections (Markdown tables, means over 3 random draws):

* lone: each crowd dataset cut to one real answer per item (drawn at random), and to three answers on 10% or
  30% of the items and one on the rest. The default method (`labelwright.quality.aggregate`) against
  majority vote, which with one answer is the answer itself.
* mixed: the movie-review sentences of sp_sentence_polarity, the 9 polarity rules of
  `benchmarks/polarity_rules.py` and real AMT answers (Rodrigues et al.) on a share of the sentences, one per
  sentence or all of them. `LabelModel` with each class balance; accuracy over all 4,999 sentences and on
  the sentences people answered, against the people's own majority there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.polarity_rules import POLARITY_RULES
from benchmarks.quality_data import SHARED, load, markdown_table, rule_votes
from labelwright import quality as lq

CROWDS = {"D_Product": "zheng_d_product", "D_PosSent": "zheng_d_sentiment", "S_Dog": "zheng_s_dog",
          "S_Face": "zheng_s_face", "MS_Music": "ms_music_genre", "SP": "sp_sentence_polarity",
          "Bluebirds": "welinder_bluebirds", "WSD": "snow2008_wsd"}
SEEDS = 3


def lone() -> None:
    rows = []
    for name, folder in CROWDS.items():
        df, truth = load(folder)
        df = df.drop_duplicates(["task", "worker"])
        row = [name]
        for share in (0.0, 0.1, 0.3):
            ours, mv = [], []
            for seed in range(SEEDS):
                shuffled = df.sample(frac=1, random_state=seed)
                tasks = shuffled["task"].unique()
                three = set(tasks[np.random.default_rng(seed).random(len(tasks)) < share])
                cut = pd.concat([shuffled[shuffled["task"].isin(three)].groupby("task").head(3),
                                 shuffled[~shuffled["task"].isin(three)].groupby("task").head(1)])
                ours.append((lq.aggregate(cut)["label"].reindex(truth.index) == truth).mean())
                mv.append((lq.MajorityVote().fit_predict(cut).reindex(truth.index) == truth).mean())
            row += [f"{np.mean(ours):.3f}", f"{np.mean(mv):.3f}"]
        rows.append(row)
        print(f"  done {name}", file=sys.stderr, flush=True)
    print("\n### One answer per item, or three on a share of the items: the default against majority vote\n")
    print(markdown_table(["dataset", "1 per item: default", "majority vote", "3 on 10%: default", "majority vote",
                 "3 on 30%: default", "majority vote"], rows))


def mixed() -> None:
    base = SHARED / "sp_sentence_polarity"
    items = pd.read_csv(base / "items.csv")
    answers = pd.read_csv(base / "labels.csv").rename(columns={"item": "task"})
    truth = pd.read_csv(base / "truth.csv").set_index("item")["label"]
    votes = rule_votes(items, POLARITY_RULES)
    tasks = truth.index
    balances = ("votes", "estimate", "uniform")
    rows = []
    for per_item in ("1", "all"):
        for share in (0.05, 0.2, 1.0):
            got = {b: [] for b in balances}
            own = []
            for seed in range(SEEDS):
                asked = tasks[np.random.default_rng(seed).random(len(tasks)) < share]
                people = answers[answers["task"].isin(asked)]
                if per_item == "1":
                    people = people.sample(frac=1, random_state=seed).drop_duplicates("task")
                mix = pd.concat([votes, people], ignore_index=True)
                mv = lq.MajorityVote().fit_predict(people).reindex(asked)
                own.append((mv == truth[asked]).mean())
                for balance in balances:
                    model = lq.LabelModel(class_balance=balance).fit(mix, tasks=tasks, classes=[0, 1],
                                                                     people=people["worker"].unique())
                    labels = model.labels_.reindex(tasks)
                    got[balance].append(((labels == truth).mean(), (labels[asked] == truth[asked]).mean()))
            row = [f"{per_item} on {share:.0%}"]
            for balance in balances:
                row.append(f"{np.mean([a for a, _ in got[balance]]):.3f} / {np.mean([b for _, b in got[balance]]):.3f}")
            rows.append(row + [f"{np.mean(own):.3f}"])
            print(f"  done {per_item} on {share:.0%}", file=sys.stderr, flush=True)
    print("\n### Rules and real people together (sp_sentence_polarity, 9 polarity rules): all sentences / "
          "the sentences people answered\n")
    print(markdown_table(["people's answers", "LabelModel votes' share (default)", "estimated balance",
                 "uniform balance", "people's majority, answered"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="lone,mixed", help="comma-separated sections: lone, mixed")
    args = parser.parse_args()
    sections = {"lone": lone, "mixed": mixed}
    for name in args.only.split(","):
        sections[name.strip()]()


if __name__ == "__main__":
    main()
