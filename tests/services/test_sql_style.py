"""One way to write SQL in the services (issue 11): SQLAlchemy Core, with hand-written SQL kept to the hot
statements. A service module outside the list below may not import ``sqlalchemy.text`` nor build SQL in an
f-string; the list names the modules that still hold hand-written statements (the hot path, and modules
other changes are converting), and only shrinks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "labelwright" / "services"
# Modules allowed hand-written SQL: the next/submit hot path; the export's bulk reads (export.py, and
# labels.collect, which streams every annotation through the driver's cursor: a tenth of Core's cost per row);
# and modules not converted yet.
HAND_WRITTEN = {"queue.py", "redundancy.py", "export.py", "labels.py",
                "queue_controls.py", "projects.py", "events.py", "access.py", "messages.py"}
SQL_WORDS = re.compile(r"\b(SELECT|UPDATE|DELETE FROM|INSERT INTO|WHERE)\b")


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
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
    sample.write_text('from sqlalchemy import select, text\nids = "1"\n'
                      'q = f"SELECT id FROM items WHERE id IN ({ids})"\n')
    assert _offences(sample) == ["line 1: imports sqlalchemy's text()", "line 3: SQL built in an f-string"]
