"""Items completed per day and the finish estimate on the project page (issue 10): completion is the
answer that brings an item to its target; gold items and other projects do not count; the estimate is
the recent rate's, written in words, and absent when there is no rate. Clocks are passed in (``now=``)."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from labelwright.services import users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.services.throughput import throughput
from tests.conftest import SPAM_SCHEMA, join, post_login, seed_answer

DAY = 86400.0
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc).timestamp()  # a Friday, mid-afternoon UTC


def item_ids(store, project) -> list[int]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM items WHERE project_id = :p ORDER BY id"),
                                           {"p": project.id})]


@pytest.fixture
def people(store, spam_project):
    out = []
    for name in ("ann", "bob", "cat"):
        out.append(users.create_user(store, name, "annotator", f"{name}-password"))
        join(store, name, [spam_project])
    return out


def answer(store, item_id, user, at):
    seed_answer(store, item_id, user, {"spam": "spam"}, now=at)


def test_completed_per_day_counts_the_answer_that_reaches_the_target(store, spam_project, people):
    ann, bob, cat = people
    ids = item_ids(store, spam_project)  # 10 items, overlap 2
    # item 0: first answer 3 days ago, second 2 days ago -> completed 2 days ago
    answer(store, ids[0], ann, NOW - 3 * DAY)
    answer(store, ids[0], bob, NOW - 2 * DAY)
    # items 1, 2: both answers today
    for i in ids[1:3]:
        answer(store, i, ann, NOW - 3600)
        answer(store, i, bob, NOW - 1800)
    # item 3: one answer only (not completed); item 4: completed 40 days ago (outside the 30 days)
    answer(store, ids[3], cat, NOW - 600)
    answer(store, ids[4], ann, NOW - 41 * DAY)
    answer(store, ids[4], bob, NOW - 40 * DAY)
    got = throughput(store, spam_project, now=NOW)
    per_day = dict(got["per_day"])
    today = date(2026, 11, 20)
    assert len(got["per_day"]) == 30 and got["per_day"][-1][0] == today
    assert got["per_day"][0][0] == today - timedelta(days=29)
    assert per_day[today] == 2 and per_day[today - timedelta(days=2)] == 1 and sum(per_day.values()) == 3
    # the rate: 3 items over the last 7 days (the project is older than that)
    assert got["rate_days"] == 7 and got["rate"] == pytest.approx(3 / 7)
    assert (got["done"], got["remaining"], got["total"]) == (4, 6, 10)
    assert got["finish_days"] == 14 and got["finish"] == today + timedelta(days=14)  # ceil(6 / (3/7))


def test_a_young_project_rates_over_its_own_days_and_the_clock_is_respected(store, spam_project, people):
    ann, bob, _ = people
    ids = item_ids(store, spam_project)
    for i in ids[:4]:
        answer(store, i, ann, NOW - DAY - 60)
        answer(store, i, bob, NOW - DAY)
    got = throughput(store, spam_project, now=NOW)
    assert got["rate_days"] == 2 and got["rate"] == 2.0  # 4 items over yesterday and today
    assert got["finish"] == date(2026, 11, 23)  # 6 left at 2 a day: 3 days
    # seen from the day before those answers, nothing is done yet and there is no estimate
    before = throughput(store, spam_project, now=NOW - 3 * DAY)
    assert sum(n for _, n in before["per_day"]) == 0 and before["rate"] is None and before["finish"] is None


def test_no_rate_no_estimate_and_gold_and_other_projects_do_not_count(store, owner, spam_project, people):
    ann, bob, _ = people
    empty = throughput(store, spam_project, now=NOW)
    assert empty["rate"] is None and empty["finish"] is None and empty["remaining"] == 10
    other = create_project(store, {**SPAM_SCHEMA, "slug": "other", "name": "Other"}, created_by=owner[0].id)
    add_items(store, other, [{"id": "o1", "text": "x"}])
    join(store, "ann", [other])
    join(store, "bob", [other])
    oid = item_ids(store, other)[0]
    answer(store, oid, ann, NOW - 100)
    answer(store, oid, bob, NOW - 50)
    ids = item_ids(store, spam_project)
    with store.write() as conn:
        conn.execute(text("UPDATE items SET is_gold = 1 WHERE id = :i"), {"i": ids[0]})
    answer(store, ids[0], ann, NOW - 100)
    answer(store, ids[0], bob, NOW - 50)
    got = throughput(store, spam_project, now=NOW)
    assert got["rate"] is None and got["total"] == 9 and got["remaining"] == 9
    assert throughput(store, other, now=NOW)["per_day"][-1][1] == 1


def test_an_item_with_a_higher_target_completes_at_its_own_target(store, spam_project, people):
    ann, bob, cat = people
    ids = item_ids(store, spam_project)
    with store.write() as conn:
        conn.execute(text("UPDATE items SET target = 3 WHERE id = :i"), {"i": ids[0]})
    answer(store, ids[0], ann, NOW - 3 * DAY)
    answer(store, ids[0], bob, NOW - 2 * DAY)
    assert throughput(store, spam_project, now=NOW)["rate"] is None  # 2 of 3 answers: not completed
    answer(store, ids[0], cat, NOW - DAY)
    per_day = dict(throughput(store, spam_project, now=NOW)["per_day"])
    assert per_day[date(2026, 11, 19)] == 1 and sum(per_day.values()) == 1


def test_project_page_shows_the_chart_and_the_estimate_in_words(http, store, spam_project, people):
    ann, bob, _ = people
    now = time.time()
    ids = item_ids(store, spam_project)
    for k, i in enumerate(ids[:4]):
        answer(store, i, ann, now - (k + 1) * DAY)
        answer(store, i, bob, now - (k + 1) * DAY + 60)
    post_login(http, "olive", "owner-password")
    html = http.get("/projects/spam").text
    main = html.split("<main")[1].split("</main>")[0]
    assert "Items completed per day" in main and "<svg" in main and "projected" in main
    m = re.search(r"At ([\d.]+) items/day the remaining 6 items finish around (\d{4}-\d\d-\d\d)\.", main)
    assert m, main
    # 4 items over the 5 days since the first answer: 0.8 a day, 6 left -> 8 days from today
    assert m.group(1) == "0.80" and "completed on average over the last 5 days" in main
    today = datetime.fromtimestamp(now, timezone.utc).date()
    assert m.group(2) == (today + timedelta(days=8)).isoformat()
    assert "4 of 10 items done (40%)" in main and "40% of the answers needed are in" in main
    assert "<script" not in main and 'style="' not in main


def test_project_page_has_no_estimate_without_a_rate_and_is_closed_to_annotators(http, store, spam_project, people):
    post_login(http, "olive", "owner-password")
    main = http.get("/projects/spam").text.split("<main")[1].split("</main>")[0]
    assert "finish around" not in main and "Items completed per day" in main
    assert "0 of 10 items done (0%)" in main
    http.post("/logout", data={}) if False else None
    http.cookies.clear()
    post_login(http, "ann", "ann-password")
    r = http.get("/projects/spam")
    assert r.status_code in (403, 404) and "finish around" not in r.text and "Items completed per day" not in r.text


def test_finish_charts_draw_the_estimate_dashed_and_escape_nothing_unsafe():
    today = date(2026, 11, 20)
    per_day = [(today - timedelta(days=29 - k), k % 3) for k in range(30)]
    bars, lines = __import__("labelwright.web.charts", fromlist=["finish_charts"]).finish_charts(
        per_day, done=50, total=80, finish=today + timedelta(days=10))
    for chart in (bars, lines):
        ElementTree.fromstring(str(chart).replace("&nbsp;", " "))  # well-formed
    assert str(bars).count("<circle") == 30 and "Items completed per day" in bars and "projected" not in bars
    assert 'class="line projected"' in lines and "2026-11-30" in lines and "all 80 items" in lines
    # the line ends at today's count and starts at what was done before the 30 days' completions
    assert "items done, 2026-11-20: 50" in lines
    assert f"items done, 2026-10-22: {50 - sum(n for _, n in per_day[1:])}" in lines
    _, none = __import__("labelwright.web.charts", fromlist=["finish_charts"]).finish_charts(
        per_day, done=50, total=80, finish=None)
    assert "projected" not in none
