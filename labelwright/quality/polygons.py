"""Polygons: overlap by mask IoU, matching, agreement and weighted fusion across annotators.

A polygon is a mapping ``{"label", "points"}``, ``points`` its outline ``[[x, y], ...]`` (three or more
vertices, in any one unit: labelwright stores image pixels; the outline closes by itself). Everything here
is pure numpy: lists of polygons in, numbers and polygons out.

* :func:`area`: the shoelace area; :func:`iou` and :func:`iou_matrix`: intersection over union of the
  filled shapes (polygons of different labels never overlap). Both shapes are rasterised on one grid over
  their joint bounding box, :data:`RESOLUTION` cells along its longer side (the even-odd rule at each cell's
  centre), so an IoU is exact for identical shapes and within about 1% otherwise, at any image size.
* :func:`match`: the pairs of two lists with the same label and IoU at least ``threshold``, maximising the
  summed IoU (the Hungarian method, :func:`scipy.optimize.linear_sum_assignment`).
* :func:`polygon_agreement`: the summed IoU of the matched pairs over the longer list's length, from 0 to 1
  (two empty lists: 1): mean IoU with an unmatched polygon counted 0, as for boxes.
* :func:`match_f1`: precision, recall and F1 against a reference at an IoU threshold (gold).
* :class:`WeightedPolygonFusion`: the label of every item from several annotators' polygons. Polygons are
  clustered by label and IoU as boxes are (each annotator at most once per cluster, heavier annotators
  first); a cluster's polygon is its **weighted medoid**, the member with the largest weighted IoU with
  all the members, kept when its annotators hold more than half of the item's weight. Weights are
  re-estimated from each annotator's mean :func:`polygon_agreement` with the fused polygons.

Why the medoid and not an average: annotators put different numbers of vertices at different places along
one outline, so there is no vertex-to-vertex correspondence to average; a rasterised majority mask traced
back into a contour would fuse any shapes but returns a staircase outline at the raster's resolution with
many more vertices than anybody drew. The weighted medoid is always a polygon somebody drew, with its exact
vertices, and it is the one the others (by weight) overlap most; with two annotators it is the heavier
one's. Because a fused polygon is a member, agreement with it reuses the IoUs already computed.

Example::

    >>> a = [{"label": "cat", "points": [[0, 0], [100, 0], [100, 50], [0, 50]]}]
    >>> b = [{"label": "cat", "points": [[10, 0], [110, 0], [110, 50], [10, 50]]}]
    >>> round(polygon_agreement(a, b), 2)
    0.82
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Polygon = Mapping[str, Any]

#: raster cells along the longer side of two polygons' joint bounding box when their IoU is measured
RESOLUTION = 256


def area(points: Sequence[Sequence[float]]) -> float:
    """The area enclosed by an outline (the shoelace formula; positive whatever the winding)."""
    p = np.asarray(points, dtype=float)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def bounds(points: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)``: the outline's bounding box."""
    p = np.asarray(points, dtype=float)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def rasterise(points: Sequence[Sequence[float]], x0: float, y0: float, step: float, nx: int, ny: int) -> np.ndarray:
    """A ``(ny, nx)`` boolean mask of the cells of a grid (origin ``x0, y0``, square cells of side ``step``)
    whose centres the outline encloses (the even-odd rule). Vectorised scanline: each edge's crossings of
    the rows' centre lines toggle the cells to their right, and a running sum keeps the parity."""
    p = np.asarray(points, dtype=float)
    q = np.roll(p, -1, axis=0)
    cy = y0 + (np.arange(ny) + 0.5) * step  # the rows' centre lines
    ya, yb = p[:, 1, None], q[:, 1, None]
    crosses = (ya > cy[None, :]) != (yb > cy[None, :])  # edge e crosses row r
    e, r = np.nonzero(crosses)
    t = (cy[r] - p[e, 1]) / (q[e, 1] - p[e, 1])
    xc = p[e, 0] + t * (q[e, 0] - p[e, 0])
    first = np.clip(np.floor((xc - x0) / step - 0.5).astype(np.int64) + 1, 0, nx)  # first cell centre right of it
    toggles = np.zeros((ny, nx + 1), dtype=np.int64)
    np.add.at(toggles, (r, first), 1)
    return (np.cumsum(toggles[:, :nx], axis=1) % 2).astype(bool)


def _grid(boxes: Sequence[tuple[float, float, float, float]]) -> tuple[float, float, float, int, int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y1 = max(b[3] for b in boxes)
    step = max(x1 - x0, y1 - y0, 1e-9) / RESOLUTION
    return x0, y0, step, max(1, int(np.ceil((x1 - x0) / step))), max(1, int(np.ceil((y1 - y0) / step)))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _iou_points(pa: Sequence[Sequence[float]], pb: Sequence[Sequence[float]]) -> float:
    ba, bb = bounds(pa), bounds(pb)
    if not _overlaps(ba, bb):
        return 0.0
    grid = _grid([ba, bb])
    ma, mb = rasterise(pa, *grid), rasterise(pb, *grid)
    union = int(np.count_nonzero(ma | mb))
    return float(np.count_nonzero(ma & mb) / union) if union else 0.0


def iou(a: Polygon, b: Polygon) -> float:
    """Intersection over union of two filled polygons (0 when their labels differ; see the module's
    docstring for the raster it is measured on)."""
    if a["label"] != b["label"]:
        return 0.0
    return _iou_points(a["points"], b["points"])


def iou_matrix(a: Sequence[Polygon], b: Sequence[Polygon]) -> np.ndarray:
    """``m[i, j]``: the IoU of ``a[i]`` and ``b[j]``, 0 where their labels differ."""
    m = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            m[i, j] = iou(p, q)
    return m


def _match_matrix(m: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    if not m.size:
        return []
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415 - scipy.optimize takes 0.3 s to import

    rows, cols = linear_sum_assignment(np.where(m >= threshold, m, 0.0), maximize=True)
    return [(int(i), int(j), float(m[i, j])) for i, j in zip(rows, cols) if m[i, j] >= threshold and m[i, j] > 0]


def match(a: Sequence[Polygon], b: Sequence[Polygon], threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """``(i, j, iou)`` for the pairs of ``a`` and ``b`` matched one to one (same label, IoU >= threshold),
    maximising the summed IoU."""
    return _match_matrix(iou_matrix(a, b), threshold)


def _agreement(m: np.ndarray, threshold: float) -> float:
    n = max(m.shape)
    return 1.0 if n == 0 else sum(v for _, _, v in _match_matrix(m, threshold)) / n


def polygon_agreement(a: Sequence[Polygon], b: Sequence[Polygon], threshold: float = 0.5) -> float:
    """The summed IoU of :func:`match`'s pairs over the longer list's length, from 0 to 1 (both empty: 1)."""
    return _agreement(iou_matrix(a, b), threshold)


def mean_iou(pairs: Sequence[tuple[Sequence[Polygon], Sequence[Polygon]]], threshold: float = 0.5) -> float:
    """The mean :func:`polygon_agreement` over pairs of polygon lists (NaN for none)."""
    if not pairs:
        return float("nan")
    return float(np.mean([polygon_agreement(a, b, threshold) for a, b in pairs]))


def match_f1(polygons: Sequence[Polygon], reference: Sequence[Polygon], threshold: float = 0.5) -> dict[str, float]:
    """``{precision, recall, f1}`` of ``polygons`` against ``reference`` at an IoU threshold (empty against
    empty: all 1)."""
    tp = len(match(polygons, reference, threshold))
    precision = tp / len(polygons) if polygons else (1.0 if not reference else 0.0)
    recall = tp / len(reference) if reference else (1.0 if not polygons else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class _Item:
    """One item's answers flattened (``owner[i]``: the annotator of ``polygons[i]``) with the IoU of every
    two polygons of different annotators computed once, for the fusion's rounds and the agreement."""

    def __init__(self, answers: Sequence[Sequence[Polygon]]):
        self.owner = [k for k, a in enumerate(answers) for _ in a]
        self.polygons = [p for a in answers for p in a]
        n = len(self.polygons)
        self.m = np.eye(n)
        for i in range(n):
            for j in range(i + 1, n):
                if self.owner[i] != self.owner[j]:
                    self.m[i, j] = self.m[j, i] = iou(self.polygons[i], self.polygons[j])
        self.of = [[i for i in range(n) if self.owner[i] == k] for k in range(len(answers))]

    def fuse(self, w: Sequence[float], threshold: float, quorum: float) -> tuple[list[int], list[float], float]:
        """The kept clusters' medoids (indices), their shares of the weight, and the item's confidence."""
        total = sum(w)
        if total <= 0:
            return [], [], float("nan")
        clusters: list[dict] = []  # {label, members: [index], medoid: index}
        for k in sorted(range(len(w)), key=lambda i: -w[i]):  # heavier first; ties in the given order
            for i in self.of[k]:
                best, best_iou = None, threshold
                for c in clusters:
                    if c["label"] != self.polygons[i]["label"] or any(self.owner[j] == k for j in c["members"]):
                        continue
                    v = self.m[i, c["medoid"]]
                    if v >= best_iou:
                        best, best_iou = c, v
                if best is None:
                    best = {"label": self.polygons[i]["label"], "members": []}
                    clusters.append(best)
                best["members"].append(i)
                best["medoid"] = self._medoid(best["members"], w)
        kept, shares = [], []
        for c in clusters:
            share = sum(w[self.owner[j]] for j in c["members"]) / total
            if share > quorum:
                kept.append(c["medoid"])
                shares.append(round(float(share), 4))
        if kept:
            return kept, shares, float(np.mean(shares))
        return [], [], float(sum(w[k] for k in range(len(w)) if not self.of[k]) / total)

    def _medoid(self, members: list[int], w: Sequence[float]) -> int:
        """The member with the largest weighted IoU with all the members (itself included, IoU 1); the first
        of the best (the heaviest annotator's) on a tie."""
        mine = np.array(members)
        totals = self.m[np.ix_(mine, mine)] @ np.array([w[self.owner[h]] for h in members])
        return int(mine[int(np.argmax(totals))])

    def agreement(self, k: int, kept: Sequence[int], threshold: float) -> float:
        """Annotator ``k``'s :func:`polygon_agreement` with the kept polygons (members, so IoUs are known)."""
        mine = self.of[k]
        sub = self.m[np.ix_(mine, list(kept))] if mine and kept else np.zeros((len(mine), len(kept)))
        for a, i in enumerate(mine):  # an annotator's own polygon kept is itself: IoU 1 with it only
            for b, j in enumerate(kept):
                if self.owner[j] == k:
                    sub[a, b] = 1.0 if i == j else iou(self.polygons[i], self.polygons[j])
        return _agreement(sub, threshold)


def _fused(item: _Item, kept: Sequence[int], shares: Sequence[float]) -> list[dict]:
    out = [{"label": item.polygons[i]["label"], "points": [list(p) for p in item.polygons[i]["points"]],
            "score": s} for i, s in zip(kept, shares)]
    out.sort(key=lambda p: (bounds(p["points"])[1], bounds(p["points"])[0], p["label"]))
    return out


def fuse(answers: Sequence[Sequence[Polygon]], weights: Sequence[float] | None = None,
         threshold: float = 0.5, quorum: float = 0.5) -> tuple[list[dict], float]:
    """Weighted medoid fusion of one item's answers (one polygon list per annotator): ``(polygons,
    confidence)``. Each fused polygon carries ``score``, the share of the item's weight that drew it;
    ``confidence`` is the mean score of the kept polygons (none kept: the share of the weight that drew
    none). Polygons come out top to bottom, then left to right."""
    w = [1.0] * len(answers) if weights is None else [float(v) for v in weights]
    if not answers or sum(w) <= 0:
        return [], float("nan")
    item = _Item(answers)
    kept, shares, confidence = item.fuse(w, threshold, quorum)
    return _fused(item, kept, shares), confidence


@dataclass
class WeightedPolygonFusion:
    """Fused polygons per item, with annotator weights learnt from agreement (see the module's docstring).

    ``fit(tasks, workers, values, gold)``: ``values[i]`` is the polygon list ``workers[i]`` drew on item
    ``tasks[i]``; ``gold`` maps items to their known polygons (kept as the label, and used to weigh).
    Fitted: ``labels_`` (item -> fused polygons, each with ``score``), ``confidence_`` (item -> confidence)
    and ``weights_`` (annotator -> weight, from 0 to 1).
    """

    #: IoU at which two polygons of the same label are the same object
    threshold: float = 0.5
    #: a fused polygon is kept when its annotators hold more than this share of the item's weight
    quorum: float = 0.5
    #: rounds of re-estimating the weights (0: every annotator weighs 1)
    n_iter: int = 3
    #: the least weight an annotator keeps (so nobody is ignored outright)
    min_weight: float = 0.05
    labels_: dict[Any, list[dict]] = field(default_factory=dict, init=False)
    confidence_: dict[Any, float] = field(default_factory=dict, init=False)
    weights_: dict[Any, float] = field(default_factory=dict, init=False)

    def fit(self, tasks: Sequence[Any], workers: Sequence[Any], values: Sequence[Sequence[Polygon]],
            gold: Mapping[Any, Sequence[Polygon]] | None = None) -> WeightedPolygonFusion:
        gold = gold or {}
        by_item: dict[Any, list[tuple[Any, Sequence[Polygon]]]] = {}
        for t, wk, v in zip(tasks, workers, values):
            by_item.setdefault(t, []).append((wk, v))
        items = {t: _Item([a for _, a in answers]) for t, answers in by_item.items() if t not in gold}
        gold_scores = {t: [polygon_agreement(a, gold[t], self.threshold) for _, a in answers]
                       for t, answers in by_item.items() if t in gold}  # fixed: computed once
        weights = {wk: 1.0 for wk in workers}
        labels: dict[Any, list[dict]] = {}
        confidence: dict[Any, float] = {}
        for round_ in range(self.n_iter + 1):
            fused = {}
            for t, item in items.items():
                kept, shares, confidence[t] = item.fuse([weights[wk] for wk, _ in by_item[t]], self.threshold,
                                                        self.quorum)
                fused[t] = kept
                labels[t] = _fused(item, kept, shares)
            for t in gold_scores:
                labels[t], confidence[t] = [dict(p) for p in gold[t]], 1.0
            if round_ == self.n_iter:
                break
            scores: dict[Any, list[float]] = {}
            for t, answers in by_item.items():
                for k, (wk, _) in enumerate(answers):
                    s = gold_scores[t][k] if t in gold_scores else items[t].agreement(k, fused[t], self.threshold)
                    scores.setdefault(wk, []).append(s)
            weights = {wk: max(self.min_weight, float(np.mean(s))) for wk, s in scores.items()}
        self.labels_, self.confidence_, self.weights_ = labels, confidence, weights
        return self

    def fit_predict(self, tasks: Sequence[Any], workers: Sequence[Any], values: Sequence[Sequence[Polygon]],
                    gold: Mapping[Any, Sequence[Polygon]] | None = None) -> dict[Any, list[dict]]:
        return self.fit(tasks, workers, values, gold).labels_


__all__ = ["RESOLUTION", "WeightedPolygonFusion", "area", "bounds", "fuse", "iou", "iou_matrix", "match", "match_f1",
           "mean_iou", "polygon_agreement", "rasterise"]
