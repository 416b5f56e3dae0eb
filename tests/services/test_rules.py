"""Rules as annotators (services/rules.py) on a YouTube-spam slice, on SQLite and PostgreSQL: votes stored as
annotations of the rule's user, abstentions absent, re-running idempotent, disabling removing the votes, the
regex guard, new items on import, a Python labelling function through its entry point, the label model
setting and the analysis table."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from sqlalchemy import text

from labelwright.errors import Conflict, ValidationError
from labelwright.quality import LabelModel
from labelwright.services import labelling_functions as lf
from labelwright.services import queue, rules
from labelwright.services.export import jsonl_lines
from labelwright.services.items import add_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import create_project
from labelwright.services.quality import project_quality
from labelwright.store import loads
from tests.conftest import SHARED

N = 80
SCHEMA = {"name": "YouTube rules", "slug": "yt", "overlap": 1, "id_field": "id",
          "fields": [{"name": "text", "type": "text"}],
          "questions": [{"name": "spam", "type": "single_choice", "options": ["spam", "ham"]}]}


def slice_of_youtube(start: int = 0, n: int = N) -> list[dict]:
    df = pd.read_csv(SHARED / "youtube_spam" / "items.csv", dtype={"item": str}).iloc[start:start + n]
    return [{"id": r.item, "text": r.text, "truth": "spam" if r.label == 1 else "ham"} for r in df.itertuples()]


def matches(records: list[dict], words: list[str]) -> set[str]:
    """The ids a keyword rule must vote on, computed here independently with the standard library."""
    phrases = [r"\s+".join(re.escape(part) for part in w.split()) for w in words]  # "my  channel" too
    pat = re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.IGNORECASE)
    return {r["id"] for r in records if pat.search(r["text"])}


@pytest.fixture
def yt(store, owner):
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    records = slice_of_youtube()
    add_items(store, p, [{"id": r["id"], "text": r["text"]} for r in records])
    return p, records


def votes(store, rule: dict) -> dict[str, str]:
    """``{external id: label}`` of the rule's stored votes."""
    rows = store_rows(store, "SELECT i.external_id, a.answers, a.review_status FROM annotations a "
                             "JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.user_id WHERE u.name = :u",
                      u=rule["user"])
    assert all(status == "rule" for _, _, status in rows)
    out = {ext: loads(answers)["spam"] for ext, answers, _ in rows}
    assert len(out) == len(rows)  # one vote per item
    return out


def answer_truly(store, project, annotator, records: list[dict], n: int) -> None:
    """``annotator`` labels the next ``n`` items the queue serves with their true label."""
    truth = {r["id"]: r["truth"] for r in records}
    for _ in range(n):
        item = queue.claim_next(store, project, annotator)
        queue.submit(store, item["id"], annotator, {"spam": truth[item["external_id"]]})


def store_rows(store, sql: str, **params) -> list:
    with store.read() as conn:
        return conn.execute(text(sql), params).all()


def test_a_keyword_rule_votes_where_it_matches_and_abstains_elsewhere(store, owner, yt):
    p, records = yt
    rule = rules.create_rule(store, p, name="check out", kind="keyword", field="text", label="spam",
                             pattern="check out, Subscribe\nmy channel", by=owner[0])
    want = matches(records, ["check out", "subscribe", "my channel"])
    assert 5 < len(want) < N  # the slice has both
    assert votes(store, rule) == {i: "spam" for i in want}
    assert rule["votes"] == len(want) and rule["pattern"] == "check out\nSubscribe\nmy channel"
    # whole words only: "subscribed" is not "subscribe"
    assert lf.make_function(lf.RuleSpec("x", "keyword", "spam", "text", "subscribe", "spam"),
                            rules.rule_questions(p)["spam"])({"text": "I subscribed"}) is None
    # no work was done or handed out: the queue, the counters and pay do not see rules
    assert store_rows(store, "SELECT sum(n_done), sum(n_assigned) FROM items")[0] == (0, 0)
    # a machine annotator of kind "rule": what pay and the hourly estimates leave out
    assert store_rows(store, "SELECT m.kind FROM machine_annotators m JOIN users u ON u.id = m.user_id "
                             "WHERE u.name = :u", u=rule["user"]) == [("rule",)]


def test_running_again_replaces_the_votes_and_disabling_removes_them(store, owner, yt):
    p, records = yt
    rule = rules.create_rule(store, p, name="link", kind="regex", field="text", label="spam",
                             pattern=r"https?://", by=owner[0])
    first = votes(store, rule)
    assert first == {r["id"]: "spam" for r in records if re.search(r"https?://", r["text"])}
    assert rules.apply_rule(store, p, rule["id"])["votes"] == len(first)
    assert votes(store, rule) == first  # idempotent: the same rows, not twice as many
    changed = rules.update_rule(store, p, rule["id"], {"pattern": r"\.com\b", "label": "ham"}, by=owner[0])
    assert votes(store, changed) == {r["id"]: "ham" for r in records if re.search(r"\.com\b", r["text"])}
    off = rules.update_rule(store, p, rule["id"], {"enabled": False}, by=owner[0])
    assert off["votes"] == 0 and votes(store, off) == {}
    on = rules.update_rule(store, p, rule["id"], {"enabled": True}, by=owner[0])
    assert votes(store, on) and on["votes"] == len(votes(store, on))
    rules.delete_rule(store, p, rule["id"], by=owner[0])
    assert rules.list_rules(store, p) == []
    assert store_rows(store, "SELECT count(*) FROM users WHERE name = :u", u=rule["user"])[0][0] == 0
    assert store_rows(store, "SELECT count(*) FROM annotations")[0][0] == 0


def test_bad_rules_are_refused_with_the_field_named(store, owner, yt):
    p, _ = yt

    def refused(match: str, where: str, **kw):
        args = {"name": "r", "kind": "regex", "field": "text", "label": "spam", "pattern": "x", **kw}
        with pytest.raises(ValidationError, match=match) as e:
            rules.create_rule(store, p, **args)
        assert e.value.field == where

    refused("backtracks catastrophically", "pattern", pattern=r"(a|aa)+$")
    refused("backtracks catastrophically", "pattern", pattern=r"^(\w+\s?)+$")
    refused("at most 300 characters", "pattern", pattern="a" * 301)
    refused("not a valid regular expression", "pattern", pattern="(unclosed")
    refused("not an item field", "field", field="author")
    refused("not one of question 'spam'", "label", label="eggs")
    refused("kind is one of", "kind", kind="sql")
    refused("at least one keyword", "pattern", kind="keyword", pattern=" , ")
    refused("no labelling function 'nope' is installed", "pattern", kind="python", pattern="nope")
    rules.create_rule(store, p, name="r", kind="regex", field="text", label="spam", pattern="x")
    with pytest.raises(Conflict, match="already has a rule named 'r'"):
        rules.create_rule(store, p, name="r", kind="regex", field="text", label="spam", pattern="y")
    assert store_rows(store, "SELECT count(*) FROM rules")[0][0] == 1


def test_a_pattern_that_times_out_on_items_is_switched_off(store, owner):
    """``^(b|bb)+$`` passes the probes but explodes on a long run of b's: each item is cut off after the
    timeout, and after MAX_TIMEOUTS such items the rule is off and has no votes."""
    p = create_project(store, SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": f"b{i}", "text": "b" * 5000 + "!"} for i in range(rules.MAX_TIMEOUTS)]
              + [{"id": "ok", "text": "bb"}])
    started = time.perf_counter()
    rule = rules.create_rule(store, p, name="slow", kind="regex", field="text", label="spam", pattern=r"^(b|bb)+$")
    assert time.perf_counter() - started < rules.MAX_TIMEOUTS * 1.5  # each item stopped early
    assert not rule["enabled"] and rule["votes"] == 0 and "switched off" in rule["last_error"]
    assert rule["errors"] == rules.MAX_TIMEOUTS


def test_new_items_on_import_get_the_rules_votes(store, owner, yt):
    p, records = yt
    rule = rules.create_rule(store, p, name="subscribe", kind="keyword", field="text", label="spam",
                             pattern="subscribe")
    more = slice_of_youtube(N, 40)
    add_items(store, p, [{"id": r["id"], "text": r["text"]} for r in more])
    assert votes(store, rule) == {i: "spam" for i in matches(records + more, ["subscribe"])}
    assert rules.get_rule(store, p, rule["id"])["votes"] == len(matches(records + more, ["subscribe"]))


def test_a_python_labelling_function_from_an_entry_point(store, owner, yt, tmp_path, monkeypatch):
    info = tmp_path / "spam_rules-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spam-rules\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{lf.GROUP}]\nshort_ham = tests.services.rule_plugin:short_ham\n"
                                           "broken = tests.services.rule_plugin:broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    p, records = yt
    rule = rules.create_rule(store, p, name="short", kind="python", pattern="short_ham", by=owner[0])
    assert votes(store, rule) == {r["id"]: "ham" for r in records if len(r["text"]) < 30}
    bad = rules.create_rule(store, p, name="broken", kind="python", pattern="broken")
    assert bad["votes"] == 0 and bad["errors"] == N and "not a label of question 'spam'" in bad["last_error"]


def test_the_label_model_is_a_setting_and_the_export_says_so(store, owner, make_annotator, yt):
    p, records = yt
    truth = {r["id"]: r["truth"] for r in records}
    ann, _ = make_annotator("ann")
    answered = 0
    while answered < 30 and (item := queue.claim_next(store, p, ann)) is not None:
        queue.submit(store, item["id"], ann, {"spam": truth[item["external_id"]]})
        answered += 1
    before = project_labels(store, p)["spam"]
    rules.create_rule(store, p, name="kw", kind="keyword", field="text", label="spam",
                      pattern="check out, subscribe, channel, http")
    rules.create_rule(store, p, name="short", kind="regex", field="text", label="ham", pattern=r"^.{0,25}$")
    off = project_labels(store, p)["spam"]
    assert off.method == before.method != "label_model" and off.values == before.values  # rules do not count
    assert len(off.tasks) == 30
    rules.set_label_model(store, p, True, by=owner[0])
    on = project_labels(store, p)["spam"]
    assert on.method == "label_model" and len(on.tasks) == N  # every item, rules alone where nobody answered
    lines = [loads(line) for line in b"".join(jsonl_lines(store, p)).splitlines()]
    assert {line["aggregate"]["spam"]["method"] for line in lines} == {"label_model"}
    # the same as fitting the library's LabelModel on the stored votes, every item a task, ann a person
    long = pd.DataFrame(store_rows(store, "SELECT item_id, user_id, answers FROM annotations"),
                        columns=["task", "worker", "label"]).assign(label=lambda d: [loads(a)["spam"] for a in d.label])
    ids = [r[0] for r in store_rows(store, "SELECT id FROM items ORDER BY id")]
    direct = LabelModel(class_balance="votes").fit(long, tasks=ids, people=[ann.id])
    assert on.values == direct.labels_.reindex(ids).tolist()
    ext = [r[0] for r in store_rows(store, "SELECT external_id FROM items ORDER BY id")]
    assert sum(v == truth[e] for v, e in zip(on.values, ext)) / N > 0.6


def test_the_quality_summary_with_the_label_model_on_and_items_nobody_voted_on(store, owner, make_annotator, yt):
    """The label model labels every item, including those no person answered and no rule voted on. The
    quality summary (and the quality page) crashed on them (KeyError in the items in doubt); they are now
    left out of its confidence and doubt list, which are about answers."""
    p, records = yt
    answer_truly(store, p, make_annotator("ann")[0], records, 10)
    kw = rules.create_rule(store, p, name="kw", kind="keyword", field="text", label="spam", pattern="check out")
    rules.set_label_model(store, p, True, by=owner[0])
    touched = {r["id"] for r in records[:10]} | set(votes(store, kw))
    untouched = [r["id"] for r in records if r["id"] not in touched]
    assert untouched  # the slice has items nobody voted on
    assert len(project_labels(store, p)["spam"].tasks) == N  # the label model labels them all
    q = project_quality(store, p, doubt_limit=N)
    spam = next(e for e in q["questions"] if e["name"] == "spam")
    assert spam["method"] == "label_model" and spam["items"] == len(touched)
    assert q["items_in_doubt"] and {d["external_id"] for d in q["items_in_doubt"]} <= touched


def test_the_analysis_table(store, owner, make_annotator, yt):
    p, records = yt
    truth = {r["id"]: r["truth"] for r in records}
    answer_truly(store, p, make_annotator("ann")[0], records, 40)
    kw = rules.create_rule(store, p, name="kw", kind="keyword", field="text", label="spam", pattern="check out")
    rules.create_rule(store, p, name="short", kind="regex", field="text", label="ham", pattern=r"^.{0,25}$")
    table = rules.analysis(store, p)
    assert [(e["question"], e["n_items"]) for e in table] == [("spam", N)]
    row = next(r for r in table[0]["rules"] if r["rule"] == "kw")
    voted = votes(store, kw)
    assert row["votes"] == len(voted) and row["coverage"] == pytest.approx(len(voted) / N)
    labelled = {r["id"] for r in records[:40]}  # the queue serves items in import order
    against = [i for i in voted if i in labelled]
    assert row["people_votes"] == len(against)
    assert row["people_accuracy"] == pytest.approx(sum(truth[i] == "spam" for i in against) / len(against))
    assert row["gold_votes"] == 0 and row["gold_accuracy"] is None and row["polarity"] == ["spam"]
    q = project_quality(store, p)  # the quality summary carries the table; its majorities are the people's
    assert q["rules"] == table and q["items_in_doubt"]
    assert all(d["majority"] is None or d["majority"]["n"] == 1 for d in q["items_in_doubt"])
    assert {a["annotator"]: a["machine"] for a in q["annotators"]}[kw["user"]] is True
