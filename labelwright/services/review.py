"""Review: reviewers check submissions and accept, fix or reject them.

A project with ``review:`` in its schema gives its reviewers (and managers, owners) a queue of
submissions, chosen by ``review.mode``:

* ``all``: every submission;
* ``sample``: a random share ``review.rate`` of them (decided by a hash of the submission's id, so the
  choice is stable and costs nothing when the answer is saved);
* ``disagreement``: submissions whose answer differs from the item's majority, or from its gold answer.

For each one the reviewer **accepts** it, **fixes** it (their answers are kept beside the annotator's,
which stay untouched; aggregation and the export use the fix) or **rejects** it with written feedback.
A rejected submission no longer counts: the item asks for one more answer, from another annotator (the
rejected annotator cannot answer it again). Every decision is a row in ``reviews`` (a changed decision
is a new row), in the audit log, and an event (``review.decided``). Annotators see the decisions and
feedback on their own work (:func:`feedback_for`, their home page). A reviewer never reviews their own
submission and never sees gold answers.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from labelwright.consensus import majority
from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.services import audit, events
from labelwright.services.gold import matches_label, score
from labelwright.services.projects import Project
from labelwright.store import dumps, loads
from labelwright.store.slots import retarget_sql

DECISIONS = ("accepted", "fixed", "rejected")
_SAMPLE_MOD = 10_000
_BATCH = 500


def in_sample(annotation_id: int, rate: float) -> bool:
    """A stable pseudo-random choice of ``rate`` of the submissions (Knuth's multiplicative hash)."""
    return (annotation_id * 2654435761) % 4294967296 % _SAMPLE_MOD < rate * _SAMPLE_MOD


# in_sample in SQL, for both databases: (id * 2654435761) mod 2**32 without a 64-bit overflow, by splitting
# the multiplier into 40503 * 2**16 + 31153 (every product stays below 2**48)
_IN_SAMPLE_SQL = ("((a.id % 4294967296) * 31153 + (((a.id % 4294967296) * 40503) % 65536) * 65536) "
                  f"% 4294967296 % {_SAMPLE_MOD} < :cut")
# the submissions that may wait for reviewer :r (pending, not theirs, not under another reviewer's lease)
_OPEN_TO = ("a.project_id = :p AND a.review_status = 'pending' AND a.user_id <> :r "
            "AND NOT EXISTS (SELECT 1 FROM review_leases rl WHERE rl.annotation_id = a.id "
            "AND rl.reviewer_id <> :r AND rl.expires_at > :now)")


def _mode_filter(project: Project) -> tuple[str, dict]:
    """The review mode's choice where SQL can make it (``all``, ``sample``); ``disagreement`` is Python's."""
    settings = project.schema.review
    if settings.mode == "sample":
        return " AND " + _IN_SAMPLE_SQL, {"cut": settings.rate * _SAMPLE_MOD}
    return "", {}


def _candidates(conn, project: Project, reviewer, now: float, after: int):
    extra, params = _mode_filter(project)
    return conn.execute(text(
        "SELECT a.id, a.item_id, a.user_id, a.answers, a.active_ms, a.created_at, u.name, a.revision "
        f"FROM annotations a JOIN users u ON u.id = a.user_id WHERE {_OPEN_TO} AND a.id > :after{extra} "
        "ORDER BY a.id LIMIT :n"),
        {"p": project.id, "r": reviewer.id, "now": now, "after": after, "n": _BATCH, **params}).all()


def _disagrees(conn, project: Project, rows) -> set[int]:
    """Ids of the submissions among ``rows`` that differ from their item's majority or gold answer."""
    items = sorted({r[1] for r in rows})
    if not items:
        return set()
    placeholders = ", ".join(f":i{k}" for k in range(len(items)))
    params = {f"i{k}": v for k, v in enumerate(items)}
    all_answers: dict[int, list] = {}
    for item_id, answers, status, fixed in conn.execute(text(
            f"SELECT item_id, answers, review_status, reviewed_answers FROM annotations "
            f"WHERE item_id IN ({placeholders})"), params):
        if status != "rejected":
            all_answers.setdefault(item_id, []).append(loads(fixed or answers))
    gold = {i: loads(a) for i, a in conn.execute(text(
        f"SELECT item_id, answers FROM gold WHERE item_id IN ({placeholders})"), params)}
    questions = {q.name: q for q in project.schema.questions}
    out = set()
    for ann_id, item_id, _, answers, *_ in rows:
        answers = loads(answers)
        if item_id in gold:
            right, checked = score(questions, answers, gold[item_id])
            if right < checked:
                out.add(ann_id)
            continue
        votes = majority(project.schema, all_answers.get(item_id, []))
        for name, v in votes.items():
            if v["n"] >= 2 and answers.get(name) is not None and not v.get("tie") \
                    and matches_label(questions[name], answers[name], v["label"]) is False:
                out.add(ann_id)
                break
    return out


def _waiting_batches(conn, project: Project, reviewer, now: float, after: int = 0):
    """The submissions waiting for ``reviewer``, in id order and in batches: pending, not their own, not
    under another reviewer's lease, and chosen by the project's review mode. One definition for the
    queue (:func:`next_for_review`) and the count (:func:`waiting`, which counts the same in one statement
    where SQL can choose: ``_OPEN_TO`` and ``_mode_filter``), so the two never disagree."""
    settings = project.schema.review
    while True:
        rows = _candidates(conn, project, reviewer, now, after)
        if not rows:
            return
        if settings.mode == "disagreement":
            flagged = _disagrees(conn, project, rows)
            chosen = [r for r in rows if r[0] in flagged]
        else:
            chosen = list(rows)
        if chosen:
            yield chosen
        after = rows[-1][0]


def waiting(store, project: Project, reviewer, now: float | None = None) -> int:
    """How many submissions are waiting for ``reviewer`` (what :func:`next_for_review` hands out, one by
    one): 0 exactly when it has nothing to give."""
    if project.schema.review is None:
        return 0
    now = now or time.time()
    with store.read() as conn:
        if project.schema.review.mode == "disagreement":
            return sum(len(rows) for rows in _waiting_batches(conn, project, reviewer, now))
        extra, params = _mode_filter(project)
        return int(conn.execute(text(f"SELECT count(*) FROM annotations a WHERE {_OPEN_TO}{extra}"),
                                {"p": project.id, "r": reviewer.id, "now": now, **params}).scalar_one())


def next_for_review(store, project: Project, reviewer, now: float | None = None,
                    skip: int | None = None) -> dict | None:
    """The next submission for ``reviewer`` under a lease, or None when none is waiting.

    ``skip`` passes over one submission (the reviewer's "next"): its lease, when they hold it, is given
    up and the one after it comes next (or, past the last, the first again; the same one when no other
    is waiting)."""
    settings = project.schema.review
    if settings is None:
        raise ValidationError(f"project {project.slug!r} has no review (add `review:` to its schema)")
    now = now or time.time()
    with store.write() as conn:
        held = conn.execute(text(
            "SELECT annotation_id FROM review_leases WHERE reviewer_id = :r AND project_id = :p AND expires_at > :now"),
            {"r": reviewer.id, "p": project.id, "now": now}).scalar()
        if skip is not None and held == skip:  # passing over the one held: its lease goes
            conn.execute(text("DELETE FROM review_leases WHERE annotation_id = :a AND reviewer_id = :r"),
                         {"a": skip, "r": reviewer.id})
            held = None
        chosen = None
        # after the one passed over, then from the start, then (no other waiting) that one again
        passes = ((0, None),) if skip is None else ((skip, skip), (0, skip), (0, None))
        for start, leave_out in passes:
            for rows in _waiting_batches(conn, project, reviewer, now, start):
                if held is not None and any(r[0] == held for r in rows):
                    chosen = next(r for r in rows if r[0] == held)
                else:
                    chosen = next((r for r in rows if r[0] != leave_out), None)
                if chosen is not None:
                    break
            if chosen is not None:
                break
        if chosen is None:
            return None
        conn.execute(text(
            "INSERT INTO review_leases (annotation_id, reviewer_id, project_id, expires_at) VALUES (:a, :r, :p, :e) "
            "ON CONFLICT (annotation_id) DO UPDATE SET reviewer_id = excluded.reviewer_id, "
            "expires_at = excluded.expires_at"),
            {"a": chosen[0], "r": reviewer.id, "p": project.id, "e": now + settings.lease_seconds})
        item = conn.execute(text("SELECT external_id, data FROM items WHERE id = :i"), {"i": chosen[1]}).one()
        others = conn.execute(text(
            "SELECT u.name, a.answers FROM annotations a JOIN users u ON u.id = a.user_id "
            "WHERE a.item_id = :i AND a.id <> :a AND a.review_status <> 'rejected' ORDER BY a.id"),
            {"i": chosen[1], "a": chosen[0]}).all()
    return {"annotation_id": chosen[0], "annotator": chosen[6], "answers": loads(chosen[3]),
            "active_ms": chosen[4], "created_at": chosen[5], "revision": chosen[7],
            "item": {"id": chosen[1], "external_id": item[0], "data": loads(item[1])},
            "other_answers": [{"annotator": n, "answers": loads(a)} for n, a in others],
            "lease_expires_at": now + settings.lease_seconds}


def decide(store, project: Project, reviewer, annotation_id: int, decision: str, *,
           fixed_answers: dict | None = None, feedback: str | None = None, revision: int | None = None,
           now: float | None = None) -> dict:
    """Record a decision on one submission of ``project``; returns the review.

    The decision is on the submission's current revision (kept as ``reviewed_revision``; from then on
    its author cannot amend it). ``revision``, when given, is the one the reviewer saw: if the
    annotator amended it since, nothing is recorded (:class:`Conflict`)."""
    if decision not in DECISIONS:
        raise ValidationError(f"decision must be one of {list(DECISIONS)}", field="decision")
    feedback = (feedback or "").strip() or None
    if feedback is not None and len(feedback) > 10_000:
        raise ValidationError("feedback has at most 10,000 characters", field="feedback")
    if decision == "rejected" and not feedback:
        raise ValidationError("say why: a rejection needs written feedback for the annotator", field="feedback")
    clean = None
    if decision == "fixed":
        if fixed_answers is None:
            raise ValidationError("a fix needs the corrected answers", field="answers")
        clean = project.schema.validate_answers(fixed_answers)
    now = now or time.time()
    with store.write() as conn:
        row = conn.execute(text(
            "SELECT a.user_id, a.item_id, a.review_status, u.name, a.revision FROM annotations a "
            "JOIN users u ON u.id = a.user_id WHERE a.id = :a AND a.project_id = :p"),
            {"a": annotation_id, "p": project.id}).first()
        if row is None:
            raise NotFound(f"no submission {annotation_id} in project {project.slug!r}")
        if row[0] == reviewer.id:
            raise Conflict("you cannot review your own submission")
        if revision is not None and revision != row[4]:
            raise Conflict(f"the annotator changed this submission (revision {row[4]}, you saw {revision}); "
                           "look at it again", field="revision")
        review_id = conn.execute(text(
            "INSERT INTO reviews (annotation_id, project_id, reviewer_id, decision, fixed_answers, feedback, "
            "created_at, revision) VALUES (:a, :p, :r, :d, :f, :fb, :now, :rev) RETURNING id"),
            {"a": annotation_id, "p": project.id, "r": reviewer.id, "d": decision,
             "f": dumps(clean) if clean is not None else None, "fb": feedback, "now": now,
             "rev": row[4]}).scalar_one()
        # the revision guard: an amend that committed after the read above makes this change nothing
        changed = conn.execute(text(
            "UPDATE annotations SET review_status = :d, reviewed_answers = :f, reviewed_revision = revision "
            "WHERE id = :a AND revision = :rev"),
            {"d": decision, "f": dumps(clean) if clean is not None else None, "a": annotation_id,
             "rev": row[4]}).rowcount
        if changed != 1:
            raise Conflict("the annotator changed this submission meanwhile; look at it again", field="revision")
        if decision == "rejected" and row[2] != "rejected":
            # the rejected answer no longer counts: ask for one more, from someone else
            conn.execute(text(retarget_sql("COALESCE(target, :o) + 1", "id = :i AND is_gold = 0")),
                         {"o": project.overlap, "i": row[1]})
        conn.execute(text("DELETE FROM review_leases WHERE annotation_id = :a"), {"a": annotation_id})
        audit.record(conn, reviewer, "review.decide", project.id, str(annotation_id),
                     {"decision": decision, "annotator": row[3]})
        events.emit(conn, "review.decided", project.id, {
            "project": project.slug, "annotation_id": annotation_id, "item_id": row[1], "annotator": row[3],
            "reviewer": reviewer.name, "decision": decision, "fixed_answers": clean, "feedback": feedback}, now)
    return {"id": review_id, "annotation_id": annotation_id, "decision": decision, "fixed_answers": clean,
            "feedback": feedback, "reviewer": reviewer.name, "revision": row[4], "created_at": now}


def feedback_for(store, user, project: Project | None = None, limit: int = 50) -> list[dict]:
    """Decisions on the user's own submissions (newest first), with the reviewer's feedback and fix."""
    where = "a.user_id = :u" + (" AND r.project_id = :p" if project is not None else "")
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT r.id, r.annotation_id, pr.slug, i.external_id, r.decision, r.feedback, r.fixed_answers, "
            "a.answers, r.created_at FROM reviews r JOIN annotations a ON a.id = r.annotation_id "
            "JOIN items i ON i.id = a.item_id JOIN projects pr ON pr.id = r.project_id "
            f"WHERE {where} ORDER BY r.id DESC LIMIT :n"),
            {"u": user.id, "p": getattr(project, "id", None), "n": limit}).all()
    return [{"id": r[0], "annotation_id": r[1], "project": r[2], "external_id": r[3], "decision": r[4],
             "feedback": r[5], "fixed_answers": loads(r[6]) if r[6] else None, "your_answers": loads(r[7]),
             "created_at": r[8]} for r in rows]


def counts(store, project: Project, reviewer=None, now: float | None = None) -> dict:
    """Submissions by review status (``pending`` counts every undecided one, reviewed or not by the
    project's mode). With ``reviewer``, ``waiting`` is what waits for them (:func:`waiting`)."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT review_status, count(*) FROM annotations WHERE project_id = :p GROUP BY review_status"),
            {"p": project.id}).all()
    out = {d: 0 for d in ("pending",) + DECISIONS}
    out.update({s: int(n) for s, n in rows})
    if reviewer is not None:
        out["waiting"] = waiting(store, project, reviewer, now)
    return out
