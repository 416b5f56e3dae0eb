"""COCO object-detection files read into a project as gold: a ``boxes`` question's boxes from the annotations'
``bbox``, a ``polygons`` question's polygons from their ``segmentation``.

Each COCO image is matched to one item by its ``file_name`` against an item field (the question's image field
unless another is named): the same text, or else the same last path part (``cats/001.jpg`` and
``https://host/photos/001.jpg`` both end in ``001.jpg``) when only one item ends so. An image listed with no
annotation is an image with no object: its gold answer is ``[]``. Categories are matched to the question's
labels by ``name`` (a file may list categories it never uses). A polygon annotation's ``segmentation``
``[[x1, y1, x2, y2, ...], ...]`` gives one polygon per part; RLE masks are refused.

Untrusted input: whatever is wrong stops the import before anything is written, with the place named
(``annotations[3].bbox``, ``images[0].file_name``): an unknown category, a box or point outside the image's
``width`` and ``height``, an image no item matches or two images matching one item. Items already gold keep
their other questions' gold answers; this question's are replaced. Nothing is written but through the gold
service (:func:`labelwright.services.gold.store_gold`), in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from labelwright.errors import ValidationError
from labelwright.io.detection import boxes_question, url_path
from labelwright.questions.base import finite_number
from labelwright.questions.boxes import Boxes
from labelwright.questions.polygons import Polygons
from labelwright.services import audit
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers, store_gold
from labelwright.services.projects import Project
from labelwright.store import Store, dumps, loads


@dataclass
class GoldImport:
    """What an import recorded: the question, the items marked gold and the shapes among their answers."""

    question: str
    items: int
    shapes: int


@dataclass
class _Image:
    index: int  # in the file's images
    item_id: int
    data: dict
    width: float
    height: float
    shapes: list[tuple[int, dict]]  # (annotation index, shape)


def read_coco(path: str | Path) -> dict:
    """A COCO file's JSON; an error names the file when it is not JSON."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as e:
        raise ValidationError(f"not a JSON file: {e}", file=str(path)) from None
    except OSError as e:
        raise ValidationError(f"cannot read it: {e.strerror or e}", file=str(path)) from None


def coco_gold(store: Store, project: Project, coco: dict, *, question: str | None = None,
              match_field: str | None = None, file: str | None = None) -> tuple[Boxes | Polygons, dict[int, list]]:
    """The question and ``{item_id: answer}`` a COCO dict gives (checked as gold, nothing written)."""
    q = boxes_question(project, question)
    field = match_field or q.field
    images = _images(store, project, coco, field, file)
    labels = _categories(coco, q, file)
    for i, ann in enumerate(_list(coco, "annotations", file)):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise ValidationError("an annotation must be an object", field=where, file=file)
        image = images.get(_key(ann.get("image_id")))
        if image is None:
            raise ValidationError(f"image_id {ann.get('image_id')!r} is not among the file's images",
                                  field=f"{where}.image_id", file=file)
        label = labels.get(_key(ann.get("category_id")))
        if label is None:
            raise ValidationError(f"category_id {ann.get('category_id')!r} is not among the file's categories",
                                  field=f"{where}.category_id", file=file)
        if not isinstance(label, str):
            raise ValidationError(f"category {label[0]!r} is not a label of question {q.name!r}; its labels are "
                                  f"{q.labels}", field=f"{where}.category_id", file=file)
        shapes = (_polygons(ann, label, image, where, file) if isinstance(q, Polygons)
                  else [_box(ann, label, image, where, file)])
        for shape in shapes:
            check_gold(project, q, [shape], image.data, where, file)
            image.shapes.append((i, shape))
    out = {}
    for image in images.values():
        answer = [shape for _, shape in image.shapes]
        out[image.item_id] = check_gold(project, q, answer, image.data, f"images[{image.index}]", file)
    return q, out


def import_coco_gold(store: Store, project: Project, source: str | Path | dict, *, question: str | None = None,
                     match_field: str | None = None, user=None) -> GoldImport:
    """Record a COCO file (a path, or its parsed dict) as gold answers of the project's boxes or polygons
    question, all or nothing (see the module's docstring)."""
    file = None if isinstance(source, dict) else str(source)
    coco = source if isinstance(source, dict) else read_coco(source)
    q, answers = coco_gold(store, project, coco, question=question, match_field=match_field, file=file)
    return record_gold(store, project, q, answers, "coco", user)


def record_gold(store: Store, project: Project, q: Boxes | Polygons, answers: dict[int, list], fmt: str,
                user=None) -> GoldImport:
    """Record checked ``{item_id: answer}`` of question ``q`` as gold, keeping the items' other gold answers,
    in one transaction (audited as ``gold.import``)."""
    with store.write() as conn:
        known = gold_answers(store, project, conn)
        pairs = [(item_id, dumps({**known.get(item_id, {}), q.name: answer})) for item_id, answer in answers.items()]
        store_gold(conn, project.id, pairs, getattr(user, "id", None), time.time())
        audit.record(conn, user, "gold.import", project.id, q.name, {"format": fmt, "items": len(pairs)})
    return GoldImport(q.name, len(answers), sum(len(a) for a in answers.values()))


# ---- reading the file ---------------------------------------------------------------------------------


def _list(coco: Any, key: str, file: str | None) -> list:
    if not isinstance(coco, dict):
        raise ValidationError("a COCO file is an object with images, annotations and categories", file=file)
    value = coco.get(key, [] if key == "annotations" else None)
    if not isinstance(value, list):
        raise ValidationError(f"a COCO file needs a list of {key}", field=key, file=file)
    return value


def _key(value: Any) -> int | str | None:
    """A COCO id as a dictionary key (ids are integers; text ids are taken as they are)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, (int, str)) else None


def _categories(coco: dict, q: Boxes | Polygons, file: str | None) -> dict[int | str | None, str | tuple[str]]:
    """``{category id: label}``; a category that is not a label maps to ``(its name,)``, an error where used."""
    out: dict[int | str | None, str | tuple[str]] = {}
    for i, cat in enumerate(_list(coco, "categories", file)):
        if not isinstance(cat, dict) or _key(cat.get("id")) is None or not isinstance(cat.get("name"), str):
            raise ValidationError("a category needs an id and a name", field=f"categories[{i}]", file=file)
        name = cat["name"]
        out[_key(cat["id"])] = name if name in q.labels else (name,)
    return out


def _images(store: Store, project: Project, coco: dict, field: str, file: str | None) -> dict:
    """``{COCO image id: _Image}``, each image matched to its item (see the module's docstring)."""
    exact: dict[str, list[tuple[int, dict]]] = {}
    last: dict[str, list[tuple[int, dict]]] = {}
    for item_id, _ext, data_json, *_ in iter_items(store, project):
        data = loads(data_json)
        value = data.get(field)
        if isinstance(value, str) and value:
            exact.setdefault(value, []).append((item_id, data))
            last.setdefault(_last_part(value), []).append((item_id, data))
    out: dict = {}
    taken: dict[int, int] = {}
    for i, img in enumerate(_list(coco, "images", file)):
        where = f"images[{i}]"
        if not isinstance(img, dict):
            raise ValidationError("an image must be an object", field=where, file=file)
        key = _key(img.get("id"))
        if key is None or key in out:
            raise ValidationError(f"{'a second image with' if key in out else 'no'} id {img.get('id')!r}",
                                  field=f"{where}.id", file=file)
        size = []
        for k in ("width", "height"):
            v = img.get(k)
            number = finite_number(v)
            if number is None or number <= 0:
                raise ValidationError(f"{k} must be a positive number of pixels, got {v!r}", field=f"{where}.{k}",
                                      file=file)
            size.append(number)
        name = img.get("file_name")
        if not isinstance(name, str) or not name:
            raise ValidationError("no file_name", field=f"{where}.file_name", file=file)
        found = exact.get(name) or last.get(_last_part(name), [])
        if len(found) != 1:
            why = (f"{len(found)} items have {field!r} ending in {_last_part(name)!r}: rename the image to the "
                   "item's full value" if found else f"no item of {project.slug!r} has this image in {field!r}")
            raise ValidationError(f"image {name!r} not found: {why}", field=f"{where}.file_name", file=file)
        item_id, data = found[0]
        if item_id in taken:
            raise ValidationError(f"image {name!r} is the item images[{taken[item_id]}] already is",
                                  field=f"{where}.file_name", file=file)
        taken[item_id] = i
        out[key] = _Image(i, item_id, data, size[0], size[1], [])
    return out


def _last_part(name: str) -> str:
    return PurePosixPath(url_path(name).replace("\\", "/")).name


# ---- shapes -------------------------------------------------------------------------------------------


def _numbers(value: Any, where: str, file: str | None) -> list[float]:
    if not isinstance(value, list) or not all(finite_number(v) is not None for v in value):
        raise ValidationError(f"expected a list of numbers, got {value!r:.80}", field=where, file=file)
    return [float(v) for v in value]


def _box(ann: dict, label: str, image: _Image, where: str, file: str | None) -> dict:
    bbox = _numbers(ann.get("bbox"), f"{where}.bbox", file)
    if len(bbox) != 4:
        raise ValidationError(f"bbox must be [x, y, width, height], got {len(bbox)} numbers", field=f"{where}.bbox",
                              file=file)
    x, y, w, h = bbox
    if x < 0 or y < 0 or round(x + w, 2) > image.width or round(y + h, 2) > image.height:
        raise ValidationError(f"bbox [{x:g}, {y:g}, {w:g}, {h:g}] is outside the image, which is "
                              f"{image.width:g} x {image.height:g} pixels", field=f"{where}.bbox", file=file)
    return {"x": x, "y": y, "w": w, "h": h, "label": label}


def _polygons(ann: dict, label: str, image: _Image, where: str, file: str | None) -> list[dict]:
    seg = ann.get("segmentation")
    field = f"{where}.segmentation"
    if isinstance(seg, dict):
        raise ValidationError("an RLE mask is not a polygon: a polygons question reads [[x1, y1, x2, y2, ...]]",
                              field=field, file=file)
    if not isinstance(seg, list) or not seg:
        raise ValidationError("a polygons question needs the polygon: segmentation [[x1, y1, x2, y2, ...]]",
                              field=field, file=file)
    out = []
    for k, part in enumerate(seg):
        flat = _numbers(part, f"{field}[{k}]", file)
        if len(flat) % 2:
            raise ValidationError(f"an odd number of coordinates ({len(flat)})", field=f"{field}[{k}]", file=file)
        points = [[flat[j], flat[j + 1]] for j in range(0, len(flat), 2)]
        for j, (px, py) in enumerate(points):
            if not (0 <= px <= image.width and 0 <= py <= image.height):
                raise ValidationError(f"point {j} ({px:g}, {py:g}) is outside the image, which is {image.width:g} x "
                                      f"{image.height:g} pixels", field=f"{field}[{k}]", file=file)
        out.append({"label": label, "points": points})
    return out


def check_gold(project: Project, q: Boxes | Polygons, answer: list, data: dict, where: str | None, file: str | None,
               line: int | None = None) -> list:
    """The answer as gold (:meth:`ProjectSchema.validate_gold`, against the item), errors placed at ``where``."""
    try:
        return project.schema.validate_gold({q.name: answer}, item=data)[q.name]
    except ValidationError as e:
        message = e.message.removeprefix("box 0: ").removeprefix("polygon 0: ")
        raise ValidationError(message, field=where, file=file, line=line) from None
