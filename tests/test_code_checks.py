"""The code checks of issue 11: ruff (with the import rules) and mypy pass on the whole repository.

Both read their configuration from pyproject.toml ([tool.ruff], [tool.mypy]); the tools come from the `test`
extra and are run from the same virtual environment as pytest, so CI (which runs the test suite) runs them too.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CHECKED = ("labelwright", "tests", "benchmarks")
# The one function-level import of labelwright's own code: the PEP 562 lazy `labelwright.Client`.
LAZY_OWN_IMPORTS = {"labelwright/__init__.py"}
NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install the test extra (pip install -e '.[test]')")
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--no-cache", "labelwright", "tests", "benchmarks")
    assert done.returncode == 0, f"ruff check found problems:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing() -> None:
    done = _run("mypy")
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"


def _exemption_problems(root: Path) -> tuple[int, list[str]]:
    """How many imports under ``root`` are marked noqa PLC0415, and what is wrong with them."""
    seen, problems = 0, []
    for top in CHECKED:
        for path in sorted((root / top).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            file = path.relative_to(root).as_posix()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                m = NOQA.search(lines[node.lineno - 1])
                if not m or "PLC0415" not in m["codes"]:
                    continue
                seen += 1
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else node.names[0].name
                if not re.match(r"\s*-\s*\w", m["rest"]):
                    problems.append(f"{file}:{node.lineno}: give the reason after the code: # noqa: PLC0415 - <why>")
                if module.split(".")[0] == "labelwright" and file not in LAZY_OWN_IMPORTS:
                    problems.append(f"{file}:{node.lineno}: {module} is labelwright's own: import it at the top")
    return seen, problems


def test_function_level_imports_are_third_party_and_say_why() -> None:
    """A `# noqa: PLC0415` (an import inside a function) is for an optional or heavy third-party package and
    gives its reason on the line; labelwright's own modules are imported at the top (a function-level import
    of them hides an import circle until the function runs)."""
    seen, problems = _exemption_problems(ROOT)
    assert seen, "the scan found no exemption at all: it is not reading the files"
    assert not problems, "\n".join(problems)


def test_the_exemption_check_refuses_a_bare_noqa_and_an_own_module(tmp_path: Path) -> None:
    (tmp_path / "labelwright").mkdir()
    (tmp_path / "labelwright" / "m.py").write_text(
        "def f():\n"
        "    import torch  # noqa: PLC0415\n"
        "    from labelwright.store import Store  # noqa: PLC0415 - to break a circle\n"
        "    import PIL  # noqa: F401, PLC0415 - optional extra\n"
        "    import json\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "benchmarks").mkdir()
    seen, problems = _exemption_problems(tmp_path)
    assert seen == 3
    assert problems == ["labelwright/m.py:2: give the reason after the code: # noqa: PLC0415 - <why>",
                        "labelwright/m.py:3: labelwright.store is labelwright's own: import it at the top"]


def _untyped_stores(root: Path) -> list[str]:
    """Every parameter named ``store`` in the package without an annotation, as ``file:line``."""
    found = []
    for path in sorted((root / "labelwright").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs:
                    if arg.arg == "store" and arg.annotation is None:
                        found.append(f"{path.relative_to(root).as_posix()}:{arg.lineno} ({node.name})")
    return found


def test_every_store_parameter_is_typed(tmp_path: Path) -> None:
    """Issue 11: `store: Store` everywhere, so mypy (check_untyped_defs on) checks what is done with it."""
    assert _untyped_stores(ROOT) == []
    (tmp_path / "labelwright").mkdir()
    (tmp_path / "labelwright" / "m.py").write_text("def f(store, n: int) -> None:\n    pass\n")
    assert _untyped_stores(tmp_path) == ["labelwright/m.py:1 (f)"]  # the check can fail
