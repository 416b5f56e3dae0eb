"""A label model for labelling functions (rules) and people together, fitted by EM.

Rules vote on every task or abstain; in the long table an abstention is simply a missing row, so a rule's
silence is data (``keyword_subscribe`` not firing is weak evidence of ham). People answer only the tasks
they were given, so their missing rows say nothing. :class:`LabelModel` models both in one likelihood.
:func:`lf_analysis` is the table a person reads before trusting rules: coverage, overlap, conflict and
empirical accuracy per worker.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labelwright.quality._data import CATEGORICAL_COLUMNS, check_columns, normalize_log, sorted_index
from labelwright.quality.base import CategoricalAggregator
from labelwright.quality.errors import QualityInputError

__all__ = ["LabelModel", "lf_analysis"]

_EPS = 1e-10


@dataclass(frozen=True)
class _Votes:
    """A long table as integer codes over every task (including tasks no rule voted on)."""

    tasks: pd.Index
    workers: pd.Index
    labels: pd.Index
    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    is_rule: np.ndarray  # per worker

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.tasks), len(self.workers), len(self.labels)


def _plain(value):
    """A numpy scalar as the Python value it holds, so messages read 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_series(values, what: str) -> pd.Series | None:
    if values is None:
        return None
    if isinstance(values, Mapping):
        values = pd.Series(dict(values), dtype=object)
    if not isinstance(values, pd.Series):
        raise QualityInputError(f"{what} must be a pandas Series (or dict) from task to label; "
                                f"got {type(values).__name__}")
    values = values[values.notna()]
    if values.index.has_duplicates:
        dup = values.index[values.index.duplicated()][0]
        raise QualityInputError(f"{what} gives task {_plain(dup)!r} more than one label; keep one per task")
    return values


def _votes(data: object, *, tasks: Iterable | None = None, people: Collection = (), classes=None,
           extra_labels: Iterable = (), workers: pd.Index | None = None,
           labels: pd.Index | None = None) -> _Votes:
    """Encode ``data``; ``workers``/``labels`` given means "use the fitted ones" (a new worker is an error)."""
    if isinstance(data, pd.DataFrame) and not len(data) and tasks is not None:
        df = data.reindex(columns=list(CATEGORICAL_COLUMNS))  # every rule abstained on every task
    else:
        df = check_columns(data, CATEGORICAL_COLUMNS)
    dup = df.duplicated(["task", "worker"])
    if dup.any():
        row = df[dup].iloc[0]
        raise QualityInputError(
            f"worker {_plain(row['worker'])!r} votes more than once on task {_plain(row['task'])!r} "
            f"(row {_plain(df.index[dup][0])!r}); "
            "a rule or person gives one label per task: drop the repeats")
    pool = [df["task"]] if tasks is None else [df["task"], pd.Series(list(tasks), dtype=object)]
    task_index = sorted_index(pd.concat(pool, ignore_index=True))
    if workers is None:
        workers = sorted_index(df["worker"])
        unknown = [p for p in people if p not in set(workers)]
        if unknown:
            raise QualityInputError(f"people names {unknown[0]!r}, who gave no answer in the data; "
                                    "list only workers that appear in the 'worker' column")
    if labels is None:
        pool = [df["label"], pd.Series(list(extra_labels), dtype=object)]
        if classes is not None:
            pool.append(pd.Series(list(classes), dtype=object))
        labels = sorted_index(pd.concat(pool, ignore_index=True))
    worker_codes = workers.get_indexer(df["worker"])
    label_codes = labels.get_indexer(df["label"])
    for codes, column, known in ((worker_codes, "worker", workers), (label_codes, "label", labels)):
        if (codes < 0).any():
            bad = df[column].to_numpy()[codes < 0][0]
            raise QualityInputError(f"{column} {_plain(bad)!r} was not seen when the model was fitted "
                                    f"(it knows {', '.join(map(repr, known[:10]))}); refit with it")
    people_set = set(people)
    is_rule = np.array([w not in people_set for w in workers], dtype=bool)
    return _Votes(pd.Index(task_index, name="task"), pd.Index(workers, name="worker"),
                  pd.Index(labels, name="label"), task_index.get_indexer(df["task"]).astype(np.int64),
                  worker_codes.astype(np.int64), label_codes.astype(np.int64), is_rule)


@dataclass(repr=False)
class LabelModel(CategoricalAggregator):
    r"""A generative label model: labelling functions (rules) and people as noisy voters on a hidden label.

    The true label :math:`y_i` of task *i* is drawn from the class balance :math:`p`. A **rule** *j* votes
    on every task: it abstains or gives label *l* with probability :math:`\theta_j[y, \cdot]`, a row over
    the *K* labels and "abstain" (a missing row in ``data`` is an abstention). A **person** (named in
    ``fit(..., people=...)``) has a Dawid-Skene confusion matrix over the *K* labels and is only modelled
    on the tasks they answered; a person's answer on a task nobody else labelled (no other vote, no gold)
    is not fitted on, since it cannot say how good that person is. Votes are independent given :math:`y`;
    :math:`\theta`, the confusion matrices (and, with ``class_balance="estimate"``, :math:`p`) are fitted
    by EM from majority vote.

    What keeps it stable on real rules, which are neither independent nor symmetric:

    * ``prior``: each row gets ``prior`` pseudo-tasks of a modest rule that gives each of this rule's
      labels as often as it does overall and, when it votes, is right with probability
      ``prior_accuracy`` (people: a modest annotator, as in :class:`DawidSkene`'s ``prior``);
    * ``better_than_chance``: a rule's vote for *l* is at least as likely when the truth is *l* as when
      it is not (rules are written to be right; without it EM may decide a rule is adversarial). Where
      the data say otherwise the rule's rates are pooled, which makes that vote uninformative;
    * ``abstain_weight``: how much an abstention counts as evidence, in fitting and in prediction alike.
      1 is the plain likelihood; 0 ignores abstentions, as Snorkel's ``predict_proba`` does. Rules that
      cover different kinds of spam abstain together, which the independence assumption overcounts; the
      default halves that evidence;
    * ``class_balance``: ``"votes"`` (the default: each label's share of the votes, every task with a vote
      counting once and a gold label replacing its task's votes; fixed, not re-estimated; the prior of the
      tasks no rule voted on, while tasks a rule voted on take a uniform one, unless ``abstain_weight`` is
      0, since the share was made from those same votes and leans towards the labels whose rules fire
      most), ``"uniform"``
      (Snorkel's default), ``"estimate"`` (learnt by EM, the Dawid-Skene choice), or a mapping from label to
      probability. None is safe everywhere (see docs/benchmarks.md, "Label model vs Snorkel"): an estimated
      balance drifts onto spam on YouTube's rules (0.74 on its training comments against 0.84), and a uniform
      one lets the abstentions alone decide the uncovered half of a 6-class set, piling them all onto one
      class (TREC: 0.25 or 0.41 on test, depending on the training questions, against 0.64 with the votes'
      share), and the votes' share as every task's prior outvoted weak rules (movie-review polarity: 0.74
      against 0.77 on the training tasks a rule voted on).
      ``"estimate"`` suits people with several answers per task; with lone answers it drifts (see
      docs/quality.md, "Mixing people and rules"). A labelled validation set can choose, if it is drawn
      like the items to be labelled.

    ``fit(data, gold=None, *, tasks=None, people=(), classes=None)``: ``tasks`` lists every task,
    including those no rule voted on (they get a prediction too, from the abstentions and the class
    balance); ``people`` names the workers who are people; ``classes`` adds labels no one gave. Gold
    answers fix their tasks' posteriors in every E-step. :meth:`predict_proba` applies a fitted model
    to new votes by the same workers (WRENCH's protocol: fit on train, predict test).

    Fitted: ``probas_``, ``labels_`` (ties to the smallest label), ``priors_``, ``confusion_`` (indexed by
    (worker, true label); one column per label and ``abstain_`` beside it for rules), ``skills_`` (each
    worker's accuracy when they vote, under ``priors_``), ``rules_``, ``loss_history_``, ``n_iter_``.

    A. Ratner, C. De Sa, S. Wu, D. Selsam and C. Ré. Data programming: creating large training sets,
    quickly. *NeurIPS* 2016. A. P. Dawid and A. M. Skene, *JRSS C* 28(1), 1979.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 2, 3, 1, 4, 5, 1, 4, 6],
        ...                    "worker": ["link"] * 3 + ["short"] * 3 + ["ana"] * 3,
        ...                    "label": ["spam"] * 3 + ["ham"] * 3 + ["spam", "ham", "spam"]})
        >>> LabelModel().fit_predict(df, tasks=range(1, 8), people=["ana"]).tolist()
        ['spam', 'spam', 'spam', 'ham', 'ham', 'spam', 'spam']
    """

    n_iter: int = 200
    tol: float = 1e-7
    prior: float = 2.0
    prior_accuracy: float = 0.7
    abstain_weight: float = 0.5
    class_balance: str | Mapping[Any, float] = "votes"
    better_than_chance: bool = True

    def fit(self, data: pd.DataFrame, gold: pd.Series | None = None, *, tasks: Iterable | None = None,
            people: Collection = (), classes=None) -> LabelModel:
        self._check_hyperparameters()
        gold = _as_series(gold, "gold")
        votes = _votes(data, tasks=tasks, people=people, classes=classes,
                       extra_labels=() if gold is None else gold.to_numpy())
        n_tasks, n_workers, k = votes.shape
        gold_tasks = votes.tasks.get_indexer(gold.index) if gold is not None else np.empty(0, np.int64)
        keep = gold_tasks >= 0
        gold_tasks = gold_tasks[keep]
        gold_labels = votes.labels.get_indexer(gold.to_numpy()[keep]) if gold is not None else gold_tasks
        raw = np.bincount(votes.task * k + votes.label, minlength=n_tasks * k).reshape(n_tasks, k)
        fixed_balance = self._fixed_balance(votes.labels, raw, gold_tasks, gold_labels)
        ruled_uniform = self._ruled_uniform()
        counts = raw + 1e-3
        probas = _clamp(counts / counts.sum(axis=1, keepdims=True), gold_tasks, gold_labels)
        pseudo = self._pseudo(votes)
        counted = _counted(votes, gold_tasks)
        self.loss_history_: list[float] = []
        last = -np.inf
        for _iteration in range(self.n_iter):
            priors = fixed_balance if fixed_balance is not None else _balance(probas)
            theta = self._m_step(votes, probas, pseudo, counted)
            probas, loglik = normalize_log(_log_scores(votes, theta, priors, self.abstain_weight, ruled_uniform))
            _clamp(probas, gold_tasks, gold_labels)
            loss = loglik / max(n_tasks, 1)
            self.loss_history_.append(loss)
            if abs(loss - last) < self.tol:
                break
            last = loss
        self.n_iter_ = len(self.loss_history_)
        self._theta, self._priors, self._fitted = theta, priors, votes
        self._set_attributes(votes, theta, priors)
        self.probas_ = pd.DataFrame(probas, index=votes.tasks, columns=votes.labels)
        self.labels_ = pd.Series(votes.labels.to_numpy()[probas.argmax(axis=1)], index=votes.tasks, name="label")
        return self

    def fit_predict(self, data: pd.DataFrame, gold: pd.Series | None = None, **kwargs) -> pd.Series:
        """Fit on ``data`` (keywords as in :meth:`fit`) and return the label of each task."""
        return self.fit(data, gold, **kwargs).labels_

    def fit_predict_proba(self, data: pd.DataFrame, gold: pd.Series | None = None, **kwargs) -> pd.DataFrame:
        """Fit on ``data`` (keywords as in :meth:`fit`) and return each task's probability for each label."""
        return self.fit(data, gold, **kwargs).probas_

    def predict_proba(self, data: pd.DataFrame, *, tasks: Iterable | None = None) -> pd.DataFrame:
        """Posteriors for new votes by the fitted workers (``tasks`` as in :meth:`fit`), with the fitted model."""
        if not hasattr(self, "_theta"):
            raise QualityInputError("this LabelModel is not fitted yet: call fit() first")
        fitted = self._fitted
        people = [w for w, rule in zip(fitted.workers, fitted.is_rule) if not rule]
        votes = _votes(data, tasks=tasks, people=people, workers=fitted.workers, labels=fitted.labels)
        probas, _ = normalize_log(_log_scores(votes, self._theta, self._priors, self.abstain_weight,
                                              self._ruled_uniform()))
        return pd.DataFrame(probas, index=votes.tasks, columns=votes.labels)

    def predict(self, data: pd.DataFrame, *, tasks: Iterable | None = None) -> pd.Series:
        """The most probable label per task for new votes (ties to the smallest label)."""
        probas = self.predict_proba(data, tasks=tasks)
        return pd.Series(probas.columns.to_numpy()[probas.to_numpy().argmax(axis=1)], index=probas.index,
                         name="label")

    # -- the model's parts -------------------------------------------------------------------------------

    def _check_hyperparameters(self) -> None:
        if not 0.0 <= self.abstain_weight <= 1.0:
            raise QualityInputError(f"abstain_weight must be between 0 and 1; got {self.abstain_weight!r}")
        if self.prior < 0:
            raise QualityInputError(f"prior must be 0 or more pseudo-tasks; got {self.prior!r}")
        if not 0.0 < self.prior_accuracy < 1.0:
            raise QualityInputError(f"prior_accuracy must be between 0 and 1; got {self.prior_accuracy!r}")
        if isinstance(self.class_balance, str) and self.class_balance not in ("votes", "uniform", "estimate"):
            raise QualityInputError(f"class_balance must be 'votes', 'uniform', 'estimate' or a mapping from label to "
                                    f"probability; got {self.class_balance!r}")

    def _ruled_uniform(self) -> bool:
        """Whether tasks a rule voted on take a uniform prior: with the votes' share as the balance, made
        from those same votes, and abstentions counting as evidence (without them, nothing stops one class
        from taking every task a rule voted on: unipolar rules are told apart only by when they fire)."""
        return isinstance(self.class_balance, str) and self.class_balance == "votes" and self.abstain_weight > 0

    def _fixed_balance(self, labels: pd.Index, counts: np.ndarray, gold_tasks: np.ndarray,
                       gold_labels: np.ndarray) -> np.ndarray | None:
        k = len(labels)
        if self.class_balance == "estimate":
            return None
        if self.class_balance == "uniform":
            return np.full(k, 1.0 / k)
        if self.class_balance == "votes":
            return _vote_balance(counts, gold_tasks, gold_labels)
        balance = dict(self.class_balance)  # type: ignore[arg-type]
        unknown = [label for label in balance if label not in set(labels)]
        if unknown:
            raise QualityInputError(f"class_balance names label {unknown[0]!r}, which is not among the labels "
                                    f"{', '.join(map(repr, labels))}; pass it in classes= or drop it")
        p = np.array([float(balance.get(label, 0.0)) for label in labels])
        if (p < 0).any() or p.sum() <= 0:
            raise QualityInputError("class_balance needs probabilities of 0 or more that do not all vanish")
        return np.clip(p / p.sum(), _EPS, None)

    def _pseudo(self, votes: _Votes) -> np.ndarray:
        """Pseudo-counts (worker, true label, outcome): outcome 0 is abstain, outcome l + 1 is label l.

        A rule's prior row y gives label l with probability ``rate[l] * K * acc[y, l]``, where ``rate[l]``
        is how often the rule gives l overall and ``acc`` is ``prior_accuracy`` on the diagonal: averaged
        over the classes it votes as often as the rule does, only for the labels it gives, and when it
        votes l it is right with probability ``prior_accuracy``. A person's row is ``acc[y]``."""
        n_tasks, n_workers, k = votes.shape
        acc = np.full((k, k), (1 - self.prior_accuracy) / max(k - 1, 1))
        np.fill_diagonal(acc, self.prior_accuracy if k > 1 else 1.0)
        rate = np.bincount(votes.worker * k + votes.label, minlength=n_workers * k).reshape(n_workers, k)
        rows = rate[:, None, :] / max(n_tasks, 1) * k * acc[None]  # (worker, y, label)
        rows /= np.clip(rows.sum(axis=2, keepdims=True), 1.0, None)
        rows[~votes.is_rule] = acc
        pseudo = np.zeros((n_workers, k, k + 1))
        pseudo[:, :, 1:] = self.prior * rows
        pseudo[:, :, 0] = np.where(votes.is_rule[:, None], self.prior * (1 - rows.sum(axis=2)), 0.0)
        return pseudo

    def _m_step(self, votes: _Votes, probas: np.ndarray, pseudo: np.ndarray,
                counted: np.ndarray | None = None) -> np.ndarray:
        """theta[w, y, outcome]: each rule's row sums to 1 over abstain and labels, each person's over labels.

        ``counted``: per vote, whether it counts (a person's lone answer does not: see :meth:`fit`)."""
        n_tasks, n_workers, k = votes.shape
        cell = votes.worker * (k + 1) + votes.label + 1
        counts = np.stack([np.bincount(cell, weights=probas[votes.task, c] if counted is None
                                       else probas[votes.task, c] * counted, minlength=n_workers * (k + 1))
                           for c in range(k)], axis=1).reshape(n_workers, k + 1, k).transpose(0, 2, 1)
        # a rule abstained on every task it did not vote on
        counts[:, :, 0] = np.where(votes.is_rule[:, None], probas.sum(axis=0)[None, :] - counts[:, :, 1:].sum(2), 0.0)
        theta = np.clip(counts + pseudo, 0.0, None)
        theta[~votes.is_rule, :, 0] = 0.0
        theta /= np.clip(theta.sum(axis=2, keepdims=True), _EPS, None)
        if self.better_than_chance and k > 1:
            _pool_violations(theta, votes.is_rule)
        return theta

    def _set_attributes(self, votes: _Votes, theta: np.ndarray, priors: np.ndarray) -> None:
        _, n_workers, k = votes.shape
        self.priors_ = pd.Series(priors, index=votes.labels, name="prior")
        index = pd.MultiIndex.from_product([votes.workers, votes.labels], names=["worker", "label"])
        confusion = pd.DataFrame(theta[:, :, 1:].reshape(n_workers * k, k), index=index, columns=votes.labels)
        confusion["abstain_"] = np.where(np.repeat(votes.is_rule, k), theta[:, :, 0].ravel(), np.nan)
        self.confusion_ = confusion
        voted = priors[None, :] * (1 - theta[:, :, 0])
        right = np.einsum("k,wkk->w", priors, theta[:, :, 1:])
        self.skills_ = pd.Series(right / np.clip(voted.sum(axis=1), _EPS, None), index=votes.workers,
                                 name="skill")
        self.rules_ = votes.workers[votes.is_rule]


def _counted(votes: _Votes, gold_tasks: np.ndarray) -> np.ndarray | None:
    """Per vote, whether the M-step learns from it: not a person's answer on a task with no other vote (by a
    person or a rule) and no gold, which cannot say how good that person is (as ``DawidSkene(overlap_only)``)."""
    n_tasks = len(votes.tasks)
    person = ~votes.is_rule[votes.worker]
    if not person.any():
        return None
    others = np.bincount(votes.task, minlength=n_tasks) >= 2
    others[gold_tasks] = True
    return (~person | others[votes.task]).astype(float)


def _vote_balance(counts: np.ndarray, gold_tasks: np.ndarray, gold_labels: np.ndarray) -> np.ndarray:
    """The share of each label among the votes, each task with a vote (or a gold label) counting once.

    ``counts`` is (tasks, labels) vote counts. A task counts once, shared between its labels in proportion
    to their votes (two spam votes and one ham: 2/3 spam), gold replaces its task's votes, and one pseudo-task
    spread evenly over the labels keeps a label nobody gave possible."""
    k = counts.shape[1]
    share = counts.astype(float)
    if len(gold_tasks):
        share[gold_tasks] = 0.0
        share[gold_tasks, gold_labels] = 1.0
    total = share.sum(axis=1, keepdims=True)
    p = (share / np.where(total > 0, total, 1.0)).sum(axis=0) + 1.0 / k
    return np.clip(p / p.sum(), _EPS, None)


def _balance(probas: np.ndarray) -> np.ndarray:
    p = probas.sum(axis=0)
    return np.clip(p / p.sum(), _EPS, None)


def _clamp(probas: np.ndarray, gold_tasks: np.ndarray, gold_labels: np.ndarray) -> np.ndarray:
    if len(gold_tasks):
        probas[gold_tasks] = 0.0
        probas[gold_tasks, gold_labels] = 1.0
    return probas


def _log_scores(votes: _Votes, theta: np.ndarray, priors: np.ndarray,
                abstain_weight: float, ruled_uniform: bool = False) -> np.ndarray:
    """Unnormalised log posteriors (tasks, labels): log p(y) plus every rule's and person's log-likelihood.

    ``ruled_uniform``: tasks a rule voted on take a uniform prior instead of ``priors`` (the votes' share,
    which those same votes made)."""
    n_tasks, n_workers, k = votes.shape
    log_theta = np.log(np.clip(theta, _EPS, None))
    log_abstain = np.where(votes.is_rule[:, None], log_theta[:, :, 0], 0.0) * abstain_weight  # (worker, y)
    # a vote replaces its rule's abstention: log theta[w, y, l] - w * log theta[w, y, abstain]
    per_vote = log_theta[votes.worker, :, votes.label + 1] - log_abstain[votes.worker]
    log_post = np.stack([np.bincount(votes.task, weights=per_vote[:, c], minlength=n_tasks) for c in range(k)],
                        axis=1).astype(float)  # (bincount of no votes at all is an integer array)
    log_prior = np.log(priors)[None, :]
    if ruled_uniform:
        ruled = np.bincount(votes.task, weights=votes.is_rule[votes.worker], minlength=n_tasks) > 0
        log_prior = np.where(ruled[:, None], -np.log(k), log_prior)
    log_post += log_abstain.sum(axis=0)[None, :] + log_prior
    return log_post


def _pool_violations(theta: np.ndarray, is_rule: np.ndarray) -> None:
    """In place: for each rule and label l, P(vote l | y = l) >= P(vote l | y = c); violators are pooled
    with the diagonal at their mean (the vote becomes uninformative between them), abstain takes up the rest."""
    k = theta.shape[1]
    for w in np.flatnonzero(is_rule):
        for label in range(k):
            rates = theta[w, :, label + 1]
            above = rates > rates[label]
            if not above.any():
                continue
            order = np.argsort(-rates)
            group = [label]
            for c in order:  # add the largest violators while they exceed the group's mean
                if c != label and above[c] and rates[c] > rates[group].mean():
                    group.append(int(c))
            mean = rates[group].mean()
            theta[w, group, label + 1] = mean
        theta[w, :, 0] = np.clip(1 - theta[w, :, 1:].sum(axis=1), _EPS, None)
        theta[w] /= theta[w].sum(axis=1, keepdims=True)


def lf_analysis(data: pd.DataFrame, gold: pd.Series | Mapping | None = None,
                reference: pd.Series | Mapping | None = None, *, tasks: Iterable | None = None) -> pd.DataFrame:
    """Per worker (rule or person): what they label and how well, Snorkel's ``LFAnalysis`` in long format.

    Columns, with *N* the number of tasks (those in ``data`` and in ``tasks``, for tasks every rule
    abstained on):

    * ``polarity``: the sorted labels the worker gave; ``votes``: how many tasks they voted on;
    * ``coverage``: the share of the *N* tasks they voted on;
    * ``overlap``: the share of the *N* tasks they voted on where someone else voted too;
    * ``conflict``: the share of the *N* tasks they voted on where someone else gave a different label;
    * with ``gold`` (task to true label): ``gold_votes`` (their votes on gold tasks), ``gold_correct`` and
      ``gold_accuracy`` (NaN without gold votes);
    * with ``reference`` (task to label, e.g. the people's majority): ``reference_votes``,
      ``reference_accuracy``. A person's agreement with a majority they voted in is inflated by their
      own vote; use it for rules.

    ``result.attrs`` has ``n_tasks`` and ``coverage`` (the share of tasks anyone voted on).
    """
    votes = _votes(data, tasks=tasks)
    n_tasks, n_workers, k = votes.shape
    per_task = np.bincount(votes.task, minlength=n_tasks)
    same = np.bincount(votes.task * k + votes.label, minlength=n_tasks * k)[votes.task * k + votes.label]

    def share(flags: np.ndarray) -> np.ndarray:
        return np.bincount(votes.worker, weights=flags.astype(float), minlength=n_workers) / max(n_tasks, 1)

    n_votes = np.bincount(votes.worker, minlength=n_workers)
    given = np.zeros((n_workers, k), dtype=bool)
    given[votes.worker, votes.label] = True
    labels = votes.labels.to_numpy()
    out = pd.DataFrame({
        "polarity": [labels[row].tolist() for row in given],
        "votes": n_votes,
        "coverage": n_votes / max(n_tasks, 1),
        "overlap": share(per_task[votes.task] > 1),
        "conflict": share(per_task[votes.task] > same),
    }, index=votes.workers)
    for name, truth in (("gold", _as_series(gold, "gold")), ("reference", _as_series(reference, "reference"))):
        if truth is None:
            continue
        truth_values = truth.reindex(votes.tasks).to_numpy()
        known = pd.notna(truth_values)[votes.task]
        hit = known & (truth_values[votes.task] == labels[votes.label])
        counted = np.bincount(votes.worker, weights=known.astype(float), minlength=n_workers)
        correct = np.bincount(votes.worker, weights=hit.astype(float), minlength=n_workers)
        out[f"{name}_votes"] = counted.astype(np.int64)
        if name == "gold":
            out["gold_correct"] = correct.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_accuracy"] = np.where(counted > 0, correct / np.where(counted > 0, counted, 1), np.nan)
    out.attrs["n_tasks"] = n_tasks
    out.attrs["coverage"] = float((per_task > 0).mean()) if n_tasks else 0.0
    return out
