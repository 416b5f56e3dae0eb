"""YOLO label folders read into a project as gold: what :mod:`labelwright.io.yolo` writes, read back.

The folder holds the class names (``classes.txt``, one a line, or Ultralytics' ``data.yaml`` ``names:``) and
one ``.txt`` per image, under ``labels/`` when there is one: ``class cx cy w h`` per box for a ``boxes``
question, ``class x1 y1 x2 y2 ...`` per polygon (Ultralytics' segmentation lines) for a ``polygons`` question,
class indexes from 0, coordinates divided by the image's width and height. A label file is matched to the
item whose image has the same relative path (``labels/cats/a.txt`` is ``cats/a.png``, or
``https://host/cats/a.png``), or else the same file stem when only one item has it; an empty file is an
image with no object (``[]``), an image without a file is left alone. Sizes in pixels come from the item's
``width_field`` / ``height_field`` or from the image under the media root, as the exports take them
(:func:`labelwright.io.detection.item_image_size`).

All or nothing: an unknown class, a coordinate outside 0-1, a line of the wrong length or a file no item
matches stops the import, naming the file, the line and the field.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath

import yaml

from labelwright.errors import ValidationError
from labelwright.io.detection import boxes_question, item_image_size, stem_path
from labelwright.io.detection_import import GoldImport, check_gold, record_gold
from labelwright.questions.boxes import Boxes
from labelwright.questions.polygons import Polygons
from labelwright.services.export import iter_items
from labelwright.services.projects import Project
from labelwright.store import Store, loads


def yolo_classes(folder: Path) -> list[str]:
    """The class names: ``classes.txt`` or ``data.yaml``'s ``names`` (a list, or ``{index: name}``)."""
    if (folder / "classes.txt").is_file():
        return [line.strip() for line in _text(folder / "classes.txt").splitlines() if line.strip()]
    path = folder / "data.yaml"
    if not path.is_file():
        raise ValidationError("no classes.txt or data.yaml naming the classes", file=str(folder))
    try:
        names = (yaml.safe_load(_text(path)) or {}).get("names")
    except (yaml.YAMLError, AttributeError, RecursionError) as e:  # RecursionError: nested too deep
        raise ValidationError(f"not a YAML mapping: {e}", file=str(path)) from None
    if isinstance(names, dict) and set(names) == set(range(len(names))):  # keys of any type: no sorting
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("names must be a list of class names (or {index: name})", file=str(path), field="names")
    return names


def yolo_gold(store: Store, project: Project, folder: str | Path, media_root: Path | None = None, *,
              question: str | None = None) -> tuple[Boxes | Polygons, dict[int, list]]:
    """The question and ``{item_id: answer}`` a YOLO folder gives (checked as gold, nothing written)."""
    q = boxes_question(project, question)
    root = Path(folder)
    classes = yolo_classes(root)
    labels = root / "labels" if (root / "labels").is_dir() else root
    by_path: dict[str, list[tuple[int, str, dict]]] = {}
    by_stem: dict[str, list[tuple[int, str, dict]]] = {}
    for item_id, ext, data_json, *_ in iter_items(store, project):
        data = loads(data_json)
        image = data.get(q.field)
        if isinstance(image, str) and image:
            rel = stem_path(image, ".txt")
            by_path.setdefault(rel, []).append((item_id, ext, data))
            by_stem.setdefault(PurePosixPath(rel).name, []).append((item_id, ext, data))
    out: dict[int, list] = {}
    for path in sorted(labels.rglob("*.txt")):
        rel = path.relative_to(labels).as_posix()
        if rel == "classes.txt" or not path.is_file():  # a folder named like a label file is not one
            continue
        file = str(path)
        found = by_path.get(rel) or by_stem.get(path.name, [])
        if len(found) != 1:
            raise ValidationError(f"{len(found)} items' images are named {path.stem!r}: put the file at the image's "
                                  "path under labels/" if found else
                                  f"no item of {project.slug!r} has an image at {rel!r} in {q.field!r}", file=file)
        item_id, ext, data = found[0]
        if item_id in out:
            raise ValidationError(f"a second label file for item {ext!r}", file=file)
        width, height = item_image_size(q, data, media_root, data[q.field], f"item {ext!r} field {q.field!r}")
        shapes = []
        for n, line in enumerate(_text(path).splitlines(), start=1):
            if line.strip():
                shape = _shape(q, classes, line, n, file, width, height)
                check_gold(project, q, [shape], data, "line", file, n)
                shapes.append(shape)
        out[item_id] = check_gold(project, q, shapes, data, None, file)
    return q, out


def import_yolo_gold(store: Store, project: Project, folder: str | Path, media_root: Path | None = None, *,
                     question: str | None = None, user=None) -> GoldImport:
    """Record a YOLO folder as gold answers of the project's boxes or polygons question, all or nothing (see the
    module's docstring)."""
    q, answers = yolo_gold(store, project, folder, media_root, question=question)
    return record_gold(store, project, q, answers, "yolo", user)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(f"not UTF-8 text: {e}", file=str(path)) from None


def _shape(q: Boxes | Polygons, classes: list[str], line: str, n: int, file: str, width: int, height: int) -> dict:
    """One line as a box or polygon in pixels."""
    first, *rest = line.split()
    index = int(first) if first.isascii() and first.isdigit() and len(first) < 19 else -1  # int() stops at 4300 digits
    if not 0 <= index < len(classes):
        raise ValidationError(f"class {first[:40]!r} is not an index of the {len(classes)} classes", file=file, line=n,
                              field="class")
    label = classes[index]
    if label not in q.labels:
        raise ValidationError(f"class {first} ({label!r}) is not a label of question {q.name!r}; its labels are "
                              f"{q.labels}", file=file, line=n, field="class")
    values = []
    for k, text in enumerate(rest):
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not 0 <= v <= 1:
            raise ValidationError(f"value {k + 1} is {text!r}: coordinates are fractions of the image, 0 to 1",
                                  file=file, line=n, field=f"value {k + 1}")
        values.append(v)
    if isinstance(q, Boxes):
        if len(values) != 4:
            raise ValidationError(f"a box line is: class cx cy w h; this one has {len(values)} numbers", file=file,
                                  line=n)
        cx, cy, w, h = values
        x, y = max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height)
        return {"x": round(x, 2), "y": round(y, 2), "w": round(min(w * width, width - x), 2),
                "h": round(min(h * height, height - y), 2), "label": label}
    if len(values) < 6 or len(values) % 2:
        raise ValidationError(f"a polygon line is: class x1 y1 x2 y2 x3 y3 ...; this one has {len(values)} numbers",
                              file=file, line=n)
    return {"label": label, "points": [[round(values[j] * width, 2), round(values[j + 1] * height, 2)]
                                       for j in range(0, len(values), 2)]}
