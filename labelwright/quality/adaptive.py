"""Adaptive redundancy: ask for another answer only while an item is in doubt.

MTurk's "plurality with extension" asks for more answers until enough workers agree. This does it
statistically: each worker has a one-coin skill ``s_w`` (right with probability ``s_w``, otherwise a
uniformly wrong label), estimated without ground truth by :func:`fit_skills` (a MAP one-coin EM) on all
answers collected so far, and an item's posterior over labels is

    P(k | answers) ∝ prior_k · Π_w (s_w if a_w = k else (1 - s_w) / (K - 1)).

An item needs another answer while it has fewer than ``min_answers``, or while its most probable label
has posterior below ``confidence`` and it has fewer than ``max_answers``.

Pure numpy: the server calls :func:`item_posterior` for one item after each submission (with skills
cached per project); ``benchmarks/redundancy.py`` replays real crowd answers through :func:`replay`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


_EPS = 1e-6


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


def item_posterior(labels: Sequence, workers: Sequence, classes: Sequence, skills: Mapping,
                   priors: Mapping | None = None, default_skill: float | None = None) -> np.ndarray:
    """Posterior over ``classes`` for one item from its answers (``labels[i]`` given by ``workers[i]``).

    ``skills`` maps worker to one-coin accuracy; a worker missing from it gets ``default_skill``
    (default: the mean of the known skills, or 0.7 with none known). ``priors`` maps class to prior
    probability (default uniform).
    """
    classes = list(classes)
    k = len(classes)
    if k == 0:
        raise ValueError("no classes")
    index = {c: i for i, c in enumerate(classes)}
    if default_skill is None:
        default_skill = float(np.mean(list(skills.values()))) if skills else 0.7
    log_post = np.log(np.array([max((priors or {}).get(c, 1.0 / k), _EPS) for c in classes]))
    for label, worker in zip(labels, workers):
        if label not in index:
            continue
        s = min(max(float(skills.get(worker, default_skill)), _EPS), 1 - _EPS)
        wrong = np.log((1 - s) / max(k - 1, 1))
        row = np.full(k, wrong)
        row[index[label]] = np.log(s)
        log_post += row
    log_post -= log_post.max()
    p = np.exp(log_post)
    return p / p.sum()


def fit_skills(answers: pd.DataFrame, prior_skill: float = 0.7, strength: float = 4.0,
               n_iter: int = 50, tol: float = 1e-6) -> tuple[dict, dict, pd.DataFrame]:
    """One-coin skills per worker, class priors and per-task posteriors, from answers alone (no truth).

    A MAP one-coin EM built for sparse data (two or three answers per item, where maximum likelihood
    collapses onto one class): each skill has a Beta prior worth ``strength`` pseudo-answers at
    ``prior_skill``, and class priors are shrunk half-way to uniform. Returns ``(skills, priors, probas)``.
    """
    task_codes, tasks = pd.factorize(answers["task"])
    worker_codes, workers = pd.factorize(answers["worker"])
    label_codes, labels = pd.factorize(answers["label"], sort=True)
    n_t, n_w, k = len(tasks), len(workers), len(labels)
    tl = task_codes * k + label_codes
    counts = np.bincount(tl, minlength=n_t * k).reshape(n_t, k).astype(float)
    probas = counts / counts.sum(axis=1, keepdims=True)
    n_answers = np.bincount(worker_codes, minlength=n_w)
    skills = np.full(n_w, prior_skill)
    priors = np.full(k, 1.0 / k)
    last = None
    for _ in range(n_iter):
        hits = np.bincount(worker_codes, weights=probas.ravel()[tl], minlength=n_w)
        skills = np.clip((hits + strength * prior_skill) / (n_answers + strength), _EPS, 1 - _EPS)
        priors = 0.5 * probas.mean(axis=0) + 0.5 / k
        gain = np.log(skills) - np.log((1 - skills) / max(k - 1, 1))
        log_post = np.bincount(tl, weights=gain[worker_codes], minlength=n_t * k).reshape(n_t, k)
        log_post += np.log(priors)
        log_post -= log_post.max(axis=1, keepdims=True)
        probas = np.exp(log_post)
        probas /= probas.sum(axis=1, keepdims=True)
        if last is not None and np.abs(skills - last).max() < tol:
            break
        last = skills
    return (dict(zip(workers, skills.tolist())), dict(zip(labels, priors.tolist())),
            pd.DataFrame(probas, index=tasks, columns=labels))


@dataclass
class ReplayResult:
    answers_used: int
    accuracy: float
    labels: pd.Series


def replay(answers: pd.DataFrame, truth: pd.Series, policy: AdaptivePolicy, *, seed: int = 0) -> ReplayResult:
    """Replay recorded crowd answers as if workers arrived in random order, asking for more only in doubt.

    Each item's answers are shuffled (``seed``); every round, each item that still needs an answer gets
    its next recorded one (an item whose recorded answers run out stops there), then skills are refitted
    on everything collected so far. Accuracy is measured on the items in ``truth``.
    """
    rng = np.random.default_rng(seed)
    df = answers[["task", "worker", "label"]].reset_index(drop=True)
    order = rng.permutation(len(df))
    df = df.iloc[order]
    df = df.assign(_rank=df.groupby("task", sort=False).cumcount()).sort_values(["task", "_rank"])
    available = df.groupby("task")["_rank"].max() + 1
    tasks = available.index
    given = pd.Series(np.minimum(policy.min_answers, available.to_numpy()), index=tasks)
    while True:
        collected = df[df["_rank"] < df["task"].map(given)]
        _, _, probas = fit_skills(collected)
        probas = probas.reindex(tasks)
        top = probas.max(axis=1).to_numpy()
        n = given.to_numpy()
        need = ((n < policy.min_answers) | ((top < policy.confidence) & (n < policy.max_answers))) \
            & (n < available.to_numpy())
        if not need.any():
            break
        given = given + need.astype(int)
    labels = probas.idxmax(axis=1)
    common = truth.index.intersection(labels.index)
    acc = float((labels.loc[common].astype(str) == truth.loc[common].astype(str)).mean()) if len(common) else float("nan")
    return ReplayResult(answers_used=int(given.sum()), accuracy=acc, labels=labels)


def fixed_majority(answers: pd.DataFrame, truth: pd.Series, k: int, *, seed: int = 0) -> ReplayResult:
    """Baseline: the first ``k`` answers of each item (same random order as :func:`replay`), majority vote."""
    from labelwright.quality.majority_vote import MajorityVote

    rng = np.random.default_rng(seed)
    df = answers[["task", "worker", "label"]].reset_index(drop=True)
    df = df.iloc[rng.permutation(len(df))]
    df = df[df.groupby("task", sort=False).cumcount() < k]
    labels = MajorityVote(tie_break="random", random_state=seed).fit_predict(df)
    common = truth.index.intersection(labels.index)
    acc = float((labels.loc[common].astype(str) == truth.loc[common].astype(str)).mean())
    return ReplayResult(answers_used=len(df), accuracy=acc, labels=labels)
