"""aggregate(): the default method, its output, gold calibration; the package needs nothing from the server."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from labelwright.quality import QualityInputError, aggregate, expected_calibration_error, reliability_table
from labelwright.quality.categorical import DENSE_ANSWERS_PER_CELL
from tests.quality.test_quality_categorical import shared_slice


def test_importing_the_library_imports_no_server_code():
    code = ("import sys, labelwright.quality; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'sqlalchemy', 'starlette', 'uvicorn', 'psycopg', 'jinja2', 'sklearn', 'scipy') "
            "or m in ('labelwright.app', 'labelwright.store', 'labelwright.services', 'labelwright.settings')); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def simulated(seed=0, n_tasks=400, n_workers=8, per_task=5, k=3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_tasks)
    skill = np.linspace(0.45, 0.9, n_workers)
    rows = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, per_task, replace=False):
            label = truth[t] if rng.random() < skill[w] else (truth[t] + rng.integers(1, k)) % k
            rows.append((f"t{t}", f"w{w}", f"c{label}"))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), pd.Series([f"c{x}" for x in truth],
                                                                             index=[f"t{t}" for t in range(n_tasks)])


def test_categorical_output_shape_and_method():
    df, truth = simulated()
    out = aggregate(df)
    assert list(out.columns) == ["label", "confidence"]
    assert out.index.name == "task" and len(out) == len(truth)
    assert out["confidence"].between(1 / 3, 1).all()
    # 400 answers per worker over 6 free cells: a full confusion matrix is well determined
    assert out.attrs["method"] == "DawidSkene(prior=2, held out)"
    assert (out["label"] == truth.reindex(out.index)).mean() > 0.85


def test_sparse_workers_get_the_pooled_method():
    df, _ = simulated(n_workers=300, n_tasks=200)
    per_worker = df.groupby("worker").size().median()
    assert per_worker / 6 < DENSE_ANSWERS_PER_CELL
    assert aggregate(df).attrs["method"] == "DawidSkene(shrinkage=5, prior=2, held out)*Wawa"


def test_confidence_is_calibrated_on_conditionally_independent_workers():
    df, truth = simulated(n_tasks=3000)
    out = aggregate(df)
    hit = (out["label"] == truth.reindex(out.index)).to_numpy()
    assert expected_calibration_error(out["confidence"], hit) < 0.03


def test_gold_fixes_gold_tasks_and_recalibrates():
    df, truth = simulated()
    gold = truth.iloc[:60]
    out = aggregate(df, gold=gold)
    assert (out.loc[gold.index, "label"] == gold).all()
    assert (out.loc[gold.index, "confidence"] == 1.0).all()
    assert "temperature" in out.attrs["method"]
    few = aggregate(df, gold=truth.iloc[:3])
    assert few.attrs["method"] == "DawidSkene(prior=2, held out)"  # too little gold to calibrate on


def test_kind_is_inferred():
    numeric = pd.DataFrame({"task": ["a", "a", "b"], "worker": ["x", "y", "x"], "label": [1.0, 3.0, 5.0]})
    out = aggregate(numeric)
    assert out.attrs["method"] == "GaussianWorkers"
    assert out.loc["a", "label"] == pytest.approx(2.0, abs=0.05)  # x answered high on b, so x is nudged down
    assert {"label", "confidence", "std"} <= set(out.columns)
    pairs = pd.DataFrame({"task": [1, 1, 2], "worker": ["x", "y", "x"], "left": ["a", "a", "b"],
                          "right": ["b", "b", "c"], "label": ["a", "a", "tie"]})
    out = aggregate(pairs)
    assert out.loc[1, "label"] == "left" and out.loc[2, "label"] == "tie"
    with pytest.raises(QualityInputError, match="kind must be"):
        aggregate(numeric, kind="ranking")


def test_single_class_and_empty_input():
    one = pd.DataFrame({"task": [1, 2], "worker": ["a", "a"], "label": ["x", "x"]})
    out = aggregate(one)
    assert out["label"].tolist() == ["x", "x"] and out["confidence"].tolist() == [1.0, 1.0]
    with pytest.raises(QualityInputError, match="empty"):
        aggregate(pd.DataFrame(columns=["task", "worker", "label"]))


def test_reliability_table_by_hand():
    table = reliability_table([0.95, 0.95, 0.55, 0.65], [1, 0, 1, 1])
    assert table["n"].tolist() == [1, 1, 2]
    assert table["accuracy"].tolist() == [1.0, 1.0, 0.5]
    assert expected_calibration_error([0.95, 0.95, 0.55, 0.65], [1, 0, 1, 1]) == pytest.approx(
        (0.45 + 0.35 + 2 * 0.45) / 4)


def test_real_slice_default_and_gold():
    df, truth = shared_slice("zheng_s_dog", 150)
    out = aggregate(df)
    # 1,500 answers from 90 workers, a median of 10 each for 12 free cells: the pooled method
    assert out.attrs["method"] == "DawidSkene(shrinkage=5, prior=2, held out)*Wawa"
    assert int((out["label"].reindex(truth.index) == truth).sum()) == 127  # 128 before the prior; the full
    # datasets lose nothing (docs/quality.md, "Confidence": mean accuracy 0.8391 -> 0.8388, ECE 0.084 -> 0.070)
