"""Polygons on an image field: draw, move, reshape and label outlines of objects (instance segmentation).

Settings: ``field`` (an ``image`` display field), ``labels`` (the object classes, number keys 1-9 pick the
first nine), ``allow_empty``, ``threshold`` (the IoU at which two polygons are the same object) and,
optionally, ``width_field`` and ``height_field``: the item keys holding the image's size in pixels. Where an
item gives its size, every point must lie within the image (:meth:`Polygons.check_item`), and the owner's
pages draw the polygons over the image (:meth:`Polygons.answer_html`).

Answers: a list of polygons ``{"label", "points"}``, ``points`` the outline ``[[x, y], ...]`` in the image's
own pixels (its natural size, whatever size it is shown at), three to :data:`MAX_POINTS` vertices, each a
pair of non-negative numbers kept to two decimals; the outline closes by itself, must enclose an area and
must not cross itself. ``[]`` says the image shows none of the labels (an answer, unless ``allow_empty`` is
false). COCO writes these pixels; YOLO's normalised coordinates are made at export from the image's size.

Aggregated by :class:`labelwright.quality.polygons.WeightedPolygonFusion`: polygons matched across
annotators by label and mask IoU >= ``threshold``, each group fused into its weighted medoid (the drawn
polygon the others overlap most, by weight), kept when drawn by more than half of the weight; weights from
each annotator's mean IoU agreement with the fused polygons. A gold answer scores the F1 of the polygons
matched to it (same label, IoU >= ``threshold``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from markupsafe import Markup
from pydantic import Field, model_validator

from labelwright.quality.polygons import WeightedPolygonFusion, area, fuse, match_f1, polygon_agreement
from labelwright.questions.base import (
    Aggregate,
    Form,
    FormValue,
    ItemView,
    QuestionType,
    check_unique,
    finite_number,
    form_text,
    json_list,
    kind_of,
)
from labelwright.questions.boxes import COLOURS, image_size
from labelwright.questions.choice import option_key

MAX_POLYGONS = 500
MAX_POINTS = 500


class Polygons(QuestionType):
    type: Literal["polygons"]
    field: str = Field(description="the image display field the polygons are drawn on")
    labels: list[str] = Field(min_length=1, max_length=50, description="the object classes")
    allow_empty: bool = Field(default=True, description="an empty list (no object) is an answer")
    threshold: float = Field(default=0.5, gt=0, le=1, description="IoU at which two polygons are the same object")
    width_field: str | None = Field(default=None, description="the item key holding the image's width in pixels")
    height_field: str | None = Field(default=None, description="the item key holding the image's height in pixels")

    answer_display: ClassVar[Literal["label", "list", "block"]] = "list"
    template: ClassVar[str] = "templates/polygons.html"

    @model_validator(mode="after")
    def _unique(self):
        check_unique(self.labels, f"question {self.name!r} labels")
        if any(not lab.strip() for lab in self.labels):
            raise ValueError(f"question {self.name!r}: a label is empty")
        return self

    def field_refs(self) -> list[str]:
        return [self.field]

    # ---- answers ----------------------------------------------------------------------------------

    def validate_answer(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise self.fail(f"expected a list of polygons {{label, points}}, got {kind_of(value)}")
        if len(value) > MAX_POLYGONS:
            raise self.fail(f"at most {MAX_POLYGONS} polygons, got {len(value)}")
        return [self._polygon(p, i) for i, p in enumerate(value)]

    def _polygon(self, p: Any, i: int) -> dict:
        where = str(i)
        if not isinstance(p, dict):
            raise self.fail(f"polygon {i}: expected an object {{label, points}}, got {kind_of(p)}", where)
        extra = sorted(set(p) - {"label", "points"})
        if extra:
            raise self.fail(f"polygon {i}: unknown key {extra[0]!r} (a polygon has label, points)",
                            f"{where}.{extra[0]}")
        label = p.get("label")
        if label not in self.labels:
            raise self.fail(f"polygon {i}: {label!r} is not a label; labels are {self.labels}", f"{where}.label")
        points = p.get("points")
        if not isinstance(points, list):
            raise self.fail(f"polygon {i}: points must be a list of [x, y] pairs, got {kind_of(points)}",
                            f"{where}.points")
        if not 3 <= len(points) <= MAX_POINTS:
            raise self.fail(f"polygon {i}: needs 3 to {MAX_POINTS} points, got {len(points)}", f"{where}.points")
        out = []
        for j, pt in enumerate(points):
            at = f"{where}.points.{j}"
            if not isinstance(pt, list) or len(pt) != 2:
                raise self.fail(f"polygon {i} point {j}: expected [x, y], got {kind_of(pt)}", at)
            for v in pt:
                if finite_number(v) is None:
                    raise self.fail(f"polygon {i} point {j}: coordinates must be numbers of pixels, got {kind_of(v)}",
                                    at)
                if v < 0:
                    raise self.fail(f"polygon {i} point {j}: coordinates must be at least 0, got {v}", at)
            out.append([round(float(pt[0]), 2), round(float(pt[1]), 2)])
        crossing = _crossing_edges(out)
        if crossing is not None:
            raise self.fail(f"polygon {i}: its outline crosses itself (edges {crossing[0]} and {crossing[1]}); "
                            "draw it without crossing, or as two polygons", f"{where}.points")
        if area(out) < 0.01:
            raise self.fail(f"polygon {i}: encloses no area (its points are on one line)", f"{where}.points")
        return {"label": label, "points": out}

    def check_item(self, answer: Any, data: Mapping[str, Any]) -> None:
        size = image_size(data, self.width_field, self.height_field)
        if size is None:
            return
        for i, polygon in enumerate(answer):
            for j, (x, y) in enumerate(polygon["points"]):
                for v, limit, side in ((x, size[0], "width"), (y, size[1], "height")):
                    if v > limit:
                        raise self.fail(f"polygon {i} point {j}: {v:g} is outside the image, which is {limit:g} "
                                        f"pixels in {side}", f"{i}.points.{j}")

    def empty_answer(self, value: Any) -> Any:
        if value == [] and self.allow_empty:
            return []
        return super().empty_answer(value)

    def from_text(self, value: Any) -> Any:
        return json_list(value)

    # ---- showing an answer ------------------------------------------------------------------------

    def answer_html(self, answer: Any, item: ItemView) -> Markup:
        """The polygons drawn over the image (an SVG in the image's pixels, when the item gives its size),
        with the list below; only the list where the size is unknown."""
        listed = super().answer_html(answer, item)
        size = image_size(item.data, self.width_field, self.height_field)
        if size is None or not isinstance(answer, list):
            return listed
        w, h = size
        colour = {lab: COLOURS[i % len(COLOURS)] for i, lab in enumerate(self.labels)}
        src = item.images.get(self.field)
        if src:
            shapes = Markup('<image href="{}" x="0" y="0" width="{:g}" height="{:g}"/>').format(src, w, h)
        else:
            shapes = Markup('<rect class="boxes-frame" x="0" y="0" width="{:g}" height="{:g}"/>').format(w, h)
        for i, polygon in enumerate(answer):
            c = colour.get(polygon["label"], "#000")
            points = " ".join(f"{x:g},{y:g}" for x, y in polygon["points"])
            shapes += Markup(
                '<g class="answer-polygon" data-label="{label}"><title>{n}. {label}</title>'
                '<polygon points="{points}" fill="{c}" fill-opacity="0.15" stroke="{c}" stroke-width="2" '
                'vector-effect="non-scaling-stroke"/></g>').format(label=polygon["label"], n=i + 1, points=points, c=c)
        title = self.answer_text(answer, item.titles)["text"]
        return Markup('<figure class="boxes-answer"><svg class="boxes-overlay" viewBox="0 0 {:g} {:g}" '
                      'role="img" aria-label="{}">{}</svg><figcaption>{}</figcaption></figure>').format(
            w, h, title, shapes, listed)

    def label_html(self, label: Any, item: ItemView) -> Markup:
        return self.answer_html(label, item)

    # ---- aggregation and gold ---------------------------------------------------------------------

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        polygons, _ = fuse(answers, threshold=self.threshold)
        agreement = float(np.mean([polygon_agreement(a, polygons, self.threshold) for a in answers]))
        return {"label": _plain(polygons), "agreement": round(agreement, 4), "n": len(answers)}

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        wpf = WeightedPolygonFusion(threshold=self.threshold).fit(tasks.tolist(), workers.tolist(), values, gold)
        items = sorted(wpf.labels_)
        return Aggregate(method=f"weighted medoid polygon fusion (mask IoU >= {self.threshold:g}; weights: agreement "
                                "with the fused polygons; confidence: mean share of weight per polygon)",
                         tasks=np.array(items, dtype=np.int64), values=[_plain(wpf.labels_[i]) for i in items],
                         confidence=np.round(np.array([wpf.confidence_[i] for i in items], dtype=float), 4))

    def gold_score(self, answer: Any, truth: Any) -> float | None:
        if answer is None or truth is None:
            return None
        return round(match_f1(answer, truth, self.threshold)["f1"], 4)

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        if answer is None or label is None:
            return None
        return polygon_agreement(answer, label, self.threshold) >= 0.5

    # ---- the form ---------------------------------------------------------------------------------

    def parse_form(self, form: Form) -> FormValue | None:
        value = form.get(self.name)
        if value is None:
            return None
        text = form_text(value).strip()
        out = FormValue(state=text)
        if not text:
            return out
        try:
            out.answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            out.error = "the polygons could not be read (not JSON): draw them again"
        return out

    def form_state(self, answer: Any) -> Any:
        return orjson.dumps(answer).decode()

    def view_context(self, state: Any, data: Mapping[str, Any], titles: Mapping[str, str]) -> dict:
        return {"labels": [{"value": lab, "key": option_key(i), "colour": COLOURS[i % len(COLOURS)]}
                           for i, lab in enumerate(self.labels)],
                "field_title": titles.get(self.field, self.field),
                "state": state if isinstance(state, str) else ""}

    # ---- showing and exporting --------------------------------------------------------------------

    def answer_text(self, answer: Any, titles: Mapping[str, str]) -> dict:
        parts = [f"{p['label']}: {len(p['points'])} points from ({p['points'][0][0]:g}, {p['points'][0][1]:g}), "
                 f"area {area(p['points']):g}" for p in answer]
        n = len(answer)
        return {"text": f"{n} polygon{'s' if n != 1 else ''}" if n else "no polygons", "parts": parts,
                "rationale": None}


def _crossing_edges(points: list[list[float]]) -> tuple[int, int] | None:
    """Two edges of the closed outline that cross (edge ``i`` runs from point ``i`` to the next), or None.
    Every pair of non-adjacent edges is tested at once (orientation signs); edges that only touch pass."""
    p = np.asarray(points, dtype=float)
    q = np.roll(p, -1, axis=0)
    n = len(p)
    if n < 4:
        return None

    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        cross = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
        return np.sign(cross)

    a1, a2 = p[:, None, :], q[:, None, :]
    b1, b2 = p[None, :, :], q[None, :, :]
    d1, d2 = orient(a1, a2, b1), orient(a1, a2, b2)
    d3, d4 = orient(b1, b2, a1), orient(b1, b2, a2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    i, j = np.triu_indices(n, k=2)
    keep = ~((i == 0) & (j == n - 1))  # the last edge meets the first
    i, j = i[keep], j[keep]
    hit = np.nonzero(proper[i, j])[0]
    return (int(i[hit[0]]), int(j[hit[0]])) if hit.size else None


def _plain(polygons: list[dict]) -> list[dict]:
    """Fused polygons as answers are (the per-polygon ``score`` left out)."""
    return [{"label": p["label"], "points": p["points"]} for p in polygons]


__all__ = ["Polygons"]
