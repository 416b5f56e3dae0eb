"""Active learning (part a): labels needed to come within 1 point of the full-pool model, active vs random.

    .venv/bin/python benchmarks/assist.py [--seeds 3] [--max-pool 10000] [--sets youtube_spam,...]

For each shared text dataset: TF-IDF features (labelwright.assist.features.TfidfFeatures) fitted once on
all texts (unsupervised, no labels), then per seed a 30% held-out test split. A logistic regression is
trained on the labels revealed so far, batch by batch (batch = max(50, 2% of the pool)), and scored on
the test split after each batch. Two orders: random (a seeded permutation) and active
(labelwright.assist.active.select_batch: random cold start of 2 batches, then margin sampling mixed with
k-center diversity). The figure is the number of labels at which each order first comes within 1 point
of the accuracy of the same model trained on the whole pool; the medians over the seeds are printed with
their ratio (active / random; the issue's target is at most 0.5). Single process; BLAS threads as the
machine sets them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.assist_features import cpu_model
from labelwright.assist.active import select_batch
from labelwright.assist.features import TfidfFeatures

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = ("youtube_spam", "rt_polarity", "sp_sentence_polarity", "trec_question_classification")


def load(name: str, shared: Path = SHARED) -> tuple[list[str], np.ndarray]:
    """Texts and integer class codes of one shared dataset (sp_sentence_polarity's truth is a separate file)."""
    items = pd.read_csv(shared / name / "items.csv", dtype={"item": str})
    if "label" not in items:
        truth = pd.read_csv(shared / name / "truth.csv", dtype={"item": str})
        items = items.merge(truth, on="item", how="inner")
    _, y = np.unique(items.label.to_numpy(), return_inverse=True)
    return items.text.astype(str).tolist(), y


def _model() -> LogisticRegression:
    return LogisticRegression(max_iter=1000)


def _probas(model: LogisticRegression, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Predicted probabilities in all ``n_classes`` columns (classes not yet seen get 0)."""
    out = np.zeros((x.shape[0], n_classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def labels_needed(
    x: np.ndarray,
    y: np.ndarray,
    pool: np.ndarray,
    test: np.ndarray,
    *,
    order: str,
    batch: int,
    target: float,
    seed: int,
    cold_start: int | None = None,
) -> int:
    """Labels revealed (a multiple of ``batch``, or the pool size) when test accuracy first reaches ``target``.

    ``order`` is ``"random"`` or ``"active"``. Stops as soon as the target is reached; the whole pool
    reaches it by definition when ``target`` comes from the full-pool model.
    """
    n_classes = int(y.max()) + 1
    xp, yp, xt, yt = x[pool], y[pool], x[test], y[test]
    labelled = np.zeros(len(pool), dtype=bool)
    perm = np.random.default_rng(seed).permutation(len(pool))
    cold = 2 * batch if cold_start is None else cold_start
    probas = None
    step = 0
    while not labelled.all():
        if order == "random":
            picks = perm[step * batch : (step + 1) * batch]
        else:
            picks = select_batch(xp, probas, labelled, batch, cold_start=cold, seed=seed + step)
        labelled[picks] = True
        step += 1
        seen = np.unique(yp[labelled])
        if seen.size < 2:
            probas = None
            continue
        model = _model().fit(xp[labelled], yp[labelled])
        if model.score(xt, yt) >= target:
            return int(labelled.sum())
        if order == "active":
            probas = _probas(model, xp, n_classes)
            if int(labelled.sum()) < cold:  # select_batch ignores probas during the cold start
                probas = None
    return len(pool)


def split(n: int, seed: int, max_pool: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 70/30 pool/test split; the pool is cut to ``max_pool`` items."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(0.7 * n)
    return order[:cut][:max_pool], order[cut:]


def run(name: str, seeds: int, max_pool: int) -> dict:
    texts, y = load(name)
    t0 = time.perf_counter()
    x = TfidfFeatures().fit_transform(texts)
    fit_s = time.perf_counter() - t0
    full, rand, act = [], [], []
    for seed in range(seeds):
        pool, test = split(len(y), seed, max_pool)
        full_acc = _model().fit(x[pool], y[pool]).score(x[test], y[test])
        batch = max(50, round(0.02 * len(pool)))
        kw = {"batch": batch, "target": full_acc - 0.01, "seed": seed}
        full.append(full_acc)
        rand.append(labels_needed(x, y, pool, test, order="random", **kw))
        act.append(labels_needed(x, y, pool, test, order="active", **kw))
    return {
        "name": name, "items": len(y), "pool": len(pool), "batch": batch, "full": statistics.median(full),
        "random": statistics.median(rand), "active": statistics.median(act), "runs": (rand, act),
        "fit_s": fit_s, "total_s": time.perf_counter() - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds (test split, random order, cold start)")
    parser.add_argument("--max-pool", type=int, default=10_000, help="largest labelling pool per dataset")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated shared dataset names")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}")
    print("| Set | Items | Pool | Batch | Full-pool accuracy | Labels needed, random | Labels needed, active "
          "| Active / random | Target (<= 0.5) | Per seed (random; active) | Time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for name in args.sets.split(","):
        r = run(name, args.seeds, args.max_pool)
        ratio = r["active"] / r["random"]
        print(
            f"| {r['name']} | {r['items']:,} | {r['pool']:,} | {r['batch']} | {r['full']:.3f} | {r['random']:,.0f} "
            f"| {r['active']:,.0f} | {ratio:.2f} | {'met' if ratio <= 0.5 else 'not met'} "
            f"| {r['runs'][0]}; {r['runs'][1]} | {r['total_s']:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
