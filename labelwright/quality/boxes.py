"""Bounding boxes: overlap, matching, agreement and weighted box fusion across annotators.

A box is a mapping ``{"x", "y", "w", "h", "label"}`` (left, top, width, height in any one unit: labelwright
stores image pixels). Everything here is pure: lists of boxes in, numbers and boxes out.

* :func:`iou` and :func:`iou_matrix`: intersection over union (boxes of different labels never overlap).
* :func:`match`: the pairs of two box lists with the same label and IoU at least ``threshold``, chosen to
  maximise the summed IoU (the Hungarian method, :func:`scipy.optimize.linear_sum_assignment`).
* :func:`box_agreement`: how well two lists agree, from 0 to 1: the summed IoU of the matched pairs over the
  size of the longer list (two empty lists agree fully). It is mean IoU with unmatched boxes counted as 0, the
  matching-based score used for agreement between annotators and for gold.
* :func:`match_f1`: precision, recall and F1 of a list against a reference at an IoU threshold (the
  detection metric behind mAP, at one threshold and without scores).
* :class:`WeightedBoxFusion`: the label of every item from several annotators' boxes. Boxes are clustered
  by label and IoU (each annotator at most once per cluster, heavier annotators first), every cluster is
  fused into the weighted average of its boxes (weighted box fusion, Solovyev et al. 2021, "Weighted boxes
  fusion: ensembling boxes from different object detection models", Image and Vision Computing 107) and
  kept when its annotators hold more than half of the item's weight. Annotator weights are re-estimated
  from their mean :func:`box_agreement` with the fused boxes (gold boxes where known), a few rounds.

Example::

    >>> a = [{"x": 10, "y": 10, "w": 100, "h": 50, "label": "cat"}]
    >>> b = [{"x": 14, "y": 12, "w": 100, "h": 50, "label": "cat"}]
    >>> round(box_agreement(a, b), 3)
    0.855
    >>> wbf = WeightedBoxFusion().fit([1, 1], ["ann", "bob"], [a, b])
    >>> wbf.labels_[1][0]["x"]
    12.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = Mapping[str, Any]


def _xyxy(boxes: Sequence[Box]) -> np.ndarray:
    if not boxes:
        return np.zeros((0, 4))
    a = np.array([[b["x"], b["y"], b["w"], b["h"]] for b in boxes], dtype=float)
    a[:, 2] += a[:, 0]
    a[:, 3] += a[:, 1]
    return a


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when their labels differ)."""
    if a["label"] != b["label"]:
        return 0.0
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return float(inter / union) if union > 0 else 0.0


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """``m[i, j]``: the IoU of ``a[i]`` and ``b[j]``, 0 where their labels differ."""
    p, q = _xyxy(a), _xyxy(b)
    if not len(p) or not len(q):
        return np.zeros((len(p), len(q)))
    w = np.clip(np.minimum(p[:, None, 2], q[None, :, 2]) - np.maximum(p[:, None, 0], q[None, :, 0]), 0, None)
    h = np.clip(np.minimum(p[:, None, 3], q[None, :, 3]) - np.maximum(p[:, None, 1], q[None, :, 1]), 0, None)
    inter = w * h
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area_q = (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])
    union = area_p[:, None] + area_q[None, :] - inter
    out = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    same = np.array([[x["label"] == y["label"] for y in b] for x in a], dtype=bool)
    return np.where(same, out, 0.0)


def match(a: Sequence[Box], b: Sequence[Box], threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """``(i, j, iou)`` for the pairs of ``a`` and ``b`` matched one to one (same label, IoU >= threshold),
    maximising the summed IoU."""
    m = iou_matrix(a, b)
    if not m.size:
        return []
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415 - scipy.optimize takes 0.3 s to import

    rows, cols = linear_sum_assignment(np.where(m >= threshold, m, 0.0), maximize=True)
    return [(int(i), int(j), float(m[i, j])) for i, j in zip(rows, cols) if m[i, j] >= threshold and m[i, j] > 0]


def box_agreement(a: Sequence[Box], b: Sequence[Box], threshold: float = 0.5) -> float:
    """The summed IoU of :func:`match`'s pairs over the longer list's length, from 0 to 1 (both empty: 1)."""
    n = max(len(a), len(b))
    if n == 0:
        return 1.0
    return sum(v for _, _, v in match(a, b, threshold)) / n


def mean_iou(pairs: Sequence[tuple[Sequence[Box], Sequence[Box]]], threshold: float = 0.5) -> float:
    """The mean :func:`box_agreement` over pairs of box lists (NaN for none)."""
    if not pairs:
        return float("nan")
    return float(np.mean([box_agreement(a, b, threshold) for a, b in pairs]))


def match_f1(boxes: Sequence[Box], reference: Sequence[Box], threshold: float = 0.5) -> dict[str, float]:
    """``{precision, recall, f1}`` of ``boxes`` against ``reference`` at an IoU threshold (empty against
    empty: all 1)."""
    tp = len(match(boxes, reference, threshold))
    precision = tp / len(boxes) if boxes else (1.0 if not reference else 0.0)
    recall = tp / len(reference) if reference else (1.0 if not boxes else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def fuse(answers: Sequence[Sequence[Box]], weights: Sequence[float] | None = None,
         threshold: float = 0.5, quorum: float = 0.5) -> tuple[list[dict], float]:
    """Weighted box fusion of one item's answers (one box list per annotator): ``(boxes, confidence)``.

    Each fused box carries ``score``, the share of the item's weight that drew it; ``confidence`` is the
    mean score of the kept boxes (no box kept: the share of the weight that drew none)."""
    w = [1.0] * len(answers) if weights is None else [float(v) for v in weights]
    total = sum(w)
    if not answers or total <= 0:
        return [], float("nan")
    clusters: list[dict] = []  # {label, members: [(annotator, box)], box: fused xywh}
    for k in sorted(range(len(w)), key=lambda i: -w[i]):  # heavier first; ties in the given order
        for b in answers[k]:
            best, best_iou = None, threshold
            for c in clusters:
                if c["label"] != b["label"] or any(m == k for m, _ in c["members"]):
                    continue
                v = iou(c["box"], b)
                if v >= best_iou:
                    best, best_iou = c, v
            if best is None:
                best = {"label": b["label"], "members": []}
                clusters.append(best)
            best["members"].append((k, b))
            best["box"] = _average(best["members"], w)
    kept = []
    for c in clusters:
        share = sum(w[k] for k, _ in c["members"]) / total
        if share > quorum:
            kept.append({**c["box"], "score": round(float(share), 4)})
    kept.sort(key=lambda b: (b["y"], b["x"], b["label"]))
    if kept:
        return kept, float(np.mean([b["score"] for b in kept]))
    return [], float(sum(w[k] for k, a in enumerate(answers) if not a) / total)


def _average(members: list[tuple[int, Box]], w: Sequence[float]) -> dict:
    total = x0 = y0 = x1 = y1 = 0.0
    for k, b in members:
        wk = max(w[k], 1e-9)
        total += wk
        x0 += wk * b["x"]
        y0 += wk * b["y"]
        x1 += wk * (b["x"] + b["w"])
        y1 += wk * (b["y"] + b["h"])
    x0, y0, x1, y1 = x0 / total, y0 / total, x1 / total, y1 / total
    return {"x": round(x0, 2), "y": round(y0, 2), "w": round(x1 - x0, 2), "h": round(y1 - y0, 2),
            "label": members[0][1]["label"]}


@dataclass
class WeightedBoxFusion:
    """Fused boxes per item, with annotator weights learnt from agreement (see the module's docstring).

    ``fit(tasks, workers, values, gold)``: ``values[i]`` is the box list ``workers[i]`` drew on item
    ``tasks[i]``; ``gold`` maps items to their known boxes (kept as the label, and used to weigh).
    Fitted: ``labels_`` (item -> fused boxes), ``confidence_`` (item -> confidence) and ``weights_``
    (annotator -> weight, from 0 to 1).
    """

    #: IoU at which two boxes of the same label are the same object
    threshold: float = 0.5
    #: a fused box is kept when its annotators hold more than this share of the item's weight
    quorum: float = 0.5
    #: rounds of re-estimating the weights (0: every annotator weighs 1)
    n_iter: int = 3
    #: the least weight an annotator keeps (so nobody is ignored outright)
    min_weight: float = 0.05
    labels_: dict[Any, list[dict]] = field(default_factory=dict, init=False)
    confidence_: dict[Any, float] = field(default_factory=dict, init=False)
    weights_: dict[Any, float] = field(default_factory=dict, init=False)

    def fit(self, tasks: Sequence[Any], workers: Sequence[Any], values: Sequence[Sequence[Box]],
            gold: Mapping[Any, Sequence[Box]] | None = None) -> WeightedBoxFusion:
        gold = gold or {}
        by_item: dict[Any, list[tuple[Any, Sequence[Box]]]] = {}
        for t, wk, v in zip(tasks, workers, values):
            by_item.setdefault(t, []).append((wk, v))
        weights = {wk: 1.0 for wk in workers}
        for round_ in range(self.n_iter + 1):
            labels, confidence = {}, {}
            for t, answers in by_item.items():
                if t in gold:
                    labels[t], confidence[t] = [dict(b) for b in gold[t]], 1.0
                    continue
                labels[t], confidence[t] = fuse([a for _, a in answers], [weights[wk] for wk, _ in answers],
                                                self.threshold, self.quorum)
            if round_ == self.n_iter:
                break
            scores: dict[Any, list[float]] = {}
            for t, answers in by_item.items():
                ref = labels[t]
                for wk, a in answers:
                    scores.setdefault(wk, []).append(box_agreement(a, ref, self.threshold))
            weights = {wk: max(self.min_weight, float(np.mean(s))) for wk, s in scores.items()}
        self.labels_, self.confidence_, self.weights_ = labels, confidence, weights
        return self

    def fit_predict(self, tasks: Sequence[Any], workers: Sequence[Any], values: Sequence[Sequence[Box]],
                    gold: Mapping[Any, Sequence[Box]] | None = None) -> dict[Any, list[dict]]:
        return self.fit(tasks, workers, values, gold).labels_


__all__ = ["WeightedBoxFusion", "box_agreement", "fuse", "iou", "iou_matrix", "match", "match_f1", "mean_iou"]
