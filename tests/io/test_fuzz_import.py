"""The importers fuzzed with random and malformed files, on SQLite and PostgreSQL.

JSONL, CSV and JSON-array files built from random records, random lines, NaN tokens, stray bytes, bad
encodings and cut-off text go through the path ``labelwright import`` takes (:func:`open_records` then
:func:`import_items`), through the CLI itself, and lists of random items through :func:`add_items` (the
API's path). Each import either succeeds, with the item count grown by exactly what it says it inserted,
or fails with a :class:`labelwright.errors.LabelwrightError` that has a message, and then the project holds
exactly what it held before (items and gold): nothing half-written.

``LABELWRIGHT_FUZZ_EXAMPLES`` runs more examples.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid

import hypothesis.strategies as st
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from labelwright.cli import main
from labelwright.errors import LabelwrightError, ValidationError
from labelwright.io.readers import open_records
from labelwright.services.items import add_items, chat_fields, import_items
from labelwright.services.projects import create_project

FUZZ_EXAMPLES = int(os.environ.get("LABELWRIGHT_FUZZ_EXAMPLES", "0"))
SCHEMA = {
    "name": "Fuzzed imports", "overlap": 1, "id_field": "id",
    "fields": [{"name": "text", "type": "text"}, {"name": "talk", "type": "chat", "required": False}],
    "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
}
KEYS = st.sampled_from(["id", "text", "talk", "gold", "other", "", "ID", "text "])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=10), st.sampled_from(["spam", "ham", "a1", "a2", "a1"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["role", "content", "x"]), inner, max_size=3)),
    max_leaves=8)
CHAT = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "bot"]),
                                       "content": st.text(max_size=10)}), max_size=3)
RECORD = st.one_of(
    st.fixed_dictionaries({"id": st.sampled_from(["a1", "a2", "a3", "b1"]) | st.text(max_size=6),
                           "text": st.text(max_size=20)},
                          optional={"talk": CHAT | VALUES, "gold": st.sampled_from(["spam", "ham", "eggs"]) | VALUES}),
    st.dictionaries(KEYS, VALUES, max_size=5))
JSONL_LINE = st.one_of(
    RECORD.map(lambda r: json.dumps(r, allow_nan=True).encode()), RECORD.map(lambda r: json.dumps(r).encode()),
    RECORD.map(lambda r: json.dumps(r).encode()), st.binary(max_size=20), st.text(max_size=20).map(str.encode),
    st.sampled_from([b"", b"  ", b"[1, 2]", b"null", b"NaN", b'{"id": "x", "text": NaN}', b"\xef\xbb\xbf{}",
                     b'{"id": "a1", "text": "t", "id": "a2"}', b'{"text": "' + b"\xff" + b'"}', b"{" * 3000]))
FUZZ = settings(max_examples=FUZZ_EXAMPLES or 20, derandomize=not FUZZ_EXAMPLES, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))


def _state(store, project) -> tuple:
    with store.read() as conn:
        items = conn.execute(text("SELECT external_id, data FROM items WHERE project_id = :p ORDER BY id"),
                             {"p": project.id}).all()
        gold = conn.execute(text("SELECT item_id, answers FROM gold WHERE project_id = :p ORDER BY item_id"),
                            {"p": project.id}).all()
    return [tuple(r) for r in items], [tuple(r) for r in gold]


def _import(store, project, do) -> dict | None:
    """Run an import; check it either succeeded as it says or failed cleanly, leaving the project as it was."""
    before = _state(store, project)
    try:
        result = do()
    except LabelwrightError as e:
        assert e.message.strip(), "an error without a message"
        assert _state(store, project) == before, "a failed import changed the project"
        return None
    after = _state(store, project)
    assert len(after[0]) == len(before[0]) + result["inserted"]
    assert after[0][:len(before[0])] == before[0], "an import changed items already there"
    for _, data in after[0]:
        json.loads(data)
    return result


def _from_file(store, project, path, fmt=None, encoding=None):
    def do():
        records, _ = open_records(path, fmt, json_columns=chat_fields(project), encoding=encoding)
        return import_items(store, project, records, file=str(path))
    return _import(store, project, do)


@pytest.fixture
def project(store):
    return create_project(store, {**SCHEMA, "slug": "fz"})


def test_jsonl_files(store, project, tmp_path):
    @FUZZ
    @given(st.lists(JSONL_LINE, max_size=8), st.sampled_from([None, None, "utf-8", "latin-1", "utf-16", "nope"]),
           st.sampled_from([b"\n", b"\r\n"]))
    def check(lines, encoding, newline):
        path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
        path.write_bytes(newline.join(lines))
        _from_file(store, project, path, encoding=encoding)
    check()


def _csv_bytes(header, rows, dialect: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, dialect=dialect)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


CELL = st.one_of(st.text(max_size=12), st.sampled_from(["", "spam", "ham", "a1", '[{"role": "user", "content": "hi"}]',
                                                        "[1, 2", "NaN", "\x00", "\r\n", '"', "null"]))


def test_csv_files(store, project, tmp_path):
    @FUZZ
    @given(st.one_of(st.just(["id", "text"]), st.just(["text", "talk", "gold", "id"]), st.lists(KEYS, min_size=1,
                                                                                              max_size=5)),
           st.lists(st.lists(CELL, min_size=2, max_size=4) | st.lists(CELL, max_size=6), max_size=6),
           st.sampled_from(["excel", "excel-tab"]), st.binary(max_size=30), st.booleans())
    def check(header, rows, dialect, junk, garble):
        body = _csv_bytes(header, rows, dialect)
        if garble:  # raw bytes spliced in: stray quotes, bad UTF-8, a cut-off record
            cut = len(body) // 2
            body = body[:cut] + junk + body[cut:]
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        path.write_bytes(body)
        _from_file(store, project, path)
    check()


def test_json_and_unknown_files(store, project, tmp_path):
    @FUZZ
    @given(st.lists(RECORD, max_size=4), st.sampled_from([".json", ".jsonl", ".ndjson", ".txt", ".parquet", ""]),
           st.sampled_from([None, "jsonl", "csv", "parquet"]))
    def check(records, suffix, fmt):
        """A Label Studio export (one JSON array), or a file whose name or format says something else."""
        path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
        path.write_text(json.dumps(records, indent=1))
        _from_file(store, project, path, fmt=fmt)
    check()


def test_items_from_the_api(store, project):
    @FUZZ
    @given(st.lists(st.one_of(RECORD, VALUES), max_size=6))
    def check(records):
        _import(store, project, lambda: add_items(store, project, records))
    check()


def test_cli_import(store, db_url, project, tmp_path):
    """The command itself: exit 0 with a summary, or exit non-zero with an error line, never a traceback."""
    @settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 5))
    @given(st.lists(JSONL_LINE, max_size=5), st.sampled_from([".jsonl", ".csv", ".json"]))
    def check(lines, suffix):
        path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
        path.write_bytes(b"\n".join(lines))
        before = _state(store, project)
        res = CliRunner().invoke(main, ["--db", db_url, "import", "fz", str(path)])
        assert res.exit_code in (0, 1, 2), (res.exit_code, res.output, res.exception)
        assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
        assert "Traceback" not in res.output
        if res.exit_code:
            assert res.output.strip() and _state(store, project) == before
    check()


BAD_LINES = [b'{"id": "bad", "text": NaN}', b'{"id": "bad"}', b'{"id": "bad", "text": 5}',
             b'{"id": "v0", "text": "again"}',
             b'{"id": "bad", "text": "t", "talk": "not a chat"}', b'{"id": "bad", "text": "t", "gold": "eggs"}',
             b"[1]", b"{", b'{"id": "bad", "text": "\xff"}', b'{"id": "bad", "text": "t", "other": 1e400}']


def test_one_bad_record_writes_nothing(store, project, tmp_path):
    """Many good records and one bad one anywhere among them (the last of a big batch, say): refused whole."""
    @FUZZ
    @given(st.lists(st.text(max_size=30), min_size=1, max_size=40), st.integers(0, 40), st.sampled_from(BAD_LINES),
           st.sampled_from([".jsonl", ".csv"]))
    def check(texts, where, bad, suffix):
        tag = uuid.uuid4().hex[:8]
        records = [{"id": f"v{k}-{tag}" if k else "v0", "text": t, "gold": "spam" if k % 3 == 0 else ""}
                   for k, t in enumerate(texts)]
        path = tmp_path / f"{tag}{suffix}"
        if suffix == ".jsonl":
            lines = [json.dumps({k: v for k, v in r.items() if v != ""}).encode() for r in records]
            lines.insert(min(where, len(lines)), bad)
            path.write_bytes(b"\n".join(lines))
        else:
            rows = [[r["id"], r["text"], r["gold"]] for r in records]
            rows.insert(min(where, len(rows)), ["bad", "t", "eggs"] if b"gold" in bad else ["v0", "again", ""])
            path.write_bytes(_csv_bytes(["id", "text", "gold"], rows, "excel"))
        assert _from_file(store, project, path) is None, "a file with a bad record was imported"
    check()


def test_an_id_with_nul_is_refused_on_both_databases(store, project, tmp_path):
    """Found by fuzzing the format importers: PostgreSQL's text cannot hold NUL, and an item id with one
    failed there with the driver's DataError (SQLite stored it). Now a clear error on both, nothing written."""
    before = _state(store, project)
    with pytest.raises(ValidationError, match="NUL") as e:
        add_items(store, project, [{"id": "fine", "text": "t"}, {"id": "a\x00b", "text": "t"}])
    assert e.value.field == "id" and e.value.line == 2
    path = tmp_path / "nul.jsonl"
    path.write_text('{"id": "fine", "text": "t"}\n{"id": "a\\u0000b", "text": "t"}\n')
    with pytest.raises(ValidationError, match="NUL") as e:
        import_items(store, project, open_records(str(path))[0], file=str(path))
    assert e.value.line == 2 and e.value.file == str(path)
    assert _state(store, project) == before
