"""Dawid-Skene (a full confusion matrix per worker) and its one-coin variant, fitted by EM.

Both loops work on integer codes: the E-step is one ``np.bincount`` per class (one in all for one-coin),
the M-step one ``np.bincount`` per class. Nothing in an iteration touches pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwright.quality._data import Annotations, clamp_gold, encode, normalize_log, worker_series
from labelwright.quality.base import CategoricalAggregator
from labelwright.quality.errors import QualityInputError

_EPS = 1e-10


def _initial_probas(ann: Annotations, gold_tasks, gold_labels) -> np.ndarray:
    counts = ann.counts()
    return clamp_gold(counts / counts.sum(axis=1, keepdims=True), gold_tasks, gold_labels)


def _priors(probas: np.ndarray, smoothing: np.ndarray | float) -> np.ndarray:
    p = probas.sum(axis=0) + smoothing
    return np.clip(p / p.sum(), _EPS, None)


@dataclass(repr=False)
class DawidSkene(CategoricalAggregator):
    r"""Dawid-Skene: each worker has a confusion matrix :math:`\pi_w[k, l] = P(\text{answer } l \mid \text{truth } k)`.

    Answers are independent given the true label; the true labels, class priors and confusion matrices are
    estimated by EM, starting from majority vote. ``smoothing=0, shrinkage=0`` (the default) is the original
    maximum-likelihood method (cells are clipped at 1e-10, as crowd-kit does). Two MAP variants keep workers
    with few answers from getting confusion matrices of zeros and ones:

    * ``smoothing = a``: every cell gets ``a`` pseudo-answers (a flat Dirichlet(a + 1) prior);
    * ``shrinkage = s``: each row (true label k) of every worker's matrix gets ``s`` pseudo-answers spread
      like the crowd's pooled row k, so a sparse worker looks like the average worker until their own
      answers say otherwise (a hierarchical prior, re-estimated in every M-step);
    * ``prior = a``: each row also gets ``a`` pseudo-answers of a fixed, modest worker (right with
      probability ``prior_accuracy``, wrong answers spread evenly). Unlike ``shrinkage`` it does not follow
      the data, so a small crowd that happens to agree is not taken for an infallible one.

    ``held_out=True`` reports each task's posterior computed from confusion matrices that leave that task's
    own answers out (its share of every count is taken away before the final E-step). Plug-in posteriors
    count a task's answers twice (once to estimate the workers, once as evidence), which makes them
    overconfident when tasks are few; the held-out posterior does not, and with many tasks it is the same.

    With very few answers per worker the maximum-likelihood fit can collapse onto one class (a worker seen
    once can "explain" any answer); use ``shrinkage`` there, or :func:`aggregate`, which does.

    ``overlap_only=True`` fits the confusion matrices and class priors on the tasks with two or more
    answers or a gold answer only, and labels every task with them. A task's lone answer cannot say how
    good its worker is: fitted on, it only echoes the model, and with mostly lone answers EM drifts until
    the class balance outvotes the answers (one answer per task on WSD: 0.73 where the answers themselves
    are 0.99 right). With no such task at all the matrices are the priors alone and the class balance is
    uniform, so each task's label is its answer.

    ``balance_prior = s``: the class balance gets ``s`` pseudo-tasks per label, spread like the answers'
    share (each fitted task's answers counting once). Fitted on a few tasks, the balance can otherwise run
    away (D_PosSent with 100 of its 1,000 tasks answered three times: 0.86-0.94 negative, truth 0.53) and
    outvote the answers; centred on the answers rather than on uniform, it does not make a rare label
    look common (a flat prior let EM explain one annotator's rare answers as the only informative ones).

    Gold answers (``fit(data, gold=...)``) fix those tasks' posteriors to their true label in every E-step,
    so they anchor the confusion matrices.

    Fitted: ``probas_``, ``labels_``, ``priors_`` (class priors), ``confusion_`` (DataFrame indexed by
    (worker, true label), one column per answered label), ``skills_`` (each worker's modelled accuracy,
    :math:`\sum_k p_k \pi_w[k, k]`), ``loss_history_`` (mean log-likelihood per answer) and ``n_iter_``.

    A. P. Dawid and A. M. Skene. Maximum likelihood estimation of observer error-rates using the EM
    algorithm. *Journal of the Royal Statistical Society C* 28(1), 1979. doi:10.2307/2346806

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"), "label": list("xxyyyy")})
        >>> DawidSkene().fit_predict(df).tolist()
        ['x', 'y']
    """

    n_iter: int = 100
    tol: float = 1e-5
    smoothing: float = 0.0
    shrinkage: float = 0.0
    prior: float = 0.0
    prior_accuracy: float = 0.7
    held_out: bool = False
    overlap_only: bool = False
    balance_prior: float = 0.0

    def _fixed_prior(self, k: int) -> np.ndarray:
        """``prior`` pseudo-answers per row: ``prior_accuracy`` on the diagonal, the rest spread evenly."""
        if k == 1:
            return np.full((1, 1), self.prior)
        row = np.full((k, k), (1 - self.prior_accuracy) / (k - 1))
        np.fill_diagonal(row, self.prior_accuracy)
        return self.prior * row

    def _check_hyperparameters(self) -> None:
        if self.n_iter < 1:
            raise QualityInputError(f"n_iter must be 1 or more; got {self.n_iter!r}")
        for name in ("smoothing", "shrinkage", "prior", "balance_prior"):
            if getattr(self, name) < 0:
                raise QualityInputError(f"{name} must be 0 or more pseudo-answers; got {getattr(self, name)!r}")
        if not 0.0 < self.prior_accuracy < 1.0:
            raise QualityInputError(f"prior_accuracy must be between 0 and 1; got {self.prior_accuracy!r}")

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> DawidSkene:
        self._check_hyperparameters()
        ann, gold_tasks, gold_labels = encode(data, gold)
        probas = _initial_probas(ann, gold_tasks, gold_labels)
        k, n_workers = ann.n_labels, ann.n_workers
        wl = ann.worker * k + ann.label
        fixed = self._fixed_prior(k)[:, None, :] if self.prior else 0.0
        fitted = self._fitted_tasks(ann, gold_tasks)  # None: every task
        weight = None if fitted is None else fitted[ann.task].astype(float)  # per answer: 1 if it counts
        balance_pseudo = self._balance_pseudo(probas, fitted)  # pseudo-tasks per label, (K,)
        self.loss_history_ = []
        last = -np.inf
        for _iteration in range(self.n_iter):
            # M-step: confusion counts[true k, worker w * K + answer l]
            probas_t = np.ascontiguousarray(probas.T)
            counts = np.stack([np.bincount(wl, weights=probas_t[c][ann.task] if weight is None
                                           else probas_t[c][ann.task] * weight, minlength=n_workers * k)
                               for c in range(k)])
            pseudo = self.smoothing + fixed
            if self.shrinkage:
                pooled = counts.reshape(k, n_workers, k).sum(axis=1)
                pooled /= np.clip(pooled.sum(axis=1, keepdims=True), _EPS, None)
                pseudo = pseudo + self.shrinkage * pooled[:, None, :]
            conf = np.clip(counts.reshape(k, n_workers, k) + pseudo, _EPS, None)
            conf /= conf.sum(axis=2, keepdims=True)
            log_conf = np.log(conf).reshape(k, n_workers * k)
            priors = _priors(probas if fitted is None else probas[fitted], balance_pseudo)
            # E-step
            log_post = np.stack([np.bincount(ann.task, weights=log_conf[c][wl], minlength=ann.n_tasks)
                                 for c in range(k)], axis=1)
            log_post += np.log(priors)
            probas, loglik = normalize_log(log_post)
            clamp_gold(probas, gold_tasks, gold_labels)
            loss = loglik / len(wl)
            self.loss_history_.append(loss)
            if loss - last < self.tol:
                break
            last = loss
        self.n_iter_ = len(self.loss_history_)
        if self.held_out:
            probas = self._held_out(ann, probas, wl, pseudo, gold_tasks, gold_labels, fitted, balance_pseudo)
        conf = conf.transpose(1, 0, 2)  # (worker, true, answer)
        self.priors_ = pd.Series(priors, index=ann.labels, name="prior")
        index = pd.MultiIndex.from_product([ann.workers, ann.labels], names=["worker", "label"])
        self.confusion_ = pd.DataFrame(conf.reshape(n_workers * k, k), index=index, columns=ann.labels)
        self.skills_ = worker_series(ann, np.einsum("k,wkk->w", priors, conf))
        self._set_result(ann, probas)
        return self

    def _balance_pseudo(self, share: np.ndarray, fitted: np.ndarray | None) -> np.ndarray | float:
        """Pseudo-tasks added to the class balance: ``balance_prior`` per label, spread like the answers'
        share over the fitted tasks (``share``: each task's answers as fractions, gold as its label); with
        ``overlap_only`` and nothing to fit, a tiny even amount, so the balance is uniform."""
        k = share.shape[1]
        if fitted is not None:
            share = share[fitted]
        if not self.balance_prior:
            return 0.0 if fitted is None else 1e-9
        answers = (share.sum(axis=0) + 1.0) / (len(share) + k)  # one even pseudo-task keeps every label possible
        return self.balance_prior * k * answers

    def _fitted_tasks(self, ann: Annotations, gold_tasks: np.ndarray) -> np.ndarray | None:
        """With ``overlap_only``, a mask of the tasks the fit learns from: two or more answers, or gold."""
        if not self.overlap_only:
            return None
        fitted = np.bincount(ann.task, minlength=ann.n_tasks) >= 2
        fitted[gold_tasks] = True
        return fitted

    @staticmethod
    def _held_out(ann: Annotations, probas: np.ndarray, wl: np.ndarray, pseudo, gold_tasks,
                  gold_labels, fitted: np.ndarray | None = None,
                  balance_pseudo: np.ndarray | float = 0.0) -> np.ndarray:
        """Each task's posterior from counts (and class priors) with that task's own share taken out (a task
        the fit did not learn from, ``fitted`` False, has no share to take out)."""
        k, n_workers = ann.n_labels, ann.n_workers
        mine = probas if fitted is None else probas * fitted[:, None]  # each task's share of the counts
        mine_t = np.ascontiguousarray(mine.T)
        counts = np.stack([np.bincount(wl, weights=mine_t[c][ann.task], minlength=n_workers * k)
                           for c in range(k)]).reshape(k, n_workers, k)
        num = counts + pseudo  # (true, worker, answer)
        den = num.sum(axis=2)  # (true, worker)
        own = mine[ann.task]  # each answer's task's share, (answer, true)
        top = num.reshape(k, n_workers * k)[:, wl].T - own
        bottom = den[:, ann.worker].T - own
        log_lik = np.log(np.clip(top, _EPS, None) / np.clip(bottom, _EPS, None))
        log_post = np.stack([np.bincount(ann.task, weights=log_lik[:, c], minlength=ann.n_tasks)
                             for c in range(k)], axis=1)
        total = mine.sum(axis=0)
        n_fitted = ann.n_tasks if fitted is None else int(fitted.sum())
        counted = 1.0 if fitted is None else fitted[:, None].astype(float)
        extra = 1.0 + np.broadcast_to(balance_pseudo, (k,))  # per label: one even pseudo-task, and the prior
        log_post += np.log((total - mine + extra) / (n_fitted - counted + extra.sum()))
        out, _ = normalize_log(log_post)
        return clamp_gold(out, gold_tasks, gold_labels)


@dataclass(repr=False)
class OneCoinDawidSkene(CategoricalAggregator):
    r"""One-coin Dawid-Skene: worker ``w`` is right with probability :math:`s_w`, else picks a wrong label
    uniformly, so :math:`\pi_w[k, k] = s_w` and :math:`\pi_w[k, l] = (1 - s_w)/(K - 1)`.

    One parameter per worker instead of :math:`K^2`, so it is better behaved than :class:`DawidSkene` when
    workers give few answers or classes are many, and worse when errors are systematic (a worker who
    always confuses two particular classes). Skill is the worker's expected accuracy under the current
    posteriors, with ``smoothing`` pseudo-answers at chance accuracy. Gold answers anchor as in DawidSkene.

    Fitted: ``probas_``, ``labels_``, ``priors_``, ``skills_``, ``loss_history_``, ``n_iter_``.

    Y. Zhang, X. Chen, D. Zhou and M. I. Jordan. Spectral methods meet EM: a provably optimal algorithm for
    crowdsourcing. *JMLR* 17, 2016 (the one-coin model of section 2); crowd-kit's ``OneCoinDawidSkene``.
    """

    n_iter: int = 100
    tol: float = 1e-5
    smoothing: float = 0.0

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> OneCoinDawidSkene:
        ann, gold_tasks, gold_labels = encode(data, gold)
        probas = _initial_probas(ann, gold_tasks, gold_labels)
        k = ann.n_labels
        tl = ann.task * k + ann.label
        n_answers = np.bincount(ann.worker, minlength=ann.n_workers)
        self.loss_history_ = []
        last = -np.inf
        for _iteration in range(self.n_iter):
            hits = np.bincount(ann.worker, weights=probas.ravel()[tl], minlength=ann.n_workers)
            skills = (hits + self.smoothing / max(k, 1)) / (n_answers + self.smoothing)
            skills = np.clip(skills, _EPS, 1 - _EPS)
            priors = _priors(probas, 0.0)
            log_wrong = np.log((1 - skills) / max(k - 1, 1))
            log_post = np.bincount(tl, weights=(np.log(skills) - log_wrong)[ann.worker],
                                   minlength=ann.n_tasks * k).reshape(ann.n_tasks, k)
            log_post += np.log(priors)
            probas, loglik = normalize_log(log_post)
            clamp_gold(probas, gold_tasks, gold_labels)
            loss = (loglik + log_wrong[ann.worker].sum()) / len(tl)
            self.loss_history_.append(loss)
            if loss - last < self.tol:
                break
            last = loss
        self.n_iter_ = len(self.loss_history_)
        self.priors_ = pd.Series(priors, index=ann.labels, name="prior")
        self.skills_ = worker_series(ann, skills)
        self._set_result(ann, probas)
        return self
