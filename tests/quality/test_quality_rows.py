"""The row reductions of the quality models' inner loops (labelwright.quality._data.row_max, row_sum) give
numpy's values bit for bit, on any shape, including infinities and signed zeros (a NaN stays a NaN)."""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelwright.quality._data import normalize_log, row_max, row_sum

_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 40), st.integers(1, 12)), elements=_FLOATS))
@example(np.array([[-0.0, -0.0], [-0.0, 0.0], [0.0, -0.0]]))  # numpy's sum starts from +0.0 (hypothesis found it)
def test_row_reductions_are_numpys_bit_for_bit(a):
    for ours, theirs in ((row_max(a), a.max(axis=1, keepdims=True) if len(a) else None),
                         (row_sum(a), a.sum(axis=1, keepdims=True))):
        if theirs is None:
            continue
        assert ours.shape == theirs.shape
        nan = np.isnan(theirs)
        assert (np.isnan(ours) == nan).all()
        assert ours[~nan].tobytes() == theirs[~nan].tobytes()  # same bits, the sign of zero too


def test_normalize_log_is_unchanged_on_a_large_posterior():
    rng = np.random.default_rng(3)
    for k in (2, 3, 5, 7, 9):
        log_p = rng.standard_normal((20_000, k)) * 30
        expected = log_p.copy()
        top = expected.max(axis=1, keepdims=True)
        expected -= top
        np.exp(expected, out=expected)
        z = expected.sum(axis=1, keepdims=True)
        expected /= z
        got, loglik = normalize_log(log_p)
        assert got.tobytes() == expected.tobytes()
        assert loglik == float(np.log(z).sum() + top.sum())
