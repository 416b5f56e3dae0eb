"""Media pages: an item's image, by the reference in its data (docs/formats/media.md).

``GET /projects/{p}/items/{id}/media/{field}`` answers a member of the project (annotator and up, and the
organisation's owners) with the image that image field ``field`` of the item references:

* a file under the media root: its bytes, with its type, ``ETag``, ``Last-Modified`` and
  ``Cache-Control: private`` (a ``304`` to a browser that has it);
* a remote image (``http(s)://``, ``s3://``, a plugin's scheme): a redirect to its URL, which the browser
  loads itself.

``?thumb=1`` answers a thumbnail instead (at most 256 pixels a side; :mod:`labelwright.services.thumbnails`,
cached on disk). A reference that cannot be resolved is a 404 saying why.

``GET /media/{path}`` serves a file under the media root by its path, for the schema preview of a project
not yet created: only to those who may create projects (no item says who else may see it).
"""

from __future__ import annotations

import mimetypes
from email.utils import formatdate
from pathlib import Path

from fastapi import Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from labelwright.api.deps import ItemId
from labelwright.errors import NotFound
from labelwright.services import media as media_svc
from labelwright.services import policy
from labelwright.services import thumbnails as thumbs_svc
from labelwright.web import current_session, project_for_page

ORIGINAL_MAX_AGE = 3600  # seconds a browser keeps an image before it asks again (then a 304 if unchanged)
THUMB_MAX_AGE = 86400
SECURITY = {
    # An SVG opened on its own must not run script in this origin.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


def _file(request: Request, path: Path, media_type: str, max_age: int) -> Response:
    """``path`` with validators and caching headers, or a ``304`` when the browser's copy is current."""
    st = path.stat()
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    headers = {**SECURITY, "ETag": etag, "Last-Modified": formatdate(st.st_mtime, usegmt=True),
               "Cache-Control": f"private, max-age={max_age}"}
    given = request.headers.get("if-none-match")
    if given is not None:
        fresh = etag in (t.strip().removeprefix("W/") for t in given.split(","))
    else:
        fresh = request.headers.get("if-modified-since") == headers["Last-Modified"]
    if fresh:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def _image_type(source: media_svc.Source) -> str:
    assert source.path is not None
    kind = mimetypes.guess_type(source.path.name)[0] or ""
    if not kind.startswith("image/") or not source.path.is_file():
        raise NotFound(f"no image {source.reference!r} under the media root")
    return kind


def item_media(slug: str, item_id: ItemId, field: str, request: Request,
               thumb: bool = Query(False, description="a thumbnail (256 pixels a side at most)")):
    _, store, project = project_for_page(slug, request, policy.view_project)
    settings = request.app.state.settings
    source = media_svc.resolve(settings, media_svc.item_image(store, project, item_id, field))
    kind = _image_type(source) if source.path is not None else ""
    if thumb and thumbs_svc.available() and kind != "image/svg+xml":
        t = thumbs_svc.thumbnail(source, settings)
        return _file(request, t.path, t.media_type, THUMB_MAX_AGE)
    if source.path is not None:
        return _file(request, source.path, kind, ORIGINAL_MAX_AGE)
    return RedirectResponse(str(source.url), status_code=302,
                            headers={"Cache-Control": f"private, max-age={ORIGINAL_MAX_AGE}"})


def media_file(path: str, request: Request):
    """An image under the media root by its path (the schema preview's), for those who may create projects."""
    policy.create_project(current_session(request).user)
    settings = request.app.state.settings
    if settings.media_root is None:
        raise NotFound("this server serves no media files (start it with --media-root)")
    source = media_svc.LocalFolder(settings).resolve(path)
    kind = _image_type(source)
    assert source.path is not None  # a local file, checked by _image_type
    return _file(request, source.path, kind, ORIGINAL_MAX_AGE)


def add_routes(r):
    r.add_api_route("/projects/{slug}/items/{item_id}/media/{field}", item_media, methods=["GET"])
    r.add_api_route("/media/{path:path}", media_file, methods=["GET"])
    return r
