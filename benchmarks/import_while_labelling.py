"""Benchmark: a large SQLite import (as `labelwright import` runs it, on its own connections, as another
process would) while an annotator claims and submits in another project as fast as it can.

Prints the import's time, how many submissions went through meanwhile, errors, and the longest and p99
wait of one claim + submit. The import holds the database only for its final INSERT ... SELECT (see
labelwright/services/items.py), so the longest wait is that statement, not the import.

Usage::

    .venv/bin/python benchmarks/import_while_labelling.py --items 1500000
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import orjson

from labelwright.io.readers import open_records
from labelwright.services import queue, users
from labelwright.services.access import set_member
from labelwright.services.items import add_items, import_items
from labelwright.services.projects import create_project, get_project
from labelwright.store import Store

SCHEMA = {"name": "x", "fields": [{"name": "text", "type": "text"}],
          "questions": [{"name": "ok", "type": "single_choice", "options": ["yes", "no"]}]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_500_000, help="rows in the imported JSONL file")
    args = ap.parse_args()
    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/lw.db"
    server, importer = Store(url, pool_size=2), Store(url, pool_size=2)
    server.migrate()
    create_project(server, {**SCHEMA, "slug": "big"})
    work = create_project(server, {**SCHEMA, "slug": "work", "overlap": 1})
    add_items(server, work, [{"id": f"w{i}", "text": "x"} for i in range(50_000)])
    ann = users.create_user(server, "ann")
    set_member(server, work, "ann", "annotator")
    path = f"{folder}/big.jsonl"
    with open(path, "wb") as fh:
        for i in range(args.items):
            fh.write(orjson.dumps({"id": f"b{i:07d}", "text": f"item number {i} " * 8}) + b"\n")
    done, result = threading.Event(), {}

    def run():
        start = time.perf_counter()
        records, _ = open_records(path)
        result.update(import_items(importer, get_project(importer, "big"), records, file=path))
        result["seconds"] = time.perf_counter() - start
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    waits, errors = [], 0
    while not done.is_set():
        start = time.perf_counter()
        try:
            item = queue.claim_next(server, work, ann)
            queue.submit(server, item["id"], ann, {"ok": "yes"})
        except Exception as e:  # noqa: BLE001 - counted and shown: the point of the benchmark
            errors += 1
            print("error:", e)
        waits.append(time.perf_counter() - start)
    thread.join()
    waits.sort()
    print(f"import of {result['inserted']:,} rows: {result['seconds']:.1f} s; meanwhile {len(waits):,} claim+submit, "
          f"{errors} errors, longest wait {waits[-1]:.2f} s, p99 {waits[int(len(waits) * 0.99)] * 1000:.1f} ms")
    importer.close()
    server.close()


if __name__ == "__main__":
    main()
