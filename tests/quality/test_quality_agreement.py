"""Agreement measures against published worked examples and hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from labelwright.quality import QualityInputError, cohen_kappa, fleiss_kappa, krippendorff_alpha, percent_agreement


def long(table: dict) -> pd.DataFrame:
    """{worker: [value per unit or None]} to the long format, leaving missing values out."""
    return pd.DataFrame([(unit, worker, v) for worker, values in table.items()
                         for unit, v in enumerate(values) if v is not None], columns=["task", "worker", "label"])


# K. Krippendorff, "Computing Krippendorff's alpha-reliability" (2011), section C: 4 observers, 12 units,
# missing data. Published: nominal .743, ordinal .815, interval .849, ratio .797.
KRIPPENDORFF_2011 = long({
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
})


@pytest.mark.parametrize("level,expected", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                            ("ratio", 0.797)])
def test_krippendorff_alpha_matches_the_worked_example(level, expected):
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_alpha_exact_nominal_value_and_order():
    # the coincidence matrix of the example gives 1 - 34 * 10/3 ... computed exactly: 0.7434
    assert krippendorff_alpha(KRIPPENDORFF_2011) == pytest.approx(0.74342, abs=1e-5)
    # ordinal with the values' natural order given explicitly is the same
    assert krippendorff_alpha(KRIPPENDORFF_2011, "ordinal", order=[1, 2, 3, 4, 5]) == pytest.approx(
        krippendorff_alpha(KRIPPENDORFF_2011, "ordinal"))
    # reversing the order does not change an ordinal distance
    assert krippendorff_alpha(KRIPPENDORFF_2011, "ordinal", order=[5, 4, 3, 2, 1]) == pytest.approx(
        krippendorff_alpha(KRIPPENDORFF_2011, "ordinal"))
    with pytest.raises(QualityInputError, match="order does not list"):
        krippendorff_alpha(KRIPPENDORFF_2011, "ordinal", order=[1, 2])


def test_krippendorff_alpha_perfect_and_text_labels():
    same = long({"a": ["x", "y", "z"], "b": ["x", "y", "z"]})
    assert krippendorff_alpha(same) == 1.0
    with pytest.raises(QualityInputError, match="numeric labels"):
        krippendorff_alpha(same, "interval")
    with pytest.raises(QualityInputError, match="two or more answers"):
        krippendorff_alpha(long({"a": ["x", "y"]}))


# Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters,
# 5 categories; P-bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def fleiss_frame() -> pd.DataFrame:
    rows = []
    for subject, counts in enumerate(FLEISS_COUNTS):
        rater = 0
        for category, n in enumerate(counts):
            for _ in range(n):
                rows.append((subject, f"r{subject}-{rater}", category + 1))
                rater += 1
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_fleiss_kappa_matches_fleiss_1971():
    assert fleiss_kappa(fleiss_frame()) == pytest.approx(0.210, abs=5e-4)
    assert percent_agreement(fleiss_frame()) == pytest.approx(0.378, abs=5e-4)


def test_cohen_kappa_by_hand():
    # 10 shared tasks. a: yes x6, no x4; b: yes x5, no x5; they agree on 8 (5 yes-yes, 3 no-no).
    a = ["y"] * 6 + ["n"] * 4
    b = ["y"] * 5 + ["n"] * 5
    df = long({"a": a, "b": b, "c": [None] * 9 + ["y"]})
    table = cohen_kappa(df)
    row = table[(table.worker_a == "a") & (table.worker_b == "b")].iloc[0]
    p_o, p_e = 0.9, 0.6 * 0.5 + 0.4 * 0.5
    assert row["n"] == 10 and row["agreement"] == pytest.approx(p_o)
    assert row["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e))
    assert len(cohen_kappa(df, min_shared=2)) == 1  # a~c and b~c share one task only
    constant = cohen_kappa(long({"a": ["y", "y"], "b": ["y", "y"]}))
    assert math.isnan(constant["kappa"].iloc[0])


def test_percent_agreement_by_hand():
    df = long({"a": ["x", "x"], "b": ["x", "y"], "c": ["x", "y"]})
    # task 0: all agree (1.0); task 1: pairs (x,y) (x,y) (y,y) -> 1/3
    assert percent_agreement(df) == pytest.approx((1 + 1 / 3) / 2)
