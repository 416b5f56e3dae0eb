"""Bounding boxes on an image field: draw, move, resize and label rectangles around objects.

Settings: ``field`` (an ``image`` display field), ``labels`` (the object classes, number keys 1-9 pick the
first nine), ``shape`` (``box``; outlines are the ``polygons`` type's) and, optionally, ``width_field`` and
``height_field``: the item keys holding the image's size in pixels. Where an item gives its size, every box
must lie within the image (:meth:`Boxes.check_item`: on submitting, amending, a reviewer's fix and gold),
and the owner's pages draw the boxes over the image.

Answers: a list of boxes ``{"x", "y", "w", "h", "label"}`` in the image's own pixels (its natural size,
whatever size it is shown at): ``x``, ``y`` the top-left corner, ``w``, ``h`` the width and height, all
non-negative numbers kept to two decimals, ``w`` and ``h`` above zero. ``[]`` says the image shows none
of the labels (an answer, unless ``allow_empty`` is false). Pixels are what COCO and Pascal VOC write;
YOLO's normalised coordinates are made at export from the image's size.

Aggregated by weighted box fusion (:class:`labelwright.quality.boxes.WeightedBoxFusion`): boxes matched
across annotators by label and IoU >= 0.5, averaged with the annotators' weights, kept when drawn by more
than half of the weight; weights from each annotator's mean IoU agreement with the fused boxes. A gold
answer scores the F1 of the boxes matched to it (same label, IoU >= ``threshold``;
:func:`labelwright.quality.boxes.match_f1`): right (1) when every gold box is found and no other drawn,
partial credit otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from markupsafe import Markup
from pydantic import Field, model_validator

from labelwright.quality.boxes import WeightedBoxFusion, box_agreement, fuse, match_f1
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
from labelwright.questions.choice import option_key

MAX_BOXES = 1000
COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#808000",
           "#000075")


class Boxes(QuestionType):
    type: Literal["boxes"]
    field: str = Field(description="the image display field the boxes are drawn on")
    labels: list[str] = Field(min_length=1, max_length=50, description="the object classes")
    shape: Literal["box"] = "box"
    allow_empty: bool = Field(default=True, description="an empty list (no object) is an answer")
    threshold: float = Field(default=0.5, gt=0, le=1, description="IoU at which two boxes are the same object")
    width_field: str | None = Field(default=None, description="the item key holding the image's width in pixels")
    height_field: str | None = Field(default=None, description="the item key holding the image's height in pixels")

    answer_display: ClassVar[Literal["label", "list", "block"]] = "list"
    template: ClassVar[str] = "templates/boxes.html"

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
            raise self.fail(f"expected a list of boxes {{x, y, w, h, label}}, got {kind_of(value)}")
        if len(value) > MAX_BOXES:
            raise self.fail(f"at most {MAX_BOXES} boxes, got {len(value)}")
        return [self._box(b, i) for i, b in enumerate(value)]

    def _box(self, b: Any, i: int) -> dict:
        where = str(i)
        if not isinstance(b, dict):
            raise self.fail(f"box {i}: expected an object {{x, y, w, h, label}}, got {kind_of(b)}", where)
        extra = sorted(set(b) - {"x", "y", "w", "h", "label"})
        if extra:
            raise self.fail(f"box {i}: unknown key {extra[0]!r} (a box has x, y, w, h, label)", f"{where}.{extra[0]}")
        out: dict[str, Any] = {}
        for k in ("x", "y", "w", "h"):
            v = b.get(k)
            number = finite_number(v)
            if number is None:
                raise self.fail(f"box {i}: {k} must be a number of pixels, got {kind_of(v)}", f"{where}.{k}")
            if number < 0 or (k in "wh" and number <= 0):
                raise self.fail(f"box {i}: {k} must be {'above' if k in 'wh' else 'at least'} 0, got {v}",
                                f"{where}.{k}")
            out[k] = round(number, 2)
        if out["w"] <= 0 or out["h"] <= 0:
            raise self.fail(f"box {i}: too small (under 0.01 pixel)", where)
        label = b.get("label")
        if label not in self.labels:
            raise self.fail(f"box {i}: {label!r} is not a label; labels are {self.labels}", f"{where}.label")
        out["label"] = label
        return out

    def image_size(self, data: Mapping[str, Any]) -> tuple[float, float] | None:
        """The image's ``(width, height)`` in pixels as the item gives them (:func:`image_size`)."""
        return image_size(data, self.width_field, self.height_field)

    def check_item(self, answer: Any, data: Mapping[str, Any]) -> None:
        size = self.image_size(data)
        if size is None:
            return
        for i, b in enumerate(answer):
            for start, extent, limit, side in (("x", "w", size[0], "width"), ("y", "h", size[1], "height")):
                if b[start] >= limit:
                    raise self.fail(f"box {i}: {start} = {b[start]:g} is outside the image, which is {limit:g} "
                                    f"pixels in {side}", f"{i}.{start}")
                if round(b[start] + b[extent], 2) > limit:
                    raise self.fail(f"box {i}: {start} + {extent} = {b[start] + b[extent]:g} goes past the "
                                    f"image's {side} of {limit:g} pixels", f"{i}.{extent}")

    def empty_answer(self, value: Any) -> Any:
        if value == [] and self.allow_empty:
            return []
        return super().empty_answer(value)

    def from_text(self, value: Any) -> Any:
        return json_list(value)

    # ---- aggregation and gold ---------------------------------------------------------------------

    def vote(self, answers: list) -> dict | None:
        if not answers:
            return None
        boxes, _ = fuse(answers, threshold=self.threshold)
        agreement = float(np.mean([box_agreement(a, boxes, self.threshold) for a in answers]))
        return {"label": _plain(boxes), "agreement": round(agreement, 4), "n": len(answers)}

    def aggregate(self, tasks: np.ndarray, workers: np.ndarray, values: list, gold: Mapping[int, Any]) -> Aggregate:
        wbf = WeightedBoxFusion(threshold=self.threshold).fit(tasks.tolist(), workers.tolist(), values, gold)
        items = sorted(wbf.labels_)
        return Aggregate(method=f"weighted box fusion (IoU >= {self.threshold:g}; weights: agreement with the "
                                "fused boxes; confidence: mean share of weight per box)",
                         tasks=np.array(items, dtype=np.int64), values=[_plain(wbf.labels_[i]) for i in items],
                         confidence=np.round(np.array([wbf.confidence_[i] for i in items], dtype=float), 4))

    def gold_score(self, answer: Any, truth: Any) -> float | None:
        if answer is None or truth is None:
            return None
        return round(match_f1(answer, truth, self.threshold)["f1"], 4)

    def matches_label(self, answer: Any, label: Any) -> bool | None:
        if answer is None or label is None:
            return None
        return box_agreement(answer, label, self.threshold) >= 0.5

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
            out.error = "the boxes could not be read (not JSON): draw them again"
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
        parts = [f"{b['label']} at ({b['x']:g}, {b['y']:g}), {b['w']:g}×{b['h']:g}" for b in answer]
        n = len(answer)
        return {"text": f"{n} box{'es' if n != 1 else ''}" if n else "no boxes", "parts": parts, "rationale": None}

    def answer_html(self, answer: Any, item: ItemView) -> Markup:
        """The boxes drawn over the image (an SVG in the image's pixels, when the item gives its size), with
        the list of boxes and their coordinates below; only the list where the size is unknown."""
        listed = super().answer_html(answer, item)
        size = self.image_size(item.data)
        if size is None:
            return listed
        w, h = size
        colour = {lab: COLOURS[i % len(COLOURS)] for i, lab in enumerate(self.labels)}
        src = item.images.get(self.field)
        shapes = Markup("")
        if src:
            shapes += Markup('<image href="{}" x="0" y="0" width="{:g}" height="{:g}"/>').format(src, w, h)
        else:
            shapes += Markup('<rect class="boxes-frame" x="0" y="0" width="{:g}" height="{:g}"/>').format(w, h)
        font = max(w, h) / 40
        for i, b in enumerate(answer):
            c = colour.get(b["label"], "#000")
            shapes += Markup(
                '<g class="answer-box" data-label="{label}"><title>{n}. {label}</title>'
                '<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" fill="none" stroke="{c}" stroke-width="2" '
                'vector-effect="non-scaling-stroke"/>'
                '<text x="{x:g}" y="{ty:g}" font-size="{f:g}" fill="{c}">{label}</text></g>').format(
                label=b["label"], n=i + 1, x=b["x"], y=b["y"], w=b["w"], h=b["h"], c=c, f=font,
                ty=max(b["y"] - font / 4, font))
        title = self.answer_text(answer, item.titles)["text"]
        return Markup('<figure class="boxes-answer"><svg class="boxes-overlay" viewBox="0 0 {:g} {:g}" '
                      'role="img" aria-label="{}">{}</svg><figcaption>{}</figcaption></figure>').format(
            w, h, title, shapes, listed)

    def label_html(self, label: Any, item: ItemView) -> Markup:
        return self.answer_html(label, item)


def image_size(data: Mapping[str, Any], width_field: str | None,
               height_field: str | None) -> tuple[float, float] | None:
    """An image's ``(width, height)`` in pixels as an item gives them under ``width_field`` and
    ``height_field`` (numbers, or numbers written as text), or None when it does not."""
    if width_field is None or height_field is None:
        return None
    w, h = _pixels(data.get(width_field)), _pixels(data.get(height_field))
    return None if w is None or h is None else (w, h)


def _pixels(value: Any) -> float | None:
    """An image dimension from item data: a positive finite number (or one written as text), else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    number = finite_number(value)
    return number if number is not None and number > 0 else None


def _plain(boxes: list[dict]) -> list[dict]:
    """Fused boxes as answers are (the per-box ``score`` left out)."""
    return [{k: b[k] for k in ("x", "y", "w", "h", "label")} for b in boxes]


__all__ = ["Boxes"]
