"""Loaders for the shared crowdsourcing datasets, as (answers, truth) in crowd-kit's long format.

``answers`` has columns task, worker, label; ``truth`` is a Series from task to true label, restricted to
tasks that have answers. Labels are kept as the strings of the files (classes compare as equal strings).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

SHARED = Path(os.environ.get("LABELWRIGHT_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"

# name in the tables -> folder; published anchors (crowd-kit, JOSS 2024) where they exist
CATEGORICAL = {
    "D_Product": "zheng_d_product",
    "D_PosSent": "zheng_d_sentiment",
    "S_Rel": "zheng_s_relevance",
    "S_Adult": "zheng_s_adult",
    "S_Dog": "zheng_s_dog",
    "S_Face": "zheng_s_face",
    "Bluebirds": "welinder_bluebirds",
    "WSD": "snow2008_wsd",
    "SP": "sp_sentence_polarity",
    "MS_Music": "ms_music_genre",
}
PUBLISHED = {  # method -> dataset -> accuracy, from PUBLISHED.md
    "MV": {"D_Product": .897, "D_PosSent": .932, "S_Rel": .536, "S_Adult": .763},
    "Wawa": {"D_Product": .897, "D_PosSent": .951, "S_Rel": .557, "S_Adult": .766},
    "DS": {"D_Product": .940, "D_PosSent": .960, "S_Rel": .615, "S_Adult": .748},
    "GLAD": {"D_Product": .928, "D_PosSent": .948, "S_Rel": .511, "S_Adult": .760},
    "MACE": {"D_Product": .929, "D_PosSent": .950, "S_Rel": .501, "S_Adult": .763},
}
BEST_PUBLISHED = {"D_Product": .940, "D_PosSent": .960, "S_Rel": .615, "S_Adult": .766}
AFFECT_TASKS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "valence", "wordsim")


def _read(path: Path, numeric: bool) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if numeric:
        df["label"] = df["label"].astype(float)
    elif df["label"].str.fullmatch(r"-?\d+").all():
        df["label"] = df["label"].astype(int)  # class ids sort as numbers (so "10" comes after "9")
    return df


def load(folder: str, numeric: bool = False, suffix: str = "") -> tuple[pd.DataFrame, pd.Series]:
    base = SHARED / folder
    answers = _read(base / f"labels{suffix}.csv", numeric).rename(columns={"item": "task"})
    truth = _read(base / f"truth{suffix}.csv", numeric).set_index("item")["label"]
    truth.index.name = "task"
    truth = truth[truth.index.isin(set(answers["task"]))]
    return answers[["task", "worker", "label"]], truth


def load_pairs() -> pd.DataFrame:
    """PandaLM votes as worker, left, right, label (label = the winning response id, or "tie"), plus models."""
    pairs = pd.read_csv(SHARED / "pandalm_pairwise" / "pairs.csv", dtype=str)
    info = pd.read_csv(SHARED / "pandalm_pairwise" / "pair_info.csv", dtype=str).set_index("pair")
    winner = pairs["label"].map({"1": "left", "2": "right", "0": "tie"})
    pairs["winner"] = pairs["left"].where(winner == "left", pairs["right"].where(winner == "right", "tie"))
    pairs["left_model"] = pairs["pair"].map(info["left_model"])
    pairs["right_model"] = pairs["pair"].map(info["right_model"])
    return pairs


def rule_votes(items: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """The long table of keyword/regex rules' votes over ``items`` (columns item, text): one row per rule and
    item it matches (case-insensitive), with the rule's label; ``rules`` maps name -> (pattern, label)."""
    rows = [pd.DataFrame({"task": items.loc[hit, "item"], "worker": rule, "label": label})
            for rule, (pattern, label) in rules.items()
            if (hit := items["text"].str.contains(pattern, case=False, regex=True)).any()]
    return pd.concat(rows, ignore_index=True)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table, the first column left-aligned and the others right-aligned (figures)."""
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])
