"""Numeric answers (ratings, scores, counts): mean and median baselines and a per-worker Gaussian model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwright.quality._data import CATEGORICAL_COLUMNS, check_columns
from labelwright.quality.errors import QualityInputError


@dataclass(frozen=True)
class NumericAnswers:
    tasks: pd.Index
    workers: pd.Index
    task: np.ndarray
    worker: np.ndarray
    value: np.ndarray


def encode_numeric(data: object) -> NumericAnswers:
    df = check_columns(data, CATEGORICAL_COLUMNS)
    try:
        value = pd.to_numeric(df["label"]).to_numpy(dtype=float)
    except (TypeError, ValueError) as e:
        raise QualityInputError(f"numeric methods need numbers in 'label': {e}") from None
    task, tasks = pd.factorize(df["task"], sort=True)
    worker, workers = pd.factorize(df["worker"], sort=True)
    return NumericAnswers(pd.Index(tasks, name="task"), pd.Index(workers, name="worker"),
                          task.astype(np.int64), worker.astype(np.int64), value)


class _NumericAggregator:
    labels_: pd.Series

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None):  # pragma: no cover - interface
        raise NotImplementedError

    def fit_predict(self, data: pd.DataFrame, gold: pd.Series | None = None) -> pd.Series:
        """Fit and return the estimated value of each task."""
        return self.fit(data, gold).labels_


def _gold_values(ans: NumericAnswers, gold) -> tuple[np.ndarray, np.ndarray]:
    if gold is None:
        return np.empty(0, np.int64), np.empty(0)
    gold = pd.Series(gold).dropna()
    gold = gold[gold.index.isin(ans.tasks)]
    return ans.tasks.get_indexer(gold.index), pd.to_numeric(gold).to_numpy(dtype=float)


@dataclass(repr=False)
class NumericMean(_NumericAggregator):
    """The mean answer per task (gold values, when given, replace it)."""

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> NumericMean:
        ans = encode_numeric(data)
        n = np.bincount(ans.task, minlength=len(ans.tasks))
        est = np.bincount(ans.task, ans.value, len(ans.tasks)) / n
        idx, val = _gold_values(ans, gold)
        est[idx] = val
        self.labels_ = pd.Series(est, index=ans.tasks, name="label")
        return self


@dataclass(repr=False)
class NumericMedian(_NumericAggregator):
    """The median answer per task (gold values, when given, replace it). Robust to a few wild answers."""

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> NumericMedian:
        ans = encode_numeric(data)
        est = pd.Series(ans.value).groupby(ans.task).median().to_numpy().copy()
        idx, val = _gold_values(ans, gold)
        est[idx] = val
        self.labels_ = pd.Series(est, index=ans.tasks, name="label")
        return self


@dataclass(repr=False)
class GaussianWorkers(_NumericAggregator):
    r"""Each worker has a bias and a noise level: :math:`y_{tw} = z_t + b_w + \varepsilon`,
    :math:`\varepsilon \sim N(0, \sigma_w^2)`.

    Fitted by alternating exact updates (the block coordinate ascent of the MAP objective): each task's
    value is the precision-weighted mean of its bias-corrected answers; each bias is the worker's mean
    residual, shrunk toward 0 by ``bias_prior`` pseudo-answers; each variance is the worker's mean squared
    residual with ``variance_prior`` pseudo-answers at the crowd's pooled variance (an inverse-gamma prior,
    so a worker with two answers cannot claim zero noise). The strong default priors (100 and 50) were
    chosen on the Snow et al. affect ratings, where weaker ones fit noise: a worker's bias or variance
    moves the estimates only once they have given many answers. Without gold, biases are only identified up to a
    common shift, fixed by making the answer-weighted mean bias zero; with gold values (which are clamped),
    biases are measured against them.

    Fitted: ``labels_`` (the estimates), ``std_`` (their posterior standard deviation), ``biases_``,
    ``variances_``, ``skills_`` (:math:`1/\sigma_w`), ``n_iter_``.

    The model of V. C. Raykar, S. Yu, L. H. Zhao et al., Learning from crowds, *JMLR* 11, 2010 (section 3,
    regression), with a per-worker bias as in P. Welinder and P. Perona, Online crowdsourcing, *CVPR
    workshops* 2010.
    """

    n_iter: int = 100
    tol: float = 1e-6
    bias_prior: float = 100.0
    variance_prior: float = 50.0

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> GaussianWorkers:
        ans = encode_numeric(data)
        t, w, y = ans.task, ans.worker, ans.value
        n_t, n_w = len(ans.tasks), len(ans.workers)
        per_worker = np.bincount(w, minlength=n_w)
        gold_idx, gold_val = _gold_values(ans, gold)
        z = np.bincount(t, y, n_t) / np.bincount(t, minlength=n_t)
        z[gold_idx] = gold_val
        bias = np.zeros(n_w)
        var = np.full(n_w, max(float(np.var(y - z[t])), 1e-12))
        self.n_iter_ = 0
        for _iteration in range(self.n_iter):
            self.n_iter_ += 1
            prec = 1.0 / var
            z_new = np.bincount(t, (y - bias[w]) * prec[w], n_t) / np.bincount(t, prec[w], n_t)
            z_new[gold_idx] = gold_val
            bias = np.bincount(w, y - z_new[t], n_w) / (per_worker + self.bias_prior)
            if not len(gold_idx):
                bias -= (bias * per_worker).sum() / per_worker.sum()
            resid = y - z_new[t] - bias[w]
            pooled = max(float(np.mean(resid ** 2)), 1e-12)
            squares = np.bincount(w, resid ** 2, n_w) + self.variance_prior * pooled
            var_new = squares / (per_worker + self.variance_prior)
            moved = max(np.abs(z_new - z).max(), np.abs(np.sqrt(var_new) - np.sqrt(var)).max())
            z, var = z_new, var_new
            if moved < self.tol:
                break
        std = 1.0 / np.sqrt(np.bincount(t, 1.0 / var[w], n_t))
        std[gold_idx] = 0.0
        self.labels_ = pd.Series(z, index=ans.tasks, name="label")
        self.std_ = pd.Series(std, index=ans.tasks, name="std")
        self.biases_ = pd.Series(bias, index=ans.workers, name="bias")
        self.variances_ = pd.Series(var, index=ans.workers, name="variance")
        self.skills_ = pd.Series(1.0 / np.sqrt(var), index=ans.workers, name="skill")
        return self


def aggregate_numeric(data: pd.DataFrame, gold: pd.Series | None = None) -> pd.DataFrame:
    model = GaussianWorkers().fit(data, gold)
    values = np.unique(encode_numeric(data).value)
    gaps = np.diff(values)
    step = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
    std = model.std_.to_numpy()
    with np.errstate(divide="ignore"):
        conf = np.array([math.erf(step / 2 / (s * math.sqrt(2))) if s > 0 else 1.0 for s in std])
    out = pd.DataFrame({"label": model.labels_, "confidence": conf, "std": model.std_})
    out.attrs["method"] = "GaussianWorkers"
    return out
