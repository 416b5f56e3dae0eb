"""Inter-annotator agreement: percent agreement, Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha.

All take the long-format table (``task``, ``worker``, ``label``); missing answers are simply absent rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from labelwright.quality._data import encode
from labelwright.quality.errors import QualityInputError


def _unit_counts(data: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """(tasks, values) answer counts over tasks with at least two answers, and the values."""
    ann, _, _ = encode(data)
    counts = ann.counts()
    return counts[counts.sum(axis=1) >= 2], ann.labels


def percent_agreement(data: pd.DataFrame) -> float:
    """Share of agreeing pairs of answers on a task, averaged over tasks with two or more answers."""
    counts, _ = _unit_counts(data)
    if not len(counts):
        raise QualityInputError("percent agreement needs at least one task with two or more answers")
    m = counts.sum(axis=1)
    return float(((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean())


def fleiss_kappa(data: pd.DataFrame) -> float:
    r"""Fleiss' kappa: :math:`(\bar P - P_e) / (1 - P_e)`, over tasks with two or more answers.

    With the same number of answers on every task this is Fleiss (1971); with varying numbers, each task's
    agreement is over its own pairs and :math:`P_e` uses the pooled label shares. NaN when every answer is
    the same label (chance agreement is then 1).

    J. L. Fleiss. Measuring nominal scale agreement among many raters. *Psychological Bulletin* 76(5), 1971.
    """
    counts, _ = _unit_counts(data)
    if not len(counts):
        raise QualityInputError("Fleiss' kappa needs at least one task with two or more answers")
    m = counts.sum(axis=1)
    p_bar = ((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean()
    shares = counts.sum(axis=0) / m.sum()
    p_e = float((shares ** 2).sum())
    return float("nan") if np.isclose(p_e, 1.0) else float((p_bar - p_e) / (1 - p_e))


def cohen_kappa(data: pd.DataFrame, min_shared: int = 1) -> pd.DataFrame:
    r"""Cohen's kappa for every pair of workers who answered at least ``min_shared`` common tasks.

    Returns columns ``worker_a``, ``worker_b`` (a < b), ``n`` (shared tasks), ``agreement`` (observed) and
    ``kappa`` = :math:`(p_o - p_e)/(1 - p_e)`, with :math:`p_e` from each worker's own label shares on the
    shared tasks; NaN where :math:`p_e = 1`. A worker's repeated answers to one task count once (the first).

    J. Cohen. A coefficient of agreement for nominal scales. *Educational and Psychological Measurement*
    20(1), 1960.
    """
    ann, _, _ = encode(data)
    first = pd.DataFrame({"t": ann.task, "w": ann.worker, "l": ann.label}).drop_duplicates(["t", "w"])
    pairs = first.merge(first, on="t", suffixes=("a", "b"))
    pairs = pairs[pairs["wa"] < pairs["wb"]]
    k = ann.n_labels
    pair_id, keys = pd.factorize(pd.MultiIndex.from_arrays([pairs["wa"], pairs["wb"]]))
    p = len(keys)
    n = np.bincount(pair_id, minlength=p).astype(float)
    agree = np.bincount(pair_id, (pairs["la"].to_numpy() == pairs["lb"].to_numpy()).astype(float), p)
    ca = np.bincount(pair_id * k + pairs["la"].to_numpy(), minlength=p * k).reshape(p, k)
    cb = np.bincount(pair_id * k + pairs["lb"].to_numpy(), minlength=p * k).reshape(p, k)
    p_o = agree / np.maximum(n, 1)
    p_e = (ca * cb).sum(axis=1) / np.maximum(n, 1) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(np.isclose(p_e, 1.0), np.nan, (p_o - p_e) / (1 - p_e))
    a = np.array([key[0] for key in keys], dtype=np.int64)
    b = np.array([key[1] for key in keys], dtype=np.int64)
    out = pd.DataFrame({"worker_a": ann.workers[a] if p else [], "worker_b": ann.workers[b] if p else [],
                        "n": n.astype(int), "agreement": p_o, "kappa": kappa})
    return out[out["n"] >= min_shared].sort_values(["worker_a", "worker_b"]).reset_index(drop=True)


def krippendorff_alpha(data: pd.DataFrame,
                       level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
                       order: list | None = None) -> float:
    r"""Krippendorff's alpha, :math:`1 - D_o / D_e`, from the coincidence matrix; missing answers allowed.

    ``level`` picks the difference function: nominal (any two different values differ by 1), ordinal (by
    the number of answers ranked between them), interval (squared difference) or ratio. Ordinal uses
    ``order`` when given, else the sorted values; interval and ratio need numeric labels. Tasks with fewer
    than two answers are not pairable and are left out, as the method prescribes.

    K. Krippendorff. Computing Krippendorff's alpha-reliability. Annenberg School for Communication, 2011
    (the worked example there is in this package's tests).
    """
    counts, values = _unit_counts(data)
    if order is not None:
        missing = set(values) - set(order)
        if missing:
            raise QualityInputError(f"order does not list the values {sorted(missing, key=str)!r}")
        position = values.get_indexer(pd.Index([v for v in order if v in set(values)]))
        counts, values = counts[:, position], values[position]
    if not len(counts):
        raise QualityInputError("Krippendorff's alpha needs at least one task with two or more answers")
    m = counts.sum(axis=1)
    coincidence = (counts / (m - 1)[:, None]).T @ counts - np.diag((counts / (m - 1)[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=0)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif level == "ordinal":
        cum = np.cumsum(n_c)
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cum[hi] - np.concatenate([[0.0], cum])[lo]  # sum of n_g for g from lo to hi
        delta = (between - (n_c[lo] + n_c[hi]) / 2) ** 2
    elif level in ("interval", "ratio"):
        try:
            v = values.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise QualityInputError(f"{level} alpha needs numeric labels; got {list(values[:3])!r}") from None
        delta = np.subtract.outer(v, v) ** 2
        if level == "ratio":
            with np.errstate(invalid="ignore", divide="ignore"):
                delta = np.nan_to_num(delta / np.add.outer(v, v) ** 2)
    else:
        raise QualityInputError(f"level must be nominal, ordinal, interval or ratio; got {level!r}")
    d_o = (coincidence * delta).sum()
    d_e = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
    return float("nan") if d_e == 0 else float(1 - d_o / d_e)
