"""Majority vote and Wawa (majority vote weighted by each worker's agreement with the majority)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from labelwright.quality._data import clamp_gold, encode, worker_series
from labelwright.quality.base import CategoricalAggregator


def _accuracy(ann, label_codes: np.ndarray) -> np.ndarray:
    """Per worker, the share of their answers that equal ``label_codes`` of the task."""
    hits = np.bincount(ann.worker, weights=(ann.label == label_codes[ann.task]).astype(float),
                       minlength=ann.n_workers)
    return hits / np.bincount(ann.worker, minlength=ann.n_workers)


@dataclass(repr=False)
class MajorityVote(CategoricalAggregator):
    """The label most workers gave; ``probas_`` is each label's share of the task's votes.

    Ties: with ``tie_break="smallest"`` (the default) the smallest tied label wins, as in crowd-kit, so results
    never change between runs; with ``tie_break="random"`` a tied label is drawn with
    ``np.random.default_rng(random_state)``. ``skills_`` is each worker's agreement with the result.
    Gold answers, when given, are the result for their tasks and count in ``skills_``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2], "worker": list("abcab"), "label": ["x", "x", "y", "y", "y"]})
        >>> MajorityVote().fit_predict(df).tolist()
        ['x', 'y']
    """

    tie_break: Literal["smallest", "random"] = "smallest"
    random_state: int | None = 0

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> MajorityVote:
        ann, gold_tasks, gold_labels = encode(data, gold)
        counts = ann.counts()
        probas = clamp_gold(counts / counts.sum(axis=1, keepdims=True), gold_tasks, gold_labels)
        rng = np.random.default_rng(self.random_state) if self.tie_break == "random" else None
        self._set_result(ann, probas, rng)
        self.skills_ = worker_series(ann, _accuracy(ann, ann.labels.get_indexer(self.labels_.to_numpy())))
        return self


@dataclass(repr=False)
class Wawa(CategoricalAggregator):
    """Worker Agreement With Aggregate: a vote weighted by each worker's agreement with majority vote.

    Each worker's skill is the share of their answers that match the (unweighted) majority vote, where gold
    answers replace the vote on gold tasks; the result is the skill-weighted vote. Ties as in
    :class:`MajorityVote` with ``tie_break="smallest"``. ``probas_`` is each label's share of the weight.

    Appen (formerly Figure Eight) "Calculating worker agreement with aggregate (Wawa)"; crowd-kit's ``Wawa``.
    """

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None) -> Wawa:
        ann, gold_tasks, gold_labels = encode(data, gold)
        counts = ann.counts()
        mv = clamp_gold(counts / counts.sum(axis=1, keepdims=True), gold_tasks, gold_labels).argmax(axis=1)
        skills = _accuracy(ann, mv)
        weighted = ann.counts(skills[ann.worker])
        total = weighted.sum(axis=1, keepdims=True)
        probas = np.divide(weighted, total, out=counts / counts.sum(axis=1, keepdims=True), where=total > 0)
        self.skills_ = worker_series(ann, skills)
        self._set_result(ann, clamp_gold(probas, gold_tasks, gold_labels))
        return self
