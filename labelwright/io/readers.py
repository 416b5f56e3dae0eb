"""Readers: stream items out of JSONL, CSV, Parquet files and pandas DataFrames.

Each reader yields ``(line, record)`` pairs, where ``line`` is what an error message should point to
(the 1-based line of a JSONL file, the first line of a CSV record, the 1-based row of a Parquet file or
DataFrame). In CSV an empty cell is a missing value, and so is a NaN cell of a DataFrame (pandas' own
marker for one, as a read CSV's empty cells become). NaN and Infinity anywhere else (a JSONL token, a
Parquet float, inside a list or an object) are values JSON cannot hold: the import refuses them, naming
the file, line and field, rather than storing null. Nothing is read into memory whole.

Text is UTF-8 unless ``encoding`` says otherwise (the CLI's ``--encoding``); a line that is not valid in
the encoding is named, with the hint to pass ``--encoding``. A JSON file holding one array instead of one
object per line (a Label Studio export is one) is recognised and refused with what to do instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

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


ENCODING_HINT = "if the file is in another encoding, pass it, e.g. --encoding latin-1 (or cp1252)"


def _not_in_encoding(e: UnicodeDecodeError, encoding: str, file: str, line: int) -> ValidationError:
    bad = e.object[e.start:e.start + 1].hex()
    return ValidationError(f"not {encoding} text (byte 0x{bad} at column {e.start + 1}): {ENCODING_HINT}",
                           file=file, line=line)


def read_jsonl(stream, file: str, encoding: str | None = None) -> Iterator[tuple[int, dict]]:
    """``stream``: binary. ``encoding``: of the text (default UTF-8, which orjson reads as bytes)."""
    utf8 = encoding is None or codecs.lookup(encoding).name == "utf-8"
    for n, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            if not utf8:
                raw = raw.decode(encoding)
            elif n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            record = orjson.loads(raw)
        except UnicodeDecodeError as e:
            raise _not_in_encoding(e, encoding or "UTF-8", file, n) from None
        except orjson.JSONDecodeError as e:
            if utf8:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as u:
                    raise _not_in_encoding(u, "UTF-8", file, n) from None
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
    import pyarrow.parquet as pq  # noqa: PLC0415 - heavy (about a second to import); only Parquet files need it

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


LABEL_STUDIO_HINT = ("import it with its annotations and config by `labelwright import-labelstudio {file} --config "
                     "label_config.xml`, or the items alone with "
                     "jq -c '.[] | .data' {file} > items.jsonl (see docs/cli.md, \"Importing\")")


def check_not_a_json_array(path: Path, file: str) -> None:
    """Refuse a file whose text starts with ``[``: one JSON array, not JSON Lines. Say whether it looks
    like a Label Studio export (objects with ``data`` and ``annotations`` or ``predictions``)."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    text = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if not text.startswith(b"["):
        return
    if b'"data"' in head and (b'"annotations"' in head or b'"predictions"' in head):
        raise ValidationError("this is a Label Studio export (a JSON array of tasks with \"data\" and "
                              "\"annotations\"), not JSON Lines: " + LABEL_STUDIO_HINT.format(file=file),
                              file=file)
    raise ValidationError("this is one JSON array, not JSON Lines (one object per line): convert it with "
                          f"jq -c '.[]' {file} > items.jsonl", file=file)


def _line_of_bad_text(path: Path, encoding: str) -> tuple[int, UnicodeDecodeError] | None:
    """The first line of ``path`` that is not valid ``encoding`` text, and why (a second pass, on error)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as e:
                return n, e
    return None


def open_records(path: str | Path, fmt: str | None = None, json_columns: frozenset[str] = frozenset(),
                 encoding: str | None = None) -> tuple[Iterator[tuple[int, dict]], int | None]:
    """Records of a file and its size in bytes (for a progress bar), or raise a clear error.

    ``encoding``: the text encoding of a JSONL or CSV file (default UTF-8, with or without a BOM)."""
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise ValidationError("no such file", file=file)
    fmt = detect_format(path, fmt)
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValidationError(f"unknown encoding {encoding!r}: try utf-8, latin-1 or cp1252",
                                  file=file) from None
        if fmt == "parquet":
            raise ValidationError("--encoding is for JSONL and CSV files; Parquet stores its own", file=file)
    size = path.stat().st_size
    if fmt == "parquet":
        return read_parquet(path, file), size
    if fmt == "jsonl":
        check_not_a_json_array(path, file)

    def gen():
        with open(path, "rb") as raw:
            if fmt == "jsonl":
                yield from read_jsonl(raw, file, encoding)
            else:
                enc = encoding or "utf-8-sig"
                text = io.TextIOWrapper(raw, encoding=enc, newline="")
                try:
                    yield from read_csv(text, file, json_columns)
                except UnicodeDecodeError as e:
                    shown = "UTF-8" if encoding is None else encoding
                    found = _line_of_bad_text(path, enc)
                    if found is None:  # a character split across lines cannot be: report what we know
                        raise ValidationError(f"not {shown} text: {e.reason}; {ENCODING_HINT}", file=file) from None
                    raise _not_in_encoding(found[1], shown, file, found[0]) from None
    return gen(), size
