"""Readers: stream items out of JSONL, CSV, Parquet files and pandas DataFrames.

Each reader yields ``(line, record)`` pairs, where ``line`` is what an error message should point to
(the 1-based line of a JSONL file, the first line of a CSV record, the 1-based row of a Parquet file or
DataFrame). In CSV an empty cell is a missing value, and so is a NaN cell of a DataFrame (pandas' own
marker for one, as a read CSV's empty cells become). NaN and Infinity anywhere else (a JSONL token, a
Parquet float, inside a list or an object) are values JSON cannot hold: the import refuses them, naming
the file, line and field, rather than storing null. Nothing is read into memory whole.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Iterator

import orjson

from labelwright.errors import ValidationError
from labelwright.schema import NONFINITE_MESSAGE, nonfinite_path

FORMATS = ("jsonl", "csv", "parquet")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ValidationError(f"unknown format {fmt!r}; use one of {list(FORMATS)}", file=str(path))
        return fmt
    suffix = Path(path).suffix.lower()
    mapping = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
               ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in mapping:
        raise ValidationError(f"cannot tell the format from {suffix!r}: pass --format jsonl|csv|parquet",
                              file=str(path))
    return mapping[suffix]


def read_jsonl(stream, file: str) -> Iterator[tuple[int, dict]]:
    for n, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            where = _nonfinite_field(raw)
            if where is not None:
                raise ValidationError(NONFINITE_MESSAGE, field=where, file=file, line=n) from None
            raise ValidationError(f"not valid JSON: {e}", file=file, line=n) from None
        yield n, record


def _nonfinite_field(raw: bytes) -> str | None:
    """The field of the first NaN or Infinity (or a number too large for a double) in a line that orjson
    refused, read again with Python's json, which takes them; None when that is not why."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if (where := nonfinite_path(v, str(k))) is not None:
                return where
    return None


def read_csv(stream, file: str, json_columns: frozenset[str] = frozenset()) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise ValidationError(f"malformed CSV header: {e}", file=file, line=1) from None
    if len(set(header)) != len(header):
        raise ValidationError("the header repeats a column name", file=file, line=1)
    width = len(header)
    while True:
        start = reader.line_num + 1  # a quoted cell may span lines: point at the record's first line
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ValidationError(f"malformed CSV: {e}", file=file, line=start) from None
        if not row:
            continue
        if len(row) != width:
            raise ValidationError(f"expected {width} columns, found {len(row)}", file=file, line=start)
        # An empty cell is a missing value.
        record = {k: v for k, v in zip(header, row) if v != ""}
        for col in json_columns:
            value = record.get(col)
            if value:
                try:
                    record[col] = orjson.loads(value)
                except orjson.JSONDecodeError as e:
                    raise ValidationError(f"expected JSON in this column: {e}", field=col, file=file,
                                          line=start) from None
        yield start, record


def _clean(value):
    """Arrow/pandas scalars to plain Python values (a NaN stays a NaN, for the import to refuse)."""
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def read_parquet(path: str | Path, file: str, batch_size: int = 20_000) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise ValidationError(f"not a readable Parquet file: {e}", file=file) from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row += 1
            yield row, {k: _clean(v) for k, v in record.items() if v is not None}


def read_dataframe(df, name: str = "DataFrame") -> Iterator[tuple[int, dict]]:
    columns = list(df.columns)
    for n, values in enumerate(df.itertuples(index=False, name=None), start=1):
        record = {}
        for col, v in zip(columns, values):
            v = _clean(v)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):  # NaN: pandas' missing value
                record[str(col)] = v
        yield n, record


def open_records(path: str | Path, fmt: str | None = None,
                 json_columns: frozenset[str] = frozenset()) -> tuple[Iterator[tuple[int, dict]], int | None]:
    """Records of a file and its size in bytes (for a progress bar), or raise a clear error."""
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise ValidationError("no such file", file=file)
    fmt = detect_format(path, fmt)
    size = path.stat().st_size
    if fmt == "parquet":
        return read_parquet(path, file), size

    def gen():
        with open(path, "rb") as raw:
            if fmt == "jsonl":
                yield from read_jsonl(raw, file)
            else:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                try:
                    yield from read_csv(text, file, json_columns)
                except UnicodeDecodeError as e:
                    raise ValidationError(f"not UTF-8 text: {e.reason}", file=file) from None
    return gen(), size
