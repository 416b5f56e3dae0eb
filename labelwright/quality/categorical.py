"""The default method for categorical answers: :func:`aggregate_proba` and its parts.

The choice of method below was made on the real crowdsourcing datasets in ``shared/datasets`` (see
docs/benchmarks.md, "Truth inference"); nothing in it looks at ground truth.

Categorical answers:

* When workers answer enough to estimate a full confusion matrix (median answers per worker of at least 10
  per free cell, ``K(K-1)``), the result is :class:`DawidSkene` (maximum likelihood, tight tolerance).
* Otherwise confusion matrices are shrunk toward the crowd's pooled matrix (:class:`DawidSkene` with
  ``shrinkage=5``) and its posterior is pooled with Wawa's agreement-weighted vote shares (the normalised
  geometric mean of the two, a logarithmic opinion pool): sparse workers' matrices are poorly determined,
  and the vote keeps the model from overturning clear majorities on their evidence.
* Either way the workers and the class balance are fitted on the tasks with two or more answers or gold
  (``overlap_only``): a lone answer cannot say how good its worker is, and fitting on lone answers let an
  overlap-1 project's consensus drift away from its answers. The class balance gets ``BALANCE_PRIOR``
  pseudo-tasks per label spread like the answers, so that a few overlapping tasks cannot run it away.

``confidence`` is the posterior probability of ``label``. With gold answers for at least ``MIN_GOLD``
tasks it is recalibrated: a temperature is fitted on the gold tasks, each predicted by a model that did not
see its gold answer (two folds), and gold tasks themselves get confidence 1. Without gold the posterior is
reported as is: it is well calibrated where workers err independently and overconfident where they make
the same mistakes (the benchmark reports both).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelwright.quality._data import CATEGORICAL_COLUMNS, Annotations, check_columns, encode
from labelwright.quality.dawid_skene import DawidSkene
from labelwright.quality.majority_vote import Wawa

MIN_GOLD = 10
DENSE_ANSWERS_PER_CELL = 10.0
PRIOR = 2.0  # pseudo-answers per confusion row of a modest worker (DawidSkene's ``prior``)
VOTE_PSEUDO = 1.0  # pseudo-answers added to the vote shares before pooling
BALANCE_PRIOR = 5.0  # pseudo-tasks per label in the class balance, spread like the answers (``balance_prior``)
_TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(16.0), 49))


def categorical_scores(data: pd.DataFrame, gold: pd.Series | None = None) -> tuple[pd.DataFrame, str]:
    """Unnormalised log posterior per task and label from the default categorical method, and its name."""
    ann, _, _ = encode(data, gold)
    k = ann.n_labels
    if k == 1:
        return pd.DataFrame(0.0, index=ann.tasks, columns=ann.labels), "MajorityVote"
    per_worker = np.bincount(ann.worker, minlength=ann.n_workers)
    if np.median(per_worker) / (k * (k - 1)) >= DENSE_ANSWERS_PER_CELL:
        probas = DawidSkene(tol=1e-6, prior=PRIOR, held_out=True, overlap_only=True,
                            balance_prior=BALANCE_PRIOR).fit_predict_proba(data, gold)
        return np.log(probas.clip(lower=1e-300)), f"DawidSkene(prior={PRIOR:g}, held out)"
    probas = DawidSkene(tol=1e-6, shrinkage=5.0, prior=PRIOR, held_out=True, overlap_only=True,
                        balance_prior=BALANCE_PRIOR).fit_predict_proba(data, gold)
    votes = _smoothed_votes(data, gold, ann).reindex(index=probas.index, columns=probas.columns)
    # a logarithmic opinion pool: both see the same answers, so the evidence is averaged, not added
    scores = (np.log(probas.clip(lower=1e-300)) + np.log(votes)) / 2
    return scores, f"DawidSkene(shrinkage=5, prior={PRIOR:g}, held out)*Wawa"


def _smoothed_votes(data: pd.DataFrame, gold: pd.Series | None, ann: Annotations) -> pd.DataFrame:
    """Wawa's weighted vote shares with VOTE_PSEUDO pseudo-answers spread over the labels: three answers
    out of three are strong evidence, not certainty."""
    shares = Wawa().fit_predict_proba(data, gold)
    n = pd.Series(np.bincount(ann.task, minlength=ann.n_tasks), index=ann.tasks).reindex(shares.index)
    k = shares.shape[1]
    return shares.mul(n, axis=0).add(VOTE_PSEUDO / k).div(n + VOTE_PSEUDO, axis=0)


def _softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def gold_temperature(data: pd.DataFrame, gold: pd.Series, random_state: int | None = 0,
                     n_folds: int = 2) -> float:
    """The temperature that best predicts held-out gold answers (cross-fitted over ``n_folds``)."""
    gold = gold[gold.index.isin(set(data["task"]))]
    rng = np.random.default_rng(random_state)
    fold = rng.permutation(len(gold)) % n_folds
    scores, truth = [], []
    for f in range(n_folds):
        held = gold[fold == f]
        s, _ = categorical_scores(data, gold[fold != f])
        s = s.reindex(held.index)
        codes = s.columns.get_indexer(held.to_numpy())
        keep = codes >= 0
        scores.append(s.to_numpy()[keep])
        truth.append(codes[keep])
    s, y = np.concatenate(scores), np.concatenate(truth)
    if not len(y):
        return 1.0
    nll = [-np.log(_softmax(s, t)[np.arange(len(y)), y] + 1e-12).sum() for t in _TEMPERATURES]
    return float(_TEMPERATURES[int(np.argmin(nll))])


def aggregate_proba(data: pd.DataFrame, gold: pd.Series | dict | None = None, *,
                    random_state: int | None = 0) -> pd.DataFrame:
    """The default categorical method's probabilities: a DataFrame indexed by task, one column per label.

    The same posterior :func:`aggregate` reports the top of (calibrated on gold the same way; gold tasks
    get probability 1 on their gold label). ``result.attrs["method"]`` names the method. Useful for a
    worker's estimated skill: the mean probability of the labels they gave.
    """
    data = check_columns(data, CATEGORICAL_COLUMNS)
    gold = pd.Series(gold, dtype=object) if isinstance(gold, dict) else gold
    scores, method = categorical_scores(data, gold)
    temperature = 1.0
    if gold is not None and gold.index.isin(set(data["task"])).sum() >= MIN_GOLD:
        temperature = gold_temperature(data, gold, random_state)
    probas = pd.DataFrame(_softmax(scores.to_numpy(), temperature), index=scores.index, columns=scores.columns)
    if gold is not None:
        known = gold[gold.index.isin(probas.index) & gold.isin(probas.columns)]
        if len(known):
            rows = probas.index.get_indexer(known.index)
            cols = probas.columns.get_indexer(known.to_numpy())
            values = probas.to_numpy(copy=True)
            values[rows] = 0.0
            values[rows, cols] = 1.0
            probas = pd.DataFrame(values, index=probas.index, columns=probas.columns)
    probas.attrs["method"] = method if temperature == 1.0 else f"{method}, temperature {temperature:.3g} from gold"
    return probas


def top_label(probas: pd.DataFrame) -> pd.DataFrame:
    """The most probable label per task of ``probas`` (one column per label) and its probability, as columns
    ``label`` and ``confidence``; ``attrs["method"]`` is carried over."""
    out = pd.DataFrame({"label": probas.columns.to_numpy()[probas.to_numpy().argmax(axis=1)],
                        "confidence": probas.to_numpy().max(axis=1)}, index=probas.index)
    out.attrs["method"] = probas.attrs["method"]
    return out
