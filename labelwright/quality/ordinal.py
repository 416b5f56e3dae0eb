"""Ratings (an ordered scale of whole numbers): a posterior over the scale's points from per-worker
bias and noise, with a task-level noise scale integrated out so that the spread of a task's answers
counts against it.

Voting treats 1-5 stars as five unrelated categories: an annotator who answers 2 where two others answer 5
reads as a consistent habit and the 5 gets a probability near 1. A rating model knows that 2 and 5 are
far apart, and that three answers which disagree by three steps do not pin the truth down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwright.quality.errors import QualityInputError
from labelwright.quality.numeric import GaussianWorkers, encode_numeric


@dataclass(repr=False)
class OrdinalWorkers:
    r"""A posterior over the points of a rating scale.

    Each worker ``w`` has a bias :math:`b_w` and a noise variance :math:`\sigma_w^2` (fitted by
    :class:`GaussianWorkers` with its strong shrinkage priors, so a worker with few answers keeps the crowd's
    values). Task ``t`` has a true point :math:`z_t` on the scale and a difficulty :math:`\lambda_t` that
    scales every worker's variance on it:

    .. math::  y_{tw} = z_t + b_w + \varepsilon, \quad \varepsilon \sim N(0, \lambda_t \sigma_w^2), \quad
               \lambda_t \sim \text{Inv-Gamma}(\nu/2, \nu/2).

    Integrating :math:`\lambda_t` out gives, with :math:`Q_t(z) = \sum_w (y_{tw} - z - b_w)^2 / \sigma_w^2`,

    .. math::  p(z_t = z \mid y) \propto \pi_z \, (1 + Q_t(z)/\nu)^{-(\nu + n_t)/2}

    (a Student-t likelihood): answers that agree leave the task easy and the posterior sharp; answers
    that spread (a 2 among 5s) make the task look hard, whatever the workers' record elsewhere, and the
    posterior spreads over the points between them. ``nu`` is the prior's weight in pseudo-answers (small:
    a task's own spread is believed quickly). ``variance_floor`` (in squared scale steps) keeps a crowd that
    agreed on everything so far from being declared noiseless. The prior :math:`\pi` is flat: a point that
    nobody answered (the 4 between a 2 and two 5s) is not ruled out for being rare.

    Fitted: ``probas_`` (task x scale point), ``labels_`` (the most probable point), ``confidence_`` (its
    probability), ``biases_``, ``variances_`` (per worker).

    The scale-mixture (Student-t) likelihood follows C. Liu and D. B. Rubin, ML estimation of the t
    distribution using EM and its extensions, *Statistica Sinica* 5, 1995; the per-worker bias and noise are
    those of :class:`GaussianWorkers` (Raykar et al. 2010, Welinder and Perona 2010).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": [5, 5, 2, 4, 4, 4]})
    >>> m = OrdinalWorkers().fit(df, scale=[1, 2, 3, 4, 5])
    >>> bool(m.confidence_[1] < 0.9), int(m.labels_[2])
    (True, 4)
    """

    nu: float = 2.0
    variance_floor: float = 0.25

    def fit(self, data: pd.DataFrame, scale=None, gold: pd.Series | None = None) -> OrdinalWorkers:
        ans = encode_numeric(data)
        points = np.unique(ans.value) if scale is None else np.asarray(sorted(scale), dtype=float)
        if not len(points):
            raise QualityInputError("a rating scale needs at least one point")
        step = float(np.diff(points).min()) if len(points) > 1 else 1.0
        if np.setdiff1d(ans.value, points).size:
            bad = np.setdiff1d(ans.value, points)[0]
            raise QualityInputError(f"answer {bad:g} is not a point of the scale {points.tolist()}")
        g = None if gold is None else pd.Series(gold).dropna()
        workers = GaussianWorkers().fit(data, g)
        bias = workers.biases_.to_numpy()
        var = np.maximum(workers.variances_.to_numpy(), self.variance_floor * step ** 2)
        n_t, k = len(ans.tasks), len(points)
        t, w, y = ans.task, ans.worker, ans.value
        # Q_t(z) for every point z, accumulated answer by answer (vectorised over the points)
        resid = (y - bias[w])[:, None] - points[None, :]
        q = np.zeros((n_t, k))
        np.add.at(q, t, resid ** 2 / var[w][:, None])
        n = np.bincount(t, minlength=n_t)[:, None]
        log_post = -(self.nu + n) / 2 * np.log1p(q / self.nu)
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        post /= post.sum(axis=1, keepdims=True)
        if g is not None and len(g):
            known = g[g.index.isin(ans.tasks)]
            rows = ans.tasks.get_indexer(known.index)
            cols = np.searchsorted(points, pd.to_numeric(known).to_numpy(dtype=float))
            ok = (cols < k) & (points[np.minimum(cols, k - 1)] == pd.to_numeric(known).to_numpy(dtype=float))
            post[rows[ok]] = 0.0
            post[rows[ok], cols[ok]] = 1.0
        labels = _as_scale_type(points, data["label"])
        self.probas_ = pd.DataFrame(post, index=ans.tasks, columns=labels)
        top = post.argmax(axis=1)
        self.labels_ = pd.Series(np.asarray(labels, dtype=object)[top], index=ans.tasks, name="label")
        self.confidence_ = pd.Series(post[np.arange(n_t), top], index=ans.tasks, name="confidence")
        self.biases_ = workers.biases_
        self.variances_ = pd.Series(var, index=ans.workers, name="variance")
        return self

    def fit_predict_proba(self, data: pd.DataFrame, scale=None, gold: pd.Series | None = None) -> pd.DataFrame:
        """Fit and return the posterior: one row per task, one column per scale point."""
        return self.fit(data, scale, gold).probas_

    def __repr__(self) -> str:
        return f"OrdinalWorkers(nu={self.nu:g}, variance_floor={self.variance_floor:g})"


def _as_scale_type(points: np.ndarray, labels: pd.Series) -> list:
    """The scale's points as ints when the answers are whole numbers (ratings), else floats."""
    if pd.api.types.is_integer_dtype(labels) or np.all(points == np.round(points)):
        return [int(p) for p in points]
    return [float(p) for p in points]


def aggregate_ordinal_proba(data: pd.DataFrame, scale=None, gold: pd.Series | dict | None = None) -> pd.DataFrame:
    """The default method for ratings: :class:`OrdinalWorkers`' posterior (task x scale point), with
    ``attrs["method"]`` naming it. Gold tasks get probability 1 on their gold point."""
    if isinstance(gold, dict):
        gold = pd.Series(gold, dtype=object)
    model = OrdinalWorkers()
    probas = model.fit_predict_proba(data, scale, gold)
    probas.attrs["method"] = repr(model)
    return probas
