"""Thumbnails of referenced images, made with Pillow and cached on disk (``Settings.thumbnail_dir``), never in
the database (docs/formats/media.md).

A thumbnail's file name is a hash of its source's identity, so a changed source gets a new thumbnail and an
unchanged one is made once:

* a local file: its real path, modification time (ns) and size;
* a remote image (``http(s)://``, ``s3://`` after resolving): its URL and the ETag (else Last-Modified, else
  a hash of the bytes) the server answered. Each request for it revalidates with ``If-None-Match`` /
  ``If-Modified-Since``; a ``304`` reuses the cached thumbnail, and so does a server that cannot be reached.

Remote images are fetched by this server only to make thumbnails (the browser loads the full image from its
URL itself): over a transport that refuses private, loopback and link-local addresses
(:class:`labelwright.services.webhook_worker.GuardedTransport`, the webhooks' guard) unless
``media_allow_private``, within ``media_fetch_seconds`` and at most ``media_max_bytes``, following no
redirects. An image of more than ``media_max_pixels`` pixels is refused before it is decoded (a decompression
bomb); Pillow's own process-wide limit is left as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from labelwright.services.media import MediaError, Source
from labelwright.services.webhook_worker import DestinationRefused, GuardedTransport

try:
    from PIL import Image, ImageOps
except ImportError:  # pragma: no cover - Pillow is the "images" extra
    Image = ImageOps = None  # type: ignore[assignment]

SIZE = 256  # the longest side of a thumbnail, in pixels
VERSION = "1"  # part of every key: a new way of making thumbnails makes new ones
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")  # what Pillow may decode here


@dataclass(frozen=True)
class Thumbnail:
    path: Path
    media_type: str


def available() -> bool:
    """Whether thumbnails can be made here (Pillow is installed: ``pip install labelwright[images]``)."""
    return Image is not None


def thumbnail(source: Source, settings: Any, *, transport: httpx.BaseTransport | None = None) -> Thumbnail:
    """The cached thumbnail of ``source``, made when there is none for its current identity."""
    if not available():
        raise MediaError("thumbnails need Pillow on the server: pip install 'labelwright[images]'")
    cache = Path(settings.thumbnail_dir)
    if source.path is not None:
        try:
            st = source.path.stat()
        except OSError:
            raise MediaError(f"no image {source.reference!r} under the media root") from None
        key = _key("file", str(source.path), str(st.st_mtime_ns), str(st.st_size))
        found = _cached(cache, key)
        if found is not None:
            return found
        with source.path.open("rb") as f:
            return _make(f, cache, key, source.reference, settings.media_max_pixels)
    assert source.url is not None
    return _remote(source, settings, cache, transport)


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join((VERSION, str(SIZE), *parts)).encode()).hexdigest()


def _cached(cache: Path, key: str) -> Thumbnail | None:
    for ext, kind in (("jpg", "image/jpeg"), ("png", "image/png")):
        path = cache / key[:2] / f"{key}.{ext}"
        if path.is_file():
            return Thumbnail(path, kind)
    return None


def _make(fp, cache: Path, key: str, reference: str, max_pixels: int) -> Thumbnail:
    """Decode ``fp`` (at most ``max_pixels``), shrink it to :data:`SIZE` and store it under ``key``."""
    try:
        with Image.open(fp, formats=FORMATS) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise MediaError(f"{reference!r} is {w}×{h} pixels, more than media_max_pixels ({max_pixels}): "
                                 "no thumbnail")
            im.draft("RGB", (SIZE, SIZE))  # JPEG: decode at a fraction of the size
            im = ImageOps.exif_transpose(im)  # as the browser shows it
            im.thumbnail((SIZE, SIZE))
            alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if alpha else "RGB")
            ext, kind, fmt = ("png", "image/png", "PNG") if alpha else ("jpg", "image/jpeg", "JPEG")
            folder = cache / key[:2]
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    im.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
                target = folder / f"{key}.{ext}"
                os.replace(tmp, target)  # whole or not at all, whoever else makes it at the same time
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return Thumbnail(target, kind)
    except MediaError:
        raise
    except Image.DecompressionBombError as e:
        raise MediaError(f"{reference!r}: too many pixels ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's "cannot identify image file" and friends
        raise MediaError(f"{reference!r} is not an image Pillow can read ({type(e).__name__}: {e})") from None


# ---- remote images --------------------------------------------------------------------------------------


def _remote(source: Source, settings: Any, cache: Path, transport: httpx.BaseTransport | None) -> Thumbnail:
    url = str(source.url)
    meta_path = cache / "remote" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"
    meta = _read_meta(meta_path)
    known = _cached(cache, meta["key"]) if meta else None
    headers = {}
    if known is not None and meta is not None:
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    if transport is None:
        transport = httpx.HTTPTransport() if settings.media_allow_private else GuardedTransport()
    try:
        with httpx.Client(transport=transport, timeout=settings.media_fetch_seconds,
                          follow_redirects=False) as client, client.stream("GET", url, headers=headers) as r:
            if r.status_code == 304 and known is not None:
                return known
            if r.status_code != 200:
                raise MediaError(f"{source.reference!r}: {url} answered {r.status_code}")
            body = _read_limited(r, settings.media_max_bytes, source.reference)
            etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
    except DestinationRefused as e:
        raise MediaError(f"{source.reference!r}: the server may not fetch from {e}; an owner can set "
                         "media_allow_private for media on this machine or the local network") from None
    except httpx.HTTPError as e:
        if known is not None:
            return known  # the image's server is away: the thumbnail made before will do
        raise MediaError(f"{source.reference!r}: cannot fetch {url}: {type(e).__name__}: {e}") from None
    key = _key("url", url, etag or modified or hashlib.sha256(body).hexdigest())
    thumb = _cached(cache, key) or _make(io.BytesIO(body), cache, key, source.reference, settings.media_max_pixels)
    _write_meta(meta_path, {"url": url, "key": key, "etag": etag, "last_modified": modified})
    return thumb


def _read_limited(r: httpx.Response, limit: int, reference: str) -> bytes:
    length = r.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise MediaError(f"{reference!r} is {int(length)} bytes, more than media_max_bytes ({limit})")
    chunks, total = [], 0
    for chunk in r.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise MediaError(f"{reference!r} is more than media_max_bytes ({limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("key"), str) else None


def _write_meta(path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(meta, out)
    os.replace(tmp, path)
