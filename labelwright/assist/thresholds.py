"""Per-class auto-labelling thresholds with a stated confidence bound, and the audit that checks them.

The bound is the one-sided **Clopper-Pearson** (exact binomial) bound on the accuracy of the items a
threshold lets through. Why this one: the validation sample behind a class's threshold is often small
(tens to a few hundred human-labelled items), and the accuracies of interest sit near 1, where the normal
(Wald) interval is badly anti-conservative and Wilson is not guaranteed either. Clopper-Pearson inverts the
binomial test itself, so its coverage is at least the nominal level for every n and every true accuracy; the
price is that it is conservative (wider than it needs to be), which is the right direction for labels
written without a person looking.

Several tests are made, so the error budget is split:

- across classes, by **Bonferroni**: with k classes each class is tested at ``1 - (1 - confidence) / k``,
  so the chance that *any* class's accuracy is overstated stays below ``1 - confidence``;
- within a class, over the candidate thresholds, by **fixed-sequence testing** (Learn then Test,
  Angelopoulos, Bates, Candès, Jordan & Lei 2021, arXiv 2110.01052): thresholds are tested from the highest
  down and the search stops at the first one that fails, so no further correction is needed. Thresholds too
  high to pass even with every item right (fewer than ``log(alpha) / log(target)`` items) are not tested:
  that depends on the predictions only, never on the labels.

The guarantee reads: if the validation sample is a random sample of the items to be labelled, then with
probability at least ``confidence`` every class's auto-labelled items have accuracy at least the target.

Example::

    th = choose_thresholds(val_probas, val_labels, target_accuracy=0.95)
    auto = th.apply(new_probas)            # class index, or -1 to send the item to people
    ids = audit_sample(auto_ids, rate=0.05, seed=1)
    result = audit(machine_labels, reviewer_labels, target_accuracy=0.95)
    if not result.passed: print(result.reason)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import betaincinv  # the beta distribution's quantile; scipy.stats costs 0.7 s to import

from labelwright.quality.errors import QualityInputError

__all__ = ["AuditResult", "Thresholds", "audit", "audit_sample", "choose_thresholds", "clopper_pearson_lower",
           "clopper_pearson_upper"]


def clopper_pearson_lower(correct: int | np.ndarray, n: int | np.ndarray, confidence: float) -> np.ndarray:
    """One-sided exact lower bound on a binomial proportion: P(accuracy >= bound) >= ``confidence``."""
    x, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(x > 0, betaincinv(np.maximum(x, 1), n - x + 1, 1.0 - confidence), 0.0)


def clopper_pearson_upper(correct: int | np.ndarray, n: int | np.ndarray, confidence: float) -> np.ndarray:
    """One-sided exact upper bound on a binomial proportion: P(accuracy <= bound) >= ``confidence``."""
    x, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(x < n, betaincinv(x + 1, np.maximum(n - x, 1), confidence), 1.0)


@dataclass(frozen=True)
class Thresholds:
    """Chosen per-class thresholds. ``thresholds[c]`` is None when no threshold meets the target for class c.

    ``support[c]`` and ``correct[c]`` count the validation items predicted c at or above the threshold
    (for a None class: all items predicted c), and ``lower_bound[c]`` is their Clopper-Pearson lower bound
    at the per-class (Bonferroni-corrected) confidence.
    """

    thresholds: tuple[float | None, ...]
    support: tuple[int, ...]
    correct: tuple[int, ...]
    lower_bound: tuple[float, ...]
    target_accuracy: float
    confidence: float
    per_class_confidence: float
    method: str

    def apply(self, probas: np.ndarray) -> np.ndarray:
        """The predicted class for items at or above their class's threshold, -1 ("send to people") otherwise."""
        probas = np.asarray(probas, dtype=float)
        if probas.ndim != 2 or probas.shape[1] != len(self.thresholds):
            raise QualityInputError(
                f"probas must have shape (n, {len(self.thresholds)}), got {probas.shape}")
        pred = probas.argmax(axis=1)
        cut = np.array([np.inf if t is None else t for t in self.thresholds])
        return np.where(probas.max(axis=1) >= cut[pred], pred, -1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def _check_probas(probas: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probas, labels = np.asarray(probas, dtype=float), np.asarray(labels)
    if probas.ndim != 2 or len(probas) != len(labels):
        raise QualityInputError(f"probas must be (n, k) with n = len(labels); got {probas.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probas.shape[1]):
        raise QualityInputError(f"labels must be class indices 0..{probas.shape[1] - 1} (the probas columns)")
    return probas, labels.astype(int)


def choose_thresholds(probas: np.ndarray, labels: np.ndarray, target_accuracy: float, confidence: float = 0.95,
                      min_support: int = 1) -> Thresholds:
    """Pick, for each predicted class, the lowest threshold whose lower accuracy bound meets the target.

    ``probas`` (n, k): predicted class probabilities on a human-labelled validation sample; ``labels`` (n,):
    the true class indices. An item is "predicted c" when c is its argmax; its score is its max probability.
    Candidate thresholds are the distinct scores of items predicted c, tested from the highest down
    (fixed-sequence testing, see the module docstring); the search stops at the first failure and keeps the
    last threshold that passed. ``min_support`` is the fewest validation items a threshold may rest on (the
    bound itself already demands at least ``log(alpha) / log(target)``, 59 items for 0.95 at alpha 0.05).
    """
    if not 0.0 < target_accuracy < 1.0 or not 0.0 < confidence < 1.0:
        raise QualityInputError("target_accuracy and confidence must be strictly between 0 and 1")
    probas, labels = _check_probas(probas, labels)
    k = probas.shape[1]
    alpha = (1.0 - confidence) / k
    # The smallest n for which n/n correct can pass; fewer items cannot meet the target, whatever their labels.
    start = max(min_support, math.ceil(math.log(alpha) / math.log(target_accuracy)))
    pred, score = probas.argmax(axis=1), probas.max(axis=1)
    chosen: list[float | None] = []
    support: list[int] = []
    correct: list[int] = []
    lower: list[float] = []
    for c in range(k):
        mine = pred == c
        order = np.argsort(-score[mine], kind="stable")
        s, ok = score[mine][order], (labels[mine] == c)[order]
        n = np.arange(1, len(s) + 1)
        x = np.cumsum(ok)
        # A threshold at s[i] admits every item tied with it: test only at the end of each block of ties.
        ends = np.flatnonzero(np.r_[s[1:] < s[:-1], True]) if len(s) else np.array([], dtype=int)
        ends = ends[n[ends] >= start]
        passes = clopper_pearson_lower(x[ends], n[ends], 1.0 - alpha) >= target_accuracy
        n_pass = int(np.argmin(passes)) if not passes.all() else len(passes)
        if n_pass:
            i = ends[n_pass - 1]
            chosen.append(float(s[i]))
        else:
            i = len(s) - 1
            chosen.append(None)
        support.append(int(n[i]) if len(s) else 0)
        correct.append(int(x[i]) if len(s) else 0)
        lower.append(float(clopper_pearson_lower(correct[-1], support[-1], 1.0 - alpha)) if len(s) else 0.0)
    method = (f"Clopper-Pearson lower bound at {confidence:.0%} (Bonferroni over {k} classes: "
              f"{1.0 - alpha:.4g} each; fixed-sequence over thresholds)")
    return Thresholds(tuple(chosen), tuple(support), tuple(correct), tuple(lower), target_accuracy, confidence,
                      1.0 - alpha, method)


@dataclass(frozen=True)
class AuditResult:
    """Reviewers' check of a random sample of machine labels. ``passed`` is False when the estimate fails."""

    passed: bool
    n: int
    correct: int
    accuracy: float
    upper_bound: float
    target_accuracy: float
    confidence: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (an undefined accuracy, with nothing audited, is None)."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def audit(machine_labels: Sequence[Any], reviewer_labels: Sequence[Any], target_accuracy: float,
          confidence: float = 0.95) -> AuditResult:
    """Compare machine labels with reviewers' labels on an audit sample.

    The audit fails when the one-sided Clopper-Pearson *upper* bound of the audited accuracy is below the
    target: even the most favourable accuracy the sample allows (at ``confidence``) misses it, so the
    thresholds' estimate is contradicted and auto-labelling should stop. A bad but small sample is given the
    benefit of the doubt until it is large enough to be conclusive.
    """
    machine, reviewer = np.asarray(machine_labels, dtype=object), np.asarray(reviewer_labels, dtype=object)
    if machine.shape != reviewer.shape or machine.ndim != 1:
        raise QualityInputError(
            f"machine_labels and reviewer_labels must be two lists of the same length; got {machine.shape} "
            f"and {reviewer.shape}")
    n = len(machine)
    if n == 0:
        return AuditResult(True, 0, 0, float("nan"), 1.0, target_accuracy, confidence,
                           "no machine labels audited yet")
    x = int((machine == reviewer).sum())
    upper = float(clopper_pearson_upper(x, n, confidence))
    passed = upper >= target_accuracy
    verdict = ("is consistent with the" if passed else "is below the")
    reason = (f"audited accuracy {x}/{n} = {x / n:.0%} (upper {confidence:.0%} bound {upper:.1%}) {verdict} "
              f"{target_accuracy:.0%} target" + ("" if passed else ": auto-labelling stops"))
    return AuditResult(passed, n, x, x / n, upper, target_accuracy, confidence, reason)


def audit_sample(ids: Sequence[Any], rate: float, seed: int | None) -> list[Any]:
    """A reproducible random sample of ``ceil(rate * len(ids))`` ids, in their given order.

    Uses its own ``np.random.default_rng(seed)``; the global numpy seed is neither read nor changed.
    """
    if not 0.0 <= rate <= 1.0:
        raise QualityInputError(f"rate must be between 0 and 1, got {rate}")
    ids = list(ids)
    size = min(len(ids), math.ceil(rate * len(ids)))
    picked = np.sort(np.random.default_rng(seed).choice(len(ids), size=size, replace=False))
    return [ids[i] for i in picked]
