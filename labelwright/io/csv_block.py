"""Columns of Python values as CSV text, exactly as :func:`csv.writer` writes them, a column at a time.

The flat export (:func:`labelwright.services.export.csv_chunks`) has its rows as columns already (lists of
Python values). ``csv.writer(buf, lineterminator="\\n").writerows(zip(*columns))`` formats them a field at a
time, about 190 ns per field: for a million-item export with 30 columns, most of a CSV export's time.
:func:`csv_block` gives the same bytes from whole columns with pyarrow's compute functions (C++): each
column becomes one Arrow string array (numbers formatted as Python's ``str`` does), the fields that need
quotes are quoted in one pass over the column, and the rows are joined with one element-wise join.

Why not ``pyarrow.csv.write_csv``? It quotes every string (``quoting_style="needed"``) or none, writes
``true``/``false`` for booleans and ``1`` for the float ``1.0``: a different file from the one labelwright
has always written (``tests/io/test_csv_block.py`` holds the two writers to the same bytes).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

# csv.writer's QUOTE_MINIMAL with lineterminator "\n" quotes a field holding the delimiter, the quote
# character or a character of the line terminator (a lone "\r" is written as it is).
_NEEDS_QUOTES = (b",", b'"', b"\n")
_NEEDS_QUOTES_RE = '[,"\n]'
_TEXT = {str, type(None)}
_INTS = {int, type(None)}
_FLOATS = {float, type(None)}
# 64-bit offsets (large_string): a chunk's text may pass 2 GiB when its items hold long texts.
_QUOTE, _COMMA, _NEWLINE, _NOTHING = (pa.scalar(c, pa.large_string()) for c in ('"', ",", "\n", ""))


def _text(column: list) -> pa.Array:
    """The column as strings, each value as csv.writer writes it (``str(v)``; None as null)."""
    kinds = set(map(type, column))
    if kinds <= _TEXT:
        return pa.array(column, pa.large_string())
    if kinds <= _INTS:  # bool is not int here (type(True) is bool): it is written "True"
        try:
            return pa.array(column, pa.int64()).cast(pa.large_string())
        except (OverflowError, pa.ArrowInvalid):  # an integer beyond 64 bits
            pass
    if kinds == {float}:
        return pa.array(list(map(float.__repr__, column)), pa.large_string())
    if kinds <= _FLOATS:
        return pa.array([None if v is None else float.__repr__(v) for v in column], pa.large_string())
    return pa.array([v if v is None or type(v) is str else str(v) for v in column], pa.large_string())


def _quoted(values: pa.Array) -> pa.Array:
    """``values`` with each field that needs quotes quoted (its quotes doubled), as csv.writer does."""
    chars = _data(values)
    if not any(c in chars for c in _NEEDS_QUOTES):  # most columns (ids, labels, times): one scan of the text
        return values
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES_RE)
    quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(values, '"', '""'), _QUOTE, _NOTHING)
    return pc.if_else(needs, quoted, values)


def csv_block(columns: Sequence[list]) -> bytes:
    """The rows ``zip(*columns)`` as CSV (UTF-8, ``"\\n"`` after each row): the bytes of
    ``csv.writer(buf, lineterminator="\\n").writerows(zip(*columns))``, encoded."""
    if not columns or not len(columns[0]):
        return b""
    if len(columns) == 1:  # csv.writer quotes a row's only field when it is empty: not worth a fast path
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(zip(*columns))
        return buf.getvalue().encode()
    fields = [_quoted(_text(c)) for c in columns]
    rows = pc.binary_join_element_wise(*fields, _COMMA, null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(rows, _NOTHING, _NEWLINE)
    return _data(lines)


def _data(strings: pa.Array) -> bytes:
    """The characters of a string array's values, one after another (its data buffer, from its first
    value's offset to past its last)."""
    offsets = strings.buffers()[1]
    data = strings.buffers()[2]
    ends = pa.Array.from_buffers(pa.int64(), len(strings) + 1, [None, offsets], offset=strings.offset)
    start, end = ends[0].as_py(), ends[len(strings)].as_py()
    return data.slice(start, end - start).to_pybytes() if data is not None else b""
