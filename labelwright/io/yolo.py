"""YOLO (Darknet / Ultralytics) label files of a project's ``boxes`` question.

One text file per labelled image, at the image's relative path with ``.txt`` under ``labels/``
(``cats/a.png`` -> ``labels/cats/a.txt``), a line per box: ``class cx cy w h``, the class the label's
index in the question's labels (from 0), the centre and size normalised by the image's width and height
(six decimals). A polygons question writes YOLO's segmentation lines instead (Ultralytics' ``-seg``
format): ``class x1 y1 x2 y2 ...``, every vertex normalised by the image's width and height. An image with
no box gets an empty file (a negative). ``classes.txt`` lists the labels,
one a line, and ``data.yaml`` names them as Ultralytics reads them (``names:``; point its ``path`` and
``train`` at your images).
"""

from __future__ import annotations

import json
from pathlib import Path

from labelwright.io.detection import ImageRecord, image_records, stem_path
from labelwright.services.projects import Project
from labelwright.store import Store


def yolo_line(box: dict, index: int, width: int, height: int) -> str:
    cx, cy = (box["x"] + box["w"] / 2) / width, (box["y"] + box["h"] / 2) / height
    return f"{index} {cx:.6f} {cy:.6f} {box['w'] / width:.6f} {box['h'] / height:.6f}"


def yolo_segment_line(polygon: dict, index: int, width: int, height: int) -> str:
    return f"{index} " + " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in polygon["points"])


def yolo_files(labels: list[str], records: list[ImageRecord]) -> dict[str, str]:
    """``{relative path: text}`` of every file (see the module's docstring)."""
    index = {name: i for i, name in enumerate(labels)}
    files = {"classes.txt": "".join(f"{name}\n" for name in labels),
             "data.yaml": "names:\n" + "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(labels))}
    for r in records:
        lines = ([yolo_segment_line(p, index[p["label"]], r.width, r.height) for p in r.polygons] if r.polygons
                 else [yolo_line(b, index[b["label"]], r.width, r.height) for b in r.boxes])
        files["labels/" + stem_path(r.file_name, ".txt")] = "".join(line + "\n" for line in lines)
    return files


def write_files(files: dict[str, str], folder: str | Path) -> int:
    """Write ``files`` under ``folder`` (created); returns how many."""
    root = Path(folder)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return len(files)


def yolo_dataset(store: Store, project: Project, media_root: Path | None, question: str | None = None
                 ) -> dict[str, str]:
    q, records = image_records(store, project, media_root, question)
    return yolo_files(q.labels, records)
