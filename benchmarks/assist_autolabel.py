"""Auto-labelling with a guarantee through a real server (issue 9, part b of benchmarks/assist.py).

For each shared text dataset, on a fresh SQLite database:

1. create a project whose schema has ``assist: {auto_label: {target_accuracy: 0.95}, order: uncertainty,
   features: tfidf}`` (the builtin model) and one single-choice question, import the items (texts only, no
   labels), and make API tokens (services) for K annotators, one reviewer and the owner;
2. start ``python -m labelwright --db sqlite:///... serve --port P --set assist_worker=false`` as its own
   process and drive the assistant's steps over HTTP, in rounds: ``POST /api/v1/projects/{p}/assist/run``
   (features, training, predictions, queue order, auto-labelling), then the K annotators answer ``round``
   items between them from the ground truth (``POST .../next``, ``POST /api/v1/items/{id}/annotations``,
   concurrently), then the reviewer answers every open check (audits of machine labels, suspected label
   errors) from the ground truth (``POST .../checks/next``, ``POST /api/v1/checks/{id}``). Driving the steps
   keeps the run independent of how fast this machine is: with the background worker, simulated annotators
   that answer in milliseconds would finish a set before the first model is trained;
3. stop when a round gets no item (``next`` answers 204 to every annotator: each item is answered or
   machine-labelled), export JSONL (``GET .../export?format=jsonl``) and score the final labels against
   the ground truth; read the assistant's report (``GET .../assist``) for its estimate and audit.

Variants: ``--noise 0.1 --overlap 3`` (annotators 90% accurate: a wrong answer is another class at random,
fixed per item and annotator) and ``--features minilm`` (needs the ``embeddings`` extra).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from benchmarks.common import Database, Server
from labelwright.services import access, users
from labelwright.services.assist_report import report
from labelwright.services.items import import_items
from labelwright.services.projects import create_project, get_project

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = ("youtube_spam", "rt_polarity", "sp_sentence_polarity", "trec_question_classification")
NAMES = {"youtube_spam": {"0": "ham", "1": "spam"}, "rt_polarity": {"0": "negative", "1": "positive"},
         "sp_sentence_polarity": {"0": "negative", "1": "positive"}}
QUESTION = "class"


def load_items(name: str, max_items: int | None = None, seed: int = 0) -> pd.DataFrame:
    """``id, text, label`` (label as the option value) of a shared dataset; a seeded sample of ``max_items``."""
    items = pd.read_csv(SHARED / name / "items.csv", dtype={"item": str, "label": str})
    if "label" not in items:
        truth = pd.read_csv(SHARED / name / "truth.csv", dtype={"item": str, "label": str})
        items = items.merge(truth, on="item", how="inner")
    items = pd.DataFrame({"id": items["item"], "text": items["text"].astype(str),
                          "label": items["label"].map(lambda v: NAMES.get(name, {}).get(v, v))})
    if max_items and len(items) > max_items:
        items = items.sample(n=max_items, random_state=seed).sort_index()
    return items.reset_index(drop=True)


def project_schema(slug: str, options: list[str], overlap: int, features: str, target: float,
                   validation_share: float | None = None) -> dict:
    auto = {"target_accuracy": target}
    if validation_share is not None:  # else the schema's default (0.1, at least 300 items)
        auto["validation_share"] = validation_share
    return {"name": slug, "slug": slug, "overlap": overlap, "id_field": "id",
            "fields": [{"name": "text", "type": "text"}],
            "questions": [{"name": QUESTION, "type": "single_choice", "options": options}],
            "assist": {"auto_label": auto, "order": "uncertainty", "features": features}}


def prepare(db: Database, items: pd.DataFrame, schema: dict, n_annotators: int) -> dict:
    """Project, items and users through the services; the tokens they will use over HTTP."""
    store = db.store(pool_size=2)
    try:
        owner = users.create_user(store, "owner", "owner")
        p = create_project(store, schema, created_by=owner.id)
        rows = ({"id": i, "text": t} for i, t in zip(items["id"], items["text"]))
        import_items(store, p, enumerate(rows, start=1))
        annotators = []
        for i in range(n_annotators):
            u = users.create_user(store, f"annotator{i:02d}")
            access.set_member(store, p, u.name, "annotator")
            annotators.append(users.create_api_token(store, u, label="bench"))
        rev = users.create_user(store, "reviewer", "reviewer")
        access.set_member(store, p, rev.name, "reviewer")
        return {"slug": p.slug, "annotators": annotators, "reviewer": users.create_api_token(store, rev),
                "owner": users.create_api_token(store, owner)}
    finally:
        store.close()


def answer_of(truth: str, options: list[str], noise: float, item: str, who: int) -> str:
    """The simulated annotator's answer: the truth, or (with probability ``noise``) another option at random,
    fixed per (item, annotator) so that a retried request gets the same answer."""
    if noise <= 0:
        return truth
    h = int.from_bytes(hashlib.sha256(f"{item}:{who}".encode()).digest()[:8], "big") / 2**64
    if h >= noise:
        return truth
    others = [o for o in options if o != truth]
    return others[int(h / noise * len(others)) % len(others)]


@dataclass
class Round:
    answers: int
    exhausted: int


@dataclass
class Run:
    name: str
    items: int
    history: list = field(default_factory=list)  # per round: people answers, people items, machine labels
    step_seconds: list = field(default_factory=list)


async def _annotate_round(client: httpx.AsyncClient, slug: str, tokens: list[str], truth: dict, options: list[str],
                          quota: int, noise: float) -> Round:
    done = [0]
    exhausted = [0]

    async def one(who: int, token: str) -> None:
        head = {"Authorization": f"Bearer {token}"}
        while done[0] < quota:
            r = await client.post(f"/api/v1/projects/{slug}/next", headers=head)
            if r.status_code == 204:
                exhausted[0] += 1
                return
            r.raise_for_status()
            item = r.json()
            label = answer_of(truth[item["external_id"]], options, noise, item["external_id"], who)
            s = await client.post(f"/api/v1/items/{item['id']}/annotations", headers=head,
                                  json={"answers": {QUESTION: label}, "active_ms": 3000})
            s.raise_for_status()
            done[0] += 1

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    return Round(done[0], exhausted[0])


def _review(client: httpx.Client, slug: str, token: str, truth: dict) -> dict:
    """The reviewer answers every open check from the ground truth; returns counts by kind."""
    head = {"Authorization": f"Bearer {token}"}
    counts: dict[str, int] = {}
    while True:
        r = client.post(f"/api/v1/projects/{slug}/checks/next", headers=head)
        if r.status_code == 204:
            return counts
        r.raise_for_status()
        check = r.json()
        d = client.post(f"/api/v1/checks/{check['id']}", headers=head,
                        json={"label": truth[check["item"]["external_id"]]})
        d.raise_for_status()
        counts[check["kind"]] = counts.get(check["kind"], 0) + 1


def run_dataset(name: str, *, max_items: int | None, n_annotators: int, overlap: int, noise: float,
                features: str, target: float, round_share: float, min_round: int,
                validation_share: float | None = None, log=print) -> dict:
    items = load_items(name, max_items)
    options = sorted(items["label"].unique().tolist())
    truth = dict(zip(items["id"], items["label"]))
    n = len(items)
    quota = max(min_round, round(round_share * n)) * overlap  # answers per round
    with Database("sqlite") as db:
        t0 = time.perf_counter()
        schema = project_schema(name.replace("_", "-"), options, overlap, features, target, validation_share)
        tok = prepare(db, items, schema, n_annotators)
        setup_s = time.perf_counter() - t0
        server = Server(db.url, extra=["--set", "assist_worker=false"])
        slug = tok["slug"]
        owner = {"Authorization": f"Bearer {tok['owner']}"}
        history, steps, reviewed, failures = [], [], {}, []
        people_answers = 0
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                while True:
                    s0 = time.perf_counter()
                    r = client.post(f"/api/v1/projects/{slug}/assist/run", headers=owner)
                    if r.status_code == 500 and "JSON compliant" in server.output():
                        failures.append("assist/run: " + r.text[:200])  # the step ran; its report had a NaN
                        step = {}
                    else:
                        r.raise_for_status()
                        step = r.json()
                    steps.append({"seconds": round(time.perf_counter() - s0, 3), **{
                        k: step.get(k) for k in ("featurised", "trained", "predicted", "ranked", "auto_labelled",
                                                 "label_errors", "error")}})
                    if step.get("error"):
                        log(f"  step error: {step['error']}")
                    rnd = asyncio.run(_annotate(server.url, slug, tok["annotators"], truth, options, quota, noise))
                    people_answers += rnd.answers
                    for k, v in _review(client, slug, tok["reviewer"], truth).items():
                        reviewed[k] = reviewed.get(k, 0) + v
                    rep = _report(client, slug, owner, db, failures)
                    history.append({"people_answers": people_answers, "machine": rep["machine_labelled"],
                                    "step_s": steps[-1]["seconds"],
                                    "models": len(rep["models"]), "auto_label": rep["state"]["auto_label"]})
                    if len(history) % 10 == 0:
                        log(f"  round {len(history)}: {people_answers} answers, {rep['machine_labelled']} "
                            f"machine-labelled, {len(rep['models'])} models, step {steps[-1]['seconds']} s")
                    if rnd.answers == 0 and rnd.exhausted == len(tok["annotators"]):
                        break
                wall = time.perf_counter() - started
                report = _report(client, slug, owner, db, failures)
                export = client.get(f"/api/v1/projects/{slug}/export", params={"format": "jsonl"}, headers=owner)
                export.raise_for_status()
        except Exception:
            log(f"server log (last lines):\n{server.output()}")
            raise
        finally:
            server.stop()
    return score(name, n, export.text, truth, report, history, steps, reviewed, people_answers, wall, setup_s,
                 report_500s=len(failures), validation_share=validation_share, overlap=overlap, noise=noise,
                 features=features, quota=quota)


def _report(client: httpx.Client, slug: str, owner: dict, db: Database, failures: list) -> dict:
    """``GET /api/v1/projects/{p}/assist``. When it answers 500 (it did whenever no machine label had been
    audited yet: the audit's accuracy is NaN, which JSON cannot carry), the same report is read through the
    service from the database file, and the failure is counted."""
    r = client.get(f"/api/v1/projects/{slug}/assist", headers=owner)
    if r.status_code != 500:
        r.raise_for_status()
        return r.json()

    failures.append(r.text[:200])
    store = db.store(pool_size=1)
    try:
        return report(store, get_project(store, slug))
    finally:
        store.close()


async def _annotate(url, slug, tokens, truth, options, quota, noise) -> Round:
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return await _annotate_round(client, slug, tokens, truth, options, quota, noise)


def score(name, n, jsonl: str, truth: dict, report: dict, history, steps, reviewed, people_answers, wall, setup_s,
          **settings) -> dict:
    rows = [json.loads(line) for line in jsonl.splitlines() if line.strip()]
    final, source, by_people, sources = [], [], 0, {}
    for row in rows:
        agg = (row.get("aggregate") or {}).get(QUESTION) or {}
        final.append(agg.get("label") == truth[row["external_id"]])
        # a machine label a reviewer's audit found wrong is exported as the reviewer's (method "audit")
        kind = "audit-corrected" if agg.get("method") == "audit" else agg.get("source")
        source.append(kind)
        sources[str(kind)] = sources.get(str(kind), 0) + 1
        by_people += bool(row["annotations"])
    final, source = np.array(final), np.array(source, dtype=object)
    machine = source == "machine"
    corrected = source == "audit-corrected"
    unlabelled = int(sum(s is None for s in source))
    # steps after which a new model was there (the step's own report may have been lost to the NaN bug)
    models = [0] + [h["models"] for h in history]
    train_s = [h["step_s"] for h, before, after in zip(history, models, models[1:]) if after > before]
    return {
        "set": name, "items": n, "exported": len(rows), **settings,
        "people_items": by_people, "people_share": by_people / n, "people_answers": people_answers,
        "machine_items": int(machine.sum()), "machine_share": float(machine.mean()),
        "unlabelled": unlabelled,
        "final_accuracy": float(final.mean()),
        "people_accuracy": float(final[~machine].mean()) if (~machine).any() else None,
        "machine_accuracy": float(final[machine].mean()) if machine.any() else None,
        # the machine's own labels, those the audit corrected included (each of them was wrong)
        "machine_labels": int(machine.sum() + corrected.sum()),
        "machine_label_accuracy": float(final[machine].sum() / (machine.sum() + corrected.sum()))
        if machine.any() else None,
        "sources": sources,
        "estimated_accuracy": report["estimated_accuracy"], "audit": report["audit"],
        "audited": report["audited"], "auto_label": report["state"]["auto_label"], "reason": report["state"]["reason"],
        "models": len(report["models"]), "last_model_accuracy": report["models"][-1]["accuracy"] if report["models"]
        else None, "last_thresholds": report["models"][-1]["thresholds"] if report["models"] else None,
        "reviewed": reviewed, "rounds": len(history), "wall_s": wall, "setup_s": setup_s,
        "step_s_median": float(np.median([s["seconds"] for s in steps])),
        "train_step_s_median": float(np.median(train_s)) if train_s else None,
        "history": history,
    }


def _variant(r: dict) -> str:
    share = r.get("validation_share")
    return r["features"] + (f", validation sample {share:.0%}" if share else "")


def table(results: list[dict]) -> str:
    head = ("| Set | Items | Overlap, annotator accuracy | Features | People share | Machine share | Final accuracy "
            "| Machine labels' true accuracy (labels) | Estimated (lower bound) | Audit "
            "| Reviewer checks (audit; label error) | Models | Rounds | Wall |\n"
            "|---|---:|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    lines = [head]
    for r in results:
        a = r["audit"] or {}
        audit = (f"{a.get('correct', '?')}/{a.get('n', '?')} " + ("passed" if a.get("passed") else "FAILED")
                 if a else "-")
        ok_people = "met" if r["people_share"] <= 0.30 else "not met"
        ok_acc = "met" if r["final_accuracy"] >= 0.95 else "not met"
        m = "-" if r["machine_label_accuracy"] is None else f"{r['machine_label_accuracy']:.3f}"
        est = "-" if r["estimated_accuracy"] is None else f"{r['estimated_accuracy']:.3f}"
        lines.append(
            f"| {r['set']} | {r['items']:,} | {r['overlap']}, {1 - r['noise']:.0%} | {_variant(r)} "
            f"| {r['people_share']:.1%} ({ok_people}) | {r['machine_share']:.1%} "
            f"| {r['final_accuracy']:.3f} ({ok_acc}) "
            f"| {m} ({r['machine_labels']:,}) | {est} | {audit} | {r['reviewed'].get('audit', 0)}; "
            f"{r['reviewed'].get('label_error', 0)} | {r['models']} | {r['rounds']} | {r['wall_s']:.0f} s |")
    return "\n".join(lines)
