"""The code sandbox (labelwright/sandbox.py) with the real bwrap: what runs, what is stopped, what is shut out.

Without bwrap these tests are skipped with the reason (with CI set they fail instead, as PostgreSQL's do).
"""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labelwright import sandbox
from labelwright.sandbox import SandboxInputError, SandboxUnavailable, run_language

ROOT = Path(__file__).resolve().parent.parent
BWRAP_SKIP = "bwrap (bubblewrap) is not installed"


def require_bwrap() -> None:
    """Skip without bwrap, or fail in CI (which installs it: .ci/run)."""
    if sandbox.available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{BWRAP_SKIP}, and CI needs it: {sandbox.INSTALL_HINT}")
    pytest.skip(f"{BWRAP_SKIP}: {sandbox.INSTALL_HINT}")


@pytest.fixture
def bwrap() -> None:
    require_bwrap()


def py(code: str, **kw) -> sandbox.RunResult:
    return run_language("python", {"main.py": code}, **kw)


def test_passing_and_failing_tests(bwrap):
    files = {"solution.py": "def add(a, b):\n    return a + b\n",
             "tests.py": "from solution import add\nassert add(2, 3) == 5\nprint('ok')\n"}
    r = run_language("python", files, "tests.py")
    assert (r.exit_code, r.stdout, r.killed_reason, r.timed_out, r.passed) == (0, "ok\n", None, False, True)

    files["solution.py"] = "def add(a, b):\n    return a - b\n"
    r = run_language("python", files, "tests.py")
    assert r.exit_code == 1 and not r.passed and r.killed_reason is None
    assert "AssertionError" in r.stderr and 'File "/work/tests.py", line 2' in r.stderr
    assert py("import sys; sys.exit(7)").exit_code == 7


def test_the_system_python_runs_not_the_servers(bwrap):
    r = py("import sys, os; print(sys.executable); print(sorted(k for k in os.environ if k != 'PWD'))")
    assert r.stdout.splitlines()[0] == "/usr/bin/python3"
    assert json.loads(r.stdout.splitlines()[1].replace("'", "\"")) == sorted(
        ["PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONHASHSEED"])


def test_an_infinite_loop_is_killed_at_the_time_limit(bwrap):
    r = py("while True:\n    pass\n", time_s=1.5)
    assert r.timed_out and r.exit_code is None and r.killed_reason in ("time limit", "cpu time limit")
    assert 1400 <= r.duration_ms < 4000
    r = py("import time\nprint('started', flush=True)\ntime.sleep(60)\n", time_s=1)  # no CPU used: the wall clock
    assert r.timed_out and r.killed_reason == "time limit" and r.stdout == "started\n"
    assert 900 <= r.duration_ms < 3000


def test_a_child_left_behind_is_killed_too(bwrap):
    # the parent exits at once; its child keeps the output open and sleeps: it goes with the parent
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint('parent done')\n"
    r = py(code, time_s=5)
    assert r.stdout == "parent done\n" and not r.timed_out and r.duration_ms < 4000


def test_a_fork_bomb_is_stopped_by_the_process_limit(bwrap):
    code = textwrap.dedent("""
        import os, time
        kids = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                kids += 1
        except OSError as e:
            print('refused after', kids, e.errno)
        """)
    r = py(code, time_s=5, max_processes=12)
    first = r.stdout.splitlines()[0].split()
    assert first[:2] == ["refused", "after"] and int(first[2]) <= 12 and first[3] == "11"  # EAGAIN
    # the sleeping children do not outlive the program: when it ends, the sandbox's every process goes
    assert not r.timed_out and r.exit_code == 0 and r.duration_ms < 4000


def test_a_memory_hog_is_stopped(bwrap):
    r = py("x = bytearray(2 * 1024 ** 3)\nprint('got it')\n", memory_mb=256)
    assert r.exit_code == 1 and r.killed_reason == "memory limit" and "got it" not in r.stdout
    r = py("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))\n", memory_mb=256, time_s=10)
    assert r.killed_reason == "memory limit" and not r.timed_out and r.duration_ms < 10000


def test_the_network_is_refused(bwrap):
    code = ("import socket\nfor host, port in (('127.0.0.1', 5432), ('10.0.0.1', 80)):\n    try:\n"
            "        socket.create_connection((host, port), timeout=2)\n        print(host, 'connected')\n"
            "    except OSError as e:\n        print(host, 'refused', type(e).__name__)\n"
            "try:\n    socket.getaddrinfo('example.org', 443)\n    print('dns works')\nexcept OSError:\n"
            "    print('no dns')\n")
    r = py(code, time_s=10)
    assert r.stdout.splitlines() == ["127.0.0.1 refused ConnectionRefusedError", "10.0.0.1 refused OSError",
                                     "no dns"], r.stderr


def test_files_outside_the_sandbox_are_not_there(bwrap, tmp_path):
    db = tmp_path / "lw.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE secret (x TEXT)")
    paths = [str(ROOT / "pyproject.toml"), str(ROOT), "/root", "/home", str(db), str(tmp_path), "/etc/passwd",
             "/etc/shadow", "/proc/1/environ", "/run/postgresql"]
    code = ("import json, os, sys\nout = {}\nfor p in json.loads(sys.argv[1] if len(sys.argv) > 1 else open("
            "'paths.json').read()):\n    try:\n        out[p] = open(p, 'rb').read(20).decode('latin-1') if "
            "os.path.isfile(p) else os.listdir(p)\n    except OSError as e:\n        out[p] = type(e).__name__\n"
            "print(json.dumps(out))\nprint(json.dumps(sorted(os.listdir('/'))))\n")
    r = run_language("python", {"main.py": code, "paths.json": json.dumps(paths)})
    seen, top = map(json.loads, r.stdout.splitlines())
    readable = {p: v for p, v in seen.items() if v not in ("FileNotFoundError", "PermissionError")
                and not (p == "/proc/1/environ" and isinstance(v, str) and "LABELWRIGHT" not in v)}
    assert not readable, readable
    assert set(top) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", "work"}


def test_writes_do_not_escape(bwrap, tmp_path):
    code = ("import os\nopen('made.txt', 'w').write('x')\nopen('/tmp/made.txt', 'w').write('x')\n"
            "for p in ('/usr/lib/made.txt', '/made.txt', '/etc/made.txt', {!r}):\n    try:\n"
            "        open(p, 'w').write('x')\n        print(p, 'written')\n    except OSError as e:\n"
            "        print(p, type(e).__name__)\nprint(sorted(os.listdir('.')))\n").format(str(tmp_path / "made.txt"))
    r = py(code)
    lines = r.stdout.splitlines()
    assert not [line for line in lines if line.endswith("written")], lines
    assert lines[-1] == "['made.txt', 'main.py']"
    assert not (tmp_path / "made.txt").exists() and not Path("/usr/lib/made.txt").exists()
    # the next run starts from nothing: the file made by the last one is gone
    assert py("import os; print(sorted(os.listdir('.')), os.path.exists('/tmp/made.txt'))").stdout == \
        "['main.py'] False\n"
    # a file larger than the file size limit is cut off
    r = py(f"import os\nwith open('big', 'wb') as f:\n    f.write(b'x' * {2 * sandbox.MAX_FILE_BYTES})\n")
    assert r.exit_code == 1 and "File too large" in r.stderr


def test_huge_output_is_truncated(bwrap):
    r = py("import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('e' * 5_000_000)\n", output_bytes=1000)
    assert r.truncated and r.stdout == "x" * 1000 and r.stderr == "e" * 1000 and r.exit_code == 0
    r = py("print('short')", output_bytes=1000)
    assert not r.truncated and r.stdout == "short\n"


def test_bad_names_and_limits_are_refused_before_anything_runs():
    for name in ("../x.py", "/etc/x.py", "a/../../x", "", "a b.py", "a/b/c/d/e.py"):
        with pytest.raises(SandboxInputError, match="file name"):
            sandbox.run({name: "print(1)"}, ["/usr/bin/python3", "x.py"])
    with pytest.raises(SandboxInputError, match="larger than"):
        sandbox.check_files({"main.py": "x" * (sandbox.MAX_FILE_BYTES + 1)})
    with pytest.raises(SandboxInputError, match="time_s"):
        py("print(1)", time_s=0)
    with pytest.raises(SandboxInputError, match="no language 'cobol'"):
        run_language("cobol", {"main.cob": ""})


def test_without_bwrap_nothing_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the path
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        py(f"open({str(tmp_path / 'ran')!r}, 'w')")
    assert not (tmp_path / "ran").exists()
    assert not sandbox.available()


def test_files_in_folders_and_several_runs_at_once(bwrap):
    files = {"pkg/__init__.py": "", "pkg/util.py": "def twice(x):\n    return 2 * x\n",
             "main.py": "import sys\nfrom pkg.util import twice\nprint(twice(int(open('n.txt').read())))\n"}

    def one(n: int) -> str:
        return run_language("python", {**files, "n.txt": str(n)}).stdout

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(8))) == [f"{2 * n}\n" for n in range(8)]
