"""GLAD: worker ability and task difficulty, fitted by EM with a Newton M-step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwright.quality._data import clamp_gold, encode, normalize_log, worker_series
from labelwright.quality.base import CategoricalAggregator


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(x))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


@dataclass(repr=False)
class GLAD(CategoricalAggregator):
    r"""Generative model of Labels, Abilities, and Difficulties.

    Worker ``w`` answers task ``t`` correctly with probability :math:`\sigma(\alpha_w e^{\beta_t})`, where
    :math:`\alpha_w` is the worker's ability (negative for adversarial workers) and :math:`e^{\beta_t}` the
    task's easiness; a wrong answer is uniform over the other labels. Priors: uniform over labels,
    :math:`\alpha_w \sim N(\text{alpha\_prior}, 1)` and :math:`\beta_t \sim N(\text{beta\_prior}, 1)`. EM: the E-step
    gives label posteriors; the M-step maximises the expected log-posterior by ``m_step_iter`` rounds of
    Newton steps, alternating workers and tasks (each block is separable, so each step is one
    ``np.bincount`` per block).

    Use it when tasks differ in how hard they are and workers differ in one overall skill. Gold answers
    clamp those tasks' posteriors. Fitted: ``probas_``, ``labels_``, ``alphas_`` (also as ``skills_``),
    ``betas_``, ``loss_history_`` (log posterior per answer), ``n_iter_``.

    J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma and J. Movellan. Whose vote should count more: optimal
    integration of labels from labelers of unknown expertise. *NIPS* 2009.
    """

    n_iter: int = 100
    tol: float = 1e-5
    m_step_iter: int = 5
    alpha_prior: float = 1.0
    beta_prior: float = 1.0

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> GLAD:
        ann, gold_tasks, gold_labels = encode(data, gold)
        k = ann.n_labels
        log_other = np.log(max(k - 1, 1))
        tl = ann.task * k + ann.label
        alpha = np.full(ann.n_workers, self.alpha_prior)
        beta = np.full(ann.n_tasks, self.beta_prior)
        w, t = ann.worker, ann.task
        self.loss_history_ = []
        last = -np.inf

        def e_step():
            """Posteriors, and the log posterior density of alpha and beta (what EM increases)."""
            x = alpha[w] * np.exp(beta[t])
            right, wrong = _log_sigmoid(x), _log_sigmoid(-x) - log_other
            log_post = np.bincount(tl, weights=right - wrong, minlength=ann.n_tasks * k).reshape(-1, k)
            probas, lognorm = normalize_log(log_post)
            objective = lognorm + wrong.sum() - ann.n_tasks * np.log(k)
            objective -= 0.5 * (((alpha - self.alpha_prior) ** 2).sum() + ((beta - self.beta_prior) ** 2).sum())
            return clamp_gold(probas, gold_tasks, gold_labels), objective

        probas, _ = e_step()
        for _iteration in range(self.n_iter):
            p = probas.ravel()[tl]  # posterior that each answer is right
            for _ in range(self.m_step_iter):
                e = np.exp(beta[t])
                s = _sigmoid(alpha[w] * e)
                grad = np.bincount(w, weights=(p - s) * e, minlength=ann.n_workers) - (alpha - self.alpha_prior)
                hess = np.bincount(w, weights=s * (1 - s) * e * e, minlength=ann.n_workers) + 1.0
                alpha += np.clip(grad / hess, -1.0, 1.0)  # damped: Newton overshoots from flat regions
                x = alpha[w] * np.exp(beta[t])
                s = _sigmoid(x)
                grad = np.bincount(t, weights=(p - s) * x, minlength=ann.n_tasks) - (beta - self.beta_prior)
                hess = np.bincount(t, weights=s * (1 - s) * x * x, minlength=ann.n_tasks) + 1.0
                beta += np.clip(grad / hess, -1.0, 1.0)
            probas, objective = e_step()
            loss = objective / len(tl)
            self.loss_history_.append(loss)
            if loss - last < self.tol:
                break
            last = loss
        self.n_iter_ = len(self.loss_history_)
        self.alphas_ = worker_series(ann, alpha, "alpha")
        self.skills_ = self.alphas_.rename("skill")
        self.betas_ = pd.Series(beta, index=ann.tasks, name="beta")
        self._set_result(ann, probas)
        return self
