"""Numeric answers: mean, median and the per-worker bias-and-variance model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwright.quality import GaussianWorkers, NumericMean, NumericMedian, QualityInputError


def frame(rows):
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


TOY = frame([("t1", "a", 1.0), ("t1", "b", 2.0), ("t1", "c", 9.0),
             ("t2", "a", 4.0), ("t2", "b", 5.0), ("t2", "c", 6.0)])


def test_mean_and_median_by_hand():
    assert NumericMean().fit_predict(TOY).to_dict() == {"t1": 4.0, "t2": 5.0}
    assert NumericMedian().fit_predict(TOY).to_dict() == {"t1": 2.0, "t2": 5.0}
    assert NumericMedian().fit_predict(TOY, gold={"t1": 3.0}).to_dict() == {"t1": 3.0, "t2": 5.0}


def simulated(seed=0, n_tasks=300, n_workers=12):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 100, n_tasks)
    bias = np.linspace(-10, 10, n_workers)
    noise = np.where(np.arange(n_workers) < 3, 30.0, 3.0)  # three very noisy workers
    rows = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, 5, replace=False):
            rows.append((t, w, truth[t] + bias[w] + rng.normal(0, noise[w])))
    return frame(rows), pd.Series(truth), bias, noise


def test_gaussian_workers_beats_the_mean_and_recovers_workers():
    df, truth, bias, noise = simulated()
    model = GaussianWorkers(bias_prior=1.0, variance_prior=2.0).fit(df)
    mae = (model.labels_ - truth).abs().mean()
    assert mae < (NumericMean().fit_predict(df) - truth).abs().mean() * 0.7
    assert np.corrcoef(model.biases_.to_numpy(), bias)[0, 1] > 0.95
    assert model.variances_.iloc[:3].min() > model.variances_.iloc[3:].max()
    assert (model.std_ > 0).all()


def test_gaussian_workers_gold_measures_bias_absolutely():
    df = frame([("t1", "a", 12.0), ("t1", "b", 10.0), ("t2", "a", 22.0), ("t2", "b", 20.0),
                ("t3", "a", 32.0), ("t3", "b", 30.0)])
    model = GaussianWorkers(bias_prior=0.0).fit(df, gold={"t1": 10.0})
    assert model.labels_["t1"] == 10.0 and model.std_["t1"] == 0.0
    assert model.biases_["a"] == pytest.approx(2.0, abs=0.05)
    assert model.labels_["t2"] == pytest.approx(20.0, abs=0.1)


def test_numeric_edge_cases():
    assert GaussianWorkers().fit_predict(frame([("t1", "a", 3.0)])).to_dict() == {"t1": 3.0}
    one_worker = frame([("t1", "a", 3.0), ("t2", "a", 5.0)])
    assert GaussianWorkers().fit_predict(one_worker).to_dict() == {"t1": 3.0, "t2": 5.0}
    with pytest.raises(QualityInputError, match="numbers"):
        NumericMean().fit(frame([("t1", "a", "high")]))
    with pytest.raises(QualityInputError, match="empty"):
        GaussianWorkers().fit(frame([]))
