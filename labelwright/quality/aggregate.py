"""``aggregate(data)``: the default truth inference for whatever answers it is given.

Categorical answers go to :func:`labelwright.quality.categorical.aggregate_proba` (its module says how the
method was chosen and how ``confidence`` is calibrated on gold); numbers, ratings and pairwise preferences
to the modules of their kind.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from labelwright.quality.categorical import aggregate_proba, top_label
from labelwright.quality.errors import QualityInputError
from labelwright.quality.numeric import aggregate_numeric
from labelwright.quality.ordinal import aggregate_ordinal_proba
from labelwright.quality.pairwise import aggregate_pairs


def aggregate(data: pd.DataFrame, gold: pd.Series | None = None, *,
              kind: Literal["categorical", "numeric", "ordinal", "pairwise"] | None = None,
              random_state: int | None = 0, scale=None) -> pd.DataFrame:
    """Aggregate answers with the default method; returns a DataFrame indexed by task: label, confidence.

    ``kind`` is guessed when not given: ``pairwise`` when ``data`` has ``left`` and ``right`` columns,
    ``numeric`` when its labels are floats, else ``categorical`` (pass ``kind="numeric"`` for integer
    ratings you want averaged rather than voted on).

    * categorical: see :mod:`labelwright.quality.categorical`; ``confidence`` is the probability that ``label``
      is right.
    * numeric: :class:`GaussianWorkers`; ``label`` is the estimate, ``std`` its posterior standard deviation
      and ``confidence`` the probability that the truth lies within half an answer step (the smallest gap
      between distinct answers) of ``label``.
    * ordinal (ratings on a scale of whole numbers; ``scale`` lists its points, else the answers' values):
      :class:`OrdinalWorkers`; ``label`` is the most probable point and ``confidence`` its posterior
      probability, which falls when a task's answers spread (a 2 and two 5s are not a confident 5). Opt-in:
      on the one real graded dataset (TREC relevance 0-3) voting on categories is more accurate
      (docs/quality.md, "Ratings").
    * pairwise: :class:`NoisyBradleyTerry`, one row per ``task`` (or per ``(left, right)`` pair when there
      is no ``task`` column); ``label`` is ``"left"``, ``"right"`` or ``"tie"`` and ``confidence`` its
      modelled probability.

    ``result.attrs["method"]`` names the method used. Gold answers (Series task -> label) anchor the fit
    and, for categorical data with at least ``MIN_GOLD`` gold tasks, calibrate ``confidence``.
    """
    if not isinstance(data, pd.DataFrame):
        raise QualityInputError(f"expected a pandas DataFrame of answers; got {type(data).__name__}")
    if kind is None:
        if {"left", "right"} <= set(data.columns):
            kind = "pairwise"
        elif "label" in data.columns and pd.api.types.is_float_dtype(data["label"]):
            kind = "numeric"
        else:
            kind = "categorical"
    if kind == "numeric":
        return aggregate_numeric(data, gold)
    if kind == "ordinal":
        return top_label(aggregate_ordinal_proba(data, scale, gold))
    if kind == "pairwise":
        return aggregate_pairs(data, random_state=random_state)
    if kind != "categorical":
        raise QualityInputError(f"kind must be 'categorical', 'numeric', 'ordinal' or 'pairwise'; got {kind!r}")
    return top_label(aggregate_proba(data, gold, random_state=random_state))
