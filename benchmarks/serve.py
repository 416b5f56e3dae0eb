"""Benchmark: K annotators doing next + submit against a real server process.

For each database (SQLite, PostgreSQL) and each K, on a fresh database holding ``--items`` items in a
single_choice project:

1. start ``python -m labelwright --db ... serve --port P --workers W`` in its own process;
2. start a separate load-generator process (plain asyncio with a minimal HTTP/1.1 keep-alive
   client, one connection per annotator, so that it costs the shared cores little) in which K
   simulated annotators, each with its own API token, loop ``POST /api/v1/projects/{p}/next`` then
   ``POST /api/v1/items/{id}/annotations`` as fast as the server answers;
3. after ``--warmup`` seconds measure for ``--duration`` seconds: annotations/s, p50/p99 latency of
   the next + submit cycle and of each request, and the CPU used by the server, the load generator
   and PostgreSQL (as a share of the machine's cores);
4. stop the server and check the database: no item has more annotations than the overlap, no
   (item, annotator) pair twice, every acknowledged (201) submission is stored, no item was handed
   to more distinct annotators than the overlap, and ``n_assigned`` equals annotations + leases.

Then, per database, two correctness scenarios: overlap 1 with 8 annotators (over-assigned items
must be 0) and a crash test (the server is killed with SIGKILL under load; every submission it had
acknowledged must be in the database).

Usage::

    .venv/bin/python benchmarks/serve.py                       # everything, 20 s per run
    .venv/bin/python benchmarks/serve.py --db sqlite --concurrency 32 --duration 10 --repeat 3
    .venv/bin/python benchmarks/serve.py --json results.json   # also write the raw figures
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
import uuid
from pathlib import Path

import orjson
import uvloop
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    PYTHON,
    Database,
    Server,
    bench_schema,
    cpu_seconds,
    fake_items,
    machine_cpu_seconds,
    machine_description,
    median,
    percentile,
    pg_available,
    postgres_pids,
    write_results,
)
from labelwright.services import access, users  # noqa: E402
from labelwright.services.items import import_items  # noqa: E402
from labelwright.services.projects import create_project  # noqa: E402

# ---- the load generator (runs in its own process) ------------------------------------------------


class _Conn:
    """A minimal HTTP/1.1 keep-alive client connection on asyncio streams: the load generator must
    cost the shared 2 cores as little as possible (aiohttp spent about 2.5 times the CPU per request here)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()

    async def post(self, path: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + headers
                          + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
            elif line[:18].lower() == b"transfer-encoding:":
                raise ConnectionError("chunked responses are not expected here")
        return status, (await self.reader.readexactly(length) if length else b"")


async def _annotator(url, project, token, idx, cfg, out):
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    # Annotators arrive one after another during the warm-up (not in one burst of connects): a
    # multi-process server hands each new connection to whichever process is free to accept it,
    # as it does when people sign in over a morning, instead of whichever woke first for a burst.
    await asyncio.sleep(cfg["stagger"] * idx)
    conn = _Conn(host, int(port))
    await conn.open()
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n"
    sub_headers = auth + b"Content-Type: application/json\r\n"
    next_path = f"/api/v1/projects/{project}/next"
    t_start, t_end = cfg["t_start"], cfg["t_end"]
    options = ("spam", "ham")
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                return
            try:
                status, body = await conn.post(next_path, auth)
                t1 = time.perf_counter()
                if status == 204:
                    out["exhausted"] += 1
                    return
                if status != 200:
                    out["errors"].append(f"next {status} {body[:200]!r}")
                    continue
                item = orjson.loads(body)
                out["handed"].append((item["id"], idx))
                payload = orjson.dumps({"answers": {"spam": options[(item["id"] + idx) % 2]}, "active_ms": 1500,
                                        "idempotency_key": uuid.uuid4().hex})
                status, body = await conn.post(f"/api/v1/items/{item['id']}/annotations", sub_headers, payload)
                t2 = time.perf_counter()
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                if cfg.get("crash"):
                    return  # the server was killed on purpose
                out["errors"].append(f"{type(e).__name__}: {e}")
                conn.close()
                await asyncio.sleep(0.05)
                conn = _Conn(host, int(port))
                await conn.open()
                continue
            if status == 201:
                ann = orjson.loads(body)
                out["acked"].append((ann["id"], ann["item_id"], idx))
            else:
                out["errors"].append(f"submit {status} {body[:200]!r}")
                continue
            if t0 >= t_start and t2 <= t_end:
                out["per_annotator"][idx] += 1
                out["cycle"].append(t2 - t0)
                out["next"].append(t1 - t0)
                out["submit"].append(t2 - t1)
    finally:
        conn.close()


async def _load_main(cfg: dict) -> dict:
    out = {"cycle": [], "next": [], "submit": [], "acked": [], "handed": [], "errors": [], "exhausted": 0,
           "per_annotator": [0] * len(cfg["tokens"])}
    cfg["stagger"] = cfg["warmup"] / 2 / max(len(cfg["tokens"]), 1)
    now = time.perf_counter()
    cfg["t_start"] = now + cfg["warmup"]
    cfg["t_end"] = cfg["t_start"] + cfg["duration"]
    print("READY", flush=True)
    await asyncio.gather(*(_annotator(cfg["url"], cfg["project"], tok, i, cfg, out)
                           for i, tok in enumerate(cfg["tokens"])))
    return out


def load_generator(cfg_path: str, out_path: str) -> None:
    with open(cfg_path) as f:
        cfg = json.load(f)
    if cfg.get("loop", "asyncio") == "uvloop":
        uvloop.install()
    out = asyncio.run(_load_main(cfg))
    with open(out_path, "w") as f:
        json.dump(out, f)


# ---- setting up, running, checking -------------------------------------------------------------------


def prepare(db: Database, n_items: int, overlap: int, n_users: int) -> tuple[str, list[str], int]:
    """Migrate, create the project, import the items and the annotators; return (slug, tokens, project id)."""
    store = db.store(pool_size=2)
    try:
        owner = users.create_user(store, "owner", "owner")
        p = create_project(store, bench_schema(overlap), created_by=owner.id)
        import_items(store, p, enumerate(fake_items(n_items), start=1))
        tokens = []
        for i in range(n_users):
            u = users.create_user(store, f"annotator{i:02d}")
            access.set_member(store, p, u.name, "annotator")
            tokens.append(users.create_api_token(store, u, label="bench"))
        return p.slug, tokens, p.id
    finally:
        store.close()


def check(db: Database, project_id: int, overlap: int, acked: list, handed: list, user_ids: dict) -> dict:
    """Invariants read back from the database after the server has stopped."""
    store = db.store(pool_size=1)
    try:
        with store.read() as conn:
            q = lambda sql: conn.execute(text(sql), {"p": project_id}).scalar_one()  # noqa: E731
            max_per_item = q("SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM annotations "
                             "WHERE project_id = :p GROUP BY item_id) x")
            dup_pairs = q("SELECT count(*) FROM (SELECT item_id, user_id FROM annotations WHERE project_id = :p "
                          "GROUP BY item_id, user_id HAVING count(*) > 1) x")
            over_assigned = q(
                "SELECT count(*) FROM items i WHERE i.project_id = :p AND "
                "(SELECT count(*) FROM annotations a WHERE a.item_id = i.id) + "
                "(SELECT count(*) FROM leases l WHERE l.item_id = i.id) > " + str(int(overlap)))
            counter_drift = q(
                "SELECT count(*) FROM items i WHERE i.project_id = :p AND i.n_assigned <> "
                "(SELECT count(*) FROM annotations a WHERE a.item_id = i.id) + "
                "(SELECT count(*) FROM leases l WHERE l.item_id = i.id)")
            total = q("SELECT count(*) FROM annotations WHERE project_id = :p")
            stored = {(r[0], r[1], r[2]) for r in conn.execute(text(
                "SELECT id, item_id, user_id FROM annotations WHERE project_id = :p"), {"p": project_id})}
    finally:
        store.close()
    missing = sum(1 for ann_id, item_id, idx in acked if (ann_id, item_id, user_ids[idx]) not in stored)
    people: dict[int, set] = {}
    for item_id, idx in handed:
        people.setdefault(item_id, set()).add(idx)
    handed_too_often = sum(1 for s in people.values() if len(s) > overlap)
    return {"annotations_in_db": total, "acknowledged": len(acked), "acknowledged_missing": missing,
            "max_annotations_per_item": max_per_item, "duplicate_item_annotator_pairs": dup_pairs,
            "over_assigned_items": over_assigned, "items_handed_to_more_than_overlap": handed_too_often,
            "n_assigned_drift": counter_drift,
            "ok": (missing == 0 and max_per_item <= overlap and dup_pairs == 0 and over_assigned == 0
                   and handed_too_often == 0 and counter_drift == 0)}


def _user_ids(db: Database, n: int) -> dict:
    store = db.store(pool_size=1)
    try:
        with store.read() as conn:
            rows = conn.execute(text("SELECT id, name FROM users WHERE name LIKE 'annotator%'")).all()
    finally:
        store.close()
    by_name = {name: uid for uid, name in rows}
    return {i: by_name[f"annotator{i:02d}"] for i in range(n)}


def run_one(kind: str, k: int, *, items: int, overlap: int, workers: int, duration: float, warmup: float,
            crash_after: float | None = None, server_args: list[str] | None = None) -> dict:
    with Database(kind) as db:
        t = time.perf_counter()
        slug, tokens, pid = prepare(db, items, overlap, k)
        setup_s = time.perf_counter() - t
        server = Server(db.url, workers=workers, extra=server_args)
        tmp = tempfile.mkdtemp(prefix="lw-load-")
        cfg_path, out_path = os.path.join(tmp, "cfg.json"), os.path.join(tmp, "out.json")
        with open(cfg_path, "w") as f:
            json.dump({"url": server.url, "project": slug, "tokens": tokens, "warmup": warmup,
                       "duration": duration, "crash": crash_after is not None}, f)
        try:
            client = subprocess.Popen([PYTHON, __file__, "--load-generator", cfg_path, out_path],
                                      stdout=subprocess.PIPE, text=True)
            assert client.stdout.readline().strip() == "READY"
            server_pids = server.pids()
            if crash_after is not None:
                time.sleep(crash_after)
                server.kill9()
                client.wait()
                cpu = {}
            else:
                time.sleep(warmup)
                pg = postgres_pids() if kind == "postgresql" else []  # its backends exist by now
                c0 = (cpu_seconds(server_pids), cpu_seconds([client.pid]), cpu_seconds(pg), machine_cpu_seconds())
                w0 = time.perf_counter()
                time.sleep(duration)
                c1 = (cpu_seconds(server_pids), cpu_seconds([client.pid]), cpu_seconds(pg), machine_cpu_seconds())
                wall = time.perf_counter() - w0
                client.wait()
                cores = os.cpu_count() or 1
                share = lambda i: round(100 * (c1[i] - c0[i]) / (wall * cores), 1)  # noqa: E731
                cpu = {"server": share(0), "client": share(1), "postgres": share(2), "machine": share(3),
                       "server_s": c1[0] - c0[0], "postgres_s": c1[2] - c0[2]}
        finally:
            if client.poll() is None:
                client.kill()
            server.stop()
        if client.returncode != 0:
            raise RuntimeError(f"load generator failed ({client.returncode})")
        with open(out_path) as f:
            out = json.load(f)
        checks = check(db, pid, overlap, out["acked"], out["handed"], _user_ids(db, k))
    n = len(out["cycle"])
    if cpu and n:  # CPU cost of one annotation (next + submit): less sensitive to a busy machine
        cpu["server_ms_per_annotation"] = round(1000 * cpu.pop("server_s") / n, 2)
        cpu["postgres_ms_per_annotation"] = round(1000 * cpu.pop("postgres_s") / n, 2)
    ms = lambda v, q: round(1000 * percentile(v, q), 2)  # noqa: E731
    return {
        "db": kind, "annotators": k, "workers": workers, "overlap": overlap, "items": items,
        "setup_s": round(setup_s, 1), "duration_s": duration,
        "annotations_per_s": round(n / duration, 1),
        "cycle_p50_ms": ms(out["cycle"], .5), "cycle_p99_ms": ms(out["cycle"], .99),
        "next_p50_ms": ms(out["next"], .5), "next_p99_ms": ms(out["next"], .99),
        "submit_p50_ms": ms(out["submit"], .5), "submit_p99_ms": ms(out["submit"], .99),
        "cpu_percent_of_machine": cpu, "errors": len(out["errors"]), "error_samples": out["errors"][:5],
        "exhausted_annotators": out["exhausted"], "checks": checks,
        # how evenly the server served the annotators: fewest and most annotations in the window, and
        # whether everyone got at least half the median share (issue 11's target)
        "per_annotator_min_max": [min(out["per_annotator"]), max(out["per_annotator"])],
        "per_annotator_median": median(out["per_annotator"]),
        "fair": min(out["per_annotator"], default=0) >= median(out["per_annotator"]) / 2,
    }


def _server_ms(r: dict) -> float:
    return r["cpu_percent_of_machine"].get("server_ms_per_annotation", 0.0)


def _fmt(r: dict) -> str:
    c = r["checks"]
    cpu = r["cpu_percent_of_machine"]
    cpu_s = (f" cpu% server {cpu['server']} client {cpu['client']}"
             + (f" postgres {cpu['postgres']}" if r["db"] == "postgresql" else "") + f" machine {cpu['machine']}"
             + f"; server CPU {cpu.get('server_ms_per_annotation')} ms/annotation"
             + (f", postgres {cpu.get('postgres_ms_per_annotation')}" if r["db"] == "postgresql" else "")
             if cpu else "")
    return (f"{r['db']:<10} K={r['annotators']:<3} W={r['workers']} overlap={r['overlap']}  "
            f"{r['annotations_per_s']:>7.1f} ann/s  cycle p50 {r['cycle_p50_ms']:.1f} p99 {r['cycle_p99_ms']:.1f} ms  "
            f"next p50/p99 {r['next_p50_ms']:.1f}/{r['next_p99_ms']:.1f}  "
            f"submit p50/p99 {r['submit_p50_ms']:.1f}/{r['submit_p99_ms']:.1f} ms  errors {r['errors']}{cpu_s}; "
            f"per annotator min/max {r['per_annotator_min_max']} median {r['per_annotator_median']:g} "
            f"({'fair' if r['fair'] else 'UNFAIR: someone got less than half the median'})\n"
            f"           checks: {'OK' if c['ok'] else 'FAILED'}  acked {c['acknowledged']} "
            f"(missing {c['acknowledged_missing']}), in db {c['annotations_in_db']}, "
            f"max/item {c['max_annotations_per_item']}, duplicate pairs {c['duplicate_item_annotator_pairs']}, "
            f"over-assigned {c['over_assigned_items']}, handed > overlap {c['items_handed_to_more_than_overlap']}, "
            f"n_assigned drift {c['n_assigned_drift']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated numbers of annotators")
    ap.add_argument("--duration", type=float, default=20, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2, help="seconds before measuring starts")
    ap.add_argument("--items", type=int, default=100_000, help="items in the project")
    ap.add_argument("--overlap", type=int, default=3, help="annotators per item")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (medians are printed)")
    ap.add_argument("--workers-sqlite", default="1", help="server processes for SQLite (comma-separated to sweep)")
    ap.add_argument("--workers-postgresql", default="1",
                    help="server processes for PostgreSQL (comma-separated; each runs pg_batches batches at once)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra argument for `serve` (repeatable)")
    ap.add_argument("--no-checks", action="store_true", help="skip the overlap-1 and kill -9 scenarios")
    ap.add_argument("--only-checks", action="store_true", help="run only the overlap-1 and kill -9 scenarios")
    ap.add_argument("--json", help="also write every run's figures to this file")
    ap.add_argument("--load-generator", nargs=2, metavar=("CFG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.load_generator:
        load_generator(*args.load_generator)
        return 0

    print(f"machine: {machine_description()}")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and (why := pg_available()):
        print(f"PostgreSQL not reachable, skipped: {why}")
        kinds.remove("postgresql")
    results, failed = [], False
    common = dict(items=args.items, duration=args.duration, warmup=args.warmup, server_args=args.server_arg)
    for kind in kinds:
        workers_list = [int(w) for w in getattr(args, f"workers_{kind}").split(",")]
        if not args.only_checks:
            for workers in workers_list:
                for k in [int(x) for x in args.concurrency.split(",")]:
                    runs = []
                    for _ in range(args.repeat):
                        r = run_one(kind, k, overlap=args.overlap, workers=workers, **common)
                        print(_fmt(r), flush=True)
                        failed |= not r["checks"]["ok"] or not r["fair"]
                        runs.append(r)
                        results.append(r)
                    if args.repeat > 1:
                        print(f"  median of {len(runs)}: {median([r['annotations_per_s'] for r in runs]):.1f} ann/s, "
                              f"cycle p50 {median([r['cycle_p50_ms'] for r in runs]):.1f} ms, "
                              f"p99 {median([r['cycle_p99_ms'] for r in runs]):.1f} ms, server CPU "
                              f"{median([_server_ms(r) for r in runs])} ms/annotation", flush=True)
        if not args.no_checks:
            r = run_one(kind, 8, overlap=1, workers=workers_list[0], **common)
            r["scenario"] = "overlap1"
            print("overlap 1, 8 annotators: over-assigned items "
                  f"{r['checks']['over_assigned_items']}, handed to two people "
                  f"{r['checks']['items_handed_to_more_than_overlap']}\n" + _fmt(r), flush=True)
            failed |= not r["checks"]["ok"]
            results.append(r)
            r = run_one(kind, 32, overlap=args.overlap, workers=workers_list[0], crash_after=args.warmup + 3,
                        **{**common, "duration": 60})
            r["scenario"] = "kill9"
            c = r["checks"]
            print(f"kill -9 under load ({kind}): {c['acknowledged']} acknowledged submissions, "
                  f"{c['acknowledged_missing']} missing after restart, {c['annotations_in_db']} in the database, "
                  f"invariants {'OK' if c['ok'] else 'FAILED'}", flush=True)
            failed |= not c["ok"]
            results.append(r)
    write_results(args.json, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
