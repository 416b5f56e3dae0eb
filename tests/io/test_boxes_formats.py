"""A boxes question's labels as COCO JSON (loaded and evaluated by pycocotools), YOLO label files and Pascal VOC
XML (read back as torchvision's VOCDetection reads it, with ElementTree), on SQLite and PostgreSQL; and the
``labelwright export --format coco|yolo|voc`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import PIL.Image
import pytest
from click.testing import CliRunner
from PIL import Image

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io.coco import coco_dataset
from labelwright.io.detection_import import import_coco_gold
from labelwright.io.labelstudio import import_labelstudio
from labelwright.io.voc import voc_dataset
from labelwright.io.yolo import write_files, yolo_dataset
from labelwright.io.yolo_import import import_yolo_gold
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from tests.conftest import bearer

SCHEMA = {
    "name": "Pets", "slug": "pets", "overlap": 2, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "pets", "type": "boxes", "field": "photo", "labels": ["cat", "dog"]}],
}
SIZES = {"p0": (640, 480), "p1": (320, 200), "p2": (100, 100)}
WANT = {  # what both annotators draw (bob a pixel to the right): the fused label is half a pixel right
    "p0": [{"x": 10, "y": 20, "w": 100, "h": 50, "label": "cat"},
           {"x": 300, "y": 200, "w": 40, "h": 60, "label": "dog"}],
    "p1": [{"x": 0, "y": 0, "w": 32, "h": 20, "label": "dog"}],
    "p2": [],
}


@pytest.fixture
def boxes_project(http, store, owner, make_annotator, tmp_path):
    media = tmp_path / "media"
    (media / "pets").mkdir(parents=True)
    for ext, size in SIZES.items():
        Image.new("RGB", size, (10, 200, 30)).save(media / "pets" / f"{ext}.jpg")
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json=SCHEMA).status_code == 201
    rows = [{"id": ext, "photo": f"pets/{ext}.jpg"} for ext in SIZES] + [{"id": "none", "photo": "pets/none.jpg"}]
    assert http.post("/api/v1/projects/pets/items", headers=h, json={"items": rows}).status_code in (200, 201)
    for name, shift in (("ann", 0), ("bob", 1)):
        _, tok = make_annotator(name)
        for _ in range(4):
            item = http.post("/api/v1/projects/pets/next", headers=bearer(tok)).json()
            ext = item["data"]["photo"].split("/")[1].removesuffix(".jpg")
            if ext == "none":  # left unlabelled: skipped by both
                assert http.post(f"/api/v1/items/{item['id']}/skip", headers=bearer(tok)).status_code == 204
                continue
            boxes = [{**b, "x": b["x"] + shift} for b in WANT[ext]]
            r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                          json={"answers": {"pets": boxes}})
            assert r.status_code == 201, r.text
    return get_project(store, "pets"), media


def fused(ext: str) -> list[dict]:
    return [{**b, "x": b["x"] + 0.5} for b in WANT[ext]]


def test_coco_loads_in_pycocotools_and_scores_itself_perfectly(store, boxes_project, tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    project, media = boxes_project
    data = coco_dataset(store, project, media)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    gt = coco_api.COCO(str(path))
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == ["cat", "dog"]
    images = {img["external_id"]: img for img in gt.loadImgs(gt.getImgIds())}
    assert set(images) == {"p0", "p1", "p2"}  # "none" was not labelled; p2 is a labelled image with no box
    for ext, (w, h) in SIZES.items():
        img = images[ext]
        assert (img["width"], img["height"], img["file_name"]) == (w, h, f"pets/{ext}.jpg")
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))
        cats = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
        got = sorted(({"x": a["bbox"][0], "y": a["bbox"][1], "w": a["bbox"][2], "h": a["bbox"][3],
                       "label": cats[a["category_id"]]} for a in anns), key=lambda b: (b["y"], b["x"]))
        assert got == fused(ext)
        assert all(a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0 for a in anns)
    # the ground truth as detections (score 1) scores mAP 1 in COCOeval
    dets = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                       for a in data["annotations"]])
    ev = cocoeval.COCOeval(gt, dets, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_yolo_lines_are_normalised_centres_and_sizes(store, boxes_project):
    project, media = boxes_project
    files = yolo_dataset(store, project, media)
    assert files["classes.txt"] == "cat\ndog\n" and files["data.yaml"] == 'names:\n  0: "cat"\n  1: "dog"\n'
    assert sorted(files) == ["classes.txt", "data.yaml", "labels/pets/p0.txt", "labels/pets/p1.txt",
                             "labels/pets/p2.txt"]
    assert files["labels/pets/p2.txt"] == ""  # a negative
    for ext, (w, h) in SIZES.items():
        back = []
        for line in files[f"labels/pets/{ext}.txt"].splitlines():
            k, cx, cy, bw, bh = line.split()
            back.append({"x": round((float(cx) - float(bw) / 2) * w, 2), "y": round((float(cy) - float(bh) / 2) * h, 2),
                         "w": round(float(bw) * w, 2), "h": round(float(bh) * h, 2), "label": ["cat", "dog"][int(k)]})
            assert all(0 <= float(v) <= 1 for v in (cx, cy, bw, bh))
        assert back == fused(ext)
    assert files["labels/pets/p1.txt"] == "1 0.051562 0.050000 0.100000 0.100000\n"


def test_voc_xml_reads_back_as_torchvision_reads_it(store, boxes_project):
    project, media = boxes_project
    files = voc_dataset(store, project, media)
    assert sorted(files) == ["Annotations/pets/p0.xml", "Annotations/pets/p1.xml", "Annotations/pets/p2.xml"]
    root = ET.fromstring(files["Annotations/pets/p0.xml"])
    assert root.tag == "annotation" and root.findtext("filename") == "pets/p0.jpg"
    assert [root.findtext(f"size/{k}") for k in ("width", "height", "depth")] == ["640", "480", "3"]
    objects = [(o.findtext("name"), [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
               for o in root.iter("object")]
    # x 10.5 rounds to 10 (to even), plus one: VOC counts pixels from 1
    assert objects == [("cat", [11, 21, 110, 70]), ("dog", [301, 201, 340, 260])]
    assert list(ET.fromstring(files["Annotations/pets/p2.xml"]).iter("object")) == []


def test_a_missing_image_or_media_root_is_named(store, boxes_project, tmp_path):
    project, media = boxes_project
    with pytest.raises(ValidationError, match="item 'p0' field 'photo': the image's size is needed"):
        coco_dataset(store, project, None)
    (media / "pets" / "p1.jpg").unlink()
    with pytest.raises(ValidationError, match=r"item 'p1' field 'photo': no image 'pets/p1.jpg' under the media root"):
        coco_dataset(store, project, media)
    (media / "pets" / "p1.jpg").write_text("not an image")
    with pytest.raises(ValidationError, match="'pets/p1.jpg' is not an image Pillow reads"):
        yolo_dataset(store, project, media)


def test_the_export_command_writes_coco_yolo_and_voc(db_url, store, boxes_project, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command on one database is enough; the writers are tested on both above")
    _, media = boxes_project
    args = ["--db", db_url, "--set", f"media_root={media}", "export", "pets", "--format"]
    res = CliRunner().invoke(main, [*args, "coco", "-o", str(tmp_path / "pets.json")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "pets.json").read_text())["annotations"]) == 3
    for fmt, first in (("yolo", "labels/pets/p0.txt"), ("voc", "Annotations/pets/p0.xml")):
        res = CliRunner().invoke(main, [*args, fmt, "-o", str(tmp_path / fmt)], catch_exceptions=False)
        assert res.exit_code == 0 and "wrote the folder" in res.output, res.output
        assert (tmp_path / fmt / first).is_file()
    res = CliRunner().invoke(main, ["--db", db_url, "export", "pets", "--format", "coco", "-o",
                                    str(tmp_path / "again.json")])
    assert res.exit_code != 0 and "media root" in res.output and not (tmp_path / "again.json").exists()


def test_coco_imported_as_gold_into_a_fresh_project_is_the_labels(store, http, owner, boxes_project, tmp_path):
    """Export, import into a project with the same items: each exported image's gold is its label (``[]`` kept)."""
    project, media = boxes_project
    path = tmp_path / "pets.json"
    path.write_text(json.dumps(coco_dataset(store, project, media)))
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json={**SCHEMA, "slug": "pets2"}).status_code == 201
    rows = [{"id": ext, "photo": f"pets/{ext}.jpg"} for ext in [*SIZES, "none"]]
    assert http.post("/api/v1/projects/pets2/items", headers=h, json={"items": rows}).status_code in (200, 201)
    fresh = get_project(store, "pets2")
    done = import_coco_gold(store, fresh, path)
    assert (done.question, done.items, done.shapes) == ("pets", 3, 3)
    ids = {ext: item_id for item_id, ext, *_ in iter_items(store, fresh)}
    assert gold_answers(store, fresh) == {ids[ext]: {"pets": fused(ext)} for ext in SIZES}
    # and the project's labels are now the gold: exported again, the same boxes
    again = coco_dataset(store, fresh, media)
    assert [a["bbox"] for a in again["annotations"]] == [a["bbox"] for a in json.loads(path.read_text())["annotations"]]


def test_yolo_imported_as_gold_into_a_fresh_project_is_the_labels(store, boxes_project, tmp_path):
    """The YOLO folder written, read back into a project with the same items (sizes from the media root)."""
    project, media = boxes_project
    write_files(yolo_dataset(store, project, media), tmp_path / "yolo")
    fresh = create_project(store, {**SCHEMA, "slug": "pets3"})
    add_items(store, fresh, [{"id": ext, "photo": f"pets/{ext}.jpg"} for ext in [*SIZES, "none"]])
    done = import_yolo_gold(store, fresh, tmp_path / "yolo", media)
    assert (done.question, done.items, done.shapes) == ("pets", 3, 3)
    ids = {ext: item_id for item_id, ext, *_ in iter_items(store, fresh)}
    assert gold_answers(store, fresh) == {ids[ext]: {"pets": fused(ext)} for ext in SIZES}


URL_SCHEMA = {  # as a Label Studio import makes it: images by URL, their sizes in the item
    "name": "Web pets", "slug": "webpets", "overlap": 1, "id_field": "id", "gold": {"rate": 0},
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "pets", "type": "boxes", "field": "photo", "labels": ["cat", "dog"],
                   "width_field": "original_width", "height_field": "original_height"}],
}


def url_project(http, store, owner, make_annotator, rows: list[dict]):
    """The URL_SCHEMA project with ``rows``, each answered with WANT[row["id"]] by one annotator."""
    h = bearer(owner[1])
    assert http.post("/api/v1/projects", headers=h, json=URL_SCHEMA).status_code == 201
    assert http.post("/api/v1/projects/webpets/items", headers=h, json={"items": rows}).status_code in (200, 201)
    _, tok = make_annotator("cyd")
    for _ in rows:
        item = http.post("/api/v1/projects/webpets/next", headers=bearer(tok)).json()
        r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(tok),
                      json={"answers": {"pets": WANT[item["data"]["photo"].rsplit("/", 1)[1][:2]]}})
        assert r.status_code == 201, r.text
    return get_project(store, "webpets")


def test_url_images_are_sized_from_the_items_fields(store, http, owner, make_annotator, tmp_path):
    """No media root, no file: the sizes Label Studio stored (numbers, or numbers as text) are the images'."""
    coco_api = pytest.importorskip("pycocotools.coco")
    rows = [{"id": ext, "photo": f"https://images.example.org/pets/{ext}.jpg",
             "original_width": w if ext != "p1" else str(w), "original_height": float(h)}
            for ext, (w, h) in SIZES.items()]
    project = url_project(http, store, owner, make_annotator, rows)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco_dataset(store, project, None)))
    gt = coco_api.COCO(str(path))
    images = {img["external_id"]: img for img in gt.loadImgs(gt.getImgIds())}
    cats = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    for ext, (w, h) in SIZES.items():
        img = images[ext]
        assert (img["width"], img["height"], img["file_name"]) == (w, h, f"https://images.example.org/pets/{ext}.jpg")
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))
        assert sorted(({"x": a["bbox"][0], "y": a["bbox"][1], "w": a["bbox"][2], "h": a["bbox"][3],
                        "label": cats[a["category_id"]]} for a in anns), key=lambda b: (b["y"], b["x"])) == WANT[ext]
    # the stored sizes win over a file of another size under a media root
    media = tmp_path / "media"
    media.mkdir()
    assert yolo_dataset(store, project, media)["labels/pets/p1.txt"] == "1 0.050000 0.050000 0.100000 0.100000\n"
    voc = voc_dataset(store, project, None)  # per-image files are named by the URL's path
    assert sorted(voc) == ["Annotations/pets/p0.xml", "Annotations/pets/p1.xml", "Annotations/pets/p2.xml"]
    root = ET.fromstring(voc["Annotations/pets/p0.xml"])
    assert [root.findtext(f"size/{k}") for k in ("width", "height")] == ["640", "480"]


def test_a_label_studio_import_exports_to_coco_without_its_images(store, tmp_path):
    """Label Studio keeps the images by URL and each rectangle's original_width/height; the import stores them in
    the items and the COCO export reads them there (Label Studio's percentages back to the same pixels)."""
    coco_api = pytest.importorskip("pycocotools.coco")
    data = Path(__file__).parent / "data" / "labelstudio"
    import_labelstudio(store, data / "boxes.json", data / "boxes.xml", slug="lsboxes")
    tasks = json.loads((data / "boxes.json").read_text())
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(coco_dataset(store, get_project(store, "lsboxes"), None)))
    gt = coco_api.COCO(str(path))
    images = {img["file_name"]: img for img in gt.loadImgs(gt.getImgIds())}
    rects = {task["data"]["image"]: r for task in tasks for a in task["annotations"] for r in a["result"]
             if r["type"] == "rectanglelabels"}
    assert set(images) == set(rects) and rects  # a task without a rectangle has no boxes answer: left out
    for file_name, rect in rects.items():
        img = images[file_name]
        w, h = rect["original_width"], rect["original_height"]
        assert (img["width"], img["height"]) == (w, h)
        v = rect["value"]
        assert [a["bbox"] for a in gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))] == [
            [v["x"] * w / 100, v["y"] * h / 100, v["width"] * w / 100, v["height"] * h / 100]]


def test_an_item_without_its_size_is_named_with_the_fields(store, http, owner, make_annotator, tmp_path):
    rows = [{"id": "p0", "photo": "https://images.example.org/pets/p0.jpg", "original_width": 640,
             "original_height": 480},
            {"id": "p1", "photo": "https://images.example.org/pets/p1.jpg", "original_width": 320}]
    project = url_project(http, store, owner, make_annotator, rows)
    with pytest.raises(ValidationError, match="item 'p1' field 'photo': the image's size is needed: the item gives "
                                              "no size in 'original_width' and 'original_height'") as e:
        coco_dataset(store, project, None)
    assert "--media-root" in e.value.message
    with pytest.raises(ValidationError, match="item 'p1' field 'photo': the item gives no size in 'original_width'"
                                              ".*no image 'https://images.example.org/pets/p1.jpg' under the media"):
        voc_dataset(store, project, tmp_path)


@pytest.fixture(autouse=True)
def _pillow_default_pixel_limit(monkeypatch):
    """Another module's test lowers Pillow's process-wide decompression-bomb limit; these images need the default."""
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 89_478_485)
