"""Media files: the images that items name by a relative path, served from ``settings.media_root``
(``--media-root``) to signed-in users; never a file outside it, and only images."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse

from labelwright.errors import NotFound
from labelwright.web import current_session


def media_file(path: str, request: Request):
    """An image from ``settings.media_root``; never a file outside it, and only images."""
    current_session(request)
    root = request.app.state.settings.media_root
    if root is None:
        raise NotFound("this server serves no media files (start it with --media-root)")
    base = Path(root).resolve()
    target = (base / path).resolve()
    kind = mimetypes.guess_type(target.name)[0] or ""
    if not target.is_relative_to(base) or not target.is_file() or not kind.startswith("image/"):
        raise NotFound(f"no image {path!r}")
    return FileResponse(target, media_type=kind, headers={
        # An SVG opened on its own must not run script in this origin.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "X-Content-Type-Options": "nosniff",
    })


def add_routes(r):
    r.add_api_route("/media/{path:path}", media_file, methods=["GET"])
    return r
