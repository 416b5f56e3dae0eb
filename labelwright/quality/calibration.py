"""How well confidences match accuracy: a reliability table and the expected calibration error."""

from __future__ import annotations

import numpy as np
import pandas as pd


def reliability_table(confidence, correct, bins: int = 10) -> pd.DataFrame:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence and accuracy."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    with np.errstate(invalid="ignore"):
        table = pd.DataFrame({"low": np.arange(bins) / bins, "high": np.arange(1, bins + 1) / bins, "n": n,
                              "confidence": np.bincount(b, conf, bins) / n,
                              "accuracy": np.bincount(b, hit, bins) / n})
    return table[table["n"] > 0].reset_index(drop=True)


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """Answer-weighted mean gap between confidence and accuracy over the bins (0 is perfect)."""
    table = reliability_table(confidence, correct, bins)
    return float((table["n"] * (table["confidence"] - table["accuracy"]).abs()).sum() / table["n"].sum())
