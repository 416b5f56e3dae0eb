"""Choosing the categorical method per question from the answers themselves, with confidence tempered to match.

:class:`AutoSelect` asks each candidate method to predict answers it has not seen. In each of ``n_folds``
folds it hides one answer, drawn at random, of every task that has two or more, fits every candidate on
the rest and scores each hidden answer ``l`` of worker ``w`` on task ``t`` by

.. math:: P(l \\mid \\text{rest}) = \\sum_k q_t(k)^{1/T} / Z \\; \\pi_w[k, l]

where :math:`q_t` is the candidate's posterior for task ``t`` from the other answers, and :math:`\\pi_w` the
worker's confusion matrix estimated from that candidate's posteriors on the answers it saw (one Dawid-Skene
M-step, each row shrunk toward the crowd's pooled row, so a worker whose every answer was hidden is the
average worker). Every candidate is judged by the same worker model, so the score compares posteriors:
a method that recovers the truth better explains the answers it did not see. :math:`T`, a temperature
per candidate, is fitted on the same held-out answers; the chosen method's :math:`T` tempers its
posterior, so the reported confidence is as sharp as held-out answers support and no sharper than the
model's own posterior (``min_temperature``).

The incumbent, ``"default"`` (:func:`labelwright.quality.categorical.categorical_scores`, what
:func:`~labelwright.quality.aggregate` reports), is kept unless a challenger predicts the held-out answers
better by ``min_z`` standard errors of the paired difference: on a small project a handful of answers
cannot overturn it, and below ``min_observations`` held-out observations none is tried (on 30 items x 3
answers a sharp model such as one-coin Dawid-Skene can win by z = 7 on 60 held-out answers and then
score every 2-1 split 1.0). With gold answers for at least ``MIN_GOLD`` tasks, each candidate also predicts the
gold labels it was not given (two folds); those log-likelihoods join the answers' in the comparison (one
observation per gold task, so a handful of gold cannot outweigh thousands of answers) and the temperature
is fitted on gold instead. Ground truth beyond the caller's gold is never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labelwright.quality._data import CATEGORICAL_COLUMNS, Annotations, check_columns, encode
from labelwright.quality.base import CategoricalAggregator
from labelwright.quality.categorical import MIN_GOLD, categorical_scores
from labelwright.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from labelwright.quality.errors import QualityInputError
from labelwright.quality.glad import GLAD
from labelwright.quality.mace import MACE
from labelwright.quality.majority_vote import MajorityVote, Wawa

__all__ = ["CANDIDATES", "MIN_MAJORITY_AGREEMENT", "AutoSelect", "select_proba"]

Fit = Callable[[pd.DataFrame, "pd.Series | None"], pd.DataFrame]
_FLOOR = 1e-12
_SAME = 1e-6  # mean log-likelihood differences below this are rounding
MIN_MAJORITY_AGREEMENT = 2 / 3  # a candidate must agree with at least two thirds of the clear majorities
_TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(16.0), 49))


def _default(data: pd.DataFrame, gold: pd.Series | None) -> pd.DataFrame:
    scores, _ = categorical_scores(data, gold)
    z = scores.to_numpy() - scores.to_numpy().max(axis=1, keepdims=True)
    p = np.exp(z)
    return pd.DataFrame(p / p.sum(axis=1, keepdims=True), index=scores.index, columns=scores.columns)


CANDIDATES: dict[str, Fit] = {  # name -> fit(data, gold) returning posteriors (tasks x labels)
    "default": _default,
    "DawidSkene": lambda d, g: DawidSkene(tol=1e-6, prior=2.0, held_out=True).fit_predict_proba(d, g),
    "OneCoinDawidSkene": lambda d, g: OneCoinDawidSkene().fit_predict_proba(d, g),
    "GLAD": lambda d, g: GLAD().fit_predict_proba(d, g),
    "MACE": lambda d, g: MACE().fit_predict_proba(d, g),
    "Wawa": lambda d, g: Wawa().fit_predict_proba(d, g),
    "MajorityVote": lambda d, g: MajorityVote().fit_predict_proba(d, g),
}


def _tempered(log_q: np.ndarray, temperature: float) -> np.ndarray:
    z = log_q / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def _best_temperature(log_q: np.ndarray, like: np.ndarray, low: float,
                      prior_sd: float) -> tuple[float, np.ndarray]:
    """The temperature (at least ``low``) of highest posterior: sum(log(tempered q . like)) plus a normal
    prior on log T (sd ``prior_sd``), so a few observations cannot fit an extreme one; and the per-row
    log-likelihood at it."""
    best_t, best, best_rows = 1.0, -np.inf, np.zeros(len(log_q))
    for t in _TEMPERATURES[_TEMPERATURES >= low * (1 - 1e-9)]:
        rows = np.log(np.clip((_tempered(log_q, t) * like).sum(axis=1), _FLOOR, None))
        value = rows.sum() - 0.5 * (np.log(t) / prior_sd) ** 2
        if value > best:
            best_t, best, best_rows = float(t), float(value), rows
    return best_t, best_rows


def _hide_one_per_task(ann: Annotations, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask over answers: one random answer of every task that has at least two (the draw does not
    depend on the order of the rows)."""
    order = np.lexsort((ann.label, ann.worker, ann.task))[rng.permutation(len(ann.task))]
    first = np.zeros(len(ann.task), dtype=bool)
    _, at = np.unique(ann.task[order], return_index=True)
    first[order[at]] = True
    return first & (np.bincount(ann.task, minlength=ann.n_tasks)[ann.task] >= 2)


@dataclass(repr=False)
class AutoSelect(CategoricalAggregator):
    r"""Pick, per question, the candidate method that best predicts held-out answers; temper its confidence.

    See the module docstring for the procedure. ``candidates`` names entries of :data:`CANDIDATES`
    (``"default"`` must be among them: it is the incumbent); ``shrinkage`` is the pseudo-answers per
    confusion row of the predictive worker model; ``min_temperature`` keeps the confidence from being
    sharpened beyond the chosen model's posterior (1.0; lower it to allow sharpening);
    ``temperature_prior`` is the standard deviation of the normal prior on the log temperature (0.5: a
    temperature of 2 needs the held-out evidence to pay for it, which a few dozen answers cannot).

    Fitted: ``probas_``, ``labels_``, ``chosen_`` (the candidate's name), ``scores_`` (DataFrame per
    candidate: ``loglik`` per held-out observation, ``temperature``, ``z`` against the default, ``answers``
    and ``gold`` observations), ``temperature_``, ``reason_`` (a sentence for people) and ``method_`` (a
    short label for exports; also ``probas_.attrs["method"]``, with ``attrs["reason"]``).

    Model choice by held-out likelihood: A. Gelman, J. Hwang and A. Vehtari. Understanding predictive
    information criteria for Bayesian models. *Statistics and Computing* 24, 2014; temperature scaling:
    C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger. On calibration of modern neural networks. *ICML* 2017.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"), "label": list("xxyyyy")})
        >>> AutoSelect().fit(df).chosen_
        'default'
    """

    candidates: tuple[str, ...] = tuple(CANDIDATES)
    n_folds: int = 2
    min_z: float = 2.0
    min_observations: int = 200
    shrinkage: float = 5.0
    min_temperature: float = 1.0
    temperature_prior: float = 0.5
    random_state: int | None = 0

    chosen_: str = field(init=False)
    reason_: str = field(init=False)
    method_: str = field(init=False)
    temperature_: float = field(init=False)
    scores_: pd.DataFrame = field(init=False)

    def fit(self, data: pd.DataFrame, gold: pd.Series | dict | None = None) -> AutoSelect:
        data = check_columns(data, CATEGORICAL_COLUMNS)
        gold = pd.Series(gold, dtype=object) if isinstance(gold, dict) else gold
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or "default" not in self.candidates:
            raise QualityInputError(f"candidates must include 'default' and come from {', '.join(CANDIDATES)};"
                             f" got {', '.join(self.candidates)}")
        ann, gold_tasks, gold_labels = encode(data, gold)
        rng = np.random.default_rng(self.random_state)
        self._full: dict[str, np.ndarray] = {}
        obs: dict[str, list[np.ndarray]] = {c: [] for c in self.candidates}
        log_qs: dict[str, list[np.ndarray]] = {c: [] for c in self.candidates}
        for _ in range(self.n_folds if ann.n_labels > 1 else 0):
            hidden = _hide_one_per_task(ann, rng)
            if not hidden.any():
                break
            train = data.iloc[np.flatnonzero(~hidden)]
            for name in self.candidates:
                q = self._posterior(name, train, gold, ann)
                log_qs[name].append(np.log(np.clip(q[ann.task[hidden]], _FLOOR, None)))
                obs[name].append(self._answer_likelihood(ann, q, ~hidden, hidden))
        n_answers = sum(len(x) for x in log_qs["default"])
        scores, temps = {}, {}
        for name in self.candidates:
            rows = np.empty(0)
            temps[name] = 1.0
            if n_answers:
                # obs holds the (answers, labels) likelihood columns; fit T on all folds together
                t, rows = _best_temperature(np.concatenate(log_qs[name]), np.concatenate(obs[name]),
                                            self.min_temperature, self.temperature_prior)
                temps[name] = t
            scores[name] = rows
        n_gold = len(gold_tasks)
        if n_gold >= MIN_GOLD and ann.n_labels > 1:
            gold_rows = self._gold_observations(data, ann, gold_tasks, gold_labels, rng)
            for name in self.candidates:
                log_q, like = gold_rows[name]
                t, rows = _best_temperature(log_q, like, self.min_temperature, self.temperature_prior)
                temps[name] = t
                scores[name] = np.concatenate([scores[name], rows])
        else:
            n_gold = 0
        self._observations = n_answers + n_gold
        self.scores_ = self._table(scores, temps, n_answers, n_gold)
        self.scores_["majority"] = self._majority_agreement(data, gold, ann)
        self.chosen_ = self._choose()
        self.temperature_ = temps[self.chosen_]
        q = self._full[self.chosen_]
        probas = _tempered(np.log(np.clip(q, _FLOOR, None)), self.temperature_)
        if len(gold_tasks):
            probas[gold_tasks] = 0.0
            probas[gold_tasks, gold_labels] = 1.0
        self._set_result(ann, probas)
        self.method_, self.reason_ = self._explain(n_answers, n_gold)
        self.probas_.attrs["method"] = self.method_
        self.probas_.attrs["reason"] = self.reason_
        return self

    # ---- the parts ------------------------------------------------------------------------------

    def _posterior(self, name: str, data: pd.DataFrame, gold: pd.Series | None, ann: Annotations) -> np.ndarray:
        """Candidate ``name``'s posterior on ``data``, as a (tasks x labels) array on ``ann``'s codes."""
        probas = CANDIDATES[name](data, gold).reindex(index=ann.tasks, columns=ann.labels).fillna(0.0)
        q = probas.to_numpy(dtype=float, copy=True)
        empty = q.sum(axis=1) <= 0
        q[empty] = 1.0 / ann.n_labels
        return q / q.sum(axis=1, keepdims=True)

    def _answer_likelihood(self, ann: Annotations, q: np.ndarray, seen: np.ndarray,
                           hidden: np.ndarray) -> np.ndarray:
        """For each hidden answer, P(its label | true label k) under the workers' confusion matrices fitted
        to ``q`` on the ``seen`` answers: an (hidden answers x labels) array."""
        k, n_workers = ann.n_labels, ann.n_workers
        w, lab, t = ann.worker[seen], ann.label[seen], ann.task[seen]
        counts = np.stack([np.bincount(w * k + lab, weights=q[t, c], minlength=n_workers * k)
                           for c in range(k)]).reshape(k, n_workers, k)  # (true, worker, answer)
        pooled = counts.sum(axis=1) + 1.0 / k
        pooled /= pooled.sum(axis=1, keepdims=True)
        conf = counts + self.shrinkage * pooled[:, None, :]
        conf /= conf.sum(axis=2, keepdims=True)
        return conf[:, ann.worker[hidden], ann.label[hidden]].T

    def _gold_observations(self, data: pd.DataFrame, ann: Annotations,
                           gold_tasks: np.ndarray, gold_labels: np.ndarray,
                           rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per candidate: log-posteriors of each gold task from a fit that did not see its gold, and the
        one-hot likelihood of its gold label (two folds)."""
        fold = rng.permutation(len(gold_tasks)) % 2
        codes = pd.Series(ann.labels.to_numpy()[gold_labels], index=ann.tasks[gold_tasks])
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        like = np.eye(ann.n_labels)[np.concatenate([gold_labels[fold == f] for f in (0, 1)])]
        for name in self.candidates:
            parts = []
            for f in (0, 1):
                q = self._posterior(name, data, codes[fold != f], ann)
                parts.append(np.log(np.clip(q[gold_tasks[fold == f]], _FLOOR, None)))
            out[name] = (np.concatenate(parts), like)
        return out

    def _table(self, scores: dict[str, np.ndarray], temps: dict[str, float], n_answers: int,
               n_gold: int) -> pd.DataFrame:
        base = scores["default"]
        rows = []
        for name in self.candidates:
            diff = scores[name] - base
            sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
            # the same posterior (the default is Dawid-Skene on dense data) differs by rounding only
            same = not len(diff) or abs(diff.mean()) < _SAME
            z = 0.0 if same or sd == 0 else float(diff.mean() / sd * np.sqrt(len(diff)))
            rows.append({"method": name, "loglik": float(scores[name].mean()) if len(base) else np.nan,
                         "temperature": temps[name], "z": z, "answers": n_answers, "gold": n_gold})
        return pd.DataFrame(rows).set_index("method")

    def _majority_agreement(self, data: pd.DataFrame, gold: pd.Series | None, ann: Annotations) -> pd.Series:
        """Per candidate, the share of tasks with a strict majority whose label it agrees with. Held-out
        likelihood cannot tell a posterior from one with its labels swapped or collapsed onto one label (the
        workers' confusion matrices follow it), so a candidate that overturns more than a third of the clear
        majorities is taken to have done that, and is not chosen."""
        counts = ann.counts()
        top = np.sort(counts, axis=1)
        clear = top[:, -1] > top[:, -2] if ann.n_labels > 1 else np.ones(ann.n_tasks, dtype=bool)
        majority = counts.argmax(axis=1)
        out = {}
        for name in self.candidates:
            q = self._posterior(name, data, gold, ann)
            self._full[name] = q
            out[name] = float((q.argmax(axis=1) == majority)[clear].mean()) if clear.any() else 1.0
        return pd.Series(out)

    def _choose(self) -> str:
        table = self.scores_
        plausible = table[table["majority"] >= MIN_MAJORITY_AGREEMENT]
        if "default" not in plausible.index:
            if plausible.empty or plausible["loglik"].isna().all():
                return str(table["majority"].idxmax())
            return str(plausible["loglik"].idxmax())
        if self._observations < self.min_observations:
            return "default"  # too few held-out observations to overturn the incumbent (see the module docstring)
        better = plausible[(plausible["z"] >= self.min_z) & (plausible["loglik"] > table.loc["default", "loglik"])]
        return "default" if better.empty else str(better["loglik"].idxmax())

    def _explain(self, n_answers: int, n_gold: int) -> tuple[str, str]:
        table = self.scores_
        where = f"{n_answers:,} held-out answers" + (f" and {n_gold:,} held-out gold labels" if n_gold else "")
        source = "gold" if n_gold else "held-out answers"
        temper = (f"; confidence tempered by {self.temperature_:.3g} (fitted on {source})"
                  if self.temperature_ != 1.0 else "")
        method = f"AutoSelect: {self.chosen_}" + (f", temperature {self.temperature_:.3g} from {source}"
                                                  if self.temperature_ != 1.0 else "")
        if not n_answers and not n_gold:
            return method, ("the default method: no task has two answers, so no answer could be held out"
                            " to compare methods" + temper)
        mine, base = table.loc[self.chosen_], table.loc["default"]
        if base["majority"] < MIN_MAJORITY_AGREEMENT:
            return method, (f"{self.chosen_}: the default agreed with only {base['majority']:.0%} of the clear"
                            " majorities (its labels look swapped or collapsed), and of the methods that agree"
                            f" with most, {self.chosen_} predicted the {where} best (log-likelihood per observation"
                            f" {mine['loglik']:.4f})" + temper)
        best = table.drop(index="default")["loglik"].idxmax() if len(table) > 1 else "default"
        if self.chosen_ == "default" and n_answers + n_gold < self.min_observations:
            return method, (f"the default method: {where} are too few to choose another (at least"
                            f" {self.min_observations:,} needed)" + temper)
        if self.chosen_ == "default":
            challenger = table.loc[best] if best != "default" else base
            return method, (f"the default method: no other method predicted the {where} significantly better"
                            f" (closest: {best}, log-likelihood {challenger['loglik']:.4f} against"
                            f" {base['loglik']:.4f}, z = {challenger['z']:.1f} of {self.min_z:g} needed)" + temper)
        return method, (f"{self.chosen_}: it predicted the {where} best (log-likelihood per observation"
                        f" {mine['loglik']:.4f} against the default's {base['loglik']:.4f}, z = {mine['z']:.1f})"
                        + temper)


def select_proba(data: pd.DataFrame, gold: pd.Series | dict | None = None, *,
                 random_state: int | None = 0) -> pd.DataFrame:
    """:class:`AutoSelect`'s probabilities (tasks x labels), a drop-in for
    :func:`~labelwright.quality.categorical.aggregate_proba`: ``attrs["method"]`` names the chosen method
    and ``attrs["reason"]`` says why."""
    return AutoSelect(random_state=random_state).fit(data, gold).probas_
