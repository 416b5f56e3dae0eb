"""The code checks of issue 11: ruff (with the import rules) and mypy pass on the whole repository.

Both read their configuration from pyproject.toml ([tool.ruff], [tool.mypy]); the tools come from the `test`
extra and are run from the same virtual environment as pytest, so CI (which runs the test suite) runs them too.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.xfail(strict=False, reason="issue 11 in progress: not every file is clean yet")


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
