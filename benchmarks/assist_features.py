"""Item features: fit time and transform throughput, on the YouTube spam comments and on rt_polarity.

    .venv/bin/python benchmarks/assist_features.py [--embeddings]

TF-IDF (labelwright.assist.features.TfidfFeatures, word 1-2 + char_wb 3-5 grams, SVD to 256-d) is fitted on
the whole set, then the whole set is transformed; the transform is what runs per new item, so items/s is
its rate. With ``--embeddings`` (or whenever the ``embeddings`` extra is installed) the packaged
all-MiniLM-L6-v2 is timed as well: load time, then items/s on the first 1,000 texts of each set. Also
printed: held-out accuracy of a logistic regression on the features (a 70/30 split, seed 0), as a sanity
check that fast features are also useful ones. Single process; BLAS threads as the machine sets them.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelwright.assist.features import SentenceEmbeddings, TfidfFeatures, embeddings_available  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = {"youtube_spam": SHARED / "youtube_spam" / "items.csv", "rt_polarity": SHARED / "rt_polarity" / "items.csv"}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown"

    return f"{model}, {os.cpu_count()} CPUs visible"


def accuracy(x: np.ndarray, y: np.ndarray) -> float:
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.7 * len(y))
    tr, te = order[:cut], order[cut:]
    return LogisticRegression(max_iter=2000).fit(x[tr], y[tr]).score(x[te], y[te])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", action="store_true", help="require the embeddings extra and time it")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}")
    data = {name: pd.read_csv(path) for name, path in SETS.items()}
    for name, items in data.items():
        texts, y = items.text.astype(str).tolist(), items.label.to_numpy()
        t0 = time.perf_counter()
        feats = TfidfFeatures().fit(texts)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        x = feats.transform(texts)
        tr_s = time.perf_counter() - t0
        print(f"tfidf  {name:13s} n={len(texts):6d} d={x.shape[1]} fit {fit_s:6.2f} s  transform "
              f"{len(texts) / tr_s:8.0f} items/s  stored {len(feats.to_bytes()) / 1e6:5.1f} MB  "
              f"held-out acc {accuracy(x, y):.3f}")
    if args.embeddings or embeddings_available():
        t0 = time.perf_counter()
        emb = SentenceEmbeddings().load()
        print(f"minilm load {time.perf_counter() - t0:.2f} s  ({emb.version})")
        emb.transform(["warm-up"])
        for name, items in data.items():
            sample = items.sample(n=1000, random_state=0)
            texts = sample.text.astype(str).tolist()
            t0 = time.perf_counter()
            x = emb.transform(texts)
            tr_s = time.perf_counter() - t0
            print(f"minilm {name:13s} n={len(texts):6d} d={x.shape[1]} transform {len(texts) / tr_s:8.0f} items/s"
                  f"  held-out acc {accuracy(x, sample.label.to_numpy()):.3f}")
    else:
        print("minilm: not installed (pip install 'labelwright[embeddings]'); skipped")


if __name__ == "__main__":
    main()
