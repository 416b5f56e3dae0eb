"""The assistant's throughput (issue 9, part c of benchmarks/assist.py).

1. **Features**: TF-IDF (``TfidfFeatures``) fit seconds and transform items/s on the largest set; the
   packaged all-MiniLM-L6-v2 on 1,000 of its texts when the ``embeddings`` extra is installed.
2. **Steps** (in process, through the services, on ``--train-set``, a fresh SQLite file): the project is
   featurised, then people's answers (the ground truth, one annotator through ``claim_next`` / ``submit``)
   are added in stages; at each stage the parts of an assistant step are timed: the cross-fitted training
   (5 fold models), predicting every item with their mean, :func:`~labelwright.services.assistant.train_builtin`
   as a whole (training, predicting, storing the predictions), ranking the queue, auto-labelling, and a whole
   ``step``. Wall and CPU seconds of this process (BLAS may use both cores, so CPU can exceed wall).
3. **The hot path**: K annotators doing next + submit against a real server (``benchmarks/serve.py``'s
   ``run_one``: its load generator, CPU accounting and invariant checks) on two projects built once from the
   same items: a plain one, and the same with ``assist: {order: uncertainty, suggestions: true}`` after a
   model's predictions exist (a ranked queue, a suggestion looked up for every claim and recorded with every
   submission). The two alternate, round after round, each run on a fresh copy of its template database; the
   background assist worker is off in both (``--set assist_worker=false``), so only the request path is
   measured. Medians over the rounds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import statistics
import tempfile
import time

import numpy as np

from benchmarks import serve
from benchmarks.assist_autolabel import QUESTION, load_items, project_schema
from benchmarks.common import Database, bench_schema, fake_items
from labelwright.assist.features import SentenceEmbeddings, TfidfFeatures, embeddings_available
from labelwright.schema import label_values
from labelwright.services import access, assistant, autolabel, queue, users
from labelwright.services.items import import_items
from labelwright.services.projects import create_project, get_project
from labelwright.store import Store

SPAM_WORDS = {"free", "win", "money", "click", "subscribe", "channel", "link", "website", "check"}


class Timer:
    """Wall and CPU seconds of this process for a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


# ---- 1. features ---------------------------------------------------------------------------------


def features(name: str) -> list[str]:
    texts = load_items(name)["text"].tolist()
    out = []
    with Timer() as fit:
        f = TfidfFeatures().fit(texts)
    with Timer() as tr:
        f.transform(texts)
    out.append(f"| TF-IDF (fit on all, then transform all) | {name} | {len(texts):,} | fit {fit.wall:.1f} s "
               f"(CPU {fit.cpu:.1f} s) | {len(texts) / tr.wall:,.0f} items/s | {1000 * tr.cpu / len(texts):.2f} ms |")
    if embeddings_available():
        with Timer() as load:
            emb = SentenceEmbeddings().load()
        emb.transform(["warm-up"])
        sample = texts[:1000]
        with Timer() as tr:
            emb.transform(sample)
        out.append(f"| MiniLM (packaged all-MiniLM-L6-v2, batch 64) | {name} | {len(sample):,} "
                   f"| load {load.wall:.1f} s "
                   f"| {len(sample) / tr.wall:,.0f} items/s | {1000 * tr.cpu / len(sample):.2f} ms |")
    else:
        out.append("| MiniLM | - | - | not installed (the `embeddings` extra): skipped | | |")
    return out


# ---- 2. the assistant's step, in parts -------------------------------------------------------------


def steps(name: str, stages=(500, 2000, 5000)) -> list[str]:
    items = load_items(name)
    truth = dict(zip(items["id"], items["label"]))
    options = sorted(set(truth.values()))
    rows = []
    with Database("sqlite") as db:
        store = db.store(pool_size=2)
        try:
            owner = users.create_user(store, "owner", "owner")
            p = create_project(store, project_schema("steps", options, 1, "tfidf", 0.95), created_by=owner.id)
            import_items(store, p, enumerate(({"id": i, "text": t} for i, t in zip(items["id"], items["text"])), 1))
            ann = users.create_user(store, "ann")
            access.set_member(store, p, ann.name, "annotator")
            p = get_project(store, p.id)
            with Timer() as t:
                n = assistant.featurise(store, p)
            rows.append(f"| featurise (TF-IDF fit + transform + store) | 0 | {n:,} items | {t.wall:.1f} s "
                        f"| {t.cpu:.1f} s | {n / t.wall:,.0f} items/s |")
            assistant.ensure_holdout(store, p)
            labelled = 0
            k = len(label_values(p.schema.assist_question()))
            for stage in stages:
                with Timer() as t:
                    while labelled < stage:
                        item = queue.claim_next(store, p, ann)
                        if item is None:
                            break
                        queue.submit(store, item["id"], ann, {QUESTION: truth[item["external_id"]]}, active_ms=2000)
                        labelled += 1
                ids, x = assistant.load_features(store, p)
                lab_ids, y = assistant.people_labels(store, p)
                xl = x[np.searchsorted(ids, lab_ids)]
                with Timer() as fit:
                    _, models = assistant._cross_fitted(xl, y, k)
                with Timer() as pred:
                    np.mean([assistant._full_probas(m, x, k) for m in models], axis=0)
                with Timer() as train:
                    trained = assistant.train_builtin(store, p, force=True)
                with Timer() as rk:
                    assistant.rank(store, p)
                with Timer() as ap:
                    got = autolabel.apply(store, p, trained["model"])
                with Timer() as whole:
                    assistant.step(store, p, force_train=True)
                rows += [
                    (f"| cross-fitted training (5 fold models) | {len(y):,} | {len(y):,} labels | {fit.wall:.2f} s "
                     f"| {fit.cpu:.2f} s | |"),
                    (f"| predicting every item (mean of the fold models) | {len(y):,} | {len(ids):,} items "
                     f"| {pred.wall:.2f} s | {pred.cpu:.2f} s | {len(ids) / pred.wall:,.0f} items/s |"),
                    (f"| train_builtin (train + predict + store predictions) | {len(y):,} | | {train.wall:.2f} s "
                     f"| {train.cpu:.2f} s | |"),
                    (f"| rank the queue (uncertainty, first batch k-center) | {len(y):,} | | {rk.wall:.2f} s "
                     f"| {rk.cpu:.2f} s | |"),
                    f"| auto-label ({got:,} labelled) | {len(y):,} | | {ap.wall:.2f} s | {ap.cpu:.2f} s | |",
                    f"| a whole step (forced retrain) | {len(y):,} | | {whole.wall:.2f} s | {whole.cpu:.2f} s | |",
                ]
        finally:
            store.close()
    return rows


# ---- 3. the hot path ---------------------------------------------------------------------------------


def _is_spam(text: str) -> bool:
    return sum(w.strip(".!?").lower() in SPAM_WORDS for w in text.split()) >= 3


def build_template(path: str, n_items: int, k: int, assist: bool) -> None:
    """A SQLite file holding the ``bench`` project (benchmarks/serve.py's schema, overlap 3) with ``n_items``
    items, ``k`` annotators (``annotator00``...) with API tokens, and 300 items answered by three seeding
    users; with ``assist``, the assist block and one assistant step (features, a model, predictions for every
    item, the ranked queue)."""
    schema = bench_schema(3)
    if assist:
        schema["assist"] = {"order": "uncertainty", "suggestions": True, "features": "tfidf"}
    store = Store(f"sqlite:///{path}", pool_size=2)
    store.migrate()
    try:
        owner = users.create_user(store, "owner", "owner")
        p = create_project(store, schema, created_by=owner.id)
        import_items(store, p, enumerate(fake_items(n_items), start=1))
        tokens = []
        for i in range(k):
            u = users.create_user(store, f"annotator{i:02d}")
            access.set_member(store, p, u.name, "annotator")
            tokens.append(users.create_api_token(store, u, label="bench"))
        p = get_project(store, p.id)
        for s in range(3):
            seeder = users.create_user(store, f"seeder{s}")
            access.set_member(store, p, seeder.name, "annotator")
            for _ in range(300):
                item = queue.claim_next(store, p, seeder)
                label = "spam" if _is_spam(item["data"]["text"]) else "ham"
                queue.submit(store, item["id"], seeder, {"spam": label}, active_ms=2000)
        if assist:
            report = assistant.step(store, p)
            assert report.trained and report.predicted == n_items, report
    finally:
        store.close()
    with open(path + ".tokens", "w") as f:
        f.write("\n".join(tokens))


@contextlib.contextmanager
def _copies_of(template: str):
    """While active, ``serve.run_one`` gets its database as a copy of ``template`` instead of building one
    (``run_one`` calls the module's ``prepare``; this swaps it and puts it back)."""
    with open(template + ".tokens") as f:
        tokens = f.read().split("\n")

    def prepare(db, n_items, overlap, n_users):
        src, dst = sqlite3.connect(template), sqlite3.connect(db.path)
        with dst:
            src.backup(dst)
        pid = dst.execute("SELECT id FROM projects WHERE slug = 'bench'").fetchone()[0]
        src.close()
        dst.close()
        return "bench", tokens[:n_users], pid

    original = serve.prepare
    serve.prepare = prepare
    try:
        yield
    finally:
        serve.prepare = original


def hot_path(n_items: int, k: int, rounds: int, duration: float) -> list[str]:
    tmp = tempfile.mkdtemp(prefix="lw-assist-hot-")
    try:
        templates = {}
        for name, assist in (("plain", False), ("assist", True)):
            path = os.path.join(tmp, f"{name}.db")
            t0 = time.perf_counter()
            build_template(path, n_items, k, assist)
            templates[name] = path
            print(f"template {name}: {n_items:,} items, built in {time.perf_counter() - t0:.0f} s", flush=True)
        _check_suggestion(templates["assist"])
        runs: dict[str, list[dict]] = {"plain": [], "assist": []}
        for r in range(rounds):
            for name in ("plain", "assist") if r % 2 == 0 else ("assist", "plain"):
                with _copies_of(templates[name]):
                    got = serve.run_one("sqlite", k, items=n_items, overlap=3, workers=1, duration=duration,
                                        warmup=2, server_args=["--set", "assist_worker=false"])
                runs[name].append(got)
                print(f"round {r + 1} {name:6s} " + serve._fmt(got), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    def med(rs, key):
        return statistics.median(key(x) for x in rs)

    out = []
    for name, label in (("plain", "plain project"), ("assist", "assist: order uncertainty, suggestions on")):
        rs = runs[name]
        out.append(
            f"| {label} | {med(rs, lambda x: x['annotations_per_s']):,.0f} "
            f"| {med(rs, lambda x: x['cycle_p50_ms']):.1f} ms | {med(rs, lambda x: x['cycle_p99_ms']):.1f} ms "
            f"| {med(rs, lambda x: x['next_p50_ms']):.1f} / {med(rs, lambda x: x['submit_p50_ms']):.1f} ms "
            f"| {med(rs, lambda x: x['cpu_percent_of_machine']['server_ms_per_annotation']):.2f} ms "
            f"| {', '.join(format(x['annotations_per_s'], ',.0f') for x in rs)} "
            f"| {'OK' if all(x['checks']['ok'] for x in rs) else 'FAILED'} |")
    ratio = med(runs["assist"], lambda x: x["annotations_per_s"]) / med(runs["plain"], lambda x: x["annotations_per_s"])
    out.append(f"\nassist / plain, annotations/s: {ratio:.2f}")
    return out


def _check_suggestion(template: str) -> None:
    """On a scratch copy of the assist template: a claim carries a suggestion and the submission records it."""
    scratch = template + ".scratch"
    shutil.copyfile(template, scratch)
    store = Store(f"sqlite:///{scratch}", pool_size=1)
    try:
        p = get_project(store, "bench")
        u = users.get_user(store, "annotator00")
        item = queue.claim_next(store, p, u)
        assert item.get("suggestion"), item
        queue.submit(store, item["id"], u, {"spam": "ham"}, active_ms=1000)
        arm = store.lookup("SELECT suggestion_arm FROM annotations WHERE item_id = :i AND user_id = :u",
                           {"i": item["id"], "u": u.id})
        assert arm and arm[0] == "shown", arm
        print(f"assist template: claim carries {item['suggestion']}; the submission recorded arm {arm[0]!r}")
    finally:
        store.close()
        os.remove(scratch)


def main(args) -> None:
    print("### features")
    print("| Features | Set | Items | Fit / load | Transform | CPU per item |\n|---|---|---:|---|---:|---:|")
    for line in features(args.train_set):
        print(line, flush=True)
    print("### assistant step, in parts")
    print("| Part | People labels | Size | Wall | CPU | Rate |\n|---|---:|---|---:|---:|---:|")
    for line in steps(args.train_set):
        print(line)
    print(f"### hot path: K={args.hot_annotators}, {args.hot_items:,} items, overlap 3, SQLite, "
          f"{args.hot_rounds} alternating rounds of {args.hot_duration:.0f} s")
    print("| Project | Annotations/s | Cycle p50 | Cycle p99 | next / submit p50 | Server CPU per annotation "
          "| Per round | Invariants |\n|---|---:|---:|---:|---:|---:|---|---|")
    for line in hot_path(args.hot_items, args.hot_annotators, args.hot_rounds, args.hot_duration):
        print(line)
