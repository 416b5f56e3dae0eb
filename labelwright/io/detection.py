"""What the object-detection exports (COCO, YOLO, Pascal VOC) share: one record per labelled image of a
``boxes`` question, with its aggregated boxes and the image's size in pixels.

The boxes are the project's labels (:func:`labelwright.services.labels.project_labels`: weighted box fusion
over the annotators, gold where known), in the image's own pixels. Items nobody answered are left out; an
item whose label is ``[]`` is an image with no object (a negative), kept. The image's size is read from the
file under the media root (``--media-root``; Pillow reads the header only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from labelwright.errors import ValidationError
from labelwright.questions.boxes import Boxes
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


def boxes_question(project: Project, name: str | None = None) -> Boxes:
    """The project's boxes question: the one named, or the only one."""
    qs = [q for q in project.schema.questions if isinstance(q, Boxes)]
    if name is not None:
        qs = [q for q in qs if q.name == name]
    if len(qs) != 1:
        which = f"no boxes question named {name!r}" if name is not None else f"{len(qs)} boxes questions"
        raise ValidationError(f"an object-detection export needs one boxes question; the project {project.slug!r} "
                              f"has {which} ({[q.name for q in project.schema.questions if isinstance(q, Boxes)]})",
                              field="question")
    return qs[0]


def image_size(media_root: Path | None, file_name: str, where: str) -> tuple[int, int]:
    """``(width, height)`` of an image under the media root; the error names the item and what to do."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - pillow is the optional "images" extra

    if media_root is None:
        raise ValidationError(f"{where}: the image's size is needed: give the media root the images are in "
                              "(--media-root or LABELWRIGHT_MEDIA_ROOT)", field="media_root")
    base = Path(media_root).resolve()
    path = (base / file_name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise ValidationError(f"{where}: no image {file_name!r} under the media root {str(base)!r}", field="media_root")
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValidationError(f"{where}: {file_name!r} is not an image Pillow reads: {e}", field="media_root") from e


def image_records(store: Store, project: Project, media_root: Path | None, question: str | None = None
                  ) -> tuple[Boxes, list[ImageRecord]]:
    """The boxes question and one record per labelled item, in item order."""
    q = boxes_question(project, question)
    labels = project_labels(store, project).get(q.name)
    by_item = {item_id: label for item_id, label, _ in labels.items()} if labels is not None else {}
    out = []
    for item_id, ext, data_json, _anns, _key, _gold in iter_items(store, project):
        boxes = by_item.get(item_id)
        if boxes is None:
            continue
        file_name = loads(data_json).get(q.field)
        where = f"item {ext!r} field {q.field!r}"
        if not isinstance(file_name, str) or not file_name:
            raise ValidationError(f"{where}: no image path", field=q.field)
        width, height = image_size(media_root, file_name, where)
        out.append(ImageRecord(item_id, ext, file_name, width, height, list(boxes)))
    return q, out


def stem_path(file_name: str, suffix: str) -> str:
    """The image's relative path with another suffix (``a/b.png`` -> ``a/b.txt``), for per-image files."""
    p = PurePosixPath(file_name.replace("\\", "/"))
    parts = [s for s in p.parts if s not in ("", ".", "..", "/")]
    return str(PurePosixPath(*parts).with_suffix(suffix))
