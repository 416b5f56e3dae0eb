"""Adaptive redundancy: ask for another answer only while an item is in doubt.

MTurk's "plurality with extension" asks for more answers until enough workers agree. This does it
statistically. :func:`fit_skills` estimates, without ground truth, how each worker answers: a confusion
matrix ``π_w[k, l] = P(worker w answers l | true label k)``, fitted by a MAP EM built for sparse data
(two or three answers per item). Each worker's matrix is shrunk towards a structured prior mean with one
free number per worker: the worker's one-coin accuracy ``s_w`` on the diagonal, and off the diagonal
``(1 - s_w)`` spread as the *pooled* errors of all workers spread (true ``k`` mistaken for ``l``). A
worker with few answers is therefore a one-coin worker whose mistakes follow the crowd's confusions;
one with many answers gets their own matrix (class-dependent biases). An item's posterior is

    P(k | answers) ∝ prior_k · Π_w π_w[k, a_w].

Two policies say which items get another answer. :class:`AdaptivePolicy`: an item needs one while it
has fewer than ``min_answers``, or while its most probable label has posterior below ``confidence`` and
it has fewer than ``max_answers``. :class:`BudgetPolicy`: a number of answers per item on average, spent
round by round on the items in most doubt (no threshold to choose; see ``benchmarks/redundancy.py``).

Pure numpy: the server calls :func:`item_posterior` for one item after each submission (with skills
cached per project); ``benchmarks/redundancy.py`` replays real crowd answers through :func:`replay` and
:func:`replay_budget`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from labelwright.quality._data import clamp_gold, encode
from labelwright.quality.majority_vote import MajorityVote

_EPS = 1e-6
_DEFAULT_SKILL = 0.7


class WorkerSkill(float):
    """A worker's skill: a float (their accuracy, as in the one-coin model) that carries a confusion matrix.

    ``matrix[i, j]`` is P(answers ``classes[j]`` | true label ``classes[i]``); ``float(skill)`` is the
    accuracy weighted by the class priors of the fit. ``population`` (set by :func:`fit_skills`) is the
    pooled skill of all workers of the same fit, used for workers it has not seen. Being a float, a
    WorkerSkill works wherever a one-coin skill did (and turns into one when serialised as JSON).
    """

    classes: tuple[Hashable, ...]
    matrix: np.ndarray
    log_matrix: np.ndarray
    index: dict[Hashable, int]
    population: WorkerSkill | None

    def __new__(cls, accuracy: float, classes: Sequence, matrix: np.ndarray,
                population: WorkerSkill | None = None):
        self = super().__new__(cls, float(accuracy))
        self.classes = tuple(classes)
        self.matrix = np.asarray(matrix, dtype=float)
        if self.matrix.shape != (len(self.classes), len(self.classes)):
            raise ValueError(f"matrix must be {len(self.classes)}x{len(self.classes)}, got {self.matrix.shape}")
        self.log_matrix = np.log(np.clip(self.matrix, _EPS, 1.0))
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.population = population
        return self

    def __reduce__(self):
        return (WorkerSkill, (float(self), self.classes, self.matrix, self.population))

    def __repr__(self) -> str:
        return f"WorkerSkill({float(self):.3f})"


@dataclass(frozen=True)
class AdaptivePolicy:
    """``min_answers`` to ``max_answers`` answers per item; stop once the posterior reaches ``confidence``."""

    min_answers: int = 2
    max_answers: int = 7
    confidence: float = 0.95

    def __post_init__(self):
        if not 1 <= self.min_answers <= self.max_answers:
            raise ValueError(f"need 1 <= min_answers ({self.min_answers}) <= max_answers ({self.max_answers})")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")

    def needs_more(self, n_answers: int, top_posterior: float) -> bool:
        if n_answers < self.min_answers:
            return True
        if n_answers >= self.max_answers:
            return False
        return top_posterior < self.confidence


@dataclass(frozen=True)
class BudgetPolicy:
    """Spend ``budget`` answers per item on average, where the doubt is: every item gets ``min_answers``;
    then, round after round, the ``step`` share of items in most doubt (lowest top posterior under the
    skills refitted on everything so far) get one more answer each, up to ``max_answers``, until the
    budget is spent. No confidence threshold to choose: the project says what it can pay (MTurk-style:
    answers per item), and the answers go where the posterior is least sure. Every round ranks all items
    under the newest fit, so an item settled early on a worker thought good is reopened if that worker's
    skill falls."""

    budget: float = 2.5
    min_answers: int = 2
    max_answers: int = 7
    step: float = 0.05

    def __post_init__(self):
        if not 1 <= self.min_answers <= self.max_answers:
            raise ValueError(f"need 1 <= min_answers ({self.min_answers}) <= max_answers ({self.max_answers})")
        if not self.min_answers <= self.budget <= self.max_answers:
            raise ValueError(f"budget ({self.budget}) must be between min_answers ({self.min_answers}) and "
                             f"max_answers ({self.max_answers}) answers per item")
        if not 0 < self.step <= 1:
            raise ValueError(f"step must be in (0, 1], got {self.step}")


MIN_ANSWERS_TO_PAUSE = 10  # weak_annotators judges no one on fewer answers
MIN_GOLD_TO_JUDGE = 5      # ...and judges by the gold answers from this many on


@dataclass(frozen=True)
class WeakAnnotator:
    """Why :func:`weak_annotators` names a worker: their estimated accuracy, the bar it fell below (and the
    crowd's accuracy and chance, 1/K, the bar was taken from), on how many answers."""

    accuracy: float
    bar: float
    crowd: float
    answers: int
    chance: float
    on_gold: bool = False  # accuracy is their share right on gold answers, not the model's estimate


def weak_annotators(answers: pd.DataFrame, skills: Mapping, pause_below: float, *,
                    gold: pd.Series | None = None, min_answers: int = MIN_ANSWERS_TO_PAUSE,
                    min_gold: int = MIN_GOLD_TO_JUDGE) -> dict[Hashable, WeakAnnotator]:
    """The workers a project would stop asking: estimated accuracy (``skills``, from :func:`fit_skills`,
    no truth) under ``1/K + pause_below · (crowd - 1/K)``, once they have ``min_answers`` answers.

    ``crowd`` is the workers' accuracy averaged over the answers (each worker weighted by their answers),
    ``K`` the number of classes. ``pause_below`` 0 names only workers estimated no better than chance, 1
    everyone below the crowd's average; 0.25 (a quarter of the way from chance to the crowd) finds the
    spammers of a paid crowd without touching honest annotators who err on hard items (see
    ``benchmarks/redundancy.py --pause-below``). Skills are shrunk towards the crowd's, so a worker with
    few answers must be far off to be named.

    ``gold`` (task -> true label): a worker with at least ``min_gold`` answers on gold tasks is judged by
    their share right there instead of the model's estimate. From answers alone a colluding majority (the
    same wrong label, agreed on) looks like the crowd and the honest minority looks weak; a fit anchored
    on a little gold can stay in that trap, the gold answers themselves cannot."""
    if not 0 <= pause_below <= 1:
        raise ValueError(f"pause_below must be in [0, 1], got {pause_below}")
    if not skills or not len(answers):
        return {}
    n = answers.groupby("worker").size()
    n = n[n.index.isin(list(skills))]
    if not len(n):
        return {}
    acc = pd.Series({w: float(skills[w]) for w in n.index})
    judged: pd.Index = pd.Index([])
    if gold is not None and len(gold):
        on_gold = answers[answers["task"].isin(gold.index)]
        right = (on_gold["label"].astype(str).to_numpy()
                 == gold.reindex(on_gold["task"]).astype(str).to_numpy())
        checked = pd.DataFrame({"worker": on_gold["worker"].to_numpy(), "right": right}).groupby("worker")["right"]
        share, count = checked.mean(), checked.size()
        judged = count[(count >= min_gold) & count.index.isin(acc.index)].index
        acc.loc[judged] = share.loc[judged].to_numpy()
    first = next(iter(skills.values()))
    k = len(first.classes) if isinstance(first, WorkerSkill) else max(2, answers["label"].nunique())
    crowd = float((acc * n).sum() / n.sum())
    chance = 1.0 / k
    bar = chance + pause_below * max(0.0, crowd - chance)
    return {w: WeakAnnotator(accuracy=float(acc[w]), bar=bar, crowd=crowd, answers=int(n[w]), chance=chance,
                             on_gold=w in judged)
            for w in n.index if n[w] >= min_answers and acc[w] < bar}


SECOND_OPINIONS = ("anyone", "stronger_half")  # who answers an item beyond its first min_answers


def weaker_half(answers: pd.DataFrame, skills: Mapping, *, min_answers: int = MIN_ANSWERS_TO_PAUSE,
                min_workers: int = 0) -> dict[Hashable, WeakAnnotator]:
    """The workers not asked for second opinions under ``second_opinions="stronger_half"``: those whose
    estimated accuracy (``skills``, from :func:`fit_skills`, no truth) is below the median of the workers
    judged, those with at least ``min_answers`` answers (the :class:`WeakAnnotator`'s ``bar`` is that
    median; ``crowd`` their accuracy averaged over their answers).

    A worker with fewer answers does not move the median but is compared with it by their estimate, which
    on few answers is shrunk towards the fit's prior (0.7): a newcomer whose first answers agree with the
    crowd gives second opinions, one whose first answers do not waits until more of them do. A worker with
    no answers is not in the fit and is not held back. Fewer than two judged: nobody is.

    Items in doubt are where answers differ in worth: an extra answer from an annotator the crowd agrees
    with more often moves the posterior further. First answers still come from everyone (they are what
    the skills are measured on), and nobody is paused. Ties at the median stay in the stronger half.

    ``min_workers``: hold nobody back in a fit of fewer workers. The queue passes twice ``max``, the most
    answers an item may want: in a smaller team the stronger half may be too few to give an item all its
    answers (four annotators, ``max`` 3: an item whose two first answers came from the two careful ones
    would wait for ever)."""
    if not skills or not len(answers):
        return {}
    n = answers.groupby("worker").size()
    n = n[n.index.isin(list(skills))]
    judged = n[n >= min_answers]
    if len(judged) < 2 or len(n) < min_workers:
        return {}
    acc = pd.Series({w: float(skills[w]) for w in n.index})
    bar = float(acc[judged.index].median())
    first = next(iter(skills.values()))
    chance = 1.0 / (len(first.classes) if isinstance(first, WorkerSkill) else max(2, answers["label"].nunique()))
    crowd = float((acc[judged.index] * judged).sum() / judged.sum())
    return {w: WeakAnnotator(accuracy=float(acc[w]), bar=bar, crowd=crowd, answers=int(n[w]), chance=chance)
            for w in n.index if acc[w] < bar}


def _held_back(second_opinions: str, collected: pd.DataFrame, skills: Mapping, max_answers: int) -> set:
    if second_opinions not in SECOND_OPINIONS:
        raise ValueError(f"second_opinions must be one of {SECOND_OPINIONS}, got {second_opinions!r}")
    if second_opinions == "anyone":
        return set()
    return set(weaker_half(collected, skills, min_workers=2 * max_answers))


def _default_skill(skills: Mapping):
    """The skill of a worker not in ``skills``: the fit's pooled skill, else the mean accuracy, else 0.7."""
    if not skills:
        return _DEFAULT_SKILL
    first = next(iter(skills.values()))
    if isinstance(first, WorkerSkill) and first.population is not None:
        return first.population
    return float(np.mean([float(s) for s in skills.values()]))


def _one_coin_row(s: float, j: int, k: int) -> np.ndarray:
    s = min(max(float(s), _EPS), 1 - _EPS)
    row = np.full(k, np.log((1 - s) / max(k - 1, 1)))
    row[j] = np.log(s)
    return row


def _log_likelihood(skill, label, j: int, classes: tuple, k: int) -> np.ndarray:
    """log P(answer ``label`` | true class) for each of ``classes``, ``label == classes[j]``."""
    if isinstance(skill, WorkerSkill) and label in skill.index:
        col = skill.log_matrix[:, skill.index[label]]
        if skill.classes == classes:
            return col
        fallback = _one_coin_row(float(skill), j, k)
        return np.array([col[skill.index[c]] if c in skill.index else fallback[i] for i, c in enumerate(classes)])
    return _one_coin_row(float(skill), j, k)


def item_posterior(labels: Sequence, workers: Sequence, classes: Sequence, skills: Mapping,
                   priors: Mapping | None = None, default_skill: float | WorkerSkill | None = None) -> np.ndarray:
    """Posterior over ``classes`` for one item from its answers (``labels[i]`` given by ``workers[i]``).

    ``skills`` maps worker to skill, as :func:`fit_skills` returns it: a :class:`WorkerSkill` (confusion
    matrix) or a plain float (one-coin accuracy: right with that probability, else a uniformly wrong label).
    A worker missing from it gets ``default_skill`` (default: the fit's pooled skill, else the mean of the
    known skills, or 0.7 with none known). ``priors`` maps class to prior probability (default uniform).
    Answers outside ``classes`` are ignored.
    """
    classes = tuple(classes)
    k = len(classes)
    if k == 0:
        raise ValueError("no classes")
    index = {c: i for i, c in enumerate(classes)}
    if default_skill is None:
        default_skill = _default_skill(skills)
    log_post = np.log(np.array([max((priors or {}).get(c, 1.0 / k), _EPS) for c in classes]))
    for label, worker in zip(labels, workers):
        j = index.get(label)
        if j is None:
            continue
        log_post = log_post + _log_likelihood(skills.get(worker, default_skill), label, j, classes, k)
    log_post -= log_post.max()
    p = np.exp(log_post)
    return p / p.sum()


def fit_skills(answers: pd.DataFrame, prior_skill: float = 0.7, strength: float = 4.0,
               n_iter: int = 50, tol: float = 1e-6, *, gold: pd.Series | None = None,
               model: str = "confusion", prior_shrink: float = 0.5,
               classes: Sequence | None = None) -> tuple[dict, dict, pd.DataFrame]:
    """Worker skills, class priors and per-task posteriors, from answers (and optional gold), no truth needed.

    A MAP EM built for sparse data (two or three answers per item, where maximum likelihood collapses onto
    one class). Each worker's one-coin accuracy ``s_w`` has a Beta prior worth ``strength`` pseudo-answers
    at ``prior_skill``. With ``model="confusion"`` (default) each row of the worker's confusion matrix is
    then shrunk, with ``strength`` pseudo-answers, towards ``s_w`` on the diagonal and ``1 - s_w`` spread
    like the pooled errors of all workers; skills are :class:`WorkerSkill` (floats carrying the matrix).
    With ``model="one_coin"`` skills are plain floats (right with ``s_w``, else uniformly wrong). Class
    priors are shrunk towards uniform by ``prior_shrink``.

    ``gold`` (Series task -> true label) anchors the fit: those tasks' posteriors are fixed to their gold
    label in every EM iteration (gold labels nobody gave are added to the classes; gold for tasks without
    answers is ignored). ``classes``, when given, are all the labels the question allows: a class nobody
    has answered yet still gets a prior and a place in every matrix (without it, a fit on answers that
    all name one class knows no other, and takes any other answer for certain evidence). Returns
    ``(skills, priors, probas)``: dicts worker -> skill and class -> prior, and a DataFrame task x class
    of posteriors.
    """
    if model not in ("confusion", "one_coin"):
        raise ValueError(f"model must be 'confusion' or 'one_coin', got {model!r}")
    ann, gold_tasks, gold_labels = encode(answers, gold, classes)
    task, worker, label = ann.task, ann.worker, ann.label
    n_t, n_w, k = ann.n_tasks, ann.n_workers, ann.n_labels
    ar = np.arange(k)
    counts = np.bincount(task * k + label, minlength=n_t * k).reshape(n_t, k).astype(float)
    probas = clamp_gold(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), gold_tasks, gold_labels)
    n_answers = np.bincount(worker, minlength=n_w)
    # prior mean of the pooled matrix: one-coin at prior_skill, worth `strength` pseudo-answers per class
    base = np.full((k, k), (1 - prior_skill) / max(k - 1, 1))
    base[ar, ar] = prior_skill if k > 1 else 1.0
    soft_idx = ((worker * k * k + label)[:, None] + (ar * k)[None, :]).ravel()  # cell (w, true k, label)
    post_idx = (task[:, None] * k + ar[None, :]).ravel()                         # cell (task, true k)
    for _ in range(n_iter):
        priors = (1 - prior_shrink) * probas.mean(axis=0) + prior_shrink / k
        soft = np.bincount(soft_idx, weights=probas[task].ravel(), minlength=n_w * k * k).reshape(n_w, k, k)
        hits = soft[:, ar, ar].sum(axis=1)
        s = np.clip((hits + strength * prior_skill) / (n_answers + strength), _EPS, 1 - _EPS)
        pooled = soft.sum(axis=0) + strength * base
        if model == "one_coin" or k == 1:
            err = np.full((k, k), 1.0 / max(k - 1, 1))
        else:
            err = pooled.copy()
            err[ar, ar] = 0.0
            err /= np.maximum(err.sum(axis=1, keepdims=True), 1e-300)
        conf = (1 - s)[:, None, None] * err[None]
        conf[:, ar, ar] = s[:, None]
        if model == "confusion":
            conf = (soft + strength * conf) / (soft.sum(axis=2, keepdims=True) + strength)
        pooled /= pooled.sum(axis=1, keepdims=True)
        log_conf = np.log(np.clip(conf, _EPS, 1.0))
        log_post = np.bincount(post_idx, weights=log_conf[worker, :, label].ravel(),
                               minlength=n_t * k).reshape(n_t, k)
        log_post += np.log(priors)
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        clamp_gold(new, gold_tasks, gold_labels)
        delta = np.abs(new - probas).max() if new.size else 0.0
        probas = new
        if delta < tol:
            break
    classes = ann.labels.tolist()
    if model == "one_coin":
        skills = dict(zip(ann.workers, s.tolist()))
    else:
        population = WorkerSkill(float(priors @ np.diag(pooled)), classes, pooled)
        acc = conf[:, ar, ar] @ priors
        skills = {w: WorkerSkill(a, classes, conf[i], population)
                  for i, (w, a) in enumerate(zip(ann.workers, acc.tolist()))}
    return skills, dict(zip(classes, priors.tolist())), pd.DataFrame(probas, index=ann.tasks, columns=ann.labels)


TUNE_GRID = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
MIN_TUNE_GOLD = 20


@dataclass(frozen=True)
class ConfidenceTuning:
    """What :func:`tune_confidence` chose and why. ``confidence`` is None when there was too little gold."""

    confidence: float | None
    target: float
    gold_items: int                  # gold items the stopping rule was replayed on
    accuracy: float | None = None    # their accuracy had the rule stopped at ``confidence``
    answers: float | None = None     # answers per gold item it would have asked for
    reason: str = ""
    curve: tuple = ()                # (confidence, accuracy, answers per item) for every threshold tried


def _gold_paths(answers: pd.DataFrame, gold: pd.Series, skills: Mapping, priors: Mapping, classes: tuple,
                min_answers: int, max_answers: int) -> list[tuple[np.ndarray, int]]:
    """For each gold task: the posterior after its first n answers (rows n = min..cap, in ``answers``'
    row order) and the index of its gold label in ``classes``."""
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    default = _default_skill(skills)
    log_prior = np.log(np.array([max((priors or {}).get(c, 1.0 / k), _EPS) for c in classes]))
    paths = []
    for task, g in answers[answers["task"].isin(gold.index)].groupby("task", sort=False):
        truth = index.get(gold[task])
        if truth is None:
            continue
        rows = [_log_likelihood(skills.get(w, default), lab, index[lab], classes, k)
                for w, lab in zip(g["worker"], g["label"]) if lab in index][:max_answers]
        if len(rows) < min_answers:
            continue
        log_post = log_prior + np.cumsum(np.vstack(rows), axis=0)[min_answers - 1:]
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        paths.append((post / post.sum(axis=1, keepdims=True), truth))
    return paths


def tune_confidence(answers: pd.DataFrame, gold: pd.Series, target: float, *, min_answers: int = 2,
                    max_answers: int = 7, classes: Sequence | None = None, grid: Sequence[float] = TUNE_GRID,
                    min_gold: int = MIN_TUNE_GOLD, assurance: float = 0.8,
                    fit_kwargs: Mapping | None = None) -> ConfidenceTuning:
    """The lowest stopping confidence at which the gold items would have been labelled ``target`` accurately.

    A threshold that suits one project (0.6 on one crowd, 0.95 on another: see ``benchmarks/redundancy.py``)
    is tuned on the project's own gold items, the only items whose truth is known. Each gold item's answers
    are replayed in order (``answers``' row order: arrival order), as if it were an ordinary item: after
    ``min_answers``, then after each further answer up to ``max_answers``, its posterior is computed
    (:func:`item_posterior`'s formula); for each threshold in ``grid`` the item stops at the first posterior at
    or above it, and is right or wrong with the label it had then. The skills come from :func:`fit_skills`
    on all of ``answers``, anchored on the *other half* of the gold (two folds), so no gold item's own label
    shapes the posterior it is scored on. A handful of gold items measures accuracy roughly (100 items:
    about ±4 points), and the lowest threshold that happens to look good on them is an optimistic pick;
    so a threshold counts as reaching ``target`` when the Wilson lower bound of its gold accuracy, at
    ``assurance`` (one-sided), does. The choice is the lowest threshold from which every higher one in
    ``grid`` also reaches it (a dip in the middle of the curve is noise to stay above, not luck to
    exploit). When even the highest misses it, the highest is returned and the reason says so.
    With fewer than ``min_gold`` gold items holding ``min_answers`` answers nothing is tuned (``confidence``
    None). Ordinary items' truth is never read: it is not passed in.
    """
    if not 0 < target < 1:
        raise ValueError(f"target accuracy must be in (0, 1), got {target}")
    if not 0.5 <= assurance < 1:
        raise ValueError(f"assurance must be in [0.5, 1), got {assurance}")
    grid = tuple(sorted(float(c) for c in grid))
    counts = answers.groupby("task").size()
    usable = gold[gold.index.isin(counts[counts >= min_answers].index)]
    if len(usable) < min_gold:
        return ConfidenceTuning(None, target, len(usable), reason=(
            f"needs {min_gold} gold items with at least {min_answers} answers each to tune on; "
            f"has {len(usable)}"))
    order = np.random.default_rng(0).permutation(len(usable))
    halves = (usable.iloc[np.sort(order[: len(order) // 2])], usable.iloc[np.sort(order[len(order) // 2:])])
    paths = []
    for scored, anchor in (halves, halves[::-1]):
        skills, priors, probas = fit_skills(answers, gold=anchor, classes=classes, **(fit_kwargs or {}))
        paths += _gold_paths(answers, scored, skills, priors, tuple(probas.columns), min_answers, max_answers)
    curve = []
    for c in grid:
        right = used = 0
        for post, truth in paths:
            top = post.max(axis=1)
            hit = np.flatnonzero(top >= c)
            n = int(hit[0]) if len(hit) else len(post) - 1
            right += int(post[n].argmax() == truth)
            used += min_answers + n
        curve.append((c, right / len(paths), used / len(paths)))
    n = len(paths)
    z = NormalDist().inv_cdf(assurance)
    chosen = None
    for c, acc, _ in reversed(curve):
        if wilson_lower(acc, n, z) < target:
            break
        chosen = c
    if chosen is None:
        top, acc, per_item = curve[-1]
        return ConfidenceTuning(top, target, n, acc, per_item, curve=tuple(curve), reason=(
            f"on {n} gold items even {top:g} is only {acc:.0%} right (at least {wilson_lower(acc, n, z):.0%} "
            f"with {assurance:.0%} assurance; target {target:.0%}): items in doubt get up to {max_answers} answers"))
    top, acc, per_item = next(row for row in curve if row[0] == chosen)
    return ConfidenceTuning(top, target, n, acc, per_item, curve=tuple(curve), reason=(
        f"tuned on {n} gold items: stopping at {top:g} they would have been {acc:.0%} right (at least "
        f"{wilson_lower(acc, n, z):.0%} with {assurance:.0%} assurance; target {target:.0%}) with {per_item:.1f} "
        f"answers each"))


def wilson_lower(p: float, n: int, z: float) -> float:
    """The Wilson score interval's lower end for a proportion ``p`` observed on ``n`` trials (``z``: the
    normal quantile of the one-sided confidence)."""
    if n <= 0:
        return 0.0
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


@dataclass
class ReplayResult:
    answers_used: int
    accuracy: float
    labels: pd.Series
    per_item: pd.Series | None = None  # answers each item got (the replays)
    gold: pd.Index | None = None       # the items taken as gold (replay_tuned), not scored


def _shuffled(answers: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Each item's answers in a random order (``_rank`` 0, 1, ...), and how many each item has."""
    rng = np.random.default_rng(seed)
    df = answers[["task", "worker", "label"]].reset_index(drop=True)
    df = df.iloc[rng.permutation(len(df))]
    df = df.assign(_rank=df.groupby("task", sort=False).cumcount()).sort_values(["task", "_rank"])
    return df, df.groupby("task")["_rank"].max() + 1


def _accuracy(labels: pd.Series, truth: pd.Series) -> float:
    common = truth.index.intersection(labels.index)
    hits = labels.loc[common].astype(str) == truth.loc[common].astype(str)
    return float(hits.mean()) if len(common) else float("nan")


class _AnswerOrders:
    """Each item's recorded answers in their shuffled order (``df`` from :func:`_shuffled`, an item's answers
    together), the first ``given`` of each taken; :meth:`take` takes an item's next one, passing over the
    answers of paused workers (the next annotator in the item's order who is not paused answers it)."""

    def __init__(self, df: pd.DataFrame, available: np.ndarray, given: np.ndarray):
        self.avail = available
        self.starts = np.concatenate([[0], np.cumsum(available)[:-1]]).astype(int)
        self.taken = df["_rank"].to_numpy() < np.repeat(given, available)
        self.next = np.array(given, copy=True)  # the place in its order of each item's first answer not taken
        self.workers = df["worker"].to_numpy()

    def take(self, j: int, paused: set, held: set | frozenset = frozenset()) -> bool | None:
        """Take item ``j``'s next answer from a worker in neither ``paused`` nor ``held``: True when taken,
        False when only ``held`` workers' answers are left (they may be taken later, as the queue serves
        an annotator again once they are no longer held back), None when none is left."""
        s, n = self.starts[j], self.avail[j]
        while self.next[j] < n and (self.taken[s + self.next[j]] or self.workers[s + self.next[j]] in paused):
            self.next[j] += 1  # a paused worker's answers are passed over for good
        waiting = False
        for r in range(self.next[j], n):
            if self.taken[s + r] or self.workers[s + r] in paused:
                continue
            if self.workers[s + r] in held:
                waiting = True
                continue
            self.taken[s + r] = True
            return True
        return False if waiting else None


def replay_budget(answers: pd.DataFrame, truth: pd.Series, policy: BudgetPolicy, *, seed: int = 0,
                  fit_kwargs: Mapping | None = None, pause_below: float | None = None,
                  second_opinions: str = "anyone") -> ReplayResult:
    """:func:`replay` for a :class:`BudgetPolicy`: recorded answers in a random order per item (``seed``),
    ``min_answers`` each, then one more per round to the ``step`` share of items with the lowest top
    posterior (:func:`fit_skills` refitted each round, no truth) among those with answers left, until
    ``budget`` answers per item are spent. Accuracy on the items in ``truth``.

    With ``pause_below``, every round also pauses the workers :func:`weak_annotators` names, as the queue
    does (``redundancy.pause_below``): their answers so far still count (they were paid for), and an
    item's next answer is the next one in its order from a worker who is not paused.

    With ``second_opinions="stronger_half"``, every answer beyond an item's first ``min_answers`` comes
    from a worker not in :func:`weaker_half` of the newest fit (the next such worker in the item's order),
    as the queue serves reopened items (``redundancy.second_opinions``)."""
    df, available = _shuffled(answers, seed)
    tasks = available.index
    avail = available.to_numpy()
    cap = np.minimum(avail, policy.max_answers)
    given = np.minimum(policy.min_answers, avail)
    budget = int(policy.budget * len(tasks))  # never over: rounded down
    per_round = max(1, int(policy.step * len(tasks)))
    orders = _AnswerOrders(df, avail, given)
    paused: set = set()
    while True:
        collected = df[orders.taken]
        skills, _, probas = fit_skills(collected, **(fit_kwargs or {}))
        probas = probas.reindex(tasks)
        if pause_below is not None:
            paused |= set(weak_annotators(collected, skills, pause_below))
        held = _held_back(second_opinions, collected, skills, policy.max_answers)
        left = budget - int(given.sum())
        open_ = np.flatnonzero(given < cap)
        if left <= 0 or not len(open_):
            break
        top = probas.max(axis=1).to_numpy()[open_]
        chosen, spent = open_[np.argsort(top, kind="stable")], 0
        for j in chosen:
            if spent >= min(per_round, left):
                break
            took = orders.take(int(j), paused, held)
            if not took:
                if took is None:
                    cap[j] = given[j]  # no one left to ask
                continue
            given[j] += 1
            spent += 1
        if not spent:
            break
    labels = probas.idxmax(axis=1)
    return ReplayResult(answers_used=int(given.sum()), accuracy=_accuracy(labels, truth), labels=labels,
                        per_item=pd.Series(given, index=tasks))


def replay(answers: pd.DataFrame, truth: pd.Series, policy: AdaptivePolicy, *, seed: int = 0,
           fit_kwargs: Mapping | None = None, pause_below: float | None = None,
           second_opinions: str = "anyone") -> ReplayResult:
    """Replay recorded crowd answers as if workers arrived in random order, asking for more only in doubt.

    Each item's answers are shuffled (``seed``); every round, each item that still needs an answer gets
    its next recorded one (an item whose recorded answers run out stops there), then skills are refitted
    on everything collected so far (:func:`fit_skills` with ``fit_kwargs``, no truth). Accuracy is measured
    on the items in ``truth``; the labels are the posteriors' argmax. ``pause_below`` and
    ``second_opinions``: as in :func:`replay_budget`.
    """
    df, available = _shuffled(answers, seed)
    tasks = available.index
    avail = available.to_numpy()
    given = np.minimum(policy.min_answers, avail)
    orders = _AnswerOrders(df, avail, given)
    left = given < avail  # items with recorded answers not yet taken
    paused: set = set()
    while True:
        collected = df[orders.taken]
        skills, _, probas = fit_skills(collected, **(fit_kwargs or {}))
        probas = probas.reindex(tasks)
        if pause_below is not None:
            paused |= set(weak_annotators(collected, skills, pause_below))
        held = _held_back(second_opinions, collected, skills, policy.max_answers)
        top = probas.max(axis=1).to_numpy()
        need = ((given < policy.min_answers) | ((top < policy.confidence) & (given < policy.max_answers))) & left
        if not need.any():
            break
        took_any = False
        for j in np.flatnonzero(need):
            took = orders.take(int(j), paused, held)
            if took:
                given[j] += 1
                took_any = True
            elif took is None:
                left[j] = False
        if not took_any:
            break  # every item in doubt waits for an annotator held back: none comes in a replay
    labels = probas.idxmax(axis=1)
    return ReplayResult(answers_used=int(given.sum()), accuracy=_accuracy(labels, truth), labels=labels,
                        per_item=pd.Series(given, index=tasks))


def replay_tuned(answers: pd.DataFrame, truth: pd.Series, *, min_answers: int = 2, max_answers: int = 7,
                 gold_share: float = 0.1, target: float | None = None, match: int = 5, seed: int = 0,
                 fit_kwargs: Mapping | None = None) -> tuple[ReplayResult, ConfidenceTuning]:
    """:func:`replay` with the threshold tuned on gold, as a project would run it.

    A random ``gold_share`` of the items in ``truth`` (``seed``), but at least :data:`MIN_TUNE_GOLD` (the
    least :func:`tune_confidence` tunes on), are the project's gold items: each gets
    its recorded answers up to ``max_answers`` (every annotator answers gold; these answers count in
    ``answers_used``). The other items follow :class:`AdaptivePolicy` with the confidence re-tuned on the
    gold (:func:`tune_confidence`) at every refit, skills anchored on the gold. ``target``: the accuracy
    asked for; by default what a project reads off its gold, the accuracy of a majority vote of the first
    ``match`` answers on the gold items. Accuracy is measured on the items in ``truth`` that are not gold.
    Returns the result and the last tuning."""
    df, available = _shuffled(answers, seed)
    tasks = available.index
    rng = np.random.default_rng(10_000 + seed)
    candidates = truth.index[truth.index.isin(tasks)].to_numpy()
    n_gold = min(len(candidates), max(MIN_TUNE_GOLD, int(round(gold_share * len(candidates)))))
    gold = truth.loc[rng.choice(candidates, n_gold, replace=False)]
    is_gold = tasks.isin(gold.index)
    avail = available.to_numpy()
    given = np.where(is_gold, np.minimum(avail, max_answers), np.minimum(min_answers, avail))
    if target is None:
        first = df[df["task"].isin(gold.index) & (df["_rank"] < match)]
        target = _accuracy(MajorityVote(tie_break="random", random_state=seed).fit_predict(first), gold)
        target = min(target, 0.99)  # five answers right on every gold item: ask for 99%, not certainty
    while True:
        collected = df[df["_rank"] < df["task"].map(pd.Series(given, index=tasks))]
        tuning = tune_confidence(collected, gold, target, min_answers=min_answers, max_answers=max_answers,
                                 fit_kwargs=fit_kwargs)
        confidence = tuning.confidence if tuning.confidence is not None else AdaptivePolicy().confidence
        _, _, probas = fit_skills(collected, gold=gold, **(fit_kwargs or {}))
        probas = probas.reindex(tasks)
        top = probas.max(axis=1).to_numpy()
        need = ~is_gold & (top < confidence) & (given < max_answers) & (given < avail)
        if not need.any():
            break
        given = given + need.astype(int)
    labels = probas.idxmax(axis=1)
    scored = truth.drop(gold.index)
    return ReplayResult(answers_used=int(given.sum()), accuracy=_accuracy(labels, scored), labels=labels,
                        per_item=pd.Series(given, index=tasks), gold=gold.index), tuning


def fixed_majority(answers: pd.DataFrame, truth: pd.Series, k: int, *, seed: int = 0) -> ReplayResult:
    """Baseline: the first ``k`` answers of each item (same random order as :func:`replay`), majority vote."""
    rng = np.random.default_rng(seed)
    df = answers[["task", "worker", "label"]].reset_index(drop=True)
    df = df.iloc[rng.permutation(len(df))]
    df = df[df.groupby("task", sort=False).cumcount() < k]
    labels = MajorityVote(tie_break="random", random_state=seed).fit_predict(df)
    return ReplayResult(answers_used=len(df), accuracy=_accuracy(labels, truth), labels=labels)
