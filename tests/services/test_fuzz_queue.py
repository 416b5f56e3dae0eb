"""A hypothesis state machine over the labelling queue, on SQLite and PostgreSQL.

Any interleaving of claims, prefetches, submits (with idempotency replays), skips, releases, lease expiries
(the clock moves past the lease), gold marking and unmarking, overlap changes, "more answers", pauses and
adaptive redundancy (whose decisions raise targets) is run through the services, and after every step the
database must hold the queue's invariants (labelwright/services/queue.py, labelwright/store/slots.py):

* ``n_assigned`` = annotations + lease rows, ``n_done`` = annotations, ``is_open`` = ``n_assigned < want``;
* no step puts an item over the answers it wants (a step that raises ``n_assigned`` or the number of
  answers leaves it at most ``COALESCE(target, overlap)``); no (item, annotator) pair is answered twice;
* an annotator holds at most two leases in a project (the current item and one prefetched), never on an
  item they answered or skipped, and none while paused;
* a claim that says "nothing left" leaves nothing the annotator could take; a claim that hands out a gold
  item leaves ordinary work for them (gold is never served once their real work is done); a claim while
  holding a live lease returns that item; an answer is saved only on an item that was handed to its author.

Bounded for CI; ``LABELWRIGHT_FUZZ_EXAMPLES=500 pytest tests/services/test_fuzz_queue.py`` runs longer.
"""

from __future__ import annotations

import itertools
import os
import time

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, event
from hypothesis import settings as hsettings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from labelwright.errors import Conflict, Forbidden, NotFound
from labelwright.services import gold as gold_svc
from labelwright.services import pauses, queue, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project, set_overlap
from labelwright.services.queue_controls import more_answers
from tests.conftest import SPAM_SCHEMA, join

FUZZ_EXAMPLES = int(os.environ.get("LABELWRIGHT_FUZZ_EXAMPLES", "0"))
# Shrinking a failure replays it hundreds of times (minutes); LABELWRIGHT_FUZZ_SHRINK=0 reports it unshrunk.
PHASES = [p for p in Phase if os.environ.get("LABELWRIGHT_FUZZ_SHRINK", "1") != "0" or p is not Phase.shrink]
LEASE = 60
N_ITEMS = 4
N_ANNOTATORS = 3
THEIRS = st.sampled_from([True, True, False])  # mostly an item the annotator holds: most steps do something


def _snapshot(store, project_id: int) -> dict:
    with store.read() as conn:
        q = lambda sql: conn.execute(text(sql), {"p": project_id}).all()  # noqa: E731
        overlap = conn.execute(text("SELECT overlap FROM projects WHERE id = :p"), {"p": project_id}).scalar_one()
        items = {r[0]: {"assigned": r[1], "done": r[2], "want": r[3] if r[3] is not None else overlap,
                        "gold": bool(r[4]), "open": bool(r[5])}
                 for r in q("SELECT id, n_assigned, n_done, target, is_gold, is_open FROM items WHERE project_id = :p")}
        return {
            "items": items,
            "answers": [(r[0], r[1]) for r in q("SELECT item_id, user_id FROM annotations WHERE project_id = :p")],
            "leases": {(r[0], r[1]): (r[2], r[3]) for r in
                       q("SELECT item_id, user_id, created_at, expires_at FROM leases WHERE project_id = :p")},
            "lapsed": {(r[0], r[1]) for r in q("SELECT item_id, user_id FROM lapsed_leases WHERE project_id = :p")},
            "skips": {(r[0], r[1]) for r in q("SELECT item_id, user_id FROM skips WHERE project_id = :p")},
            "paused": {r[0] for r in q("SELECT user_id FROM paused_annotators WHERE project_id = :p")},
        }


def _takeable(snap: dict, user_id: int, gold: bool) -> list[int]:
    """Items ``user_id`` could be handed now (leases already reclaimed): room left, not theirs yet."""
    mine = set(snap["answers"]) | set(snap["leases"]) | snap["skips"]
    return [i for i, it in snap["items"].items()
            if it["gold"] == gold and it["assigned"] < it["want"] and (i, user_id) not in mine]


def _machine(store, examples: int):
    owner = users.create_user(store, "olive", "owner", "pw-owner-123")
    annotators = [users.create_user(store, f"ann{k}", "annotator", None) for k in range(N_ANNOTATORS)]
    slugs = itertools.count()
    keys = itertools.count()  # idempotency keys are the annotator's, across projects

    class Queue(RuleBasedStateMachine):
        @initialize(adaptive=st.booleans(), gold_rate=st.sampled_from([0.0, 0.3, 1.0]),
                    overlap=st.integers(1, 2), n_gold=st.integers(0, 1))
        def start(self, adaptive, gold_rate, overlap, n_gold):
            schema = {**{k: v for k, v in SPAM_SCHEMA.items() if k != "overlap"}, "slug": f"q{next(slugs)}",
                      "lease_seconds": LEASE, "gold": {"rate": gold_rate}}
            if adaptive:
                schema["redundancy"] = {"min": overlap, "max": overlap + 2, "confidence": 0.9}
            else:
                schema["overlap"] = overlap
            self.project = create_project(store, schema, created_by=owner.id)
            add_items(store, self.project, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(N_ITEMS)])
            for a in annotators:
                join(store, a.name, [self.project])
            self.item_ids = sorted(_snapshot(store, self.project.id)["items"])
            for item_id in self.item_ids[N_ITEMS - n_gold:]:
                gold_svc.set_gold(store, self.project, item_id, {"spam": "ham"}, user=owner)
            self.now = time.time()
            self.keys: dict = {}  # idempotency key -> (user, item, annotation id)
            self.before = _snapshot(store, self.project.id)

        # ---- steps ---------------------------------------------------------------------------------

        def _refresh(self):
            self.project = get_project(store, self.project.id)

        @rule(who=st.integers(0, N_ANNOTATORS - 1))
        def claim(self, who):
            user = annotators[who]
            before = _snapshot(store, self.project.id)
            live = sorted((v[0], i) for (i, u), v in before["leases"].items() if u == user.id and v[1] > self.now)
            try:
                item = queue.claim_next(store, self.project, user, now=self.now)
            except Forbidden:
                assert user.id in before["paused"]
                event("claim: paused")
                return
            event(f"claim: {'renewed' if live else 'nothing' if item is None else 'item'}")
            after = _snapshot(store, self.project.id)
            assert user.id not in before["paused"] or item is None
            if live:
                assert item is not None and item["id"] == live[0][1], "a held live lease is handed back"
                return
            if item is None:
                assert not _takeable(after, user.id, gold=False), "'nothing left' while work is left"
                return
            i = item["id"]
            assert after["leases"][i, user.id][0] == self.now, "a fresh lease"
            assert (i, user.id) not in set(before["answers"]) | before["skips"]
            assert i in after["items"], "an item of another project"
            if after["items"][i]["gold"]:
                assert _takeable(after, user.id, gold=False), "gold served after the real work is done"
                event("claim: gold item")

        @rule(who=st.integers(0, N_ANNOTATORS - 1))
        def prefetch(self, who):
            user = annotators[who]
            held = sorted((v[0], i) for (i, u), v in _snapshot(store, self.project.id)["leases"].items()
                          if u == user.id and v[1] > self.now)
            if held:
                queue.prefetch(store, self.project, user, held[0][1], now=self.now)

        @rule(who=st.integers(0, N_ANNOTATORS - 1), which=st.integers(0, N_ITEMS - 1),
              answer=st.sampled_from(["spam", "ham"]), keyed=st.booleans(), theirs=THEIRS)
        def submit(self, who, which, answer, keyed, theirs):
            """Answer an item: with ``theirs`` one the annotator holds (or held) a lease on, else any item."""
            user, before = annotators[who], _snapshot(store, self.project.id)
            self._submit(user, self._item(user, which, theirs, before), answer, keyed, before)

        @rule(who=st.integers(0, N_ANNOTATORS - 1), answer=st.sampled_from(["spam", "ham"]))
        def work(self, who, answer):
            """What an annotator's page does: claim, then answer what was handed out."""
            self.claim(who)
            before = _snapshot(store, self.project.id)
            mine = sorted((v[0], i) for (i, u), v in before["leases"].items() if u == annotators[who].id)
            if mine:
                self._submit(annotators[who], mine[0][1], answer, False, before)

        def _submit(self, user, item_id, answer, keyed, before):
            key = f"k{next(keys)}" if keyed else None
            try:
                ann, created = queue.submit(store, item_id, user, {"spam": answer}, idempotency_key=key,
                                            now=self.now)
            except (Conflict, NotFound, Forbidden) as e:
                event(f"submit: {type(e).__name__}")
                assert (item_id, user.id) not in before["leases"] or user.id in before["paused"] \
                    or (item_id, user.id) in before["answers"], "refused an answer under a lease"
                return
            assert created
            pair = (item_id, user.id)
            event("submit: saved" + (" (lapsed lease)" if pair not in before["leases"] else ""))
            assert pair in before["leases"] or pair in before["lapsed"], "answer saved on an item never handed out"
            assert pair not in before["answers"]
            if key:
                self.keys[key] = (user, item_id, ann["id"])

        @rule(data=st.data())
        def replay(self, data):
            if not self.keys:
                return
            key = data.draw(st.sampled_from(sorted(self.keys)))
            user, item_id, ann_id = self.keys[key]
            ann, created = queue.submit(store, item_id, user, {"spam": "ham"}, idempotency_key=key, now=self.now)
            assert (ann["id"], created) == (ann_id, False)

        def _item(self, user, which: int, theirs: bool, snap: dict) -> int:
            """Item ``which``; with ``theirs``, one ``user`` holds (or held) a lease on when there is one."""
            held = sorted((v[0], i) for (i, u), v in snap["leases"].items() if u == user.id)
            held += sorted((0, i) for (i, u) in snap["lapsed"] if u == user.id)
            return held[which % len(held)][1] if theirs and held else self.item_ids[which]

        @rule(who=st.integers(0, N_ANNOTATORS - 1), which=st.integers(0, N_ITEMS - 1), theirs=THEIRS)
        def skip(self, who, which, theirs):
            user, snap = annotators[who], _snapshot(store, self.project.id)
            item_id = self._item(user, which, theirs, snap)
            queue.skip(store, item_id, user, now=self.now)
            assert (item_id, user.id) not in _snapshot(store, self.project.id)["leases"]

        @rule(who=st.integers(0, N_ANNOTATORS - 1), which=st.integers(0, N_ITEMS - 1), theirs=THEIRS)
        def release(self, who, which, theirs):
            user, snap = annotators[who], _snapshot(store, self.project.id)
            item_id = self._item(user, which, theirs, snap)
            event(f"release: {queue.release(store, item_id, user)}")

        @rule(who=st.integers(0, N_ANNOTATORS - 1), other=st.integers(0, N_ANNOTATORS - 1), back=st.booleans())
        def lapse(self, who, other, back):
            """An annotator walks away: their lease runs out and another's claim reclaims it; with ``back``
            they come back and answer it anyway (saved only while the item has room)."""
            self.claim(who)
            self.now += LEASE + 1
            self.claim(other)
            if back:
                snap = _snapshot(store, self.project.id)
                lapsed = sorted(i for (i, u) in snap["lapsed"] if u == annotators[who].id)
                if lapsed:
                    self._submit(annotators[who], lapsed[-1], "spam", False, snap)

        @rule(seconds=st.sampled_from([1, LEASE // 2, LEASE + 1, 3 * LEASE]))
        def advance(self, seconds):
            self.now += seconds

        @rule(which=st.integers(0, N_ITEMS - 1), on=st.booleans())
        def gold(self, which, on):
            if on:
                gold_svc.set_gold(store, self.project, self.item_ids[which], {"spam": "spam"}, user=owner)
            else:
                gold_svc.unset_gold(store, self.project, self.item_ids[which], user=owner)

        @rule(overlap=st.integers(1, 4))
        def overlap(self, overlap):
            set_overlap(store, self.project, overlap)
            self._refresh()

        @rule(which=st.integers(0, N_ITEMS - 1), extra=st.integers(1, 2))
        def more(self, which, extra):
            try:
                more_answers(store, self.project, [f"c{which}"], extra, by=owner)
            except NotFound:  # a gold item is not an ordinary one
                assert _snapshot(store, self.project.id)["items"][self.item_ids[which]]["gold"]

        @rule(who=st.integers(0, N_ANNOTATORS - 1), on=st.booleans())
        def pause(self, who, on):
            if on:
                pauses.pause(store, self.project, annotators[who], by=owner)
            else:
                pauses.resume(store, self.project, annotators[who], by=owner)

        # ---- invariants ----------------------------------------------------------------------------

        @invariant()
        def queue_holds(self):
            if not hasattr(self, "project"):
                return
            snap = _snapshot(store, self.project.id)
            answers: dict = {}
            for pair in snap["answers"]:
                answers[pair[0]] = answers.get(pair[0], 0) + 1
            assert len(set(snap["answers"])) == len(snap["answers"]), "an item answered twice by one annotator"
            leases: dict = {}
            per_user: dict = {}
            for (i, u) in snap["leases"]:
                leases[i] = leases.get(i, 0) + 1
                per_user[u] = per_user.get(u, 0) + 1
                assert (i, u) not in set(snap["answers"]) | snap["skips"], "a lease on an answered/skipped item"
                assert u not in snap["paused"], "a paused annotator holds a lease"
            assert max(per_user.values(), default=0) <= 2, "more than a current and a prefetched lease"
            for i, it in snap["items"].items():
                old = self.before["items"][i]
                n_ans, n_lease = answers.get(i, 0), leases.get(i, 0)
                assert it["assigned"] == n_ans + n_lease, (i, it, n_ans, n_lease)
                assert it["done"] == n_ans, (i, it, n_ans)
                assert it["open"] == (it["assigned"] < it["want"]), (i, it)
                if it["assigned"] > old["assigned"]:
                    assert it["assigned"] <= it["want"], ("over-assigned", i, old, it)
                if it["done"] > old["done"]:
                    assert it["done"] <= it["want"], ("over-answered", i, old, it)
            self.before = snap

    Queue.TestCase.settings = hsettings(max_examples=examples, stateful_step_count=40, deadline=None,
                                        derandomize=not FUZZ_EXAMPLES, database=None, phases=PHASES,
                                        suppress_health_check=list(HealthCheck))
    return Queue


def test_queue_never_over_assigns(store):
    examples = FUZZ_EXAMPLES or (20 if store.dialect == "sqlite" else 8)
    run_state_machine_as_test(_machine(store, examples))
