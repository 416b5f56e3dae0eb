"""The shape every categorical method shares: ``fit(data, gold=None)`` returns self, results end in ``_``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelwright.quality._data import Annotations, argmax, label_series, task_frame


class CategoricalAggregator:
    """Base class of the categorical truth-inference methods.

    Subclasses implement ``fit(data, gold=None)`` and call :meth:`_set_result`. After ``fit``:

    * ``probas_``: DataFrame indexed by ``task`` with one column per label, each row summing to 1;
    * ``labels_``: Series indexed by ``task``, the most probable label (ties go to the smallest label,
      unless the method documents a different rule).
    """

    labels_: pd.Series
    probas_: pd.DataFrame

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None):  # pragma: no cover - interface
        raise NotImplementedError

    def fit_predict(self, data: pd.DataFrame, gold: pd.Series | None = None) -> pd.Series:
        """Fit on ``data`` and return the label of each task."""
        return self.fit(data, gold).labels_

    def fit_predict_proba(self, data: pd.DataFrame, gold: pd.Series | None = None) -> pd.DataFrame:
        """Fit on ``data`` and return each task's probability for each label."""
        return self.fit(data, gold).probas_

    def _set_result(self, ann: Annotations, probas: np.ndarray, rng: np.random.Generator | None = None) -> None:
        self.probas_ = task_frame(ann, probas)
        self.labels_ = label_series(ann, argmax(probas, rng))

    def __repr__(self) -> str:
        fields = getattr(self, "__dataclass_fields__", {})
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name, f in fields.items() if f.init)
        return f"{type(self).__name__}({args})"
