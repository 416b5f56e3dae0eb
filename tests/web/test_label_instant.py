"""Instant items on the server side (labelwright/web/instant.py, queue.prefetch / promote / release_prefetched),
on SQLite and PostgreSQL: what the labelling page's fetches get, and what a dishonest annotator cannot do.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from labelwright.services import pauses, queue, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from tests.conftest import post_login

JSON = {"Accept": "application/json"}
SCHEMA = {
    "name": "Instant", "slug": "inst", "overlap": 1, "id_field": "id", "gold": {"rate": 0}, "lease_seconds": 300,
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "tags", "type": "multiple_choice", "options": ["a", "b", "c"], "min_selected": 1}],
}


def _project(store, owner, n=10, **schema):
    p = create_project(store, {**SCHEMA, **schema}, created_by=owner[0].id)
    add_items(store, p, [{"id": f"i{k}", "text": f"item {k}", "answer_key": "SECRET-KEY"} for k in range(n)])
    return p


def _signed_in(http, make_annotator, name="ann", slug="inst"):
    user, _ = make_annotator(name, password=f"{name}-password-1")
    assert post_login(http, name, f"{name}-password-1", follow_redirects=False).status_code == 303
    page = http.get(f"/projects/{slug}/label")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    item = int(re.search(r'data-item-id="(\d+)"', page.text).group(1))
    return user, csrf, item, page


def _leases(store, user) -> list[tuple[int, float, float]]:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT item_id, created_at, expires_at FROM leases WHERE user_id = :u ORDER BY created_at"),
            {"u": user.id})]


def test_prefetch_claims_one_more_item_under_a_short_lease(http, store, owner, make_annotator):
    _project(store, owner)
    user, csrf, current, page = _signed_in(http, make_annotator)
    assert 'id="lease-left"' in page.text and "data-instant=" in page.text
    r = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    nxt = r.json()["next"]
    assert nxt["item_id"] != current and f'data-item-id="{nxt["item_id"]}"' in nxt["html"]
    assert "SECRET-KEY" not in nxt["html"]
    held = _leases(store, user)
    assert [h[0] for h in held] == [current, nxt["item_id"]]
    assert held[1][2] - held[1][1] <= 121  # the short lease
    # Asked again (the page renews it every minute): the same item, no markup.
    again = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current,
                                                             "have": nxt["item_id"]}).json()
    assert again["next"] == {"item_id": nxt["item_id"], "html": None}
    assert len(_leases(store, user)) == 2  # never a third
    # Reloading the page shows the item on screen, not the prefetched one.
    assert f'data-item-id="{current}"' in http.get("/projects/inst/label").text


def test_instant_submit_saves_promotes_and_prefetches_the_next(http, store, owner, make_annotator):
    _project(store, owner)
    user, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    r = http.post(f"/projects/inst/items/{current}/submit", headers=JSON,
                  data={"csrf": csrf, "tags": ["a"], "active_ms": "1500", "promote": p1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["saved"] and body["promoted"] and 295 <= body["lease_left"] <= 300
    assert body["counts"]["done"] == 1 and body["back_url"].startswith("/projects/inst/history/")
    p2 = body["next"]["item_id"]
    held = _leases(store, user)
    assert [h[0] for h in held] == [p1, p2]
    assert held[0][2] - held[0][1] == 300  # promoted: the full lease, counted from when it was shown
    # Back to the answered item by its URL: the change page; any other ?item=: the current item.
    r = http.get(f"/projects/inst/label?item={current}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == body["back_url"]
    assert f'data-item-id="{p1}"' in http.get(f"/projects/inst/label?item={p2}").text
    assert f'data-item-id="{p1}"' in http.get("/projects/inst/label?item=x'1").text


def test_instant_submit_with_errors_answers_the_same_item(http, store, owner, make_annotator):
    _project(store, owner)
    user, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    r = http.post(f"/projects/inst/items/{current}/submit", headers=JSON, data={"csrf": csrf, "promote": p1})
    assert r.status_code == 422
    body = r.json()
    assert body["saved"] is False and body["item_id"] == current
    assert f'data-item-id="{current}"' in body["html"] and 'class="error"' in body["html"]
    assert [h[0] for h in _leases(store, user)] == [current, p1]  # nothing promoted, nothing lost


def test_instant_skip_promotes_too(http, store, owner, make_annotator):
    _project(store, owner)
    user, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    body = http.post(f"/projects/inst/items/{current}/skip", headers=JSON, data={"csrf": csrf, "promote": p1}).json()
    assert body["saved"] and body["promoted"] and body["counts"]["done"] == 0
    assert [h[0] for h in _leases(store, user)][0] == p1


def test_release_lets_go_of_a_prefetched_item_only(http, store, owner, make_annotator):
    _project(store, owner)
    user, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    assert http.post(f"/projects/inst/items/{p1}/release", data={}).status_code == 403  # no CSRF token
    assert http.post(f"/projects/inst/items/{current}/release", data={"csrf": csrf}).status_code == 204
    assert [h[0] for h in _leases(store, user)] == [current, p1]  # the item on screen stays theirs
    assert http.post(f"/projects/inst/items/{p1}/release", data={"csrf": csrf}).status_code == 204
    assert [h[0] for h in _leases(store, user)] == [current]
    with store.read() as conn:  # its slot is free again: the queue can give it to anyone
        assert conn.execute(text("SELECT n_assigned, is_open FROM items WHERE id = :i"), {"i": p1}).one() == (0, 1)


def test_a_dishonest_annotator_cannot_touch_others_leases(http, store, owner, make_annotator):
    p = _project(store, owner)
    other = _project(store, owner, slug="other")
    rival, _ = make_annotator("rival")
    held = queue.claim_next(store, get_project(store, p.id), rival)
    _, csrf, current, _ = _signed_in(http, make_annotator)
    # Someone else's item as "current", or as the item to release: nothing happens to it.
    prefetched = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": held["id"]})
    assert prefetched.json() == {"next": None}
    assert http.post(f"/projects/inst/items/{held['id']}/release", data={"csrf": csrf}).status_code == 204
    assert [h[0] for h in _leases(store, rival)] == [held["id"]]
    # Another project's item: not found, and the page's project must be one they belong to.
    other_item = queue.claim_next(store, other, users.get_user(store, "rival"))
    assert http.post(f"/projects/inst/items/{other_item['id']}/release", data={"csrf": csrf}).status_code == 204
    assert [h[0] for h in _leases(store, rival)] == [held["id"], other_item["id"]]
    # Promoting an item they do not hold promotes nothing (and their answer is still saved).
    body = http.post(f"/projects/inst/items/{current}/submit", headers=JSON,
                     data={"csrf": csrf, "tags": ["b"], "promote": held["id"]}).json()
    assert body["saved"] and body["promoted"] is False and body["next"] is None
    assert [h[0] for h in _leases(store, rival)] == [held["id"], other_item["id"]]
    # A forged CSRF token on the JSON submit: refused, nothing saved.
    assert http.post(f"/projects/inst/items/{current}/submit", headers=JSON,
                     data={"csrf": "forged", "tags": ["b"]}).status_code == 403


def test_no_prefetch_in_a_qualification_test_or_at_the_end_of_the_queue(http, store, owner, make_annotator):
    q = create_project(store, {**SCHEMA, "slug": "qual", "qualification": {"size": 1}}, created_by=owner[0].id)
    add_items(store, q, [{"id": "g", "text": "gold", "gold": {"tags": ["a"]}}]
              + [{"id": f"w{k}", "text": f"w{k}"} for k in range(5)])
    _project(store, owner, n=3, slug="tail")
    _, csrf, item, page = _signed_in(http, make_annotator, slug="qual")
    assert "data-instant=" not in page.text and "Qualification test" in page.text
    assert http.post("/projects/qual/label/prefetch", data={"csrf": csrf, "current": item}).json() == {"next": None}
    tail = http.get("/projects/tail/label").text
    current = int(re.search(r'data-item-id="(\d+)"', tail).group(1))
    # 3 items, one on screen: 2 open, fewer than PREFETCH_MIN_OPEN; the last ones go to whoever asks first
    assert http.post("/projects/tail/label/prefetch", data={"csrf": csrf, "current": current}).json() == {"next": None}


def test_prefetched_gold_item_looks_like_any_other(http, store, owner, make_annotator):
    p = create_project(store, {**SCHEMA, "slug": "mixed", "gold": {"rate": 1}}, created_by=owner[0].id)
    add_items(store, p, [{"id": f"n{k}", "text": f"plain {k}"} for k in range(5)]
              + [{"id": "g1", "text": "special one", "gold": {"tags": ["c"]}}])
    _, csrf, current, page = _signed_in(http, make_annotator, slug="mixed")
    html = http.post("/projects/mixed/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["html"]
    assert "special one" in page.text + html  # at rate 1 the gold item comes first
    for shown in (page.text, html):
        assert "gold" not in shown.lower() and " checked" not in shown  # no mark, no answer pre-selected


def test_a_paused_annotator_holds_no_prefetched_item(http, store, owner, make_annotator):
    p = _project(store, owner)
    user, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    pauses.pause(store, get_project(store, p.id), user, by=owner[0])
    renewed = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current, "have": p1})
    assert renewed.json() == {"next": None}
    assert _leases(store, user) == []  # pausing released both, and renewing takes nothing back


def test_a_prefetched_item_counts_time_from_when_it_is_shown(http, store, owner, make_annotator):
    """Prefetched 100 s before it came on screen: its answer may claim the seconds since it was shown only."""
    _project(store, owner)
    _, csrf, current, _ = _signed_in(http, make_annotator)
    p1 = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}).json()["next"]["item_id"]
    with store.write() as conn:
        conn.execute(text("UPDATE leases SET created_at = created_at - 100 WHERE item_id = :i"), {"i": p1})
    body = http.post(f"/projects/inst/items/{current}/submit", headers=JSON,
                     data={"csrf": csrf, "tags": ["a"], "promote": p1}).json()
    assert body["promoted"]
    http.post(f"/projects/inst/items/{p1}/submit", headers=JSON,
              data={"csrf": csrf, "tags": ["a"], "active_ms": "90000"})
    with store.read() as conn:
        kept, reported = conn.execute(text("SELECT active_ms, reported_ms FROM annotations WHERE item_id = :i"),
                                      {"i": p1}).one()
    assert reported == 90000 and kept < 10_000


def test_prefetch_and_release_need_the_session_and_its_token(http, store, owner, make_annotator):
    _project(store, owner)
    _, csrf, current, _ = _signed_in(http, make_annotator)
    assert http.post("/projects/inst/label/prefetch", data={"current": current}).status_code == 403
    assert http.post("/projects/inst/label/prefetch", data={"csrf": "x" + csrf, "current": current}).status_code == 403
    http.cookies.clear()
    r = http.post("/projects/inst/label/prefetch", data={"csrf": csrf, "current": current}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
