"""COCO files imported as gold (labelwright.io.detection_import): what is refused, naming the annotation or image
and the field, with nothing written; matching by the last path part; other questions' gold kept; on SQLite and
PostgreSQL."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io.detection_import import coco_gold, import_coco_gold
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers, set_gold
from labelwright.services.items import add_items
from labelwright.services.projects import create_project

SCHEMA = {
    "name": "Birds", "slug": "birds", "id_field": "id",
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "boxes", "type": "boxes", "field": "photo", "labels": ["crow", "gull"]},
                  {"name": "kind", "type": "single_choice", "options": ["sea", "land"]}],
}
COCO = {
    "images": [{"id": 7, "file_name": "b0.jpg", "width": 200, "height": 100},
               {"id": 8, "file_name": "https://cdn.example.org/birds/b1.jpg", "width": 50, "height": 50}],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "gull"}, {"id": 3, "name": "crow"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [10, 10, 50.5, 40], "iscrowd": 0},
                    {"id": 2, "image_id": 7, "category_id": 3, "bbox": [100, 0, 100, 100], "iscrowd": 0}],
}


@pytest.fixture
def birds(store):
    project = create_project(store, SCHEMA)
    add_items(store, project, [{"id": "b0", "photo": "https://cdn.example.org/birds/b0.jpg"},
                               {"id": "b1", "photo": "https://cdn.example.org/birds/b1.jpg"},
                               {"id": "b2", "photo": "https://cdn.example.org/birds/b2.jpg"}])
    return project, {ext: item_id for item_id, ext, *_ in iter_items(store, project)}


def test_boxes_by_category_name_matched_by_the_last_path_part(store, birds, tmp_path):
    project, ids = birds
    set_gold(store, project, ids["b0"], {"kind": "sea"})
    path = tmp_path / "birds.json"
    path.write_text(json.dumps(COCO))
    done = import_coco_gold(store, project, path)
    assert (done.items, done.shapes) == (2, 2)
    assert gold_answers(store, project) == {
        ids["b0"]: {"kind": "sea", "boxes": [{"x": 10.0, "y": 10.0, "w": 50.5, "h": 40.0, "label": "gull"},
                                             {"x": 100.0, "y": 0.0, "w": 100.0, "h": 100.0, "label": "crow"}]},
        ids["b1"]: {"boxes": []},  # listed, no annotation: an image with no bird
    }


def broken(change) -> dict:
    coco = copy.deepcopy(COCO)
    change(coco)
    return coco


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda c: c["annotations"][1].update(category_id=1), "annotations[1].category_id",
     "category 'person' is not a label of question 'boxes'"),
    (lambda c: c["annotations"][0].update(category_id=9), "annotations[0].category_id", "not among the file's"),
    (lambda c: c["annotations"][1].update(bbox=[100, 0, 100.5, 100]), "annotations[1].bbox",
     r"bbox \[100, 0, 100.5, 100\] is outside the image, which is 200 x 100 pixels"),
    (lambda c: c["annotations"][1].update(bbox=[1, 2, 3]), "annotations[1].bbox", "got 3 numbers"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 0, 4]), "annotations[0]", "w must be above 0"),
    (lambda c: c["annotations"][0].update(image_id=99), "annotations[0].image_id", "99 is not among"),
    (lambda c: c["images"][0].update(file_name="b9.jpg"), "images[0].file_name",
     "image 'b9.jpg' not found: no item of 'birds' has this image in 'photo'"),
    (lambda c: c["images"][1].update(file_name="b0.jpg"), "images[1].file_name", "the item images\\[0\\] already is"),
    (lambda c: c["images"][0].update(width="200"), "images[0].width", "a positive number of pixels"),
    (lambda c: c.pop("images"), "images", "needs a list of images"),
])
def test_bad_input_is_named_and_nothing_is_written(store, birds, change, field, message):
    project, _ = birds
    with pytest.raises(ValidationError, match=message) as e:
        import_coco_gold(store, project, broken(change))
    assert e.value.field == field
    assert gold_answers(store, project) == {}


def test_the_file_is_named_and_another_match_field(store, birds, tmp_path):
    project, ids = birds
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValidationError, match="not a JSON file") as e:
        import_coco_gold(store, project, path)
    assert e.value.file == str(path)
    with pytest.raises(ValidationError, match="cannot read it") as e:
        import_coco_gold(store, project, tmp_path / "missing.json")
    assert e.value.file == str(tmp_path / "missing.json")
    coco = broken(lambda c: [img.update(file_name=name) for img, name in zip(c["images"], ["b2", "b1"])])
    q, answers = coco_gold(store, project, coco, match_field="id")  # an item field that is not the image
    assert q.name == "boxes" and sorted(answers) == sorted([ids["b2"], ids["b1"]]) and answers[ids["b1"]] == []


def test_ambiguous_last_parts_are_refused(store, birds):
    project, _ = birds
    add_items(store, project, [{"id": "b0-again", "photo": "https://other.example.org/b0.jpg"}])
    with pytest.raises(ValidationError, match="2 items have 'photo' ending in 'b0.jpg'") as e:
        import_coco_gold(store, project, COCO)
    assert e.value.field == "images[0].file_name"


@pytest.mark.parametrize(("segmentation", "field", "message"), [
    ({"counts": "abc", "size": [100, 200]}, "annotations[0].segmentation", "an RLE mask is not a polygon"),
    ([], "annotations[0].segmentation", "needs the polygon"),
    ([[0, 0, 10, 0, 10]], "annotations[0].segmentation[0]", "an odd number of coordinates"),
    ([[0, 0, 10, 0, 10, 10], [0, 0, 201, 0, 0, 5]], "annotations[0].segmentation[1]",
     r"point 1 \(201, 0\) is outside the image, which is 200 x 100 pixels"),
])
def test_polygons_come_from_segmentations(store, segmentation, field, message):
    project = create_project(store, {**SCHEMA, "questions": [
        {"name": "outlines", "type": "polygons", "field": "photo", "labels": ["crow", "gull"]}]})
    add_items(store, project, [{"id": "b0", "photo": "b0.jpg"}])
    coco = {"images": COCO["images"][:1], "categories": COCO["categories"],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 10],
                             "segmentation": [[0, 0, 10, 0, 10, 10], [20, 20, 40, 20, 40, 40]]}]}
    assert import_coco_gold(store, project, coco).shapes == 2  # one polygon per part
    assert [p["points"] for p in next(iter(gold_answers(store, project).values()))["outlines"]] == [
        [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]], [[20.0, 20.0], [40.0, 20.0], [40.0, 40.0]]]
    coco["annotations"][0]["segmentation"] = segmentation
    with pytest.raises(ValidationError, match=message) as e:
        import_coco_gold(store, project, coco)
    assert e.value.field == field


def test_the_import_gold_command(db_url, store, birds, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command on one database is enough; the import is tested on both above")
    project, ids = birds
    path = tmp_path / "birds.json"
    path.write_text(json.dumps(broken(lambda c: c["annotations"][1].update(category_id=1))))
    res = CliRunner().invoke(main, ["--db", db_url, "import-gold", "birds", str(path)])
    assert res.exit_code != 0 and "annotations[1].category_id" in res.output and "'person'" in res.output
    assert gold_answers(store, project) == {}
    path.write_text(json.dumps(COCO))
    res = CliRunner().invoke(main, ["--db", db_url, "import-gold", "birds", str(path), "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"question": "boxes", "items": 2, "shapes": 2}
    (tmp_path / "yolo" / "labels").mkdir(parents=True)
    (tmp_path / "yolo" / "classes.txt").write_text("crow\ngull\n")
    (tmp_path / "yolo" / "labels" / "b2.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    res = CliRunner().invoke(main, ["--db", db_url, "import-gold", "birds", str(tmp_path / "yolo")])
    assert res.exit_code != 0 and "the item gives no size in 'w' and 'h'" not in res.output  # no size fields here
    assert "item 'b2' field 'photo': the image's size is needed" in res.output
    assert set(gold_answers(store, project)) == {ids["b0"], ids["b1"]}
