"""MACE: Multi-Annotator Competence Estimation (workers who know, and workers who spam)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from labelwright.quality._data import clamp_gold, encode, normalize_log, worker_series
from labelwright.quality.base import CategoricalAggregator
from labelwright.quality.errors import QualityInputError


def digamma(x: np.ndarray) -> np.ndarray:
    """The digamma function for positive ``x`` (recurrence up to 6, then the asymptotic series)."""
    x = np.array(x, dtype=float)
    out = np.zeros_like(x)
    for _ in range(6):
        small = x < 6
        if not small.any():
            break
        out[small] -= 1.0 / x[small]
        x[small] += 1.0
    f = 1.0 / (x * x)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))
    return out + np.log(x) - 0.5 / x - series


def _normalize(counts: np.ndarray, prior, variational: bool) -> np.ndarray:
    if variational:  # mean-field update: exp(E[log p]) under the Dirichlet posterior
        counts = counts + prior
        return np.exp(digamma(counts) - digamma(counts.sum(axis=1, keepdims=True)))
    counts = counts + prior
    return counts / counts.sum(axis=1, keepdims=True)


@dataclass(repr=False)
class MACE(CategoricalAggregator):
    r"""MACE: on each task a worker either knows the answer (probability :math:`\theta_w`) and gives the
    truth, or spams, drawing a label from their own strategy distribution :math:`\xi_w`.

    So :math:`P(\text{answer } l \mid \text{truth } k) = \theta_w [l = k] + (1 - \theta_w) \xi_w[l]`, with
    a uniform prior on the truth. ``method="vb"`` (default) is the variational-Bayes fit of the paper with
    Beta(``alpha``, ``beta``) priors on spamming vs knowing and Dirichlet(``strategy_prior``) on the
    strategy; ``method="em"`` is plain EM with ``smoothing``. The fit is restarted ``n_restarts`` times from
    random starting points drawn with ``np.random.default_rng(random_state)``, and the restart with the
    highest marginal likelihood is kept.

    Good at finding spammers who answer without looking (their :math:`\theta_w` goes to 0). Gold answers
    clamp those tasks' posteriors. Fitted: ``probas_``, ``labels_``, ``skills_`` (:math:`\theta_w`, the
    probability of knowing), ``strategies_`` (DataFrame worker x label), ``log_marginal_likelihood_``.

    D. Hovy, T. Berg-Kirkpatrick, A. Vaswani and E. Hovy. Learning whom to trust with MACE. *NAACL-HLT* 2013.
    """

    n_restarts: int = 10
    n_iter: int = 50
    method: Literal["vb", "em"] = "vb"
    smoothing: float = 0.1
    default_noise: float = 0.5
    alpha: float = 0.5
    beta: float = 0.5
    strategy_prior: float = 10.0
    random_state: int | None = 0

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> MACE:
        ann, gold_tasks, gold_labels = encode(data, gold)
        k, n_workers = ann.n_labels, ann.n_workers
        w, y, tl = ann.worker, ann.label, ann.task * k + ann.label
        variational = self.method == "vb"
        rng = np.random.default_rng(self.random_state)

        def e_step(spam, know, theta):
            spam_theta = spam[w] * theta[w, y]
            gain = np.log(spam_theta + know[w]) - np.log(spam_theta)
            log_post = np.bincount(tl, weights=gain, minlength=ann.n_tasks * k).reshape(-1, k)
            probas, lognorm = normalize_log(log_post)
            loglik = lognorm + np.log(spam_theta).sum() - ann.n_tasks * np.log(k)
            clamp_gold(probas, gold_tasks, gold_labels)
            p_right = probas.ravel()[tl]
            knowing = p_right * know[w] / (spam_theta + know[w])
            return probas, loglik, knowing

        best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        for _ in range(self.n_restarts):
            start = rng.uniform(1, 1 + self.default_noise, size=(n_workers, 2))
            spam, know = (start / start.sum(axis=1, keepdims=True)).T
            theta = rng.uniform(1, 1 + self.default_noise, size=(n_workers, k))
            theta /= theta.sum(axis=1, keepdims=True)
            probas, loglik, knowing = e_step(spam, know, theta)
            for _ in range(self.n_iter):
                spamming = 1 - knowing
                know_counts = np.stack([np.bincount(w, weights=spamming, minlength=n_workers),
                                        np.bincount(w, weights=knowing, minlength=n_workers)], axis=1)
                strategy = np.bincount(w * k + y, weights=spamming, minlength=n_workers * k).reshape(-1, k)
                if variational:
                    spam, know = _normalize(know_counts, np.array([self.alpha, self.beta]), True).T
                    theta = _normalize(strategy, self.strategy_prior, True)
                else:
                    spam, know = _normalize(know_counts, self.smoothing, False).T
                    theta = _normalize(strategy, self.smoothing, False)
                probas, loglik, knowing = e_step(spam, know, theta)
            if best is None or loglik > best[0]:
                best = (loglik, spam, know, theta)
        if best is None:
            raise QualityInputError(f"MACE needs n_restarts of at least 1; got {self.n_restarts}")
        loglik, spam, know, theta = best
        probas, loglik, _ = e_step(spam, know, theta)
        self.log_marginal_likelihood_ = loglik
        self.skills_ = worker_series(ann, know / (know + spam))
        self.strategies_ = pd.DataFrame(theta / theta.sum(axis=1, keepdims=True), index=ann.workers,
                                        columns=ann.labels)
        self._set_result(ann, probas)
        return self
