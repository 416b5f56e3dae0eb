"""YOLO label folders imported as gold (labelwright.io.yolo_import): class names from classes.txt or data.yaml,
sizes from the items' fields, files matched by path or stem, and what is refused (naming the file, the line and
the field, nothing written); on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from labelwright.errors import ValidationError
from labelwright.io.yolo_import import import_yolo_gold
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import add_items
from labelwright.services.projects import create_project

SCHEMA = {
    "name": "Birds", "slug": "birds", "id_field": "id",
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "boxes", "type": "boxes", "field": "photo", "labels": ["crow", "gull"],
                   "width_field": "w", "height_field": "h"}],
}


@pytest.fixture
def birds(store):
    project = create_project(store, SCHEMA)
    add_items(store, project, [{"id": "b0", "photo": "https://cdn.example.org/birds/b0.jpg", "w": 200, "h": 100},
                               {"id": "b1", "photo": "https://cdn.example.org/birds/b1.jpg", "w": 50, "h": 50},
                               {"id": "b2", "photo": "https://cdn.example.org/birds/b2.jpg"}])
    return project, {ext: item_id for item_id, ext, *_ in iter_items(store, project)}


def folder(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_data_yaml_names_and_files_by_stem(store, birds, tmp_path):
    project, ids = birds
    root = folder(tmp_path, {"data.yaml": "names:\n  0: gull\n  1: crow\n",
                             "labels/train/b0.txt": "1 0.25 0.5 0.5 1.0\n0 0.9 0.1 0.1 0.2\n",
                             "labels/train/b1.txt": ""})
    done = import_yolo_gold(store, project, root)
    assert (done.items, done.shapes) == (2, 2)
    assert gold_answers(store, project) == {
        ids["b0"]: {"boxes": [{"x": 0.0, "y": 0.0, "w": 100.0, "h": 100.0, "label": "crow"},
                              {"x": 170.0, "y": 0.0, "w": 20.0, "h": 20.0, "label": "gull"}]},
        ids["b1"]: {"boxes": []},
    }


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    ("0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n", 2, "class", "class '2' is not an index of the 2 classes"),
    ("x 0.5 0.5 0.1 0.1\n", 1, "class", "class 'x' is not an index"),
    ("\u00b2 0.5 0.5 0.1 0.1\n", 1, "class", "is not an index"),
    ("0 0.5 1.5 0.1 0.1\n", 1, "value 2", "value 2 is '1.5': coordinates are fractions of the image"),
    ("0 0.5 0.5 0.1 nan\n", 1, "value 4", "value 4 is 'nan'"),
    ("0 0.5 0.5 0.1\n", 1, None, "a box line is: class cx cy w h; this one has 3 numbers"),
])
def test_bad_lines_are_named_and_nothing_is_written(store, birds, tmp_path, text, line, field, message):
    project, _ = birds
    root = folder(tmp_path, {"classes.txt": "crow\ngull\n", "labels/b1.txt": "0 0.5 0.5 0.2 0.2\n",
                             "labels/b0.txt": text})
    with pytest.raises(ValidationError, match=message) as e:
        import_yolo_gold(store, project, root)
    assert (e.value.file, e.value.line, e.value.field) == (str(root / "labels" / "b0.txt"), line, field)
    assert gold_answers(store, project) == {}


def test_a_class_not_a_label_an_unmatched_file_and_no_size(store, birds, tmp_path):
    project, _ = birds
    root = folder(tmp_path / "a", {"classes.txt": "crow\nheron\n", "labels/b0.txt": "1 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(ValidationError, match="class 1 \\('heron'\\) is not a label of question 'boxes'"):
        import_yolo_gold(store, project, root)
    root = folder(tmp_path / "b", {"classes.txt": "crow\n", "labels/b9.txt": ""})
    with pytest.raises(ValidationError, match="no item of 'birds' has an image at 'b9.txt' in 'photo'"):
        import_yolo_gold(store, project, root)
    root = folder(tmp_path / "c", {"classes.txt": "crow\n", "labels/birds/b2.txt": ""})
    with pytest.raises(ValidationError, match="item 'b2' field 'photo': the image's size is needed: the item gives "
                                              "no size in 'w' and 'h'"):
        import_yolo_gold(store, project, root)
    root = folder(tmp_path / "d", {"classes.txt": "crow\n", "labels/b1.txt": ""})
    (root / "labels" / "b1.txt").write_bytes(b"\xff\xfe0 0.5")
    with pytest.raises(ValidationError, match="not UTF-8 text") as e:
        import_yolo_gold(store, project, root)
    assert e.value.file == str(root / "labels" / "b1.txt")
    with pytest.raises(ValidationError, match="no classes.txt or data.yaml"):
        import_yolo_gold(store, project, tmp_path / "c" / "labels")
    assert gold_answers(store, project) == {}
