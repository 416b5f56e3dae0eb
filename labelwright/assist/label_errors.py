"""Label errors by confident learning: which items' labels are probably wrong.

Confident learning (C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 70, 2021): given each item's label and *out-of-sample* predicted probabilities (from a
model that never saw the item, e.g. :func:`out_of_sample_probas`),

1. each class j gets a threshold t_j, the mean probability of class j over items labelled j (how sure the
   model usually is of that class);
2. the confident joint C[i, j] counts items labelled i whose probability of j is at least t_j (the most
   probable such j when several are), an estimate of how often true class j was labelled i;
3. ``prune_by_noise_rate`` (the paper's and cleanlab's default): C is calibrated so each row sums to the
   number of items with that label, and for each i != j the round(C[i, j]) items labelled i with the largest
   margin p_j - p_i are flagged; ``confident_learning``: flag the items off the diagonal of C. Either way an
   item the model predicts as its given label is not flagged.

Flagged items are ranked by self-confidence (the probability of the given label), lowest first.

Own implementation rather than cleanlab: cleanlab 2.9 (Apache-2.0) is a 306 kB wheel unpacking to 1.1 MB in
96 files and pulls in tqdm and termcolor, for the one function used here, which is about 60 lines of numpy.
``tests/assist/test_assist_thresholds.py`` compares the two when cleanlab happens to be installed.

Example::

    probas = out_of_sample_probas(X, labels)
    issues = find_label_issues(labels, probas, class_names=["ham", "spam"])
    issues.head()    # index, given, suggested, self_confidence, ..., reason
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from labelwright.quality.errors import QualityInputError

__all__ = ["confident_joint", "find_label_issues", "out_of_sample_probas"]


def _check(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = np.asarray(labels), np.asarray(pred_probs, dtype=float)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise QualityInputError(
            f"pred_probs must be (n, k) with n = len(labels); got {probs.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise QualityInputError(f"labels must be class indices 0..{probs.shape[1] - 1} (the pred_probs columns)")
    return labels.astype(int), probs


def confident_joint(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-class thresholds t (k,), the confident joint C (k, k; rows = given, columns = likely true)
    and each item's confident class (-1 when no class reaches its threshold)."""
    labels, probs = _check(labels, pred_probs)
    n, k = probs.shape
    counts = np.bincount(labels, minlength=k)
    thresholds = np.bincount(labels, weights=probs[np.arange(n), labels], minlength=k) / np.maximum(counts, 1)
    thresholds = np.where(counts > 0, thresholds, 1.0)
    above = probs >= thresholds - 1e-12
    assigned = np.where(above.any(axis=1), np.where(above, probs, -np.inf).argmax(axis=1), -1)
    keep = assigned >= 0
    joint = np.zeros((k, k), dtype=int)
    np.add.at(joint, (labels[keep], assigned[keep]), 1)
    return thresholds, joint, assigned


def find_label_issues(labels: Any, pred_probs: Any, class_names: Sequence[str] | None = None,
                      method: Literal["prune_by_noise_rate", "confident_learning"] = "prune_by_noise_rate",
                      ) -> pd.DataFrame:
    """Items whose given label is probably wrong, most likely wrong first.

    ``labels`` (n,): the given (e.g. aggregated) class indices; ``pred_probs`` (n, k): OUT-OF-SAMPLE predicted
    probabilities (in-sample ones have memorised the labels and flag almost nothing). Returns a DataFrame with
    columns ``index`` (position in the input), ``given``, ``suggested``, ``self_confidence``,
    ``suggested_proba``, ``class_threshold`` (t of the given class) and ``reason``.
    """
    labels, probs = _check(labels, pred_probs)
    n, k = probs.shape
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise QualityInputError(f"class_names has {len(names)} names for {k} classes")
    thresholds, joint, assigned = confident_joint(labels, probs)
    if method == "confident_learning":
        flagged = (assigned >= 0) & (assigned != labels)
    elif method == "prune_by_noise_rate":
        counts = np.bincount(labels, minlength=k)
        rows = joint.sum(axis=1, keepdims=True)
        calibrated = np.where(rows > 0, joint / np.maximum(rows, 1) * counts[:, None], 0.0)
        flagged = np.zeros(n, dtype=bool)
        for i in range(k):
            members = np.flatnonzero(labels == i)
            for j in range(k):
                prune = int(np.rint(calibrated[i, j]))
                if i == j or prune == 0:
                    continue
                margin = probs[members, j] - probs[members, i]
                flagged[members[np.argsort(-margin, kind="stable")[:prune]]] = True
    else:
        raise QualityInputError(f"method must be 'prune_by_noise_rate' or 'confident_learning', not {method!r}")
    flagged &= probs.argmax(axis=1) != labels
    idx = np.flatnonzero(flagged)
    others = probs[idx].copy()
    others[np.arange(len(idx)), labels[idx]] = -np.inf
    suggested = others.argmax(axis=1)
    self_conf = probs[idx, labels[idx]]
    table = pd.DataFrame({
        "index": idx,
        "given": [names[c] for c in labels[idx]],
        "suggested": [names[c] for c in suggested],
        "self_confidence": self_conf,
        "suggested_proba": probs[idx, suggested],
        "class_threshold": thresholds[labels[idx]],
    })
    table["reason"] = [
        f"given {g!r}, the model says {s!r} with {p:.2f}; the class {g!r} usually scores {t:.2f}"
        for g, s, p, t in zip(table["given"], table["suggested"], table["suggested_proba"], table["class_threshold"])]
    return table.sort_values("self_confidence", kind="stable").reset_index(drop=True)


def out_of_sample_probas(X: Any, labels: Any, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-validated predicted probabilities from a logistic regression (each item scored by a model that
    did not see it). ``labels`` must be class indices 0..k-1 with every class present in each training fold;
    the columns of the result follow them. Logistic regression is calibrated enough for confident learning,
    whose thresholds are relative per class anyway."""
    # heavy: about a second to import, and only the label-error check needs them
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy, see above
    from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: PLC0415 - heavy, see above

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return cross_val_predict(LogisticRegression(max_iter=1000), X, np.asarray(labels), cv=folds,
                             method="predict_proba")
