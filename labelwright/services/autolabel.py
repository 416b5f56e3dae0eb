"""Auto-labelling with a guarantee, and its audit (issue 9 item 6).

**Thresholds.** Each model's validation sample is the random holdout (drawn uniformly from the items nobody
had started on, labelled by people first, never machine-labelled: :func:`labelwright.services.assistant.
ensure_holdout`) with out-of-sample predictions. A random sample is what makes the bound mean anything for the
items that are left: items people labelled in import or uncertainty order are not one. :func:`labelwright.assist.thresholds.choose_thresholds` picks, per
predicted class, the lowest score whose one-sided Clopper-Pearson lower bound on accuracy meets
``auto_label.target_accuracy`` at ``auto_label.confidence`` (Bonferroni-corrected over the classes, tested in
a fixed sequence from the highest score down). Clopper-Pearson is exact for a binomial proportion: it never
claims more than the sample shows, however few items sit above a threshold, where the normal approximation
is too optimistic exactly there. A class whose best threshold cannot reach the target gets none, and its
items always go to people.

**Labelling.** :func:`apply` labels an item by machine when its prediction from the latest model clears its
class's threshold and nobody has started on it (``n_assigned = 0``: no answer, no lease). The item's target
becomes 0, so it leaves the queue in the same UPDATE that checks nobody took it meanwhile; the label is kept in
``machine_labels`` with its model. With every item answered or machine-labelled, ``next`` answers 204.

**Audit.** A random ``audit_rate`` share of each batch of machine labels goes to the check queue (in random
order), where a reviewer labels the item without seeing the machine's label. :func:`evaluate` compares them
(:func:`labelwright.assist.thresholds.audit`) at planned looks (after 10, 20, 40, ... audited labels, look
``j`` at confidence ``1 - (1 - confidence) / 2**j``, so looking again as reviewers work does not inflate
false alarms): when even the upper Clopper-Pearson bound of the audited accuracy is below the target, the
estimate has failed: auto-labelling stops with the reason, and every
machine label not confirmed by a reviewer is withdrawn, its item going back to people.
:func:`resume` turns it on again (audits counted from then).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from sqlalchemy import text

from labelwright.assist.thresholds import AuditResult, Thresholds, audit, audit_sample
from labelwright.schema import label_values
from labelwright.services.projects import Project
from labelwright.store import dumps, loads
from labelwright.store.slots import retarget_sql

CHUNK = 500

_CLOSE = retarget_sql("0", where="id IN ({ids}) AND n_assigned = 0 AND n_done = 0 AND is_gold = 0 "
                                 "AND COALESCE(target, -1) <> 0")
_REOPEN = retarget_sql("NULL", where="id IN ({ids}) AND n_done = 0 AND target = 0")


def thresholds_of(model: dict) -> Thresholds | None:
    t = model.get("thresholds")
    if not t:
        return None
    return Thresholds(**{k: tuple(v) if isinstance(v, list) else v for k, v in t.items()})


def apply(store, project: Project, model: dict, *, now: float | None = None, seed: int | None = None) -> int:
    """Machine-label the untouched items whose prediction from ``model`` clears its class's threshold; send
    a random ``audit_rate`` share of them to the check queue. Returns how many items were labelled."""
    from labelwright.services.assistant import ensure_state, get_state

    now = now or time.time()
    auto = project.schema.assist.auto_label
    th = thresholds_of(model)
    if auto is None or th is None or get_state(store, project)["auto_label"] != "on":
        return 0
    if all(t is None for t in th.thresholds):
        return 0
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT p.item_id, p.probas FROM predictions p JOIN items i ON i.id = p.item_id "
            "WHERE p.project_id = :p AND p.model_id = :m AND i.is_gold = 0 AND i.n_assigned = 0 AND i.n_done = 0 "
            "AND NOT EXISTS (SELECT 1 FROM machine_labels ml WHERE ml.item_id = i.id) "
            "AND NOT EXISTS (SELECT 1 FROM item_features f WHERE f.item_id = i.id AND f.holdout = 1) "
            "ORDER BY p.item_id"),
            {"p": project.id, "m": model["id"]}).all()
    if not rows:
        return 0
    probas = np.array([loads(r[1]) for r in rows], dtype=float)
    picked = th.apply(probas)
    classes = label_values(project.schema.assist_question())
    chosen = {rows[j][0]: (classes[int(c)], float(probas[j, c])) for j, c in enumerate(picked.tolist()) if c >= 0}
    labelled: list[int] = []
    ids = sorted(chosen)
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        with store.write() as conn:
            ensure_state(conn, project.id, now)
            on = conn.execute(text("SELECT auto_label FROM assist_state WHERE project_id = :p"),
                              {"p": project.id}).scalar()
            if on != "on":
                break
            closed = [r[0] for r in conn.execute(text(_CLOSE.format(ids=", ".join(str(int(i)) for i in part))
                                                      + " RETURNING id"))]
            if closed:
                conn.execute(text(
                    "INSERT INTO machine_labels (item_id, project_id, question, label, confidence, model_id, "
                    "created_at, audit) VALUES (:i, :p, :q, :l, :c, :m, :now, 'none') "
                    "ON CONFLICT (item_id) DO NOTHING"),
                    [{"i": i, "p": project.id, "q": project.schema.assist_question().name,
                      "l": dumps(chosen[i][0]), "c": round(chosen[i][1], 5), "m": model["id"], "now": now}
                     for i in closed])
            labelled += closed
    if labelled and auto.audit_rate > 0:
        rng_seed = seed if seed is not None else int(now * 1000) % 2**32
        sample = audit_sample(sorted(labelled), auto.audit_rate, rng_seed)
        # Checks are served in id order: insert them shuffled, so every prefix of the audit (what the looks
        # test) is a random sample, not the oldest items.
        sample = [sample[j] for j in np.random.default_rng(rng_seed + 1).permutation(len(sample))]
        _send_to_audit(store, project, sample, now)
    return len(labelled)


def _send_to_audit(store, project: Project, item_ids: list[int], now: float) -> None:
    q = project.schema.assist_question().name
    with store.write() as conn:
        for start in range(0, len(item_ids), CHUNK):
            part = item_ids[start:start + CHUNK]
            got = dict(conn.execute(text(
                f"UPDATE machine_labels SET audit = 'sampled' WHERE item_id IN ({', '.join(str(int(i)) for i in part)}) "
                "AND audit = 'none' RETURNING item_id, label")).all())
            rows = [(i, got[i]) for i in part if i in got]  # in the shuffled order
            if rows:
                conn.execute(text(
                    "INSERT INTO assist_checks (project_id, item_id, kind, question, shown_label, reason, created_at) "
                    "VALUES (:p, :i, 'audit', :q, :l, :r, :now) ON CONFLICT (item_id, kind) DO NOTHING"),
                    [{"p": project.id, "i": r[0], "q": q, "l": r[1], "now": now,
                      "r": "a random sample of machine labels, checked to measure their accuracy"} for r in rows])


def record_audit(conn, item_id: int, reviewer_id: int, label, now: float) -> bool:
    """A reviewer's label for an audited machine label (inside the check's transaction); True when it agrees."""
    row = conn.execute(text("SELECT label FROM machine_labels WHERE item_id = :i"), {"i": item_id}).first()
    if row is None:
        return False
    agrees = loads(row[0]) == label
    conn.execute(text("UPDATE machine_labels SET audit = :a, audited_by = :u, audited_label = :l, audited_at = :now "
                      "WHERE item_id = :i"),
                 {"a": "correct" if agrees else "wrong", "u": reviewer_id, "l": dumps(label), "now": now,
                  "i": item_id})
    return agrees


FIRST_LOOK = 10  # audited labels before the first look; then looks at 20, 40, 80, ...


def looks(n: int) -> tuple[int, int]:
    """``(look, size)``: the audit is tested at planned looks, after 10, 20, 40, ... audited labels (``size``);
    look ``j`` spends ``alpha / 2**j`` of the error rate, so testing again and again as reviewers work never
    stops auto-labelling more often than ``1 - confidence`` of the time when the estimate holds (the looks'
    alphas sum to less than alpha). ``(0, 0)`` before the first look."""
    if n < FIRST_LOOK:
        return 0, 0
    j = (n // FIRST_LOOK).bit_length()
    return j, FIRST_LOOK * 2 ** (j - 1)


def evaluate(store, project: Project, *, now: float | None = None) -> AuditResult:
    """Test the audited machine labels (since auto-labelling was last turned on, in the order reviewers checked
    them) against the target at the latest planned look (:func:`looks`); stop auto-labelling when the estimate
    fails."""
    from labelwright.services.assistant import get_state

    now = now or time.time()
    auto = project.schema.assist.auto_label
    state = get_state(store, project)
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT label, audited_label FROM machine_labels WHERE project_id = :p AND audit IN ('correct', 'wrong') "
            "AND created_at >= :since ORDER BY audited_at, item_id"), {"p": project.id, "since": state["audit_since"] or 0}).all()
    look, size = looks(len(rows))
    if look == 0:
        right = sum(r[0] == r[1] for r in rows)
        return AuditResult(True, len(rows), right, right / len(rows) if rows else float("nan"), 1.0,
                           auto.target_accuracy, auto.confidence,
                           f"{len(rows)} machine labels audited; the audit is first tested at {FIRST_LOOK}")
    rows = rows[:size]
    confidence = 1.0 - (1.0 - auto.confidence) / 2 ** look
    result = audit([r[0] for r in rows], [r[1] for r in rows], auto.target_accuracy, confidence)
    result = replace(result, confidence=auto.confidence,
                     reason=f"look {look} (the first {size} audited, at {confidence:.4g} confidence): " + result.reason)
    if not result.passed and state["auto_label"] == "on":
        stop(store, project, "the audit failed: " + result.reason, now=now)
    return result


def stop(store, project: Project, reason: str, *, now: float | None = None) -> int:
    """Stop auto-labelling with ``reason`` and withdraw every machine label no reviewer confirmed: their items
    go back to people. Returns how many were withdrawn."""
    from labelwright.services.assistant import ensure_state

    now = now or time.time()
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(text("UPDATE assist_state SET auto_label = 'stopped', reason = :r, updated_at = :now "
                          "WHERE project_id = :p"), {"r": reason, "now": now, "p": project.id})
        gone = [r[0] for r in conn.execute(text(
            "DELETE FROM machine_labels WHERE project_id = :p AND audit IN ('none', 'sampled') RETURNING item_id"),
            {"p": project.id})]
        for start in range(0, len(gone), CHUNK):
            part = ", ".join(str(int(i)) for i in gone[start:start + CHUNK])
            conn.execute(text(_REOPEN.format(ids=part)))
            conn.execute(text(f"DELETE FROM assist_checks WHERE kind = 'audit' AND checked_at IS NULL "
                              f"AND item_id IN ({part})"))
    return len(gone)


def resume(store, project: Project, *, now: float | None = None) -> None:
    """Turn auto-labelling on again; the audit counts machine labels made from now on."""
    from labelwright.services.assistant import ensure_state

    now = now or time.time()
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(text("UPDATE assist_state SET auto_label = 'on', reason = NULL, audit_since = :now, "
                          "updated_at = :now WHERE project_id = :p"), {"now": now, "p": project.id})


def machine_labels(store, project: Project) -> dict[int, dict]:
    """``{item_id: {label, confidence, model, audit, audited_label}}`` for the project's machine labels."""
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT ml.item_id, ml.label, ml.confidence, m.version, ml.audit, ml.audited_label "
            "FROM machine_labels ml JOIN assist_models m ON m.id = ml.model_id WHERE ml.project_id = :p"),
            {"p": project.id}).all()
    return {r[0]: {"label": loads(r[1]), "confidence": float(r[2]), "model": r[3], "audit": r[4],
                   "audited_label": loads(r[5]) if r[5] is not None else None} for r in rows}
