"""Active learning: which unlabelled items to label next, as a pure function of features and predictions.

:func:`select_batch` returns the indices of the next ``k`` items to send to people.

The method, in two phases:

1. **Cold start.** While fewer than ``cold_start`` items are labelled, the model's probabilities say little,
   so the batch is a uniform random sample of the unlabelled items (``numpy.random.default_rng(seed)``;
   the global numpy seed is neither read nor changed). Random labels also give the model an unbiased
   first view of the classes.
2. **Uncertainty mixed with diversity.** Afterwards every unlabelled item gets the *margin* between its
   two most probable classes, ``p(1st) - p(2nd)``; the smallest margins are the items the model is least
   sure of (margin sampling; Scheffer et al. 2001, reviewed in Settles 2009). Taking the top ``k`` alone
   picks near-duplicates (ten copies of the same spam comment sit at the same margin), so, as in
   "Diverse mini-batch active learning" (Zhdanov 2019), the ``k * m`` most uncertain items are
   pre-filtered and ``k`` of them are chosen to cover that set: greedy k-center (Gonzalez 1985; Sener &
   Savarese 2018), starting from the most uncertain candidate and then repeatedly adding the candidate
   whose cosine distance to its nearest already-picked item is largest (max-min). Ties go to the more
   uncertain candidate. Zhdanov clusters the pre-filtered set with weighted k-means instead; greedy
   k-center is deterministic, needs no iterations and spreads the batch just as well for this purpose.

``diversity`` in [0, 1] sets the pre-filter factor ``m = 1 / (1 - diversity)``: 0 is pure margin sampling
(the ``k`` smallest margins), 0.5 looks at the ``2k`` most uncertain, 0.9 at the ``10k`` most uncertain
(Zhdanov's beta = 10), and 1 runs k-center over every unlabelled item (uncertainty only breaks ties and
picks the first).

References:
    B. Settles. "Active Learning Literature Survey", Computer Sciences Technical Report 1648, University
    of Wisconsin-Madison, 2009 (section 3.1, margin sampling).
    T. Scheffer, C. Decomain, S. Wrobel. "Active hidden Markov models for information extraction", IDA 2001.
    F. Zhdanov. "Diverse mini-batch Active Learning", arXiv:1901.05954, 2019.
    O. Sener, S. Savarese. "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
    ICLR 2018.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 8)); x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> p = rng.dirichlet([1, 1], size=100)
    >>> labelled = np.zeros(100, bool); labelled[:20] = True
    >>> batch = select_batch(x, p, labelled, 5, cold_start=10)
    >>> len(batch), bool(labelled[batch].any())
    (5, False)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_COLD_START", "margins", "select_batch"]

DEFAULT_COLD_START = 100
"""Labels drawn at random before the model's uncertainty is trusted."""


def margins(probas: np.ndarray) -> np.ndarray:
    """``p(most probable class) - p(second most probable)`` per row; small means uncertain.

    A single-column ``probas`` (only one class seen so far) has margin 1 everywhere.
    """
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probas must be 2-d (items x classes), got shape {p.shape}")
    if p.shape[1] < 2:
        return np.ones(p.shape[0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _k_center(x: np.ndarray, k: int) -> np.ndarray:
    """Greedy max-min selection of ``k`` rows of unit-norm ``x`` (row order = priority), starting at row 0."""
    picked = np.empty(k, dtype=np.intp)
    picked[0] = 0
    min_dist = 1.0 - x @ x[0]
    min_dist[0] = -np.inf
    for j in range(1, k):
        nxt = int(np.argmax(min_dist))  # first maximum: the more uncertain candidate wins ties
        picked[j] = nxt
        np.minimum(min_dist, 1.0 - x @ x[nxt], out=min_dist)
        min_dist[picked[: j + 1]] = -np.inf
    return picked


def select_batch(
    features: np.ndarray,
    probas: np.ndarray | None,
    labelled_mask: np.ndarray,
    k: int,
    *,
    cold_start: int = DEFAULT_COLD_START,
    diversity: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """The indices of the next ``k`` unlabelled items to label (see the module docstring for the method).

    Parameters:
        features: (n, d) item vectors with L2-normalised rows (as :mod:`labelwright.assist.features` gives).
        probas: (n, c) class probabilities from the current model, or None during the cold start.
        labelled_mask: (n,) bool, True for items that already have a label; those are never returned.
        k: batch size. When ``k`` is at least the number of unlabelled items, all of them are returned.
        cold_start: below this many labelled items the batch is random.
        diversity: 0 = pure margin sampling, 1 = pure k-center over the unlabelled items; in between,
            k-center over the ``k / (1 - diversity)`` most uncertain.
        seed: for the cold-start sample (a local ``default_rng``).

    Returns:
        int array of distinct item indices, at most ``k`` long; in pick order after the cold start.
    """
    labelled_mask = np.asarray(labelled_mask, dtype=bool)
    n = labelled_mask.shape[0]
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be between 0 and 1, got {diversity}")
    pool = np.flatnonzero(~labelled_mask)
    if k == 0 or pool.size == 0:
        return np.empty(0, dtype=np.intp)
    if k >= pool.size:
        return pool
    if int(labelled_mask.sum()) < cold_start:
        return np.sort(np.random.default_rng(seed).choice(pool, size=k, replace=False))
    if probas is None:
        raise ValueError(
            f"probas is None but {int(labelled_mask.sum())} items are labelled (cold_start={cold_start}); "
            "pass the model's predicted probabilities for every item"
        )
    probas = np.asarray(probas)
    if probas.shape[0] != n or np.shape(features)[0] != n:
        raise ValueError(
            f"features ({np.shape(features)[0]} rows), probas ({probas.shape[0]} rows) and labelled_mask "
            f"({n}) must describe the same items"
        )
    margin = margins(probas[pool])
    order = pool[np.argsort(margin, kind="stable")]  # most uncertain first
    m = math.inf if diversity >= 1.0 else 1.0 / (1.0 - diversity)
    n_cand = pool.size if m == math.inf else min(pool.size, max(k, math.ceil(k * m - 1e-9)))
    candidates = order[:n_cand]
    if n_cand == k:
        return candidates
    x = np.asarray(features, dtype=np.float32)[candidates]
    return candidates[_k_center(x, k)]
