"""One way to write SQL in the services (issue 11): SQLAlchemy Core, with hand-written SQL kept to the hot
statements, which live in ``labelwright/store/`` (queue_sql, lookups, events_sql, import_sql). A service
module outside the list below may not import ``sqlalchemy.text``, build SQL in an f-string, or hold SQL in a
string (a statement passed to ``Store.lookup`` or a cursor); the list names the modules that still compose
hand-written statements from ``store/`` parts on the driver's cursor, and only shrinks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "labelwright" / "services"
# Modules allowed hand-written SQL: the next/submit hot path; the export's bulk reads (export.py, and
# labels.collect, which streams every annotation through the driver's cursor: a tenth of Core's cost per row).
HAND_WRITTEN = {"queue.py", "export.py", "labels.py"}
SQL_WORDS = re.compile(r"\b(SELECT|UPDATE|DELETE FROM|INSERT INTO|WHERE)\b")
SQL_STATEMENT = re.compile(r"^\s*\(?\s*(SELECT|UPDATE|INSERT INTO|DELETE FROM|WITH|CREATE|DROP|TRUNCATE|COPY)\b")


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                and id(node) not in in_fstrings
                and SQL_STATEMENT.match(node.value)):
            out.append(f"line {node.lineno}: SQL in a string")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            out += [f"line {node.lineno}: imports sqlalchemy's text()" for a in node.names if a.name == "text"]
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL_WORDS.search(literal):
                out.append(f"line {node.lineno}: SQL built in an f-string")
    return out


def test_services_write_sql_with_core():
    found = {p.name: _offences(p) for p in sorted(SERVICES.glob("*.py")) if p.name not in HAND_WRITTEN}
    bad = {name: why for name, why in found.items() if why}
    assert not bad, "write these with SQLAlchemy Core (store/tables.py, store/sql.py): " + repr(bad)


def test_the_check_finds_text_and_sql_fstrings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""SELECT in a docstring is prose."""\nfrom sqlalchemy import select, text\nids = "1"\n'
                      'q = f"SELECT id FROM items WHERE id IN ({ids})"\n'
                      'row = store.lookup("SELECT 1 FROM items WHERE id = :i", {"i": 1})\n')
    assert sorted(_offences(sample)) == ["line 2: imports sqlalchemy's text()", "line 4: SQL built in an f-string",
                                         "line 5: SQL in a string"]
