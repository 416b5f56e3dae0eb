"""A polygons question's labels as COCO instance segmentations (loaded by pycocotools and scored by its segm
COCOeval), YOLO segmentation lines and Pascal VOC bounding boxes, on SQLite and PostgreSQL; and
``labelwright export --format coco|yolo`` of a polygons project."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
from click.testing import CliRunner
from PIL import Image

from labelwright.cli import main
from labelwright.io.coco import coco_dataset
from labelwright.io.detection_import import import_coco_gold
from labelwright.io.voc import voc_dataset
from labelwright.io.yolo import write_files, yolo_dataset
from labelwright.io.yolo_import import import_yolo_gold
from labelwright.quality.polygons import area
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from tests.conftest import bearer

SCHEMA = {
    "name": "Cells", "slug": "cells", "overlap": 2, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "shapes", "type": "polygons", "field": "photo", "labels": ["cat", "dog"]}],
}
SIZES = {"p0": (640, 480), "p1": (320, 200), "p2": (100, 100)}
WANT = {  # what both annotators draw: the fused label is the same
    "p0": [{"label": "cat", "points": [[10.0, 20.0], [110.0, 20.0], [110.0, 70.0], [60.0, 90.0], [10.0, 70.0]]},
           {"label": "dog", "points": [[300.0, 200.0], [340.0, 230.0], [300.0, 260.0]]}],
    "p1": [{"label": "dog", "points": [[0.0, 0.0], [32.0, 0.0], [32.0, 20.0], [0.0, 20.0]]}],
    "p2": [],
}


@pytest.fixture
def polygons_project(http, store, owner, make_annotator, tmp_path):
    media = tmp_path / "media"
    (media / "cells").mkdir(parents=True)
    for ext, size in SIZES.items():
        Image.new("RGB", size, (10, 200, 30)).save(media / "cells" / f"{ext}.jpg")
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json=SCHEMA).status_code == 201
    rows = [{"id": ext, "photo": f"cells/{ext}.jpg"} for ext in SIZES] + [{"id": "none", "photo": "cells/none.jpg"}]
    assert http.post("/api/v1/projects/cells/items", headers=h, json={"items": rows}).status_code in (200, 201)
    for name in ("ann", "bob"):
        _, tok = make_annotator(name)
        for _ in range(4):
            item = http.post("/api/v1/projects/cells/next", headers=bearer(tok)).json()
            ext = item["data"]["photo"].split("/")[1].removesuffix(".jpg")
            if ext == "none":  # left unlabelled: skipped by both
                assert http.post(f"/api/v1/items/{item['id']}/skip", headers=bearer(tok)).status_code == 204
                continue
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"shapes": WANT[ext]}})
            assert r.status_code == 201, r.text
    return get_project(store, "cells"), media


def test_coco_segmentations_load_in_pycocotools_and_score_segm_map_1(store, polygons_project, tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    project, media = polygons_project
    data = coco_dataset(store, project, media)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    gt = coco_api.COCO(str(path))
    cats = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    assert list(cats.values()) == ["cat", "dog"]
    images = {img["external_id"]: img for img in gt.loadImgs(gt.getImgIds())}
    assert set(images) == {"p0", "p1", "p2"}  # "none" was not labelled; p2 is a labelled image with nothing
    for ext, (w, h) in SIZES.items():
        img = images[ext]
        assert (img["width"], img["height"], img["file_name"]) == (w, h, f"cells/{ext}.jpg")
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))
        got = [{"label": cats[a["category_id"]],
                "points": [a["segmentation"][0][i:i + 2] for i in range(0, len(a["segmentation"][0]), 2)]}
               for a in anns]
        assert sorted(got, key=str) == sorted(WANT[ext], key=str)
        for a, p in zip(anns, got):
            xs, ys = [q[0] for q in p["points"]], [q[1] for q in p["points"]]
            assert a["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] and a["iscrowd"] == 0
            assert a["area"] == area(p["points"])
            # pycocotools' own rasterisation of the polygon covers about its area
            assert gt.annToMask(a).sum() == pytest.approx(a["area"], rel=0.1)
    cat = next(a for a in data["annotations"] if a["category_id"] == 1)
    assert cat["area"] == 100 * 50 + 100 * 20 / 2 and cat["bbox"] == [10.0, 20.0, 100.0, 70.0]
    # the ground truth as detections (score 1, masks as RLE) scores segm mAP 1 in COCOeval
    dets = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": gt.annToRLE(a),
                        "score": 1.0} for a in data["annotations"]])
    ev = cocoeval.COCOeval(gt, dets, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    # and a detection moved off its object does not
    moved = [{**a, "segmentation": [[v + 60 for v in a["segmentation"][0]]]} for a in data["annotations"]]
    worse = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": gt.annToRLE(a),
                         "score": 1.0} for a in moved])
    ev = cocoeval.COCOeval(gt, worse, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] < 0.5


def test_coco_segmentations_imported_as_gold_are_the_polygons(store, polygons_project):
    """Export, import into a fresh project with the same items (by service): gold equals the labels."""
    project, media = polygons_project
    data = coco_dataset(store, project, media)
    fresh = create_project(store, {**SCHEMA, "slug": "cells2"})
    add_items(store, fresh, [{"id": ext, "photo": f"cells/{ext}.jpg"} for ext in [*SIZES, "none"]])
    done = import_coco_gold(store, fresh, data)
    assert (done.question, done.items, done.shapes) == ("shapes", 3, 3)
    ids = {ext: item_id for item_id, ext, *_ in iter_items(store, fresh)}
    gold = gold_answers(store, fresh)
    assert set(gold) == {ids[ext] for ext in SIZES}
    for ext in SIZES:
        assert sorted(gold[ids[ext]]["shapes"], key=str) == sorted(WANT[ext], key=str)


def test_yolo_segmentation_lines_imported_as_gold_are_the_polygons(store, polygons_project, tmp_path):
    project, media = polygons_project
    write_files(yolo_dataset(store, project, media), tmp_path / "yolo")
    fresh = create_project(store, {**SCHEMA, "slug": "cells3"})
    add_items(store, fresh, [{"id": ext, "photo": f"cells/{ext}.jpg"} for ext in [*SIZES, "none"]])
    assert import_yolo_gold(store, fresh, tmp_path / "yolo", media).shapes == 3
    ids = {ext: item_id for item_id, ext, *_ in iter_items(store, fresh)}
    gold = gold_answers(store, fresh)
    assert set(gold) == {ids[ext] for ext in SIZES}
    for ext in SIZES:
        assert sorted(gold[ids[ext]]["shapes"], key=str) == sorted(WANT[ext], key=str)


def test_yolo_segmentation_lines_are_normalised_vertices(store, polygons_project):
    project, media = polygons_project
    files = yolo_dataset(store, project, media)
    assert files["classes.txt"] == "cat\ndog\n"
    assert sorted(files) == ["classes.txt", "data.yaml", "labels/cells/p0.txt", "labels/cells/p1.txt",
                             "labels/cells/p2.txt"]
    assert files["labels/cells/p2.txt"] == ""  # a negative
    for ext, (w, h) in SIZES.items():
        back = []
        for line in files[f"labels/cells/{ext}.txt"].splitlines():
            k, *xy = line.split()
            assert len(xy) % 2 == 0 and all(0 <= float(v) <= 1 for v in xy)
            back.append({"label": ["cat", "dog"][int(k)],
                         "points": [[round(float(xy[i]) * w, 2), round(float(xy[i + 1]) * h, 2)]
                                    for i in range(0, len(xy), 2)]})
        assert sorted(back, key=str) == sorted(WANT[ext], key=str)
    assert files["labels/cells/p1.txt"] == "1 0.000000 0.000000 0.100000 0.000000 0.100000 0.100000 0.000000 0.100000\n"


def test_voc_writes_the_polygons_bounding_boxes(store, polygons_project):
    project, media = polygons_project
    root = ET.fromstring(voc_dataset(store, project, media)["Annotations/cells/p0.xml"])
    objects = sorted((o.findtext("name"), [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
                     for o in root.iter("object"))
    assert objects == [("cat", [11, 21, 110, 90]), ("dog", [301, 201, 340, 260])]


def test_the_export_command_writes_coco_and_yolo(db_url, store, polygons_project, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command on one database is enough; the writers are tested on both above")
    _, media = polygons_project
    args = ["--db", db_url, "--set", f"media_root={media}", "export", "cells", "--format"]
    res = CliRunner().invoke(main, [*args, "coco", "-o", str(tmp_path / "cells.json")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    anns = json.loads((tmp_path / "cells.json").read_text())["annotations"]
    assert len(anns) == 3 and all(len(a["segmentation"][0]) >= 6 for a in anns)
    res = CliRunner().invoke(main, [*args, "yolo", "-o", str(tmp_path / "yolo")], catch_exceptions=False)
    assert res.exit_code == 0 and "wrote the folder" in res.output, res.output
    assert len((tmp_path / "yolo" / "labels/cells/p0.txt").read_text().splitlines()[0].split()) == 1 + 2 * 5


@pytest.fixture(autouse=True)
def _pillow_default_pixel_limit(monkeypatch):
    """Another module's test lowers Pillow's process-wide decompression-bomb limit; these images need the default."""
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 89_478_485)
