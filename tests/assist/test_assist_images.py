"""Image features (pixel statistics) and the assistant on an image-only project, on both databases."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

pytest.importorskip("PIL", reason="image features need the 'images' extra (Pillow); the test extra installs it")

import json

from PIL import Image

from labelwright.assist import images
from labelwright.assist.images import DIM, PixelStatistics
from labelwright.services import access, assistant, queue, users
from labelwright.services.items import add_items
from labelwright.services.projects import create_project


def _picture(path, colour: str, rng) -> None:
    """A 40x30 picture: mostly red or mostly blue, with noise and a random dark bar."""
    base = np.array([200, 40, 40] if colour == "red" else [40, 60, 200], dtype=float)
    a = np.clip(base + rng.normal(0, 35, (30, 40, 3)), 0, 255)
    x = rng.integers(0, 30)
    a[:, x:x + 6] *= 0.3
    Image.fromarray(a.astype(np.uint8)).save(path)


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(7)
    root = tmp_path / "media"
    (root / "pics").mkdir(parents=True)
    truth = {}
    for i in range(90):
        colour = "red" if rng.random() < 0.5 else "blue"
        name = f"pics/{i:03d}.png"
        _picture(root / name, colour, rng)
        truth[name] = colour
    (root / "pics" / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "outside.png").write_bytes((root / "pics" / "000.png").read_bytes())
    return root, truth


def test_pixel_statistics_read_only_local_images_under_the_root(pictures):
    root, truth = pictures
    feats = PixelStatistics(root)
    x = feats.transform(["pics/000.png", "pics/001.png", "https://example.org/a.png", "../outside.png",
                         "pics/broken.png", "pics/missing.png", None, 17])
    assert x.shape == (8, DIM) and x.dtype == np.float32
    assert np.abs(x[0]).sum() > 0 and np.abs(x[1]).sum() > 0
    assert not x[2:].any(), "URLs, paths outside the root, broken and missing files give zeros"
    red = feats.describe(root / next(n for n, c in truth.items() if c == "red"))
    blue = feats.describe(root / next(n for n, c in truth.items() if c == "blue"))
    assert red[0] > red[2] and blue[2] > blue[0], "the channel means come first: red, green, blue"
    assert PixelStatistics(None).transform(["pics/000.png"]).sum() == 0  # no media root: nothing is read
    assert feats.version.startswith("pixels-v1[")


def test_the_assistant_learns_from_pictures(store, owner, pictures):
    root, truth = pictures
    schema = {"name": "Colours", "slug": "colours", "overlap": 1, "fields": [{"name": "photo", "type": "image"}],
              "questions": [{"name": "colour", "type": "single_choice", "options": ["red", "blue"]}],
              "assist": {"min_train": 10}}
    p = create_project(store, schema, created_by=owner[0].id)
    add_items(store, p, [{"id": n, "photo": n} for n in sorted(truth)])
    ann = users.create_user(store, "ann", "annotator")
    access.set_member(store, p, "ann", "annotator")
    first = assistant.step(store, p, media_root=root)
    assert first.featurised == 90 and first.error is None
    with store.read() as conn:
        version = conn.execute(text("SELECT DISTINCT version FROM item_features WHERE project_id = :p"),
                               {"p": p.id}).scalar()
    assert version.startswith("pixels-v1[")  # no text field: pixel statistics alone
    for _ in range(30):
        item = queue.claim_next(store, p, ann)
        queue.submit(store, item["id"], ann, {"colour": truth[item["data"]["photo"]]})
    rep = assistant.step(store, p, media_root=root)
    assert rep.trained == "builtin-1"
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT i.data, p.label FROM predictions p JOIN items i ON i.id = p.item_id WHERE i.n_done = 0"
            " AND i.project_id = :p"), {"p": p.id}).all()

    right = sum(json.loads(label) == truth[json.loads(data)["photo"]] for data, label in rows)
    assert len(rows) == 60 and right / len(rows) >= 0.95


def test_an_oversized_image_gets_no_features_and_stops_nothing(tmp_path, monkeypatch):
    """A picture past the pixel limit (a decompression bomb) is refused like a broken file."""
    Image.new("RGB", (300, 300), (200, 20, 20)).save(tmp_path / "big.png")
    Image.new("RGB", (30, 30), (200, 20, 20)).save(tmp_path / "small.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)  # 300x300 is then over the limit
    x = PixelStatistics(tmp_path).transform(["big.png", "small.png"])
    assert not x[0].any() and x[1].any()


def test_describing_images_leaves_pillows_process_wide_limit_alone(tmp_path):
    """The pixel limit is checked per image: Pillow's global MAX_IMAGE_PIXELS, which every other module
    decoding images relies on (thumbnails, the boxes exporters), stays at its default."""
    before = Image.MAX_IMAGE_PIXELS
    Image.new("RGB", (30, 30), (200, 20, 20)).save(tmp_path / "small.png")
    assert PixelStatistics(tmp_path).transform(["small.png"]).any()
    assert Image.MAX_IMAGE_PIXELS == before
