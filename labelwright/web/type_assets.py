"""A question type's own scripts and styles (``QuestionType.assets``), for types from plugin packages.

``/static/<version>/...`` serves labelwright's own files only; a type that lives in another package lists its
``.js``/``.css`` files next to its module, and its form partial links them with
``{{ type_asset_url("yes_no", "yes_no.js") }}``, which gives ``/static/types/yes_no/<digest>/yes_no.js``. The
digest is a hash of the file, so the answer may be cached for good, as labelwright's own static files are;
the pages' Content-Security-Policy (``script-src 'self'``) allows it, where it would refuse inline code.
Only files the type lists are served: nothing else of the package's folder can be read through this route.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from fastapi.responses import FileResponse, Response

from labelwright.errors import NotFound
from labelwright.questions import registry
from labelwright.web.assets import IMMUTABLE


@functools.lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _file(tag: str, name: str) -> Path:
    try:
        cls = registry.get(tag)
    except registry.QuestionTypeError:
        raise NotFound(f"no question type {tag!r}") from None
    path = cls.asset_path(name)
    if path is None or not path.is_file():
        raise NotFound(f"question type {tag!r} has no asset {name!r}")
    return path


def digest_of(path: Path) -> str:
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def type_asset_url(tag: str, name: str) -> str:
    """The URL of question type ``tag``'s asset ``name`` (a template global)."""
    return f"/static/types/{tag}/{digest_of(_file(tag, name))}/{name}"


def type_asset(tag: str, digest: str, name: str) -> Response:
    path = _file(tag, name)
    current = digest_of(path)
    response = FileResponse(path, media_type=registry.ASSET_TYPES[path.suffix])
    # an old digest (the file changed since the page was made) still gets the file, but revalidated
    response.headers["Cache-Control"] = IMMUTABLE if digest == current else "no-cache"
    return response


def add_routes(r):
    r.add_api_route("/static/types/{tag}/{digest}/{name:path}", type_asset, methods=["GET"])
