"""Every export format over HTTP (``GET /api/v1/projects/{project}/export?format=...``) and on the owner's
project page, on SQLite and PostgreSQL: each download is loaded by the library that reads it (pycocotools,
spaCy, ``datasets``, zipfile and ElementTree); annotators are refused, a format the project's questions do
not fit is refused with an error naming the format and what it needs, an unknown format is 422."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import datasets
import pytest
from PIL import Image

from labelwright.io import trl
from labelwright.io.labelstudio import import_labelstudio
from labelwright.services.export_formats import labelstudio_files
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from labelwright.settings import Settings
from tests.conftest import bearer, post_login
from tests.questions.test_spans import IDS, texts, truth
from tests.questions.test_spans import SCHEMA as SPANS_SCHEMA

LABELSTUDIO = Path(__file__).parent.parent / "io" / "data" / "labelstudio"
BOXES_SCHEMA = {
    "name": "Pets", "slug": "pets", "overlap": 2, "id_field": "id",
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "pets", "type": "boxes", "field": "photo", "labels": ["cat", "dog"]}],
}
SIZES = {"p0": (640, 480), "p1": (320, 200), "p2": (100, 100)}
BOXES = {"p0": [{"x": 10, "y": 20, "w": 100, "h": 50, "label": "cat"},
                {"x": 300, "y": 200, "w": 40, "h": 60, "label": "dog"}],
         "p1": [{"x": 0, "y": 0, "w": 32, "h": 20, "label": "dog"}],
         "p2": []}


@pytest.fixture
def settings(db_url, tmp_path):
    """The app's settings with a media root, where the boxes project's images are (their sizes)."""
    return Settings(db_url=db_url, assist_worker=False, machine_worker=False, media_root=tmp_path / "media")


@pytest.fixture
def boxes_project(store, owner, tmp_path):
    """Three images under the media root, each with its boxes as gold (the project's labels)."""
    (tmp_path / "media" / "pets").mkdir(parents=True)
    for ext, size in SIZES.items():
        Image.new("RGB", size, (10, 200, 30)).save(tmp_path / "media" / "pets" / f"{ext}.jpg")
    p = create_project(store, BOXES_SCHEMA, created_by=owner[0].id)
    add_items(store, p, [{"id": ext, "photo": f"pets/{ext}.jpg", "gold": {"pets": BOXES[ext]}} for ext in SIZES])
    return p


@pytest.fixture
def spans_project(store, owner):
    """Six TREC questions with their true entity spans as gold."""
    t = texts()
    p = create_project(store, {**SPANS_SCHEMA, "slug": "ents", "name": "ents"}, created_by=owner[0].id)
    add_items(store, p, [{"id": i, "text": t[i], "gold": {"ents": truth(t, i)}} for i in IDS])
    return p


def _labelstudio(store, name: str):
    import_labelstudio(store, LABELSTUDIO / f"{name}.json", LABELSTUDIO / f"{name}.xml")
    return get_project(store, name)


def download(http, owner, slug: str, fmt: str, name: str, media_type: str) -> bytes:
    r = http.get(f"/api/v1/projects/{slug}/export", params={"format": fmt}, headers=bearer(owner[1]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media_type
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    return r.content


def unzip(body: bytes, into: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.testzip() is None
        z.extractall(into)
        return sorted(z.namelist())


def test_a_boxes_project_downloads_as_coco_yolo_voc(http, owner, boxes_project, tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    path = tmp_path / "pets-coco.json"
    path.write_bytes(download(http, owner, "pets", "coco", "pets-coco.json", "application/json"))
    coco = coco_api.COCO(str(path))
    assert [coco.imgs[i]["width"] for i in sorted(coco.imgs)] == [640, 320, 100]  # read under the media root
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == ["cat", "dog"]
    boxes = sorted((a["bbox"], coco.cats[a["category_id"]]["name"]) for a in coco.loadAnns(coco.getAnnIds()))
    assert boxes == sorted(([b["x"], b["y"], b["w"], b["h"]], b["label"]) for bs in BOXES.values() for b in bs)

    names = unzip(download(http, owner, "pets", "yolo", "pets-yolo.zip", "application/zip"), tmp_path / "y")
    assert names == ["pets-yolo/classes.txt", "pets-yolo/data.yaml", "pets-yolo/labels/pets/p0.txt",
                     "pets-yolo/labels/pets/p1.txt", "pets-yolo/labels/pets/p2.txt"]
    assert (tmp_path / "y/pets-yolo/classes.txt").read_text() == "cat\ndog\n"
    assert (tmp_path / "y/pets-yolo/labels/pets/p1.txt").read_text() == "1 0.050000 0.050000 0.100000 0.100000\n"
    assert (tmp_path / "y/pets-yolo/labels/pets/p2.txt").read_text() == ""  # a negative

    names = unzip(download(http, owner, "pets", "voc", "pets-voc.zip", "application/zip"), tmp_path / "v")
    assert names == [f"pets-voc/Annotations/pets/{ext}.xml" for ext in SIZES]
    root = ET.parse(tmp_path / "v/pets-voc/Annotations/pets/p0.xml").getroot()
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("640", "480")
    assert [o.findtext("name") for o in root.iter("object")] == ["cat", "dog"]


def test_a_boxes_project_downloads_as_labelstudio_hf_and_flat_files(http, store, owner, boxes_project, tmp_path):
    names = unzip(download(http, owner, "pets", "labelstudio", "pets-labelstudio.zip", "application/zip"), tmp_path)
    assert names == ["NOTES.txt", "pets.json", "pets.label_config.xml"]
    # what the format could not hold comes with it, as the CLI prints it: here, the boxes (no sizes in the items)
    _tasks, _config, notes = labelstudio_files(store, boxes_project)
    assert notes and (tmp_path / "NOTES.txt").read_text().splitlines() == notes
    tasks = json.loads((tmp_path / "pets.json").read_text())
    assert sorted(t["data"]["photo"] for t in tasks) == [f"pets/{ext}.jpg" for ext in SIZES]
    config = ET.parse(tmp_path / "pets.label_config.xml").getroot()
    assert config.tag == "View" and config.find("Image").get("value") == "$photo"

    names = unzip(download(http, owner, "pets", "hf", "pets-hf.zip", "application/zip"), tmp_path / "h")
    assert "pets-hf/dataset_info.json" in names
    ds = datasets.load_from_disk(str(tmp_path / "h" / "pets-hf"))
    assert ds.num_rows == 3 and sorted(ds["external_id"]) == list(SIZES)

    lines = download(http, owner, "pets", "jsonl", "pets.jsonl", "application/x-ndjson").splitlines()
    assert [json.loads(line)["external_id"] for line in lines] == list(SIZES)
    assert download(http, owner, "pets", "csv", "pets.csv", "text/csv").startswith(b"item_id,")
    assert download(http, owner, "pets", "parquet", "pets.parquet", "application/vnd.apache.parquet")[:4] == b"PAR1"


def test_a_spans_project_downloads_as_conll_and_spacy(http, owner, spans_project, tmp_path):
    body = download(http, owner, "ents", "conll", "ents.conll", "text/plain").decode()
    assert body.startswith("-DOCSTART- -X- -X- O\n")
    assert body.count("\n\n") == len(IDS) + 1 and " B-" in body
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin  # noqa: PLC0415 - spaCy is optional

    docs = list(DocBin().from_bytes(download(http, owner, "ents", "spacy", "ents.spacy", "application/octet-stream"))
                .get_docs(spacy.blank("xx").vocab))
    t = texts()
    assert sorted(d.text for d in docs) == sorted(t[i] for i in IDS)
    by_text = {d.text: sorted((s.start_char, s.end_char, s.label_) for s in d.spans["sc"]) for d in docs}
    assert by_text == {t[i]: sorted((s["start"], s["end"], s["label"]) for s in truth(t, i)) for i in IDS}


def test_preference_and_demonstration_projects_download_as_trl_sets(http, store, owner, tmp_path):
    preference, demos = _labelstudio(store, "preference"), _labelstudio(store, "demos")
    path = tmp_path / "preference-dpo.jsonl"
    path.write_bytes(download(http, owner, "preference", "dpo", path.name, "application/x-ndjson"))
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds.to_list() == trl.preference_rows(store, preference) and ds.num_rows > 0

    path = tmp_path / "demos-sft.jsonl"
    path.write_bytes(download(http, owner, "demos", "sft", path.name, "application/x-ndjson"))
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.to_list() == trl.demonstration_rows(store, demos) and ds.num_rows > 0
    assert ds[0]["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize(("fmt", "needs"), [("conll", "a spans question"), ("spacy", "a spans question"),
                                            ("dpo", "a pairwise or chat question"),
                                            ("sft", "a free-text or chat question")])
def test_a_format_the_project_does_not_fit_says_what_it_needs(http, owner, boxes_project, fmt, needs):
    r = http.get(f"/api/v1/projects/pets/export?format={fmt}", headers=bearer(owner[1]))
    assert r.status_code == 422
    assert r.json()["field"] == "format"
    assert r.json()["error"].startswith(f"the {fmt} export (") and f"needs {needs}" in r.json()["error"]
    assert "question types: boxes" in r.json()["error"]


def test_coco_on_a_project_without_boxes_is_refused(http, owner, spans_project):
    r = http.get("/api/v1/projects/ents/export?format=coco", headers=bearer(owner[1]))
    assert r.status_code == 422 and "needs a boxes or polygons question" in r.json()["error"]


def test_an_unknown_format_is_422_and_annotators_are_refused(http, owner, make_annotator, boxes_project):
    r = http.get("/api/v1/projects/pets/export?format=xml", headers=bearer(owner[1]))
    assert r.status_code == 422 and r.json()["field"] == "format"
    _, token = make_annotator("ann")  # a member of pets
    for fmt in ("coco", "yolo", "labelstudio", "jsonl"):
        assert http.get(f"/api/v1/projects/pets/export?format={fmt}", headers=bearer(token)).status_code == 403


def test_the_project_page_lists_the_formats_that_apply(http, owner, boxes_project, spans_project):
    assert post_login(http, "olive", "owner-password").status_code in (200, 303)
    page = http.get("/projects/pets").text
    linked = {fmt for fmt in ("jsonl", "csv", "parquet", "labelstudio", "hf", "coco", "yolo", "voc", "conll",
                              "spacy", "dpo", "sft")
              if f'href="/api/v1/projects/pets/export?format={fmt}" download' in page}
    assert linked == {"jsonl", "csv", "parquet", "labelstudio", "hf", "coco", "yolo", "voc"}
    assert "pycocotools" in page and "pets-yolo.zip" in page
    page = http.get("/projects/ents").text
    assert 'href="/api/v1/projects/ents/export?format=conll" download' in page
    assert 'href="/api/v1/projects/ents/export?format=spacy" download' in page
    assert "format=coco" not in page and "format=dpo" not in page


def test_a_format_whose_library_is_missing_says_how_to_install_it(http, owner, spans_project, monkeypatch):
    """spaCy and datasets are optional extras: without them the page names the extra instead of a link."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("spacy", "datasets")
                        else real(name, *a))
    assert post_login(http, "olive", "owner-password").status_code in (200, 303)
    page = http.get("/projects/ents").text
    assert 'format=spacy' not in page and 'format=hf' not in page
    assert 'data-missing="spacy"' in page and "pip install 'labelwright[spacy]'" in page
    assert 'data-missing="hf"' in page and "pip install 'labelwright[hf]'" in page
    assert 'href="/api/v1/projects/ents/export?format=conll" download' in page
