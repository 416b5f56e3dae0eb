"""What the object-detection exports (COCO, YOLO, Pascal VOC) share: one record per labelled image of a
``boxes`` or ``polygons`` question, with its aggregated shapes and the image's size in pixels.

The shapes are the project's labels (:func:`labelwright.services.labels.project_labels`: weighted box fusion
or weighted medoid polygon fusion over the annotators, gold where known), in the image's own pixels. A
polygons question's record has its polygons and, in ``boxes``, each polygon's bounding box (what COCO's
``bbox`` and Pascal VOC write). Items nobody answered are left out; an
item whose label is ``[]`` is an image with no object (a negative), kept.

The image's size comes, in this order, from the item's own fields where the question declares
``width_field`` and ``height_field`` (Label Studio's ``original_width`` / ``original_height``, say: images
given by URL need no download), rounded to whole pixels; else from the file under the media root
(``--media-root``; Pillow reads the header only). Where neither gives it, the export stops with an error
naming the item and the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from labelwright.errors import ValidationError
from labelwright.quality.polygons import bounds
from labelwright.questions.boxes import Boxes
from labelwright.questions.boxes import image_size as stored_image_size
from labelwright.questions.polygons import Polygons
from labelwright.services.export import iter_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, loads


@dataclass
class ImageRecord:
    item_id: int
    external_id: str
    file_name: str  # the image field's value: a path relative to the media root
    width: int
    height: int
    boxes: list[dict]
    polygons: list[dict] = field(default_factory=list)  # a polygons question's; ``boxes`` are their bounds


def boxes_question(project: Project, name: str | None = None) -> Boxes | Polygons:
    """The project's boxes or polygons question: the one named, or the only one."""
    every = [q for q in project.schema.questions if isinstance(q, (Boxes, Polygons))]
    qs = every if name is None else [q for q in every if q.name == name]
    if len(qs) != 1:
        which = (f"no boxes or polygons question named {name!r}" if name is not None
                 else f"{len(qs)} boxes or polygons questions")
        raise ValidationError(f"an object-detection export needs one boxes or polygons question; the project "
                              f"{project.slug!r} has {which} ({[q.name for q in every]})", field="question")
    return qs[0]


def bounding_box(polygon: dict) -> dict:
    """A polygon's bounding box as a box ``{x, y, w, h, label}``."""
    x0, y0, x1, y1 = bounds(polygon["points"])
    return {"x": round(x0, 2), "y": round(y0, 2), "w": round(x1 - x0, 2), "h": round(y1 - y0, 2),
            "label": polygon["label"]}


def item_image_size(q: Boxes | Polygons, data: dict, media_root: Path | None, file_name: str,
                    where: str) -> tuple[int, int]:
    """``(width, height)`` of an item's image: from its ``width_field`` / ``height_field`` when the question
    declares them and the item gives them, else from the file under the media root (:func:`image_size`)."""
    stored = stored_image_size(data, q.width_field, q.height_field)
    if stored is not None:
        return round(stored[0]), round(stored[1])
    fields = (f"the item gives no size in {q.width_field!r} and {q.height_field!r} (positive numbers of pixels), "
              "and " if q.width_field is not None and q.height_field is not None else "")
    return image_size(media_root, file_name, where, fields)


def image_size(media_root: Path | None, file_name: str, where: str, why: str = "") -> tuple[int, int]:
    """``(width, height)`` of an image under the media root; the error names the item and what to do
    (``why``: what else was tried, to say first)."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - pillow is the optional "images" extra

    if media_root is None:
        raise ValidationError(f"{where}: the image's size is needed: {why}give the media root the images are in "
                              "(--media-root or LABELWRIGHT_MEDIA_ROOT)", field="media_root")
    base = Path(media_root).resolve()
    path = (base / file_name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise ValidationError(f"{where}: {why}no image {file_name!r} under the media root {str(base)!r}",
                              field="media_root")
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValidationError(f"{where}: {file_name!r} is not an image Pillow reads: {e}", field="media_root") from e


def image_records(store: Store, project: Project, media_root: Path | None, question: str | None = None
                  ) -> tuple[Boxes | Polygons, list[ImageRecord]]:
    """The boxes or polygons question and one record per labelled item, in item order."""
    q = boxes_question(project, question)
    labels = project_labels(store, project).get(q.name)
    by_item = {item_id: label for item_id, label, _ in labels.items()} if labels is not None else {}
    out = []
    for item_id, ext, data_json, _anns, _key, _gold in iter_items(store, project):
        boxes = by_item.get(item_id)
        if boxes is None:
            continue
        data = loads(data_json)
        file_name = data.get(q.field)
        where = f"item {ext!r} field {q.field!r}"
        if not isinstance(file_name, str) or not file_name:
            raise ValidationError(f"{where}: no image path", field=q.field)
        width, height = item_image_size(q, data, media_root, file_name, where)
        if isinstance(q, Polygons):
            out.append(ImageRecord(item_id, ext, file_name, width, height, [bounding_box(p) for p in boxes],
                                   list(boxes)))
        else:
            out.append(ImageRecord(item_id, ext, file_name, width, height, list(boxes)))
    return q, out


def url_path(name: str) -> str:
    """An image's name as a path: a URL's path (``https://host/a/b.png?x=1`` -> ``/a/b.png``), anything else
    as it is (a string ``urlsplit`` refuses, ``http://[x/a.png``, too)."""
    try:
        url = urlsplit(name)
    except ValueError:
        return name
    return url.path if url.scheme and url.netloc else name


def stem_path(file_name: str, suffix: str) -> str:
    """The image's relative path with another suffix (``a/b.png`` -> ``a/b.txt``), for per-image files; an
    image given by URL by the URL's path (``https://host/a/b.png?x=1`` -> ``a/b.txt``)."""
    p = PurePosixPath(url_path(file_name).replace("\\", "/"))
    parts = [s for s in p.parts if s not in ("", ".", "..", "/")]
    return str(PurePosixPath(*parts).with_suffix(suffix))
