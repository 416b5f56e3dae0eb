"""Pairwise preferences: Bradley-Terry with Davidson ties, and a noisy variant with per-worker reliability.

Input follows crowd-kit's pairwise convention: columns ``worker``, ``left``, ``right``, ``label``, where
``label`` is the winner (equal to ``left`` or ``right``) or ``tie_label`` (default ``"tie"``; a missing
label also counts as a tie).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from labelwright.quality._data import check_columns, sorted_index
from labelwright.quality.categorical import aggregate_proba, top_label
from labelwright.quality.errors import QualityInputError

PAIR_COLUMNS = ("worker", "left", "right", "label")
LEFT, RIGHT, TIE = 0, 1, 2


@dataclass(frozen=True)
class Comparisons:
    candidates: pd.Index
    workers: pd.Index
    left: np.ndarray
    right: np.ndarray
    worker: np.ndarray
    outcome: np.ndarray  # LEFT, RIGHT or TIE


def encode_pairs(data: pd.DataFrame, tie_label: object = "tie") -> Comparisons:
    if isinstance(data, pd.DataFrame):
        data = data.reset_index(drop=True)  # resampled rows (bootstrap) repeat index labels
    df = check_columns(data, ("worker", "left", "right"))
    if "label" not in data.columns:
        raise QualityInputError("the DataFrame has no column 'label' (the winner, or the tie label)")
    label = data.loc[df.index, "label"]
    candidates = sorted_index(pd.concat([df["left"], df["right"]], ignore_index=True))
    outcome = np.full(len(df), -1, dtype=np.int64)
    outcome[(label == df["left"]).to_numpy()] = LEFT
    outcome[(label == df["right"]).to_numpy()] = RIGHT
    outcome[(label.isna() | (label == tie_label)).to_numpy()] = TIE
    if (outcome < 0).any():
        row = df.index[outcome < 0][0]
        raise QualityInputError(
            f"row {row!r}: label {label[row]!r} is neither its left ({df.at[row, 'left']!r}) nor its right "
            f"({df.at[row, 'right']!r}) candidate nor the tie label {tie_label!r}")
    if (df["left"] == df["right"]).any():
        row = df.index[(df["left"] == df["right"]).to_numpy()][0]
        raise QualityInputError(f"row {row!r} compares {df.at[row, 'left']!r} with itself")
    workers = sorted_index(df["worker"])
    return Comparisons(candidates, pd.Index(workers, name="worker"),
                       candidates.get_indexer(df["left"]).astype(np.int64),
                       candidates.get_indexer(df["right"]).astype(np.int64),
                       workers.get_indexer(df["worker"]).astype(np.int64), outcome)


def davidson_probas(diff: np.ndarray, log_nu: float) -> np.ndarray:
    """(n, 3) probabilities of left win, right win and tie for score differences ``diff = s_left - s_right``."""
    logits = np.stack([diff / 2, -diff / 2, np.full_like(diff, log_nu)], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _cg(matvec, b: np.ndarray, iters: int = 100, tol: float = 1e-24) -> np.ndarray:
    """Conjugate gradients for ``matvec(x) = b`` (symmetric positive semi-definite, ``b`` in its range)."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = r @ r
    for _ in range(iters):
        if rs < tol or rs == 0:
            break
        ap = matvec(p)
        a = rs / (p @ ap)
        x += a * p
        r -= a * ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def fit_davidson(left, right, weights: np.ndarray, n: int, reg: float, ties: bool,
                 scores: np.ndarray | None = None, log_nu: float = -1.0, n_iter: int = 100,
                 tol: float = 1e-8) -> tuple[np.ndarray, float]:
    """Maximise the Davidson log-likelihood (``weights``: (m, 3) counts of left, right, tie) minus
    ``reg/2 * |s|^2``, by Newton steps solved with conjugate gradients. Without ``ties``, plain Bradley-Terry."""
    s = np.zeros(n) if scores is None else scores.copy()
    log_nu = log_nu if ties else -np.inf
    total = weights.sum(axis=1)
    for _ in range(n_iter):
        p = davidson_probas(s[left] - s[right], log_nu)
        g = (weights[:, LEFT] - weights[:, RIGHT]) / 2 - total * (p[:, LEFT] - p[:, RIGHT]) / 2
        h = total * ((p[:, LEFT] + p[:, RIGHT]) - (p[:, LEFT] - p[:, RIGHT]) ** 2) / 4
        grad = np.bincount(left, g, n) - np.bincount(right, g, n) - reg * s

        def matvec(v, h=h):
            e = h * (v[left] - v[right])
            return np.bincount(left, e, n) - np.bincount(right, e, n) + reg * v

        step = _cg(matvec, grad)
        s += step
        moved = np.abs(step).max(initial=0.0)
        if ties:
            p = davidson_probas(s[left] - s[right], log_nu)
            g_nu = weights[:, TIE].sum() - (total * p[:, TIE]).sum()
            h_nu = (total * p[:, TIE] * (1 - p[:, TIE])).sum() + 1e-9
            d_nu = float(np.clip(g_nu / h_nu, -2, 2))
            log_nu += d_nu
            moved = max(moved, abs(d_nu))
        if moved < tol:
            break
    return s, log_nu


class _PairwiseResult(ABC):
    scores_: pd.Series
    log_nu_: float

    @abstractmethod
    def fit(self, data: pd.DataFrame) -> _PairwiseResult:
        """Fit to ``data`` (columns ``worker``, ``left``, ``right``, ``label``) and return self."""

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``scores_``."""
        return self.fit(data).scores_

    def predict_proba(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """For each row of ``pairs`` (columns ``left``, ``right``): probabilities of left, right and tie."""
        s = self.scores_.reindex(pd.concat([pairs["left"], pairs["right"]])).to_numpy()
        if np.isnan(s).any():
            raise QualityInputError("predict_proba got a candidate that was not in the fitted data")
        n = len(pairs)
        p = davidson_probas(s[:n] - s[n:], self.log_nu_)
        return pd.DataFrame({"left": pairs["left"].to_numpy(), "right": pairs["right"].to_numpy(),
                             "p_left": p[:, LEFT], "p_right": p[:, RIGHT], "p_tie": p[:, TIE]},
                            index=pairs.index)

    def _finish(self, cmp: Comparisons, s: np.ndarray, log_nu: float) -> None:
        s = s - s.mean()
        self.scores_ = pd.Series(s, index=pd.Index(cmp.candidates, name="candidate"), name="score")
        self.log_nu_ = float(log_nu)
        self.tie_rate_ = float(np.exp(log_nu)) if np.isfinite(log_nu) else 0.0
        observed = pd.DataFrame({"left": cmp.candidates[cmp.left], "right": cmp.candidates[cmp.right]})
        self.probas_ = self.predict_proba(observed.drop_duplicates().reset_index(drop=True))


def _outcome_weights(cmp: Comparisons, ties: str, r: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    w = np.zeros((len(cmp.outcome), 3))
    w[np.arange(len(cmp.outcome)), cmp.outcome] = 1.0 if r is None else r
    if ties == "half":
        w[:, LEFT] += w[:, TIE] / 2
        w[:, RIGHT] += w[:, TIE] / 2
        w[:, TIE] = 0
    elif ties == "ignore":
        w[:, TIE] = 0
    return w, ties == "davidson" and bool((cmp.outcome == TIE).any())


@dataclass(repr=False)
class BradleyTerry(_PairwiseResult):
    r"""Bradley-Terry: candidate ``i`` beats ``j`` with probability :math:`e^{s_i} / (e^{s_i} + e^{s_j})`.

    Ties (``ties``):

    * ``"davidson"`` (default): Davidson's model, :math:`P(\text{tie}) = \nu \sqrt{\pi_i \pi_j} /
      (\pi_i + \pi_j + \nu \sqrt{\pi_i \pi_j})` with :math:`\pi = e^s`; :math:`\nu` is fitted (``tie_rate_``).
      Without any tie in the data this is plain Bradley-Terry.
    * ``"half"``: a tie counts as half a win for each side.
    * ``"ignore"``: ties are dropped.

    Scores are log-strengths centred at 0 (``scores_``); a difference of 1 means odds of e to 1. A Gaussian
    prior ``reg`` keeps candidates that never lose (or never win) finite. Fitted by Newton's method, each
    step solved by conjugate gradients on the comparison graph. ``probas_``: the modelled probabilities for
    every compared pair; ``predict_proba(pairs)`` for any pair.

    R. A. Bradley and M. E. Terry. Rank analysis of incomplete block designs. *Biometrika* 39, 1952.
    R. R. Davidson. On extending the Bradley-Terry model to accommodate ties. *JASA* 65(329), 1970.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"worker": ["w1", "w2", "w3"], "left": ["a", "a", "b"], "right": ["b", "c", "c"],
        ...                    "label": ["a", "a", "tie"]})
        >>> BradleyTerry().fit_predict(df).idxmax()
        'a'
    """

    ties: Literal["davidson", "half", "ignore"] = "davidson"
    tie_label: object = "tie"
    reg: float = 0.01
    n_iter: int = 100

    def fit(self, data: pd.DataFrame) -> BradleyTerry:
        cmp = encode_pairs(data, self.tie_label)
        weights, ties = _outcome_weights(cmp, self.ties)
        s, log_nu = fit_davidson(cmp.left, cmp.right, weights, len(cmp.candidates), self.reg, ties,
                                 n_iter=self.n_iter)
        self._finish(cmp, s, log_nu)
        return self


@dataclass(repr=False)
class NoisyBradleyTerry(_PairwiseResult):
    r"""Bradley-Terry with unreliable workers: each vote of worker ``w`` follows the (Davidson) Bradley-Terry
    model with probability :math:`\gamma_w` (their reliability), and otherwise is drawn from the worker's own
    outcome distribution :math:`b_w` over left / right / tie (position bias, lazy ties, random clicking).

    Fitted by EM: the E-step gives each vote's probability of being reliable; the M-step refits the scores on
    votes weighted by it, and :math:`\gamma_w` and :math:`b_w` with Beta/Dirichlet(``prior``) smoothing.
    Fitted: ``scores_``, ``skills_`` (:math:`\gamma_w`), ``biases_`` (DataFrame of :math:`b_w`, columns
    left/right/tie), ``tie_rate_``, ``probas_``. Ties as in :class:`BradleyTerry`.

    Compared with crowd-kit's ``NoisyBradleyTerry`` (a worker-level mixture of BT and a left-bias coin after
    Bugakova et al. 2019), ties are modelled instead of being read as right wins, and the fit is EM.
    """

    ties: Literal["davidson", "half", "ignore"] = "davidson"
    tie_label: object = "tie"
    reg: float = 0.01
    n_iter: int = 50
    tol: float = 1e-6
    prior: float = 1.0
    initial_reliability: float = 0.9

    def fit(self, data: pd.DataFrame) -> NoisyBradleyTerry:
        cmp = encode_pairs(data, self.tie_label)
        n, n_workers = len(cmp.candidates), len(cmp.workers)
        weights, ties = _outcome_weights(cmp, self.ties)
        s, log_nu = fit_davidson(cmp.left, cmp.right, weights, n, self.reg, ties)
        gamma = np.full(n_workers, self.initial_reliability)
        bias = np.full((n_workers, 3), 1 / 3)
        rows = np.arange(len(cmp.outcome))
        last = -np.inf
        for _ in range(self.n_iter):
            p_model = davidson_probas(s[cmp.left] - s[cmp.right], log_nu)[rows, cmp.outcome]
            p_noise = bias[cmp.worker, cmp.outcome]
            a, b = gamma[cmp.worker] * p_model, (1 - gamma[cmp.worker]) * p_noise
            loglik = np.log(a + b).sum()
            r = a / (a + b)
            n_w = np.bincount(cmp.worker, minlength=n_workers)
            gamma = (np.bincount(cmp.worker, r, n_workers) + self.prior) / (n_w + 2 * self.prior)
            noise = np.bincount(cmp.worker * 3 + cmp.outcome, 1 - r, n_workers * 3).reshape(-1, 3) + self.prior
            bias = noise / noise.sum(axis=1, keepdims=True)
            weights, ties = _outcome_weights(cmp, self.ties, r)
            s, log_nu = fit_davidson(cmp.left, cmp.right, weights, n, self.reg, ties, s,
                                     log_nu if np.isfinite(log_nu) else -1.0, n_iter=5)
            if loglik - last < self.tol * len(rows):
                break
            last = loglik
        self.skills_ = pd.Series(gamma, index=cmp.workers, name="skill")
        self.biases_ = pd.DataFrame(bias, index=cmp.workers, columns=["left", "right", "tie"])
        self._finish(cmp, s, log_nu)
        return self


def bootstrap_scores(model, data: pd.DataFrame, n_boot: int = 200, by: str | None = None,
                     level: float = 0.95, random_state: int | None = 0) -> pd.DataFrame:
    """Percentile bootstrap intervals for a pairwise model's scores.

    Resamples rows (or whole groups of rows sharing the ``by`` column, e.g. every vote on one pair) with
    replacement, refits ``model`` each time and returns, per candidate, the full-data ``score`` and the
    ``low`` and ``high`` ends of the ``level`` interval. Scores are centred in every refit, so intervals
    are relative to the average candidate.
    """
    rng = np.random.default_rng(random_state)
    full = model.fit(data).scores_
    groups = data.groupby(by).indices if by else None
    keys = list(groups) if groups else []
    draws = []
    for _ in range(n_boot):
        if groups:
            pick = rng.integers(0, len(keys), len(keys))
            idx = np.concatenate([groups[keys[g]] for g in pick])
        else:
            idx = rng.integers(0, len(data), len(data))
        draws.append(model.fit(data.iloc[idx]).scores_.reindex(full.index))
    draws = pd.concat(draws, axis=1)
    alpha = (1 - level) / 2
    return pd.DataFrame({"score": full, "low": draws.quantile(alpha, axis=1),
                         "high": draws.quantile(1 - alpha, axis=1)})


def aggregate_pairs(data: pd.DataFrame, random_state: int | None = 0) -> pd.DataFrame:
    """Per pair (``task`` column, else each (left, right)): the outcome left/right/tie and its confidence,
    by the default categorical method over the votes' outcomes."""
    cmp = encode_pairs(data)
    if "task" in data.columns:
        task = data.loc[check_columns(data, ("worker", "left", "right")).index, "task"].to_numpy()
    else:
        task = pd.MultiIndex.from_arrays([cmp.candidates[cmp.left], cmp.candidates[cmp.right]]).to_numpy()
    votes = pd.DataFrame({"task": task, "worker": cmp.workers[cmp.worker],
                          "label": np.array(["left", "right", "tie"])[cmp.outcome]})
    return top_label(aggregate_proba(votes, random_state=random_state))
