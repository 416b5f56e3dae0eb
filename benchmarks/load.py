"""Load tests of issue 11: many annotators across several server processes, and next-item latency on a
project of millions of items.

``many`` (default): ``--annotators`` simulated annotators (256) spread over ``--servers`` server processes
(4, each ``labelwright serve --port P`` on its own port, one database) for ``--minutes`` minutes (10), each
annotator looping next + submit on its own keep-alive connection to one of the ports (annotator i to port
i mod servers, as a reverse proxy with sticky connections would). Reports annotations/s, p50/p99 of the
cycle and of each request, errors, how evenly the annotators were served (fewest, median, most cycles,
and how many got less than half the median), then checks the database (benchmarks/serve.py's checks:
nothing over-assigned, every acknowledged submission stored).

``big``: next-item latency against project size. For each ``--sizes`` (default 100000,10000000) a fresh
database gets a project of that many items, loaded in one statement inside the database (PostgreSQL
``INSERT ... SELECT FROM generate_series``, SQLite the same from a recursive CTE, in one transaction; the
load time is reported), then ``--big-annotators`` annotators (8) do next + submit for ``--big-seconds``
through one server process; p50/p99 of next and submit are reported per size.

The load generator is benchmarks/serve.py's (its annotator coroutine, run in a separate process).

Usage::

    .venv/bin/python benchmarks/load.py many --db postgresql --minutes 10      # the issue's run
    .venv/bin/python benchmarks/load.py many --minutes 1                       # a short one
    .venv/bin/python benchmarks/load.py big --db postgresql --sizes 100000,10000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from sqlalchemy import text

from benchmarks.common import (  # noqa: E402
    PYTHON,
    Database,
    Server,
    cpu_seconds,
    machine_cpu_seconds,
    machine_description,
    median,
    percentile,
    pg_available,
    postgres_pids,
    write_results,
)
from benchmarks.serve import _annotator, _user_ids, check, prepare  # noqa: E402

# ---- the load generator: serve.py's annotators, each on the port it is given -----------------------------


async def _load_main(cfg: dict) -> dict:
    n = len(cfg["tokens"])
    out = {"cycle": [], "next": [], "submit": [], "acked": [], "handed": [], "errors": [], "exhausted": 0,
           "per_annotator": [0] * n}
    cfg["stagger"] = cfg["warmup"] / 2 / max(n, 1)
    now = time.perf_counter()
    cfg["t_start"] = now + cfg["warmup"]
    cfg["t_end"] = cfg["t_start"] + cfg["duration"]
    print("READY", flush=True)
    urls = cfg["urls"]
    await asyncio.gather(*(_annotator(urls[i % len(urls)], cfg["project"], tok, i, cfg, out)
                           for i, tok in enumerate(cfg["tokens"])))
    return out


def load_generator(cfg_path: str, out_path: str) -> None:
    with open(cfg_path) as f:
        cfg = json.load(f)
    uvloop.install()
    out = asyncio.run(_load_main(cfg))
    with open(out_path, "w") as f:
        json.dump(out, f)


def drive(urls: list[str], project: str, tokens: list[str], *, warmup: float, duration: float,
          server_pids: list[int], kind: str) -> tuple[dict, dict]:
    """Run the load generator against ``urls``; returns its raw output and the CPU shares measured."""
    tmp = tempfile.mkdtemp(prefix="lw-load-")
    cfg_path, out_path = os.path.join(tmp, "cfg.json"), os.path.join(tmp, "out.json")
    with open(cfg_path, "w") as f:
        json.dump({"urls": urls, "project": project, "tokens": tokens, "warmup": warmup, "duration": duration}, f)
    client = subprocess.Popen([PYTHON, __file__, "--load-generator", cfg_path, out_path], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "READY"
        time.sleep(warmup)
        pg = postgres_pids() if kind == "postgresql" else []
        c0 = (cpu_seconds(server_pids), cpu_seconds([client.pid]), cpu_seconds(pg), machine_cpu_seconds())
        w0 = time.perf_counter()
        time.sleep(duration)
        c1 = (cpu_seconds(server_pids), cpu_seconds([client.pid]), cpu_seconds(pg), machine_cpu_seconds())
        wall = time.perf_counter() - w0
        client.wait(timeout=duration + 120)
    finally:
        if client.poll() is None:
            client.kill()
    if client.returncode != 0:
        raise RuntimeError(f"load generator failed ({client.returncode})")
    with open(out_path) as f:
        out = json.load(f)
    cores = os.cpu_count() or 1
    cpu = {name: round(100 * (c1[i] - c0[i]) / (wall * cores), 1)
           for i, name in enumerate(("server", "client", "postgres", "machine"))}
    n = len(out["cycle"])
    if n:
        cpu["server_ms_per_annotation"] = round(1000 * (c1[0] - c0[0]) / n, 2)
        cpu["postgres_ms_per_annotation"] = round(1000 * (c1[2] - c0[2]) / n, 2)
    return out, cpu


def _latencies(out: dict) -> dict:
    ms = lambda v, q: round(1000 * percentile(v, q), 2) if v else None  # noqa: E731
    return {"cycle_p50_ms": ms(out["cycle"], .5), "cycle_p99_ms": ms(out["cycle"], .99),
            "next_p50_ms": ms(out["next"], .5), "next_p99_ms": ms(out["next"], .99),
            "submit_p50_ms": ms(out["submit"], .5), "submit_p99_ms": ms(out["submit"], .99)}


# ---- many annotators, several servers ------------------------------------------------------------------


def run_many(kind: str, *, annotators: int, servers: int, minutes: float, items: int, overlap: int,
             warmup: float) -> dict:
    with Database(kind) as db:
        t = time.perf_counter()
        slug, tokens, pid = prepare(db, items, overlap, annotators)
        setup_s = time.perf_counter() - t
        procs = [Server(db.url, workers=1, env={"LABELWRIGHT_ASSIST_WORKER": "0"}) for _ in range(servers)]
        try:
            pids = [p for s in procs for p in s.pids()]
            out, cpu = drive([s.url for s in procs], slug, tokens, warmup=warmup, duration=minutes * 60,
                             server_pids=pids, kind=kind)
        finally:
            for s in procs:
                s.stop()
        checks = check(db, pid, overlap, out["acked"], out["handed"], _user_ids(db, annotators))
    per = sorted(out["per_annotator"])
    med = median(per)
    return {"db": kind, "annotators": annotators, "servers": servers, "minutes": minutes, "items": items,
            "overlap": overlap, "setup_s": round(setup_s, 1),
            "annotations_per_s": round(len(out["cycle"]) / (minutes * 60), 1), **_latencies(out),
            "errors": len(out["errors"]), "error_samples": out["errors"][:5], "exhausted": out["exhausted"],
            "per_annotator": {"min": per[0], "median": med, "max": per[-1],
                              "below_half_median": sum(1 for v in per if v < med / 2)},
            "cpu_percent_of_machine": cpu, "checks": checks}


# ---- next-item latency against project size --------------------------------------------------------------

# an item's data as import_items stores it, built from the series value g
_DATA = ("'{\"id\": \"c' || g || '\", \"text\": \"comment number ' || g || ' about the video\", "
         "\"author\": \"user' || (g % 50000) || '\", \"date\": \"2024-05-17\"}'")


def bulk_load(db: Database, n: int, overlap: int, n_users: int) -> tuple[str, list[str], int, float, float]:
    """A project of ``n`` items made inside the database in one transaction, then vacuumed and analysed:
    (slug, tokens, project id, seconds loading, seconds vacuuming)."""
    slug, tokens, pid = prepare(db, 0, overlap, n_users)
    store = db.store(pool_size=1)
    try:
        t = time.perf_counter()
        with store.write() as conn:
            if store.dialect == "postgresql":
                conn.execute(text(
                    "INSERT INTO items (project_id, external_id, data, created_at) "
                    f"SELECT :p, 'c' || g, {_DATA}, :now FROM generate_series(1, :n) AS g"),
                    {"p": pid, "n": n, "now": time.time()})
            else:
                conn.execute(text(
                    "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
                    "INSERT INTO items (project_id, external_id, data, created_at) "
                    f"SELECT :p, 'c' || g, {_DATA}, :now FROM s"),
                    {"p": pid, "n": n, "now": time.time()})
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        if store.dialect == "postgresql":  # what autovacuum does after a big import: statistics, visibility map
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE items"))
        else:
            with store.write() as conn:
                conn.execute(text("ANALYZE"))
        vacuum_s = time.perf_counter() - t
    finally:
        store.close()
    return slug, tokens, pid, load_s, vacuum_s


def run_big(kind: str, size: int, *, annotators: int, seconds: float, overlap: int, warmup: float) -> dict:
    with Database(kind) as db:
        slug, tokens, _pid, load_s, vacuum_s = bulk_load(db, size, overlap, annotators)
        server = Server(db.url, workers=1, env={"LABELWRIGHT_ASSIST_WORKER": "0"})
        try:
            out, cpu = drive([server.url], slug, tokens, warmup=warmup, duration=seconds, server_pids=server.pids(),
                             kind=kind)
        finally:
            server.stop()
    return {"db": kind, "items": size, "load_s": round(load_s, 1), "vacuum_s": round(vacuum_s, 1),
            "annotators": annotators, "seconds": seconds,
            "annotations_per_s": round(len(out["cycle"]) / seconds, 1), **_latencies(out),
            "errors": len(out["errors"]), "error_samples": out["errors"][:5], "cpu_percent_of_machine": cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="many", choices=("many", "big"))
    ap.add_argument("--db", default="postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--annotators", type=int, default=256, help="many: simulated annotators")
    ap.add_argument("--servers", type=int, default=4, help="many: server processes, one port each")
    ap.add_argument("--minutes", type=float, default=10, help="many: measured minutes")
    ap.add_argument("--items", type=int, default=200_000, help="many: items in the project")
    ap.add_argument("--overlap", type=int, default=3, help="annotators per item")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before measuring starts")
    ap.add_argument("--sizes", default="100000,10000000", help="big: comma-separated project sizes")
    ap.add_argument("--big-annotators", type=int, default=8, help="big: annotators")
    ap.add_argument("--big-seconds", type=float, default=30, help="big: measured seconds per size")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--load-generator", nargs=2, metavar=("CFG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.load_generator:
        load_generator(*args.load_generator)
        return 0
    print(f"machine: {machine_description()}", flush=True)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and (why := pg_available()):
        print(f"PostgreSQL not reachable, skipped: {why}")
        kinds.remove("postgresql")
    results, failed = [], False
    for kind in kinds:
        if args.what == "many":
            r = run_many(kind, annotators=args.annotators, servers=args.servers, minutes=args.minutes,
                         items=args.items, overlap=args.overlap, warmup=args.warmup)
            failed |= not r["checks"]["ok"] or r["errors"] > 0
            print(json.dumps(r), flush=True)
            print(f"{kind}: {r['annotators']} annotators, {r['servers']} servers, {r['minutes']} min: "
                  f"{r['annotations_per_s']} ann/s, cycle p50/p99 {r['cycle_p50_ms']}/{r['cycle_p99_ms']} ms, "
                  f"next p50/p99 {r['next_p50_ms']}/{r['next_p99_ms']}, submit p50/p99 "
                  f"{r['submit_p50_ms']}/{r['submit_p99_ms']} ms, errors {r['errors']}, per annotator "
                  f"{r['per_annotator']}, checks {'OK' if r['checks']['ok'] else 'FAILED'}", flush=True)
        else:
            for size in [int(s) for s in args.sizes.split(",")]:
                r = run_big(kind, size, annotators=args.big_annotators, seconds=args.big_seconds,
                            overlap=args.overlap, warmup=min(args.warmup, 5))
                failed |= r["errors"] > 0
                print(f"{kind}: {size:>10,} items (loaded in {r['load_s']} s, vacuumed in {r['vacuum_s']} s): "
                      f"{r['annotations_per_s']} ann/s, "
                      f"next p50/p99 {r['next_p50_ms']}/{r['next_p99_ms']} ms, submit p50/p99 "
                      f"{r['submit_p50_ms']}/{r['submit_p99_ms']} ms, errors {r['errors']}", flush=True)
        results.append(r)
    write_results(args.json, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
