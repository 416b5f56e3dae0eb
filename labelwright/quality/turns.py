"""Ratings of a conversation's turns and rankings of candidate replies: the numbers a chat question's
aggregation and gold scoring are made of (:mod:`labelwright.questions.chat`). Pure functions on plain
values; nothing here knows the server.

* :func:`rating_stats`: a turn's ratings as ``{mean, median, agreement, n}``; the agreement is one minus
  the mean absolute difference between two annotators' ratings over the scale's width (1: all gave the
  same point, 0: half gave the lowest and half the highest), None for a single rating.
* :func:`borda`: rankings (lists of candidate indices, best first) merged by Borda count: candidates in
  order of mean position, ties to the lower index.
* :func:`kendall_tau`: Kendall's tau-a between two rankings of the same candidates (1 same order, -1
  reversed).

>>> rating_stats([4, 5, 4], 1, 5)
{'mean': 4.3333, 'median': 4.0, 'agreement': 0.8333, 'n': 3}
>>> borda([[2, 0, 1], [2, 1, 0], [0, 2, 1]], 3)
[2, 0, 1]
>>> kendall_tau([0, 1, 2], [2, 1, 0])
-1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from statistics import median

__all__ = ["borda", "kendall_tau", "rating_distance", "rating_stats"]


def rating_stats(ratings: Sequence[int], low: int, high: int) -> dict:
    """``{mean, median, agreement, n}`` of one turn's ratings on the scale ``low..high`` (see the module)."""
    n = len(ratings)
    if n == 0:
        raise ValueError("rating_stats needs at least one rating")
    width = high - low
    agreement = None
    if n > 1:
        pairs = list(combinations(ratings, 2))
        spread = sum(abs(a - b) for a, b in pairs) / len(pairs)
        agreement = round(1 - spread / width, 4) if width > 0 else 1.0
    return {"mean": round(sum(ratings) / n, 4), "median": float(median(ratings)), "agreement": agreement, "n": n}


def rating_distance(a: int, b: int, low: int, high: int) -> float:
    """How far apart two ratings are, as a share of the scale's width (0 equal, 1 opposite ends)."""
    return abs(a - b) / (high - low) if high > low else 0.0


def borda(rankings: Sequence[Sequence[int]], n: int) -> list[int]:
    """The candidates ``0..n-1`` ordered by their mean position in ``rankings`` (Borda count), best first."""
    score = [0] * n
    for ranking in rankings:
        for place, c in enumerate(ranking):
            score[c] += place
    return sorted(range(n), key=lambda c: (score[c], c))


def kendall_tau(a: Sequence[int], b: Sequence[int]) -> float:
    """Kendall's tau-a between two orders of the same candidates: (concordant - discordant) / pairs."""
    if sorted(a) != sorted(b):
        raise ValueError("kendall_tau needs two orders of the same candidates")
    if len(a) < 2:
        return 1.0
    place = {c: i for i, c in enumerate(b)}
    score = sum(1 if place[x] < place[y] else -1 for x, y in combinations(a, 2))
    return score / (len(a) * (len(a) - 1) / 2)
