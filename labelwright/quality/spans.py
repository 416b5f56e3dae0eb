"""Spans (named entities): matching, span-level F1 and span voting with per-annotator skill.

A span is ``(start, end, label)``: character offsets into a text, ``start`` included, ``end`` excluded.
Two spans *match* when their labels are equal and their overlap, intersection over union of the character
ranges, is at least ``threshold`` (0.5 by default): ``"New York"`` and ``"New York City"`` match
(8 / 13 = 0.62), ``"New"`` and ``"New York City"`` do not (3 / 13).

* :func:`match_spans` pairs two lists one to one (the best overlaps first).
* :func:`span_f1` is span-level F1 between two lists (agreement between two annotators; an answer scored
  against gold). Two empty lists agree fully (1.0).
* :class:`SpanVote` aggregates the spans of several annotators per item: spans that match across annotators
  form a cluster; a cluster is kept when its annotators' weights are more than half of the weight of
  everyone who answered the item; its boundaries are the weighted-most-common ones among its members.
  Weights start equal; each round sets an annotator's weight to their mean span F1 against the consensus
  (against gold where an item has it), shrunk toward 0.5, and votes again.

Imports nothing from the server: ``from labelwright.quality.spans import SpanVote, span_f1``.

Example::

    >>> a = [(0, 5, "PER"), (15, 21, "LOC")]
    >>> b = [(0, 5, "PER"), (15, 25, "LOC")]
    >>> span_f1(a, b)   # the LOC spans overlap 6 / 10 >= 0.5: both match
    1.0
    >>> vote = SpanVote().fit([1, 1, 1], ["ann", "bob", "cy"], [a, b, [(0, 5, "ORG")]])
    >>> vote.spans_[1]
    [(0, 5, 'PER'), (15, 21, 'LOC')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

Span = tuple[int, int, str]


def as_span(value: Any) -> Span:
    """A span from ``{start, end, label}`` or ``(start, end, label)``."""
    if isinstance(value, Mapping):
        return int(value["start"]), int(value["end"]), str(value["label"])
    start, end, label = value
    return int(start), int(end), str(label)


def as_spans(values: Iterable[Any] | None) -> list[Span]:
    return sorted(as_span(v) for v in values or ())


def overlap(a: Span, b: Span) -> float:
    """Intersection over union of two spans' character ranges (labels not compared)."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def match_spans(a: Sequence[Any], b: Sequence[Any], threshold: float = 0.5) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of spans ``a[i]``, ``b[j]`` with the same label and overlap >= ``threshold``, one to
    one, the largest overlaps taken first (ties: earlier spans first)."""
    sa, sb = [as_span(s) for s in a], [as_span(s) for s in b]
    pairs = []
    for i, x in enumerate(sa):
        for j, y in enumerate(sb):
            if x[2] == y[2]:
                o = overlap(x, y)
                if o >= threshold and o > 0:
                    pairs.append((-o, i, j))
    pairs.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return sorted(out)


def span_f1(a: Sequence[Any], b: Sequence[Any], threshold: float = 0.5) -> float:
    """Span-level F1 of ``a`` against ``b`` (symmetric): ``2 * matched / (len(a) + len(b))``; 1.0 when both
    are empty."""
    if not a and not b:
        return 1.0
    return 2 * len(match_spans(a, b, threshold)) / (len(a) + len(b))


def pairwise_f1(answers: Sequence[Sequence[Any]], threshold: float = 0.5) -> float:
    """The mean span F1 over every pair of answers (1.0 for fewer than two): the agreement on one item."""
    pairs = list(combinations(answers, 2))
    if not pairs:
        return 1.0
    return sum(span_f1(x, y, threshold) for x, y in pairs) / len(pairs)


@dataclass
class _Cluster:
    label: str
    members: list[tuple[Span, Any]] = field(default_factory=list)  # (span, worker)

    def fits(self, span: Span, worker: Any, threshold: float) -> float:
        if span[2] != self.label or any(w == worker for _, w in self.members):
            return 0.0
        best = max(overlap(span, s) for s, _ in self.members)
        return best if best >= threshold else 0.0


def vote_item(answers: Sequence[tuple[Any, Sequence[Any]]], weights: Mapping[Any, float] | None = None,
              threshold: float = 0.5, allow_overlap: bool = True) -> tuple[list[Span], list[float], float]:
    """One item's weighted span vote over ``answers`` (``(worker, spans)`` pairs): ``(spans, support of each,
    confidence)``. ``confidence`` is the mean over clusters of ``max(support, 1 - support)`` (1.0 with no
    spans at all). Without ``allow_overlap`` a kept span that overlaps one with more support is dropped."""
    weights = weights or {}
    total = sum(weights.get(w, 1.0) for w, _ in answers)
    clusters: list[_Cluster] = []
    every = sorted(((s, w) for w, spans in answers for s in as_spans(spans)), key=lambda x: (x[0], str(x[1])))
    for span, worker in every:
        scores = [c.fits(span, worker, threshold) for c in clusters]
        best = max(range(len(clusters)), key=lambda k: scores[k], default=None)
        if best is not None and scores[best] > 0:
            clusters[best].members.append((span, worker))
        else:
            clusters.append(_Cluster(span[2], [(span, worker)]))
    if not clusters or total <= 0:
        return [], [], 1.0
    kept: list[tuple[float, Span]] = []
    confidence = 0.0
    for c in clusters:
        support = sum(weights.get(w, 1.0) for _, w in c.members) / total
        confidence += max(support, 1 - support)
        if support > 0.5:
            bounds: dict[Span, float] = {}
            for s, w in c.members:
                bounds[s] = bounds.get(s, 0.0) + weights.get(w, 1.0)
            kept.append((support, max(sorted(bounds), key=lambda s: bounds[s])))
    if not allow_overlap:
        chosen: list[tuple[float, Span]] = []
        for support, s in sorted(kept, key=lambda x: (-x[0], x[1])):
            if all(min(s[1], t[1]) <= max(s[0], t[0]) for _, t in chosen):
                chosen.append((support, s))
        kept = chosen
    kept.sort(key=lambda x: x[1])
    return [s for _, s in kept], [round(p, 4) for p, _ in kept], round(confidence / len(clusters), 4)


@dataclass
class SpanVote:
    """Span voting with per-annotator skill (see the module's docstring).

    ``fit(tasks, workers, answers, gold)`` takes the answers in long form (``answers[i]``: the spans of
    ``workers[i]`` on item ``tasks[i]``) and gold spans by item. Fitted: ``spans_`` (item -> spans; gold
    where known), ``support_`` (item -> support of each span), ``confidence_`` (item -> confidence, 1.0 for
    gold), ``skills_`` (worker -> weight, the last round's mean span F1 shrunk toward 0.5).
    """

    #: the overlap (intersection over union) at which two spans with the same label match
    threshold: float = 0.5
    #: rounds of re-weighting annotators by their F1 against the consensus (0: an unweighted vote)
    n_iter: int = 2
    #: how many pseudo-items at F1 0.5 each annotator's skill is shrunk with (few answers say little)
    prior: float = 2.0
    #: whether kept spans may overlap (else the better supported wins)
    allow_overlap: bool = True

    spans_: dict[Any, list[Span]] = field(default_factory=dict, init=False)
    support_: dict[Any, list[float]] = field(default_factory=dict, init=False)
    confidence_: dict[Any, float] = field(default_factory=dict, init=False)
    skills_: dict[Any, float] = field(default_factory=dict, init=False)

    def fit(self, tasks: Iterable[Any], workers: Iterable[Any], answers: Iterable[Any],
            gold: Mapping[Any, Any] | None = None) -> SpanVote:
        by_item: dict[Any, list[tuple[Any, list[Span]]]] = {}
        for t, w, a in zip(tasks, workers, answers, strict=True):
            by_item.setdefault(t, []).append((w, as_spans(a)))
        truth = {t: as_spans(g) for t, g in (gold or {}).items()}
        weights: dict[Any, float] = {}
        for round_ in range(self.n_iter + 1):
            self._vote(by_item, weights, truth)
            if round_ == self.n_iter:
                break
            scores: dict[Any, list[float]] = {}
            for t, answers_ in by_item.items():
                reference = self.spans_[t]
                for w, spans in answers_:
                    scores.setdefault(w, []).append(span_f1(spans, reference, self.threshold))
            weights = {w: (sum(s) + 0.5 * self.prior) / (len(s) + self.prior) for w, s in scores.items()}
        self.skills_ = {w: round(v, 4) for w, v in (weights or {w: 1.0 for a in by_item.values()
                                                               for w, _ in a}).items()}
        return self

    def _vote(self, by_item, weights, truth) -> None:
        self.spans_, self.support_, self.confidence_ = {}, {}, {}
        for t, answers in by_item.items():
            if t in truth:
                self.spans_[t], self.support_[t], self.confidence_[t] = truth[t], [1.0] * len(truth[t]), 1.0
                continue
            spans, support, confidence = vote_item(answers, weights, self.threshold, self.allow_overlap)
            self.spans_[t], self.support_[t], self.confidence_[t] = spans, support, confidence

    def fit_predict(self, tasks, workers, answers, gold=None) -> dict[Any, list[Span]]:
        return self.fit(tasks, workers, answers, gold).spans_


__all__ = ["Span", "SpanVote", "as_span", "as_spans", "match_spans", "overlap", "pairwise_f1", "span_f1",
           "vote_item"]
