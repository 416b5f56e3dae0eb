"""labelwright.io.csv_block writes exactly the bytes csv.writer writes, for any values the flat export holds."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwright.io.csv_block import csv_block


def _reference(columns: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(zip(*columns))
    return buf.getvalue().encode()


# Text with every character csv.writer treats specially (delimiter, quote, both line-end characters,
# tabs, spaces, NUL) and non-ASCII; numbers across the ranges where Python switches notation.
_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t\'#é€😀0\x00')), max_size=8)
_VALUE = st.one_of(st.none(), _TEXT, st.integers(min_value=-(2**80), max_value=2**80), st.booleans(),
                   st.floats(allow_nan=True, allow_infinity=True))


def _column(values: st.SearchStrategy, n: int) -> st.SearchStrategy:
    return st.lists(values, min_size=n, max_size=n)


@st.composite
def _columns(draw) -> list[list]:
    n_rows = draw(st.integers(min_value=1, max_value=12))
    kinds = [_VALUE, _TEXT, st.one_of(st.none(), _TEXT), st.one_of(st.none(), st.integers(-5, 2**62)),
             st.floats(allow_nan=False), st.one_of(st.none(), st.floats(0, 1)), st.booleans()]
    return [draw(_column(draw(st.sampled_from(kinds)), n_rows))
            for _ in range(draw(st.integers(min_value=1, max_value=6)))]


@settings(max_examples=400, deadline=None)
@given(_columns())
def test_same_bytes_as_csv_writer(columns):
    assert csv_block(columns) == _reference(columns)


@pytest.mark.parametrize("columns", [
    [["a,b", "", None], ['say "hi"', "x", None]],               # quoted fields; empty text and None alike
    [["line\nbreak", "cr\ronly"], [1.0, 1e-07], [True, False]],  # "\r" alone is not quoted; 1.0, 1e-07, True
    [[2**70, -1], [{"a": 1}, ["x"]]],                            # beyond 64 bits; anything else is str()
    [[""], [""]],                                                # a row of empty fields
    [["", None]],                                                # one column: csv.writer quotes an empty row
])
def test_the_cases_csv_writer_treats_specially(columns):
    assert csv_block(columns) == _reference(columns)


def test_no_rows_is_no_bytes():
    assert csv_block([[], []]) == b"" == _reference([[], []])
