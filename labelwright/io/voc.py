"""Pascal VOC XML annotations of a project's ``boxes`` question (or a ``polygons`` question's bounding boxes: VOC's
detection format holds boxes only).

One ``Annotations/<image path>.xml`` per labelled image (``cats/a.png`` -> ``Annotations/cats/a.xml``) with
``filename``, ``size`` (``width``, ``height``, ``depth`` 3) and an ``object`` per box: ``name`` (the label),
``pose`` Unspecified, ``truncated`` and ``difficult`` 0, and ``bndbox`` in integer pixels counted from 1 as
VOC does (``xmin = round(x) + 1``, ``xmax = round(x + w)``). Readers such as torchvision's
``VOCDetection`` parse it with ``xml.etree``.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from labelwright.io.detection import ImageRecord, image_records, stem_path
from labelwright.services.projects import Project
from labelwright.store import Store


def _sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def voc_xml(r: ImageRecord, folder: str = "images") -> str:
    root = ET.Element("annotation")
    _sub(root, "folder", folder)
    _sub(root, "filename", r.file_name)
    source = _sub(root, "source")
    _sub(source, "database", "labelwright")
    size = _sub(root, "size")
    _sub(size, "width", r.width)
    _sub(size, "height", r.height)
    _sub(size, "depth", 3)
    _sub(root, "segmented", 0)
    for b in r.boxes:
        obj = _sub(root, "object")
        _sub(obj, "name", b["label"])
        _sub(obj, "pose", "Unspecified")
        _sub(obj, "truncated", 0)
        _sub(obj, "difficult", 0)
        box = _sub(obj, "bndbox")
        _sub(box, "xmin", round(b["x"]) + 1)
        _sub(box, "ymin", round(b["y"]) + 1)
        _sub(box, "xmax", max(round(b["x"] + b["w"]), round(b["x"]) + 1))
        _sub(box, "ymax", max(round(b["y"] + b["h"]), round(b["y"]) + 1))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def voc_files(records: list[ImageRecord]) -> dict[str, str]:
    """``{relative path: XML text}``, one per image."""
    return {"Annotations/" + stem_path(r.file_name, ".xml"): voc_xml(r) for r in records}


def voc_dataset(store: Store, project: Project, media_root: Path | None, question: str | None = None
                ) -> dict[str, str]:
    _, records = image_records(store, project, media_root, question)
    return voc_files(records)
