"""Media by reference: an item's image field holds a reference, never the bytes, and a resolver says where
the bytes are (docs/formats/media.md).

A reference is one of:

* a path relative to the media root (``media_root``): ``cats/tom.jpg``; an absolute path only when it lies
  inside the root; never a ``..`` step, and never a symlink that leads out of the root;
* an ``http://`` or ``https://`` URL;
* ``s3://bucket/key``, read as ``{media_s3_endpoint}/{bucket}/{key}`` (a public bucket, MinIO, any
  S3-compatible server that serves objects by path);
* a plugin's own scheme.

Resolvers join through the entry point group ``labelwright.media_resolvers``: the entry point's name is the
scheme it resolves (``local`` for plain paths) and its object a class built with the server's
:class:`~labelwright.settings.Settings` whose ``resolve(reference)`` returns a :class:`Source`, or raises
:class:`MediaError` saying what is wrong. The built-ins are listed in :data:`BUILTINS` and loaded the same
way; a plugin declares its own in its ``pyproject.toml``::

    [project.entry-points."labelwright.media_resolvers"]
    gs = "my_package.media:GoogleStorage"

:func:`item_image` finds an item's reference (and checks it is an image field), for the media pages.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from sqlalchemy import select

from labelwright.errors import LabelwrightError, NotFound
from labelwright.services.projects import Project
from labelwright.store import Store, loads
from labelwright.store import tables as t

GROUP = "labelwright.media_resolvers"
LOCAL = "local"  # the resolver of references with no scheme: paths under the media root

#: the built-in resolvers, by the scheme they resolve
BUILTINS: tuple[tuple[str, str], ...] = (
    (LOCAL, "labelwright.services.media:LocalFolder"),
    ("http", "labelwright.services.media:WebAddress"),
    ("https", "labelwright.services.media:WebAddress"),
    ("s3", "labelwright.services.media:S3Object"),
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class MediaError(LabelwrightError):
    """A media reference that cannot be resolved: an unknown scheme, a path that leaves the media root, a
    server without the setting the reference needs. The message names the reference and what to do."""

    status = 404


@dataclass(frozen=True)
class Source:
    """Where a reference's bytes are: a file on this machine (``path``) or a URL (``url``)."""

    reference: str
    path: Path | None = None
    url: str | None = None


class Resolver(Protocol):
    """What a media resolver is: built with the settings, it turns a reference into a :class:`Source`."""

    def __init__(self, settings: Any) -> None: ...

    def resolve(self, reference: str) -> Source: ...


def scheme_of(reference: str) -> str:
    """The reference's scheme in lower case (``"s3"``), or :data:`LOCAL` for a path. A Windows drive
    (``C:\\x``) counts as a path, and is refused as one: it is absolute."""
    m = _SCHEME.match(reference)
    if m is None or (len(m.group(1)) == 1 and reference[2:3] in ("/", "\\")):
        return LOCAL
    return m.group(1).lower()


# ---- the built-ins -------------------------------------------------------------------------------------


class LocalFolder:
    """Paths relative to ``settings.media_root``; absolute ones only inside it. ``..`` steps are refused
    outright, and so is a path whose real location (symlinks followed) is outside the root."""

    def __init__(self, settings: Any) -> None:
        self.root: Path | None = None if settings.media_root is None else Path(settings.media_root).resolve()

    def resolve(self, reference: str) -> Source:
        if self.root is None:
            raise MediaError(f"{reference!r} is a file path, but this server has no media root: set media_root "
                             "(serve --media-root DIR)")
        if not reference or "\x00" in reference:
            raise MediaError(f"{reference!r} is not a file path")
        parts = PurePosixPath(reference.replace("\\", "/")).parts
        if ".." in parts:
            raise MediaError(f"{reference!r}: a media path may not contain '..'")
        if PureWindowsPath(reference).drive or reference.startswith("\\"):
            raise MediaError(f"{reference!r}: give a path relative to the media root")
        given = Path(reference)
        if given.is_absolute() and not given.is_relative_to(self.root):
            raise MediaError(f"{reference!r} is outside the media root: give a path relative to it")
        target = (self.root / given).resolve()
        if not target.is_relative_to(self.root):
            raise MediaError(f"{reference!r} leads outside the media root (a symlink): refused")
        return Source(reference, path=target)


class WebAddress:
    """``http://`` and ``https://`` URLs, as they are."""

    def __init__(self, settings: Any) -> None:
        pass

    def resolve(self, reference: str) -> Source:
        try:
            parts = urlsplit(reference)
            _ = parts.port  # raises on a port that is not a number
        except ValueError as e:
            raise MediaError(f"{reference!r} is not a URL: {e}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise MediaError(f"{reference!r} is not an http(s) URL with a host")
        return Source(reference, url=reference)


class S3Object:
    """``s3://bucket/key`` as ``{settings.media_s3_endpoint}/{bucket}/{key}`` (path-style addressing, which
    MinIO, Ceph, Garage and AWS itself serve); a public bucket or one the endpoint serves without signing."""

    def __init__(self, settings: Any) -> None:
        self.endpoint = (settings.media_s3_endpoint or "").rstrip("/")

    def resolve(self, reference: str) -> Source:
        if not self.endpoint:
            raise MediaError(f"{reference!r} is an s3:// reference, but media_s3_endpoint is not set "
                             "(e.g. https://s3.eu-west-1.amazonaws.com or http://minio.local:9000)")
        bucket, _, key = reference[len("s3://"):].partition("/") if reference[:5].lower() == "s3://" else ("", "", "")
        if not _BUCKET.match(bucket) or not key:
            raise MediaError(f"{reference!r}: write s3://bucket/key (a bucket of 3-63 lower-case letters, digits, "
                             "dots and dashes, then the object's key)")
        return Source(reference, url=f"{self.endpoint}/{bucket}/{quote(key, safe='/~')}")


# ---- the registry --------------------------------------------------------------------------------------

_resolvers: dict[str, type] = {}
_lock = threading.Lock()


def load(ep: EntryPoint) -> type:
    """The resolver class an entry point names; an error names the entry point."""
    try:
        cls = ep.load()
    except Exception as e:  # an import error in a plugin: say which
        raise MediaError(f"media resolver entry point {ep.name} = {ep.value!r} cannot be loaded: "
                         f"{type(e).__name__}: {e}") from e
    if not isinstance(cls, type) or not callable(getattr(cls, "resolve", None)):
        raise MediaError(f"media resolver entry point {ep.name} = {ep.value!r}: not a class with resolve()")
    return cls


def resolver_classes() -> dict[str, type]:
    """Every resolver class by scheme: the built-ins, then installed plugins (loaded once)."""
    with _lock:
        if not _resolvers:
            found = {name: load(EntryPoint(name, value, GROUP)) for name, value in BUILTINS}
            builtin = dict(BUILTINS)
            for ep in entry_points(group=GROUP):
                if builtin.get(ep.name) != ep.value:
                    found[ep.name.lower()] = load(ep)
            _resolvers.update(found)
        return dict(_resolvers)


def register(scheme: str, cls: type) -> None:
    """Add (or replace) the resolver of ``scheme`` in this process (a test, a notebook)."""
    resolver_classes()
    with _lock:
        _resolvers[scheme.lower()] = cls


def unregister(scheme: str) -> None:
    """Remove a resolver added with :func:`register`; built-ins stay."""
    if scheme in dict(BUILTINS):
        raise MediaError(f"{scheme!r} is a built-in media resolver")
    with _lock:
        _resolvers.pop(scheme.lower(), None)


def known_schemes() -> list[str]:
    return sorted(s for s in resolver_classes() if s != LOCAL)


def resolve(settings: Any, reference: Any) -> Source:
    """Where ``reference`` (an image field's value) is, by the resolver of its scheme."""
    if not isinstance(reference, str) or not reference.strip():
        raise MediaError(f"an image reference is a non-empty string, not {reference!r}")
    scheme = scheme_of(reference)
    cls = resolver_classes().get(scheme)
    if cls is None:
        raise MediaError(f"{reference[:200]!r}: unknown media scheme {scheme!r}; known: a path under the media "
                         f"root, {', '.join(s + '://' for s in known_schemes())}")
    return cls(settings).resolve(reference)


def item_image(store: Store, project: Project, item_id: int, field: str) -> str:
    """The reference in image field ``field`` of item ``item_id`` of ``project``; NotFound when the item is
    not the project's or the field is not one of its image fields, or is empty there."""
    if not any(f.name == field and f.type == "image" for f in project.schema.fields):
        raise NotFound(f"project {project.slug!r} has no image field {field!r}")
    i = t.items
    with store.read() as conn:
        data = conn.execute(select(i.c.data).where(i.c.id == item_id, i.c.project_id == project.id)).scalar()
    if data is None:
        raise NotFound(f"no item {item_id} in project {project.slug!r}")
    value = loads(data).get(field)
    if not isinstance(value, str) or not value:
        raise NotFound(f"item {item_id} has no image in field {field!r}")
    return value


def images_of(store: Store, project: Project, item_ids: list[int]) -> dict[int, str]:
    """For lists of items: which of ``item_ids`` reference an image, each with the name of its first image
    field that holds one (the field its thumbnail is made from)."""
    fields = [f.name for f in project.schema.fields if f.type == "image"]
    if not fields or not item_ids:
        return {}
    i = t.items
    out: dict[int, str] = {}
    with store.read() as conn:
        rows = conn.execute(select(i.c.id, i.c.data).where(i.c.project_id == project.id, i.c.id.in_(item_ids)))
        for r in rows:
            data = loads(r.data)
            name = next((f for f in fields if isinstance(data.get(f), str) and data[f]), None)
            if name is not None:
                out[r.id] = name
    return out
