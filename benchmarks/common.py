"""Helpers shared by the benchmark scripts: throw-away databases, server processes, CPU and memory.

Nothing here is imported by labelwright itself; the scripts print figures and are not tests.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

from labelwright.settings import normalise_db_url
from labelwright.store import Store

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_URL = os.environ.get("LABELWRIGHT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---- throw-away databases ---------------------------------------------------------------------


class Database:
    """A fresh, empty database: a SQLite file in a temporary folder, or a PostgreSQL schema.

    ``url`` is what ``labelwright --db`` and :class:`labelwright.store.Store` accept. Use as a
    context manager; the file or schema is removed on exit.
    """

    def __init__(self, kind: str):
        if kind not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown database kind {kind!r}")
        self.kind = kind
        if kind == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="lw-bench-", dir=os.environ.get("LABELWRIGHT_BENCH_TMP"))
            self.path = os.path.join(self.dir, "bench.db")
            self.url = f"sqlite:///{self.path}"
        else:
            self.schema = "lw_bench_" + uuid.uuid4().hex[:10]
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {self.schema}")
            sep = "&" if "?" in PG_URL else "?"
            self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.schema}"

    def store(self, **kw):
        s = Store(normalise_db_url(self.url), **kw)
        s.migrate()
        return s

    def drop(self) -> None:
        if self.kind == "sqlite":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drop()


def pg_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not available"
        return f"{type(e).__name__}: {e}"


# ---- items ---------------------------------------------------------------------------------------

_WORDS = ("the a to of and in is it you that for on this with was but are have be not my just so like "
          "video song love great check out channel subscribe please watch best music really good new "
          "free win money click here amazing awesome listen views first time year people know make "
          "thanks share link website cool nice funny beautiful voice girl guy dance play game world").split()


def fake_text(rng: random.Random, lo: int = 8, hi: int = 40) -> str:
    words = rng.choices(_WORDS, k=rng.randint(lo, hi))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice(".!?")


def fake_items(n: int, seed: int = 7):
    """``n`` realistic item dicts for the benchmark schema (an id, a comment, an author, a date)."""
    rng = random.Random(seed)
    for i in range(n):
        yield {"id": f"c{i:07d}", "text": fake_text(rng), "author": f"user{rng.randint(1, 50_000)}",
               "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00"}


def bench_schema(overlap: int = 3, slug: str = "bench") -> dict:
    return {
        "name": "Benchmark", "slug": slug, "overlap": overlap, "id_field": "id",
        "fields": [{"name": "text", "type": "text"}, {"name": "author", "type": "text"},
                   {"name": "date", "type": "text"}],
        "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}],
    }


# ---- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m labelwright --db URL serve --port P ...`` in its own process group."""

    def __init__(self, db_url: str, *, workers: int = 1, extra: list[str] | None = None,
                 env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [PYTHON, "-m", "labelwright", "--db", db_url, "serve", "--port", str(self.port),
               "--workers", str(workers)] + (extra or [])
        self.cmd = cmd
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(env or {})})
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill9(self) -> None:
        """SIGKILL every process of the server at once (the durability check)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def postgres_pids() -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in ("postgres", "postmaster"):
                        out.append(int(entry))
            except OSError:
                pass
    return out


def cpu_seconds(pids) -> float:
    """User + system CPU seconds used so far by ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLOCK_TICKS


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / CLOCK_TICKS


def peak_rss_mb_of_child(cmd: list[str], **kw) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS in MiB, output).

    The peak is the child's ``VmHWM`` read from /proc while it runs (every 20 ms; it is a high-water
    mark, so nothing but its last 20 ms can be missed). ``ru_maxrss`` from wait4() is no use here: a
    child started by a big parent inherits the parent's size as its starting maximum.
    """
    t0 = time.perf_counter()
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, **kw)
    peak_kb = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
                        break
        except OSError:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    out.seek(0)
    text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text[-3000:]}")
    return wall, peak_kb / 1024, text


# ---- figures ------------------------------------------------------------------------------------


def percentile(values, q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def machine_description() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}"


def write_results(path: str | None, results: list) -> None:
    """Write ``results`` (every run's figures) with a description of the machine to ``path``, if given."""
    if path:
        with open(path, "w") as f:
            json.dump({"machine": machine_description(), "results": results}, f, indent=1)
