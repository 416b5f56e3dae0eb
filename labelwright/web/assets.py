"""Static files (``labelwright/web/static``) under a versioned URL that browsers may cache for good.

``/static/<version>/label.js`` is served with ``Cache-Control: public, max-age=31536000, immutable``: the
version is a hash of every static file's name and content, so a release that changes any of them gets new
URLs and no browser keeps a stale copy. Templates write ``{{ static_url("label.js") }}``; a module's
relative imports (``./activity.js``) resolve under the same version. The plain ``/static/...`` URLs still
answer (revalidated as before) for anything that links them directly.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def version(directory: Path = STATIC_DIR) -> str:
    """A short hash of the static files (read on first use, never at import)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def static_url(name: str) -> str:
    """The versioned URL of a static file, e.g. ``/static/3f9c0a1b2d4e/label.js``."""
    return f"/static/{version()}/{name}"


class ImmutableStaticFiles(StaticFiles):
    """StaticFiles whose successful answers may be cached for a year without revalidation."""

    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = IMMUTABLE
        return response
