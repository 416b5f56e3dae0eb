"""Adaptive redundancy in the queue: ask for another answer only while an item is in doubt.

A project with ``redundancy: {min, max, confidence, question}`` gives every item ``min`` answers (its
overlap). (With ``budget`` instead of a confidence, items are reopened in rounds after refits, where the
doubt is: :func:`spend_budget`.) After each submission to an item, :func:`decide` computes the item's posterior over the
question's labels from its answers and the annotators' estimated skills
(:func:`labelwright.quality.adaptive.item_posterior`); while the most probable label is below
``confidence`` and the item has fewer than ``max`` answers, the item's target is raised to one more
than it has, which reopens it in the queue. Items keep their place (the queue serves the lowest id
first), so an item in doubt gets its next answer soon. With ``accuracy`` instead of a fixed confidence, the
confidence is tuned on the project's gold items at every refit
(:func:`labelwright.quality.adaptive.tune_confidence`, kept in :attr:`SkillFit.tuning`; ``confidence`` until
there is enough gold), and :func:`report` says which rule decides and why (the quality page).

Skills are fitted without ground truth on every answer to the question so far, anchored on gold items
(:func:`labelwright.quality.adaptive.fit_skills`), and cached per project in the store's caches
(:class:`labelwright.store.caches.Caches`). Until the project has :data:`MIN_FIT_ANSWERS` answers every
annotator counts as 70% accurate with uniform class priors (so two agreeing answers are not yet enough
at 0.95). A fit is redone once the project has grown by a tenth (at least :data:`REFIT_MIN_NEW`
answers) or is :data:`REFIT_SECONDS` old: in the request for small projects (under :data:`SYNC_LIMIT`
answers, a few milliseconds), in a background thread for larger ones (the decision meanwhile uses the
last fit). How much the project has grown is read from the database (the answers after the newest one
the fit saw), so with several server processes every answer counts, whichever process took it; each
process keeps its own fit, and they converge on the same data. With ``pause_below``, each refit also pauses
the annotators it estimates far below the crowd (:mod:`labelwright.services.auto_pause`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Integer, bindparam, func, select

from labelwright.quality.adaptive import AdaptivePolicy, ConfidenceTuning, fit_skills, item_posterior, tune_confidence
from labelwright.schema import answer_label, label_values
from labelwright.services import auto_pause, events, second_opinions
from labelwright.services.projects import Project
from labelwright.store import Store, loads, lookups
from labelwright.store import tables as t
from labelwright.store.lookups import AnswersAfterRow
from labelwright.store.queue_sql import PROJECT_DONE_QUERY, fetch_value
from labelwright.store.slots import retarget

MIN_FIT_ANSWERS = 20  # below this, skills are not estimated: every annotator counts as 0.7 accurate
REFIT_MIN_NEW = 10
REFIT_SHARE = 0.1
REFIT_SECONDS = 300.0
SYNC_LIMIT = 5_000
BUDGET_STEP = 0.05  # a budget project reopens at most this share of its items per refit...
BUDGET_ROUND = 10   # ...or this many, whichever is more (a small project's rounds feed several annotators)


@dataclass
class SkillFit:
    skills: dict = field(default_factory=dict)
    priors: dict | None = None
    answers: int = 0          # answers the fit saw
    last_id: int = 0          # the newest annotation (id) of the project when it was fitted
    at: float = 0.0
    running: bool = False
    tuning: ConfidenceTuning | None = None  # redundancy.accuracy: the confidence tuned on gold at this fit
    settings: dict | None = None            # the project's redundancy settings it was fitted for
    paused: list = field(default_factory=list)  # annotators this fit paused (redundancy.pause_below)


def _settings(project: Project) -> dict | None:
    r = project.schema.redundancy
    return None if r is None else r.model_dump()


def policy(project: Project, fit: SkillFit | None = None) -> AdaptivePolicy:
    """The stopping rule: ``redundancy.confidence``, or the confidence ``fit`` tuned on the project's gold
    (``redundancy.accuracy``) once there was enough gold to tune on."""
    r = project.schema.redundancy
    assert r is not None, "only projects with adaptive redundancy have a policy"
    confidence = r.confidence
    if r.accuracy is not None and fit is not None and fit.tuning is not None and fit.tuning.confidence is not None:
        confidence = fit.tuning.confidence
    return AdaptivePolicy(min_answers=r.min, max_answers=r.max, confidence=confidence)


def _fits(store: Store) -> tuple[dict[int, Any], threading.Lock]:
    return store.caches.skill_fits, store.caches.skill_fits_lock


def load_labels(store: Store, project: Project) -> tuple[pd.DataFrame, pd.Series]:
    """The redundancy question's answers as a long table (task, worker, label) and its gold labels."""
    return _load_labels(store, project)[:2]


def _load_labels(store: Store, project: Project) -> tuple[pd.DataFrame, pd.Series, int]:
    """:func:`load_labels` and the id of the project's newest annotation, read in one transaction."""
    q = project.schema.redundancy_question()
    with store.read() as conn:
        a, g = t.annotations, t.gold
        last_id = conn.execute(select(func.max(a.c.id)).where(a.c.project_id == project.id)).scalar() or 0
        rows = conn.execute(select(a.c.item_id, a.c.user_id, func.coalesce(a.c.reviewed_answers, a.c.answers))
                            .where(a.c.project_id == project.id, a.c.review_status.not_in(("rejected", "rule")),
                                   a.c.id <= last_id)
                            .order_by(a.c.id)).all()  # arrival order: the gold replay of tune_confidence needs it
        gold_rows = conn.execute(select(g.c.item_id, g.c.answers).where(g.c.project_id == project.id)).all()
    records = []
    for item_id, user_id, answers in rows:
        label = answer_label(q, loads(answers).get(q.name))
        if label is not None:
            records.append((item_id, user_id, label))
    df = pd.DataFrame(records, columns=["task", "worker", "label"])
    gold = {}
    for item_id, answers in gold_rows:
        label = answer_label(q, loads(answers).get(q.name))
        if label is not None:
            gold[item_id] = label
    return df, pd.Series(gold, dtype=object), last_id


def refit(store: Store, project: Project) -> SkillFit:
    """Fit the annotators' skills on the project's answers now, and cache the fit. In a project with a
    budget (``redundancy.budget``) the fit's posteriors then decide which items get another answer
    (:func:`spend_budget`)."""
    df, gold, last_id = _load_labels(store, project)
    fit = SkillFit(answers=len(df), last_id=last_id, at=time.time(), settings=_settings(project))
    probas = None
    r = project.schema.redundancy
    classes = label_values(project.schema.redundancy_question())
    if len(df):
        skills, priors, probas = fit_skills(df, gold=gold if len(gold) else None, classes=classes)
        fit.skills, fit.priors = skills, priors
        if len(df) >= MIN_FIT_ANSWERS:
            fit.paused = auto_pause.pause_weak(store, project, df, skills, gold)
            second_opinions.sync(store, project, df, skills)
    if r is not None and r.accuracy is not None:
        fit.tuning = tune_confidence(df, gold, r.accuracy, min_answers=r.min, max_answers=r.max, classes=classes) \
            if len(df) >= MIN_FIT_ANSWERS else ConfidenceTuning(None, r.accuracy, 0, reason=(
                f"needs {MIN_FIT_ANSWERS} answers before skills are estimated; has {len(df)}"))
    fits, lock = _fits(store)
    with lock:
        fits[project.id] = fit
    if probas is not None and r is not None and fit.answers >= MIN_FIT_ANSWERS:
        if r.budget is not None:
            spend_budget(store, project, probas.max(axis=1))
        else:
            redecide(store, project, probas.max(axis=1), policy(project, fit).confidence)
    return fit


def redecide(store: Store, project: Project, top: pd.Series, confidence: float) -> list[int]:
    """A project with a stopping confidence: reopen the items settled earlier whose label, under the
    newest skills, is now below ``confidence`` (one more answer each, up to ``max``).

    An item settles when its posterior reaches the confidence under the skills of that moment; skills
    fitted on the first few dozen answers are rough (an annotator who agreed with a good one looks good
    until their other answers show otherwise), and a tuned confidence can rise as gold comes in. Each
    refit therefore looks again at every settled item, ``top`` being each item's top posterior under the
    new fit, as :func:`decide` would compute it. Gold items and items at ``max`` are left alone. Returns
    the ids of the items reopened."""
    r = project.schema.redundancy
    assert r is not None
    i = t.items
    want = func.coalesce(i.c.target, project.overlap)
    with store.write() as conn:
        _one_decider(store, conn, project)
        rows = conn.execute(select(i.c.id, i.c.n_done).where(
            i.c.project_id == project.id, i.c.is_gold == 0, i.c.n_done >= want, i.c.n_done < r.max)).all()
        doubtful = [(item_id, done) for item_id, done in rows if float(top.get(item_id, 1.0)) < confidence]
        _one_more_answer(conn, project, doubtful)
    return [item_id for item_id, _ in doubtful]


def _one_decider(store: Store, conn: Connection, project: Project) -> None:
    """On PostgreSQL, lock the project's row: one process at a time reopens its items after a refit
    (several server processes refit the same project)."""
    if store.dialect == "postgresql":
        p = t.projects
        conn.execute(select(p.c.id).where(p.c.id == project.id).with_for_update())


def _one_more_answer(conn: Connection, project: Project, items: list[tuple[int, int]]) -> None:
    """Reopen each ``(item id, answers it has)`` for one more answer (its target raised to answers + 1,
    unless it already wants that many), in one statement."""
    if not items:
        return
    i = t.items
    more = bindparam("more", type_=Integer)
    conn.execute(retarget(more, i.c.id == bindparam("item"), func.coalesce(i.c.target, project.overlap) < more,
                          overlap=project.overlap),
                 [{"more": done + 1, "item": item_id} for item_id, done in items])


def spend_budget(store: Store, project: Project, top: pd.Series) -> list[int]:
    """A project with a budget of ``b`` answers per item on average: reopen the items in most doubt.

    ``top``: each item's top posterior under the newest fit. Of the items that have all the answers they
    want (settled, however early) and fewer than ``max``, up to :data:`BUDGET_STEP` of the project's
    items (at least :data:`BUDGET_ROUND`), lowest ``top`` first, get one more answer (their target is
    raised, which reopens them), while the extra answers stay within ``(b - min)`` per item. Nothing is
    spent before every item has had its ``min`` answers: the extra answers then go where the doubt is
    under skills fitted on a full first pass (spent earlier, they went to the first items, whatever their
    doubt). Every refit re-ranks every item, so an item settled early is reopened once the skills say it
    is in doubt. This is
    :class:`labelwright.quality.adaptive.BudgetPolicy` in the queue. Returns the ids of the items
    reopened."""
    r = project.schema.redundancy
    assert r is not None and r.budget is not None
    i = t.items
    with store.write() as conn:
        _one_decider(store, conn, project)
        rows = conn.execute(select(i.c.id, i.c.n_done, func.coalesce(i.c.target, project.overlap))
                            .where(i.c.project_id == project.id, i.c.is_gold == 0)).all()
        n = len(rows)
        if not n:
            return []
        if any(done < r.min for _, done, _ in rows):
            return []  # the first pass is not over: extra answers come after every item has its min
        spent = sum(max(0, want - r.min) for _, _, want in rows)
        allowed = int((r.budget - r.min) * n) - spent
        settled = [(float(top.get(item_id, 1.0)), item_id, done) for item_id, done, want in rows
                   if done >= want and done < r.max and item_id in top.index]
        if allowed <= 0 or not settled:
            return []
        settled.sort()
        chosen = settled[:min(allowed, max(BUDGET_ROUND, int(BUDGET_STEP * n)))]
        _one_more_answer(conn, project, [(item_id, done) for _, item_id, done in chosen])
    return [item_id for _, item_id, _ in chosen]


def _refit_in_background(store: Store, project: Project) -> None:
    def work():
        try:
            refit(store, project)
        except Exception:  # noqa: BLE001 - a failed refit keeps the last fit; the next decision retries
            fits, lock = _fits(store)
            with lock:
                old = fits.get(project.id)
                if old is not None:
                    old.running = False
    threading.Thread(target=work, name="labelwright-skill-fit", daemon=True).start()


def new_answers(store: Store, project: Project, fit: SkillFit) -> int:
    """Answers the project received (through any server) after the newest one ``fit`` saw."""
    # every decision asks this: one plain statement, no transaction (Store.lookup), as before the refit
    row = store.lookup(lookups.ANSWERS_AFTER, {"p": project.id, "x": fit.last_id})
    return 0 if row is None else int(AnswersAfterRow._make(row).n)


def current_fit(store: Store, project: Project, now: float | None = None) -> SkillFit:
    """The cached skill fit for the project, refitted first when stale (see the module docstring)."""
    now = now or time.time()
    fits, lock = _fits(store)
    with lock:
        fit = fits.get(project.id)
    if fit is None:
        return refit(store, project)
    stale = fit.settings != _settings(project) or now - fit.at > REFIT_SECONDS \
        or new_answers(store, project, fit) >= max(REFIT_MIN_NEW, REFIT_SHARE * fit.answers)
    if not stale:
        return fit
    if fit.answers < SYNC_LIMIT:
        return refit(store, project)
    with lock:  # a large project: refit in the background, meanwhile decide with the last fit
        if fit.running:
            return fit
        fit.running = True
    _refit_in_background(store, project)
    return fit


def _completed(store: Store, conn: Connection, project: Project, item_id: int) -> None:
    """Emit ``item.completed`` (and ``project.completed``) when the item has all the answers it wants."""
    i = t.items
    n_done, want = conn.execute(select(i.c.n_done, func.coalesce(i.c.target, project.overlap))
                                .where(i.c.id == item_id)).one()
    if n_done < want:
        return
    events.emit(conn, "item.completed", project.id, {"project": project.slug, "item_id": item_id})
    cur = store.cursor(conn)  # the queue's hand-written test (store/queue_sql.py), on the driver's cursor
    cur.execute(store.sql(PROJECT_DONE_QUERY), {"i": item_id, "p": project.id})
    if fetch_value(cur):
        events.emit(conn, "project.completed", project.id, {"project": project.slug})


def decide(store: Store, project: Project, item_id: int) -> dict:
    """Revise one item's target after a submission; returns what was decided (for tests and logs)."""
    q = project.schema.redundancy_question()
    fit = current_fit(store, project)
    with store.write() as conn:
        a, i = t.annotations, t.items
        rows = conn.execute(select(a.c.user_id, a.c.answers)  # rules' votes (services/rules.py) are no answers
                            .where(a.c.item_id == item_id, a.c.review_status != "rule")).all()
        labels, workers = [], []
        for user_id, answers in rows:
            label = answer_label(q, loads(answers).get(q.name))
            if label is not None:
                labels.append(label)
                workers.append(user_id)
        if fit.answers >= MIN_FIT_ANSWERS:
            posterior = item_posterior(labels, workers, label_values(q), fit.skills, fit.priors)
        else:
            posterior = item_posterior(labels, workers, label_values(q), {}, None, default_skill=0.7)
        top = float(posterior.max())
        n = len(rows)
        rule = policy(project, fit)
        # with a budget, items are reopened by spend_budget after each refit, not one by one here
        budgeted = project.schema.redundancy is not None and project.schema.redundancy.budget is not None
        more = not budgeted and n < rule.max_answers and rule.needs_more(len(labels), top)
        target = None
        if more:
            target = max(n + 1, project.overlap)
            conn.execute(retarget(target, i.c.id == item_id, i.c.is_gold == 0,
                                  func.coalesce(i.c.target, project.overlap) < target, overlap=project.overlap))
        else:
            _completed(store, conn, project, item_id)
        dry = budgeted and conn.execute(select(i.c.id).where(i.c.project_id == project.id, i.c.is_open == 1,
                                                             i.c.is_gold == 0).limit(1)).first() is None
    if dry:  # nothing left in the queue: spend what the budget still allows now, not at the next refit
        _refit_soon(store, project, fit)
    return {"item_id": item_id, "answers": n, "confidence": top, "needs_more": more, "target": target}


def report(store: Store, project: Project) -> dict | None:
    """How the project's adaptive redundancy decides now, for the quality page and its API: the rule
    (``threshold``, ``tuned`` on gold, or ``budget``), the confidence in use, and for a tuned one the
    gold replay's curve (accuracy and answers per item at each threshold tried) and why it chose."""
    r = project.schema.redundancy
    if r is None:
        return None
    fit = current_fit(store, project)
    out: dict[str, Any] = {"min": r.min, "max": r.max, "answers_seen": fit.answers, "pause_below": r.pause_below,
                           "paused": list(fit.paused), "second_opinions": r.second_opinions,
                           "weaker_half": second_opinions.listed(store, project)}
    if r.budget is not None:
        out.update(rule="budget", budget=r.budget)
        return out
    rule = policy(project, fit)
    out.update(rule="tuned" if r.accuracy is not None else "threshold", confidence=rule.confidence,
               configured_confidence=r.confidence)
    if r.accuracy is not None:
        tuning = fit.tuning
        out["target_accuracy"] = r.accuracy
        out["tuned"] = tuning is not None and tuning.confidence is not None
        out["reason"] = tuning.reason if tuning is not None else "not tuned yet"
        out["gold_items"] = tuning.gold_items if tuning is not None else 0
        out["curve"] = [{"confidence": c, "accuracy": round(a, 4), "answers": round(n, 2)}
                        for c, a, n in (tuning.curve if tuning is not None else ())]
    return out


def _refit_soon(store: Store, project: Project, fit: SkillFit) -> None:
    """Refit now: in this request for a small project, in the background for a large one."""
    if fit.answers < SYNC_LIMIT:
        refit(store, project)
        return
    fits, lock = _fits(store)
    with lock:
        if fit.running:
            return
        fit.running = True
    _refit_in_background(store, project)
