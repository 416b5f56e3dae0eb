"""Benchmark: the export of one project by two versions of labelwright, back to back, per format.

On a fresh database per kind (``--db``), ``N`` items are imported through the service and half of them
get 1-3 answers (as :mod:`benchmarks.import_export` does). Then each format is exported with the CLI
(``python -m labelwright --db URL export bench -o FILE``) by this checkout and, with ``--against DIR``, by
another copy of the package (for example ``git archive <commit> labelwright | tar -x -C DIR``), the two
alternating ``--repeat`` times so that a busy machine slows both alike. Per run: wall seconds, the
child's CPU seconds (user + system, from ``getrusage(RUSAGE_CHILDREN)``) and its peak RSS (``VmHWM``).
The two versions' files are compared: CSV and JSONL byte for byte, Parquet value for value (and the
schema and row groups).

Usage::

    .venv/bin/python benchmarks/export_ab.py --db sqlite,postgresql --items 200000 --against /tmp/lw-old
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, Database, machine_description, median, pg_available  # noqa: E402
from benchmarks.import_export import add_annotations, setup, write_items_file  # noqa: E402
from labelwright.io.readers import open_records  # noqa: E402
from labelwright.services.items import import_items  # noqa: E402
from labelwright.services.projects import get_project  # noqa: E402

FORMATS = ("jsonl", "csv", "parquet")


def run_child(cmd: list[str], cwd: str) -> tuple[float, float, float]:
    """Run ``cmd`` in ``cwd``; return (wall s, CPU s, peak RSS MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak_kb / 1024


def same_output(fmt: str, a: str, b: str) -> bool:
    if fmt != "parquet":
        return filecmp.cmp(a, b, shallow=False)
    import pyarrow.parquet as pq  # noqa: PLC0415 - only the comparison needs it

    fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
    if not fa.schema_arrow.equals(fb.schema_arrow):
        return False
    if [fa.metadata.row_group(i).num_rows for i in range(fa.num_row_groups)] != \
            [fb.metadata.row_group(i).num_rows for i in range(fb.num_row_groups)]:
        return False
    return fa.read().equals(fb.read())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--items", type=int, default=200_000, help="items in the project")
    ap.add_argument("--annotated", type=float, default=0.5, help="share of items that get 1-3 annotations")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated export formats")
    ap.add_argument("--repeat", type=int, default=1, help="runs per version and format (medians are printed)")
    ap.add_argument("--against", help="a folder holding another labelwright package to compare with")
    args = ap.parse_args(argv)
    print(f"machine: {machine_description()}", flush=True)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and (why := pg_available()):
        print(f"PostgreSQL not reachable, skipped: {why}")
        kinds.remove("postgresql")
    versions = [("this", str(ROOT))] + ([("against", args.against)] if args.against else [])
    tmp = tempfile.mkdtemp(prefix="lw-bench-ab-", dir=os.environ.get("LABELWRIGHT_BENCH_TMP"))
    try:
        items = os.path.join(tmp, "items.jsonl")
        write_items_file(items, args.items)
        for kind in kinds:
            with Database(kind) as db:
                setup(db)
                store = db.store(pool_size=2)
                try:
                    records, _ = open_records(items)
                    import_items(store, get_project(store, "bench"), records, file=items)
                finally:
                    store.close()
                n_ann = add_annotations(db, args.annotated)
                print(f"{kind}: {args.items:,} items, {n_ann:,} annotations", flush=True)
                for fmt in args.formats.split(","):
                    runs: dict[str, list] = {name: [] for name, _ in versions}
                    for _ in range(args.repeat):
                        for name, cwd in versions:
                            out = os.path.join(tmp, f"{name}.{fmt}")
                            if os.path.exists(out):
                                os.remove(out)
                            runs[name].append(run_child([PYTHON, "-m", "labelwright", "--db", db.url, "export",
                                                         "bench", "-o", out], cwd))
                    for name, _ in versions:
                        r = runs[name]
                        print(f"  {kind:<10} {fmt:<8} {name:<8} wall {median([x[0] for x in r]):6.2f} s  "
                              f"cpu {median([x[1] for x in r]):6.2f} s  peak RSS {max(x[2] for x in r):5.0f} MiB  "
                              f"(walls {', '.join(f'{x[0]:.2f}' for x in r)})", flush=True)
                    if args.against:
                        same = same_output(fmt, os.path.join(tmp, f"this.{fmt}"), os.path.join(tmp, f"against.{fmt}"))
                        print(f"  {kind:<10} {fmt:<8} outputs {'identical' if same else 'DIFFER'}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
