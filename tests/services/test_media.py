"""Media by reference (docs/formats/media.md): the resolvers refuse paths that leave the media root and name
what is wrong; thumbnails are made with Pillow, cached on disk by the source's identity and reused; remote
images come from a real HTTP server (python's http.server in a thread), behind the private-address guard."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from labelwright.services import media, thumbnails
from labelwright.services.media import MediaError, Source
from labelwright.settings import Settings
from tests.media_server import serve_folder


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "media"
    (r / "cats").mkdir(parents=True)
    Image.new("RGB", (640, 480), (200, 30, 30)).save(r / "cats" / "tom.jpg")
    (tmp_path / "secret.png").write_bytes(b"secret")
    return r


@pytest.fixture
def settings(root, tmp_path) -> Settings:
    return Settings(media_root=root, media_cache_dir=tmp_path / "cache", media_s3_endpoint="http://minio.test:9000/")


# ---- resolvers ---------------------------------------------------------------------------------------


def test_paths_resolve_under_the_media_root(settings, root):
    assert media.resolve(settings, "cats/tom.jpg") == Source("cats/tom.jpg", path=root.resolve() / "cats/tom.jpg")
    inside = str(root / "cats" / "tom.jpg")  # an absolute path inside the root is fine
    assert media.resolve(settings, inside).path == root.resolve() / "cats/tom.jpg"


@pytest.mark.parametrize("ref", ["../secret.png", "cats/../../secret.png", "cats/../tom.jpg", "..\\secret.png",
                                 "cats\\..\\..\\secret.png"])
def test_dot_dot_is_refused(settings, ref):
    with pytest.raises(MediaError, match=r"may not contain '\.\.'"):
        media.resolve(settings, ref)


@pytest.mark.parametrize("ref", ["/etc/passwd", "C:\\Windows\\win.ini", "c:/x.png", "\\\\server\\share\\x.png"])
def test_absolute_paths_outside_the_root_are_refused(settings, ref):
    with pytest.raises(MediaError, match="outside the media root|relative to the media root"):
        media.resolve(settings, ref)


def test_a_symlink_out_of_the_root_is_refused(settings, root, tmp_path):
    (root / "escape").symlink_to(tmp_path)  # a folder link
    (root / "cats" / "sneaky.png").symlink_to(tmp_path / "secret.png")  # a file link
    for ref in ("escape/secret.png", "cats/sneaky.png"):
        with pytest.raises(MediaError, match="leads outside the media root"):
            media.resolve(settings, ref)
    (root / "cats" / "alias.jpg").symlink_to(root / "cats" / "tom.jpg")  # a link within the root is fine
    assert media.resolve(settings, "cats/alias.jpg").path == root.resolve() / "cats/tom.jpg"


def test_no_media_root_says_which_setting(tmp_path):
    with pytest.raises(MediaError, match="no media root: set media_root"):
        media.resolve(Settings(), "cats/tom.jpg")


@pytest.mark.parametrize("ref", ["ftp://example.org/a.png", "file:///etc/passwd", "javascript:alert(1)",
                                 "data:image/png;base64,AAAA"])
def test_an_unknown_scheme_is_a_clear_error(settings, ref):
    with pytest.raises(MediaError, match=r"unknown media scheme '\w+'; known: a path under the media root, "
                                         r"http://, https://, s3://"):
        media.resolve(settings, ref)


def test_urls_and_s3_objects(settings):
    assert media.resolve(settings, "https://img.example.org/a b.png").url == "https://img.example.org/a b.png"
    assert media.resolve(settings, "s3://pets/cats/tom 1.jpg").url == "http://minio.test:9000/pets/cats/tom%201.jpg"
    for bad in ("s3://P/x.png", "s3://pets", "s3://pets/", "s3://a/x.png"):
        with pytest.raises(MediaError, match="write s3://bucket/key"):
            media.resolve(settings, bad)
    with pytest.raises(MediaError, match="media_s3_endpoint is not set"):
        media.resolve(Settings(), "s3://pets/tom.jpg")
    with pytest.raises(MediaError, match="not an http"):
        media.resolve(settings, "http:///no-host.png")
    for empty in ("", "  ", None, 3):
        with pytest.raises(MediaError, match="non-empty string"):
            media.resolve(settings, empty)


class Shelf:
    """A plugin resolver: ``shelf:NAME`` is ``NAME`` under the media root's ``shelf`` folder."""

    def __init__(self, settings):
        self.folder = media.LocalFolder(settings)

    def resolve(self, reference: str) -> Source:
        return self.folder.resolve("shelf/" + reference.split(":", 1)[1])


def test_a_plugin_resolver_joins_by_its_scheme(settings, root):
    assert "shelf" not in media.known_schemes()
    media.register("shelf", Shelf)
    try:
        assert "shelf" in media.known_schemes()
        assert media.resolve(settings, "shelf:a.png").path == root.resolve() / "shelf/a.png"
        with pytest.raises(MediaError, match="may not contain"):
            media.resolve(settings, "shelf:../../secret.png")  # the plugin gets the built-in checks it reuses
    finally:
        media.unregister("shelf")
    with pytest.raises(MediaError, match="built-in"):
        media.unregister("s3")


def test_the_built_ins_are_the_packages_entry_points():
    """pyproject.toml declares the built-ins in the group a plugin uses."""
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split('[project.entry-points."labelwright.media_resolvers"]', 1)[1].split("\n\n", 1)[0]
    for name, value in media.BUILTINS:
        assert f'{name} = "{value}"' in section


# ---- thumbnails of local files ---------------------------------------------------------------------------


def _cached_files(settings) -> list[Path]:
    return sorted(p for p in Path(settings.media_cache_dir).rglob("*") if p.is_file() and p.suffix != ".json")


def test_a_thumbnail_is_made_once_and_remade_when_the_file_changes(settings, root):
    source = media.resolve(settings, "cats/tom.jpg")
    t = thumbnails.thumbnail(source, settings)
    assert t.media_type == "image/jpeg" and t.path.is_relative_to(settings.media_cache_dir)
    with Image.open(t.path) as im:
        assert im.size == (256, 192)  # the longest side 256, the shape kept
    made = t.path.stat().st_mtime_ns
    again = thumbnails.thumbnail(source, settings)
    assert again.path == t.path and again.path.stat().st_mtime_ns == made  # reused, not made again
    Image.new("RGBA", (100, 300), (0, 0, 0, 0)).save(root / "cats" / "tom.jpg", "PNG")  # a new file, same name
    newer = thumbnails.thumbnail(source, settings)
    assert newer.path != t.path and newer.media_type == "image/png"  # transparency kept
    assert len(_cached_files(settings)) == 2


def test_too_many_pixels_are_refused_before_decoding(settings, root):
    Image.new("L", (3000, 2000)).save(root / "big.png")
    small = settings.with_(media_max_pixels=5_000_000)
    with pytest.raises(MediaError, match=r"3000×2000 pixels, more than media_max_pixels \(5000000\)"):
        thumbnails.thumbnail(media.resolve(small, "big.png"), small)
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's own process-wide limit is untouched
    assert thumbnails.thumbnail(media.resolve(settings, "big.png"), settings).path.is_file()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels in a few dozen bytes (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


def test_decompression_bombs_are_refused_from_their_header(settings, root):
    (root / "bomb.png").write_bytes(_png_header(10_000, 10_000))
    with pytest.raises(MediaError, match=r"10000×10000 pixels, more than media_max_pixels \(50000000\)"):
        thumbnails.thumbnail(media.resolve(settings, "bomb.png"), settings)
    (root / "huge.png").write_bytes(_png_header(30_000, 30_000))  # above Pillow's own hard limit too
    with pytest.raises(MediaError, match="too many pixels|more than media_max_pixels"):
        thumbnails.thumbnail(media.resolve(settings, "huge.png"), settings.with_(media_max_pixels=10**10))
    assert _cached_files(settings) == [] and Image.MAX_IMAGE_PIXELS == 89478485


def test_a_file_that_is_not_an_image(settings, root):
    (root / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(MediaError, match="not an image Pillow can read"):
        thumbnails.thumbnail(media.resolve(settings, "fake.png"), settings)
    with pytest.raises(MediaError, match="no image 'gone.png'"):
        thumbnails.thumbnail(media.resolve(settings, "gone.png"), settings)
    assert _cached_files(settings) == []


# ---- remote images --------------------------------------------------------------------------------------


@pytest.fixture
def web(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www``: ``(base_url, www, seen requests)``."""
    www = tmp_path / "www"
    (www / "pets").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (1000, 500), (10, 200, 10)).save(buf, "PNG")
    (www / "pets" / "rex.png").write_bytes(buf.getvalue())
    (www / "rex.png").write_bytes(buf.getvalue())
    with serve_folder(www) as s:
        yield s.url, www, s.seen, s


def test_a_remote_thumbnail_is_fetched_once_then_revalidated(settings, web):
    base, www, seen, server = web
    local = settings.with_(media_allow_private=True)
    source = media.resolve(local, f"{base}/pets/rex.png")
    t = thumbnails.thumbnail(source, local)
    with Image.open(t.path) as im:
        assert im.size == (256, 128)
    made = t.path.stat().st_mtime_ns
    again = thumbnails.thumbnail(source, local)  # If-Modified-Since, answered 304: the same file
    assert again.path == t.path and again.path.stat().st_mtime_ns == made
    assert seen[-1]["ims"] is not None
    # by ETag: If-None-Match, 304
    etagged = media.resolve(local, f"{base}/etag/rex.png")
    first = thumbnails.thumbnail(etagged, local)
    assert thumbnails.thumbnail(etagged, local).path == first.path and seen[-1]["inm"] == '"v1"'
    # the image gone: its server says so
    os.unlink(www / "pets" / "rex.png")
    with pytest.raises(MediaError, match="answered 404"):
        thumbnails.thumbnail(source, local)
    # the image's server away: the thumbnail made before is served
    server.stop()
    assert thumbnails.thumbnail(etagged, local.with_(media_fetch_seconds=1)).path == first.path


def test_s3_through_an_endpoint(settings, web):
    base, _, seen, _ = web
    s3 = settings.with_(media_s3_endpoint=base, media_allow_private=True)
    t = thumbnails.thumbnail(media.resolve(s3, "s3://pets/rex.png"), s3)
    assert t.path.is_file() and seen[-1]["path"] == "/pets/rex.png"


def test_private_addresses_are_refused_unless_allowed(settings, web):
    base, _, seen, _ = web
    source = media.resolve(settings, f"{base}/pets/rex.png")
    with pytest.raises(MediaError, match="may not fetch from 127.0.0.1, a loopback address.*media_allow_private"):
        thumbnails.thumbnail(source, settings)
    assert seen == []  # refused before connecting


def test_remote_limits(settings, web):
    base, _, _, _ = web
    local = settings.with_(media_allow_private=True)
    with pytest.raises(MediaError, match=r"more than media_max_bytes \(100\)"):
        thumbnails.thumbnail(media.resolve(local, f"{base}/pets/rex.png"), local.with_(media_max_bytes=100))
    with pytest.raises(MediaError, match="answered 404"):
        thumbnails.thumbnail(media.resolve(local, f"{base}/pets/missing.png"), local)
    with pytest.raises(MediaError, match="answered 301"):  # redirects are not followed (the guard checks one host)
        thumbnails.thumbnail(media.resolve(local, f"{base}/pets"), local)
    assert _cached_files(settings) == []
