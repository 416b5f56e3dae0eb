"""The demo: two projects built from small real datasets shipped in the package (see ATTRIBUTION.md).

Each switches on the whole workflow (see the schemas): gold items, marked here from the datasets' own
ground truth (:data:`GOLD`), a qualification test (YouTube spam), review of the answers and pay.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from importlib import resources

from sqlalchemy import text

from labelwright.errors import Conflict, NotFound
from labelwright.io.readers import read_jsonl
from labelwright.schema import parse_schema
from labelwright.services import users as users_svc
from labelwright.services.gold import gold_answers, set_gold
from labelwright.services.items import import_items
from labelwright.services.projects import create_project, get_project, progress
from labelwright.store import Store

DEMO_PROJECTS = (("youtube_spam.yaml", "youtube_spam_300.jsonl"), ("pandalm.yaml", "pandalm_200.jsonl"))
OWNER = "owner"
GOLD_EVERY = 12  # YouTube spam: the qualification test's five comments, then every 12th is gold
GOLD_PAIRS = 20  # PandaLM: the first 20 pairs (every 9th) on which the three experts agreed


def _spam_gold(pkg, ids: list[str]) -> dict[str, dict]:
    with (pkg / "data" / "youtube_spam_300_truth.csv").open(encoding="utf-8") as f:
        truth = {r["id"]: r["label"] for r in csv.DictReader(f)}
    # The qualification test is the first five gold items in import order: the first three spam and the first
    # two ham comments, so a person who answers "spam" (or "ham") to everything scores 60% (40%) and fails the
    # 80% pass mark. Every 12th comment after those is gold too.
    spam, ham = ([i for i in ids if truth.get(i) == label] for label in ("spam", "ham"))
    test = spam[:3] + ham[:2]
    last = max(ids.index(i) for i in test)
    rest = [i for i in ids[last + 1::GOLD_EVERY] if i in truth]
    return {i: {"spam": truth[i]} for i in test + rest}


def _pandalm_gold(pkg, ids: list[str]) -> dict[str, dict]:
    votes = defaultdict(list)
    with (pkg / "data" / "pandalm_200_expert_votes.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            votes[r["id"]].append(r["choice"])
    agreed = [i for i in ids[::9] if len(set(votes.get(i, []))) == 1 and len(votes[i]) == 3]
    return {i: {"preference": {"choice": votes[i][0]}} for i in agreed[:GOLD_PAIRS]}


GOLD = {"youtube_spam_300.jsonl": _spam_gold, "pandalm_200.jsonl": _pandalm_gold}


def _mark_gold(store: Store, project, owner, answers: dict[str, dict]) -> int:
    """Mark the demo's gold items (by external id) once; a second run leaves them as they are."""
    with store.read() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM items WHERE project_id = :p"),
                                {"p": project.id}).all())
    done = gold_answers(store, project)
    for ext, gold in answers.items():
        if ext in ids and ids[ext] not in done:
            set_gold(store, project, ids[ext], gold, owner)
    return len(gold_answers(store, project))


def build_demo(store: Store, settings) -> dict:
    """Create (or top up) the demo owner and projects; return a fresh owner sign-in URL and a summary.

    Safe to run again on the same database: nothing is duplicated.
    """
    pkg = resources.files("labelwright.demo")
    try:
        owner = users_svc.get_user(store, OWNER)
    except NotFound:
        owner = users_svc.create_user(store, OWNER, "owner")
    summary = []
    for schema_name, data_name in DEMO_PROJECTS:
        schema = parse_schema(pkg.joinpath(schema_name).read_text(encoding="utf-8"), file=schema_name)
        try:
            project = create_project(store, schema, created_by=owner.id)
        except Conflict:
            project = get_project(store, schema.slugified())
        with (pkg / "data" / data_name).open("rb") as f:
            records = list(read_jsonl(f, data_name))
        ids = [str(record[schema.id_field]) for _, record in records]
        import_items(store, project, records, file=data_name)
        gold = _mark_gold(store, project, owner, GOLD[data_name](pkg, ids))
        items = progress(store, project)["items"]
        summary.append({"slug": project.slug, "items": items["total"] + items["gold"], "gold": gold,
                        "overlap": project.overlap})
    link = users_svc.create_signin_link_token(store, owner, settings.signin_link_hours)
    return {"projects": summary, "signin_url": f"{settings.public_url}/signin/{link}"}
