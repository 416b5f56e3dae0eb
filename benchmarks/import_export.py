"""Benchmark: importing and exporting 100,000 and 1,000,000 items, on SQLite and PostgreSQL.

For each database and size, on a fresh database:

1. a JSONL file of ``N`` items with realistic text fields (an id, a comment of 8-40 words, an
   author, a date) is written once per size;
2. **import through the service** (``labelwright.services.items.import_items`` reading the file, as
   the CLI does) in a child process: the seconds the import itself took, and the child's peak RSS;
3. **import through the CLI** (``python -m labelwright --db URL import PROJECT FILE``) into a second
   project: wall seconds including the interpreter's start, and peak RSS;
4. annotations are added to part of the items (``--annotated``, default half of them get 1-3
   answers from different annotators; written straight into the tables, not timed as a figure);
5. **export** with the CLI (``python -m labelwright --db URL export PROJECT --format F -o FILE``) in
   jsonl, csv and parquet: wall seconds and the child's peak RSS (from ``wait4``), which must stay
   flat from 100,000 to 1,000,000 items;
6. with ``--api``, each format downloaded from a real server (``labelwright serve``), once made in the
   server process and once by a child process (``export_process_items`` 0): wall seconds to the last
   byte, the server's peak RSS, and whether the download is the CLI's file byte for byte.

Usage::

    .venv/bin/python benchmarks/import_export.py                         # both databases, both sizes
    .venv/bin/python benchmarks/import_export.py --db sqlite --sizes 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    PYTHON,
    Database,
    Server,
    bench_schema,
    fake_items,
    machine_description,
    median,
    peak_rss_mb_of_child,
    pg_available,
    write_results,
)
from labelwright.io.readers import open_records
from labelwright.services import users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project, get_project
from labelwright.settings import normalise_db_url
from labelwright.store import Store

FORMATS = ("jsonl", "csv", "parquet")
ANNOTATORS = 5


def write_items_file(path: str, n: int) -> None:
    with open(path, "wb") as f:
        buf = []
        for item in fake_items(n):
            buf.append(orjson.dumps(item))
            if len(buf) == 10_000:
                f.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            f.write(b"\n".join(buf) + b"\n")


# ---- steps run in a child process (so their peak memory is their own) ----------------------------


def step_import(db_url: str, project: str, file: str) -> None:
    store = Store(normalise_db_url(db_url), pool_size=2)
    p = get_project(store, project)
    t = time.perf_counter()
    records, _ = open_records(file)
    result = import_items(store, p, records, file=file)
    print(json.dumps({"seconds": time.perf_counter() - t, **result}))
    store.close()


# ---- setup helpers (in the parent) ---------------------------------------------------------------


def setup(db: Database) -> None:
    store = db.store(pool_size=2)
    try:
        owner = users.create_user(store, "owner", "owner")
        create_project(store, bench_schema(3, slug="bench"), created_by=owner.id)
        create_project(store, bench_schema(3, slug="bench-cli"), created_by=owner.id)
        for i in range(ANNOTATORS):
            users.create_user(store, f"annotator{i}")
    finally:
        store.close()


def add_annotations(db: Database, share: float, seed: int = 11) -> int:
    """Give ``share`` of the items of project ``bench`` 1-3 answers each; keep the item counters right."""
    rng = random.Random(seed)
    store = db.store(pool_size=2)
    try:
        with store.read() as conn:
            pid = conn.execute(text("SELECT id FROM projects WHERE slug = 'bench'")).scalar_one()
            uids = [r[0] for r in conn.execute(text("SELECT id FROM users WHERE name LIKE 'annotator%' ORDER BY id"))]
            item_ids = [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p"), {"p": pid})]
        now = time.time()
        anns, counts = [], []
        for item_id in item_ids:
            if rng.random() >= share:
                continue
            k = rng.randint(1, 3)
            for uid in rng.sample(uids, k):
                answer = '{"spam":"%s"}' % ("spam" if rng.random() < 0.3 else "ham")
                created = now - rng.uniform(0, 30 * 86400)  # spread over a month, like real work
                updated = created if rng.random() < 0.95 else created + rng.uniform(1, 600)  # a few amended
                anns.append((item_id, pid, uid, answer, rng.randint(800, 20_000), uuid_hex(rng), created, updated))
            counts.append((k, k, 1 if k < 3 else 0, item_id))
        cols = "item_id, project_id, user_id, answers, active_ms, idempotency_key, revision, created_at, updated_at"
        with store.write() as conn:
            raw = conn.connection.dbapi_connection
            if store.dialect == "sqlite":
                raw.executemany(f"INSERT INTO annotations ({cols}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)", anns)
                raw.executemany("UPDATE items SET n_assigned = ?, n_done = ?, is_open = ? WHERE id = ?", counts)
            else:
                with raw.cursor() as cur:
                    with cur.copy(f"COPY annotations ({cols}) FROM STDIN") as copy:
                        for a in anns:
                            copy.write_row(a[:6] + (1,) + a[6:])
                    cur.execute("CREATE TEMP TABLE lw_counts (k INT, d INT, o INT, id BIGINT) ON COMMIT DROP")
                    with cur.copy("COPY lw_counts (k, d, o, id) FROM STDIN") as copy:
                        for c in counts:
                            copy.write_row(c)
                    cur.execute("UPDATE items SET n_assigned = c.k, n_done = c.d, is_open = c.o "
                                "FROM lw_counts c WHERE items.id = c.id")
        if store.dialect == "postgresql":
            with store.write() as conn:
                conn.exec_driver_sql("ANALYZE")
        return len(anns)
    finally:
        store.close()


def uuid_hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


# ---- one configuration ---------------------------------------------------------------------------


def run_one(kind: str, n: int, file: str, outdir: str, annotated: float, api: bool = False) -> dict:
    res: dict = {"db": kind, "items": n}
    with Database(kind) as db:
        setup(db)
        wall, rss, out = peak_rss_mb_of_child([PYTHON, __file__, "--step-import", db.url, "bench", file])
        info = json.loads(out.strip().splitlines()[-1])
        assert info["inserted"] == n, info
        res["import_service_s"] = round(info["seconds"], 2)
        res["import_service_peak_rss_mb"] = round(rss, 1)
        wall, rss, out = peak_rss_mb_of_child([PYTHON, "-m", "labelwright", "--db", db.url, "import", "bench-cli",
                                               file])
        res["import_cli_s"] = round(wall, 2)
        res["import_cli_peak_rss_mb"] = round(rss, 1)
        t = time.perf_counter()
        res["annotations"] = add_annotations(db, annotated)
        res["annotations_setup_s"] = round(time.perf_counter() - t, 1)
        for fmt in FORMATS:
            path = os.path.join(outdir, f"export.{fmt}")
            wall, rss, _ = peak_rss_mb_of_child([PYTHON, "-m", "labelwright", "--db", db.url, "export", "bench",
                                                 "--format", fmt, "-o", path])
            res[f"export_{fmt}_s"] = round(wall, 2)
            res[f"export_{fmt}_peak_rss_mb"] = round(rss, 1)
            res[f"export_{fmt}_mb"] = round(os.path.getsize(path) / 2**20, 1)
            if api:
                res.update(api_exports(db, fmt, path, outdir))
            os.remove(path)
    return res


# the server's two ways: everything in the server process, and from 0 items up in a child process
API_MODES = {"server": str(10**12), "child": "0"}


def api_exports(db: Database, fmt: str, cli_file: str, outdir: str) -> dict:
    """``GET /api/v1/projects/bench/export?format=F`` from a fresh ``labelwright serve`` per way (so the
    server's peak RSS, VmHWM, is this download's): wall seconds to the last byte, the server's peak RSS,
    and whether the download is the CLI's file byte for byte."""
    store = db.store(pool_size=1)
    try:
        token = users.create_api_token(store, users.get_user(store, "owner"))
    finally:
        store.close()
    out = {}
    for mode, threshold in API_MODES.items():
        server = Server(db.url, env={"LABELWRIGHT_EXPORT_PROCESS_ITEMS": threshold})
        try:
            path = os.path.join(outdir, f"api.{fmt}")
            t = time.perf_counter()
            with httpx.stream("GET", f"{server.url}/api/v1/projects/bench/export", params={"format": fmt},
                              headers={"Authorization": f"Bearer {token}"}, timeout=600) as r, open(path, "wb") as f:
                r.raise_for_status()
                for block in r.iter_raw(1 << 20):
                    f.write(block)
            out[f"api_{mode}_{fmt}_s"] = round(time.perf_counter() - t, 2)
            out[f"api_{mode}_{fmt}_server_peak_rss_mb"] = round(peak_rss_mb(server.proc.pid), 1)
            out[f"api_{mode}_{fmt}_same_file"] = filecmp.cmp(path, cli_file, shallow=False)
            os.remove(path)
        finally:
            server.stop()
    return out


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _fmt(r: dict) -> str:
    exports = "  ".join(f"{f} {r[f'export_{f}_s']:.2f} s / {r[f'export_{f}_peak_rss_mb']:.0f} MiB "
                        f"({r[f'export_{f}_mb']:.0f} MiB file)" for f in FORMATS)
    if "api_child_jsonl_s" in r:
        exports += "\n    API (wall to the last byte / the server's peak RSS / same bytes as the CLI's): " + "  ".join(
            f"{f} {mode} {r[f'api_{mode}_{f}_s']:.2f} s / {r[f'api_{mode}_{f}_server_peak_rss_mb']:.0f} MiB / "
            f"{r[f'api_{mode}_{f}_same_file']}" for f in FORMATS for mode in API_MODES)
    return (f"{r['db']:<10} {r['items']:>9,} items: import service {r['import_service_s']:.2f} s "
            f"(peak {r['import_service_peak_rss_mb']:.0f} MiB), CLI {r['import_cli_s']:.2f} s "
            f"(peak {r['import_cli_peak_rss_mb']:.0f} MiB); {r['annotations']:,} annotations; "
            f"export (CLI, peak RSS) {exports}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated item counts")
    ap.add_argument("--annotated", type=float, default=0.5, help="share of items that get 1-3 annotations")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (medians are printed)")
    ap.add_argument("--json", help="also write every run's figures to this file")
    ap.add_argument("--api", action="store_true",
                    help="also download each format from a real server, in the server process and in a child")
    ap.add_argument("--step-import", nargs=3, metavar=("DB", "PROJECT", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step_import:
        step_import(*args.step_import)
        return 0

    print(f"machine: {machine_description()}")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and (why := pg_available()):
        print(f"PostgreSQL not reachable, skipped: {why}")
        kinds.remove("postgresql")
    tmp = tempfile.mkdtemp(prefix="lw-bench-ie-", dir=os.environ.get("LABELWRIGHT_BENCH_TMP"))
    results = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            file = os.path.join(tmp, f"items_{n}.jsonl")
            t = time.perf_counter()
            write_items_file(file, n)
            print(f"{n:,} items: {os.path.getsize(file) / 2**20:.0f} MiB of JSONL written in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
            for kind in kinds:
                runs = []
                for _ in range(args.repeat):
                    r = run_one(kind, n, file, tmp, args.annotated, args.api)
                    print(_fmt(r), flush=True)
                    runs.append(r)
                    results.append(r)
                if args.repeat > 1:
                    keys = [k for k in runs[0] if k.endswith("_s") or k.endswith("_mb")]
                    print(f"  median of {len(runs)}: " + ", ".join(f"{k} {median([x[k] for x in runs])}" for k in keys),
                          flush=True)
            os.remove(file)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
