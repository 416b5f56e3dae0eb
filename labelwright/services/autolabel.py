"""Auto-labelling with a guarantee, and its audit (issue 9 item 6).

**Thresholds.** Each model's validation sample is the random holdout (drawn uniformly from the items nobody
had started on, labelled by people first, never machine-labelled: :func:`labelwright.services.assistant.
ensure_holdout`) with out-of-sample predictions. A random sample is what makes the bound mean anything for the
items that are left: items people labelled in import or uncertainty order are not one.
:func:`labelwright.assist.thresholds.choose_thresholds` picks, per predicted class, the lowest score whose
one-sided Clopper-Pearson lower bound on accuracy meets
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
from sqlalchemy import (
    Connection,
    delete,
    exists,
    func,
    null,
    select,
    update,
)

from labelwright.assist.thresholds import AuditResult, Thresholds, audit, audit_sample
from labelwright.errors import ValidationError
from labelwright.schema import label_values
from labelwright.services.assist_state import ensure_state, get_state
from labelwright.services.projects import Project
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t
from labelwright.store.slots import retarget
from labelwright.store.sql import upsert

CHUNK = 500


def _close(ids: list[int]):
    """Take the untouched items ``ids`` out of the queue (target 0, flag with it: store/slots.py)."""
    i = t.items
    return (retarget(0, i.c.id.in_(ids), i.c.n_assigned == 0, i.c.n_done == 0, i.c.is_gold == 0,
                     func.coalesce(i.c.target, -1) != 0)
            .returning(i.c.id))


def _reopen(ids: list[int]):
    """Give the items ``ids`` that nobody answered back to the queue (target NULL: the project's overlap)."""
    i = t.items
    return retarget(null(), i.c.id.in_(ids), i.c.n_done == 0, i.c.target == 0)


def thresholds_of(model: dict) -> Thresholds | None:
    th = model.get("thresholds")
    if not th:
        return None
    fields: dict = {k: tuple(v) if isinstance(v, list) else v for k, v in th.items()}
    return Thresholds(**fields)


def apply(store: Store, project: Project, model: dict, *, now: float | None = None, seed: int | None = None) -> int:
    """Machine-label the untouched items whose prediction from ``model`` clears its class's threshold; send
    a random ``audit_rate`` share of them to the check queue. Returns how many items were labelled."""
    now = now or time.time()
    auto = project.schema.assist.auto_label if project.schema.assist is not None else None
    th = thresholds_of(model)
    if auto is None or th is None or get_state(store, project)["auto_label"] != "on":
        return 0
    if all(x is None for x in th.thresholds):
        return 0
    p, i, ml, f = t.predictions, t.items, t.machine_labels, t.item_features
    untouched = (select(p.c.item_id, p.c.probas).select_from(p.join(i, i.c.id == p.c.item_id))
                 .where(p.c.project_id == project.id, p.c.model_id == model["id"], i.c.is_gold == 0,
                        i.c.n_assigned == 0, i.c.n_done == 0, ~exists().where(ml.c.item_id == i.c.id),
                        ~exists().where(f.c.item_id == i.c.id, f.c.holdout == 1))
                 .order_by(p.c.item_id))
    with store.read() as conn:
        rows = conn.execute(untouched).all()
    if not rows:
        return 0
    probas = np.array([loads(r.probas) for r in rows], dtype=float)
    picked = th.apply(probas)
    classes = label_values(project.schema.assist_question())
    chosen = {rows[j].item_id: (classes[int(c)], float(probas[j, c]))
              for j, c in enumerate(picked.tolist()) if c >= 0}
    labelled: list[int] = []
    ids = sorted(chosen)
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        with store.write() as conn:
            ensure_state(conn, project.id, now)
            on = conn.execute(select(t.assist_state.c.auto_label)
                              .where(t.assist_state.c.project_id == project.id)).scalar()
            if on != "on":
                break
            closed = list(conn.execute(_close(part)).scalars())
            if closed:
                conn.execute(upsert(conn, ml).on_conflict_do_nothing(index_elements=["item_id"]),
                             [{"item_id": k, "project_id": project.id,
                               "question": project.schema.assist_question().name, "label": dumps(chosen[k][0]),
                               "confidence": round(chosen[k][1], 5),
                               "model_id": model["id"], "created_at": now, "audit": "none"}
                              for k in closed])
            labelled += closed
    if labelled and auto.audit_rate > 0:
        rng_seed = seed if seed is not None else int(now * 1000) % 2**32
        sample = audit_sample(sorted(labelled), auto.audit_rate, rng_seed)
        # Checks are served in id order: insert them shuffled, so every prefix of the audit (what the looks
        # test) is a random sample, not the oldest items.
        sample = [sample[j] for j in np.random.default_rng(rng_seed + 1).permutation(len(sample))]
        _send_to_audit(store, project, sample, now)
    return len(labelled)


def _send_to_audit(store: Store, project: Project, item_ids: list[int], now: float) -> None:
    q = project.schema.assist_question().name
    ml = t.machine_labels
    with store.write() as conn:
        for start in range(0, len(item_ids), CHUNK):
            part = item_ids[start:start + CHUNK]
            got = {r.item_id: r.label for r in conn.execute(
                update(ml).where(ml.c.item_id.in_(part), ml.c.audit == "none").values(audit="sampled")
                .returning(ml.c.item_id, ml.c.label))}
            rows = [(i, got[i]) for i in part if i in got]  # in the shuffled order
            if rows:
                conn.execute(upsert(conn, t.assist_checks).on_conflict_do_nothing(index_elements=["item_id", "kind"]),
                             [{"project_id": project.id, "item_id": i, "kind": "audit", "question": q,
                               "shown_label": label, "created_at": now,
                               "reason": "a random sample of machine labels, checked to measure their accuracy"}
                              for i, label in rows])


def record_audit(conn: Connection, item_id: int, reviewer_id: int, label, now: float) -> bool:
    """A reviewer's label for an audited machine label (inside the check's transaction); True when it agrees."""
    ml = t.machine_labels
    shown = conn.execute(select(ml.c.label).where(ml.c.item_id == item_id)).scalar()
    if shown is None:
        return False
    agrees = loads(shown) == label
    conn.execute(update(ml).where(ml.c.item_id == item_id).values(
        audit="correct" if agrees else "wrong", audited_by=reviewer_id, audited_label=dumps(label), audited_at=now))
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


def evaluate(store: Store, project: Project, *, now: float | None = None) -> AuditResult:
    """Test the audited machine labels (since auto-labelling was last turned on, in the order reviewers checked
    them) against the target at the latest planned look (:func:`looks`); stop auto-labelling when the estimate
    fails."""
    now = now or time.time()
    auto = project.schema.assist.auto_label if project.schema.assist is not None else None
    if auto is None:
        raise ValidationError(f"project {project.slug!r} has no auto-labelling (assist.auto_label)")
    state = get_state(store, project)
    ml = t.machine_labels
    with store.read() as conn:
        rows = conn.execute(select(ml.c.label, ml.c.audited_label)
                            .where(ml.c.project_id == project.id, ml.c.audit.in_(("correct", "wrong")),
                                   ml.c.created_at >= (state["audit_since"] or 0))
                            .order_by(ml.c.audited_at, ml.c.item_id)).all()
    look, size = looks(len(rows))
    if look == 0:
        right = sum(r.label == r.audited_label for r in rows)
        return AuditResult(True, len(rows), right, right / len(rows) if rows else float("nan"), 1.0,
                           auto.target_accuracy, auto.confidence,
                           f"{len(rows)} machine labels audited; the audit is first tested at {FIRST_LOOK}")
    rows = rows[:size]
    confidence = 1.0 - (1.0 - auto.confidence) / 2 ** look
    result = audit([r.label for r in rows], [r.audited_label for r in rows], auto.target_accuracy, confidence)
    result = replace(result, confidence=auto.confidence,
                     reason=f"look {look} (the first {size} audited, at {confidence:.4g} confidence): " + result.reason)
    if not result.passed and state["auto_label"] == "on":
        stop(store, project, "the audit failed: " + result.reason, now=now)
    return result


def stop(store: Store, project: Project, reason: str, *, now: float | None = None) -> int:
    """Stop auto-labelling with ``reason`` and withdraw every machine label no reviewer confirmed: their items
    go back to people. Returns how many were withdrawn."""
    now = now or time.time()
    st, ml, ch = t.assist_state, t.machine_labels, t.assist_checks
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(update(st).where(st.c.project_id == project.id)
                     .values(auto_label="stopped", reason=reason, updated_at=now))
        gone = list(conn.execute(delete(ml).where(ml.c.project_id == project.id, ml.c.audit.in_(("none", "sampled")))
                                 .returning(ml.c.item_id)).scalars())
        for start in range(0, len(gone), CHUNK):
            part = gone[start:start + CHUNK]
            conn.execute(_reopen(part))
            conn.execute(delete(ch).where(ch.c.kind == "audit", ch.c.checked_at.is_(None), ch.c.item_id.in_(part)))
    return len(gone)


def resume(store: Store, project: Project, *, now: float | None = None) -> None:
    """Turn auto-labelling on again; the audit counts machine labels made from now on."""
    now = now or time.time()
    st = t.assist_state
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(update(st).where(st.c.project_id == project.id)
                     .values(auto_label="on", reason=None, audit_since=now, updated_at=now))


def machine_labels(store: Store, project: Project) -> dict[int, dict]:
    """``{item_id: {label, confidence, model, audit, audited_label}}`` for the project's machine labels."""
    ml, m = t.machine_labels, t.assist_models
    with store.read() as conn:
        rows = conn.execute(select(ml.c.item_id, ml.c.label, ml.c.confidence, m.c.version, ml.c.audit,
                                   ml.c.audited_label)
                            .select_from(ml.join(m, m.c.id == ml.c.model_id))
                            .where(ml.c.project_id == project.id)).all()
    return {r.item_id: {"label": loads(r.label), "confidence": float(r.confidence), "model": r.version,
                        "audit": r.audit, "audited_label": loads(r.audited_label) if r.audited_label is not None
                        else None} for r in rows}
