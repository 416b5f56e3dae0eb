"""The review queue in disagreement mode on a pairwise project (the majority label was compared as if it
were an answer, which raised TypeError: a 500 on the review page and the API)."""

from __future__ import annotations

from labelwright.services import queue, review
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from tests.conftest import bearer

PAIRS = {"name": "Pairs", "slug": "pw", "overlap": 3, "id_field": "id", "gold": {"rate": 0},
         "review": {"mode": "disagreement"},
         "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
         "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b", "rationale": "none"}]}


def test_disagreement_review_on_pairwise_answers(http, store, owner, make_annotator):
    p = create_project(store, PAIRS, created_by=owner[0].id)
    add_items(store, p, [{"id": f"i{k}", "a": "x", "b": "y"} for k in range(3)])
    people = [make_annotator(n)[0] for n in ("ann", "bob", "cid")]
    rita, rita_token = make_annotator("rita", role="reviewer")
    odd = {}
    for k in range(3):
        for n, u in enumerate(people):
            item = queue.claim_next(store, p, u)
            choice = "B" if (k == 1 and n == 2) else "A"  # one dissent, on the second item
            ann, _ = queue.submit(store, item["id"], u, {"pref": {"choice": choice}})
            if choice == "B":
                odd = ann
    got = review.next_for_review(store, p, rita)
    assert got is not None and got["annotation_id"] == odd["id"]
    assert review.counts(store, p, rita)["waiting"] == 1
    r = http.post("/api/v1/projects/pw/review/next", headers=bearer(rita_token))
    assert r.status_code in (200, 204), r.text
