"""The project assistant's benchmarks (issue 9): active learning (a), auto-labelling (b), throughput (c).

    .venv/bin/python benchmarks/assist.py [--parts a,b,c] [--sets youtube_spam,...]
    .venv/bin/python benchmarks/assist.py --parts a [--seeds 3] [--max-pool 10000]
    .venv/bin/python benchmarks/assist.py --parts b [--max-items N] [--overlap 3 --noise 0.1] [--features minilm]
    .venv/bin/python benchmarks/assist.py --parts c [--hot-rounds 3] [--hot-duration 10]

Part b is benchmarks/assist_autolabel.py, part c benchmarks/assist_throughput.py (see their docstrings).

Part a: labels needed to come within 1 point of the full-pool model, active vs random.

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
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import assist_autolabel as b
from benchmarks import assist_throughput as c
from benchmarks.assist_features import cpu_model
from benchmarks.assist_svg import write_svg
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


def code_version() -> str:
    """The commit the figures come from, and any uncommitted change to the package beside it."""
    root = Path(__file__).resolve().parents[1]
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], check=False, cwd=root, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "labelwright").splitlines()
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        f" + uncommitted changes to {len(dirty)} files of labelwright/" if dirty else "")


def part_a(args) -> None:
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


def part_b(args) -> None:
    print(f"part b: overlap {args.overlap}, annotators {1 - args.noise:.0%} accurate, {args.annotators} annotators, "
          f"features {args.features}, target {args.target}, validation share {args.validation_share or 'default'}, "
          f"max items {args.max_items or 'all'}", flush=True)
    results = []
    for name in args.sets.split(","):
        r = b.run_dataset(name, max_items=args.max_items, n_annotators=args.annotators, overlap=args.overlap,
                          noise=args.noise, features=args.features, target=args.target,
                          round_share=args.round_share, min_round=args.min_round,
                          validation_share=args.validation_share,
                          log=lambda m: print(m, flush=True))
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "history"}, default=str), flush=True)
        print(b.table([r]).splitlines()[-1], flush=True)
    print(b.table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": cpu_model(), "results": results}, f, indent=1, default=str)
    if args.svg:
        write_svg(results, args.svg)
        print(f"wrote {args.svg}")


def part_c(args) -> None:
    c.main(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a", help="comma-separated parts to run: a, b, c")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated shared dataset names")
    parser.add_argument("--seeds", type=int, default=3, help="a: seeds (test split, random order, cold start)")
    parser.add_argument("--max-pool", type=int, default=10_000, help="a: largest labelling pool per dataset")
    parser.add_argument("--max-items", type=int, default=None, help="b: cap each set at this many items "
                                                                     "(a seeded random sample)")
    parser.add_argument("--annotators", type=int, default=8, help="b: simulated annotators working at once")
    parser.add_argument("--overlap", type=int, default=1, help="b: annotators per item")
    parser.add_argument("--noise", type=float, default=0.0, help="b: share of wrong answers per annotator")
    parser.add_argument("--features", default="tfidf", choices=("tfidf", "minilm"), help="b: assist.features")
    parser.add_argument("--target", type=float, default=0.95, help="b: auto_label.target_accuracy")
    parser.add_argument("--validation-share", type=float, default=None,
                        help="b: auto_label.validation_share (default: the schema's, 0.1 with at least 300 items)")
    parser.add_argument("--round-share", type=float, default=0.02,
                        help="b: items answered by people between two assistant steps, as a share of the set")
    parser.add_argument("--min-round", type=int, default=50, help="b: at least this many items per round")
    parser.add_argument("--json", help="b: also write every figure (and each round's history) to this file")
    parser.add_argument("--svg", help="b: also draw the results as an SVG chart in this file")
    parser.add_argument("--hot-items", type=int, default=50_000, help="c: items in the hot-path project")
    parser.add_argument("--hot-rounds", type=int, default=3, help="c: alternating rounds of the hot path")
    parser.add_argument("--hot-duration", type=float, default=10, help="c: measured seconds per hot-path run")
    parser.add_argument("--hot-annotators", type=int, default=8, help="c: concurrent annotators (K)")
    parser.add_argument("--train-set", default="rt_polarity", help="c: the set the step timings use")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}; {code_version()}")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for part in parts:
        {"a": part_a, "b": part_b, "c": part_c}[part](args)


if __name__ == "__main__":
    main()
