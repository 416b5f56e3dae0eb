"""COCO object detection JSON (https://cocodataset.org/#format-data) of a project's ``boxes`` or ``polygons``
question.

``images`` are the labelled items (``id`` the item id, ``file_name`` the image field's value, ``width`` and
``height`` from the item's size fields or else the image file: :mod:`labelwright.io.detection`),
``categories`` the question's labels in declared order (ids from 1),
``annotations`` the aggregated boxes (``bbox`` ``[x, y, w, h]`` in pixels, ``area`` ``w * h``,
``iscrowd`` 0). A polygons question's annotations are instance segmentations: ``segmentation`` the polygon
as ``[[x1, y1, x2, y2, ...]]``, ``bbox`` its bounding box, ``area`` the area it encloses.
``pycocotools.coco.COCO`` loads the file and ``COCOeval`` scores it (tests/io/test_boxes_formats.py,
tests/io/test_polygons_formats.py).
"""

from __future__ import annotations

from pathlib import Path

from labelwright.io.detection import ImageRecord, image_records
from labelwright.quality.polygons import area
from labelwright.services.projects import Project
from labelwright.store import Store


def coco_from_records(labels: list[str], records: list[ImageRecord], description: str = "") -> dict:
    category = {name: i + 1 for i, name in enumerate(labels)}
    annotations: list[dict] = []
    for r in records:
        for b in r.boxes if not r.polygons else []:
            annotations.append({"id": len(annotations) + 1, "image_id": r.item_id, "category_id": category[b["label"]],
                                "bbox": [b["x"], b["y"], b["w"], b["h"]], "area": round(b["w"] * b["h"], 4),
                                "iscrowd": 0, "segmentation": []})
        for b, p in zip(r.boxes, r.polygons):  # a polygons question: bounding boxes and their polygons
            annotations.append({"id": len(annotations) + 1, "image_id": r.item_id, "category_id": category[p["label"]],
                                "bbox": [b["x"], b["y"], b["w"], b["h"]], "area": round(area(p["points"]), 4),
                                "iscrowd": 0, "segmentation": [[v for xy in p["points"] for v in xy]]})
    return {"info": {"description": description, "version": "1.0"},
            "licenses": [],
            "images": [{"id": r.item_id, "file_name": r.file_name, "width": r.width, "height": r.height,
                        "external_id": r.external_id} for r in records],
            "annotations": annotations,
            "categories": [{"id": i, "name": name, "supercategory": ""} for name, i in category.items()]}


def coco_dataset(store: Store, project: Project, media_root: Path | None, question: str | None = None) -> dict:
    """The COCO dict of the project's boxes or polygons question (see the module's docstring)."""
    q, records = image_records(store, project, media_root, question)
    return coco_from_records(q.labels, records, f"{project.name}: {q.title}")
